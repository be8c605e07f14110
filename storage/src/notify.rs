//! The notification outbox and the notification settings it is judged with.
//!
//! Every node applies every post, yet a push must leave the cluster once. So `apply` only
//! RECORDS, in the same write batch as the post, a deterministic [`OutboxEntry`] keyed by the
//! command's log index: who MIGHT be notified (the explicitly mentioned, whether the whole
//! channel was addressed, the thread's followers) — everything a replica can know without a
//! clock or a presence view. The leader's dispatcher (`confab::notify`) reads the entries after
//! the replicated "dispatched through" mark, decides with current state and presence, sends,
//! and commits [`Command::NotificationsDispatched`](crate::Command) for a whole batch: that
//! advances the mark and deletes the batch's entries in one write.
//!
//! Channel views and thread reads that clear something record a [`OutboxEntry::Clear`] the same
//! way, so `type: clear` pushes also leave once, from the leader.
//!
//! The `meta` family holds the mark (`"notify_dispatched"`) and the number of entries waiting
//! (`"notify_outbox_len"`), both big-endian u64, so the backlog is an O(1) read on any node.

use crate::apply::{load_channel, load_user, refuse, Step};
use crate::cf::Cf;
use crate::error::{CommandError, Result};
use crate::id::Id;
use crate::keys::{id2, id_key};
use crate::model::{ChannelMember, ChannelType, NotifyProps, Session};
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// `meta` key of the last outbox index dispatched (entries at or below it are done).
pub const MARK_KEY: &[u8] = b"notify_dispatched";
/// `meta` key of the number of entries in the outbox.
pub const LEN_KEY: &[u8] = b"notify_outbox_len";

/// Longest notify-prop key and value, and most props per map (Mattermost stores the map as
/// JSON in one column; these keep a record small).
const MAX_PROP_KEY: usize = 64;
const MAX_PROP_VALUE: usize = 1024;
const MAX_PROPS: usize = 64;

/// How a post addressed the whole channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelWide {
    None,
    /// `@channel` or `@all`.
    All,
    /// Only `@here`: members who are online.
    Here,
}

/// What one applied command asks the dispatcher to consider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxEntry {
    /// A new post: who might be told about it.
    Post {
        post_id: Id,
        channel_id: Id,
        sender_id: Id,
        /// [`Id::NONE`] for a root post.
        root_id: Id,
        /// Channel members named with `@username`, the sender excluded.
        mentioned: Vec<Id>,
        channel_wide: ChannelWide,
        /// Thread followers after a reply (Collapsed Reply Threads), the sender excluded.
        followers: Vec<Id>,
    },
    /// A user read a channel (`root_id` NONE) or a thread: their devices clear its notifications.
    Clear {
        user_id: Id,
        channel_id: Id,
        root_id: Id,
    },
    /// A user marked a post unread: their devices show the new badge (`update_badge`).
    UpdateBadge { user_id: Id },
}

/// Records an outbox entry for the command being applied (one per command at most).
pub(crate) fn record(txn: &mut Txn, entry: &OutboxEntry) -> Step<()> {
    txn.put(Cf::SeqNotification, txn.index.to_be_bytes().to_vec(), entry)?;
    let len = meta_u64(txn, LEN_KEY)?;
    txn.put_raw(Cf::Meta, LEN_KEY.to_vec(), (len + 1).to_be_bytes().to_vec());
    Ok(())
}

/// The dispatched mark as the command being applied sees it.
pub(crate) fn current_mark(txn: &mut Txn) -> Step<u64> {
    meta_u64(txn, MARK_KEY)
}

/// A big-endian u64 counter of `meta` (0 when absent), as the command being applied sees it.
pub(crate) fn meta_u64(txn: &mut Txn, key: &[u8]) -> Step<u64> {
    Ok(txn
        .get_raw(Cf::Meta, key)?
        .and_then(|raw| raw.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}

/// Most outbox entries one mark deletes: a mark over more (entries dropped by the backlog
/// bound) is split by the dispatcher, so a command's work stays bounded.
pub const MAX_MARK_SPAN: usize = 4096;

/// Advances the dispatched mark to `through` (never backwards: a deposed leader's late mark
/// changes nothing), deletes the entries it covers, and detaches the devices the push proxy
/// answered `REMOVE` for (only where the session still carries that device id).
pub(crate) fn dispatched(txn: &mut Txn, through: u64, detach: &[(Id, String)]) -> Step<Outcome> {
    let mark = meta_u64(txn, MARK_KEY)?;
    let mut removed = 0u64;
    if through > mark {
        let lower = (mark + 1).to_be_bytes();
        let upper = through.saturating_add(1).to_be_bytes();
        for (key, _) in txn.scan_range_first(Cf::SeqNotification, &lower, &upper, MAX_MARK_SPAN)? {
            txn.delete(Cf::SeqNotification, key);
            removed += 1;
        }
        txn.put_raw(Cf::Meta, MARK_KEY.to_vec(), through.to_be_bytes().to_vec());
        let len = meta_u64(txn, LEN_KEY)?.saturating_sub(removed);
        txn.put_raw(Cf::Meta, LEN_KEY.to_vec(), len.to_be_bytes().to_vec());
    }
    let mut detached = Vec::new();
    for (token, device_id) in detach {
        let Some(mut session) = txn.get::<Session>(Cf::TokenSession, &id_key(*token))? else {
            continue;
        };
        if session.device_id != *device_id || device_id.is_empty() {
            continue;
        }
        session.device_id.clear();
        txn.put(Cf::TokenSession, id_key(*token), &session)?;
        detached.push(session);
    }
    Ok(Outcome::NotificationsDispatched {
        through: through.max(mark),
        removed,
        detached,
    })
}

/// Attaches a device to a session (`PUT /users/sessions/device`), ending the user's other
/// sessions that carry the same device id, as Mattermost does: one device, one session.
pub(crate) fn attach_device(
    txn: &mut Txn,
    token: Id,
    device_id: &str,
    expires_at: u64,
) -> Step<Outcome> {
    if device_id.is_empty() || device_id.len() > 512 {
        return refuse(CommandError::Invalid("device_id".into()));
    }
    let Some(mut session) = txn.get::<Session>(Cf::TokenSession, &id_key(token))? else {
        return refuse(CommandError::not_found("session", token));
    };
    let mut revoked = Vec::new();
    for (key, _) in txn.scan_prefix(Cf::UseridToken, session.user_id.as_bytes())? {
        let Some(other) = key.get(16..).and_then(Id::from_slice) else {
            continue;
        };
        if other == token {
            continue;
        }
        if let Some(s) = txn.get::<Session>(Cf::TokenSession, &id_key(other))? {
            if s.device_id == device_id {
                txn.delete(Cf::TokenSession, id_key(other));
                txn.delete(Cf::UseridToken, id2(session.user_id, other));
                revoked.push(s);
            }
        }
    }
    session.device_id = device_id.to_string();
    if session.expires_at != 0 && expires_at != 0 {
        session.expires_at = expires_at;
    }
    txn.put(Cf::TokenSession, id_key(token), &session)?;
    Ok(Outcome::DeviceAttached { session, revoked })
}

/// Checks a notify-props map's size, and the values Mattermost checks for a channel member.
fn validate_props(props: &NotifyProps, channel: bool) -> Step<()> {
    if props.len() > MAX_PROPS {
        return refuse(CommandError::Invalid("notify_props: too many".into()));
    }
    for (key, value) in props {
        if key.is_empty() || key.len() > MAX_PROP_KEY || value.len() > MAX_PROP_VALUE {
            return refuse(CommandError::Invalid(format!("notify_props.{key}")));
        }
        let allowed: &[&str] = match (channel, key.as_str()) {
            (true, "desktop" | "push") => &["default", "all", "mention", "none"],
            (true, "email") => &["default", "true", "false"],
            (true, "mark_unread") => &["all", "mention"],
            (true, "ignore_channel_mentions") => &["default", "off", "on"],
            (false, "push" | "desktop") => &["all", "mention", "none"],
            (false, "push_status") => &["online", "away", "offline", "dnd"],
            _ => &[],
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return refuse(CommandError::Invalid(format!("notify_props.{key}")));
        }
    }
    Ok(())
}

/// A user's notify props as a profile update sets them.
pub(crate) fn validate_user_props(props: &NotifyProps) -> Step<()> {
    validate_props(props, false)
}

/// Merges `props` into a channel member's notify props
/// (`PUT /channels/{id}/members/{user}/notify_props`).
pub(crate) fn set_channel_props(
    txn: &mut Txn,
    channel_id: Id,
    user_id: Id,
    at: u64,
    props: &NotifyProps,
) -> Step<Outcome> {
    let channel = load_channel(txn, channel_id)?;
    let user = load_user(txn, user_id)?;
    let key = id2(channel_id, user_id);
    let Some(mut member) = txn.get::<ChannelMember>(Cf::ChannelidUseridMember, &key)? else {
        return refuse(CommandError::not_found("channel member", user_id));
    };
    member.settle(&channel);
    let mut merged = member.notify_props.clone();
    merged.extend(props.iter().map(|(k, v)| (k.clone(), v.clone())));
    validate_props(&merged, true)?;
    member.notify_props = merged;
    crate::wide_ignore::set_for_member(txn, &mut member, &user);
    member.last_update_at = member.last_update_at.max(at);
    txn.put(Cf::ChannelidUseridMember, key, &member)?;
    Ok(Outcome::ChannelMemberUpdated { channel, member })
}

/// Mattermost's default user notify props (`SetDefaultNotifications`).
pub const USER_DEFAULTS: [(&str, &str); 12] = [
    ("channel", "true"),
    ("comments", "never"),
    ("desktop", "mention"),
    ("desktop_sound", "true"),
    ("desktop_threads", "all"),
    ("email", "true"),
    ("email_threads", "all"),
    ("first_name", "false"),
    ("mention_keys", ""),
    ("push", "mention"),
    ("push_status", "away"),
    ("push_threads", "all"),
];

/// Mattermost's default channel-member notify props.
pub const CHANNEL_DEFAULTS: [(&str, &str); 5] = [
    ("desktop", "default"),
    ("email", "default"),
    ("ignore_channel_mentions", "default"),
    ("mark_unread", "all"),
    ("push", "default"),
];

/// `props` over `defaults`: what a client sees and what the rules read.
pub fn with_defaults(props: &NotifyProps, defaults: &[(&str, &str)]) -> NotifyProps {
    let mut all: NotifyProps = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.extend(props.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// The outbox as the dispatcher reads it.
impl Reader<'_> {
    /// The dispatched mark: entries at or below it are done.
    pub fn notify_mark(&self) -> Result<u64> {
        self.meta_u64(MARK_KEY)
    }

    /// Entries waiting in the outbox (kept by apply, O(1)).
    pub fn notify_backlog(&self) -> Result<u64> {
        self.meta_u64(LEN_KEY)
    }

    pub(crate) fn meta_u64(&self, key: &[u8]) -> Result<u64> {
        Ok(self
            .get_raw(Cf::Meta, key)?
            .and_then(|raw| raw.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Up to `limit` entries after index `after`, oldest first; entries that do not decode (a
    /// newer format) are answered as `None` so the dispatcher can step over them.
    pub fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Option<OutboxEntry>)>> {
        let mut entries = Vec::new();
        let lower = after.saturating_add(1).to_be_bytes();
        self.scan(Cf::SeqNotification, &lower, None, false, |key, value| {
            let Ok(bytes) = <[u8; 8]>::try_from(key) else {
                return true;
            };
            entries.push((u64::from_be_bytes(bytes), rmp_serde::from_slice(value).ok()));
            entries.len() < limit
        })?;
        Ok(entries)
    }

    /// Every member of a channel with its notify props: the dispatcher's candidates for
    /// "all activity" and channel-wide mentions. O(members), on the leader's dispatcher only.
    pub fn all_channel_members(&self, channel: Id) -> Result<Vec<ChannelMember>> {
        let mut members = Vec::new();
        let mut failed = None;
        self.scan_prefix(
            Cf::ChannelidUseridMember,
            channel.as_bytes(),
            false,
            |_, value| {
                match rmp_serde::from_slice(value) {
                    Ok(member) => members.push(member),
                    Err(e) => failed = Some(e),
                }
                failed.is_none()
            },
        )?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(match self.channel(channel)? {
            Some(channel) => members
                .into_iter()
                .map(|m: ChannelMember| m.settled(&channel))
                .collect(),
            None => members,
        })
    }

    /// The push badge computed the long way, as Mattermost's `GetUnreadCount` (plus, with
    /// Collapsed Reply Threads, the unread mentions of followed threads): over the user's live
    /// channels, every unread message of a direct channel and the unread mentions of any other
    /// (root posts only for a CRT user), and for a CRT user the unread mentions of the followed
    /// threads of those channels whose root is not deleted. O(channels + followed threads):
    /// the dispatcher reads the counters apply keeps instead ([`Reader::badge`]); this is their
    /// reference in tests and their source when they are rebuilt ([`crate::badge`]).
    pub fn mention_badge(&self, user: Id, crt: bool) -> Result<u64> {
        let mut total = 0u64;
        let mut live = std::collections::BTreeSet::new();
        for (_, channel_id) in self.channel_ids_of_user(user)? {
            let (Some(member), Some(channel)) = (
                self.channel_member_record(channel_id, user)?,
                self.channel(channel_id)?,
            ) else {
                continue;
            };
            let member = member.settled(&channel);
            if channel.delete_at != 0 {
                continue;
            }
            live.insert(channel_id);
            total += match (channel.channel_type, crt) {
                (ChannelType::Direct, false) => {
                    channel.total_msg_count.saturating_sub(member.msg_count)
                }
                (ChannelType::Direct, true) => channel
                    .total_msg_count_root
                    .saturating_sub(member.msg_count_root),
                (_, false) => member.mention_count,
                (_, true) => member.mention_count_root,
            };
        }
        if crt {
            for unread in self.unread_thread_mentions(user)? {
                if live.contains(&unread.channel) {
                    total += unread.times.len() as u64;
                }
            }
        }
        Ok(total)
    }
}
