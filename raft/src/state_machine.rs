//! openraft's state machine = confab-storage. A batch of committed entries is applied with ONE
//! `Engine::apply_batch` call, which writes the commands, the applied index and our replication
//! meta (last applied log id + last membership) in one WriteBatch, off the async runtime.
//!
//! Snapshots are storage's streaming export written to a file of the snapshot directory and are
//! installed by storage's verified import. The export cannot hand back the replication meta of
//! the RocksDB snapshot it read, so the builder reads the meta before exporting and accepts the
//! export only if its applied index equals the meta's (no apply or install ran in between);
//! after a few lost races it holds the apply gate for one export.

use crate::codec::{blocking, decode, encode, storage_io};
use crate::hub::{AppliedEvent, ApplyHub};
use crate::metrics::Counters;
use crate::snapshot_store::{SnapshotFile, SnapshotStore};
use crate::types::{LogId, Reply, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use confab_storage::{Applied, Command, Engine, Outcome};
use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Stored by storage atomically with every applied batch (`Engine::replication_meta`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ReplicationMeta {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl ReplicationMeta {
    pub(crate) fn load(engine: &Engine) -> io::Result<ReplicationMeta> {
        match engine.replication_meta().map_err(storage_io)? {
            Some(bytes) => decode(&bytes),
            None => Ok(ReplicationMeta::default()),
        }
    }

    fn applied_index(&self) -> u64 {
        self.last_applied.as_ref().map(|id| id.index).unwrap_or(0)
    }
}

/// Shared by the state machine and its snapshot builders.
struct Shared {
    engine: Arc<Engine>,
    snapshots: SnapshotStore,
    /// Held around each apply_batch; a builder takes it only as a last resort.
    apply_gate: Mutex<()>,
    /// Odd while a snapshot install rewrites the state; bumped twice per install.
    install_epoch: AtomicU64,
    counters: Arc<Counters>,
}

pub(crate) struct StateMachine {
    shared: Arc<Shared>,
    hub: Arc<ApplyHub>,
    membership: StoredMembership,
}

impl StateMachine {
    pub(crate) async fn open(
        engine: Arc<Engine>,
        snapshots: SnapshotStore,
        hub: Arc<ApplyHub>,
    ) -> io::Result<StateMachine> {
        let reading = engine.clone();
        let meta = blocking(move || ReplicationMeta::load(&reading)).await??;
        let counters = hub.counters.clone();
        Ok(StateMachine {
            shared: Arc::new(Shared {
                engine,
                snapshots,
                apply_gate: Mutex::new(()),
                install_epoch: AtomicU64::new(0),
                counters,
            }),
            hub,
            membership: meta.membership,
        })
    }
}

fn command_of(entry: &crate::types::Entry) -> Option<&Command> {
    match &entry.payload {
        EntryPayload::Normal(proposal) => Some(&proposal.command),
        _ => None,
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let engine = self.shared.engine.clone();
        let meta = blocking(move || ReplicationMeta::load(&engine)).await??;
        Ok((meta.last_applied, meta.membership))
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let items: Vec<EntryResponder<TypeConfig>> = entries.try_collect().await?;
        let Some((last, _)) = items.last() else {
            return Ok(());
        };
        let last_applied = last.log_id;
        let (entries, responders): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        for entry in &entries {
            if let EntryPayload::Membership(membership) = &entry.payload {
                self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
            }
        }
        let meta = encode(&ReplicationMeta {
            last_applied: Some(last_applied),
            membership: self.membership.clone(),
        })?;

        let shared = self.shared.clone();
        let started = Instant::now();
        let (entries, results) = blocking(move || {
            let _gate = shared.apply_gate.lock();
            let batch: Vec<(u64, Option<&Command>)> = entries
                .iter()
                .map(|entry| (entry.log_id.index, command_of(entry)))
                .collect();
            let results = shared.engine.apply_batch(&batch, Some(&meta));
            (entries, results)
        })
        .await?;
        let results = results.map_err(storage_io)?;
        let counters = &self.hub.counters;
        counters.apply_latency.record(started.elapsed());
        Counters::bump(&counters.applied_batches);
        counters
            .applied_entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);

        // Storage returns one result per command and per skipped entry, in entry order.
        let mut results = results.into_iter().peekable();
        let mut published: Vec<Applied> = Vec::new();
        for (entry, responder) in entries.into_iter().zip(responders) {
            let index = entry.log_id.index;
            let applied = match results.peek() {
                Some(result) if result.index == index => results.next(),
                _ => None,
            };
            let fresh = applied
                .as_ref()
                .filter(|a| !matches!(a.result, Ok(Outcome::AlreadyApplied)));
            if let (EntryPayload::Normal(proposal), Some(applied)) = (&entry.payload, fresh) {
                self.hub.complete(&proposal.id, applied);
                published.push(applied.clone());
            }
            if let Some(responder) = responder {
                responder.send(Reply(applied));
            }
        }
        if !published.is_empty() {
            self.hub.publish(AppliedEvent::Batch(published));
        }
        self.hub.set_applied(last_applied.index);
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let shared = self.shared.clone();
        let meta_owned = meta.clone();
        let snapshot_bytes = snapshot.len;
        let replication = encode(&ReplicationMeta {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        })?;
        blocking(move || -> io::Result<()> {
            let _gate = shared.apply_gate.lock();
            shared.install_epoch.fetch_add(1, Ordering::SeqCst);
            let result = (|| {
                let mut file = snapshot.file.as_ref();
                file.seek(SeekFrom::Start(0))?;
                shared
                    .engine
                    .import_snapshot(BufReader::new(file))
                    .map_err(storage_io)?;
                // Record openraft's own view of what the snapshot holds.
                shared
                    .engine
                    .apply_batch(&[], Some(&replication))
                    .map_err(storage_io)?;
                shared.snapshots.commit(&snapshot.path, &meta_owned)?;
                Ok(())
            })();
            shared.install_epoch.fetch_add(1, Ordering::SeqCst);
            result
        })
        .await??;
        self.membership = meta.last_membership.clone();
        let index = meta.last_log_id.as_ref().map(|id| id.index).unwrap_or(0);
        Counters::bump(&self.hub.counters.snapshots_installed);
        self.hub
            .counters
            .snapshot_bytes
            .store(snapshot_bytes, Ordering::Relaxed);
        self.hub.publish(AppliedEvent::SnapshotInstalled { index });
        self.hub.set_applied(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let shared = self.shared.clone();
        let current = blocking(move || shared.snapshots.current()).await??;
        Ok(current.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

/// Builds a snapshot from a consistent export of the storage engine.
pub(crate) struct SnapshotBuilder {
    shared: Arc<Shared>,
}

const OPTIMISTIC_EXPORTS: usize = 3;

impl Shared {
    /// Exports the state into a temp file; returns the meta it matches (read by storage from
    /// the same RocksDB snapshot as the data, so applies may go on meanwhile), or None when a
    /// snapshot install raced the export. `exclusive` keeps installs out too.
    fn export_once(
        &self,
        exclusive: bool,
    ) -> io::Result<(Option<ReplicationMeta>, std::path::PathBuf)> {
        let _gate = exclusive.then(|| self.apply_gate.lock());
        let epoch = self.install_epoch.load(Ordering::SeqCst);
        let path = self.snapshots.temp_path("build");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let summary = self.engine.export_snapshot(&mut out).map_err(storage_io)?;
        out.flush()?;
        let meta = match &summary.replication_meta {
            Some(bytes) => decode(bytes)?,
            None => ReplicationMeta::default(),
        };
        let consistent = epoch.is_multiple_of(2)
            && self.install_epoch.load(Ordering::SeqCst) == epoch
            && summary.applied_index == meta.applied_index();
        Ok((consistent.then_some(meta), path))
    }

    fn build(&self) -> io::Result<(SnapshotMeta, SnapshotFile)> {
        for attempt in 0..=OPTIMISTIC_EXPORTS {
            let (meta, path) = self.export_once(attempt == OPTIMISTIC_EXPORTS)?;
            let Some(meta) = meta else {
                std::fs::remove_file(&path)?;
                continue;
            };
            let snapshot_meta = SnapshotMeta {
                last_log_id: meta.last_applied,
                last_membership: meta.membership,
            };
            let file = self.snapshots.commit(&path, &snapshot_meta)?;
            return Ok((snapshot_meta, file));
        }
        Err(io::Error::other("snapshot export kept racing applies"))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let shared = self.shared.clone();
        let started = std::time::Instant::now();
        let (meta, snapshot) = blocking(move || shared.build()).await??;
        Counters::bump(&self.shared.counters.snapshots_built);
        self.shared
            .counters
            .snapshot_bytes
            .store(snapshot.len, Ordering::Relaxed);
        // Building one reads the whole state: operators correlating a latency bump need to see it.
        tracing::info!(
            last_log_id = ?meta.last_log_id,
            bytes = snapshot.len,
            took_ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(Snapshot { meta, snapshot })
    }
}
