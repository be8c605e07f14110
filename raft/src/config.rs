//! How a node is started and tuned.

use confab_storage::Engine;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything [`crate::RaftNode::start`] needs.
#[derive(Clone)]
pub struct NodeConfig {
    /// Stable id of this node in the cluster (never reuse an id for another data dir).
    pub node_id: u64,
    /// Where the raft port listens, e.g. `0.0.0.0:7001` (`127.0.0.1:0` picks a free port).
    pub listen_addr: String,
    /// The `host:port` other nodes reach the raft port at; defaults to the bound address.
    pub advertise_addr: Option<String>,
    /// Where this node dials a peer whose advertised Raft address it cannot reach as such
    /// (behind a NAT, through a proxy): advertised `host:port` → `host:port` to connect to.
    /// Addresses not listed are dialled as advertised. The fault harness (`tests/faults.rs`)
    /// routes each node-to-node link through its own proxy this way, to cut and heal links.
    pub dial: BTreeMap<String, String>,
    /// The node's storage engine; the Raft log lives in its log column families.
    pub engine: Arc<Engine>,
    /// Shared cluster secret every node-to-node request must carry.
    pub secret: String,
    /// Directory for snapshot files (under the node's data dir).
    pub snapshot_dir: PathBuf,
    pub tuning: Tuning,
}

/// Timing and size knobs. The defaults suit a LAN cluster; tests shrink the snapshot thresholds.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// How often the leader tells idle followers it is alive. openraft gives a heartbeat this
    /// long to come back, so it must exceed the slowest round trip between two nodes.
    pub heartbeat_interval: Duration,
    /// A follower that heard nothing from a leader for a random time in this range starts an
    /// election: several heartbeat intervals, so a late heartbeat or two do not depose a leader.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot (followers slightly behind still catch up from
    /// the log); older ones are purged.
    pub entries_kept_after_snapshot: u64,
    /// Also build a snapshot once the entries since the last one hold this many bytes, or as
    /// many as the last snapshot if that is more (so a snapshot, which writes the whole state,
    /// costs at most about what the log it frees held): file chunks are 1 MiB entries.
    pub snapshot_every_log_bytes: u64,
    /// Bytes of entries kept behind a snapshot at most (about; whole entries); older ones are
    /// purged even when fewer than `entries_kept_after_snapshot` entries are left.
    pub log_bytes_kept_after_snapshot: u64,
    /// Most entries in one append request to a follower.
    pub max_entries_per_append: u64,
    /// Upper bound of one write, retries included; past it the outcome is unknown.
    pub write_timeout: Duration,
    /// Timeout of one status or read-index call to another node, and the least an append may
    /// take (openraft's own bound, from the heartbeat interval, is kept for heartbeats and
    /// votes).
    pub rpc_timeout: Duration,
    pub snapshot_chunk_bytes: usize,
    pub snapshot_chunk_timeout: Duration,
    /// Installing a snapshot (verify + import) on the receiver.
    pub snapshot_install_timeout: Duration,
    /// Bound of a membership change, including a learner catching up.
    pub membership_timeout: Duration,
    /// Capacity of the applied-outcome broadcast; slower subscribers see `Lagged`.
    pub publish_capacity: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            snapshot_every_entries: 100_000,
            entries_kept_after_snapshot: 20_000,
            snapshot_every_log_bytes: 1 << 30,
            log_bytes_kept_after_snapshot: 256 << 20,
            max_entries_per_append: 1024,
            write_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(2),
            snapshot_chunk_bytes: 1 << 20,
            snapshot_chunk_timeout: Duration::from_secs(10),
            snapshot_install_timeout: Duration::from_secs(300),
            membership_timeout: Duration::from_secs(60),
            publish_capacity: 4096,
        }
    }
}
