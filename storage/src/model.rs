//! The records stored as column-family values (rmp-serde, compact array form). Field names follow
//! Mattermost's JSON so the server maps them one to one; times are milliseconds since the epoch.
//! No record holds a `HashMap`: iteration order must be deterministic for byte-identical replicas.

use crate::id::Id;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Notification settings as Mattermost names them (`push`, `email`, `desktop`, `mark_unread`…),
/// stored as given; what is absent takes Mattermost's default when read (see `crate::notify`).
/// A `BTreeMap` so that the encoding is the same on every replica.
pub type NotifyProps = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub delete_at: u64,
    pub username: String,
    pub email: String,
    pub nickname: String,
    pub first_name: String,
    pub last_name: String,
    pub position: String,
    /// Space-separated, e.g. `system_user system_admin`.
    pub roles: String,
    pub locale: String,
    pub is_bot: bool,
    /// An argon2id PHC string computed by the node that received the request.
    pub password_hash: String,
    /// The user's notification settings (appended: older records decode with none set).
    #[serde(default)]
    pub notify_props: NotifyProps,
    /// Mattermost's `props.customStatus`: a [`CustomStatus`](crate::status::CustomStatus) as
    /// JSON, empty for none. Appended with a default, so records written before it decode.
    #[serde(default)]
    pub custom_status: String,
    /// Mattermost's `last_picture_update`: when the user last set a profile image (ms), or
    /// minus the time they went back to the generated one; 0 if never changed. Apps add it to
    /// the image URL, so a change shows at once instead of after their cache expires.
    #[serde(default)]
    pub last_picture_update: i64,
    /// Mattermost's `timezone` (the apps set the automatic one from the device at login).
    #[serde(default)]
    pub timezone: Timezone,
}

/// A user's timezone as Mattermost keeps it: IANA names, and which one applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timezone {
    pub use_automatic: bool,
    pub automatic: String,
    pub manual: String,
}

impl Default for Timezone {
    fn default() -> Timezone {
        Timezone {
            use_automatic: true,
            automatic: String::new(),
            manual: String::new(),
        }
    }
}

/// The fields of a user a profile update replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserProfile {
    pub username: String,
    pub email: String,
    pub nickname: String,
    pub first_name: String,
    pub last_name: String,
    pub position: String,
    /// Empty keeps the current locale.
    pub locale: String,
    /// Replaces the user's notification settings (Mattermost's patch replaces the whole map).
    #[serde(default)]
    pub notify_props: NotifyProps,
    #[serde(default)]
    pub timezone: Timezone,
}

impl UserProfile {
    /// The profile `user` has now.
    pub fn of(user: &User) -> UserProfile {
        UserProfile {
            username: user.username.clone(),
            email: user.email.clone(),
            nickname: user.nickname.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            position: user.position.clone(),
            locale: user.locale.clone(),
            notify_props: user.notify_props.clone(),
            timezone: user.timezone.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: Id,
    pub user_id: Id,
    pub create_at: u64,
    pub expires_at: u64,
    pub device_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TeamType {
    Open,
    Invite,
}

impl TeamType {
    pub fn as_str(&self) -> &'static str {
        match self {
            TeamType::Open => "O",
            TeamType::Invite => "I",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub delete_at: u64,
    pub name: String,
    pub display_name: String,
    pub team_type: TeamType,
    /// The fields below were appended (older records decode with them empty).
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub company_name: String,
    /// Comma- or space-separated email domains allowed to join; empty allows any.
    #[serde(default)]
    pub allowed_domains: String,
    /// The secret in the team's invite link (`/signup_user_complete/?id=…`); empty until the
    /// team is created with one or an admin regenerates it.
    #[serde(default)]
    pub invite_id: String,
    /// Whether anyone may join without an invitation; `None` (records from before the field)
    /// means "open teams yes, invite-only teams no".
    #[serde(default)]
    pub allow_open_invite: Option<bool>,
}

impl Team {
    /// Whether users may join by themselves (listing and joining open teams).
    pub fn open_invite(&self) -> bool {
        self.allow_open_invite
            .unwrap_or(self.team_type == TeamType::Open)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub team_id: Id,
    pub user_id: Id,
    pub roles: String,
    pub delete_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelType {
    Open,
    Private,
    Direct,
    Group,
}

impl ChannelType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelType::Open => "O",
            ChannelType::Private => "P",
            ChannelType::Direct => "D",
            ChannelType::Group => "G",
        }
    }
    pub fn parse(text: &str) -> Option<ChannelType> {
        match text {
            "O" => Some(ChannelType::Open),
            "P" => Some(ChannelType::Private),
            "D" => Some(ChannelType::Direct),
            "G" => Some(ChannelType::Group),
            _ => None,
        }
    }
    /// Direct and group channels belong to no team and are listed in every team.
    pub fn is_teamless(&self) -> bool {
        matches!(self, ChannelType::Direct | ChannelType::Group)
    }
}

/// A channel with the totals its members' read state is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub delete_at: u64,
    /// [`Id::NONE`] for direct and group channels.
    pub team_id: Id,
    pub channel_type: ChannelType,
    pub display_name: String,
    pub name: String,
    pub header: String,
    pub purpose: String,
    pub last_post_at: u64,
    pub last_root_post_at: u64,
    pub total_msg_count: u64,
    pub total_msg_count_root: u64,
    pub creator_id: Id,
    /// Channel-wide mentions (`@channel`, `@all`, `@here`) posted so far, counted here once per
    /// post instead of in every member's record: members fold them in lazily
    /// ([`ChannelMember::settle`]), so such a post costs O(1) writes however big the channel.
    /// Appended; absent = none.
    #[serde(default)]
    pub wide_mentions: WideMentions,
    /// When the last channel-wide mention was posted: a member's `last_update_at` moves to it
    /// when that member folds it in.
    #[serde(default)]
    pub last_wide_mention_at: u64,
    /// The number post search gives the channel's next post ([`crate::search::numbered`]);
    /// `None` in records from before numbering. Appended.
    #[serde(default)]
    pub next_post_number: Option<u64>,
}

/// Running counts of a channel's channel-wide mentions, in the three kinds a member counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WideMentions {
    pub all: u64,
    /// Those in root posts (`mention_count_root`).
    pub root: u64,
    /// Those in urgent posts (`urgent_mention_count`).
    pub urgent: u64,
}

/// A member's read state in a channel. Unread = channel totals − these counts, so it is O(1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMember {
    pub channel_id: Id,
    pub user_id: Id,
    pub roles: String,
    pub last_viewed_at: u64,
    pub msg_count: u64,
    pub msg_count_root: u64,
    pub mention_count: u64,
    pub mention_count_root: u64,
    pub urgent_mention_count: u64,
    pub last_update_at: u64,
    /// Watermark of the last view by a client without collapsed threads: every thread of the
    /// channel counts as read up to this time, unless the thread's own read state was set later
    /// (see [`ThreadMembership::viewed_seq`]). One key per view instead of one per thread.
    pub threads_viewed_at: u64,
    pub threads_viewed_seq: u64,
    /// The member's notification settings for this channel (appended; absent = `default`).
    #[serde(default)]
    pub notify_props: NotifyProps,
    /// The channel's [`Channel::wide_mentions`] already folded into the mention counts above.
    /// Appended; absent = none (records from before channel-wide counting had every such
    /// mention written into their counts, and their channels start at zero too).
    #[serde(default)]
    pub wide_seen: WideMentions,
    /// Channel-wide mentions are not mentions of this member: the user's `channel` notify prop
    /// is `"false"` or this channel's `ignore_channel_mentions` is `"on"` ([`crate::wide_ignore`]).
    /// Appended; absent = counted.
    #[serde(default)]
    pub ignores_channel_wide: bool,
}

impl ChannelMember {
    /// Folds the channel-wide mentions posted since this record last did into its counts
    /// (none for a member who ignores them). Every reader that shows counts, and every apply
    /// path that changes them or the flag, settles first; a record written back unsettled keeps
    /// `wide_seen` and the counts paired, so settling later gives the same result.
    pub fn settle(&mut self, channel: &Channel) {
        let wide = channel.wide_mentions;
        if wide == self.wide_seen {
            return;
        }
        if self.ignores_channel_wide {
            self.wide_seen = wide;
            return;
        }
        self.mention_count += wide.all.saturating_sub(self.wide_seen.all);
        self.mention_count_root += wide.root.saturating_sub(self.wide_seen.root);
        self.urgent_mention_count += wide.urgent.saturating_sub(self.wide_seen.urgent);
        self.last_update_at = self.last_update_at.max(channel.last_wide_mention_at);
        self.wide_seen = wide;
    }

    /// `mention_count` and `mention_count_root` with the channel-wide mentions up to `wide`
    /// folded in, as [`ChannelMember::settle`] would against a channel holding `wide` (the push
    /// badge counts them up to a channel's fold mark, [`crate::badge`]).
    pub fn mentions_settled_to(&self, wide: WideMentions) -> (u64, u64) {
        if self.ignores_channel_wide {
            return (self.mention_count, self.mention_count_root);
        }
        (
            self.mention_count + wide.all.saturating_sub(self.wide_seen.all),
            self.mention_count_root + wide.root.saturating_sub(self.wide_seen.root),
        )
    }

    /// This record with the channel's wide mentions folded in.
    pub fn settled(mut self, channel: &Channel) -> ChannelMember {
        self.settle(channel);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub id: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub edit_at: u64,
    pub delete_at: u64,
    pub is_pinned: bool,
    pub user_id: Id,
    pub channel_id: Id,
    /// [`Id::NONE`] for a root post.
    pub root_id: Id,
    pub message: String,
    pub post_type: String,
    /// The post's `props` object as JSON text, stored verbatim.
    pub props: String,
    pub pending_post_id: String,
    pub has_reactions: bool,
    /// `urgent`/`important` from the post's priority metadata, empty when none.
    pub priority: String,
    /// Attached files, in order (`files`); absent in posts stored before files existed.
    #[serde(default)]
    pub file_ids: Vec<Id>,
    /// The author asked readers to acknowledge it (priority metadata `requested_ack`).
    #[serde(default)]
    pub requested_ack: bool,
    /// How many acknowledgements it has (`acks`): pages read them only for posts with some.
    #[serde(default)]
    pub ack_count: u32,
    /// The post's number in its channel for post search ([`crate::search::numbered`]); `None`
    /// for posts from before numbering. Appended.
    #[serde(default)]
    pub search_number: Option<u64>,
}

impl Post {
    pub fn is_root(&self) -> bool {
        self.root_id.is_none()
    }
}

/// A reply thread; exists from the first reply to a root post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    pub root_id: Id,
    pub channel_id: Id,
    pub team_id: Id,
    pub reply_count: u64,
    pub last_reply_at: u64,
    /// Repliers, oldest first; a new reply moves its author to the end.
    pub participants: Vec<Id>,
    pub delete_at: u64,
    /// The root asked for urgent attention (priority `urgent`): mentions in the thread count
    /// as urgent. Appended; threads from before it are not urgent.
    #[serde(default)]
    pub urgent: bool,
}

/// A user's relation to a thread (Collapsed Reply Threads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadMembership {
    pub user_id: Id,
    pub thread_id: Id,
    pub channel_id: Id,
    pub team_id: Id,
    pub following: bool,
    /// An explicit unfollow sticks until the user is mentioned in the thread again.
    pub unfollowed_explicitly: bool,
    pub last_updated: u64,
    pub read: ThreadRead,
}

/// A user's read position in a thread, kept both in the membership and in the ordered index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThreadRead {
    pub last_viewed: u64,
    /// The applied log index at which `last_viewed` was last set; a channel or team watermark
    /// set at a later index overrides it.
    pub viewed_seq: u64,
    /// Replies after `last_viewed`, kept current on every reply to a followed thread so a
    /// listing needs no scan; recounted (a range scan over just the unread replies) only when
    /// a newer watermark overrides `last_viewed`.
    pub unread_replies: u64,
    /// Times of the mentions not yet read; the unread-mention count is those after the
    /// effective last-viewed time, so a watermark clears them without a write here.
    pub mention_times: Vec<u64>,
}

/// What the per-user ordered thread index stores beside its key, so that listing threads and
/// computing unread totals read one index range and never a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadIndexEntry {
    pub channel_id: Id,
    pub read: ThreadRead,
    pub thread_deleted: bool,
    /// The thread's root is urgent (its unread mentions count as urgent too).
    #[serde(default)]
    pub urgent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub user_id: Id,
    pub post_id: Id,
    pub emoji_name: String,
    pub create_at: u64,
    pub channel_id: Id,
}

/// A per-user, per-team "all threads read" watermark (PUT …/threads/read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThreadsReadMark {
    pub at: u64,
    pub seq: u64,
}
