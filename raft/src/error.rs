//! The one error type of the public API. openraft's errors are carried as text so that callers
//! never name an openraft type.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RaftNodeError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(#[from] confab_storage::StorageError),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No leader is known (election running or no quorum); retrying later may succeed.
    #[error("no leader is known")]
    NoLeader,
    /// The operation did not finish in time. For a write this means the outcome is unknown:
    /// it may still be applied.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Refused for good, e.g. an invalid membership change.
    #[error("refused: {0}")]
    Refused(String),
    #[error("network: {0}")]
    Network(String),
    #[error("raft: {0}")]
    Raft(String),
    /// The node is shut down or its Raft core failed.
    #[error("the node has stopped: {0}")]
    Stopped(String),
}
