//! The hub: per-user connection index, per-user replay windows, and `publish`, which turns
//! applied log entries into events and offers them to the connections of their recipients.

use super::checkpoints::{self, Checkpoint, Checkpoints};
use super::conn::{Closing, Conn, Offer, Out, Queue};
use super::events::{self, Control, EntryEvents, Event, EventBuilder};
use super::{HubConfig, Proposer};
use confab_storage::{Applied, Engine, Id};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The WebSocket side of the server: shared by every connection task and by the task that
/// forwards applied log entries.
pub struct Hub {
    pub(crate) engine: Arc<Engine>,
    pub(crate) proposer: Proposer,
    pub(crate) config: HubConfig,
    state: Mutex<State>,
    /// Serializes `publish` and owns the membership cache.
    builder: Mutex<EventBuilder>,
    /// Stream checkpoints, this node's and its peers' (lock after `state`, never before).
    checkpoints: Mutex<Checkpoints>,
    /// Woken when a connection closes: its final checkpoint should go out soon.
    pub(crate) checkpoint_wake: tokio::sync::Notify,
    /// The highest log index of a checkpoint a peer sent (how fresh peers' news is).
    peer_checkpoint_index: AtomicU64,
    next_key: AtomicU64,
    nonce: AtomicU64,
    pub(crate) sockets: AtomicUsize,
    /// Live sessions by token, for the handshake here and for the HTTP API.
    pub sessions: crate::auth::Sessions,
    /// Told of every registered connection opening and closing (set once at startup).
    pub presence: std::sync::OnceLock<Arc<crate::presence::Presence>>,
    /// Catches this node up before an unknown token is refused (set once at startup; unset in
    /// tests without a cluster).
    pub catch_up: std::sync::OnceLock<Arc<crate::catch_up::CatchUp>>,
}

/// A user's recent events, for resuming on any node.
#[derive(Debug, Default)]
struct Window {
    /// Oldest first.
    entries: VecDeque<Slot>,
    /// The highest log index of an event that fell out of the window (0 = none).
    evicted_through: u64,
}

/// One event in one user's window.
#[derive(Debug)]
struct Slot {
    index: u64,
    /// Publish order: merges a window with `broad` on resume, and matches `window_log`.
    order: u64,
    event: Arc<Event>,
    /// What this slot counts against `window_bytes` (its share of the event).
    bytes: usize,
}

/// Bytes a window slot costs beyond its event: the slot and its record in `window_log`.
const SLOT_BYTES: usize = std::mem::size_of::<Slot>();
const LOG_RECORD_BYTES: usize = std::mem::size_of::<(Id, u64)>();
/// Bytes of a broad ring entry beyond its event and audience.
const BROAD_BYTES: usize = std::mem::size_of::<Broad>();

#[derive(Default)]
struct State {
    /// Last log index published.
    published: u64,
    /// Set before the first publish and after a reported lag: the next batch's first index
    /// moves `tracking_from`, since entries before it may have gone unseen.
    gap: bool,
    /// Events after this index are known here (the index at startup).
    tracking_from: u64,
    windows: HashMap<Id, Window>,
    /// Every window push in publish order, as (user, order): when the windows together pass
    /// `window_bytes`, the globally oldest slot goes first. A record whose slot already left
    /// (the user's own `window_events` cap) is skipped when it reaches the front.
    window_log: VecDeque<(Id, u64)>,
    /// Slots, their events' shares and `window_log` records, counted as pushed and evicted.
    window_bytes: usize,
    /// Slots held in all windows.
    window_slots: usize,
    /// Windows are dropped whole only when more than `window_users` exist; this is the highest
    /// index such a drop lost, and no stream that started before it is resumed.
    windows_dropped_through: u64,
    /// Events for audiences larger than `broad_audience`, kept once for all their recipients
    /// instead of once per recipient: a join to a 50,000-member channel is one entry here,
    /// not 50,000 window pushes (and 50,000 × window memory) on every node.
    broad: VecDeque<Broad>,
    /// What `broad` holds: entries, events and audience versions (see `Broad::bytes`).
    broad_bytes: usize,
    /// The highest log index of a broad event that fell out of `broad` (0 = none).
    broad_evicted_through: u64,
    /// Publish order of the next event: merges a user's window with `broad` on resume.
    next_order: u64,
    /// user → connections on this node.
    conns: HashMap<Id, Vec<Arc<Conn>>>,
    /// Final checkpoints of connections that closed since the last batch.
    closed_checkpoints: Vec<Checkpoint>,
    /// Checkpoint batches taken so far (spreads the refresh of quiet streams).
    checkpoint_round: u64,
}

/// Closed connections' checkpoints waiting for the next batch, at most (more are dropped: the
/// streams' periodic checkpoints remain).
const CLOSED_CHECKPOINTS_MAX: usize = 65_536;
/// A connection whose seq did not move is checkpointed again every this many batches, so its
/// newest checkpoint stays inside the windows (which turn over with everyone's events).
const REFRESH_ROUNDS: u64 = 10;

/// An event of a broad audience, kept once.
#[derive(Debug)]
struct Broad {
    index: u64,
    order: u64,
    event: Arc<Event>,
    audience: events::Audience,
    /// The entry, its event, and the tree path its audience version adds.
    bytes: usize,
}

/// What the hub holds for resuming, as counted against its bounds (`/metrics`, tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubMemory {
    /// Bytes counted against `HubConfig::window_bytes`.
    pub window_bytes: usize,
    /// Events held across all users' windows.
    pub window_slots: usize,
    /// Users with a window.
    pub windows: usize,
    /// Bytes counted against `HubConfig::broad_bytes`.
    pub broad_bytes: usize,
    /// Events in the broad ring.
    pub broad_events: usize,
    /// Member ids held by the membership cache.
    pub member_cache_ids: usize,
    /// Streams with checkpoints (bounded by `HubConfig::resume_streams`).
    pub checkpoint_streams: usize,
    /// Bytes the checkpoints hold (estimate).
    pub checkpoint_bytes: usize,
}

impl State {
    /// Adds `event` to `user`'s window, evicting that user's oldest past `cap`.
    fn push_window(&mut self, user: Id, slot: Slot, cap: usize) {
        let window = self.windows.entry(user).or_default();
        self.window_log.push_back((user, slot.order));
        self.window_bytes += slot.bytes + LOG_RECORD_BYTES;
        self.window_slots += 1;
        window.entries.push_back(slot);
        while window.entries.len() > cap {
            if let Some(old) = window.entries.pop_front() {
                window.evicted_through = window.evicted_through.max(old.index);
                self.window_bytes = self.window_bytes.saturating_sub(old.bytes);
                self.window_slots = self.window_slots.saturating_sub(1);
            }
        }
    }

    /// Keeps all windows together within `budget` bytes (the globally oldest slot goes
    /// first) and at most `max_users` windows.
    fn enforce_window_bounds(&mut self, budget: usize, max_users: usize) {
        while self.window_bytes > budget {
            if self.evict_oldest_slot().is_none() {
                break;
            }
        }
        if self.windows.len() > max_users {
            self.drop_windows(max_users - max_users / 8);
        }
    }

    /// Evicts the globally oldest slot still held; returns its owner, or `None` when the log
    /// is empty. A window left empty keeps its `evicted_through` (and gives back its buffer).
    fn evict_oldest_slot(&mut self) -> Option<Id> {
        loop {
            let (owner, order) = self.window_log.pop_front()?;
            self.window_bytes = self.window_bytes.saturating_sub(LOG_RECORD_BYTES);
            let Some(window) = self.windows.get_mut(&owner) else {
                continue;
            };
            if window.entries.front().map(|slot| slot.order) != Some(order) {
                // That slot already left by its user's own cap.
                continue;
            }
            if let Some(slot) = window.entries.pop_front() {
                window.evicted_through = window.evicted_through.max(slot.index);
                self.window_bytes = self.window_bytes.saturating_sub(slot.bytes);
                self.window_slots = self.window_slots.saturating_sub(1);
            }
            if window.entries.is_empty() {
                window.entries = VecDeque::new();
            }
            return Some(owner);
        }
    }

    /// Drops windows until at most `target` remain: the empty ones first, then those the
    /// oldest slots empty. What they lost moves `windows_dropped_through`. Going down to
    /// `target` (below the bound) makes the O(windows) sweep rare.
    fn drop_windows(&mut self, target: usize) {
        let mut lost = self.windows_dropped_through;
        self.windows.retain(|_, window| {
            let keep = !window.entries.is_empty();
            if !keep {
                lost = lost.max(window.evicted_through);
            }
            keep
        });
        while self.windows.len() > target {
            let Some(owner) = self.evict_oldest_slot() else {
                break;
            };
            if let Some(window) = self.windows.get(&owner) {
                if window.entries.is_empty() {
                    lost = lost.max(window.evicted_through);
                    self.windows.remove(&owner);
                }
            }
        }
        self.windows_dropped_through = lost;
    }

    /// Adds a broad event, then evicts the oldest past `max_events` entries or `budget` bytes.
    fn push_broad(&mut self, broad: Broad, max_events: usize, budget: usize) {
        self.broad_bytes += broad.bytes;
        self.broad.push_back(broad);
        while self.broad.len() > max_events || self.broad_bytes > budget {
            let Some(old) = self.broad.pop_front() else {
                break;
            };
            self.broad_bytes = self.broad_bytes.saturating_sub(old.bytes);
            self.broad_evicted_through = self.broad_evicted_through.max(old.index);
        }
    }
}

/// A stream, as its connection id names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    /// The connection id as an id (the key of the stream's checkpoints).
    pub id: Id,
    /// The log index the stream starts after (its `hello`).
    pub start: u64,
}

/// Where a connection asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub stream: Stream,
    /// The next seq the client expects.
    pub next_seq: u64,
}

/// How a registration went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// A new stream: `hello` with this connection id was queued at seq 0.
    Fresh { connection_id: String },
    /// The old stream continues: `replayed` missed events were queued, no hello.
    Resumed { replayed: usize },
}

/// A 4-byte tag of a user id (its 16 bytes folded).
fn user_tag(user: Id) -> [u8; 4] {
    let mut tag = [0u8; 4];
    for (i, byte) in user.as_bytes().iter().enumerate() {
        tag[i % 4] ^= byte.rotate_left((i / 4) as u32);
    }
    tag
}

/// A connection id: 16 bytes in Mattermost's 26-character id form — the log index the stream
/// starts after, a nonce, and a tag of the user id.
#[cfg(test)]
pub fn connection_id(user: Id, start: u64, nonce: u32) -> String {
    stream_id(user, start, nonce).to_base32()
}

fn stream_id(user: Id, start: u64, nonce: u32) -> Id {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&start.to_be_bytes());
    bytes[8..12].copy_from_slice(&nonce.to_be_bytes());
    bytes[12..].copy_from_slice(&user_tag(user));
    Id::from_bytes(bytes)
}

/// The stream a connection id minted for `user` names, if it is one.
pub fn parse_connection_id(user: Id, text: &str) -> Option<Stream> {
    let id = Id::parse(text).ok()?;
    let bytes = id.as_bytes();
    if bytes[12..] != user_tag(user) {
        return None;
    }
    let mut start = [0u8; 8];
    start.copy_from_slice(&bytes[..8]);
    Some(Stream {
        id,
        start: u64::from_be_bytes(start),
    })
}

impl Hub {
    pub fn new(engine: Arc<Engine>, proposer: Proposer, config: HubConfig) -> Arc<Hub> {
        let start = engine.applied_index().unwrap_or(0);
        let sessions = crate::auth::Sessions::with_capacity(config.session_cache_entries);
        let builder = Mutex::new(EventBuilder::new(config.member_cache_ids));
        let seed = crate::clock::now_ms() ^ u64::from(std::process::id()).rotate_left(32);
        let checkpoints = Mutex::new(Checkpoints::new(config.resume_streams));
        Arc::new(Hub {
            engine,
            proposer,
            config,
            state: Mutex::new(State {
                published: start,
                tracking_from: start,
                gap: true,
                ..State::default()
            }),
            builder,
            checkpoints,
            checkpoint_wake: tokio::sync::Notify::new(),
            peer_checkpoint_index: AtomicU64::new(0),
            next_key: AtomicU64::new(1),
            nonce: AtomicU64::new(seed),
            sockets: AtomicUsize::new(0),
            sessions,
            presence: std::sync::OnceLock::new(),
            catch_up: std::sync::OnceLock::new(),
        })
    }

    /// What the hub holds for resuming, as counted against its configured bounds.
    pub fn memory(&self) -> HubMemory {
        let member_cache_ids = self.builder.lock().cached_member_ids();
        let (checkpoint_streams, checkpoint_bytes) = {
            let store = self.checkpoints.lock();
            (store.streams(), store.bytes())
        };
        let state = self.state.lock();
        HubMemory {
            checkpoint_streams,
            checkpoint_bytes,
            window_bytes: state.window_bytes,
            window_slots: state.window_slots,
            windows: state.windows.len(),
            broad_bytes: state.broad_bytes,
            broad_events: state.broad.len(),
            member_cache_ids,
        }
    }

    /// Open WebSocket connections on this node.
    pub fn connection_count(&self) -> usize {
        self.sockets.load(Ordering::Relaxed)
    }

    pub(crate) fn next_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// The last log index this hub published.
    #[cfg(test)]
    pub fn published_index(&self) -> u64 {
        self.state.lock().published
    }

    /// Called on every node for every applied entry, in log order. Builds each entry's events
    /// (reading the replica, outside the delivery lock), then delivers them all under one short
    /// lock: per recipient a window push and, if connected here, an O(1) queue offer.
    pub fn publish(&self, applied: &[Applied]) {
        if applied.is_empty() {
            return;
        }
        let mut builder = self.builder.lock();
        let published = self.state.lock().published;
        let mut built: Vec<EntryEvents> = Vec::with_capacity(applied.len());
        for (position, entry) in applied.iter().enumerate() {
            if entry.index <= published {
                continue;
            }
            match builder.build(&self.engine, applied, position) {
                Ok(events) => built.push(events),
                Err(error) => {
                    tracing::error!(index = entry.index, %error, "could not build WebSocket events");
                    built.push(EntryEvents {
                        index: entry.index,
                        ..EntryEvents::default()
                    });
                }
            }
        }
        let mut dropped = 0u64;
        let mut closed_slow = 0u64;
        {
            let mut state = self.state.lock();
            if state.gap {
                if let Some(first) = applied.iter().find(|a| a.index > state.published) {
                    state.gap = false;
                    let from = first.index.saturating_sub(1);
                    state.tracking_from = state.tracking_from.max(from);
                    state.published = state.published.max(from);
                }
            }
            let window_cap = self.config.window_events.max(1);
            for entry in &built {
                if entry.index <= state.published {
                    continue;
                }
                for routed in &entry.routed {
                    let order = state.next_order;
                    state.next_order += 1;
                    let mut offer = |conn: &Arc<Conn>| match conn.offer(entry.index, &routed.event)
                    {
                        Offer::Dropped => dropped += 1,
                        Offer::ClosedSlow => closed_slow += 1,
                        _ => {}
                    };
                    let audience = &routed.audience;
                    if audience.len() > self.config.broad_audience {
                        // Only the recipients connected here: walk whichever side is smaller.
                        if audience.len() > state.conns.len() {
                            for (user, list) in state.conns.iter() {
                                if audience.contains(*user) {
                                    list.iter().for_each(&mut offer);
                                }
                            }
                        } else {
                            audience.for_each(|user| {
                                if let Some(list) = state.conns.get(&user) {
                                    list.iter().for_each(&mut offer);
                                }
                            });
                        }
                        let bytes = BROAD_BYTES + routed.event.bytes() + audience.retained_bytes();
                        state.push_broad(
                            Broad {
                                index: entry.index,
                                order,
                                event: routed.event.clone(),
                                audience: audience.clone(),
                                bytes,
                            },
                            self.config.broad_events.max(1),
                            self.config.broad_bytes,
                        );
                        continue;
                    }
                    // Each slot counts its share of the event, so an event in every member's
                    // window is counted about once in all.
                    let share = routed.event.bytes() / audience.len().max(1);
                    let mut recipients = Vec::with_capacity(audience.len());
                    audience.for_each(|user| recipients.push(user));
                    for user in recipients {
                        let slot = Slot {
                            index: entry.index,
                            order,
                            event: routed.event.clone(),
                            bytes: SLOT_BYTES + share,
                        };
                        state.push_window(user, slot, window_cap);
                        state.enforce_window_bounds(
                            self.config.window_bytes,
                            self.config.window_users,
                        );
                        if let Some(list) = state.conns.get(&user) {
                            list.iter().for_each(&mut offer);
                        }
                    }
                }
                for control in &entry.controls {
                    match control {
                        Control::SessionRevoked { user, token } => {
                            if let Some(list) = state.conns.get(user) {
                                for conn in list
                                    .iter()
                                    .filter(|c| c.identity().map(|i| i.token) == Some(*token))
                                {
                                    conn.close(Closing::Close(
                                        super::conn::CLOSE_AUTH,
                                        "session revoked".into(),
                                    ));
                                }
                            }
                        }
                    }
                }
                state.published = entry.index;
            }
            if let Some(last) = applied.last() {
                state.published = state.published.max(last.index);
            }
        }
        drop(builder);
        if dropped > 0 {
            ::metrics::counter!("confab_ws_events_dropped_total").increment(dropped);
        }
        if closed_slow > 0 {
            ::metrics::counter!("confab_ws_connections_closed_slow_total").increment(closed_slow);
            tracing::info!(count = closed_slow, "closed slow WebSocket connections");
        }
    }

    /// The caller lost applied entries (its subscription lagged): events may be missing, so
    /// every connection on this node is closed (code 4004; clients reconnect and, since this
    /// node cannot number the gap, get a new hello and refetch) and no stream that started
    /// before the gap is resumed here.
    pub fn lagged(&self) {
        // Missed entries may have changed memberships: forget the cached ones.
        let mut builder = self.builder.lock();
        *builder = EventBuilder::new(self.config.member_cache_ids);
        let mut state = self.state.lock();
        state.gap = true;
        for list in state.conns.values() {
            for conn in list {
                conn.close(Closing::Close(
                    super::conn::CLOSE_LAGGED,
                    "server fell behind: reconnect".into(),
                ));
            }
        }
        state.conns.clear();
    }

    /// The local state was replaced by a snapshot up to `index`: the outcomes it covers were
    /// never published here. Same as [`Hub::lagged`], and nothing before `index` is resumable.
    pub fn snapshot_installed(&self, index: u64) {
        self.lagged();
        let mut state = self.state.lock();
        state.published = state.published.max(index);
        state.tracking_from = state.tracking_from.max(index);
    }

    /// Registers an authenticated connection: resumes the stream named by `resume` when this
    /// node's window for the user covers it, else starts a new stream with `hello`. Everything
    /// happens under the state lock, so no published event falls between the replay and the
    /// live stream.
    pub fn register(&self, conn: &Arc<Conn>, resume: Option<Resume>) -> Registered {
        if let Some(presence) = self.presence.get() {
            presence.connected(conn.user());
        }
        let mut state = self.state.lock();
        let user = conn.user();
        let published = state.published;
        if let Some(resume) = resume {
            if let Some(replayed) = self.try_resume(&state, conn, resume) {
                state.conns.entry(user).or_default().push(conn.clone());
                conn.set_registered();
                return Registered::Resumed { replayed };
            }
        }
        let nonce = self.nonce.fetch_add(0x9e37_79b9, Ordering::Relaxed) as u32;
        let stream = stream_id(user, published, nonce);
        let connection_id = stream.to_base32();
        let hello = Arc::new(events::hello(
            user,
            &connection_id,
            &self.config.server_version,
        ));
        {
            let mut q = conn.queue.lock();
            q.after_index = published;
            q.ordinal = 0;
            q.skip_below = 0;
            q.next_seq = 1;
            q.stream = Some(stream);
            q.checkpointed = None;
            q.frames.push_back(Out::Event(hello, 0));
            q.events += 1;
        }
        conn.wake.notify_one();
        state.conns.entry(user).or_default().push(conn.clone());
        conn.set_registered();
        Registered::Fresh { connection_id }
    }

    /// Replays the events of `resume`'s stream from `next_seq` on, if this node can number
    /// them: from the newest point of the stream whose numbering it knows — a checkpoint (its
    /// own or a peer's) or the stream's start — after which it has seen every event of the user.
    fn try_resume(&self, state: &State, conn: &Arc<Conn>, resume: Resume) -> Option<usize> {
        // Before its first publish (or after a lag) this node cannot vouch for any index.
        if resume.next_seq == 0 || state.gap {
            tracing::debug!(user = %conn.user(), gap = state.gap, "resume refused: nothing published here yet");
            return None;
        }
        let user = conn.user();
        let empty = Window::default();
        let window = state.windows.get(&user).unwrap_or(&empty);
        // This node knows every event of the user after `floor`.
        let floor = state
            .tracking_from
            .max(window.evicted_through)
            .max(state.broad_evicted_through)
            .max(state.windows_dropped_through);
        let have = resume.next_seq - 1;
        let start = (resume.stream.start >= floor).then_some((resume.stream.start, 0));
        let checkpoint = self
            .checkpoints
            .lock()
            .best(user, resume.stream.id, floor, have);
        let (base_index, base_seq) = match (checkpoint, start) {
            (Some(c), Some(s)) => c.max(s),
            (Some(point), None) | (None, Some(point)) => point,
            (None, None) => {
                tracing::debug!(
                    %user,
                    next_seq = resume.next_seq,
                    floor,
                    tracking_from = state.tracking_from,
                    newest_checkpoint = ?self.checkpoints.lock().newest(user, resume.stream.id),
                    "resume refused: no point of the stream this node can number from"
                );
                return None;
            }
        };
        // The user's stream after the base: their window merged with the broad events they
        // were in, in publish order. The k-th of those (1-based) is seq base_seq + k.
        let mut after: Vec<(u64, &Arc<Event>)> = window
            .entries
            .iter()
            .filter(|slot| slot.index > base_index)
            .map(|slot| (slot.order, &slot.event))
            .collect();
        after.extend(
            state
                .broad
                .iter()
                .filter(|b| b.index > base_index && b.audience.contains(user))
                .map(|b| (b.order, &b.event)),
        );
        after.sort_unstable_by_key(|(order, _)| *order);
        let count = base_seq + after.len() as u64;
        let wanted = resume.next_seq;
        // A client ahead of this node by more than a window is not believable.
        if wanted > count + 1 + self.config.window_events as u64 {
            tracing::debug!(%user, wanted, count, "resume refused: the client is too far ahead");
            return None;
        }
        let replay: Vec<Arc<Event>> = after
            .iter()
            .skip((have - base_seq) as usize)
            .map(|(_, event)| (*event).clone())
            .collect();
        let replayed = replay.len();
        {
            let mut q = conn.queue.lock();
            q.after_index = base_index;
            q.ordinal = count;
            q.skip_below = wanted;
            q.next_seq = wanted;
            q.stream = Some(resume.stream.id);
            q.checkpointed = None;
            for event in replay {
                let seq = q.next_seq;
                q.next_seq += 1;
                q.frames.push_back(Out::Event(event, seq));
                q.events += 1;
            }
        }
        conn.wake.notify_one();
        Some(replayed)
    }

    /// This node's checkpoints since the last call, recorded here too: every connection whose
    /// seq moved (and, every `REFRESH_ROUNDS` calls, every other one), plus the final ones of
    /// connections that closed. Called once a second and when a connection closed; the caller
    /// sends them to the peers ([`checkpoints::encode`]).
    pub fn take_checkpoints(&self) -> Vec<Checkpoint> {
        let mut state = self.state.lock();
        state.checkpoint_round += 1;
        let round = state.checkpoint_round;
        let index = state.published;
        let mut out = std::mem::take(&mut state.closed_checkpoints);
        for (user, list) in &state.conns {
            for conn in list {
                let mut q = conn.queue.lock();
                let (Some(stream), Some(seq)) = (q.stream, q.canonical_seq()) else {
                    continue;
                };
                let refresh = (round + conn.key).is_multiple_of(REFRESH_ROUNDS);
                if q.checkpointed != Some(seq) || refresh {
                    q.checkpointed = Some(seq);
                    out.push(Checkpoint {
                        user: *user,
                        stream,
                        index,
                        seq,
                    });
                }
            }
        }
        drop(state);
        let mut store = self.checkpoints.lock();
        for checkpoint in &out {
            store.record(*checkpoint);
        }
        out
    }

    /// Records a batch of checkpoints a peer sent.
    pub fn receive_checkpoints(&self, body: &[u8]) -> Result<usize, checkpoints::DecodeError> {
        let batch = checkpoints::decode(body)?;
        let mut store = self.checkpoints.lock();
        for checkpoint in &batch {
            store.record(*checkpoint);
        }
        drop(store);
        if let Some(newest) = batch.iter().map(|c| c.index).max() {
            self.peer_checkpoint_index
                .fetch_max(newest, Ordering::Relaxed);
        }
        Ok(batch.len())
    }

    /// The highest log index of a checkpoint a peer sent (0 = none yet).
    pub fn peer_checkpoint_index(&self) -> u64 {
        self.peer_checkpoint_index.load(Ordering::Relaxed)
    }

    /// Removes a connection from the index.
    pub fn unregister(&self, conn: &Arc<Conn>) {
        if !conn.is_registered() {
            return;
        }
        if let Some(presence) = self.presence.get() {
            presence.disconnected(conn.user());
        }
        let mut state = self.state.lock();
        let user = conn.user();
        let mut was_live = false;
        if let Some(list) = state.conns.get_mut(&user) {
            let before = list.len();
            list.retain(|c| c.key != conn.key);
            was_live = list.len() < before;
            if list.is_empty() {
                state.conns.remove(&user);
            }
        }
        // Only a connection that was offered every event up to `published` (not one a lag
        // already removed) knows its stream's seq there.
        let last = was_live
            .then(|| final_checkpoint(&conn.queue.lock(), user, state.published))
            .flatten();
        if let Some(checkpoint) = last {
            if state.closed_checkpoints.len() < CLOSED_CHECKPOINTS_MAX {
                state.closed_checkpoints.push(checkpoint);
                drop(state);
                self.checkpoints.lock().record(checkpoint);
                self.checkpoint_wake.notify_one();
            }
        }
    }

    /// Events held in a user's own window (tests).
    #[cfg(test)]
    pub fn window_len(&self, user: Id) -> usize {
        self.state
            .lock()
            .windows
            .get(&user)
            .map(|w| w.entries.len())
            .unwrap_or(0)
    }

    /// Whether each event in a user's own window has been rendered, oldest first (tests).
    #[cfg(test)]
    pub fn window_rendered(&self, user: Id) -> Vec<(&'static str, bool)> {
        self.state
            .lock()
            .windows
            .get(&user)
            .map(|w| {
                w.entries
                    .iter()
                    .map(|slot| (slot.event.name, slot.event.is_rendered()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Connections of a user on this node (tests, diagnostics).
    #[cfg(test)]
    pub fn conns_of(&self, user: Id) -> usize {
        self.state
            .lock()
            .conns
            .get(&user)
            .map(|l| l.len())
            .unwrap_or(0)
    }
}

/// A closing connection's last checkpoint, if its numbering is canonical.
fn final_checkpoint(q: &Queue, user: Id, index: u64) -> Option<Checkpoint> {
    Some(Checkpoint {
        user,
        stream: q.stream?,
        index,
        seq: q.canonical_seq()?,
    })
}
