//! Events: built once from an applied [`Outcome`], serialized once (everything but the `seq`),
//! and routed to an [`Audience`]. A frame for one connection is the shared prefix plus the
//! connection's seq digits plus `}`; no JSON is encoded per recipient. The one exception is
//! Mattermost's per-recipient fields of `posted` (its `add_mentions` and `add_followers`
//! broadcast hooks): a mentioned member or a thread follower finds `mentions` / `followers`
//! naming just themselves, spliced in at the start of `data` ([`ForRecipient`]), so a
//! channel-wide mention in a 2,000-member channel does not put 2,000 ids in every frame.

pub use super::audience::Audience;
use super::audience::MemberCache;
use super::conn::frame_header;
use crate::views;
use bytes::Bytes;
use confab_storage::emoji::Emoji;
use confab_storage::{
    Applied, Channel, ChannelType, Engine, Id, Outcome, Post, Posted, StorageError, ThreadItem,
};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};

/// Renders an event's prefix the first time a frame needs it.
type Render = Box<dyn FnOnce() -> Bytes + Send>;

/// One serialized event, shared by every recipient.
pub struct Event {
    /// `{"event":…,"data":…,"broadcast":…,"seq":` — the frame up to the seq digits.
    prefix: OnceLock<Bytes>,
    /// For a lazy event, what renders `prefix`; taken by the first frame.
    render: Mutex<Option<Render>>,
    /// Typing and viewed-class events: the first to go when a connection falls behind.
    pub droppable: bool,
    /// The event name, for logs and tests.
    pub name: &'static str,
    /// What this event holds in memory, rendered or not (an estimate fixed at creation, so
    /// the hub's byte bounds add and subtract the same figure).
    bytes: usize,
    /// Fields that name the recipient, for the events that have them.
    for_recipient: Option<Box<ForRecipient>>,
}

/// Who finds themselves named in a `posted` frame: Mattermost sends `mentions` and `followers`
/// as a JSON text holding only the recipient's own id, when it is among them.
#[derive(Debug, Default)]
pub struct ForRecipient {
    /// Members the post names, sorted.
    pub mentions: Vec<Id>,
    /// A channel-wide mention: every recipient but this one (the author) and `not_wide` is
    /// mentioned.
    pub everyone_but: Option<Id>,
    /// Members a channel-wide mention does not mention (they turned them off), sorted.
    pub not_wide: Vec<Id>,
    /// Thread followers, sorted.
    pub followers: Vec<Id>,
}

impl ForRecipient {
    /// `"mentions":"[\"<user>\"]",` and/or the same for `followers`, or nothing.
    fn fields(&self, user: Id) -> Option<Vec<u8>> {
        let mentioned = self
            .everyone_but
            .is_some_and(|author| author != user && self.not_wide.binary_search(&user).is_err())
            || self.mentions.binary_search(&user).is_ok();
        let following = self.followers.binary_search(&user).is_ok();
        if !mentioned && !following {
            return None;
        }
        let id = views::id(user);
        let mut out = Vec::with_capacity(96);
        for (name, named) in [("mentions", mentioned), ("followers", following)] {
            if named {
                out.extend_from_slice(b"\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":\"[\\\"");
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(b"\\\"]\",");
            }
        }
        Some(out)
    }
}

/// Bytes of an event beyond its JSON: the struct, its `Arc` and the lazy closure's box.
const EVENT_OVERHEAD_BYTES: usize = std::mem::size_of::<Event>() + 64;

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("rendered", &self.prefix.get().is_some())
            .field("droppable", &self.droppable)
            .finish()
    }
}

/// Where an event's `data` object opens in its prefix: just after `{"event":"<name>","data":{`.
fn data_start(name: &str) -> usize {
    "{\"event\":\"".len() + name.len() + "\",\"data\":{".len()
}

/// The frame up to the seq digits.
fn render_prefix(name: &str, data: &Value, broadcast: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"{\"event\":\"");
    // Event names are fixed ASCII identifiers: no escaping needed.
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\",\"data\":");
    // Writing a `Value` into a Vec cannot fail (no I/O, string keys only).
    let _ = serde_json::to_writer(&mut buf, data);
    buf.extend_from_slice(b",\"broadcast\":");
    let _ = serde_json::to_writer(&mut buf, broadcast);
    buf.extend_from_slice(b",\"seq\":");
    Bytes::from(buf)
}

impl Event {
    pub fn new(name: &'static str, data: Value, broadcast: Value, droppable: bool) -> Event {
        let prefix = render_prefix(name, &data, &broadcast);
        Event {
            bytes: EVENT_OVERHEAD_BYTES + prefix.len(),
            prefix: OnceLock::from(prefix),
            render: Mutex::new(None),
            droppable,
            name,
            for_recipient: None,
        }
    }

    /// This event with fields that name each recipient. `data` must be a non-empty object.
    pub fn naming_recipients(mut self, for_recipient: ForRecipient) -> Event {
        self.bytes += 40
            * (for_recipient.mentions.len()
                + for_recipient.not_wide.len()
                + for_recipient.followers.len());
        self.for_recipient = Some(Box::new(for_recipient));
        self
    }

    /// An event whose JSON is built on its first frame. Every node builds every event (a client
    /// may resume on any node), but most nodes have no recipient connected for most of them: a
    /// write-heavy node then never pays for the serialization. `build` must depend only on what
    /// it captured, so that every node renders the same bytes. `captured_bytes` estimates what
    /// `build` holds; the rendered JSON is counted as about as much again.
    pub fn lazy(
        name: &'static str,
        droppable: bool,
        captured_bytes: usize,
        build: impl FnOnce() -> (Value, Value) + Send + 'static,
    ) -> Event {
        let render: Render = Box::new(move || {
            let (data, broadcast) = build();
            render_prefix(name, &data, &broadcast)
        });
        Event {
            prefix: OnceLock::new(),
            render: Mutex::new(Some(render)),
            droppable,
            name,
            bytes: EVENT_OVERHEAD_BYTES + 2 * captured_bytes,
            for_recipient: None,
        }
    }

    fn prefix(&self) -> &Bytes {
        self.prefix.get_or_init(|| match self.render.lock().take() {
            Some(render) => render(),
            None => Bytes::new(),
        })
    }

    /// What this event holds in memory (an estimate, fixed at creation).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the JSON has been built (a lazy event before its first frame has not).
    #[cfg(test)]
    pub fn is_rendered(&self) -> bool {
        self.prefix.get().is_some()
    }

    /// Length of the full frame payload with `seq`.
    pub fn frame_len(&self, seq: u64) -> usize {
        self.prefix().len() + digits(seq) + 1
    }

    /// Appends the full event JSON with `seq` spliced in, as a frame for no one in particular.
    pub fn write_with_seq(&self, seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix());
        push_u64(seq, out);
        out.push(b'}');
    }

    /// Appends `user`'s text frame: its header, then the event JSON with `seq` and, for an
    /// event that names recipients, `user`'s own fields spliced in.
    pub fn write_frame(&self, seq: u64, user: Id, out: &mut Vec<u8>) {
        let fields = self.for_recipient.as_ref().and_then(|f| f.fields(user));
        let prefix = self.prefix();
        let at = data_start(self.name);
        match fields {
            Some(fields) if prefix.get(at - 1) == Some(&b'{') => {
                let len = prefix.len() + fields.len() + digits(seq) + 1;
                frame_header(0x1, len, out);
                out.extend_from_slice(&prefix[..at]);
                out.extend_from_slice(&fields);
                out.extend_from_slice(&prefix[at..]);
                push_u64(seq, out);
                out.push(b'}');
            }
            _ => {
                frame_header(0x1, self.frame_len(seq), out);
                self.write_with_seq(seq, out);
            }
        }
    }
}

/// Decimal digits of `n`.
pub fn digits(mut n: u64) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}

/// Appends `n` in decimal without allocating.
pub fn push_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Mattermost's `broadcast` object.
pub fn broadcast(
    user_id: Option<Id>,
    channel_id: Option<Id>,
    team_id: Option<Id>,
    omit: Option<Id>,
) -> Value {
    let omit_users = match omit {
        Some(user) => {
            let mut map = Map::new();
            map.insert(views::id(user), Value::Bool(true));
            Value::Object(map)
        }
        None => Value::Null,
    };
    let text = |id: Option<Id>| id.map(views::opt_id).unwrap_or_default();
    json!({
        "omit_users": omit_users,
        "user_id": text(user_id),
        "channel_id": text(channel_id),
        "team_id": text(team_id),
        "connection_id": "",
        "omit_connection_id": "",
    })
}

/// The `hello` event of a new connection stream (seq 0).
pub fn hello(user: Id, connection_id: &str, server_version: &str) -> Event {
    Event::new(
        "hello",
        json!({"connection_id": connection_id, "server_version": server_version}),
        broadcast(Some(user), None, None, None),
        false,
    )
}

/// An event and its audience, from one log entry.
#[derive(Debug, Clone)]
pub struct Routed {
    pub audience: Audience,
    pub event: Arc<Event>,
}

/// Something other than an event that an applied entry asks of the sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Close the sockets authenticated with this session token.
    SessionRevoked { user: Id, token: Id },
}

/// What one applied entry produces.
#[derive(Debug, Default)]
pub struct EntryEvents {
    pub index: u64,
    pub routed: Vec<Routed>,
    pub controls: Vec<Control>,
}

/// Builds events from outcomes, in log order. Holds the channel-membership cache that makes
/// audiences cheap (one shared version of a channel's member set until its membership
/// changes); it is updated from the outcomes themselves, so once a channel is cached its
/// membership follows the log exactly.
pub struct EventBuilder {
    members: MemberCache,
}

impl Default for EventBuilder {
    fn default() -> Self {
        EventBuilder::new(DEFAULT_MEMBER_CACHE_IDS)
    }
}

/// Default bound of the membership cache, in member ids across all channels (16 bytes each
/// plus tree overhead: about 100 MB at 4M).
pub const DEFAULT_MEMBER_CACHE_IDS: usize = 4_000_000;

impl EventBuilder {
    /// A builder whose membership cache holds at most `member_cache_ids` ids.
    pub fn new(member_cache_ids: usize) -> EventBuilder {
        EventBuilder {
            members: MemberCache::new(member_cache_ids),
        }
    }

    /// Ids held by the membership cache (for `/metrics`).
    pub fn cached_member_ids(&self) -> usize {
        self.members.cached_ids()
    }

    /// Events of entry `position` of `batch`. Storage failures while building are the caller's
    /// to log; the entry then produces no event.
    pub fn build(
        &mut self,
        engine: &Engine,
        batch: &[Applied],
        position: usize,
    ) -> Result<EntryEvents, StorageError> {
        let mut out = EntryEvents {
            index: batch.get(position).map(|a| a.index).unwrap_or(0),
            ..EntryEvents::default()
        };
        let Some(Applied {
            result: Ok(outcome),
            ..
        }) = batch.get(position)
        else {
            return Ok(out);
        };
        // Audiences are the memberships after the entry (a user added hears `user_added`).
        self.members.follow(outcome);
        self.build_outcome(engine, batch, position, outcome, &mut out)?;
        Ok(out)
    }

    fn channel_audience(
        &mut self,
        engine: &Engine,
        batch: &[Applied],
        position: usize,
        channel: &Channel,
        omit: Option<Id>,
    ) -> Result<Audience, StorageError> {
        Ok(Audience::Members {
            members: self.members.members(engine, channel.id, batch, position)?,
            omit,
        })
    }

    /// A team's members: its town-square holds every one of them.
    fn team_audience(
        &mut self,
        engine: &Engine,
        batch: &[Applied],
        position: usize,
        team: Id,
    ) -> Result<Option<Audience>, StorageError> {
        let Some(town) = engine.reader().channel_by_name(team, "town-square")? else {
            return Ok(None);
        };
        Ok(Some(
            self.channel_audience(engine, batch, position, &town, None)?,
        ))
    }

    fn build_outcome(
        &mut self,
        engine: &Engine,
        batch: &[Applied],
        position: usize,
        outcome: &Outcome,
        out: &mut EntryEvents,
    ) -> Result<(), StorageError> {
        let mut push = |audience: Audience, event: Event| {
            out.routed.push(Routed {
                audience,
                event: Arc::new(event),
            })
        };
        match outcome {
            Outcome::Posted(posted) => {
                let audience =
                    self.channel_audience(engine, batch, position, &posted.channel, None)?;
                let reader = engine.reader();
                let sender = reader.user(posted.post.user_id)?;
                let emojis = reader.emoji_used_in(&posted.post.message, &[])?;
                drop(reader);
                push(
                    audience,
                    posted_event(posted, sender.as_ref().map(|u| u.username.as_str()), emojis),
                );
                for event in thread_updated_events(engine, posted)? {
                    push(Audience::User(event.0), event.1);
                }
            }
            Outcome::PostEdited { post, channel } => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                // An edited post keeps its reactions, and clients replace the whole post.
                let facts = stored_facts(engine, post)?;
                push(
                    audience,
                    post_event("post_edited", post, facts.parts(post), channel),
                );
            }
            Outcome::PostDeleted { post, channel, .. } => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(
                    audience,
                    post_event("post_deleted", post, views::PostParts::default(), channel),
                );
            }
            Outcome::ReactionAdded {
                reaction, channel, ..
            }
            | Outcome::ReactionRemoved {
                reaction, channel, ..
            } => {
                let name = if matches!(outcome, Outcome::ReactionAdded { .. }) {
                    "reaction_added"
                } else {
                    "reaction_removed"
                };
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(
                    audience,
                    Event::new(
                        name,
                        json!({"reaction": views::reaction(reaction).to_string()}),
                        broadcast(None, Some(channel.id), None, None),
                        false,
                    ),
                );
            }
            Outcome::ChannelViewed { channel, member } => {
                let mut times = Map::new();
                times.insert(views::id(channel.id), json!(member.last_viewed_at));
                push(
                    Audience::User(member.user_id),
                    Event::new(
                        "multiple_channels_viewed",
                        json!({"channel_times": times}),
                        broadcast(Some(member.user_id), None, None, None),
                        true,
                    ),
                );
            }
            Outcome::PostMarkedUnread {
                channel,
                member,
                post_id,
            } => {
                push(
                    Audience::User(member.user_id),
                    Event::new(
                        "post_unread",
                        json!({
                            "team_id": views::opt_id(channel.team_id),
                            "channel_id": views::id(channel.id),
                            "msg_count": member.msg_count,
                            "msg_count_root": member.msg_count_root,
                            "mention_count": member.mention_count,
                            "mention_count_root": member.mention_count_root,
                            "urgent_mention_count": member.urgent_mention_count,
                            "last_viewed_at": member.last_viewed_at,
                            "post_id": views::id(*post_id),
                        }),
                        broadcast(
                            Some(member.user_id),
                            Some(channel.id),
                            Some(channel.team_id),
                            None,
                        ),
                        false,
                    ),
                );
            }
            Outcome::ThreadReadChanged { thread, membership } => {
                let user = membership.membership.user_id;
                push(
                    Audience::User(user),
                    Event::new(
                        "thread_read_changed",
                        json!({
                            "thread_id": views::id(thread.root_id),
                            "timestamp": membership.last_viewed,
                            "unread_mentions": membership.unread_mentions,
                            "unread_replies": membership.unread_replies,
                            "channel_id": views::id(thread.channel_id),
                        }),
                        broadcast(Some(user), None, Some(thread.team_id), None),
                        false,
                    ),
                );
            }
            Outcome::ThreadFollowChanged { thread, membership } => {
                let user = membership.membership.user_id;
                push(
                    Audience::User(user),
                    Event::new(
                        "thread_follow_changed",
                        json!({
                            "thread_id": views::id(thread.root_id),
                            "state": membership.membership.following,
                            "reply_count": thread.reply_count,
                        }),
                        broadcast(Some(user), None, Some(thread.team_id), None),
                        false,
                    ),
                );
            }
            Outcome::AllThreadsRead {
                user_id,
                team_id,
                at,
            } => {
                push(
                    Audience::User(*user_id),
                    Event::new(
                        "thread_read_changed",
                        json!({"timestamp": at}),
                        broadcast(Some(*user_id), None, Some(*team_id), None),
                        false,
                    ),
                );
            }
            Outcome::ChannelMemberAdded {
                channel,
                member,
                existed: false,
            } => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(audience, user_added(channel, member.user_id));
            }
            Outcome::TeamMemberAdded {
                member,
                channels,
                existed: false,
            } => {
                push(
                    Audience::User(member.user_id),
                    Event::new(
                        "added_to_team",
                        json!({"team_id": views::id(member.team_id), "user_id": views::id(member.user_id)}),
                        broadcast(Some(member.user_id), None, None, None),
                        false,
                    ),
                );
                for (channel, channel_member) in channels {
                    let audience = self.channel_audience(engine, batch, position, channel, None)?;
                    push(audience, user_added(channel, channel_member.user_id));
                }
            }
            Outcome::ChannelMemberRemoved { channel, user_id } => {
                let event = Arc::new(Event::new(
                    "user_removed",
                    json!({"channel_id": views::id(channel.id), "remover_id": "", "user_id": views::id(*user_id)}),
                    broadcast(None, Some(channel.id), None, None),
                    false,
                ));
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                // The removed user is no longer a member but is told too.
                let removed_is_member = audience.contains(*user_id);
                out.routed.push(Routed {
                    audience,
                    event: event.clone(),
                });
                if !removed_is_member {
                    out.routed.push(Routed {
                        audience: Audience::User(*user_id),
                        event,
                    });
                }
            }
            Outcome::ChannelCreated {
                channel,
                members,
                existed: false,
            } => match channel.channel_type {
                ChannelType::Open | ChannelType::Private => push(
                    Audience::User(channel.creator_id),
                    Event::new(
                        "channel_created",
                        json!({"channel_id": views::id(channel.id), "team_id": views::opt_id(channel.team_id)}),
                        broadcast(Some(channel.creator_id), None, Some(channel.team_id), None),
                        false,
                    ),
                ),
                ChannelType::Direct | ChannelType::Group => {
                    let audience = self.channel_audience(engine, batch, position, channel, None)?;
                    let ids: Vec<String> = members.iter().map(|m| views::id(m.user_id)).collect();
                    let (name, data) = if channel.channel_type == ChannelType::Direct {
                        let teammate = members
                            .iter()
                            .map(|m| m.user_id)
                            .find(|u| *u != channel.creator_id)
                            .unwrap_or(channel.creator_id);
                        (
                            "direct_added",
                            json!({"creator_id": views::opt_id(channel.creator_id), "teammate_id": views::id(teammate)}),
                        )
                    } else {
                        (
                            "group_added",
                            json!({"teammate_ids": Value::String(json!(ids).to_string())}),
                        )
                    };
                    push(
                        audience,
                        Event::new(
                            name,
                            data,
                            broadcast(None, Some(channel.id), None, None),
                            false,
                        ),
                    );
                }
            },
            Outcome::ChannelDeleted(channel) => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(
                    audience,
                    Event::new(
                        "channel_deleted",
                        json!({"channel_id": views::id(channel.id), "delete_at": channel.delete_at}),
                        broadcast(None, None, Some(channel.team_id), None),
                        false,
                    ),
                );
            }
            Outcome::ChannelUpdated(channel) => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(audience, channel_updated_event(channel));
            }
            Outcome::ChannelRestored(channel) => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(
                    audience,
                    Event::new(
                        "channel_restored",
                        json!({"channel_id": views::id(channel.id)}),
                        broadcast(None, None, Some(channel.team_id), None),
                        false,
                    ),
                );
            }
            Outcome::Typing {
                channel,
                user_id,
                parent_id,
            } => {
                let audience =
                    self.channel_audience(engine, batch, position, channel, Some(*user_id))?;
                push(
                    audience,
                    Event::new(
                        "typing",
                        json!({
                            "parent_id": parent_id.map(views::id).unwrap_or_default(),
                            "user_id": views::id(*user_id),
                        }),
                        broadcast(None, Some(channel.id), None, Some(*user_id)),
                        true,
                    ),
                );
            }
            Outcome::PreferencesSaved {
                user_id,
                preferences,
            }
            | Outcome::PreferencesDeleted {
                user_id,
                preferences,
            } if !preferences.is_empty() => {
                let name = if matches!(outcome, Outcome::PreferencesSaved { .. }) {
                    "preferences_changed"
                } else {
                    "preferences_deleted"
                };
                push(
                    Audience::User(*user_id),
                    Event::new(
                        name,
                        json!({"preferences": views::preferences(preferences).to_string()}),
                        broadcast(Some(*user_id), None, None, None),
                        false,
                    ),
                );
            }
            Outcome::DraftSaved { draft, created } => {
                let name = if *created { "draft_created" } else { "draft_updated" };
                push(
                    Audience::User(draft.user_id),
                    Event::new(
                        name,
                        json!({"draft": views::draft(draft).to_string()}),
                        broadcast(Some(draft.user_id), Some(draft.channel_id), None, None),
                        false,
                    ),
                );
            }
            Outcome::DraftDeleted(Some(draft)) => {
                push(
                    Audience::User(draft.user_id),
                    Event::new(
                        "draft_deleted",
                        json!({"draft": views::draft(draft).to_string()}),
                        broadcast(Some(draft.user_id), Some(draft.channel_id), None, None),
                        false,
                    ),
                );
            }
            Outcome::SidebarChanged(change) => {
                let (user, team) = (change.user_id, change.team_id);
                let to_user = || broadcast(Some(user), None, Some(team), None);
                for id in &change.created {
                    push(
                        Audience::User(user),
                        Event::new(
                            "sidebar_category_created",
                            json!({"category_id": id}),
                            to_user(),
                            false,
                        ),
                    );
                }
                let updated: Vec<Value> = change
                    .categories
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| change.updated.contains(&c.id))
                    .map(|(position, c)| views::sidebar_category(user, team, position, c))
                    .collect();
                if !updated.is_empty() {
                    push(
                        Audience::User(user),
                        Event::new(
                            "sidebar_category_updated",
                            json!({"updatedCategories": Value::Array(updated).to_string()}),
                            to_user(),
                            false,
                        ),
                    );
                }
                for id in &change.deleted {
                    push(
                        Audience::User(user),
                        Event::new(
                            "sidebar_category_deleted",
                            json!({"category_id": id}),
                            to_user(),
                            false,
                        ),
                    );
                }
                if change.order_changed {
                    let order: Vec<&str> = change.categories.iter().map(|c| c.id.as_str()).collect();
                    push(
                        Audience::User(user),
                        Event::new(
                            "sidebar_category_order_updated",
                            json!({"order": order}),
                            to_user(),
                            false,
                        ),
                    );
                }
                for (name, preferences) in [
                    ("preferences_changed", &change.favorites_saved),
                    ("preferences_deleted", &change.favorites_deleted),
                ] {
                    if !preferences.is_empty() {
                        push(
                            Audience::User(user),
                            Event::new(
                                name,
                                json!({"preferences": views::preferences(preferences).to_string()}),
                                broadcast(Some(user), None, None, None),
                                false,
                            ),
                        );
                    }
                }
            }
            Outcome::ChannelMemberUpdated { member, .. } => {
                push(
                    Audience::User(member.user_id),
                    Event::new(
                        "channel_member_updated",
                        json!({"channelMember": views::channel_member(member).to_string()}),
                        broadcast(Some(member.user_id), None, None, None),
                        false,
                    ),
                );
            }
            Outcome::DeviceAttached { revoked, .. } => {
                out.controls
                    .extend(revoked.iter().map(|s| Control::SessionRevoked {
                        user: s.user_id,
                        token: s.token,
                    }));
            }
            Outcome::SessionRevoked(session) => out.controls.push(Control::SessionRevoked {
                user: session.user_id,
                token: session.token,
            }),
            Outcome::SessionsRevoked(sessions) => {
                out.controls
                    .extend(sessions.iter().map(|s| Control::SessionRevoked {
                        user: s.user_id,
                        token: s.token,
                    }));
            }
            Outcome::UserUpdated { user, revoked } | Outcome::UserRolesChanged { user, revoked } => {
                out.controls
                    .extend(revoked.iter().map(|s| Control::SessionRevoked {
                        user: s.user_id,
                        token: s.token,
                    }));
                if matches!(outcome, Outcome::UserRolesChanged { .. }) {
                    // The apps reload the user's roles (and so what they offer) on this.
                    push(
                        Audience::User(user.id),
                        Event::new(
                            "user_role_updated",
                            json!({"user_id": views::id(user.id), "roles": user.roles}),
                            broadcast(Some(user.id), None, None, None),
                            false,
                        ),
                    );
                }
                // Mattermost tells everyone; here, everyone who shares a team with the user
                // (each team's town-square holds its members), or else the user alone.
                let mut teams = 0;
                for team in engine.reader().teams_of_user(user.id)? {
                    if let Some(audience) = self.team_audience(engine, batch, position, team.id)? {
                        push(audience, user_updated_event(user));
                        teams += 1;
                    }
                }
                if teams == 0 {
                    push(Audience::User(user.id), user_updated_event(user));
                }
            }
            // Mattermost tells only the user's own connections; others poll the statuses.
            Outcome::StatusChanged { user_id, status } => push(
                Audience::User(*user_id),
                Event::new(
                    "status_change",
                    json!({"status": status, "user_id": views::id(*user_id)}),
                    broadcast(Some(*user_id), None, None, None),
                    false,
                ),
            ),
            // Mattermost sends an ephemeral post to the user's connections only.
            Outcome::Ephemeral { user_id, post } => push(
                Audience::User(*user_id),
                Event::new(
                    "ephemeral_message",
                    json!({"post": post}),
                    broadcast(Some(*user_id), None, None, None),
                    false,
                ),
            ),
            Outcome::AckChanged {
                ack,
                channel,
                added,
            } => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(
                    audience,
                    Event::new(
                        if *added {
                            "post_acknowledgement_added"
                        } else {
                            "post_acknowledgement_removed"
                        },
                        json!({"acknowledgement": views::acknowledgement(ack).to_string()}),
                        broadcast(None, Some(channel.id), None, None),
                        false,
                    ),
                );
            }
            Outcome::TeamUpdated(team) => {
                // Mattermost sends the team sanitized (no invite secret) to its members.
                if let Some(audience) = self.team_audience(engine, batch, position, team.id)? {
                    push(
                        audience,
                        Event::new(
                            "update_team",
                            json!({"team": views::team(team).to_string()}),
                            broadcast(None, None, Some(team.id), None),
                            false,
                        ),
                    );
                }
            }
            Outcome::TeamMemberUpdated(member) => push(
                Audience::User(member.user_id),
                Event::new(
                    "memberrole_updated",
                    json!({"member": views::team_member(member).to_string()}),
                    broadcast(Some(member.user_id), None, None, None),
                    false,
                ),
            ),
            Outcome::ChannelPrivacyChanged(channel) => {
                let audience = self.channel_audience(engine, batch, position, channel, None)?;
                push(audience, channel_updated_event(channel));
                // The whole team learns that the channel left (or joined) its public list.
                if let Some(audience) =
                    self.team_audience(engine, batch, position, channel.team_id)?
                {
                    push(
                        audience,
                        Event::new(
                            "channel_converted",
                            json!({"channel_id": views::id(channel.id)}),
                            broadcast(None, None, Some(channel.team_id), None),
                            false,
                        ),
                    );
                }
            }
            Outcome::EmojiAdded(emoji) => push(
                Audience::Everyone,
                Event::new(
                    "emoji_added",
                    json!({"emoji": views::emoji(emoji).to_string()}),
                    broadcast(None, None, None, None),
                    false,
                ),
            ),
            // A create-post retry changed nothing: its post's `posted` event went out when the
            // first attempt applied, and a second one would show the message twice.
            Outcome::AlreadyApplied
            | Outcome::StatusUnchanged { .. }
            | Outcome::PostExisted { .. }
            | Outcome::UserCreated(_)
            | Outcome::SessionCreated(_)
            | Outcome::TeamCreated { .. }
            | Outcome::TeamMemberAdded { existed: true, .. }
            | Outcome::ChannelMemberAdded { existed: true, .. }
            | Outcome::ChannelCreated { existed: true, .. }
            | Outcome::PreferencesSaved { .. }
            | Outcome::PreferencesDeleted { .. }
            | Outcome::DraftDeleted(None)
            | Outcome::EmailsSent { .. }
            | Outcome::NotificationsDispatched { .. }
            | Outcome::SessionExpiriesNotified { .. }
            // File uploads are announced by the post they are attached to.
            | Outcome::FileChunkStored { .. }
            | Outcome::FileCommitted { .. }
            | Outcome::UploadsAborted(_)
            | Outcome::IntegrationChanged
            | Outcome::EmojiDeleted(_)
            | Outcome::CommandHookUsed(_) => {}
        }
        Ok(())
    }
}

/// `channel_updated` with the channel as it now is (an edit or a privacy change).
fn channel_updated_event(channel: &Channel) -> Event {
    Event::new(
        "channel_updated",
        json!({"channel": views::channel(channel).to_string()}),
        broadcast(None, Some(channel.id), None, None),
        false,
    )
}

fn user_added(channel: &Channel, user: Id) -> Event {
    Event::new(
        "user_added",
        json!({"user_id": views::id(user), "team_id": views::opt_id(channel.team_id)}),
        broadcast(None, Some(channel.id), None, None),
        false,
    )
}

fn thread_info(posted: &Posted) -> views::PostThreadInfo {
    match &posted.thread {
        Some(thread) => views::PostThreadInfo {
            reply_count: thread.reply_count,
            last_reply_at: thread.last_reply_at,
            participants: thread.participants.clone(),
            is_following: None,
        },
        None => views::PostThreadInfo::default(),
    }
}

fn posted_event(posted: &Posted, sender: Option<&str>, emojis: Vec<Emoji>) -> Event {
    let post = posted.post.clone();
    let channel = posted.channel.clone();
    let info = thread_info(posted);
    let files = posted.files.clone();
    let mut for_recipient = ForRecipient {
        mentions: posted.mentions.clone(),
        everyone_but: posted.channel_wide.then_some(post.user_id),
        not_wide: posted.wide_ignored.clone(),
        followers: if post.is_root() {
            Vec::new()
        } else {
            posted.followers.clone()
        },
    };
    for_recipient.mentions.sort_unstable();
    for_recipient.not_wide.sort_unstable();
    for_recipient.followers.sort_unstable();
    let sender_name = format!("@{}", sender.unwrap_or(""));
    // The post's JSON keys and ids, its text, and the participants (26 characters each).
    let captured = 1024
        + 200 * emojis.len()
        + post.message.len()
        + post.props.len()
        + 40 * info.participants.len();
    Event::lazy("posted", false, captured, move || {
        let data = json!({
            "channel_display_name": channel.display_name,
            "channel_name": channel.name,
            "channel_type": channel.channel_type.as_str(),
            "post": views::post_text(
                &post,
                Some(&info),
                views::PostParts {
                    files: &files,
                    emojis: &emojis,
                    ..views::PostParts::default()
                },
            ),
            "sender_name": sender_name,
            "set_online": true,
            "team_id": views::opt_id(channel.team_id),
        });
        (data, broadcast(None, Some(channel.id), None, None))
    })
    .naming_recipients(for_recipient)
}

/// `user_updated` with the user as others may see them (no email, no password hash).
fn user_updated_event(user: &confab_storage::User) -> Event {
    Event::new(
        "user_updated",
        json!({"user": views::user(user, true)}),
        broadcast(None, None, None, None),
        false,
    )
}

fn post_event(
    name: &'static str,
    post: &Post,
    parts: views::PostParts<'_>,
    channel: &Channel,
) -> Event {
    Event::new(
        name,
        json!({"post": views::post_text(post, None, parts)}),
        broadcast(None, Some(channel.id), None, None),
        false,
    )
}

/// What a stored post is rendered with: its reactions, files, custom emoji and
/// acknowledgements, each read only when the post has any.
fn stored_facts(engine: &Engine, post: &Post) -> Result<views::PostFacts, StorageError> {
    let mut facts = views::PostFacts::default();
    facts.read_post(&engine.reader(), post)?;
    Ok(facts)
}

/// `thread_updated` for every follower whose membership the reply changed, except the replier:
/// the thread as that user now sees it, its root with the root's metadata (read once).
fn thread_updated_events(
    engine: &Engine,
    posted: &Posted,
) -> Result<Vec<(Id, Event)>, StorageError> {
    let (Some(thread), Some(root)) = (&posted.thread, &posted.root) else {
        return Ok(Vec::new());
    };
    if !posted
        .memberships
        .iter()
        .any(|v| v.membership.user_id != posted.post.user_id && v.membership.following)
    {
        return Ok(Vec::new());
    }
    let facts = stored_facts(engine, root)?;
    let mut events = Vec::new();
    for view in &posted.memberships {
        let user = view.membership.user_id;
        if user == posted.post.user_id || !view.membership.following {
            continue;
        }
        let item = ThreadItem {
            thread: thread.clone(),
            root: root.clone(),
            following: true,
            read: confab_storage::ThreadReadView {
                last_viewed: view.last_viewed,
                unread_replies: view.unread_replies,
                unread_mentions: view.unread_mentions,
            },
        };
        let response = views::thread(
            &item,
            views::thread_participants_ids(&item),
            facts.parts(root),
        );
        let mentioned = ((posted.channel_wide && !posted.wide_ignored.contains(&user))
            || posted.mentions.contains(&user)) as u64;
        events.push((
            user,
            Event::new(
                "thread_updated",
                json!({
                    "thread": response.to_string(),
                    "previous_unread_mentions": view.unread_mentions.saturating_sub(mentioned),
                    "previous_unread_replies": view.unread_replies.saturating_sub(1),
                }),
                broadcast(Some(user), None, Some(thread.team_id), None),
                false,
            ),
        ));
    }
    Ok(events)
}
