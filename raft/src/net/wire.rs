//! The wire protocol: paths, the secret header and the bodies of confab's own cluster calls.
//! openraft's messages (append, vote, snapshot) travel as openraft serializes them.

use confab_storage::Applied;
use serde::{Deserialize, Serialize};

/// Header carrying the shared cluster secret on every node-to-node request.
pub(crate) const SECRET_HEADER: &str = "x-confab-cluster-secret";
pub(crate) const CONTENT_TYPE: &str = "application/msgpack";

pub(crate) const APPEND: &str = "/raft/append";
pub(crate) const VOTE: &str = "/raft/vote";
pub(crate) const PRE_VOTE: &str = "/raft/pre-vote";
/// Query `transfer=<u64>&offset=<u64>`; body: raw bytes of the snapshot stream at `offset`.
pub(crate) const SNAPSHOT_CHUNK: &str = "/raft/snapshot/chunk";
/// Query `transfer=<u64>`; body: [`InstallSnapshot`] (vote and meta). Installs what was sent.
pub(crate) const SNAPSHOT_INSTALL: &str = "/raft/snapshot/install";
/// Body: a `Proposal`; answer: `WireResult<Committed>`. Served by the leader.
pub(crate) const FORWARD_WRITE: &str = "/cluster/write";
/// Answer: `WireResult<u64>`, the leader's read index.
pub(crate) const READ_INDEX: &str = "/cluster/read-index";
/// Body: a [`MembershipOp`]; answer: `WireResult<()>`. Served by the leader.
pub(crate) const MEMBERSHIP: &str = "/cluster/membership";
/// Answer: the node's [`LocalStatus`].
pub(crate) const STATUS: &str = "/cluster/status";
/// Query `topic=<name>&from=<node id>`; body: the message's raw bytes (see `messages`).
pub(crate) const PEER_MESSAGE: &str = "/cluster/message";

/// A write committed and applied by the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Committed {
    pub index: u64,
    pub applied: Option<Applied>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum MembershipOp {
    AddLearner { id: u64, addr: String },
    Promote { id: u64 },
    RemoveVoter { id: u64 },
    ReplaceVoters { ids: Vec<u64> },
}

/// Why a cluster call did not succeed, as the serving node saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum WireError {
    /// This node is not the leader; the proposal was not appended.
    NotLeader { leader: Option<u64> },
    /// The proposal may or may not commit (leader changed after appending it).
    Unknown(String),
    /// Refused for good (bad membership change, ...).
    Refused(String),
    /// The node is shutting down or failed.
    Stopped(String),
}

pub(crate) type WireResult<T> = Result<T, WireError>;

/// Final call of a snapshot transfer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstallSnapshot {
    pub vote: crate::types::Vote,
    pub meta: crate::types::SnapshotMeta,
}

/// What one node says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LocalStatus {
    pub id: u64,
    pub state: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: u64,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
}

/// Query parameter `name` of a URI query string.
pub(crate) fn query_u64(query: Option<&str>, name: &str) -> Option<u64> {
    query_str(query, name).and_then(|value| value.parse().ok())
}

/// Query parameter `name` of a URI query string, as written (no percent-decoding).
pub(crate) fn query_str<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}
