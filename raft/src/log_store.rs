//! openraft's log store over confab-storage's raw log families. Entries are rmp-serde encoded
//! openraft entries; storage adds and checks a crc32 per entry, so a corrupted entry surfaces as
//! an `InvalidData` error and is never applied.
//!
//! Append is non-blocking in openraft 0.10's sense: the entries are written (unsynced) before
//! `append` returns, so every reader sees them at once, and the flush callback fires from the
//! storage group-commit thread once a WAL sync covers them. Appends that arrive while a sync is
//! running share the next sync. Vote, truncate and purge are synced writes in call order; a
//! synced write also makes every earlier unsynced write durable (one WAL).

use crate::codec::{decode, encode, storage};
use crate::log_sizes::LogSizes;
use crate::types::{Entry, LogId, TypeConfig, Vote};
use confab_storage::log::state_key;
use confab_storage::{Engine, LogWriter};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// The Raft log of one node; cheap to clone (replication tasks each hold a reader clone).
#[derive(Clone)]
pub(crate) struct LogStore {
    engine: Arc<Engine>,
    writer: LogWriter,
    /// Bytes per entry, for snapshotting and purging by size (`crate::node`).
    sizes: Arc<LogSizes>,
}

impl LogStore {
    pub(crate) fn new(engine: Arc<Engine>, sizes: Arc<LogSizes>) -> LogStore {
        let writer = LogWriter::start(engine.clone());
        LogStore {
            engine,
            writer,
            sizes,
        }
    }

    async fn state_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> io::Result<Option<T>> {
        let engine = self.engine.clone();
        let raw = storage(move || engine.log_state_get(key)).await?;
        raw.as_deref().map(decode).transpose()
    }
}

/// `[start, end)` of a range of indexes.
fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

fn corrupt(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = index_bounds(&range);
        let engine = self.engine.clone();
        let raw = storage(move || engine.log_read(start, end)).await?;
        let mut entries = Vec::with_capacity(raw.len());
        let mut expected = None;
        for (index, payload) in raw {
            let entry: Entry = decode(&payload)?;
            if entry.index() != index {
                return Err(corrupt(format!(
                    "log key {index} holds the entry of index {}",
                    entry.index()
                )));
            }
            if let Some(expected) = expected {
                if index != expected {
                    return Err(corrupt(format!(
                        "log hole: {index} follows {}",
                        expected - 1
                    )));
                }
            }
            expected = Some(index + 1);
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.state_get(state_key::VOTE).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let engine = self.engine.clone();
        let last = storage(move || engine.log_last()).await?;
        let last_purged_log_id: Option<LogId> = self.state_get(state_key::LAST_PURGED).await?;
        let last_log_id = match last {
            Some((_, payload)) => Some(decode::<Entry>(&payload)?.log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let bytes = encode(vote)?;
        let engine = self.engine.clone();
        storage(move || engine.log_state_put(state_key::VOTE, &bytes)).await
    }

    /// Committed changes with every commit; it is written without a sync of its own and becomes
    /// durable with the next append's sync. Losing the newest value in a crash only means
    /// re-applying a little less on restart (the state machine is durable anyway).
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let bytes = encode(&committed)?;
        let engine = self.engine.clone();
        storage(move || engine.log_state_put_relaxed(state_key::COMMITTED, &bytes)).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self
            .state_get::<Option<LogId>>(state_key::COMMITTED)
            .await?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            encoded.push((entry.index(), encode(&entry)?));
        }
        if !encoded.is_empty() {
            let sizes: Vec<(u64, u64)> = encoded
                .iter()
                .map(|(index, bytes)| (*index, bytes.len() as u64))
                .collect();
            let engine = self.engine.clone();
            storage(move || engine.log_write(&encoded)).await?;
            for (index, bytes) in sizes {
                self.sizes.appended(index, bytes);
            }
        }
        self.writer.sync(move |result| {
            callback.io_completed(result.map_err(crate::codec::storage_io));
        });
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|id| id.index() + 1).unwrap_or(0);
        let engine = self.engine.clone();
        storage(move || engine.log_truncate(from)).await?;
        self.sizes.truncated(from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let bytes = encode(&log_id)?;
        let upto = log_id.index();
        let engine = self.engine.clone();
        storage(move || engine.log_purge(upto, &bytes)).await?;
        self.sizes.purged(upto);
        Ok(())
    }
}
