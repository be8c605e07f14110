//! The state one node shares between its public handle and its raft-port server, and the
//! operations only the leader can serve (propose, read index, membership change), which both the
//! local API and forwarded calls use.

use crate::config::Tuning;
use crate::hub::ApplyHub;
use crate::net::client::HttpClient;
use crate::net::wire::{Committed, LocalStatus, MembershipOp, WireError, WireResult};
use crate::types::{Proposal, Raft, RequestId, TypeConfig};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ReadPolicy};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) struct NodeCore {
    pub id: u64,
    pub secret: String,
    pub raft: Raft,
    pub hub: Arc<ApplyHub>,
    pub http: HttpClient,
    pub tuning: Tuning,
    pub snapshot_dir: PathBuf,
    /// Topic-tagged messages to and from peers.
    pub messenger: crate::messages::Messenger,
    /// One membership change at a time on this node (the leader serves them all).
    pub membership_lock: tokio::sync::Mutex<()>,
    epoch: u64,
    seq: AtomicU64,
}

fn write_error(error: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> WireError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => WireError::NotLeader {
            leader: forward.leader_id,
        },
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward)) => {
            WireError::Unknown(format!("entry discarded on leader change: {forward}"))
        }
        RaftError::APIError(other) => WireError::Refused(other.to_string()),
        RaftError::Fatal(fatal) => WireError::Stopped(fatal.to_string()),
    }
}

impl NodeCore {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        secret: String,
        raft: Raft,
        hub: Arc<ApplyHub>,
        http: HttpClient,
        tuning: Tuning,
        snapshot_dir: PathBuf,
    ) -> NodeCore {
        let messenger = crate::messages::Messenger::new(id, http.clone(), tuning.rpc_timeout);
        NodeCore {
            id,
            secret,
            raft,
            hub,
            http,
            messenger,
            tuning,
            snapshot_dir,
            membership_lock: tokio::sync::Mutex::new(()),
            epoch: rand::random(),
            seq: AtomicU64::new(0),
        }
    }

    pub(crate) fn next_request_id(&self) -> RequestId {
        RequestId {
            node: self.id,
            epoch: self.epoch,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub(crate) fn snapshots_dir_temp(&self, what: &str) -> PathBuf {
        self.snapshot_dir
            .join(format!("{what}-{:016x}.tmp", rand::random::<u64>()))
    }

    /// Every node of the current configuration (voters and learners), with its raft address.
    pub(crate) fn members(&self) -> Vec<(u64, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect()
    }

    /// The leader this node knows of, with its raft address.
    pub(crate) fn leader(&self) -> Option<(u64, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let leader = metrics.current_leader?;
        let addr = metrics
            .membership_config
            .membership()
            .get_node(&leader)?
            .addr
            .clone();
        Some((leader, addr))
    }

    /// Appends a proposal as leader and waits until it is applied here.
    pub(crate) async fn propose_local(&self, proposal: Proposal) -> WireResult<Committed> {
        match self.raft.client_write(proposal).await {
            Ok(response) => Ok(Committed {
                index: response.log_id().index,
                applied: response.response().0.clone(),
            }),
            Err(e) => Err(write_error(e)),
        }
    }

    /// The leader's read index: the log index a read must wait for to be linearizable.
    pub(crate) async fn read_index_local(&self) -> WireResult<u64> {
        match self.raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
            Ok(linearizer) => Ok(linearizer.read_log_id().index()),
            Err(RaftError::APIError(e)) => match e {
                openraft::errors::LinearizableReadError::ForwardToLeader(forward) => {
                    Err(WireError::NotLeader {
                        leader: forward.leader_id,
                    })
                }
                other => Err(WireError::Unknown(other.to_string())),
            },
            Err(RaftError::Fatal(fatal)) => Err(WireError::Stopped(fatal.to_string())),
        }
    }

    /// Runs one membership change as leader, one at a time.
    pub(crate) async fn membership_local(&self, op: MembershipOp) -> WireResult<()> {
        let _one_at_a_time = self.membership_lock.lock().await;
        let raft = &self.raft;
        let change = async {
            let changed = match op {
                MembershipOp::AddLearner { id, addr } => {
                    let added = raft
                        .add_learner(id, BasicNode::new(addr), false)
                        .await
                        .map_err(write_error)?;
                    return self.wait_caught_up(id, added.log_id().index).await;
                }
                MembershipOp::Promote { id } => {
                    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                        .await
                }
                MembershipOp::RemoveVoter { id } => {
                    raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                        .await
                }
                MembershipOp::ReplaceVoters { ids } => {
                    raft.change_membership(
                        ChangeMembers::ReplaceAllVoters(ids.into_iter().collect()),
                        false,
                    )
                    .await
                }
            };
            changed.map(|_| ()).map_err(write_error)
        };
        match tokio::time::timeout(self.tuning.membership_timeout, change).await {
            Ok(result) => result,
            Err(_) => Err(WireError::Unknown(format!(
                "membership change still running after {:?}",
                self.tuning.membership_timeout
            ))),
        }
    }

    /// Waits until the leader has replicated to `id` everything up to `index` (openraft's own
    /// blocking add only waits until the learner is within a lag threshold).
    async fn wait_caught_up(&self, id: u64, index: u64) -> WireResult<()> {
        let mut metrics = self.raft.metrics();
        loop {
            {
                let now = metrics.borrow_watched();
                if now.current_leader != Some(self.id) {
                    return Err(WireError::Unknown(format!(
                        "lost leadership while learner {id} caught up"
                    )));
                }
                let matched = now
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned())
                    .flatten();
                if matched.is_some_and(|m| m.index >= index) {
                    return Ok(());
                }
            }
            if metrics.changed().await.is_err() {
                return Err(WireError::Stopped("raft stopped".into()));
            }
        }
    }

    pub(crate) fn local_status(&self) -> LocalStatus {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        LocalStatus {
            id: self.id,
            state: format!("{:?}", metrics.state),
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index: metrics.last_log_index,
            applied_index: self.hub.applied_index(),
            snapshot_index: metrics.snapshot.as_ref().map(|id| id.index),
            purged_index: metrics.purged.as_ref().map(|id| id.index),
        }
    }
}
