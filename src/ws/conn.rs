//! One connection's outbound side: a bounded queue the hub pushes into (never blocking, lock
//! held for a push), and a writer task that drains everything pending into one reusable buffer
//! of WebSocket frames and writes it with one `write_all` (corking), then flushes.

use super::events::Event;
use bytes::Bytes;
use confab_storage::Id;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Close code for a connection closed because it did not keep up.
pub const CLOSE_SLOW: u16 = 4003;
/// Close code when this node missed applied entries and cannot vouch for the stream.
pub const CLOSE_LAGGED: u16 = 4004;
/// Close code when no authentication arrived in time.
pub const CLOSE_AUTH: u16 = 1008;

/// Bytes per `write_all` at most; larger backlogs go out in several writes.
const CORK_BYTES: usize = 256 * 1024;

/// A frame waiting to be written.
#[derive(Debug, Clone)]
pub enum Out {
    /// An event with the seq this connection gives it.
    Event(Arc<Event>, u64),
    /// A reply to a client action (no seq): a complete JSON text.
    Reply(Bytes),
    /// Already framed bytes (fastwebsockets' pong and close answers).
    Raw(Bytes),
}

/// How the writer ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// Send a close frame with this code and reason, then stop.
    Close(u16, String),
    /// Flush what is queued and stop (the client closed, or its close was answered).
    Flush,
}

/// What an offered event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Not for this connection (before its start, or already delivered before a resume).
    Skipped,
    /// Dropped because the queue is past its high-water mark (typing/viewed class).
    Dropped,
    /// The queue was full of events the client must have: the connection is being closed.
    ClosedSlow,
    /// The connection is closing; nothing is queued any more.
    Closed,
}

#[derive(Debug, Default)]
pub struct Queue {
    pub frames: VecDeque<Out>,
    /// Events queued (not replies), for the bound.
    pub events: usize,
    /// Position of the last event of this user's stream offered to this connection.
    pub ordinal: u64,
    /// Events with an ordinal below this were delivered before (resume on a lagging node).
    pub skip_below: u64,
    /// The seq the next queued event gets.
    pub next_seq: u64,
    /// Log index at which this connection's stream starts (events after it are its own).
    pub after_index: u64,
    pub closing: Option<Closing>,
    /// Events dropped for this connection: from the first one, its seqs are no longer the
    /// stream's canonical numbering and it makes no more checkpoints.
    pub dropped: u64,
    /// The stream's connection id, once registered.
    pub stream: Option<Id>,
    /// The seq of the last checkpoint made of this connection.
    pub checkpointed: Option<u64>,
}

impl Queue {
    /// The stream's seq as of the hub's last published index (read under the hub's state lock,
    /// that pair is a checkpoint), when this connection's seqs are the stream's canonical
    /// numbering: every event after the start was numbered (none dropped) and any catch-up
    /// after a resume on a lagging node is over.
    pub fn canonical_seq(&self) -> Option<u64> {
        (self.stream.is_some() && self.dropped == 0 && self.next_seq == self.ordinal + 1)
            .then_some(self.ordinal)
    }
}

/// Who a connection authenticated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user: Id,
    /// The session token it authenticated with.
    pub token: Id,
}

/// A connection as the hub sees it. Its identity is set once, when it authenticates (on the
/// upgrade or by `authentication_challenge`); before that its queue carries replies only.
#[derive(Debug)]
pub struct Conn {
    pub key: u64,
    identity: OnceLock<Identity>,
    pub queue: Mutex<Queue>,
    pub wake: Notify,
    capacity: usize,
    high_water: usize,
    registered: AtomicBool,
}

impl Conn {
    pub fn new(key: u64, capacity: usize) -> Conn {
        let capacity = capacity.max(4);
        Conn {
            key,
            identity: OnceLock::new(),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            capacity,
            high_water: capacity - capacity / 4,
            registered: AtomicBool::new(false),
        }
    }

    /// Sets who the connection is; false when it already had an identity.
    pub fn authenticate(&self, identity: Identity) -> bool {
        self.identity.set(identity).is_ok()
    }

    pub fn identity(&self) -> Option<Identity> {
        self.identity.get().copied()
    }

    /// The user, or [`Id::NONE`] before authentication.
    pub fn user(&self) -> Id {
        self.identity.get().map(|i| i.user).unwrap_or(Id::NONE)
    }

    pub fn set_registered(&self) {
        self.registered.store(true, Ordering::Release);
    }

    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// Offers the next event of this user's stream (log index `index`). Called by the hub with
    /// its state lock held: O(1), no allocation beyond the queue slot.
    pub fn offer(&self, index: u64, event: &Arc<Event>) -> Offer {
        let mut q = self.queue.lock();
        if index <= q.after_index {
            return Offer::Skipped;
        }
        q.ordinal += 1;
        if q.ordinal < q.skip_below {
            return Offer::Skipped;
        }
        if q.closing.is_some() {
            // Numbered but never sent, like an event lost in a dying socket: the numbering
            // stays whole, so the final checkpoint of the stream is still true.
            q.next_seq += 1;
            return Offer::Closed;
        }
        if q.events >= self.high_water && event.droppable {
            q.dropped += 1;
            tracing::trace!(
                event = event.name,
                key = self.key,
                "dropped for a slow connection"
            );
            return Offer::Dropped;
        }
        if q.events >= self.capacity {
            q.next_seq += 1;
            q.frames.clear();
            q.events = 0;
            q.closing = Some(Closing::Close(
                CLOSE_SLOW,
                "slow consumer: send queue full, reconnect to resume".into(),
            ));
            drop(q);
            self.wake.notify_one();
            return Offer::ClosedSlow;
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        q.events += 1;
        q.frames.push_back(Out::Event(event.clone(), seq));
        drop(q);
        self.wake.notify_one();
        Offer::Queued
    }

    /// Queues a frame that is not an event (replies, control answers): outside the event bound,
    /// but a client that floods requests without reading is closed at twice the capacity.
    pub fn push(&self, out: Out) {
        let mut q = self.queue.lock();
        if q.closing.is_some() {
            return;
        }
        if q.frames.len() >= 2 * self.capacity {
            // A client that sends requests and never reads the answers.
            q.frames.clear();
            q.events = 0;
            q.closing = Some(Closing::Close(
                CLOSE_SLOW,
                "slow consumer: replies not read".into(),
            ));
            drop(q);
            self.wake.notify_one();
            return;
        }
        q.frames.push_back(out);
        drop(q);
        self.wake.notify_one();
    }

    /// Starts closing: the writer sends what the `closing` asks and stops.
    pub fn close(&self, closing: Closing) {
        let mut q = self.queue.lock();
        if q.closing.is_none() {
            q.closing = Some(closing);
        }
        drop(q);
        self.wake.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.queue.lock().closing.is_some()
    }
}

/// Appends an unmasked server frame header for a payload of `len` bytes.
pub fn frame_header(opcode: u8, len: usize, out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends one frame for `out`, as `user` receives it, to `buf`; returns whether it was an
/// event.
pub fn encode(out: &Out, user: Id, buf: &mut Vec<u8>) -> bool {
    match out {
        Out::Event(event, seq) => {
            event.write_frame(*seq, user, buf);
            true
        }
        Out::Reply(text) => {
            frame_header(0x1, text.len(), buf);
            buf.extend_from_slice(text);
            false
        }
        Out::Raw(bytes) => {
            buf.extend_from_slice(bytes);
            false
        }
    }
}

/// A close frame (code + reason, reason cut to fit a control frame).
pub fn close_frame(code: u16, reason: &str, buf: &mut Vec<u8>) {
    let mut reason = reason.as_bytes();
    if reason.len() > 123 {
        reason = &reason[..123];
    }
    frame_header(0x8, 2 + reason.len(), buf);
    buf.extend_from_slice(&code.to_be_bytes());
    buf.extend_from_slice(reason);
}

/// Drains the queue into the socket until the connection closes or the socket fails.
pub async fn write_loop<W: AsyncWrite + Unpin>(conn: Arc<Conn>, mut io: W) {
    // Both start empty and are released whenever the connection goes idle: most connections
    // are idle most of the time, and their memory is what bounds connections per node.
    let mut pending: VecDeque<Out> = VecDeque::new();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Known once the socket authenticates (the challenge may come after this loop starts).
        let user = conn.user();
        let closing = {
            let mut q = conn.queue.lock();
            std::mem::swap(&mut q.frames, &mut pending);
            q.events = 0;
            q.closing.clone()
        };
        let mut sent_events = 0u64;
        while !pending.is_empty() {
            buf.clear();
            while let Some(out) = pending.pop_front() {
                sent_events += encode(&out, user, &mut buf) as u64;
                if buf.len() >= CORK_BYTES {
                    break;
                }
            }
            if io.write_all(&buf).await.is_err() {
                conn.close(Closing::Flush);
                return;
            }
        }
        if sent_events > 0 {
            ::metrics::counter!("confab_ws_events_sent_total").increment(sent_events);
        }
        match closing {
            Some(Closing::Close(code, reason)) => {
                buf.clear();
                close_frame(code, &reason, &mut buf);
                let _ = io.write_all(&buf).await;
                let _ = io.flush().await;
                let _ = io.shutdown().await;
                return;
            }
            Some(Closing::Flush) => {
                let _ = io.flush().await;
                let _ = io.shutdown().await;
                return;
            }
            None => {}
        }
        if io.flush().await.is_err() {
            conn.close(Closing::Flush);
            return;
        }
        let idle = conn.queue.lock().frames.is_empty() && !conn.is_closing();
        if idle {
            buf = Vec::new();
            pending = VecDeque::new();
            conn.wake.notified().await;
        } else if buf.capacity() > 4 * CORK_BYTES {
            buf = Vec::new();
        }
    }
}
