//! The one `Command` enum: every mutation of confab's state. A command carries everything `apply`
//! would otherwise have to invent — ids, timestamps, password hashes — so that every replica that
//! applies the same sequence reaches byte-identical state.

use crate::channel_edits::ChannelPatch;
use crate::emoji::Emoji;
use crate::files::FileInfo;
use crate::id::Id;
use crate::integrations::{
    AccessToken, Bot, CommandHook, IncomingHook, OutgoingHook, SlashCommand,
};
use crate::model::{ChannelType, NotifyProps, TeamType, UserProfile};
use crate::status::CustomStatus;
use crate::teams::TeamPatch;
use serde::{Deserialize, Serialize};

/// Longest message Mattermost accepts, in characters.
pub const MAX_MESSAGE_CHARS: usize = 16_383;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateUser {
        id: Id,
        at: u64,
        username: String,
        email: String,
        password_hash: String,
        nickname: String,
        first_name: String,
        last_name: String,
        /// Space-separated roles. `system_admin` is not taken from here: apply grants it to the
        /// first user created, in log order, and to nobody else.
        roles: String,
    },
    CreateSession {
        token: Id,
        user_id: Id,
        at: u64,
        expires_at: u64,
        device_id: String,
    },
    RevokeSession {
        token: Id,
    },
    /// Ends every session of the user.
    RevokeAllSessions {
        user_id: Id,
    },
    /// Replaces a user's profile (the node merged the client's patch into the current one).
    UpdateUser {
        user_id: Id,
        at: u64,
        profile: UserProfile,
    },
    /// A new password hash; every session but `keep` ends.
    SetPassword {
        user_id: Id,
        at: u64,
        password_hash: String,
        keep: Option<Id>,
    },
    SetUserRoles {
        user_id: Id,
        at: u64,
        roles: String,
    },
    /// Deactivation ends every session of the user; reactivation lets them log in again.
    SetUserActive {
        user_id: Id,
        at: u64,
        active: bool,
    },
    /// Creates the team with its `town-square` and `off-topic` channels and makes the creator
    /// its admin.
    CreateTeam {
        id: Id,
        at: u64,
        name: String,
        display_name: String,
        team_type: TeamType,
        creator_id: Id,
        town_square_id: Id,
        off_topic_id: Id,
        /// The invite link's secret, made by the node (appended: older entries have none).
        #[serde(default)]
        invite_id: String,
    },
    /// Adds a user to a team and to its default channels.
    AddTeamMember {
        team_id: Id,
        user_id: Id,
        at: u64,
    },
    /// Open or private channel in a team; the creator becomes its first member.
    CreateChannel {
        id: Id,
        at: u64,
        team_id: Id,
        channel_type: ChannelType,
        name: String,
        display_name: String,
        purpose: String,
        header: String,
        creator_id: Id,
    },
    /// Direct (2 users, or 1 for a self-DM) or group (3–8) channel; idempotent by name.
    CreateDirectOrGroup {
        id: Id,
        at: u64,
        channel_type: ChannelType,
        /// `uidA__uidB` (sorted) for a DM; the server's sha1 of the sorted ids for a group.
        name: String,
        display_name: String,
        members: Vec<Id>,
        creator_id: Id,
    },
    DeleteChannel {
        channel_id: Id,
        at: u64,
    },
    /// Changes a channel's name, display name, header or purpose.
    PatchChannel {
        channel_id: Id,
        at: u64,
        patch: ChannelPatch,
    },
    /// Un-archives a channel.
    RestoreChannel {
        channel_id: Id,
        at: u64,
    },
    AddChannelMember {
        channel_id: Id,
        user_id: Id,
        at: u64,
    },
    RemoveChannelMember {
        channel_id: Id,
        user_id: Id,
        at: u64,
    },
    CreatePost {
        id: Id,
        at: u64,
        channel_id: Id,
        user_id: Id,
        root_id: Option<Id>,
        message: String,
        post_type: String,
        props: String,
        pending_post_id: String,
        priority: String,
        /// Files to attach (`files::attach`'s rules; the ones that do not attach are dropped).
        #[serde(default)]
        file_ids: Vec<Id>,
        /// Readers are asked to acknowledge it (root posts only).
        #[serde(default)]
        requested_ack: bool,
        /// For a post whose only channel-wide mention is `@here`: the members the proposing
        /// node saw online. Presence is not replicated, so the node that takes the post decides
        /// who `@here` reaches and apply counts the mention for those members only, as
        /// Mattermost does. Appended; absent = none.
        #[serde(default)]
        here_online: Vec<Id>,
        /// `@channel`/`@all`/`@here` mention nobody: the channel had at least
        /// `MaxNotificationsPerChannel` members when the post was taken (Mattermost's rule; the
        /// setting is each node's, so the taking node decides). Appended; absent = false.
        #[serde(default)]
        channel_wide_ignored: bool,
    },
    /// A user acknowledges a post (again: no change).
    AckPost {
        post_id: Id,
        user_id: Id,
        at: u64,
    },
    /// A user takes an acknowledgement back (within `acks::UNDO_WINDOW_MS` of giving it).
    UnackPost {
        post_id: Id,
        user_id: Id,
        at: u64,
    },
    PatchPost {
        post_id: Id,
        at: u64,
        message: Option<String>,
        is_pinned: Option<bool>,
        props: Option<String>,
        /// The post's new file list: kept ids stay, new ones attach by the rules, dropped ones
        /// are deleted.
        #[serde(default)]
        file_ids: Option<Vec<Id>>,
    },
    DeletePost {
        post_id: Id,
        at: u64,
    },
    AddReaction {
        post_id: Id,
        user_id: Id,
        emoji_name: String,
        at: u64,
    },
    RemoveReaction {
        post_id: Id,
        user_id: Id,
        emoji_name: String,
        at: u64,
    },
    /// Marks a channel read. Without collapsed threads every thread of the channel is read too,
    /// which confab records as one watermark on the member (O(1) keys).
    ViewChannel {
        user_id: Id,
        channel_id: Id,
        at: u64,
        collapsed_threads_supported: bool,
    },
    /// Moves the member's channel read cursor back to just before `post_id`.
    SetPostUnread {
        user_id: Id,
        post_id: Id,
        at: u64,
        collapsed_threads: bool,
    },
    /// Marks a thread read up to `timestamp`.
    ReadThread {
        user_id: Id,
        thread_id: Id,
        timestamp: u64,
        at: u64,
    },
    /// Marks a thread unread from reply `post_id` on.
    SetThreadUnread {
        user_id: Id,
        thread_id: Id,
        post_id: Id,
        at: u64,
    },
    FollowThread {
        user_id: Id,
        thread_id: Id,
        follow: bool,
        at: u64,
    },
    /// Marks every thread of a team (and of the user's direct and group channels) read.
    ReadAllThreads {
        user_id: Id,
        team_id: Id,
        at: u64,
    },
    /// A typing notice. Changes no state; it goes through the log so that every node relays it
    /// to its own sockets and every event a socket sees derives from the log.
    UserTyping {
        user_id: Id,
        channel_id: Id,
        parent_id: Option<Id>,
        at: u64,
    },
    /// Saves (inserts or overwrites) a user's preferences: `(category, name, value)` each.
    /// All or nothing: one invalid preference refuses the whole command.
    SavePreferences {
        user_id: Id,
        preferences: Vec<(String, String, String)>,
    },
    /// Deletes a user's preferences by `(category, name)`; absent ones are skipped.
    DeletePreferences {
        user_id: Id,
        keys: Vec<(String, String)>,
    },
    /// Stores a user's whole sidebar layout in a team (see [`crate::sidebar`]); channels moved
    /// in or out of Favorites get their `favorite_channel` preference saved or deleted.
    SetSidebar {
        user_id: Id,
        team_id: Id,
        categories: Vec<crate::sidebar::SidebarCategory>,
    },
    /// Saves a channel member's draft (`user_id`, `channel_id`, `root_id` name it; `update_at`
    /// is the time of this save). An empty draft with no files deletes the stored one.
    UpsertDraft {
        draft: crate::drafts::Draft,
    },
    /// Deletes a user's draft of a channel or thread, if there is one.
    DeleteDraft {
        user_id: Id,
        channel_id: Id,
        root_id: Option<Id>,
    },
    /// Removes batched notification emails that were sent or dropped (the leader's email
    /// batching, `email_queue`).
    EmailsSent {
        entries: Vec<crate::email_queue::QueuedEmail>,
    },
    /// Attaches a mobile device (`<platform>:<token>`) to a session; the user's other sessions
    /// with the same device id end.
    AttachDevice {
        token: Id,
        device_id: String,
        /// The session's new expiry (ms; Mattermost's `SessionLengthMobileInHours` from now),
        /// or 0 to keep it. A session that never expires (an access token's) keeps never
        /// expiring.
        #[serde(default)]
        expires_at: u64,
    },
    /// Merges notify props into a channel member's.
    SetChannelNotifyProps {
        channel_id: Id,
        user_id: Id,
        at: u64,
        props: NotifyProps,
    },
    /// The leader's dispatcher handled every outbox entry up to log index `through`: the mark
    /// advances (never back) and those entries are deleted. `detach` are `(session token,
    /// device id)` the push proxy answered `REMOVE` for; `queue_emails` are the batch's emails
    /// for users who get them in batches.
    NotificationsDispatched {
        through: u64,
        detach: Vec<(Id, String)>,
        /// Notification emails that wait in their users' batches (`email_queue`).
        #[serde(default)]
        queue_emails: Vec<crate::email_queue::QueuedEmail>,
    },
    /// Sets a user's status by hand (`status::SETTABLE`); `online` clears the manual status.
    /// `dnd_end_time` (seconds, 0 = none) only for `dnd`.
    SetStatus {
        user_id: Id,
        at: u64,
        status: String,
        dnd_end_time: u64,
    },
    /// Ends a user's timed DND if it is due at `at` (the leader commits it when due);
    /// `derived` is the leader's live status of the user, announced when no manual status
    /// comes back.
    ExpireDnd {
        user_id: Id,
        at: u64,
        derived: String,
    },
    /// A change of a user's derived status (online ↔ away) to announce to the user's own
    /// connections. Changes no state: like typing, it goes through the log so that every event a
    /// socket sees derives from the log.
    StatusNotice {
        user_id: Id,
        status: String,
    },
    /// Sets (`Some`) or clears a user's custom status.
    SetCustomStatus {
        user_id: Id,
        at: u64,
        custom_status: Option<CustomStatus>,
        /// When it expires (ms; the server parsed `expires_at`), 0 for never: the leader
        /// clears it then ([`Command::ExpireCustomStatus`]).
        #[serde(default)]
        expires_at_ms: u64,
    },
    /// Removes an entry from the user's recent custom statuses.
    RemoveRecentCustomStatus {
        user_id: Id,
        custom_status: CustomStatus,
    },
    // Integrations (`crate::integrations`).
    /// Creates or replaces an incoming webhook.
    PutIncomingHook {
        hook: IncomingHook,
    },
    DeleteIncomingHook {
        id: Id,
    },
    /// Creates or replaces an outgoing webhook.
    PutOutgoingHook {
        hook: OutgoingHook,
    },
    DeleteOutgoingHook {
        id: Id,
    },
    /// Creates or replaces a custom slash command (its trigger unique in its team).
    PutSlashCommand {
        command: SlashCommand,
    },
    DeleteSlashCommand {
        id: Id,
    },
    /// A personal access token and the session it authenticates with.
    CreateAccessToken {
        token: AccessToken,
        at: u64,
    },
    /// Disabling ends the token's session; enabling starts a new one.
    SetAccessTokenActive {
        id: Id,
        active: bool,
        at: u64,
    },
    /// Deletes the token and ends its session.
    RevokeAccessToken {
        id: Id,
    },
    /// A bot: a user with `is_bot` (email `{username}@localhost`, display name as first name,
    /// role `system_user`) and its bot record.
    CreateBot {
        bot: Bot,
        username: String,
        display_name: String,
    },
    /// Replaces a bot's record (description, owner).
    PutBot {
        bot: Bot,
    },
    /// An ephemeral post for one user: changes no state; it goes through the log so that the
    /// user's sockets on every node get it (`ephemeral_message`). `post` is the post's JSON.
    EphemeralPost {
        user_id: Id,
        post: String,
    },
    /// The leader's outgoing-webhook dispatcher handled the outbox up to `through` (what
    /// earlier builds wrote; today's dispatcher writes [`Command::HookCallsDone`]).
    OutgoingHooksDispatched {
        through: u64,
    },
    /// A slash command's `response_url`.
    CreateCommandHook {
        hook: CommandHook,
    },
    /// One use of a `response_url` (at most five, within 30 minutes).
    UseCommandHook {
        id: Id,
        at: u64,
    },
    /// Changes a team's names, description, invite settings or invite secret.
    PatchTeam {
        team_id: Id,
        at: u64,
        patch: TeamPatch,
    },
    /// Adds a user to the team whose invite secret is `invite_id` (the secret is checked as
    /// the log orders it, so a join racing a regeneration of the secret is refused or not on
    /// every replica alike).
    JoinTeamByInvite {
        invite_id: String,
        user_id: Id,
        at: u64,
    },
    /// Makes a team member a team admin or takes it away.
    SetTeamMemberAdmin {
        team_id: Id,
        user_id: Id,
        admin: bool,
    },
    /// Makes an open channel private or a private one open.
    SetChannelPrivacy {
        channel_id: Id,
        at: u64,
        channel_type: ChannelType,
    },
    /// Makes a channel member a channel admin or takes it away.
    SetChannelMemberAdmin {
        channel_id: Id,
        user_id: Id,
        at: u64,
        admin: bool,
    },
    /// Sets a user's profile image (a PNG the node made), or with `None` goes back to the
    /// generated one.
    SetProfileImage {
        user_id: Id,
        at: u64,
        png: Option<serde_bytes::ByteBuf>,
    },
    /// Adds a custom emoji with its image (at most `emoji::MAX_IMAGE_BYTES`).
    CreateEmoji {
        emoji: Emoji,
        image: serde_bytes::ByteBuf,
    },
    DeleteEmoji {
        id: Id,
        at: u64,
    },
    /// Chunk `index` of an upload (at most `files::MAX_CHUNK_BYTES`); chunk 0 starts the upload
    /// at `at`, the others must follow in order.
    FileChunk {
        upload_id: Id,
        at: u64,
        index: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Ends an upload of `chunks` chunks: records `info` and makes the chunks its blob, or drops
    /// them for the blob that already has `info.sha256`.
    FileCommit {
        upload_id: Id,
        chunks: u32,
        info: FileInfo,
        thumbnail: Option<serde_bytes::ByteBuf>,
        preview: Option<serde_bytes::ByteBuf>,
    },
    /// Deletes the chunks of uploads started before `before` that never committed (the leader
    /// proposes it; the time is in the command so every replica deletes the same ones).
    AbortUploads {
        before: u64,
    },
    /// The leader's outgoing-webhook dispatcher finished every call up to outbox index
    /// `through`, and these later ones (outbox index, hook): a slow endpoint's calls then hold
    /// back no other hook's, and a new leader repeats only the calls that were still running.
    HookCallsDone {
        through: u64,
        calls: Vec<(u64, Id)>,
    },
    /// The leader told every mobile session that expired up to `through` (ms) so
    /// ([`session_expiry`](crate::session_expiry)): the mark advances, never back.
    SessionExpiriesNotified {
        through: u64,
    },
    /// Clears a user's custom status if its expiry is due at `at` (ms; the leader commits it
    /// when due); otherwise nothing happens.
    ExpireCustomStatus {
        user_id: Id,
        at: u64,
    },
}

impl Command {
    /// Whether applying this may end a session or change the user a session belongs to: then
    /// every node's session cache must stop trusting what it read before.
    pub fn ends_or_changes_sessions(&self) -> bool {
        matches!(
            self,
            Command::RevokeSession { .. }
                | Command::RevokeAllSessions { .. }
                | Command::AttachDevice { .. }
                | Command::UpdateUser { .. }
                | Command::SetPassword { .. }
                | Command::SetUserRoles { .. }
                | Command::SetUserActive { .. }
                | Command::SetProfileImage { .. }
                | Command::SetAccessTokenActive { .. }
                | Command::RevokeAccessToken { .. }
        )
    }

    /// Bytes of file content the command carries: the replication layer bounds the file bytes
    /// of one append request by it.
    pub fn payload_bytes(&self) -> usize {
        match self {
            Command::FileChunk { bytes, .. } => bytes.len(),
            Command::FileCommit {
                thumbnail, preview, ..
            } => {
                thumbnail.as_ref().map_or(0, |b| b.len()) + preview.as_ref().map_or(0, |b| b.len())
            }
            Command::SetProfileImage { png, .. } => png.as_ref().map_or(0, |b| b.len()),
            Command::CreateEmoji { image, .. } => image.len(),
            _ => 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Encoding a plain enum of owned data into a Vec cannot fail.
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}
