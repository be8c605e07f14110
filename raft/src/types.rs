//! The openraft type configuration and the application data that travels through the log. Kept
//! crate-private: callers of `confab-raft` never name an openraft type.

use confab_storage::{Applied, Command};
use serde::{Deserialize, Serialize};
use std::fmt;

openraft::declare_raft_types!(
    /// confab's Raft types: `u64` node ids, `BasicNode` (the raft address) as node data.
    pub(crate) TypeConfig:
        D = Proposal,
        R = Reply,
        NodeId = u64,
        Node = openraft::BasicNode,
);

pub(crate) type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;
pub(crate) type Entry = openraft::alias::EntryOf<TypeConfig>;
pub(crate) type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub(crate) type Vote = openraft::alias::VoteOf<TypeConfig>;
pub(crate) type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub(crate) type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub(crate) type Snapshot =
    openraft::alias::SnapshotOf<TypeConfig, crate::snapshot_store::SnapshotFile>;

/// Identifies one client write across retries: the node that took the request, a random epoch
/// drawn when that node started (so sequence numbers never repeat across restarts) and a
/// sequence number. The origin node recognises its own proposals when they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct RequestId {
    pub node: u64,
    pub epoch: u64,
    pub seq: u64,
}

/// What a log entry carries: a storage command and the id of the write that proposed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Proposal {
    pub id: RequestId,
    pub command: Command,
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proposal {}/{:x}/{}",
            self.id.node, self.id.epoch, self.id.seq
        )
    }
}

/// The state machine's answer to the proposer on the leader: the storage outcome of that entry
/// (None for blank and membership entries).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Reply(pub Option<Applied>);
