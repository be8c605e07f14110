//! The raw Raft log column families that `confab-raft` builds its log store on, so that raft/
//! never names RocksDB. Entries are opaque bytes keyed by big-endian index, each stored with a
//! crc32 over index and payload that is checked on every read: a corrupted entry is an error,
//! never handed to the state machine. `raft_state` holds the vote, the committed id and the last
//! purged id as opaque bytes.
//!
//! Appends are acknowledged only when durable (WAL fsynced). [`LogWriter`] is the group commit:
//! appends that arrive while a sync is in flight are written together and share the next sync.

use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::{Result, StorageError};
use rocksdb::{WriteBatch, WriteOptions};
use std::sync::mpsc;
use std::sync::Arc;

/// Keys of the `raft_state` family.
pub mod state_key {
    pub const VOTE: &str = "vote";
    pub const COMMITTED: &str = "committed";
    pub const LAST_PURGED: &str = "last_purged";
}

fn entry_crc(index: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_be_bytes());
    hasher.update(payload);
    hasher.finalize()
}

pub(crate) fn encode_entry(index: u64, payload: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(4 + payload.len());
    value.extend_from_slice(&entry_crc(index, payload).to_be_bytes());
    value.extend_from_slice(payload);
    value
}

pub(crate) fn decode_entry(index: u64, value: &[u8]) -> Result<Vec<u8>> {
    if value.len() < 4 {
        return Err(StorageError::Corrupt(format!(
            "log entry {index} is truncated"
        )));
    }
    let stored = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
    let payload = &value[4..];
    if entry_crc(index, payload) != stored {
        return Err(StorageError::Corrupt(format!(
            "log entry {index} fails its crc32"
        )));
    }
    Ok(payload.to_vec())
}

fn index_of(key: &[u8]) -> Result<u64> {
    crate::engine::decode_u64(key)
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

impl Engine {
    fn log_batch(&self, entries: &[(u64, Vec<u8>)], batch: &mut WriteBatch) -> Result<()> {
        let cf = self.cf(Cf::RaftLog)?;
        for (index, payload) in entries {
            batch.put_cf(cf, index.to_be_bytes(), encode_entry(*index, payload));
        }
        Ok(())
    }

    /// Appends entries and returns once they are durable.
    pub fn log_append(&self, entries: &[(u64, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.log_batch(entries, &mut batch)?;
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    /// Entries with index in `[start, end)`, each crc-checked.
    pub fn log_read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut entries = Vec::new();
        if start >= end {
            return Ok(entries);
        }
        let reader = self.reader();
        let mut failure = None;
        reader.scan(
            Cf::RaftLog,
            &start.to_be_bytes(),
            Some(&end.to_be_bytes()),
            false,
            |key, value| match index_of(key).and_then(|i| Ok((i, decode_entry(i, value)?))) {
                Ok(entry) => {
                    entries.push(entry);
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(entries),
        }
    }

    /// The last entry of the log, if any.
    pub fn log_last(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let reader = self.reader();
        let mut last = None;
        reader.scan(Cf::RaftLog, &[], None, true, |key, value| {
            last = Some((key.to_vec(), value.to_vec()));
            false
        })?;
        match last {
            Some((key, value)) => {
                let index = index_of(&key)?;
                Ok(Some((index, decode_entry(index, &value)?)))
            }
            None => Ok(None),
        }
    }

    /// Deletes entries with index ≥ `from` (a conflicting suffix), durably.
    pub fn log_truncate(&self, from: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(Cf::RaftLog)?,
            from.to_be_bytes().as_slice(),
            [0xffu8; 9].as_slice(),
        );
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    /// Deletes entries with index ≤ `upto` and records `last_purged` with it, durably.
    pub fn log_purge(&self, upto: u64, last_purged: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Cf::RaftState)?, state_key::LAST_PURGED, last_purged);
        batch.delete_range_cf(
            self.cf(Cf::RaftLog)?,
            0u64.to_be_bytes(),
            upto.saturating_add(1).to_be_bytes(),
        );
        if upto == u64::MAX {
            batch.delete_cf(self.cf(Cf::RaftLog)?, u64::MAX.to_be_bytes());
        }
        self.db.write_opt(batch, &synced())?;
        // The range tombstone hides the entries at once but frees their space only when
        // compaction reaches them; SST files wholly inside the range can go now (a log holding
        // file chunks is gigabytes).
        let lower = 0u64.to_be_bytes();
        let upper = upto.saturating_add(1).to_be_bytes();
        if let Err(e) = self
            .db
            .delete_file_in_range_cf(self.cf(Cf::RaftLog)?, lower, upper)
        {
            tracing::warn!("purged log files not deleted (compaction will): {e}");
        }
        Ok(())
    }

    /// Estimated bytes on disk of the whole log: RocksDB's estimate from the SST files (not
    /// the memtable) plus the family's live blob files, where the big entries are (their bytes
    /// are not in the SSTs). A restarted node learns from it how big the log it kept is.
    pub fn log_approximate_bytes(&self) -> Result<u64> {
        let cf = self.cf(Cf::RaftLog)?;
        let (from, to) = (0u64.to_be_bytes(), u64::MAX.to_be_bytes());
        let sizes = self
            .db
            .get_approximate_sizes_cf(cf, &[rocksdb::Range::new(&from, &to)]);
        let in_ssts = sizes.first().copied().unwrap_or(0);
        let in_blobs = self
            .db
            .property_int_value_cf(cf, "rocksdb.live-blob-file-size")?
            .unwrap_or(0);
        Ok(in_ssts + in_blobs)
    }

    /// Stores a value of the Raft state (vote, committed, …) durably.
    pub fn log_state_put(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Cf::RaftState)?, key, value);
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    pub fn log_state_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(Cf::RaftState)?, key)?)
    }

    /// Writes entries without waiting for the disk: readable as soon as this returns, durable
    /// with the next synced write or [`Engine::log_sync`] (one WAL, so a sync covers every
    /// earlier write). Raft's non-blocking append uses this plus [`LogWriter::sync`].
    pub fn log_write(&self, entries: &[(u64, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        self.log_batch(entries, &mut batch)?;
        self.db.write(batch)?;
        Ok(())
    }

    /// Makes every earlier write durable (fsync of the WAL).
    pub fn log_sync(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// Stores a value of the Raft state without a sync of its own; durable with the next sync.
    /// For values whose loss in a crash only costs work, such as the committed id.
    pub fn log_state_put_relaxed(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Cf::RaftState)?, key, value);
        self.db.write(batch)?;
        Ok(())
    }
}

type Done = Box<dyn FnOnce(Result<()>) + Send>;

struct AppendRequest {
    entries: Vec<(u64, Vec<u8>)>,
    done: Done,
}

/// Group commit for log appends: one writer thread takes every append queued while the previous
/// sync ran, writes them in one batch, syncs once, and then acknowledges each.
#[derive(Clone)]
pub struct LogWriter {
    queue: mpsc::Sender<AppendRequest>,
}

impl LogWriter {
    pub fn start(engine: Arc<Engine>) -> LogWriter {
        let (queue, requests) = mpsc::channel::<AppendRequest>();
        std::thread::Builder::new()
            .name("confab-log-writer".into())
            .spawn(move || write_loop(&engine, requests))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the log writer: {e}"));
        LogWriter { queue }
    }

    /// Queues a sync of everything written so far (see [`Engine::log_write`]); syncs queued
    /// together share one fsync. `done` runs once durable (or failed).
    pub fn sync(&self, done: impl FnOnce(Result<()>) + Send + 'static) {
        self.append(Vec::new(), done)
    }

    /// Queues entries; `done` runs once they are durable (or failed).
    pub fn append(
        &self,
        entries: Vec<(u64, Vec<u8>)>,
        done: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        let request = AppendRequest {
            entries,
            done: Box::new(done),
        };
        if let Err(mpsc::SendError(request)) = self.queue.send(request) {
            (request.done)(Err(StorageError::Corrupt(
                "the log writer has stopped".into(),
            )));
        }
    }
}

fn write_loop(engine: &Engine, requests: mpsc::Receiver<AppendRequest>) {
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        while let Ok(more) = requests.try_recv() {
            group.push(more);
        }
        let mut batch = WriteBatch::default();
        let mut prepared = Ok(());
        for request in &group {
            if let Err(e) = engine.log_batch(&request.entries, &mut batch) {
                prepared = Err(e);
                break;
            }
        }
        let result = prepared.and_then(|_| {
            if batch.is_empty() {
                // Only syncs were asked for: fsync the WAL that earlier writes went to.
                engine.log_sync()
            } else {
                Ok(engine.db.write_opt(batch, &synced())?)
            }
        });
        let message = result.as_ref().err().map(|e| e.to_string());
        for request in group {
            let outcome = match &message {
                None => Ok(()),
                Some(m) => Err(StorageError::Corrupt(format!("log append failed: {m}"))),
            };
            (request.done)(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(dir.path()).unwrap());
        (dir, engine)
    }

    #[test]
    fn append_read_truncate_purge() {
        let (_dir, engine) = engine();
        let entries: Vec<(u64, Vec<u8>)> = (1..=10).map(|i| (i, vec![i as u8; 5])).collect();
        engine.log_append(&entries).unwrap();
        assert_eq!(engine.log_read(3, 6).unwrap(), entries[2..5].to_vec());
        assert_eq!(engine.log_last().unwrap(), Some((10, vec![10; 5])));
        engine.log_truncate(8).unwrap();
        assert_eq!(engine.log_last().unwrap().map(|e| e.0), Some(7));
        engine.log_purge(4, b"purged-4").unwrap();
        assert_eq!(
            engine.log_read(0, 100).unwrap().first().map(|e| e.0),
            Some(5)
        );
        assert_eq!(
            engine.log_state_get(state_key::LAST_PURGED).unwrap(),
            Some(b"purged-4".to_vec())
        );
        engine.log_state_put(state_key::VOTE, b"vote").unwrap();
        assert_eq!(
            engine.log_state_get(state_key::VOTE).unwrap(),
            Some(b"vote".to_vec())
        );
    }

    fn log_blob_bytes(engine: &Engine) -> u64 {
        let cf = engine.cf(Cf::RaftLog).unwrap();
        engine
            .db
            .property_int_value_cf(cf, "rocksdb.live-blob-file-size")
            .unwrap()
            .unwrap_or(0)
    }

    /// File chunks in the log live in blob files: read back whole, counted in the size a
    /// restarted node learns, and their blob files deleted once the log is purged past them.
    #[test]
    fn big_entries_live_in_blob_files_that_go_with_the_purge() {
        let (_dir, engine) = engine();
        let big = |i: u64| vec![i as u8; 256 << 10];
        let entries: Vec<(u64, Vec<u8>)> = (1..=16).map(|i| (i, big(i))).collect();
        engine.log_append(&entries).unwrap();
        engine
            .log_append(&[(17, b"a small entry stays in the SST".to_vec())])
            .unwrap();
        engine.flush().unwrap();
        let in_blobs = log_blob_bytes(&engine);
        assert!(
            in_blobs >= 16 * (256 << 10),
            "{in_blobs} bytes in blob files"
        );
        assert!(engine.log_approximate_bytes().unwrap() >= in_blobs);
        assert_eq!(engine.log_read(3, 5).unwrap(), entries[2..4].to_vec());
        assert_eq!(
            engine.log_last().unwrap().map(|e| e.0),
            Some(17),
            "the small entry after them"
        );
        engine.log_purge(16, b"purged-16").unwrap();
        engine.compact().unwrap();
        assert_eq!(
            log_blob_bytes(&engine),
            0,
            "purged chunks' blob files remain"
        );
        assert_eq!(engine.log_read(0, 100).unwrap().len(), 1);
        assert!(engine.log_approximate_bytes().unwrap() < 64 << 10);
    }

    #[test]
    fn a_corrupted_entry_is_an_error() {
        let (_dir, engine) = engine();
        engine
            .log_append(&[(1, b"good".to_vec()), (2, b"also good".to_vec())])
            .unwrap();
        let cf = engine.cf(Cf::RaftLog).unwrap();
        let mut raw = engine.db.get_cf(cf, 2u64.to_be_bytes()).unwrap().unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        engine.db.put_cf(cf, 2u64.to_be_bytes(), raw).unwrap();
        assert!(matches!(
            engine.log_read(1, 3),
            Err(StorageError::Corrupt(_))
        ));
        assert!(engine.log_last().is_err());
        assert_eq!(engine.log_read(1, 2).unwrap().len(), 1);
    }

    #[test]
    fn group_commit_acknowledges_every_append() {
        let (_dir, engine) = engine();
        let writer = LogWriter::start(engine.clone());
        let (done, acks) = mpsc::channel();
        for i in 1..=200u64 {
            let done = done.clone();
            writer.append(vec![(i, i.to_be_bytes().to_vec())], move |r| {
                done.send((i, r.is_ok())).unwrap();
            });
        }
        let mut acked: Vec<(u64, bool)> = (0..200).map(|_| acks.recv().unwrap()).collect();
        acked.sort();
        assert!(acked.iter().all(|(_, ok)| *ok));
        assert_eq!(acked.len(), 200);
        assert_eq!(engine.log_read(1, 201).unwrap().len(), 200);
    }
}
