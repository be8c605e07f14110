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
    TermChannelidCreateatPostid,
    NametermUserid,
    UseridCreateatPostidEmail,
    ChannelidCreateatPostidPinned,
    SeqNotification,
    UseridStatus,
    KindKeyIntegration,
    RaftLog,
    RaftState,
}

impl Cf {
    /// The families that make up the replicated state (exported in snapshots), in export order.
    pub const STATE: [Cf; 34] = [
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
        Cf::TermChannelidCreateatPostid,
        Cf::NametermUserid,
        Cf::UseridCreateatPostidEmail,
        Cf::ChannelidCreateatPostidPinned,
        Cf::SeqNotification,
        Cf::UseridStatus,
        Cf::KindKeyIntegration,
    ];

    /// The Raft log families: local to a node, never in a snapshot.
    pub const LOG: [Cf; 2] = [Cf::RaftLog, Cf::RaftState];

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
            Cf::TermChannelidCreateatPostid => "term_channelid_createat_postid",
            Cf::NametermUserid => "nameterm_userid",
            Cf::UseridCreateatPostidEmail => "userid_createat_postid_email",
            Cf::ChannelidCreateatPostidPinned => "channelid_createat_postid_pinned",
            Cf::SeqNotification => "seq_notification",
            Cf::UseridStatus => "userid_status",
            Cf::KindKeyIntegration => "kind_key_integration",
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
        }
    }

    pub fn all() -> impl Iterator<Item = Cf> {
        Cf::STATE.into_iter().chain(Cf::LOG)
    }
}
