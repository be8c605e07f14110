//! Email notifications, the second delivery channel of the dispatcher (`crate::mail` sends
//! and renders them).
//!
//! Who gets an email for a post (Mattermost's `sendNotificationEmail` and `userAllowsEmail`):
//! the mentioned — `@username`, `@channel`/`@all`/`@here` where they count, the other person
//! of a direct message, every member of a group message — and, with Collapsed Reply Threads,
//! followers of the thread whose `email` is `"true"` and who are mentioned or chose
//! `email_threads: all`; never the author, a bot or a deactivated user; only when their `email`
//! prop allows it (the channel member's `email` overrides the user's unless `default`, except
//! for thread replies), the channel is not muted, and their status is neither online nor DND
//! (away and offline qualify).
//!
//! When: immediately, unless email batching is on and the user has not asked for immediate
//! mail (preference `notifications`/`email_interval` = `"30"`); then the email waits in the
//! replicated queue (`confab_storage::email_queue`) for the user's interval, and [`Batcher`]
//! sends one digest — or nothing, for channels the user has read meanwhile.
//!
//! Exactly once: immediate emails are sent by the dispatcher with the batch's pushes, before
//! the batch's one mark commits, so they share its bound — after a leader crash at most that
//! batch is mailed again. Queued entries are written by the same mark write (and only if the
//! mark advances, so a deposed leader queues nothing). A digest is sent before its entries'
//! removal commits: a crash between repeats at most the digests of that round.

use super::rules::{channel_wide_counts, prop, Candidate, PostFacts};
use super::status::StatusKind;
use crate::mail::batch::{self, Interval};
use crate::mail::render::{self, ChannelKind, MailPost, Site};
use crate::mail::{EmailSettings, MailError, Mailer};
use confab_raft::RaftNode;
use confab_storage::email_queue::{QueuedEmail, MAX_ENTRIES};
use confab_storage::{Channel, ChannelType, Command, Engine, Id, Post, Reader, StorageError, User};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Batched entries queued at most; past it, emails go out at once (as Mattermost does when
/// its batching buffer is full), so the queue can never grow without bound.
pub const MAX_QUEUED: u64 = 100_000;

/// Whether this candidate gets an email about the post (see the module doc).
pub fn decide(post: &PostFacts, c: &Candidate, user: &User) -> bool {
    if c.user == post.sender || post.is_system || user.is_bot || user.delete_at != 0 {
        return false;
    }
    let dm = post.channel_type == ChannelType::Direct;
    let gm = post.channel_type == ChannelType::Group;
    let mentioned = c.explicit || dm || gm || channel_wide_counts(post, c);
    let thread_reply = post.is_reply && c.crt;
    let follows = thread_reply
        && c.follower
        && prop(c.user_props, "email") == "true"
        && (mentioned || prop(c.user_props, "email_threads") == "all");
    if !mentioned && !follows {
        return false;
    }
    let user_allows = prop(c.user_props, "email") != "false";
    let allows = match prop(c.channel_props, "email") {
        _ if thread_reply => user_allows,
        "true" => true,
        "false" => false,
        _ => user_allows,
    };
    allows
        && prop(c.channel_props, "mark_unread") != "mention"
        && !matches!(
            c.status.status,
            StatusKind::Online | StatusKind::Dnd | StatusKind::Ooo
        )
}

/// One email the dispatcher decided on.
#[derive(Debug, Clone)]
pub enum EmailDue {
    /// Sent with this batch.
    Now(OutgoingMail),
    /// Waits in the user's batch.
    Queued(QueuedEmail),
}

/// An email about one post, ready to render.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to_name: String,
    pub to_address: String,
    pub post: MailPost,
}

/// What planning an email needs besides the replica.
pub struct EmailContext<'a> {
    pub settings: &'a EmailSettings,
    /// Entries in the queue when the batch was read.
    pub queued: u64,
}

/// A user's chosen interval.
pub fn interval_of(
    reader: &Reader,
    user: Id,
    settings: &EmailSettings,
) -> Result<Interval, StorageError> {
    let chosen = reader.preference(user, batch::PREFERENCE_CATEGORY, batch::PREFERENCE_NAME)?;
    Ok(batch::interval(
        chosen.as_ref().map(|p| p.value.as_str()),
        settings.batching_default_interval,
    ))
}

/// How an email due for `user` leaves: now, queued, or (interval "never") not at all.
pub fn schedule(
    reader: &Reader,
    cx: &EmailContext,
    post: &Post,
    channel: &Channel,
    sender: &User,
    user: &User,
) -> Result<Option<EmailDue>, StorageError> {
    let interval = if cx.settings.batching {
        interval_of(reader, user.id, cx.settings)?
    } else {
        Interval::Immediate
    };
    match interval {
        Interval::Never => Ok(None),
        Interval::Every(_) if cx.queued < MAX_QUEUED => Ok(Some(EmailDue::Queued(QueuedEmail {
            user_id: user.id,
            create_at: post.create_at,
            post_id: post.id,
            channel_id: channel.id,
        }))),
        _ => Ok(Some(EmailDue::Now(OutgoingMail {
            to_name: user.username.clone(),
            to_address: user.email.clone(),
            post: mail_post(reader, post, channel, sender, user)?,
        }))),
    }
}

/// The post as an email to `recipient` tells it. Links need a team: the channel's, or for a
/// direct or group message the recipient's first team (Mattermost's choice too).
pub fn mail_post(
    reader: &Reader,
    post: &Post,
    channel: &Channel,
    sender: &User,
    recipient: &User,
) -> Result<MailPost, StorageError> {
    let team = if channel.team_id.is_none() {
        reader.teams_of_user(recipient.id)?.into_iter().next()
    } else {
        reader.team(channel.team_id)?
    };
    let (team, team_display) = match team {
        Some(t) => (t.name, t.display_name),
        None => ("select_team".to_string(), String::new()),
    };
    let (kind, channel_name) = match channel.channel_type {
        ChannelType::Direct => (ChannelKind::Direct, sender.username.clone()),
        ChannelType::Group => (ChannelKind::Group, channel.display_name.clone()),
        _ => (ChannelKind::Other, channel.display_name.clone()),
    };
    Ok(MailPost {
        post_id: post.id.to_base32(),
        root_id: if post.root_id.is_none() {
            String::new()
        } else {
            post.root_id.to_base32()
        },
        create_at: post.create_at,
        message: post.message.clone(),
        sender: sender.username.clone(),
        channel: channel_name,
        kind,
        team,
        team_display,
    })
}

/// Sends one email, retrying transient SMTP failures a few times.
pub async fn send_one(mailer: &Mailer, site: &Site, mail: &OutgoingMail) -> bool {
    let message = match mailer
        .envelope(&mail.to_name, &mail.to_address)
        .and_then(|envelope| Ok(render::notification(site, &envelope, &mail.post)?))
    {
        Ok(message) => message,
        Err(e) => {
            tracing::info!(to = %mail.to_address, "email not built: {e}");
            metrics::counter!("confab_email_failed_total").increment(1);
            return false;
        }
    };
    send_with_retries(mailer, message).await
}

/// Attempts at most, and the first delay (doubled each time), for one email.
const ATTEMPTS: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(200);

async fn send_with_retries(mailer: &Mailer, message: lettre::Message) -> bool {
    let mut delay = FIRST_DELAY;
    for attempt in 1..=ATTEMPTS {
        match mailer.send(message.clone()).await {
            Ok(()) => {
                metrics::counter!("confab_email_sent_total").increment(1);
                return true;
            }
            Err(MailError::Smtp(e)) if !e.is_permanent() && attempt < ATTEMPTS => {
                metrics::counter!("confab_email_retried_total").increment(1);
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::info!("email not delivered: {e}");
                break;
            }
        }
    }
    metrics::counter!("confab_email_failed_total").increment(1);
    false
}

/// The leader's digest sender: every `email_batching_interval` it reads the queue, decides per
/// user ([`batch::decide`]), mails the digests that are due and commits their removal.
pub struct Batcher {
    pub raft: RaftNode,
    pub engine: Arc<Engine>,
    pub settings: EmailSettings,
    pub mailer: Arc<Mailer>,
    pub site: Site,
}

/// One digest to send.
struct Digest {
    to_name: String,
    to_address: String,
    posts: Vec<MailPost>,
}

impl Batcher {
    pub fn spawn(self) {
        let batcher = Arc::new(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(batcher.settings.batching_interval).await;
                if !batcher.raft.is_leader() {
                    continue;
                }
                if let Err(e) = batcher.round().await {
                    tracing::warn!("email batching: {e}");
                }
            }
        });
    }

    /// One look at the whole queue.
    async fn round(self: &Arc<Self>) -> Result<(), String> {
        let me = self.clone();
        let (digests, remove) = tokio::task::spawn_blocking(move || me.decide_all())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        for digest in digests {
            let envelope = match self.mailer.envelope(&digest.to_name, &digest.to_address) {
                Ok(envelope) => envelope,
                Err(e) => {
                    tracing::info!("digest not built: {e}");
                    continue;
                }
            };
            match render::digest(&self.site, &envelope, &digest.posts) {
                Ok(message) => {
                    send_with_retries(&self.mailer, message).await;
                }
                Err(e) => tracing::info!("digest not built: {e}"),
            }
        }
        for chunk in remove.chunks(MAX_ENTRIES) {
            self.raft
                .write(Command::EmailsSent {
                    entries: chunk.to_vec(),
                })
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Reads the queue and decides for every user in it.
    fn decide_all(&self) -> Result<(Vec<Digest>, Vec<QueuedEmail>), StorageError> {
        let reader = self.engine.reader();
        let now = crate::clock::now_ms();
        let mut by_user: BTreeMap<Id, Vec<QueuedEmail>> = BTreeMap::new();
        let mut after: Option<QueuedEmail> = None;
        loop {
            let page = reader.queued_emails(after.as_ref(), MAX_ENTRIES)?;
            let Some(last) = page.last().copied() else {
                break;
            };
            for entry in page {
                by_user.entry(entry.user_id).or_default().push(entry);
            }
            after = Some(last);
        }
        let mut digests = Vec::new();
        let mut remove = Vec::new();
        for (user_id, entries) in by_user {
            let Some(user) = reader.user(user_id)? else {
                remove.extend(entries);
                continue;
            };
            let interval = interval_of(&reader, user_id, &self.settings)?;
            let decision = batch::decide(&entries, interval, now, |channel| {
                reader
                    .channel_member_record(channel, user_id)
                    .ok()
                    .flatten()
                    .map(|m| m.last_viewed_at)
            });
            let mut posts = Vec::new();
            for entry in &decision.send {
                let Some(post) = reader.post(entry.post_id)?.filter(|p| p.delete_at == 0) else {
                    continue;
                };
                let (Some(channel), Some(sender)) =
                    (reader.channel(post.channel_id)?, reader.user(post.user_id)?)
                else {
                    continue;
                };
                posts.push(mail_post(&reader, &post, &channel, &sender, &user)?);
            }
            if !posts.is_empty() && user.delete_at == 0 {
                digests.push(Digest {
                    to_name: user.username.clone(),
                    to_address: user.email.clone(),
                    posts,
                });
            }
            remove.extend(decision.remove);
        }
        Ok((digests, remove))
    }
}
