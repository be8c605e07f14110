//! Consistent reads: every query runs on one RocksDB snapshot and counts the keys it touches, so
//! tests can prove a query scans no more than it returns (plus a constant).

use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::Id;
use crate::keys::prefix_end;
use rocksdb::{DBRawIterator, Direction, IteratorMode, ReadOptions, Snapshot};
use serde::de::DeserializeOwned;
use std::cell::Cell;

/// A snapshot of the engine plus a count of keys read through it.
pub struct Reader<'a> {
    engine: &'a Engine,
    snapshot: Snapshot<'a>,
    keys_read: Cell<u64>,
    /// The engine's state generation (its sessions epoch) when this reader was made: what
    /// the reader learns is remembered for that generation only.
    generation: u64,
    /// Seeks into a search's time blocks (`term_bucket_channelid_createats`).
    time_block_seeks: Cell<u64>,
    /// Seeks into a search's bitmaps (`term_channelid_chunk_numbers`).
    bitmap_seeks: Cell<u64>,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.engine
            .stats
            .keys_read
            .fetch_add(self.keys_read.get(), std::sync::atomic::Ordering::Relaxed);
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(engine: &'a Engine) -> Reader<'a> {
        // The generation is read before the snapshot is taken: a snapshot is never older
        // than the generation it is filed under.
        let generation = engine.sessions_epoch();
        Reader {
            engine,
            generation,
            snapshot: engine.db.snapshot(),
            keys_read: Cell::new(0),
            time_block_seeks: Cell::new(0),
            bitmap_seeks: Cell::new(0),
        }
    }

    /// Keys (point lookups and scanned entries) read so far through this reader.
    pub fn keys_read(&self) -> u64 {
        self.keys_read.get()
    }

    pub(crate) fn count(&self, n: u64) {
        self.keys_read.set(self.keys_read.get() + n);
    }

    /// Seeks into search time blocks so far: a word's row of many channels costs one, where
    /// [`Reader::keys_read`] counts a step and a seek alike. For tests of how a search reads.
    #[doc(hidden)]
    pub fn time_block_seeks(&self) -> u64 {
        self.time_block_seeks.get()
    }

    pub(crate) fn count_time_block_seek(&self) {
        self.time_block_seeks.set(self.time_block_seeks.get() + 1);
    }

    /// Seeks into the bitmaps of numbered posts so far (steps not counted). For tests of how
    /// a search reads.
    #[doc(hidden)]
    pub fn bitmap_seeks(&self) -> u64 {
        self.bitmap_seeks.get()
    }

    /// The remembered first post time of a bitmap chunk of `channel`.
    pub(crate) fn chunk_start(&self, channel: Id, chunk: u32) -> Option<u64> {
        self.engine
            .chunk_starts
            .get(self.generation, channel, chunk)
    }

    pub(crate) fn remember_chunk_start(&self, channel: Id, chunk: u32, time: u64) {
        self.engine
            .chunk_starts
            .insert(self.generation, channel, chunk, time);
    }

    pub(crate) fn count_bitmap_seek(&self) {
        self.bitmap_seeks.set(self.bitmap_seeks.get() + 1);
    }

    pub(crate) fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.count(1);
        Ok(self.snapshot.get_cf(self.engine.cf(cf)?, key)?)
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        match self.get_raw(cf, key)? {
            Some(bytes) => Ok(Some(rmp_serde::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Visits keys in `[lower, upper)` (upper None = to the end), ascending or descending,
    /// until `visit` returns false. Only visited entries are counted.
    pub(crate) fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: Option<&[u8]>,
        reverse: bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&self.snapshot);
        opts.set_iterate_lower_bound(lower.to_vec());
        if let Some(upper) = upper {
            opts.set_iterate_upper_bound(upper.to_vec());
        }
        let mode = if reverse {
            IteratorMode::End
        } else {
            IteratorMode::From(lower, Direction::Forward)
        };
        let iter = self
            .engine
            .db
            .iterator_cf_opt(self.engine.cf(cf)?, opts, mode);
        for item in iter {
            let (key, value) = item?;
            self.count(1);
            if !visit(&key, &value) {
                break;
            }
        }
        Ok(())
    }

    /// Visits every key starting with `prefix`, in order (or reversed).
    pub(crate) fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        reverse: bool,
        visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let end = prefix_end(prefix);
        self.scan(cf, prefix, end.as_deref(), reverse, visit)
    }

    /// A seekable iterator over `[lower, upper)` on this reader's snapshot, for queries that
    /// leapfrog (search). The caller counts what it reads with [`Reader::count`].
    pub(crate) fn raw_iter(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: Option<&[u8]>,
    ) -> Result<DBRawIterator<'_>> {
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&self.snapshot);
        opts.set_iterate_lower_bound(lower.to_vec());
        if let Some(upper) = upper {
            opts.set_iterate_upper_bound(upper.to_vec());
        }
        Ok(self
            .engine
            .db
            .raw_iterator_cf_opt(self.engine.cf(cf)?, opts))
    }

    pub(crate) fn scan_all(&self, cf: Cf, visit: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan(cf, &[], None, false, visit)
    }
}
