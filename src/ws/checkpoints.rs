//! Stream checkpoints: where a WebSocket stream's seq numbering stood at a log index, so that
//! any node can continue a stream of any age from the newest checkpoint its window still
//! covers, instead of counting from the stream's `hello`.
//!
//! A checkpoint `(user, stream, index, seq)` says: the user's events with a log index ≤ `index`
//! are exactly the stream's seqs 1..=`seq`. Only the node serving a connection makes them,
//! between two published entries (under the hub's state lock) and only while the connection's
//! seqs are the stream's canonical numbering (nothing dropped, no catch-up pending), so every
//! checkpoint of a stream, from whichever node, agrees with every other. Nodes share them over
//! the node-to-node port in batches (`TOPIC`), once a second and when a connection closes: no
//! Raft write, nothing per event.
//!
//! The store keeps the newest `POINTS_PER_STREAM` checkpoints of at most `max_streams` streams
//! (the least recently updated stream goes first), all counted in bytes for `/metrics`.

use confab_storage::Id;
use std::collections::{HashMap, VecDeque};

/// The peer-message topic checkpoint batches travel on.
pub const TOPIC: &str = "ws.checkpoints";
/// Checkpoints kept per stream: a client that missed what its last socket had queued resumes
/// from an older one.
pub const POINTS_PER_STREAM: usize = 8;
/// Checkpoints per peer message at most.
pub const RECORDS_PER_MESSAGE: usize = 4096;
/// One encoded checkpoint: user, stream, index, seq.
const RECORD_BYTES: usize = 16 + 16 + 8 + 8;
/// First byte of a batch: the encoding's version.
const VERSION: u8 = 1;
/// Bytes a stream costs beyond its points: key, entry, map slot and order record (estimate).
const STREAM_BYTES: usize = 2 * 32 + 48 + 48;
const POINT_BYTES: usize = 16;

/// Where a stream's numbering stood at a log index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub user: Id,
    /// The stream's connection id, as an id.
    pub stream: Id,
    pub index: u64,
    pub seq: u64,
}

/// A batch a peer sent that does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty checkpoint batch")]
    Empty,
    #[error("checkpoint batch version {0} is not understood")]
    Version(u8),
    #[error("checkpoint batch of {0} bytes is not whole records")]
    Length(usize),
}

/// Encodes checkpoints as batches of at most `RECORDS_PER_MESSAGE`.
pub fn encode(checkpoints: &[Checkpoint]) -> Vec<Vec<u8>> {
    checkpoints
        .chunks(RECORDS_PER_MESSAGE)
        .map(|chunk| {
            let mut out = Vec::with_capacity(1 + chunk.len() * RECORD_BYTES);
            out.push(VERSION);
            for c in chunk {
                out.extend_from_slice(c.user.as_bytes());
                out.extend_from_slice(c.stream.as_bytes());
                out.extend_from_slice(&c.index.to_be_bytes());
                out.extend_from_slice(&c.seq.to_be_bytes());
            }
            out
        })
        .collect()
}

/// Decodes one batch.
pub fn decode(body: &[u8]) -> Result<Vec<Checkpoint>, DecodeError> {
    let (&version, records) = body.split_first().ok_or(DecodeError::Empty)?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    if records.len() % RECORD_BYTES != 0 {
        return Err(DecodeError::Length(body.len()));
    }
    Ok(records
        .chunks_exact(RECORD_BYTES)
        .map(|r| {
            let id = |at: usize| {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&r[at..at + 16]);
                Id::from_bytes(bytes)
            };
            let number = |at: usize| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&r[at..at + 8]);
                u64::from_be_bytes(bytes)
            };
            Checkpoint {
                user: id(0),
                stream: id(16),
                index: number(32),
                seq: number(40),
            }
        })
        .collect())
}

#[derive(Debug, Default)]
struct Points {
    /// (index, seq), newest index last.
    points: Vec<(u64, u64)>,
    /// Matches the stream's newest record in `Checkpoints::order`.
    stamp: u64,
}

/// The checkpoints this node knows, its own and its peers'.
#[derive(Debug)]
pub struct Checkpoints {
    streams: HashMap<(Id, Id), Points>,
    /// Streams in update order; a record whose stamp is not its stream's is stale.
    order: VecDeque<((Id, Id), u64)>,
    next_stamp: u64,
    max_streams: usize,
    points: usize,
}

impl Checkpoints {
    pub fn new(max_streams: usize) -> Checkpoints {
        Checkpoints {
            streams: HashMap::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            max_streams: max_streams.max(1),
            points: 0,
        }
    }

    /// Adds a checkpoint; a stream keeps its newest `POINTS_PER_STREAM` by index.
    pub fn record(&mut self, c: Checkpoint) {
        let key = (c.user, c.stream);
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let entry = self.streams.entry(key).or_default();
        let before = entry.points.len();
        match entry
            .points
            .binary_search_by_key(&c.index, |(index, _)| *index)
        {
            Ok(at) => entry.points[at].1 = c.seq,
            Err(at) => {
                if at == 0 && entry.points.len() >= POINTS_PER_STREAM {
                    // Older than everything kept.
                } else {
                    entry.points.insert(at, (c.index, c.seq));
                    if entry.points.len() > POINTS_PER_STREAM {
                        entry.points.remove(0);
                    }
                }
            }
        }
        let after = entry.points.len();
        entry.stamp = stamp;
        self.points = self.points + after - before;
        self.order.push_back((key, stamp));
        while self.streams.len() > self.max_streams {
            let Some((old, old_stamp)) = self.order.pop_front() else {
                break;
            };
            if self.streams.get(&old).map(|p| p.stamp) == Some(old_stamp) {
                if let Some(gone) = self.streams.remove(&old) {
                    self.points -= gone.points.len();
                }
            }
        }
        // Stale order records (streams updated again since) are compacted away in bulk.
        if self.order.len() > 2 * self.streams.len() + 1024 {
            let streams = &self.streams;
            self.order
                .retain(|(key, stamp)| streams.get(key).map(|p| p.stamp) == Some(*stamp));
        }
    }

    /// The newest checkpoint of the stream at or after `floor` whose seq the client already
    /// has (≤ `have`): (index, seq).
    pub fn best(&self, user: Id, stream: Id, floor: u64, have: u64) -> Option<(u64, u64)> {
        self.streams
            .get(&(user, stream))?
            .points
            .iter()
            .rev()
            .find(|(index, seq)| *index >= floor && *seq <= have)
            .copied()
    }

    /// The newest checkpoint of a stream, whatever its index (diagnostics).
    pub fn newest(&self, user: Id, stream: Id) -> Option<(u64, u64)> {
        self.streams.get(&(user, stream))?.points.last().copied()
    }

    /// Streams with checkpoints.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// What the store holds, estimated in bytes.
    pub fn bytes(&self) -> usize {
        self.streams.len() * STREAM_BYTES
            + self.points * POINT_BYTES
            + self.order.len() * std::mem::size_of::<((Id, Id), u64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    fn at(stream: u8, index: u64, seq: u64) -> Checkpoint {
        Checkpoint {
            user: id(1),
            stream: id(stream),
            index,
            seq,
        }
    }

    #[test]
    fn batches_round_trip_and_bad_bytes_are_refused() {
        let all: Vec<Checkpoint> = (0..RECORDS_PER_MESSAGE as u64 + 3)
            .map(|n| at(2, n, n * 2))
            .collect();
        let batches = encode(&all);
        assert_eq!(batches.len(), 2);
        let decoded: Vec<Checkpoint> = batches
            .iter()
            .flat_map(|b| decode(b).expect("valid batch"))
            .collect();
        assert_eq!(decoded, all);
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(decode(&[9]), Err(DecodeError::Version(9)));
        assert_eq!(decode(&batches[1][..10]), Err(DecodeError::Length(10)));
    }

    #[test]
    fn best_is_the_newest_the_window_covers_and_the_client_has() {
        let mut store = Checkpoints::new(10);
        for (index, seq) in [(100, 10), (200, 20), (300, 30)] {
            store.record(at(2, index, seq));
        }
        assert_eq!(store.best(id(1), id(2), 0, 1000), Some((300, 30)));
        // The client has only seq 25: 300's numbering starts past what it has.
        assert_eq!(store.best(id(1), id(2), 0, 25), Some((200, 20)));
        // The window covers only what is after 250.
        assert_eq!(store.best(id(1), id(2), 250, 25), None);
        assert_eq!(store.best(id(1), id(3), 0, 1000), None);
        assert_eq!(store.best(id(9), id(2), 0, 1000), None);
    }

    #[test]
    fn a_stream_keeps_its_newest_points_and_the_store_its_newest_streams() {
        let mut store = Checkpoints::new(2);
        for n in 0..(POINTS_PER_STREAM as u64 + 5) {
            store.record(at(2, 100 + n, n));
        }
        // An old point arriving late is not kept over newer ones.
        store.record(at(2, 1, 0));
        assert_eq!(store.best(id(1), id(2), 0, 0), None);
        assert_eq!(store.best(id(1), id(2), 0, 5), Some((105, 5)));
        assert_eq!(store.best(id(1), id(2), 0, 4), None);
        store.record(at(3, 50, 1));
        store.record(at(2, 500, 99));
        store.record(at(4, 50, 1));
        // Stream 3 was updated least recently.
        assert_eq!(store.streams(), 2);
        assert_eq!(store.best(id(1), id(3), 0, 10), None);
        assert_eq!(store.best(id(1), id(2), 0, 1000), Some((500, 99)));
        assert!(store.bytes() > 0);
        for n in 0..10_000u64 {
            store.record(at(2, 1000 + n, 100 + n));
        }
        assert!(store.order.len() <= 2 * store.streams() + 1025);
        assert_eq!(store.points, POINTS_PER_STREAM + 1);
    }
}
