//! Integrations: incoming and outgoing webhooks, slash commands, personal access tokens, bots,
//! and the outgoing-webhook outbox.
//!
//! They share one family, `kind_key_integration`, because each kind is small (an installation
//! holds tens to hundreds of hooks, not millions) and is listed whole: the first key byte is the
//! kind, then the record's id (or, for the outbox, the log index). Listing a kind is one prefix
//! scan; nothing on the posting path reads more than the outgoing hooks.
//!
//! ## The outgoing-webhook outbox
//! Like notifications (`crate::notify`), a call must leave the cluster once, so apply only
//! RECORDS, in the post's write batch, which hooks the post triggered ([`HookCall`]s keyed by
//! the log index under [`KIND_OUTBOX`]). The leader's dispatcher (`confab::integrations`) sends
//! them and commits [`Command::HookCallsDone`](crate::Command): it advances the `meta` mark
//! `"hooks_dispatched"` past every entry whose calls all finished and deletes those entries,
//! and takes each finished call out of the later entries, so that a call still running (a slow
//! endpoint) is the only one a new leader makes again. It is a separate outbox
//! from notifications' on purpose: a slow callback URL (seconds per call, retried) then never
//! holds back pushes, and posts that trigger no hook cost nothing here.

use crate::apply::{refuse, Step};
use crate::cf::Cf;
use crate::error::CommandError;
use crate::id::Id;
use crate::keys::{id2, id_key};
use crate::model::{Channel, ChannelType, Post, Session, User};
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use crate::validate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Key kinds of `kind_key_integration`.
pub const KIND_INCOMING: u8 = 0;
pub const KIND_OUTGOING: u8 = 1;
pub const KIND_COMMAND: u8 = 2;
pub const KIND_TOKEN: u8 = 3;
pub const KIND_BOT: u8 = 4;
pub const KIND_OUTBOX: u8 = 5;
pub const KIND_COMMAND_HOOK: u8 = 6;
/// A slash command's `response_url` may be used this many times ...
pub const COMMAND_HOOK_USES: u32 = 5;
/// ... within this many milliseconds of the command (Mattermost: 30 minutes).
pub const COMMAND_HOOK_LIFETIME_MS: u64 = 30 * 60 * 1000;
/// `meta` key of the last outgoing-hook outbox index handled.
pub const HOOKS_MARK_KEY: &[u8] = b"hooks_dispatched";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingHook {
    pub id: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub user_id: Id,
    pub channel_id: Id,
    pub team_id: Id,
    pub display_name: String,
    pub description: String,
    pub username: String,
    pub icon_url: String,
    pub channel_locked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingHook {
    pub id: Id,
    pub token: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub creator_id: Id,
    /// [`Id::NONE`] for a team-wide hook (then it needs trigger words).
    pub channel_id: Id,
    pub team_id: Id,
    pub trigger_words: Vec<String>,
    /// 0: the first word equals a trigger word; 1: it starts with one.
    pub trigger_when: u8,
    pub callback_urls: Vec<String>,
    pub display_name: String,
    pub description: String,
    pub content_type: String,
    pub username: String,
    pub icon_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashCommand {
    pub id: Id,
    pub token: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub creator_id: Id,
    pub team_id: Id,
    /// Lowercase, without the `/`.
    pub trigger: String,
    /// `P` or `G`.
    pub method: String,
    pub username: String,
    pub icon_url: String,
    pub auto_complete: bool,
    pub auto_complete_desc: String,
    pub auto_complete_hint: String,
    pub display_name: String,
    pub description: String,
    pub url: String,
}

/// A personal access token. Its `token` is also the token of the session it authenticates
/// with, which exists exactly while the token is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: Id,
    pub token: Id,
    pub user_id: Id,
    pub description: String,
    pub is_active: bool,
}

/// What makes a user a bot beyond `User::is_bot`; names and `delete_at` are the user's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bot {
    pub user_id: Id,
    pub description: String,
    pub owner_id: Id,
    pub create_at: u64,
    pub update_at: u64,
}

/// A slash command's `response_url` (`/hooks/commands/{id}`): where later answers go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandHook {
    pub id: Id,
    pub command_id: Id,
    pub user_id: Id,
    pub channel_id: Id,
    /// [`Id::NONE`] when the command was not run in a thread.
    pub root_id: Id,
    pub create_at: u64,
    pub use_count: u32,
}

/// One outgoing hook a post triggered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookCall {
    pub hook_id: Id,
    pub post_id: Id,
    pub trigger_word: String,
}

/// A record stored under one kind, keyed by its id.
pub trait Record: Serialize + DeserializeOwned {
    const KIND: u8;
    fn key_id(&self) -> Id;
}

impl Record for IncomingHook {
    const KIND: u8 = KIND_INCOMING;
    fn key_id(&self) -> Id {
        self.id
    }
}
impl Record for OutgoingHook {
    const KIND: u8 = KIND_OUTGOING;
    fn key_id(&self) -> Id {
        self.id
    }
}
impl Record for SlashCommand {
    const KIND: u8 = KIND_COMMAND;
    fn key_id(&self) -> Id {
        self.id
    }
}
impl Record for AccessToken {
    const KIND: u8 = KIND_TOKEN;
    fn key_id(&self) -> Id {
        self.id
    }
}
impl Record for CommandHook {
    const KIND: u8 = KIND_COMMAND_HOOK;
    fn key_id(&self) -> Id {
        self.id
    }
}
impl Record for Bot {
    const KIND: u8 = KIND_BOT;
    fn key_id(&self) -> Id {
        self.user_id
    }
}

fn key(kind: u8, id: Id) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(kind);
    key.extend_from_slice(id.as_bytes());
    key
}

fn outbox_key(index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(KIND_OUTBOX);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn load<T: Record>(txn: &mut Txn, id: Id, what: &str) -> Step<T> {
    match txn.get::<T>(Cf::KindKeyIntegration, &key(T::KIND, id))? {
        Some(record) => Ok(record),
        None => refuse(CommandError::not_found(what, id)),
    }
}

fn put<T: Record>(txn: &mut Txn, record: &T) -> Step<()> {
    txn.put(
        Cf::KindKeyIntegration,
        key(T::KIND, record.key_id()),
        record,
    )?;
    Ok(())
}

fn all<T: Record>(txn: &mut Txn) -> Step<Vec<T>> {
    let mut records = Vec::new();
    for (_, value) in txn.scan_prefix(Cf::KindKeyIntegration, &[T::KIND])? {
        if let Ok(record) = rmp_serde::from_slice::<T>(&value) {
            records.push(record);
        }
    }
    Ok(records)
}

fn check_texts(fields: &[(&str, &str, usize)]) -> Step<()> {
    for (name, value, max) in fields {
        validate::text(name, value, *max)?;
    }
    Ok(())
}

/// Creates or replaces an incoming hook: its channel must exist in its team.
pub(crate) fn put_incoming(txn: &mut Txn, hook: &IncomingHook) -> Step<Outcome> {
    check_texts(&[
        ("display_name", &hook.display_name, 64),
        ("description", &hook.description, 500),
        ("username", &hook.username, 64),
        ("icon_url", &hook.icon_url, 1024),
    ])?;
    let channel = crate::apply::load_live_channel(txn, hook.channel_id)?;
    if channel.team_id != hook.team_id {
        return refuse(CommandError::Invalid(
            "the channel is not in the team".into(),
        ));
    }
    crate::apply::load_user(txn, hook.user_id)?;
    put(txn, hook)?;
    Ok(Outcome::IntegrationChanged)
}

/// Creates or replaces an outgoing hook (a team-wide one needs trigger words).
pub(crate) fn put_outgoing(txn: &mut Txn, hook: &OutgoingHook) -> Step<Outcome> {
    check_texts(&[
        ("display_name", &hook.display_name, 64),
        ("description", &hook.description, 500),
        ("username", &hook.username, 64),
        ("icon_url", &hook.icon_url, 1024),
    ])?;
    if hook.callback_urls.is_empty() || hook.callback_urls.len() > 16 {
        return refuse(CommandError::Invalid("callback_urls".into()));
    }
    if hook.trigger_words.len() > 64 || hook.trigger_words.iter().any(|w| w.len() > 64) {
        return refuse(CommandError::Invalid("trigger_words".into()));
    }
    if hook.channel_id.is_none() {
        if hook.trigger_words.is_empty() {
            return refuse(CommandError::Invalid(
                "a hook without a channel needs trigger words".into(),
            ));
        }
    } else {
        let channel = crate::apply::load_live_channel(txn, hook.channel_id)?;
        if channel.team_id != hook.team_id || channel.channel_type != ChannelType::Open {
            return refuse(CommandError::Invalid(
                "outgoing hooks need an open channel of their team".into(),
            ));
        }
    }
    put(txn, hook)?;
    Ok(Outcome::IntegrationChanged)
}

/// Creates or replaces a custom slash command; its trigger is unique in its team.
pub(crate) fn put_command(txn: &mut Txn, command: &SlashCommand) -> Step<Outcome> {
    check_texts(&[
        ("trigger", &command.trigger, 128),
        ("display_name", &command.display_name, 64),
        ("description", &command.description, 128),
        ("username", &command.username, 64),
        ("icon_url", &command.icon_url, 1024),
        ("url", &command.url, 1024),
        ("auto_complete_desc", &command.auto_complete_desc, 1024),
        ("auto_complete_hint", &command.auto_complete_hint, 1024),
    ])?;
    let taken = all::<SlashCommand>(txn)?.into_iter().any(|other| {
        other.id != command.id
            && other.team_id == command.team_id
            && other.trigger == command.trigger
    });
    if taken {
        return refuse(CommandError::Invalid(format!(
            "the trigger {} is in use",
            command.trigger
        )));
    }
    put(txn, command)?;
    Ok(Outcome::IntegrationChanged)
}

/// Deletes a hook or command by kind.
pub(crate) fn delete(txn: &mut Txn, kind: u8, id: Id) -> Step<Outcome> {
    if !txn.exists(Cf::KindKeyIntegration, &key(kind, id))? {
        return refuse(CommandError::not_found("integration", id));
    }
    txn.delete(Cf::KindKeyIntegration, key(kind, id));
    Ok(Outcome::IntegrationChanged)
}

fn put_session(txn: &mut Txn, token: &AccessToken, at: u64) -> Step<()> {
    let session = Session {
        token: token.token,
        user_id: token.user_id,
        create_at: at,
        expires_at: 0,
        device_id: String::new(),
    };
    txn.put(Cf::TokenSession, id_key(token.token), &session)?;
    txn.put_raw(Cf::UseridToken, id2(token.user_id, token.token), Vec::new());
    Ok(())
}

fn end_session(txn: &mut Txn, token: &AccessToken) -> Step<Vec<Session>> {
    let Some(session) = txn.get::<Session>(Cf::TokenSession, &id_key(token.token))? else {
        return Ok(Vec::new());
    };
    txn.delete(Cf::TokenSession, id_key(token.token));
    txn.delete(Cf::UseridToken, id2(token.user_id, token.token));
    Ok(vec![session])
}

/// Gives the user's active tokens their sessions back after something ended every session of
/// the user (a reactivation, a password change, "revoke all"): a token stays usable until it
/// is disabled or revoked, as in Mattermost, where its session is re-created on next use.
pub(crate) fn restore_token_sessions(txn: &mut Txn, user_id: Id, at: u64) -> Step<()> {
    for token in all::<AccessToken>(txn)? {
        if token.user_id == user_id && token.is_active {
            put_session(txn, &token, at)?;
        }
    }
    Ok(())
}

/// A new personal access token with its session.
pub(crate) fn create_token(txn: &mut Txn, token: &AccessToken, at: u64) -> Step<Outcome> {
    validate::text("description", &token.description, 255)?;
    let user: User = crate::apply::load_user(txn, token.user_id)?;
    if user.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {}", user.id)));
    }
    if txn.exists(Cf::KindKeyIntegration, &key(KIND_TOKEN, token.id))?
        || txn.exists(Cf::TokenSession, &id_key(token.token))?
    {
        return refuse(CommandError::IdExists(token.id.to_string()));
    }
    put(txn, token)?;
    put_session(txn, token, at)?;
    Ok(Outcome::IntegrationChanged)
}

/// Disables (ending its session) or enables (starting one) a token.
pub(crate) fn set_token_active(txn: &mut Txn, id: Id, active: bool, at: u64) -> Step<Outcome> {
    let mut token: AccessToken = load(txn, id, "token")?;
    if token.is_active == active {
        return Ok(Outcome::IntegrationChanged);
    }
    token.is_active = active;
    put(txn, &token)?;
    if active {
        put_session(txn, &token, at)?;
        Ok(Outcome::IntegrationChanged)
    } else {
        Ok(Outcome::SessionsRevoked(end_session(txn, &token)?))
    }
}

/// Deletes a token and ends its session.
pub(crate) fn revoke_token(txn: &mut Txn, id: Id) -> Step<Outcome> {
    let token: AccessToken = load(txn, id, "token")?;
    txn.delete(Cf::KindKeyIntegration, key(KIND_TOKEN, id));
    Ok(Outcome::SessionsRevoked(end_session(txn, &token)?))
}

/// Creates or updates the bot record of an existing bot user.
pub(crate) fn put_bot(txn: &mut Txn, bot: &Bot) -> Step<Outcome> {
    validate::text("description", &bot.description, 1024)?;
    let user = crate::apply::load_user(txn, bot.user_id)?;
    if !user.is_bot {
        return refuse(CommandError::Invalid(format!("{} is not a bot", user.id)));
    }
    put(txn, bot)?;
    Ok(Outcome::IntegrationChanged)
}

/// Stores a new command hook; hooks past their lifetime (as of its creation time) go, a bounded
/// number per command, so the kind never grows without bound.
pub(crate) fn create_command_hook(txn: &mut Txn, hook: &CommandHook) -> Step<Outcome> {
    let expired: Vec<Id> = all::<CommandHook>(txn)?
        .into_iter()
        .filter(|h| h.create_at.saturating_add(COMMAND_HOOK_LIFETIME_MS) < hook.create_at)
        .take(64)
        .map(|h| h.id)
        .collect();
    for id in expired {
        txn.delete(Cf::KindKeyIntegration, key(KIND_COMMAND_HOOK, id));
    }
    put(txn, hook)?;
    Ok(Outcome::IntegrationChanged)
}

/// Counts one use of a command hook at `at`; refused when unknown, used up or expired.
pub(crate) fn use_command_hook(txn: &mut Txn, id: Id, at: u64) -> Step<Outcome> {
    let mut hook: CommandHook = load(txn, id, "command hook")?;
    if hook.use_count >= COMMAND_HOOK_USES
        || at > hook.create_at.saturating_add(COMMAND_HOOK_LIFETIME_MS)
    {
        return refuse(CommandError::Invalid(
            "the command hook is used up or expired".into(),
        ));
    }
    hook.use_count += 1;
    put(txn, &hook)?;
    Ok(Outcome::CommandHookUsed(hook))
}

/// Records the outgoing hooks a new post triggers, in its write batch. Only normal posts of
/// open channels trigger (not system posts, not posts made by webhooks).
pub(crate) fn record_hook_calls(txn: &mut Txn, post: &Post, channel: &Channel) -> Step<()> {
    if channel.channel_type != ChannelType::Open
        || post.post_type.starts_with("system_")
        || from_webhook(&post.props)
    {
        return Ok(());
    }
    let hooks = all::<OutgoingHook>(txn)?;
    let calls: Vec<HookCall> = hooks
        .iter()
        .filter(|h| {
            h.team_id == channel.team_id && (h.channel_id.is_none() || h.channel_id == channel.id)
        })
        .filter_map(|h| {
            trigger_word(h, &post.message).map(|word| HookCall {
                hook_id: h.id,
                post_id: post.id,
                trigger_word: word,
            })
        })
        .collect();
    if !calls.is_empty() {
        txn.put(Cf::KindKeyIntegration, outbox_key(txn.index), &calls)?;
    }
    Ok(())
}

/// Whether a post's props say a webhook made it (such posts trigger no outgoing hook).
pub fn from_webhook(props: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(props)
        .ok()
        .and_then(|v| {
            v.get("from_webhook")
                .and_then(|f| f.as_str().map(|s| s == "true"))
        })
        .unwrap_or(false)
}

/// The trigger word a message fires `hook` with (empty for a channel hook without trigger
/// words), or None. Mattermost matches the message's first word.
pub fn trigger_word(hook: &OutgoingHook, message: &str) -> Option<String> {
    if hook.trigger_words.is_empty() {
        return (!hook.channel_id.is_none()).then(String::new);
    }
    let first = message.split_whitespace().next()?;
    hook.trigger_words
        .iter()
        .find(|word| match hook.trigger_when {
            1 => !word.is_empty() && first.starts_with(word.as_str()),
            _ => first == word.as_str(),
        })
        .cloned()
}

/// Advances the outgoing-hook mark (never back) and deletes the outbox up to it.
pub(crate) fn dispatched(txn: &mut Txn, through: u64) -> Step<Outcome> {
    let mark = txn
        .get_raw(Cf::Meta, HOOKS_MARK_KEY)?
        .and_then(|raw| raw.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    if through <= mark {
        return Ok(Outcome::IntegrationChanged);
    }
    let lower = outbox_key(mark.saturating_add(1));
    let upper = outbox_key(through.saturating_add(1));
    for (key, _) in txn.scan_range(Cf::KindKeyIntegration, &lower, Some(upper.as_slice()))? {
        txn.delete(Cf::KindKeyIntegration, key);
    }
    txn.put_raw(
        Cf::Meta,
        HOOKS_MARK_KEY.to_vec(),
        through.to_be_bytes().to_vec(),
    );
    Ok(Outcome::IntegrationChanged)
}

/// Advances the mark to `through` (as [`dispatched`]) and takes each later finished call out of
/// its outbox entry, deleting an entry once none of its calls is left.
pub(crate) fn calls_done(txn: &mut Txn, through: u64, calls: &[(u64, Id)]) -> Step<Outcome> {
    dispatched(txn, through)?;
    let mark = txn
        .get_raw(Cf::Meta, HOOKS_MARK_KEY)?
        .and_then(|raw| raw.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    let mut entries: std::collections::BTreeMap<u64, Vec<Id>> = Default::default();
    for (index, hook_id) in calls.iter().filter(|(index, _)| *index > mark) {
        entries.entry(*index).or_default().push(*hook_id);
    }
    for (index, finished) in entries {
        let key = outbox_key(index);
        let Some(mut pending) = txn.get::<Vec<HookCall>>(Cf::KindKeyIntegration, &key)? else {
            continue;
        };
        pending.retain(|call| !finished.contains(&call.hook_id));
        if pending.is_empty() {
            txn.delete(Cf::KindKeyIntegration, key);
        } else {
            txn.put(Cf::KindKeyIntegration, key, &pending)?;
        }
    }
    Ok(Outcome::IntegrationChanged)
}

/// Reads of integrations (any node).
impl Reader<'_> {
    fn integration<T: Record>(&self, id: Id) -> crate::Result<Option<T>> {
        self.get(Cf::KindKeyIntegration, &key(T::KIND, id))
    }

    fn integrations<T: Record>(&self) -> crate::Result<Vec<T>> {
        let mut records = Vec::new();
        self.scan_prefix(Cf::KindKeyIntegration, &[T::KIND], false, |_, value| {
            if let Ok(record) = rmp_serde::from_slice::<T>(value) {
                records.push(record);
            }
            true
        })?;
        Ok(records)
    }

    pub fn incoming_hook(&self, id: Id) -> crate::Result<Option<IncomingHook>> {
        self.integration(id)
    }
    pub fn incoming_hooks(&self) -> crate::Result<Vec<IncomingHook>> {
        self.integrations()
    }
    pub fn outgoing_hook(&self, id: Id) -> crate::Result<Option<OutgoingHook>> {
        self.integration(id)
    }
    pub fn outgoing_hooks(&self) -> crate::Result<Vec<OutgoingHook>> {
        self.integrations()
    }
    pub fn slash_command(&self, id: Id) -> crate::Result<Option<SlashCommand>> {
        self.integration(id)
    }
    pub fn command_hook(&self, id: Id) -> crate::Result<Option<CommandHook>> {
        self.integration(id)
    }
    pub fn slash_commands(&self) -> crate::Result<Vec<SlashCommand>> {
        self.integrations()
    }
    pub fn access_token(&self, id: Id) -> crate::Result<Option<AccessToken>> {
        self.integration(id)
    }
    pub fn access_tokens(&self) -> crate::Result<Vec<AccessToken>> {
        self.integrations()
    }
    pub fn bot(&self, user_id: Id) -> crate::Result<Option<Bot>> {
        self.integration(user_id)
    }
    pub fn bots(&self) -> crate::Result<Vec<Bot>> {
        self.integrations()
    }

    /// The last outgoing-hook outbox index handled.
    pub fn hooks_mark(&self) -> crate::Result<u64> {
        self.meta_u64(HOOKS_MARK_KEY)
    }

    /// Up to `limit` outbox entries after `after`, oldest first (undecodable ones as empty).
    pub fn hook_calls_after(
        &self,
        after: u64,
        limit: usize,
    ) -> crate::Result<Vec<(u64, Vec<HookCall>)>> {
        let mut entries: Vec<(u64, Vec<HookCall>)> = Vec::new();
        let lower = outbox_key(after.saturating_add(1));
        let upper = [KIND_OUTBOX + 1];
        self.scan(
            Cf::KindKeyIntegration,
            &lower,
            Some(&upper),
            false,
            |k, value| {
                let Some(index) = k
                    .get(1..9)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                else {
                    return true;
                };
                entries.push((index, rmp_serde::from_slice(value).unwrap_or_default()));
                entries.len() < limit
            },
        )?;
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(words: &[&str], when: u8, channel: Id) -> OutgoingHook {
        OutgoingHook {
            id: Id::from_bytes([1; 16]),
            token: Id::from_bytes([2; 16]),
            create_at: 0,
            update_at: 0,
            creator_id: Id::from_bytes([3; 16]),
            channel_id: channel,
            team_id: Id::from_bytes([4; 16]),
            trigger_words: words.iter().map(|w| w.to_string()).collect(),
            trigger_when: when,
            callback_urls: vec!["http://x".into()],
            display_name: String::new(),
            description: String::new(),
            content_type: String::new(),
            username: String::new(),
            icon_url: String::new(),
        }
    }

    #[test]
    fn trigger_words_match_the_first_word_as_mattermost_does() {
        let exact = hook(&["build"], 0, Id::NONE);
        assert_eq!(trigger_word(&exact, "build now"), Some("build".into()));
        assert_eq!(trigger_word(&exact, "builder now"), None);
        assert_eq!(trigger_word(&exact, "now build"), None);
        let prefix = hook(&["bu"], 1, Id::NONE);
        assert_eq!(trigger_word(&prefix, "builder"), Some("bu".into()));
        let channel = hook(&[], 0, Id::from_bytes([9; 16]));
        assert_eq!(trigger_word(&channel, "anything"), Some(String::new()));
        let team_wide_without_words = hook(&[], 0, Id::NONE);
        assert_eq!(trigger_word(&team_wide_without_words, "anything"), None);
        assert!(from_webhook(r#"{"from_webhook":"true"}"#));
        assert!(!from_webhook("{}"));
        assert!(!from_webhook("not json"));
    }
}
