//! Plain counters the server reads for /metrics: no metrics crate, just atomics. Latencies are
//! kept as sums, maxima and a power-of-two histogram (bucket `i` counts values in
//! `[2^i, 2^(i+1))` microseconds) so percentiles can be estimated without storing samples.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: usize = 32;

#[derive(Default)]
pub(crate) struct Latency {
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Latency {
    pub(crate) fn record(&self, elapsed: Duration) {
        let us = elapsed.as_micros().min(u64::MAX as u128) as u64;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        let bucket = (64 - us.max(1).leading_zeros() as usize - 1).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
            max_us: self.max_us.load(Ordering::Relaxed),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

/// A latency distribution at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    pub count: u64,
    pub sum_us: u64,
    pub max_us: u64,
    /// `buckets[i]`: samples in `[2^i, 2^(i+1))` µs.
    pub buckets: [u64; BUCKETS],
}

impl LatencySnapshot {
    pub fn mean_us(&self) -> u64 {
        self.sum_us.checked_div(self.count).unwrap_or(0)
    }

    /// Upper bound (µs) of the bucket holding quantile `q` (0.0–1.0); 0 without samples.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (1u64 << (i + 1)).min(self.max_us.max(1));
            }
        }
        self.max_us
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub writes_ok: AtomicU64,
    pub writes_failed: AtomicU64,
    pub write_retries: AtomicU64,
    pub writes_forwarded: AtomicU64,
    pub applied_entries: AtomicU64,
    pub applied_batches: AtomicU64,
    pub leader_changes: AtomicU64,
    pub snapshots_built: AtomicU64,
    pub snapshots_installed: AtomicU64,
    /// Bytes of the newest snapshot built or installed.
    pub snapshot_bytes: AtomicU64,
    /// Bytes of the entries in the log (as of the last size check).
    pub log_bytes: AtomicU64,
    /// Client-visible write latency on this node: from `write` to the outcome.
    pub commit_latency: Latency,
    /// Time spent in one storage `apply_batch`.
    pub apply_latency: Latency,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            writes_ok: get(&self.writes_ok),
            writes_failed: get(&self.writes_failed),
            write_retries: get(&self.write_retries),
            writes_forwarded: get(&self.writes_forwarded),
            applied_entries: get(&self.applied_entries),
            applied_batches: get(&self.applied_batches),
            leader_changes: get(&self.leader_changes),
            snapshots_built: get(&self.snapshots_built),
            snapshots_installed: get(&self.snapshots_installed),
            snapshot_bytes: get(&self.snapshot_bytes),
            log_bytes: get(&self.log_bytes),
            commit_latency: self.commit_latency.snapshot(),
            apply_latency: self.apply_latency.snapshot(),
        }
    }
}

/// Replication counters of one node, as plain numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Writes taken by this node that returned an outcome.
    pub writes_ok: u64,
    /// Writes taken by this node that returned an error.
    pub writes_failed: u64,
    /// Extra attempts (leader changes, unreachable leader) across all writes.
    pub write_retries: u64,
    /// Writes this node forwarded to the leader.
    pub writes_forwarded: u64,
    /// Log entries applied to the local state (commands, blanks, membership).
    pub applied_entries: u64,
    pub applied_batches: u64,
    /// Times the known leader changed (including to "none").
    pub leader_changes: u64,
    pub snapshots_built: u64,
    pub snapshots_installed: u64,
    /// Bytes of the newest snapshot built or installed.
    pub snapshot_bytes: u64,
    /// Bytes of the entries in the local log (those from before the node started as RocksDB
    /// estimates them).
    pub log_bytes: u64,
    pub commit_latency: LatencySnapshot,
    pub apply_latency: LatencySnapshot,
}
