//! # confab-storage
//!
//! confab's whole state — users, sessions, teams, channels, memberships, posts, threads, read
//! state, reactions, preferences — in one embedded RocksDB, organised so that every hot read is a
//! point lookup or a bounded range scan and every hot write touches a constant number of keys.
//! This is the only crate that depends on `rocksdb`; it also offers the raw Raft log families
//! ([`log`]) that `confab-raft` builds on.
//!
//! **Writes** are [`Command`]s applied by [`Engine::apply_batch`] into one `WriteBatch` with the
//! applied index: deterministic (no clock, no randomness), idempotent under replay, and returning
//! an [`Outcome`] that says what changed. **Reads** go through a [`Reader`] (one RocksDB
//! snapshot) that counts the keys it touches. **Snapshots** stream the state as crc-checked chunks
//! ([`snapshot`]).
//!
//! ## Column families
//!
//! Ids are 16 raw bytes; `t` is a big-endian u64 of milliseconds; `rev(t)` is `u64::MAX - t`
//! (newest first); `·` is concatenation. Values are rmp-serde records of [`model`] unless noted.
//!
//! | name | key → value |
//! |---|---|
//! | `meta` | `"applied_index"` → u64 · `"replication"` → raft's bytes · `"importing"` → marker · `"notify_dispatched"`, `"notify_outbox_len"` → u64 ([`notify`]) · `"session_expiry_notified"` → u64 ms ([`session_expiry`]) · `"badge_wide_pending"` → channel_id → [`WideMentions`] fold mark: channels whose latest channel-wide mentions are not in their members' badge counters yet ([`badge`]) |
//! | `userid_user` | user_id → [`User`] |
//! | `username_userid` | lowercase username → user_id |
//! | `email_userid` | lowercase email → user_id |
//! | `token_session` | token → [`Session`] |
//! | `userid_token` | user_id · token → () |
//! | `teamid_team` | team_id → [`Team`] |
//! | `teamname_teamid` | team name → team_id |
//! | `teamid_userid_member` | team_id · user_id → [`TeamMember`] |
//! | `userid_teamid` | user_id · team_id → () |
//! | `channelid_channel` | channel_id → [`Channel`] (with its message totals and its count of channel-wide mentions) |
//! | `teamid_channelname_channelid` | team_id (zero for DM/GM) · name → channel_id |
//! | `channelid_userid_member` | channel_id · user_id → [`ChannelMember`] (read state; channel-wide mentions since its `wide_seen` are folded in when read, [`ChannelMember::settle`]) |
//! | `userid_teamid_channelid` | user_id · team_id (zero for DM/GM) · channel_id → () |
//! | `postid_post` | post_id → [`Post`] |
//! | `channelid_createat_postid` | channel_id · t(create) · post_id → a Bloom filter of the pairs of adjacent words of the post's text (version byte, 16–64 bytes), empty for posts written before it and for system messages — live posts; a phrase search drops a candidate whose filter lacks a pair of the phrase without reading the post ([`search::adjacent`]) |
//! | `channelid_rootcreateat_postid` | channel_id · t(create) · post_id → () — live roots |
//! | `channelid_updateat_postid` | channel_id · t(update) · post_id → () — incl. deleted |
//! | `rootid_createat_postid` | root_id · t(create) · post_id → () — live replies |
//! | `threadid_thread` | root_id → [`Thread`] |
//! | `threadid_userid_follower` | root_id · user_id → () — following members |
//! | `userid_threadid_membership` | user_id · root_id → [`ThreadMembership`] |
//! | `userid_teamid_replyat_threadid` | user_id · team_id · rev(t last reply) · root_id → [`ThreadIndexEntry`] — followed only |
//! | `userid_teamid_threadsread` | user_id · team_id → [`ThreadsReadMark`] |
//! | `postid_userid_emoji_reaction` | post_id · user_id · emoji → [`Reaction`] |
//! | `userid_preference` | user_id · len(category) as u8 · category · name → value as raw UTF-8 ([`preferences`]) |
//! | `userid_pendingpostid_postid` | `0` · user_id · pending_post_id → post_id · t(create) — a post's retry answer ([`dedup`]) · `1` · t(create) · user_id · pending_post_id → () — its expiry queue |
//! | `term_bucket_channelid_createats` | term · `0x00` · rev(u32 t(create) >> 31) · channel_id → the creation times of the channel's posts holding the term in that ≈ 25-day span, newest first, delta-coded varints — post search postings: each distinct term of a live, non-system post (stemmed words, CJK bigrams, `#tags`, `@`author); written as merge operands, folded by a merge operator ([`search::postings`]). A term's blocks of one span lie together in channel order (a row), so a search reads all of a user's channels with one seek and steps. Replaced `term_channelid_createat_postid` (one key per term and post), then `term_channelid_bucket_createats` (channel before span); both are dropped at open and rebuilt by the backfill |
//! | `term_channelid_chunk_numbers` | term · `0x00` · channel_id · rev(u32 number >> 12) → which of the chunk's 4,096 numbers (the channel's posts) hold the term: a 512-byte bitset, or a list of u16 when shorter — post search for two or more required terms, ANDed a machine word at a time; written as the same merge operands as the time blocks, folded by a merge operator ([`search::numbered`]) |
//! | `channelid_number_createat` | channel_id · u64 number → u64 t(create) · post_id, plus for number 0 a byte `1` when the channel has posts from before numbering — a numbered post's time (numbers count each channel's posts from 0; [`Channel::next_post_number`], [`Post::search_number`]); `meta` `"search_all_numbered"` marks a data directory with no unnumbered post ([`search::numbered`]) |
//! | `nameterm_userid` | folded name term · `0x00` · user_id → () — people search: the username and each word of first name, last name and nickname ([`search`]) |
//! | `userid_createat_postid_email` | user_id · t(create) · post_id → channel_id — a notification email waiting in its user's batch ([`email_queue`]); `meta` `"email_queue_len"` counts them |
//! | `channelid_createat_postid_pinned` | channel_id · t(create) · post_id → () — live pinned posts ([`pinned`]) |
//! | `seq_notification` | u64 log index → [`notify::OutboxEntry`] — the notification outbox: who might be told of a post, whose devices clear a channel/thread, or whose badge changed (a post marked unread); deleted when the leader's dispatcher marks it done (`meta` `"notify_dispatched"`, `"notify_outbox_len"`) ([`notify`]) |
//! | `userid_status` | `0` · user_id → [`ManualStatus`] — a status set by hand (away, offline, dnd, ooo) · `1` · u64(dnd end, s) · user_id → () — timed DND queue · `2` · u64(expiry ms) · user_id → () — expiring custom statuses, soonest first · `3` · user_id → u64 expiry ms ([`status`]) |
//! | `kind_key_integration` | kind u8 · id → record: `0` incoming hook, `1` outgoing hook, `2` slash command, `3` access token, `4` bot, `6` command hook (`response_url`) · `5` · u64 log index → the outgoing hooks a post triggered (the outgoing-webhook outbox, `meta` `"hooks_dispatched"` is its mark) ([`integrations`]) |
//! | `fileid_fileinfo` | file_id → [`FileInfo`] ([`files`]) |
//! | `sha256_blob` | sha-256 (32 bytes) → [`Blob`] — refcount, size, chunk count and the upload whose chunks hold the bytes (stored once per content) |
//! | `uploadid_chunkno_bytes` | upload_id · u32 chunk → raw bytes (≤ 1 MiB; BlobDB: values past 4 KiB in blob files) — staged chunks, and committed ones of a blob |
//! | `uploadid_upload` | `0` · upload_id → [`files::StagedUpload`] — an upload in progress · `1` · t(started) · upload_id → () — the reaper's queue |
//! | `fileid_kind_preview` | file_id · `t`/`p` → thumbnail / preview JPEG (BlobDB) |
//! | `userid_teamid_sidebar` | user_id · team_id → [`sidebar::Sidebar`] — the sidebar categories a user arranged in a team; absent until their first change ([`sidebar`]) |
//! | `userid_channelid_rootid_draft` | user_id · channel_id · root_id (zero for the channel's box) → [`drafts::Draft`] ([`drafts`]) |
//! | `kind_key_emoji` | `n` · name → [`emoji::Emoji`] · `i` · emoji_id → name — custom emoji (`meta` `"emoji_count"` counts them) ([`emoji`]) |
//! | `kind_id_image` | `u` · user_id → profile picture PNG · `e` · emoji_id → emoji image (BlobDB) ([`images`]) |
//! | `postid_userid_ack` | post_id · user_id → u64 time — acknowledgements of posts that asked for them ([`acks`]) |
//! | `mentionkey_userids` | lowercase keyword → [`keywords::Holder`]s by user id — who a custom `mention_keys` entry or a first name mentions; `meta` `"mention_keywords"` counts the keys ([`keywords`]) |
//! | `channelid_ignorerid` | channel_id · user_id → () — members who do not count channel-wide mentions (their `channel` prop off, or the channel's `ignore_channel_mentions` on); mirrors [`ChannelMember::ignores_channel_wide`] ([`wide_ignore`]) |
//! | `userid_badge` | user_id → i64 · i64, big-endian: the user's push badge without and with Collapsed Reply Threads, summed from difference operands by a merge operator; `meta` `"badge_counters_v1"` marks a data directory that keeps them ([`badge`]) |
//! | `userid_teamid_channelid_threadid_mentions` | user_id · team_id (zero for DM/GM) · channel_id · root_id → the times of a followed live thread's unread mentions (absent when none), so a thread read watermark can subtract them from the badge ([`badge`]) |
//! | `raft_log` | u64 index → crc32 · entry bytes (not in snapshots; BlobDB: entries past 4 KiB, the file chunks, in blob files) |
//! | `raft_state` | `"vote"`, `"committed"`, `"last_purged"` → raft's bytes (not in snapshots) |
//!
//! ## Complexity by construction
//! - A channel view writes one key: the member's counters are copied from the channel totals,
//!   and a view by a client without Collapsed Reply Threads sets a watermark on the member
//!   (`threads_viewed_at`/`_seq`) that thread read state honours, instead of touching each thread.
//! - Channel unread = channel totals − member counts: two point lookups.
//! - Unread replies of a thread: a range scan of `rootid_createat_postid` after `last_viewed`,
//!   bounded to the unread replies (and usually not even that: followers keep a counter).
//! - A user's unread-thread totals scan `userid_teamid_replyat_threadid` only, never a post.

mod accounts;
pub mod acks;
mod apply;
pub mod badge;
pub mod cf;
mod channel_edits;
mod command;
pub mod dedup;
pub mod drafts;
pub mod email_queue;
pub mod emoji;
mod engine;
mod error;
pub mod files;
pub mod fuzzing;
mod id;
pub mod images;
pub mod integrations;
mod keys;
pub mod keywords;
pub mod log;
pub mod mentions;
pub mod model;
pub mod notify;
mod outcome;
pub mod pinned;
pub mod preferences;
mod query;
mod read;
pub mod search;
pub mod session_expiry;
pub mod sidebar;
pub mod snapshot;
mod source;
pub mod status;
pub mod teams;
mod threads;
mod txn;
pub mod validate;
pub mod wide_ignore;

pub use channel_edits::ChannelPatch;
pub use command::{Command, MAX_MESSAGE_CHARS};
pub use engine::{BlobReclaim, Engine, EngineStats, MemoryLimits, MemoryUsage};
pub use error::{CommandError, Result, StorageError};
pub use files::{Blob, FileInfo, PreviewKind};
pub use id::{Id, InvalidId};
pub use log::LogWriter;
pub use model::*;
pub use outcome::{Applied, MembershipView, Outcome, Posted};
pub use preferences::{Preference, PreferenceError};
pub use query::{
    ChannelUnread, PostPage, PostsQuery, ThreadItem, ThreadList, ThreadPaging, ThreadQuery,
};
pub use read::Reader;
pub use snapshot::{verify_snapshot, SnapshotSummary};
pub use status::{CustomStatus, ManualStatus};
pub use threads::ThreadReadView;
