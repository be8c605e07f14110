//! # confab-raft
//!
//! Replication of `confab-storage` through openraft (the only crate that depends on it; no
//! openraft type appears in this crate's API). Every node holds a full replica: writes are
//! storage [`Command`](confab_storage::Command)s committed through Raft, every node applies every
//! committed command to its own RocksDB and publishes the outcomes to its server.
//!
//! - [`log_store`]: openraft's log store over storage's raw log column families, with a
//!   group-committed, non-blocking append.
//! - [`state_machine`]: storage's `apply_batch` (one WriteBatch per applied batch, with the last
//!   applied log id and membership), snapshots by streaming export and verified import.
//! - [`net`]: node-to-node HTTP on the raft port, with the cluster secret on every request.
//! - `messages`: topic-tagged best-effort messages between nodes, outside the log.
//! - [`RaftNode`]: the public API — start, initialize, write from any node, read-your-writes,
//!   linearizable read barrier, membership, status, subscription, metrics, shutdown.
//!
//! See the crate README for the wire protocol and the snapshot flow.

mod codec;
mod config;
mod core;
mod error;
pub mod fuzzing;
mod hub;
mod log_sizes;
mod log_store;
mod messages;
mod metrics;
mod net;
mod node;
mod snapshot_store;
mod state_machine;
mod status;
#[doc(hidden)]
pub mod testing;
mod types;

pub use config::{NodeConfig, Tuning};
pub use error::RaftNodeError;
pub use hub::AppliedEvent;
pub use messages::{valid_topic, MessageHandler, PeerMessage, MAX_TOPIC_LEN};
pub use metrics::{LatencySnapshot, MetricsSnapshot};
pub use node::{RaftNode, WriteResult};
pub use status::{ClusterStatus, MemberStatus, Role};
