//! How many bytes the Raft log holds, by index, so that a log of big entries is snapshotted and
//! purged by size as well as by entry count: 100,000 entries of chat are tens of megabytes,
//! 100,000 file chunks (1 MiB each) are 100 GB.
//!
//! The log store notes every append, truncation and purge here; [`crate::node`]'s size policy
//! reads it. Entries kept from before a restart are one mark with RocksDB's estimate of their
//! bytes.

use parking_lot::Mutex;
use std::collections::VecDeque;

/// Cumulative bytes of the log by index.
#[derive(Default)]
pub(crate) struct LogSizes {
    inner: Mutex<Marks>,
}

#[derive(Default)]
struct Marks {
    /// (index, bytes of every entry up to and including it), ascending by index.
    marks: VecDeque<(u64, u64)>,
    /// Bytes up to the first mark's predecessor (entries purged since).
    base: u64,
}

impl Marks {
    fn total(&self) -> u64 {
        self.marks.back().map_or(self.base, |(_, bytes)| *bytes)
    }

    /// Bytes of every entry up to and including `index`.
    fn through(&self, index: u64) -> u64 {
        let after = self.marks.partition_point(|(i, _)| *i <= index);
        match after {
            0 => self.base,
            n => self.marks[n - 1].1,
        }
    }

    fn truncate(&mut self, from: u64) {
        while self.marks.back().is_some_and(|(i, _)| *i >= from) {
            self.marks.pop_back();
        }
    }
}

impl LogSizes {
    /// The log a node starts with: entries through `last`, about `bytes` in all.
    pub(crate) fn seed(&self, last: u64, bytes: u64) {
        let mut inner = self.inner.lock();
        inner.marks.clear();
        inner.base = 0;
        if bytes > 0 {
            inner.marks.push_back((last, bytes));
        }
    }

    /// An entry was written at `index` (replacing any entry from `index` on).
    pub(crate) fn appended(&self, index: u64, bytes: u64) {
        let mut inner = self.inner.lock();
        inner.truncate(index);
        let total = inner.total() + bytes;
        inner.marks.push_back((index, total));
    }

    /// Entries from `from` on were deleted.
    pub(crate) fn truncated(&self, from: u64) {
        self.inner.lock().truncate(from);
    }

    /// Entries up to and including `upto` were deleted.
    pub(crate) fn purged(&self, upto: u64) {
        let mut inner = self.inner.lock();
        while let Some(&(index, bytes)) = inner.marks.front() {
            if index > upto {
                break;
            }
            inner.base = bytes;
            inner.marks.pop_front();
        }
    }

    /// Bytes of the entries after `index`.
    pub(crate) fn bytes_after(&self, index: u64) -> u64 {
        let inner = self.inner.lock();
        inner.total() - inner.through(index)
    }

    /// Bytes of every entry held.
    pub(crate) fn held(&self) -> u64 {
        let inner = self.inner.lock();
        inner.total() - inner.base
    }

    /// Where to purge so that about `keep` bytes stay behind the snapshot at `snapshot`: the
    /// newest index at or before it with at least `keep` bytes of entries after it up to the
    /// snapshot. `None` when the entries up to the snapshot hold no more than `keep` bytes.
    pub(crate) fn purge_point(&self, snapshot: u64, keep: u64) -> Option<u64> {
        let inner = self.inner.lock();
        let upto_snapshot = inner.through(snapshot);
        let target = upto_snapshot.checked_sub(keep)?;
        if target <= inner.base {
            return None;
        }
        let after = inner
            .marks
            .partition_point(|(i, bytes)| *i <= snapshot && *bytes <= target);
        (after > 0).then(|| inner.marks[after - 1].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_truncations_and_purges_keep_the_byte_counts() {
        let sizes = LogSizes::default();
        for index in 1..=10 {
            sizes.appended(index, 100);
        }
        assert_eq!(sizes.held(), 1000);
        assert_eq!(sizes.bytes_after(4), 600);
        assert_eq!(sizes.bytes_after(0), 1000);
        // A conflicting append replaces the suffix.
        sizes.appended(9, 50);
        assert_eq!(sizes.held(), 850);
        sizes.truncated(9);
        assert_eq!(sizes.held(), 800);
        sizes.purged(3);
        assert_eq!(sizes.held(), 500);
        assert_eq!(sizes.bytes_after(2), 500);
        assert_eq!(sizes.bytes_after(5), 300);
    }

    #[test]
    fn the_purge_point_keeps_about_the_asked_bytes_behind_the_snapshot() {
        let sizes = LogSizes::default();
        // Ten small entries, then ten 1 MiB chunks, then ten small ones.
        for index in 1..=30 {
            let bytes = if (11..=20).contains(&index) {
                1 << 20
            } else {
                100
            };
            sizes.appended(index, bytes);
        }
        // Snapshot at 25, keep 3 MiB: purge through 17 (18, 19, 20 and five small ones stay).
        assert_eq!(sizes.purge_point(25, 3 << 20), Some(17));
        // Keeping more than the log holds up to the snapshot purges nothing.
        assert_eq!(sizes.purge_point(25, 11 << 20), None);
        // Small entries alone never reach the threshold.
        assert_eq!(sizes.purge_point(5, 1000), None);
        sizes.purged(17);
        assert_eq!(sizes.purge_point(25, 3 << 20), None);
    }

    #[test]
    fn a_seeded_log_is_one_mark() {
        let sizes = LogSizes::default();
        sizes.seed(500, 64 << 20);
        sizes.appended(501, 1 << 20);
        assert_eq!(sizes.held(), 65 << 20);
        assert_eq!(sizes.bytes_after(500), 1 << 20);
        // Purging the seeded entries would leave less than 2 MiB behind the snapshot.
        assert_eq!(sizes.purge_point(501, 2 << 20), None);
        for index in 502..=504 {
            sizes.appended(index, 1 << 20);
        }
        assert_eq!(sizes.purge_point(504, 2 << 20), Some(502));
    }
}
