//! The hub: per-user connection index, per-user replay windows, and `publish`, which turns
//! applied log entries into events and offers them to the connections of their recipients.

use super::conn::{Closing, Conn, Offer, Out};
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
    next_key: AtomicU64,
    nonce: AtomicU64,
    pub(crate) sockets: AtomicUsize,
    /// Live sessions by token, for the handshake here and for the HTTP API.
    pub sessions: crate::auth::Sessions,
}

/// A user's recent events, for resuming on any node.
#[derive(Debug, Default)]
struct Window {
    /// (log index, publish order, event), oldest first.
    entries: VecDeque<(u64, u64, Arc<Event>)>,
    /// The highest log index of an event that fell out of the window (0 = none).
    evicted_through: u64,
}

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
    /// Events for audiences larger than `broad_audience`, kept once for all their recipients
    /// instead of once per recipient: a join to a 50,000-member channel is one entry here,
    /// not 50,000 window pushes (and 50,000 × window memory) on every node.
    broad: VecDeque<Broad>,
    /// The highest log index of a broad event that fell out of `broad` (0 = none).
    broad_evicted_through: u64,
    /// Publish order of the next event: merges a user's window with `broad` on resume.
    next_order: u64,
    /// user → connections on this node.
    conns: HashMap<Id, Vec<Arc<Conn>>>,
}

/// An event of a broad audience, kept once.
#[derive(Debug)]
struct Broad {
    index: u64,
    order: u64,
    event: Arc<Event>,
    audience: events::Audience,
}

/// Where a connection asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The start index encoded in the connection id.
    pub start: u64,
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
pub fn connection_id(user: Id, start: u64, nonce: u32) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&start.to_be_bytes());
    bytes[8..12].copy_from_slice(&nonce.to_be_bytes());
    bytes[12..].copy_from_slice(&user_tag(user));
    Id::from_bytes(bytes).to_base32()
}

/// The start index of a connection id minted for `user`, if it is one.
pub fn parse_connection_id(user: Id, text: &str) -> Option<u64> {
    let id = Id::parse(text).ok()?;
    let bytes = id.as_bytes();
    if bytes[12..] != user_tag(user) {
        return None;
    }
    let mut start = [0u8; 8];
    start.copy_from_slice(&bytes[..8]);
    Some(u64::from_be_bytes(start))
}

impl Hub {
    pub fn new(engine: Arc<Engine>, proposer: Proposer, config: HubConfig) -> Arc<Hub> {
        let start = engine.applied_index().unwrap_or(0);
        let seed = crate::clock::now_ms() ^ u64::from(std::process::id()).rotate_left(32);
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
            builder: Mutex::new(EventBuilder::new()),
            next_key: AtomicU64::new(1),
            nonce: AtomicU64::new(seed),
            sockets: AtomicUsize::new(0),
            sessions: crate::auth::Sessions::default(),
        })
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
                    let State {
                        windows,
                        conns,
                        broad,
                        broad_evicted_through,
                        ..
                    } = &mut *state;
                    let mut offer = |conn: &Arc<Conn>| match conn.offer(entry.index, &routed.event)
                    {
                        Offer::Dropped => dropped += 1,
                        Offer::ClosedSlow => closed_slow += 1,
                        _ => {}
                    };
                    if routed.audience.len() > self.config.broad_audience {
                        broad.push_back(Broad {
                            index: entry.index,
                            order,
                            event: routed.event.clone(),
                            audience: routed.audience.clone(),
                        });
                        while broad.len() > self.config.broad_events.max(1) {
                            if let Some(old) = broad.pop_front() {
                                *broad_evicted_through = (*broad_evicted_through).max(old.index);
                            }
                        }
                        // Only the recipients connected here: walk whichever side is smaller.
                        if routed.audience.len() > conns.len() {
                            for (user, list) in conns.iter() {
                                if routed.audience.contains(*user) {
                                    list.iter().for_each(&mut offer);
                                }
                            }
                        } else {
                            routed.audience.for_each(|user| {
                                if let Some(list) = conns.get(&user) {
                                    list.iter().for_each(&mut offer);
                                }
                            });
                        }
                        continue;
                    }
                    routed.audience.for_each(|user| {
                        let window = windows.entry(user).or_default();
                        window
                            .entries
                            .push_back((entry.index, order, routed.event.clone()));
                        while window.entries.len() > window_cap {
                            if let Some((index, _, _)) = window.entries.pop_front() {
                                window.evicted_through = window.evicted_through.max(index);
                            }
                        }
                        if let Some(list) = conns.get(&user) {
                            list.iter().for_each(&mut offer);
                        }
                    });
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
        *builder = EventBuilder::new();
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
        let connection_id = connection_id(user, published, nonce);
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
            q.frames.push_back(Out::Event(hello, 0));
            q.events += 1;
        }
        conn.wake.notify_one();
        state.conns.entry(user).or_default().push(conn.clone());
        conn.set_registered();
        Registered::Fresh { connection_id }
    }

    /// Replays the events of `resume`'s stream from `next_seq` on, if this node can number
    /// them: it must have seen every event of the user after the stream's start.
    fn try_resume(&self, state: &State, conn: &Arc<Conn>, resume: Resume) -> Option<usize> {
        if resume.next_seq == 0 || resume.start < state.tracking_from {
            return None;
        }
        let user = conn.user();
        let empty = Window::default();
        let window = state.windows.get(&user).unwrap_or(&empty);
        if window.evicted_through > resume.start || state.broad_evicted_through > resume.start {
            return None;
        }
        // The user's stream after `start`: their window merged with the broad events they
        // were in, in publish order. Ordinal k (1-based) is seq k of that stream.
        let mut after: Vec<(u64, &Arc<Event>)> = window
            .entries
            .iter()
            .filter(|(index, _, _)| *index > resume.start)
            .map(|(_, order, event)| (*order, event))
            .collect();
        after.extend(
            state
                .broad
                .iter()
                .filter(|b| b.index > resume.start && b.audience.contains(user))
                .map(|b| (b.order, &b.event)),
        );
        after.sort_unstable_by_key(|(order, _)| *order);
        let count = after.len() as u64;
        let wanted = resume.next_seq;
        // A client ahead of this node by more than a window is not believable.
        if wanted > count + 1 + self.config.window_events as u64 {
            return None;
        }
        let replay: Vec<Arc<Event>> = after
            .iter()
            .skip((wanted - 1) as usize)
            .map(|(_, event)| (*event).clone())
            .collect();
        let replayed = replay.len();
        {
            let mut q = conn.queue.lock();
            q.after_index = resume.start;
            q.ordinal = count;
            q.skip_below = wanted;
            q.next_seq = wanted;
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

    /// Removes a connection from the index.
    pub fn unregister(&self, conn: &Arc<Conn>) {
        if !conn.is_registered() {
            return;
        }
        let mut state = self.state.lock();
        if let Some(list) = state.conns.get_mut(&conn.user()) {
            list.retain(|c| c.key != conn.key);
            if list.is_empty() {
                state.conns.remove(&conn.user());
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
                    .map(|(_, _, event)| (event.name, event.is_rendered()))
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
