//! The column families. Names say `key_value`, after continuwuity's maps; the crate docs hold the
//! table of every family with its key encoding.

/// A column family of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    Meta,
    UseridUser,
    UsernameUserid,
    EmailUserid,
    TokenSession,
    UseridToken,
    TeamidTeam,
    TeamnameTeamid,
    TeamidUseridMember,
    UseridTeamid,
    ChannelidChannel,
    TeamidChannelnameChannelid,
    ChannelidUseridMember,
    UseridTeamidChannelid,
    PostidPost,
    ChannelidCreateatPostid,
    ChannelidRootcreateatPostid,
    ChannelidUpdateatPostid,
    RootidCreateatPostid,
    ThreadidThread,
    ThreadidUseridFollower,
    UseridThreadidMembership,
    UseridTeamidReplyatThreadid,
    UseridTeamidThreadsread,
    PostidUseridEmojiReaction,
    UseridPreference,
    UseridPendingpostidPostid,
    TermBucketChannelidCreateats,
    NametermUserid,
    UseridCreateatPostidEmail,
    ChannelidCreateatPostidPinned,
    SeqNotification,
    UseridStatus,
    KindKeyIntegration,
    // Files (`files`).
    FileidFileinfo,
    Sha256Blob,
    UploadidChunknoBytes,
    UploadidUpload,
    FileidKindPreview,
    UseridTeamidSidebar,
    UseridChannelidRootidDraft,
    KindKeyEmoji,
    KindIdImage,
    PostidUseridAck,
    MentionkeyUserids,
    ChannelidIgnorerid,
    TermChannelidChunkNumbers,
    ChannelidNumberCreateat,
    UseridBadge,
    UseridTeamidChannelidThreadidMentions,
    RaftLog,
    RaftState,
}

impl Cf {
    /// The families that make up the replicated state (exported in snapshots), in export order.
    pub const STATE: [Cf; 50] = [
        Cf::Meta,
        Cf::UseridUser,
        Cf::UsernameUserid,
        Cf::EmailUserid,
        Cf::TokenSession,
        Cf::UseridToken,
        Cf::TeamidTeam,
        Cf::TeamnameTeamid,
        Cf::TeamidUseridMember,
        Cf::UseridTeamid,
        Cf::ChannelidChannel,
        Cf::TeamidChannelnameChannelid,
        Cf::ChannelidUseridMember,
        Cf::UseridTeamidChannelid,
        Cf::PostidPost,
        Cf::ChannelidCreateatPostid,
        Cf::ChannelidRootcreateatPostid,
        Cf::ChannelidUpdateatPostid,
        Cf::RootidCreateatPostid,
        Cf::ThreadidThread,
        Cf::ThreadidUseridFollower,
        Cf::UseridThreadidMembership,
        Cf::UseridTeamidReplyatThreadid,
        Cf::UseridTeamidThreadsread,
        Cf::PostidUseridEmojiReaction,
        // Appended: a snapshot names a family by its position here.
        Cf::UseridPreference,
        Cf::UseridPendingpostidPostid,
        // Replaced `term_channelid_createat_postid` (one key per post and term) in place, then
        // `term_channelid_bucket_createats` (the same blocks keyed channel before bucket);
        // snapshots of format 1 carry that layout here, and their import skips it.
        Cf::TermBucketChannelidCreateats,
        Cf::NametermUserid,
        Cf::UseridCreateatPostidEmail,
        Cf::ChannelidCreateatPostidPinned,
        Cf::SeqNotification,
        Cf::UseridStatus,
        Cf::KindKeyIntegration,
        // Files.
        Cf::FileidFileinfo,
        Cf::Sha256Blob,
        Cf::UploadidChunknoBytes,
        Cf::UploadidUpload,
        Cf::FileidKindPreview,
        Cf::UseridTeamidSidebar,
        Cf::UseridChannelidRootidDraft,
        Cf::KindKeyEmoji,
        Cf::KindIdImage,
        Cf::PostidUseridAck,
        Cf::MentionkeyUserids,
        Cf::ChannelidIgnorerid,
        Cf::TermChannelidChunkNumbers,
        Cf::ChannelidNumberCreateat,
        // The push badge ([`crate::badge`]).
        Cf::UseridBadge,
        Cf::UseridTeamidChannelidThreadidMentions,
    ];

    /// The Raft log families: local to a node, never in a snapshot.
    pub const LOG: [Cf; 2] = [Cf::RaftLog, Cf::RaftState];

    /// Families of the replicated state whose big values live in blob files (BlobDB), with
    /// their deleted blobs reclaimed by `Engine::reclaim_blob_garbage`.
    pub const BLOB_FILES: [Cf; 3] = [
        Cf::UploadidChunknoBytes,
        Cf::FileidKindPreview,
        Cf::KindIdImage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::UseridUser => "userid_user",
            Cf::UsernameUserid => "username_userid",
            Cf::EmailUserid => "email_userid",
            Cf::TokenSession => "token_session",
            Cf::UseridToken => "userid_token",
            Cf::TeamidTeam => "teamid_team",
            Cf::TeamnameTeamid => "teamname_teamid",
            Cf::TeamidUseridMember => "teamid_userid_member",
            Cf::UseridTeamid => "userid_teamid",
            Cf::ChannelidChannel => "channelid_channel",
            Cf::TeamidChannelnameChannelid => "teamid_channelname_channelid",
            Cf::ChannelidUseridMember => "channelid_userid_member",
            Cf::UseridTeamidChannelid => "userid_teamid_channelid",
            Cf::PostidPost => "postid_post",
            Cf::ChannelidCreateatPostid => "channelid_createat_postid",
            Cf::ChannelidRootcreateatPostid => "channelid_rootcreateat_postid",
            Cf::ChannelidUpdateatPostid => "channelid_updateat_postid",
            Cf::RootidCreateatPostid => "rootid_createat_postid",
            Cf::ThreadidThread => "threadid_thread",
            Cf::ThreadidUseridFollower => "threadid_userid_follower",
            Cf::UseridThreadidMembership => "userid_threadid_membership",
            Cf::UseridTeamidReplyatThreadid => "userid_teamid_replyat_threadid",
            Cf::UseridTeamidThreadsread => "userid_teamid_threadsread",
            Cf::PostidUseridEmojiReaction => "postid_userid_emoji_reaction",
            Cf::UseridPreference => "userid_preference",
            Cf::UseridPendingpostidPostid => "userid_pendingpostid_postid",
            Cf::TermBucketChannelidCreateats => "term_bucket_channelid_createats",
            Cf::NametermUserid => "nameterm_userid",
            Cf::UseridCreateatPostidEmail => "userid_createat_postid_email",
            Cf::ChannelidCreateatPostidPinned => "channelid_createat_postid_pinned",
            Cf::SeqNotification => "seq_notification",
            Cf::UseridStatus => "userid_status",
            Cf::KindKeyIntegration => "kind_key_integration",
            Cf::FileidFileinfo => "fileid_fileinfo",
            Cf::Sha256Blob => "sha256_blob",
            Cf::UploadidChunknoBytes => "uploadid_chunkno_bytes",
            Cf::UploadidUpload => "uploadid_upload",
            Cf::FileidKindPreview => "fileid_kind_preview",
            Cf::UseridTeamidSidebar => "userid_teamid_sidebar",
            Cf::UseridChannelidRootidDraft => "userid_channelid_rootid_draft",
            Cf::KindKeyEmoji => "kind_key_emoji",
            Cf::KindIdImage => "kind_id_image",
            Cf::PostidUseridAck => "postid_userid_ack",
            Cf::MentionkeyUserids => "mentionkey_userids",
            Cf::ChannelidIgnorerid => "channelid_ignorerid",
            Cf::TermChannelidChunkNumbers => "term_channelid_chunk_numbers",
            Cf::ChannelidNumberCreateat => "channelid_number_createat",
            Cf::UseridBadge => "userid_badge",
            Cf::UseridTeamidChannelidThreadidMentions => {
                "userid_teamid_channelid_threadid_mentions"
            }
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
        }
    }

    /// Families of earlier versions, dropped at open (their content is rebuilt elsewhere).
    pub const RETIRED: [&'static str; 2] = [
        "term_channelid_createat_postid",
        "term_channelid_bucket_createats",
    ];

    pub fn all() -> impl Iterator<Item = Cf> {
        Cf::STATE.into_iter().chain(Cf::LOG)
    }
}
