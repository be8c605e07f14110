//! Turning one outbox entry into the pushes it is due, by reading the leader's replica: the
//! post, its channel's members with their notify props, each candidate's devices, status and
//! badge. Runs on a blocking thread of the dispatcher, never on the posting path.
//!
//! A batch's entries are mostly posts to the same few channels, so [`BatchReads`] reads each
//! channel's members and each member's devices, record, settings and badge once per batch, not
//! once per post: a dispatcher that fell behind takes up to `push_batch` entries at once, and
//! those reads, not the pushes, were most of its planning.

use super::email::{self, EmailContext, EmailDue};
use super::payload::{self, MessageFacts, PushNotification};
use super::rules::{self, Candidate, Decision, PostFacts, Send};
use super::settings::{Contents, PushSettings};
use super::status::StatusSource;
use confab_storage::notify::{
    with_defaults, ChannelWide, OutboxEntry, CHANNEL_DEFAULTS, USER_DEFAULTS,
};
use confab_storage::{
    ChannelMember, ChannelType, Id, NotifyProps, Reader, Session, StorageError, User,
};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

/// One push to one session's device.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub user: Id,
    pub token: Id,
    pub device_id: String,
    pub push: PushNotification,
}

/// Everything one outbox entry is due.
#[derive(Debug, Default)]
pub struct Planned {
    pub pushes: Vec<Delivery>,
    pub emails: Vec<EmailDue>,
}

/// What planning reads besides the replica.
pub struct Context<'a> {
    pub settings: &'a PushSettings,
    /// Whether pushes are sent at all (a proxy is configured and push is on).
    pub push: bool,
    /// Email settings when email notifications are on.
    pub email: Option<EmailContext<'a>>,
    pub status: &'a dyn StatusSource,
    pub server_id: &'a str,
    pub now: u64,
}

/// What one batch's planning has read, by channel and by user.
///
/// Every entry of a batch was applied before planning began, so a badge read for the first
/// entry already counts the posts of the later ones: reading it once answers what reading it
/// per post answered. Members, devices and settings can change while a batch is planned; a
/// batch sees them as they were at its first read, as a single read per post would have seen
/// them a few milliseconds apart.
#[derive(Default)]
pub struct BatchReads {
    members: HashMap<Id, Rc<Vec<ChannelMember>>>,
    sessions: HashMap<Id, Rc<[Session]>>,
    recipients: HashMap<Id, Option<Rc<Recipient>>>,
    badges: HashMap<Id, u64>,
}

/// A live user who may be notified, with what every decision about them reads.
pub struct Recipient {
    pub user: User,
    /// Their notify props with Mattermost's defaults filled in.
    pub props: NotifyProps,
    /// Collapsed Reply Threads on.
    pub crt: bool,
}

impl BatchReads {
    fn members(
        &mut self,
        reader: &Reader,
        channel: Id,
    ) -> Result<Rc<Vec<ChannelMember>>, StorageError> {
        cached(&mut self.members, channel, || {
            Ok(Rc::new(reader.all_channel_members(channel)?))
        })
    }

    fn sessions(
        &mut self,
        reader: &Reader,
        user: Id,
        now: u64,
    ) -> Result<Rc<[Session]>, StorageError> {
        cached(&mut self.sessions, user, || {
            Ok(device_sessions(reader, user, now)?.into())
        })
    }

    /// The user if they exist and are active.
    fn recipient(
        &mut self,
        reader: &Reader,
        user: Id,
    ) -> Result<Option<Rc<Recipient>>, StorageError> {
        cached(&mut self.recipients, user, || {
            Ok(match reader.user(user)? {
                Some(user) if user.delete_at == 0 => Some(Rc::new(Recipient {
                    props: with_defaults(&user.notify_props, &USER_DEFAULTS),
                    crt: crt_enabled(reader, user.id)?,
                    user,
                })),
                _ => None,
            })
        })
    }

    fn badge(&mut self, reader: &Reader, user: Id, crt: bool) -> Result<u64, StorageError> {
        cached(&mut self.badges, user, || reader.badge(user, crt))
    }
}

/// The value `read` answers for `key`, read once per map.
fn cached<V: Clone>(
    map: &mut HashMap<Id, V>,
    key: Id,
    read: impl FnOnce() -> Result<V, StorageError>,
) -> Result<V, StorageError> {
    if let Some(found) = map.get(&key) {
        return Ok(found.clone());
    }
    let found = read()?;
    map.insert(key, found.clone());
    Ok(found)
}

/// The user's unexpired sessions that carry a device id.
pub fn device_sessions(reader: &Reader, user: Id, now: u64) -> Result<Vec<Session>, StorageError> {
    Ok(reader
        .sessions_of(user)?
        .into_iter()
        .filter(|s| !s.device_id.is_empty() && s.expires_at > now)
        .collect())
}

/// Collapsed Reply Threads for this user: the server's default is off (`CollapsedThreads:
/// default_off`), so it is on only where the user turned it on.
pub fn crt_enabled(reader: &Reader, user: Id) -> Result<bool, StorageError> {
    Ok(reader
        .preference(user, "display_settings", "collapsed_reply_threads")?
        .is_some_and(|p| p.value == "on"))
}

/// The pushes and emails one entry is due; `reads` carries what earlier entries of the same
/// batch read.
pub fn plan(
    reader: &Reader,
    entry: &OutboxEntry,
    cx: &Context,
    reads: &mut BatchReads,
) -> Result<Planned, StorageError> {
    match entry {
        OutboxEntry::Clear {
            user_id,
            channel_id,
            root_id,
        } => to_own_devices(reader, *user_id, cx, reads, |badge, crt| {
            payload::clear(cx.server_id, *channel_id, *root_id, badge, crt)
        }),
        OutboxEntry::UpdateBadge { user_id } => {
            to_own_devices(reader, *user_id, cx, reads, |badge, _| {
                payload::update_badge(cx.server_id, badge)
            })
        }
        OutboxEntry::Post {
            post_id,
            channel_id,
            sender_id,
            root_id,
            mentioned,
            channel_wide,
            followers,
        } => {
            let (Some(post), Some(channel), Some(sender)) = (
                reader.post(*post_id)?,
                reader.channel(*channel_id)?,
                reader.user(*sender_id)?,
            ) else {
                return Ok(Planned::default());
            };
            if post.delete_at != 0 || channel.delete_at != 0 {
                return Ok(Planned::default());
            }
            let members = reads.members(reader, channel.id)?;
            let facts = PostFacts {
                channel_id: channel.id,
                channel_type: channel.channel_type,
                sender: *sender_id,
                is_reply: !root_id.is_none(),
                is_system: post.post_type.starts_with("system_"),
                channel_wide: *channel_wide,
                member_count: members.len(),
                cap: cx.settings.max_notifications_per_channel,
            };
            let mentioned: BTreeSet<Id> = mentioned.iter().copied().collect();
            let followers: BTreeSet<Id> = followers.iter().copied().collect();
            let text = payload_text(cx, &post);
            let mut planned = Planned::default();
            let group = matches!(
                channel.channel_type,
                ChannelType::Direct | ChannelType::Group
            );
            for member in members.iter() {
                if member.user_id == *sender_id {
                    continue;
                }
                // Most members have no device and are not mentioned: those are the cheapest
                // tests, so they go first.
                let sessions = if cx.push {
                    reads.sessions(reader, member.user_id, cx.now)?
                } else {
                    Rc::from([])
                };
                let email_candidate = cx.email.is_some()
                    && (group
                        || *channel_wide != ChannelWide::None
                        || mentioned.contains(&member.user_id)
                        || followers.contains(&member.user_id));
                if sessions.is_empty() && !email_candidate {
                    continue;
                }
                let Some(recipient) = reads.recipient(reader, member.user_id)? else {
                    continue;
                };
                let user = &recipient.user;
                let channel_props = with_defaults(&member.notify_props, &CHANNEL_DEFAULTS);
                let candidate = Candidate {
                    user: user.id,
                    user_props: &recipient.props,
                    channel_props: &channel_props,
                    status: cx.status.status(user.id),
                    crt: recipient.crt,
                    explicit: mentioned.contains(&user.id),
                    follower: followers.contains(&user.id),
                };
                if let Some(email) = &cx.email {
                    if email_candidate && email::decide(&facts, &candidate, user) {
                        let due = email::schedule(reader, email, &post, &channel, &sender, user)?;
                        planned.emails.extend(due);
                    }
                }
                if sessions.is_empty() {
                    continue;
                }
                let Decision::Send(why) = rules::decide(&facts, &candidate, cx.now) else {
                    continue;
                };
                let badge = reads.badge(reader, user.id, recipient.crt)?;
                let push = message_for(
                    cx,
                    &post,
                    &text,
                    &channel,
                    &sender,
                    user,
                    why,
                    recipient.crt,
                    badge,
                );
                planned.pushes.extend(to_devices(user.id, &sessions, &push));
            }
            Ok(planned)
        }
    }
}

/// A push about the user's own reading (`clear`, `update_badge`) to each of their devices,
/// made by `push` from their badge and CRT setting; nothing when push is off, they have no
/// device, or they are gone.
fn to_own_devices(
    reader: &Reader,
    user: Id,
    cx: &Context,
    reads: &mut BatchReads,
    push: impl FnOnce(u64, bool) -> PushNotification,
) -> Result<Planned, StorageError> {
    if !cx.push {
        return Ok(Planned::default());
    }
    let sessions = reads.sessions(reader, user, cx.now)?;
    if sessions.is_empty() {
        return Ok(Planned::default());
    }
    let Some(recipient) = reads.recipient(reader, user)? else {
        return Ok(Planned::default());
    };
    let badge = reads.badge(reader, user, recipient.crt)?;
    Ok(Planned {
        pushes: to_devices(user, &sessions, &push(badge, recipient.crt)),
        emails: Vec::new(),
    })
}

/// The post's `full` push text, once per post (other contents modes do not show it).
fn payload_text(cx: &Context, post: &confab_storage::Post) -> String {
    if cx.settings.contents == Contents::Full {
        super::plain::push_text(&post.message, &post.props)
    } else {
        String::new()
    }
}

#[allow(clippy::too_many_arguments)]
fn message_for(
    cx: &Context,
    post: &confab_storage::Post,
    text: &str,
    channel: &confab_storage::Channel,
    sender: &User,
    recipient: &User,
    why: Send,
    crt: bool,
    badge: u64,
) -> PushNotification {
    payload::message(
        cx.settings.contents,
        cx.server_id,
        &MessageFacts {
            post,
            text,
            channel,
            sender,
            recipient: recipient.id,
            why,
            crt,
            badge,
        },
    )
}

/// The full notification an `id_loaded` ack asks for (`POST /notifications/ack`).
pub fn full_for_ack(
    reader: &Reader,
    post_id: Id,
    user: Id,
    server_id: &str,
) -> Result<Option<PushNotification>, StorageError> {
    let Some(post) = reader.post(post_id)? else {
        return Ok(None);
    };
    let (Some(channel), Some(sender)) =
        (reader.channel(post.channel_id)?, reader.user(post.user_id)?)
    else {
        return Ok(None);
    };
    let crt = crt_enabled(reader, user)?;
    let badge = reader.badge(user, crt)?;
    let text = super::plain::push_text(&post.message, &post.props);
    Ok(Some(payload::message(
        Contents::Full,
        server_id,
        &MessageFacts {
            post: &post,
            text: &text,
            channel: &channel,
            sender: &sender,
            recipient: user,
            why: Send {
                explicit: false,
                channel_wide: false,
                crt_reply: crt && !post.is_root(),
            },
            crt,
            badge,
        },
    )))
}

fn to_devices(user: Id, sessions: &[Session], push: &PushNotification) -> Vec<Delivery> {
    sessions
        .iter()
        .map(|s| Delivery {
            user,
            token: s.token,
            device_id: s.device_id.clone(),
            push: payload::for_device(push.clone(), &s.device_id),
        })
        .collect()
}
