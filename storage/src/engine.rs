//! Opening the database: one RocksDB with every column family, shared by the state machine and
//! the Raft log (separate families, one WAL).

use crate::cf::Cf;
use crate::error::{Result, StorageError};
use crate::read::Reader;
use crate::search::{numbered, postings};
use rocksdb::{
    BlockBasedOptions, BlockBasedTablePinningTier, Cache, ColumnFamily, ColumnFamilyDescriptor,
    DBCompressionType, IteratorMode, Options, ReadOptions, WriteBufferManager, DB,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Keys of the `meta` family.
pub(crate) mod meta_key {
    /// Last applied log index, big-endian u64.
    pub const APPLIED_INDEX: &[u8] = b"applied_index";
    /// Opaque bytes the replication layer stores atomically with applied commands (the last
    /// applied log id and membership).
    pub const REPLICATION: &[u8] = b"replication";
    /// Present while a snapshot import is half done; state is not trustworthy then.
    pub const IMPORTING: &[u8] = b"importing";
}

/// The storage engine: confab's whole state in one RocksDB.
pub struct Engine {
    pub(crate) db: Arc<DB>,
    path: PathBuf,
    pub(crate) stats: EngineStats,
    /// Advances whenever an applied change may end a session that was valid: a revoke, or a
    /// wholesale replacement of the state. A cache of sessions outside the engine keeps an entry
    /// only while this has not moved since the entry was read.
    sessions_epoch: AtomicU64,
    /// The block cache every family shares; memtables are charged to it too.
    cache: Cache,
    write_buffers: WriteBufferManager,
    /// Held while a batch is applied, a snapshot imported or a search backfill step written:
    /// a backfill step never interleaves with a change to the posts it reads.
    pub(crate) apply_lock: parking_lot::Mutex<()>,
    /// Search: the times bitmap chunks start at, as read ([`crate::search::numbered`]).
    pub(crate) chunk_starts: crate::search::numbered::ChunkStarts,
}

/// How much memory RocksDB may use. Memtables of every column family are charged to the block
/// cache through one write-buffer manager, so the two figures bound RocksDB together: without
/// it each family keeps up to 2 × 64 MB of memtables (27 families: up to 3.4 GB per node), and
/// every new family would add more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Block cache, including the memtables charged to it.
    pub block_cache_bytes: usize,
    /// All memtables together: past about 90 % of it the largest are flushed.
    pub write_buffer_bytes: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            block_cache_bytes: BLOCK_CACHE_BYTES,
            write_buffer_bytes: WRITE_BUFFER_BYTES,
        }
    }
}

/// RocksDB's memory as it stands (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Bytes in the block cache (blocks and the memtable charge).
    pub block_cache_bytes: usize,
    /// Blocks pinned in the cache (index and filter blocks of L0, iterators in use).
    pub block_cache_pinned_bytes: usize,
    /// Memtable bytes counted by the write-buffer manager.
    pub memtable_bytes: usize,
}

/// Running totals for monitoring (`/metrics`).
#[derive(Debug, Default)]
pub struct EngineStats {
    pub keys_read: AtomicU64,
    pub keys_written: AtomicU64,
    pub write_batches: AtomicU64,
    pub commands_applied: AtomicU64,
    pub commands_refused: AtomicU64,
    /// Records indexed by the one-time search backfill.
    pub search_backfilled: AtomicU64,
}

impl Engine {
    /// Opens (creating if missing) the database at `path`. A snapshot import that a crash
    /// interrupted leaves the state empty with applied index 0, so replication starts it over.
    pub fn open(path: impl AsRef<Path>) -> Result<Engine> {
        Engine::open_with(path, MemoryLimits::default())
    }

    /// [`Engine::open`] with RocksDB's memory bounded by `limits`.
    pub fn open_with(path: impl AsRef<Path>, limits: MemoryLimits) -> Result<Engine> {
        let path = path.as_ref().to_path_buf();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1 << 20);
        opts.increase_parallelism(2);
        // No `enable_statistics`: nothing reads its tickers (the /metrics gauges are DB
        // properties), and it timed every read with clock calls — about 7 % of a search's
        // time in a profile of the search bench.
        let cache = Cache::new_lru_cache(limits.block_cache_bytes.max(1 << 20));
        let write_buffer_bytes = limits.write_buffer_bytes.max(1 << 20);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            write_buffer_bytes,
            false,
            cache.clone(),
        );
        opts.set_write_buffer_manager(&write_buffers);
        opts.set_db_write_buffer_size(write_buffer_bytes);
        // A WAL file is kept until every family's memtable holding part of it is flushed, and
        // RocksDB's default bound derives from every family's memtable size: with file chunks
        // going through the log, a node held 1 GiB of WAL files after 1.2 GiB of uploads. Past
        // this bound the families holding the oldest WAL are flushed.
        opts.set_max_total_wal_size((4 * write_buffer_bytes as u64).max(64 << 20));
        // One memtable may take at most a quarter of the total; its arena grows in blocks of
        // an eighth of that, so an idle family holds little.
        let memtable_bytes = (write_buffer_bytes / 4).clamp(1 << 20, 64 << 20);
        let descriptors = Cf::all().map(|cf| {
            let mut cf_opts = cf_options(cf, &cache);
            cf_opts.set_write_buffer_manager(&write_buffers);
            cf_opts.set_write_buffer_size(memtable_bytes);
            ColumnFamilyDescriptor::new(cf.name(), cf_opts)
        });
        // A family of an earlier version must be opened to be dropped; its content is rebuilt
        // (the old post index by the search backfill, started over below).
        let existing = DB::list_cf(&opts, &path).unwrap_or_default();
        let retired: Vec<&str> = Cf::RETIRED
            .into_iter()
            .filter(|name| existing.iter().any(|e| e == name))
            .collect();
        let descriptors = descriptors.chain(
            retired
                .iter()
                .map(|name| ColumnFamilyDescriptor::new(*name, Options::default())),
        );
        let mut db = DB::open_cf_descriptors(&opts, &path, descriptors)?;
        for name in &retired {
            tracing::info!(
                family = name,
                "dropping a column family of an earlier version"
            );
            db.drop_cf(name)?;
        }
        let engine = Engine {
            db: Arc::new(db),
            path,
            stats: EngineStats::default(),
            sessions_epoch: AtomicU64::new(0),
            cache,
            write_buffers,
            apply_lock: parking_lot::Mutex::new(()),
            chunk_starts: Default::default(),
        };
        if engine
            .db
            .get_cf(engine.cf(Cf::Meta)?, meta_key::IMPORTING)?
            .is_some()
        {
            tracing::warn!("an interrupted snapshot import left partial state; clearing it");
            engine.clear_state()?;
        }
        engine.init_search_backfill(!retired.is_empty())?;
        engine.init_pinned_index()?;
        engine.init_mention_keywords()?;
        engine.init_channel_wide_ignorers()?;
        engine.init_numbering()?;
        engine.init_badges()?;
        Ok(engine)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn cf(&self, cf: Cf) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StorageError::Corrupt(format!("column family {} missing", cf.name())))
    }

    /// A consistent read view for queries.
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(self)
    }

    /// The index of the last command applied (0 when none).
    pub fn applied_index(&self) -> Result<u64> {
        let raw = self
            .db
            .get_cf(self.cf(Cf::Meta)?, meta_key::APPLIED_INDEX)?;
        Ok(raw.as_deref().map(decode_u64).transpose()?.unwrap_or(0))
    }

    /// The replication layer's bytes stored with the last applied batch.
    pub fn replication_meta(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(Cf::Meta)?, meta_key::REPLICATION)?)
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// RocksDB's memory: block cache and memtables.
    pub fn memory_usage(&self) -> MemoryUsage {
        MemoryUsage {
            block_cache_bytes: self.cache.get_usage(),
            block_cache_pinned_bytes: self.cache.get_pinned_usage(),
            memtable_bytes: self.write_buffers.get_usage(),
        }
    }

    /// Writes every memtable to disk (benchmarks measure sizes on disk after it).
    pub fn flush(&self) -> Result<()> {
        for cf in Cf::all() {
            self.db.flush_cf(self.cf(cf)?)?;
        }
        Ok(())
    }

    /// Flushes and then compacts every family to its last level, so that what RocksDB does in
    /// the background (the search postings' merges at flush and compaction included) happens
    /// now. For tests and benchmarks.
    pub fn compact(&self) -> Result<()> {
        self.flush()?;
        for cf in Cf::all() {
            self.db
                .compact_range_cf(self.cf(cf)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Reclaims the space of deleted blobs (chunks of aborted or deduplicated uploads, replaced
    /// images) in the families that keep values in blob files, on this node only (the space
    /// is physical; the replicated state is the same before and after).
    ///
    /// First a compaction of the family's keys (cheap: its SSTs hold keys and blob pointers
    /// only), which drops deleted keys and so counts their blobs as garbage. Then, only if the
    /// garbage is at least `min_garbage_bytes` and a quarter of the live blob bytes, a second
    /// compaction with garbage collection on for every blob file moves the live blobs to new
    /// files, and the old files, with their garbage, are deleted. So the bytes moved are at
    /// most three times the bytes reclaimed. Returns (family, garbage bytes before, after) for
    /// the families collected.
    pub fn reclaim_blob_garbage(&self, min_garbage_bytes: u64) -> Result<Vec<BlobReclaim>> {
        let mut reclaimed = Vec::new();
        for cf in Cf::BLOB_FILES {
            let handle = self.cf(cf)?;
            self.db.flush_cf(handle)?;
            self.db
                .compact_range_cf(handle, None::<&[u8]>, None::<&[u8]>);
            let (live, garbage) = self.blob_file_bytes(cf)?;
            if garbage < min_garbage_bytes.max(1) || garbage.saturating_mul(4) < live {
                continue;
            }
            self.db.set_options_cf(
                handle,
                &[
                    ("enable_blob_garbage_collection", "true"),
                    ("blob_garbage_collection_age_cutoff", "1.0"),
                ],
            )?;
            // The last level too: it holds the keys that point into the oldest blob files.
            let mut all_levels = rocksdb::CompactOptions::default();
            all_levels.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
            self.db
                .compact_range_cf_opt(handle, None::<&[u8]>, None::<&[u8]>, &all_levels);
            self.db
                .set_options_cf(handle, &[("enable_blob_garbage_collection", "false")])?;
            let (live_after, garbage_after) = self.blob_file_bytes(cf)?;
            reclaimed.push(BlobReclaim {
                family: cf.name(),
                blob_bytes_before: live,
                garbage_bytes_before: garbage,
                blob_bytes_after: live_after,
                garbage_bytes_after: garbage_after,
            });
        }
        Ok(reclaimed)
    }

    /// (bytes of the family's live blob files, bytes of garbage in them).
    pub fn blob_file_bytes(&self, cf: Cf) -> Result<(u64, u64)> {
        let handle = self.cf(cf)?;
        let live = self
            .db
            .property_int_value_cf(handle, "rocksdb.live-blob-file-size")?
            .unwrap_or(0);
        let garbage = self
            .db
            .property_int_value_cf(handle, "rocksdb.live-blob-file-garbage-size")?
            .unwrap_or(0);
        Ok((live, garbage))
    }

    /// Bytes a family takes in its SST files (compressed), plus what its memtables hold.
    pub fn family_size_bytes(&self, cf: Cf) -> Result<u64> {
        let handle = self.cf(cf)?;
        let sst = self
            .db
            .property_int_value_cf(handle, "rocksdb.total-sst-files-size")?
            .unwrap_or(0);
        let memtables = self
            .db
            .property_int_value_cf(handle, "rocksdb.cur-size-all-mem-tables")?
            .unwrap_or(0);
        Ok(sst + memtables)
    }

    /// A RocksDB DB property (live data, running compactions, pending bytes) as text, for
    /// /metrics.
    pub fn rocksdb_property(&self, name: &str) -> Option<String> {
        self.db.property_value(name).ok().flatten()
    }

    /// Deletes every key of the replicated state in one write.
    pub(crate) fn clear_state(&self) -> Result<()> {
        let mut batch = rocksdb::WriteBatch::default();
        for cf in Cf::STATE {
            self.delete_every_key(&mut batch, cf)?;
        }
        self.db.write(batch)?;
        self.advance_sessions_epoch();
        Ok(())
    }

    /// Builds, once per data directory, what a family added after the directory was first
    /// written needs from the state before it. Skipped when `marker` is in `meta`; otherwise
    /// `build` fills a batch under the apply lock (no command changes the state it reads), and
    /// the batch is written with the marker in one write, so a crash midway leaves the work to
    /// be done again at the next open. A fresh directory has nothing to build and is marked at
    /// once.
    pub(crate) fn once_at_open(
        &self,
        marker: &[u8],
        build: impl FnOnce(&mut rocksdb::WriteBatch) -> Result<()>,
    ) -> Result<()> {
        let meta = self.cf(Cf::Meta)?;
        if self.db.get_cf(meta, marker)?.is_some() {
            return Ok(());
        }
        let _applying = self.apply_lock.lock();
        let mut batch = rocksdb::WriteBatch::default();
        build(&mut batch)?;
        batch.put_cf(meta, marker, b"done");
        self.db.write(batch)?;
        Ok(())
    }

    /// Adds to `batch` the deletion of every key of `cf`: one range from the smallest key to
    /// past the longest any family holds.
    pub(crate) fn delete_every_key(&self, batch: &mut rocksdb::WriteBatch, cf: Cf) -> Result<()> {
        batch.delete_range_cf(self.cf(cf)?, [0u8].as_slice(), [0xffu8; 256].as_slice());
        Ok(())
    }

    /// See the field: read it before reading a session, and trust what was read only while it
    /// is unchanged.
    pub fn sessions_epoch(&self) -> u64 {
        self.sessions_epoch.load(Ordering::Acquire)
    }

    /// Called after the write that may end sessions is visible to readers.
    pub(crate) fn advance_sessions_epoch(&self) {
        self.sessions_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Reads every key and value of every column family (blob files included) with their
    /// checksums verified and without filling the block cache, so that a flipped bit anywhere
    /// in the data dir is found when the node starts, not by the first request that reads the
    /// damaged block. Returns how many entries were read.
    pub fn verify_all(&self) -> Result<u64> {
        let mut entries = 0;
        for cf in Cf::all() {
            let mut opts = ReadOptions::default();
            opts.set_verify_checksums(true);
            opts.fill_cache(false);
            for item in self
                .db
                .iterator_cf_opt(self.cf(cf)?, opts, IteratorMode::Start)
            {
                item?;
                entries += 1;
            }
        }
        Ok(entries)
    }

    /// Stops RocksDB's flushes and compactions, waiting for those running. For a process that
    /// exits without dropping its engine (the fuzz targets keep theirs in a static): RocksDB's
    /// own statics are destroyed at exit, and a job still running then reads freed memory.
    pub fn stop_background_work(&self) {
        self.db.cancel_all_background_work(true);
    }

    /// A digest of every key and value of the replicated state, in order: equal digests mean
    /// byte-identical state.
    pub fn state_digest(&self) -> Result<u64> {
        let reader = self.reader();
        let mut high = crc32fast::Hasher::new();
        let mut low = crc32fast::Hasher::new_with_initial(0x5bd1_e995);
        for cf in Cf::STATE {
            reader.scan_all(cf, |key, value| {
                for hasher in [&mut high, &mut low] {
                    hasher.update(&(key.len() as u32).to_be_bytes());
                    hasher.update(key);
                    hasher.update(&(value.len() as u32).to_be_bytes());
                    hasher.update(value);
                }
                true
            })?;
        }
        Ok(((high.finalize() as u64) << 32) | low.finalize() as u64)
    }
}

/// What one [`Engine::reclaim_blob_garbage`] collection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobReclaim {
    pub family: &'static str,
    pub blob_bytes_before: u64,
    pub garbage_bytes_before: u64,
    pub blob_bytes_after: u64,
    pub garbage_bytes_after: u64,
}

/// Uncompressed blocks kept in memory, shared by every column family. Without a shared cache each
/// family gets RocksDB's small default one, and once the data outgrows it every read decompresses
/// its blocks again: read CPU then grows with the database instead of with the request.
pub const BLOCK_CACHE_BYTES: usize = 256 << 20;

/// Default bound of all memtables together (charged to the block cache).
pub const WRITE_BUFFER_BYTES: usize = 64 << 20;

fn cf_options(cf: Cf, cache: &Cache) -> Options {
    let mut opts = Options::default();
    match cf {
        // The log is written once, read soon and purged: keep it cheap to write. Entries past
        // 4 KiB (file chunks) go to blob files at flush, uncompressed (uploads are mostly
        // compressed already), so a megabyte chunk is written to disk once after the WAL
        // instead of once per compaction level. Purged entries need no blob garbage
        // collection: the log is purged from the front, so the SSTs that point into a blob
        // file go, and the file with them, once compaction (or the purge's file deletion)
        // drops them.
        Cf::RaftLog => {
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_enable_blob_files(true);
            opts.set_min_blob_size(4096);
            opts.set_blob_compression_type(DBCompressionType::None);
        }
        Cf::PostidPost => {
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        }
        // File bytes (and profile pictures, custom emoji images): values past 4 KiB go to blob
        // files (BlobDB), so compaction rewrites keys and small pointers, never megabytes.
        // Uploads are mostly compressed already (images, archives), so the blobs are stored as
        // they are. RocksDB's garbage collection is off: when on, every compaction moves the
        // live blobs of the oldest quarter of blob files whether they hold garbage or not, and
        // upload ids are random, so every compaction reaches them — a quarter of all stored
        // files rewritten per compaction. Deleted blobs are reclaimed by
        // [`Engine::reclaim_blob_garbage`] instead, when there is enough garbage to pay for it.
        Cf::UploadidChunknoBytes | Cf::FileidKindPreview | Cf::KindIdImage => {
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_enable_blob_files(true);
            opts.set_min_blob_size(4096);
            opts.set_blob_file_size(256 << 20);
            opts.set_blob_compression_type(DBCompressionType::None);
            opts.set_enable_blob_gc(false);
        }
        // Post search postings: apply writes "add t" / "remove t" operands, folded into blocks
        // by the merge operator ([`crate::search::postings`]).
        Cf::TermBucketChannelidCreateats => {
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_merge_operator(
                "confab_postings_v1",
                postings::full_merge,
                postings::partial_merge,
            );
        }
        // Post search bitmaps: the same operands, folded into bitsets
        // ([`crate::search::numbered`]).
        Cf::TermChannelidChunkNumbers => {
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_merge_operator(
                "confab_numbered_bits_v1",
                numbered::full_merge,
                postings::partial_merge,
            );
        }
        // Push badge counters: apply merges differences, summed here ([`crate::badge`]).
        Cf::UseridBadge => {
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_merge_operator(
                "confab_badge_sum_v1",
                crate::badge::full_merge,
                crate::badge::partial_merge,
            );
        }
        _ => opts.set_compression_type(DBCompressionType::Lz4),
    }
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    if is_searched_by_seeks(cf) {
        // A search seeks these once per channel and word, and never reads a key alone: no
        // bloom filter (only a point read consults one), and each file's index block stays
        // pinned in the cache instead of being looked up in it again for every seek.
        table.set_cache_index_and_filter_blocks(true);
        table.set_unpartitioned_pinning_tier(BlockBasedTablePinningTier::All);
    } else if cf != Cf::RaftLog {
        // Point reads (sessions, users, posts by id, cursors) skip the files that cannot hold
        // their key instead of reading a block of each level.
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    }
    opts.set_block_based_table_factory(&table);
    opts
}

/// The post search's families, read by seeks alone ([`crate::search`]).
fn is_searched_by_seeks(cf: Cf) -> bool {
    matches!(
        cf,
        Cf::TermBucketChannelidCreateats
            | Cf::TermChannelidChunkNumbers
            | Cf::ChannelidCreateatPostid
            | Cf::ChannelidNumberCreateat
    )
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}
