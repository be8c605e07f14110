//! WebSocket fan-out: `GET /api/v4/websocket`, Mattermost's event stream.
//!
//! # Shape
//! - [`Hub::publish`] is called on every node for every applied log entry, in log order. Each
//!   entry's [`Outcome`](confab_storage::Outcome) becomes zero or more events
//!   ([`events::EventBuilder`]); each event is serialized at most ONCE — `{"event":…,"data":…,
//!   "broadcast":…,"seq":` — into a shared `Bytes`, and a connection's frame is that prefix,
//!   its seq digits and `}` written straight into the connection's write buffer. `posted`, the
//!   bulk of the traffic, is rendered by the first frame that needs it, so a node with no
//!   recipient connected never serializes it.
//! - Audiences: channel events go to the channel's members (a sorted `Arc<[Id]>` per channel,
//!   cached and kept current from the membership outcomes in log order — a private channel's or
//!   DM's event never reaches a non-member), user events (viewed, unread, thread state) to that
//!   user only, `typing` to the members minus the typist.
//! - Delivery: the hub keeps user → connections on this node; per recipient an O(1) push into
//!   the connection's bounded queue under a short `parking_lot` lock. No lock is held across an
//!   await; RocksDB reads (audiences, sender names) happen before the delivery lock.
//! - Each connection has a writer task that swaps out everything queued and writes it as one
//!   corked buffer (one `write_all` per burst, up to 256 KiB), then flushes; it holds that
//!   buffer only while it has something to write. The reading side uses fastwebsockets (auto
//!   close; pings answered after their frame), fed by a reader that never reads past the end of
//!   the client's current frame ([`frame_bound`]): fastwebsockets' 8 KiB read buffer then exists
//!   only while a frame arrives, and a quiet connection costs ≈ 5.6 KB in all. Frames
//!   fastwebsockets must send (pong, close answer) are handed to the writer as raw bytes.
//! - Slow consumers: a connection's queue holds `queue_frames` events. Past three quarters full,
//!   typing and viewed-class events are dropped for it (`confab_ws_events_dropped_total`); when
//!   full, it is closed with code 4003 ("slow consumer") and the client reconnects and resumes
//!   (`confab_ws_connections_closed_slow_total`). Nobody else waits for it. A client that sends
//!   requests without reading the replies is closed the same way at twice the capacity.
//! - Client input: only single-frame text messages up to 64 KiB are read (bigger: close 1009;
//!   broken framing: close 1002); non-JSON text, binary frames and pongs are ignored; a request
//!   with a `seq` always gets a reply (`FAIL` with a Mattermost error object when unknown).
//!   `user_typing` goes to the log through the [`Proposer`] (at most once a second per channel
//!   per connection) and comes back as `typing` from `publish` on every node.
//! - Status (`status_actions`): `get_statuses`, `get_statuses_by_ids` and
//!   `user_update_active_status` are answered from the cluster's presence view with replies
//!   (`seq_reply`, no `seq`). `status_change` is NOT sent node-locally: an event outside the log
//!   would take a seq on this node's connection only, so the stream's numbering would differ
//!   from every other node's and a resume elsewhere would skip a real event. Manual changes are
//!   commands, and derived ones (online ↔ away) a state-free `StatusNotice` entry the leader
//!   proposes, like typing; they come back from `publish` with canonical seqs
//!   (`crate::presence` has the design).
//!
//! # Sequence numbers and resume on ANY node
//! Every event derives from the replicated log, so a user's event stream is the same on every
//! node: the ordered list of (log index, event) whose audience contains the user. A connection
//! starts a stream at the log index `L0` this node had published when it said `hello`; its
//! `connection_id` encodes `L0` (plus a nonce and a tag of the user id, 26 characters like any
//! Mattermost id). The stream's numbering is deterministic — its *canonical* numbering: hello is
//! seq 0 and the k-th event of the user after `L0` is seq k.
//!
//! Every node keeps, for every user, a window of that user's last `window_events` events with
//! their log indices, and remembers the highest index it evicted. Events whose audience is
//! larger than `broad_audience` (a join to town-square, a post to a 2,000-member channel) are
//! kept once, with their audience, in a shared ring of `broad_events` instead of in every
//! member's window — otherwise every team join costs O(team) window pushes on every node and
//! signing up n users costs O(n²). A user's stream is their window merged with the broad events
//! whose audience contains them, in publish order.
//!
//! To number a window a node must know the stream's seq at some log index the window covers.
//! The start `(L0, 0)` is one such point, but it falls out of the window after a few hundred
//! events. The others are **checkpoints** ([`checkpoints`]): `(user, connection id, index I,
//! seq s)` meaning "the user's events with index ≤ I are exactly seqs 1..=s of this stream".
//! - The node serving a connection makes them, under the hub's state lock (between two
//!   published entries, so the cut is exact), only while the connection's seqs are canonical:
//!   nothing dropped for it and no catch-up pending (`conn::Queue::canonical_seq`). An event
//!   offered to a closing connection is numbered though never sent, so a close keeps the
//!   numbering whole. All checkpoints of a stream, whichever node made them, therefore agree.
//! - It shares them with its peers once every `checkpoint_interval` (1 s: connections whose seq
//!   moved, and every tenth round the quiet ones, so their newest point stays inside the
//!   windows) and within 50 ms of a connection closing (its final checkpoint), in batches over
//!   the node-to-node port (`confab_raft`'s topic-tagged peer messages, cluster secret on every
//!   request). No Raft write, nothing per event: one 48-byte record per active connection per
//!   interval.
//! - Every node records its own and its peers' checkpoints: the newest `POINTS_PER_STREAM` (8)
//!   per stream, for at most `resume_streams` streams (least recently updated evicted first).
//!
//! On `GET /api/v4/websocket?connection_id=X&sequence_number=N` (after authentication, on any
//! node), the hub takes the newest known point `(I, s)` of stream X — a checkpoint or the start
//! — such that the node has seen every event of the user after `I` (`I` is not before what it
//! started tracking at, nor before anything its window or the broad ring evicted) and `s ≤ N-1`
//! (the client has everything up to the point). The user's events after `I` number s+1, s+2, …;
//! those from N on are replayed in order with no new hello, and the live stream continues the
//! same numbering (and is checkpointed in turn, so a stream can move from node to node for
//! ever). A node that lags behind the point or the client's `N` skips the events the client
//! already has as it catches up. With no such point, a NEW hello with a NEW connection_id (new
//! `L0`, new nonce) starts a fresh stream at seq 0 and the client refetches over REST.
//! Registration (replay + joining the live stream) happens under the hub's state lock, so no
//! event falls in between.
//!
//! **What is guaranteed.** A resume is accepted on a node whenever that node holds a point of
//! the stream at or before the client's position whose later events are all still in its window:
//! in practice, when the events the client missed plus those of the last checkpoint interval
//! before them (≤ 1 s, more if the checkpoint was lost in transit) are in the window — however
//! long the stream lived and whichever node served it, including a node that was killed (its
//! checkpoints up to its last interval are with its peers). The replayed events are exactly the
//! ones from `N` on, numbered as the serving node numbered them (duplicates only after drops,
//! below). Not guaranteed: a resume on a node that restarted, until a checkpoint made after its
//! restart reached it (checkpoints live in memory; the periodic ones arrive within a second
//! while the stream is connected somewhere), a stream whose checkpoints were evicted
//! (more than `resume_streams` streams active), a client behind all of its stream's 8 newest
//! checkpoints (e.g. one that fell 8 s behind its socket) when the start is out of the window too,
//! and a peer message lost to a partition (then an older point is used, if still covered).
//!
//! Drops: a dropped typing/viewed event consumes no seq on the live connection (seqs stay
//! contiguous), so its numbering is no longer canonical: the connection makes no more
//! checkpoints, and a resume numbers from an earlier point and may replay up to that many
//! events the client already had — duplicates of idempotent events, never a missed one.
//!
//! Gaps: before its first publish, and after [`Hub::lagged`] (the fan-out subscription lost
//! batches) or [`Hub::snapshot_installed`], a node cannot number what it did not see: it closes
//! its connections (4004), forgets its membership cache, and resumes no stream that started
//! before the first entry it saw after the gap.
//!
//! Memory: everything kept for resuming is bounded by [`HubConfig`] and counted by the hub
//! itself ([`Hub::memory`], exported at `/metrics`): each user's window holds at most
//! `window_events` events, all windows together at most `window_bytes` (each slot counts its
//! share of the event, so an event in 50 windows counts about once; the globally oldest slot is
//! evicted first), at most `window_users` windows exist (past it, empty windows are dropped
//! and streams older than what they lost are not resumed); the broad ring holds at most
//! `broad_events` events and `broad_bytes`, where an event's audience is a persistent-set
//! version of its channel's members that costs one tree path, not a copy of the member list;
//! the membership cache holds at most `member_cache_ids` ids; checkpoints cover at most
//! `resume_streams` streams of at most 8 points each (≈ 300 bytes a stream). A join to a
//! 100,000-member team therefore costs O(log team) time and a few KiB, not O(team).
//!
//! Limits: a stream survives a resume only while neither its user's window nor the broad ring
//! evicted anything after its newest usable point (the broad ring turns over fastest during
//! mass sign-ups); a channel's membership is read from the replica the first time the
//! channel is seen and followed from the log after that (changes later in the same batch are
//! undone), so a node whose replica ran ahead of `publish` by more than a batch may see a
//! membership change one entry early.

mod audience;
pub mod checkpoints;
mod conn;
mod events;
mod frame_bound;
mod hub;
mod socket;
mod status_actions;
#[cfg(test)]
mod tests;

pub use hub::Hub;
pub use socket::serve_stream;

use std::sync::Arc;
use std::time::Duration;

/// Fire-and-forget write through Raft (typing notices).
pub type Proposer = Arc<dyn Fn(confab_storage::Command) + Send + Sync>;

/// Settings of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Events a connection may have queued before it is closed as too slow.
    pub queue_frames: usize,
    /// Events kept per user for resuming a stream.
    pub window_events: usize,
    /// Audiences larger than this are kept once in a shared ring, not in every member's window.
    pub broad_audience: usize,
    /// Broad events kept for resuming.
    pub broad_events: usize,
    /// Bytes the broad ring may hold (entries, events, audience versions).
    pub broad_bytes: usize,
    /// Bytes all users' windows may hold together (slots and their shares of events).
    pub window_bytes: usize,
    /// Users with a window at most.
    pub window_users: usize,
    /// Member ids the channel-membership cache may hold across all channels.
    pub member_cache_ids: usize,
    /// Streams whose checkpoints are kept (the least recently updated go first).
    pub resume_streams: usize,
    /// How often this node shares its streams' checkpoints with its peers.
    pub checkpoint_interval: Duration,
    /// Live sessions cached by token.
    pub session_cache_entries: usize,
    /// Time a socket without credentials has to send `authentication_challenge`.
    pub auth_timeout: Duration,
    /// Reported in `hello` and ping replies.
    pub server_version: String,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_frames: 1024,
            window_events: 512,
            broad_audience: 256,
            broad_events: 8192,
            broad_bytes: 64 << 20,
            window_bytes: 256 << 20,
            window_users: 1_000_000,
            member_cache_ids: events::DEFAULT_MEMBER_CACHE_IDS,
            resume_streams: 65_536,
            checkpoint_interval: Duration::from_secs(1),
            session_cache_entries: crate::auth::DEFAULT_SESSION_CACHE_ENTRIES,
            auth_timeout: Duration::from_secs(5),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl Hub {
    /// `GET /api/v4/websocket`.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        socket::router(self)
    }
}
