//! What applying a command changed, returned by `apply` so the server builds its WebSocket events
//! and HTTP answers without reading the database again.

use crate::error::CommandError;
use crate::files::FileInfo;
use crate::id::Id;
use crate::model::{
    Channel, ChannelMember, Post, Reaction, Session, Team, TeamMember, Thread, ThreadMembership,
    User,
};
use crate::preferences::Preference;
use crate::threads::ThreadReadView;
use serde::{Deserialize, Serialize};

/// The result of one applied command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub index: u64,
    pub result: Result<Outcome, CommandError>,
    /// Keys the command read and wrote: the complexity tests' evidence.
    pub keys_read: u64,
    pub keys_written: u64,
}

/// A thread membership as its user sees it after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipView {
    pub membership: ThreadMembership,
    pub last_viewed: u64,
    pub unread_replies: u64,
    pub unread_mentions: u64,
}

impl MembershipView {
    pub(crate) fn new(membership: ThreadMembership, view: ThreadReadView) -> MembershipView {
        MembershipView {
            membership,
            last_viewed: view.last_viewed,
            unread_replies: view.unread_replies,
            unread_mentions: view.unread_mentions,
        }
    }
}

/// A new post and everything it moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posted {
    pub post: Post,
    pub channel: Channel,
    /// The root post after the reply (its update time moved), for replies.
    pub root: Option<Post>,
    /// The thread after the reply, for replies.
    pub thread: Option<Thread>,
    /// Channel members this post mentions one by one, without the author: those it names (by
    /// `@username` or a mention keyword) and, for `@here`, the online members it reached. An
    /// `@channel`/`@all` is not expanded here: see `channel_wide`.
    pub mentions: Vec<Id>,
    /// The post says `@channel` or `@all` (and the channel is not past the notification cap):
    /// every member but the author and `wide_ignored` is mentioned.
    pub channel_wide: bool,
    /// Members who do not count channel-wide mentions ([`crate::wide_ignore`]); empty unless
    /// `channel_wide`.
    pub wide_ignored: Vec<Id>,
    /// Thread followers after the reply.
    pub followers: Vec<Id>,
    /// Thread memberships the reply changed, as their users now see them.
    pub memberships: Vec<MembershipView>,
    /// Channel members whose records this post rewrote (the author, the named); members
    /// mentioned only channel-wide fold the mention in when read ([`ChannelMember::settle`]).
    pub channel_members: Vec<ChannelMember>,
    /// The files attached to the post (`metadata.files`).
    pub files: Vec<FileInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The command's index was already applied: nothing happened (replay after a crash).
    AlreadyApplied,
    /// A chunk of an upload is stored.
    FileChunkStored {
        upload_id: Id,
        index: u32,
    },
    /// A file is recorded; `deduplicated` when its bytes were stored already.
    FileCommitted {
        info: Box<FileInfo>,
        deduplicated: bool,
    },
    /// Uploads reclaimed by `AbortUploads`.
    UploadsAborted(Vec<Id>),
    /// A device was attached to `session`; `revoked` held the same device id.
    DeviceAttached {
        session: Session,
        revoked: Vec<Session>,
    },
    /// A channel member's notify props changed.
    ChannelMemberUpdated {
        channel: Channel,
        member: ChannelMember,
    },
    /// The outbox mark is at `through`; `removed` entries went; `detached` lost their device.
    NotificationsDispatched {
        through: u64,
        removed: u64,
        detached: Vec<Session>,
    },
    UserCreated(User),
    /// An integration (hook, command, token, bot record, hook outbox mark) changed: no event.
    IntegrationChanged,
    /// An ephemeral post (its JSON) for one user's connections.
    Ephemeral {
        user_id: Id,
        post: String,
    },
    /// A command hook was used (its count as it now is).
    CommandHookUsed(crate::integrations::CommandHook),
    SessionCreated(Session),
    SessionRevoked(Session),
    /// Every session of one user ended.
    SessionsRevoked(Vec<Session>),
    /// A user's profile, password, roles or activity changed; `revoked` are the sessions that
    /// ended with it (a password change or a deactivation).
    UserUpdated {
        user: User,
        revoked: Vec<Session>,
    },
    /// A user's system roles changed (`user_updated` and `user_role_updated` follow).
    UserRolesChanged {
        user: User,
        revoked: Vec<Session>,
    },
    /// An acknowledgement was given (`added`; again, if it existed) or taken back.
    AckChanged {
        ack: crate::acks::Acknowledgement,
        channel: Channel,
        added: bool,
    },
    /// A team's names, description or invite settings changed.
    TeamUpdated(Team),
    /// A team member became a team admin or stopped being one.
    TeamMemberUpdated(TeamMember),
    /// A channel went from open to private or back (`channel_type` is the new one).
    ChannelPrivacyChanged(Channel),
    /// A custom emoji was added (every user is told) or deleted (nobody is: Mattermost sends
    /// no event; apps find out when the image no longer loads).
    EmojiAdded(crate::emoji::Emoji),
    EmojiDeleted(crate::emoji::Emoji),
    TeamCreated {
        team: Team,
        member: TeamMember,
        channels: Vec<Channel>,
    },
    TeamMemberAdded {
        member: TeamMember,
        /// Default channels joined, with the new membership.
        channels: Vec<(Channel, ChannelMember)>,
        existed: bool,
    },
    ChannelCreated {
        channel: Channel,
        members: Vec<ChannelMember>,
        /// A direct or group channel that already existed is returned as it is.
        existed: bool,
    },
    ChannelDeleted(Channel),
    ChannelUpdated(Channel),
    ChannelRestored(Channel),
    ChannelMemberAdded {
        channel: Channel,
        member: ChannelMember,
        existed: bool,
    },
    ChannelMemberRemoved {
        channel: Channel,
        user_id: Id,
    },
    Posted(Box<Posted>),
    /// A create-post retry: the author already made a post with this `pending_post_id` within
    /// the window, so nothing changed and this is that post as it is now (with its thread, if
    /// it has one). Nothing is announced for it: the first attempt's `posted` event stands.
    PostExisted {
        post: Post,
        thread: Option<Thread>,
    },
    PostEdited {
        post: Post,
        channel: Channel,
    },
    PostDeleted {
        post: Post,
        channel: Channel,
        thread: Option<Thread>,
        /// Replies deleted with a root post.
        deleted_replies: Vec<Id>,
    },
    ReactionAdded {
        reaction: Reaction,
        post: Post,
        channel: Channel,
    },
    ReactionRemoved {
        reaction: Reaction,
        post: Post,
        channel: Channel,
    },
    ChannelViewed {
        channel: Channel,
        member: ChannelMember,
    },
    PostMarkedUnread {
        channel: Channel,
        member: ChannelMember,
        post_id: Id,
    },
    ThreadReadChanged {
        thread: Thread,
        membership: MembershipView,
    },
    ThreadFollowChanged {
        thread: Thread,
        membership: MembershipView,
    },
    AllThreadsRead {
        user_id: Id,
        team_id: Id,
        at: u64,
    },
    Typing {
        channel: Channel,
        user_id: Id,
        parent_id: Option<Id>,
    },
    /// The preferences saved, as they now are.
    PreferencesSaved {
        user_id: Id,
        preferences: Vec<Preference>,
    },
    /// A sidebar layout stored, with what changed.
    SidebarChanged(Box<crate::sidebar::SidebarChange>),
    /// A draft saved as it now is; `created` when there was none before.
    DraftSaved {
        draft: Box<crate::drafts::Draft>,
        created: bool,
    },
    /// The draft removed, if there was one.
    DraftDeleted(Option<Box<crate::drafts::Draft>>),
    /// Batched emails removed from the queue.
    EmailsSent {
        removed: u64,
    },
    /// The preferences that existed and were deleted, with the values they had.
    PreferencesDeleted {
        user_id: Id,
        preferences: Vec<Preference>,
    },
    /// A user's status changed (set by hand, a timed DND ended, or a derived change announced).
    StatusChanged {
        user_id: Id,
        status: String,
    },
    /// A status command that found nothing to change (a DND end already applied).
    StatusUnchanged {
        user_id: Id,
    },
    /// The expired-session mark is at `through` (ms).
    SessionExpiriesNotified {
        through: u64,
    },
}
