//! [`RaftNode`]: the public face of one replica. No openraft type crosses this API.
//!
//! Writes work on any node: the leader appends them itself, a follower forwards them to the
//! leader's raft port. Every write carries a request id; the node that took the write watches
//! its own state machine for the first application of that id, so a write retried across a
//! leader change reports the outcome of its first application, and the caller sees exactly one
//! success or one error. The price: a retried command may be appended twice; storage commands
//! carry their ids and timestamps, so the second application is refused (e.g. `IdExists`) or
//! changes nothing, and nobody waits for it.

use crate::codec::{blocking, storage_io};
use crate::config::{NodeConfig, Tuning};
use crate::core::NodeCore;
use crate::error::RaftNodeError;
use crate::hub::{AppliedEvent, ApplyHub};
use crate::log_sizes::LogSizes;
use crate::log_store::LogStore;
use crate::metrics::{Counters, MetricsSnapshot};
use crate::net::client::HttpClient;
use crate::net::peer::NetworkFactory;
use crate::net::server::RaftServer;
use crate::net::wire::{self, Committed, LocalStatus, MembershipOp, WireError, WireResult};
use crate::snapshot_store::SnapshotStore;
use crate::state_machine::{ReplicationMeta, StateMachine};
use crate::status::{ClusterStatus, MemberStatus, Role};
use crate::types::{Proposal, Raft};
use confab_storage::{Applied, Command, Engine};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{InitializeError, RaftError};
use openraft::{BasicNode, Config, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// A write's outcome: the log index it was applied at (pass it to
/// [`RaftNode::wait_applied`] on any node for read-your-writes) and storage's result.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteResult {
    pub index: u64,
    pub applied: Applied,
}

/// One running replica. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<NodeCore>,
    engine: Arc<Engine>,
    raft_addr: SocketAddr,
    advertise_addr: String,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

/// What one try of a leader-only call came to.
enum Attempt<T> {
    Done(T),
    /// Not served (no leader, not the leader, unreachable, outcome unknown): try again.
    Retry(String),
    Failed(RaftNodeError),
}

fn classify<T>(result: WireResult<T>, local: bool) -> Attempt<T> {
    match result {
        Ok(value) => Attempt::Done(value),
        Err(WireError::NotLeader { leader }) => {
            Attempt::Retry(format!("not the leader (leader {leader:?})"))
        }
        Err(WireError::Unknown(why)) => Attempt::Retry(why),
        Err(WireError::Refused(why)) => Attempt::Failed(RaftNodeError::Refused(why)),
        Err(WireError::Stopped(why)) if local => Attempt::Failed(RaftNodeError::Stopped(why)),
        Err(WireError::Stopped(why)) => Attempt::Retry(format!("the leader is stopping: {why}")),
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((5u64 << attempt.min(6)).min(200))
}

fn openraft_config(config: &NodeConfig) -> Result<Arc<Config>, RaftNodeError> {
    let tuning = &config.tuning;
    let millis = |d: Duration| d.as_millis().max(1) as u64;
    let raft_config = Config {
        cluster_name: "confab".to_string(),
        heartbeat_interval: millis(tuning.heartbeat_interval),
        election_timeout_min: millis(tuning.election_timeout_min),
        election_timeout_max: millis(tuning.election_timeout_max),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(tuning.snapshot_every_entries.max(1)),
        max_in_snapshot_log_to_keep: tuning.entries_kept_after_snapshot,
        max_payload_entries: tuning.max_entries_per_append.max(1),
        install_snapshot_timeout: millis(tuning.snapshot_install_timeout),
        snapshot_max_chunk_size: tuning.snapshot_chunk_bytes as u64,
        ..Default::default()
    };
    raft_config
        .validate()
        .map(Arc::new)
        .map_err(|e| RaftNodeError::Config(e.to_string()))
}

impl RaftNode {
    /// Opens the node's log and state machine on `config.engine`, binds the raft port and starts
    /// Raft. A node restarted from its data dir rejoins with its log, vote and state.
    pub async fn start(config: NodeConfig) -> Result<RaftNode, RaftNodeError> {
        let raft_config = openraft_config(&config)?;
        let listener = tokio::net::TcpListener::bind(&config.listen_addr).await?;
        let raft_addr = listener.local_addr()?;
        let advertise_addr = config
            .advertise_addr
            .clone()
            .unwrap_or_else(|| raft_addr.to_string());

        let engine = config.engine.clone();
        let dir = config.snapshot_dir.clone();
        let reading = engine.clone();
        let (snapshots, meta, kept_log, snapshot_bytes) =
            blocking(move || -> std::io::Result<_> {
                let snapshots = SnapshotStore::open(&dir)?;
                let snapshot_bytes = snapshots.current()?.map_or(0, |(_, file)| file.len);
                let last = reading
                    .log_last()
                    .map_err(storage_io)?
                    .map(|(index, _)| index);
                let kept_log = match last {
                    Some(last) => {
                        Some((last, reading.log_approximate_bytes().map_err(storage_io)?))
                    }
                    None => None,
                };
                Ok((
                    snapshots,
                    ReplicationMeta::load(&reading)?,
                    kept_log,
                    snapshot_bytes,
                ))
            })
            .await??;
        let sizes = Arc::new(LogSizes::default());
        if let Some((last, bytes)) = kept_log {
            sizes.seed(last, bytes);
        }
        let applied = meta.last_applied.map(|id| id.index).unwrap_or(0);
        let hub = Arc::new(ApplyHub::new(
            config.node_id,
            applied,
            config.tuning.publish_capacity,
        ));
        let state_machine = StateMachine::open(engine.clone(), snapshots, hub.clone()).await?;
        hub.counters
            .snapshot_bytes
            .store(snapshot_bytes, std::sync::atomic::Ordering::Relaxed);
        let log_store = LogStore::new(engine.clone(), sizes.clone());
        let http = HttpClient::new(&config.secret, config.dial.clone());
        let network = NetworkFactory {
            http: http.clone(),
            append_timeout: config.tuning.rpc_timeout,
            snapshot_chunk_bytes: config.tuning.snapshot_chunk_bytes,
            snapshot_chunk_timeout: config.tuning.snapshot_chunk_timeout,
            snapshot_install_timeout: config.tuning.snapshot_install_timeout,
        };
        let raft: Raft = openraft::Raft::new(
            config.node_id,
            raft_config,
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| RaftNodeError::Raft(e.to_string()))?;

        let core = Arc::new(NodeCore::new(
            config.node_id,
            config.secret.clone(),
            raft.clone(),
            hub,
            http,
            config.tuning.clone(),
            config.snapshot_dir.clone(),
        ));
        let server = tokio::spawn(RaftServer::new(core.clone()).run(listener));
        let watcher = tokio::spawn(count_leader_changes(
            raft.clone(),
            core.hub.counters.clone(),
        ));
        let size_policy = tokio::spawn(snapshot_and_purge_by_size(
            raft,
            sizes,
            core.hub.counters.clone(),
            config.tuning.clone(),
        ));
        Ok(RaftNode {
            inner: Arc::new(Inner {
                core,
                engine,
                raft_addr,
                advertise_addr,
                tasks: parking_lot::Mutex::new(vec![server, watcher, size_policy]),
            }),
        })
    }

    pub fn id(&self) -> u64 {
        self.inner.core.id
    }

    /// The address the raft port is bound to.
    pub fn raft_addr(&self) -> SocketAddr {
        self.inner.raft_addr
    }

    /// The raft address other nodes use for this one.
    pub fn advertise_addr(&self) -> &str {
        &self.inner.advertise_addr
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    /// Forms a new cluster of `members` (id → raft address). Call it on one node of a fresh
    /// cluster; the others learn the membership from the leader.
    pub async fn initialize(&self, members: BTreeMap<u64, String>) -> Result<(), RaftNodeError> {
        let nodes: BTreeMap<u64, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match self.inner.core.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                Err(RaftNodeError::Refused(format!("already initialized: {e}")))
            }
            Err(e) => Err(RaftNodeError::Raft(e.to_string())),
        }
    }

    /// The leader this node currently knows of.
    pub fn leader(&self) -> Option<u64> {
        self.inner.core.leader().map(|(id, _)| id)
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.id())
    }

    /// Commits `command` through Raft from any node and returns once it is applied on this
    /// node (so a read here right after sees it). A leader change is retried within
    /// `write_timeout`; [`RaftNodeError::Timeout`] means the outcome is unknown.
    pub async fn write(&self, command: Command) -> Result<WriteResult, RaftNodeError> {
        let started = Instant::now();
        let result = self.write_inner(command).await;
        let counters = &self.inner.core.hub.counters;
        match &result {
            Ok(_) => {
                Counters::bump(&counters.writes_ok);
                counters.commit_latency.record(started.elapsed());
            }
            Err(_) => Counters::bump(&counters.writes_failed),
        }
        result
    }

    async fn write_inner(&self, command: Command) -> Result<WriteResult, RaftNodeError> {
        let core = &self.inner.core;
        let timeout = core.tuning.write_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let id = core.next_request_id();
        let mut waiter = core.hub.register(id);
        let proposal = Proposal { id, command };
        let mut attempt = 0u32;
        let committed = loop {
            if attempt > 0 {
                Counters::bump(&core.hub.counters.write_retries);
                tokio::time::sleep_until(
                    deadline.min(tokio::time::Instant::now() + backoff(attempt)),
                )
                .await;
            }
            attempt += 1;
            let outcome = tokio::select! {
                biased;
                first = &mut waiter.rx => {
                    // Applied here through an earlier attempt whose answer got lost.
                    let applied = first.map_err(|_| RaftNodeError::Stopped("apply hub closed".into()))?;
                    return Ok(WriteResult { index: applied.index, applied });
                }
                outcome = tokio::time::timeout_at(deadline, self.propose(proposal.clone(), deadline)) => outcome,
            };
            match outcome {
                Err(_) => return Err(RaftNodeError::Timeout(timeout)),
                Ok(Attempt::Done(committed)) => break committed,
                Ok(Attempt::Failed(e)) => return Err(e),
                Ok(Attempt::Retry(why)) => {
                    tracing::debug!("write {id:?} attempt {attempt}: {why}");
                    if tokio::time::Instant::now() >= deadline {
                        return Err(RaftNodeError::Timeout(timeout));
                    }
                }
            }
        };
        // Read-your-writes: wait until this node has applied the entry.
        let mut applied_index = core.hub.watch_applied();
        match tokio::time::timeout_at(deadline, applied_index.wait_for(|i| *i >= committed.index))
            .await
        {
            Err(_) => return Err(RaftNodeError::Timeout(timeout)),
            Ok(Err(_)) => return Err(RaftNodeError::Stopped("apply hub closed".into())),
            Ok(Ok(_)) => {}
        }
        // The first application of this request (an earlier attempt may have committed too).
        if let Ok(first) = waiter.rx.try_recv() {
            return Ok(WriteResult {
                index: first.index,
                applied: first,
            });
        }
        // Not applied individually here (a snapshot covered it): the leader's outcome.
        match committed.applied {
            Some(applied) => Ok(WriteResult {
                index: committed.index,
                applied,
            }),
            None => Err(RaftNodeError::Raft(format!(
                "entry {} carried no outcome",
                committed.index
            ))),
        }
    }

    /// One try: propose on the leader, here or over its raft port.
    async fn propose(
        &self,
        proposal: Proposal,
        deadline: tokio::time::Instant,
    ) -> Attempt<Committed> {
        let core = &self.inner.core;
        match core.leader() {
            None => Attempt::Retry("no leader known".into()),
            Some((leader, _)) if leader == core.id => {
                classify(core.propose_local(proposal).await, true)
            }
            Some((_, addr)) => {
                Counters::bump(&core.hub.counters.writes_forwarded);
                let budget = deadline.saturating_duration_since(tokio::time::Instant::now());
                match core
                    .http
                    .call::<_, WireResult<Committed>>(&addr, wire::FORWARD_WRITE, &proposal, budget)
                    .await
                {
                    Ok(answer) => classify(answer, false),
                    Err(e) => Attempt::Retry(e.to_string()),
                }
            }
        }
    }

    /// Waits (bounded) until this node has applied `index`: read-your-writes for a read that
    /// carries the index a write returned.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), RaftNodeError> {
        let mut applied = self.inner.core.hub.watch_applied();
        let reached = tokio::time::timeout(timeout, applied.wait_for(|i| *i >= index))
            .await
            .map(|waited| waited.is_ok());
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(RaftNodeError::Stopped("apply hub closed".into())),
            Err(_) => Err(RaftNodeError::Timeout(timeout)),
        }
    }

    /// The last log index applied to this node's state.
    pub fn applied_index(&self) -> u64 {
        self.inner.core.hub.applied_index()
    }

    /// Makes the next local read linearizable: gets the read index from the leader (which
    /// confirms its leadership with a quorum) and waits until this node has applied it.
    /// Returns that index.
    pub async fn linearizable_read_barrier(&self) -> Result<u64, RaftNodeError> {
        let core = &self.inner.core;
        let timeout = core.tuning.write_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let index = self
            .leader_call(deadline, |leader_addr| async move {
                match leader_addr {
                    None => classify(core.read_index_local().await, true),
                    Some(addr) => match core
                        .http
                        .call::<_, WireResult<u64>>(
                            &addr,
                            wire::READ_INDEX,
                            &(),
                            core.tuning.rpc_timeout,
                        )
                        .await
                    {
                        Ok(answer) => classify(answer, false),
                        Err(e) => Attempt::Retry(e.to_string()),
                    },
                }
            })
            .await?;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.wait_applied(index, remaining).await?;
        Ok(index)
    }

    /// Retries `call` on the current leader until it is served or `deadline` passes. `call` gets
    /// None when this node is the leader, else the leader's raft address.
    async fn leader_call<'a, T, F, Fut>(
        &'a self,
        deadline: tokio::time::Instant,
        call: F,
    ) -> Result<T, RaftNodeError>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>> + 'a,
    {
        let core = &self.inner.core;
        let mut attempt = 0u32;
        let mut last = String::from("no leader known");
        loop {
            if attempt > 0 {
                if tokio::time::Instant::now() >= deadline {
                    return Err(if core.leader().is_none() {
                        RaftNodeError::NoLeader
                    } else {
                        RaftNodeError::Network(last)
                    });
                }
                tokio::time::sleep_until(
                    deadline.min(tokio::time::Instant::now() + backoff(attempt)),
                )
                .await;
            }
            attempt += 1;
            let target = match core.leader() {
                None => continue,
                Some((leader, _)) if leader == core.id => None,
                Some((_, addr)) => Some(addr),
            };
            match tokio::time::timeout_at(deadline, call(target)).await {
                Err(_) => return Err(RaftNodeError::Timeout(core.tuning.write_timeout)),
                Ok(Attempt::Done(value)) => return Ok(value),
                Ok(Attempt::Failed(e)) => return Err(e),
                Ok(Attempt::Retry(why)) => last = why,
            }
        }
    }

    async fn change(&self, op: MembershipOp) -> Result<(), RaftNodeError> {
        let core = &self.inner.core;
        let budget = core.tuning.membership_timeout + core.tuning.rpc_timeout;
        let deadline = tokio::time::Instant::now() + budget;
        self.leader_call(deadline, |leader_addr| {
            let op = op.clone();
            async move {
                match leader_addr {
                    None => classify(core.membership_local(op).await, true),
                    Some(addr) => match core
                        .http
                        .call::<_, WireResult<()>>(&addr, wire::MEMBERSHIP, &op, budget)
                        .await
                    {
                        Ok(answer) => classify(answer, false),
                        Err(e) => Attempt::Retry(e.to_string()),
                    },
                }
            }
        })
        .await
    }

    /// Adds a non-voting member and returns once it has caught up with the leader's log (by
    /// snapshot if the log was purged).
    pub async fn add_learner(&self, id: u64, addr: String) -> Result<(), RaftNodeError> {
        self.change(MembershipOp::AddLearner { id, addr }).await
    }

    /// Makes a learner a voter.
    pub async fn promote(&self, id: u64) -> Result<(), RaftNodeError> {
        self.change(MembershipOp::Promote { id }).await
    }

    /// Removes a voter from the configuration (it is not kept as a learner).
    pub async fn remove_voter(&self, id: u64) -> Result<(), RaftNodeError> {
        self.change(MembershipOp::RemoveVoter { id }).await
    }

    /// Replaces the set of voters (every id must already be a member).
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<(), RaftNodeError> {
        self.change(MembershipOp::ReplaceVoters {
            ids: voters.into_iter().collect(),
        })
        .await
    }

    /// The configuration as this node sees it, with each member's own report (asked over the
    /// raft port, bounded by `rpc_timeout`; unreachable members are marked so).
    pub async fn status(&self) -> ClusterStatus {
        let core = &self.inner.core;
        let (leader, term, membership_index, members, matched) = {
            let metrics = core.raft.metrics();
            let metrics = metrics.borrow_watched();
            let stored = &metrics.membership_config;
            let membership = stored.membership();
            let voters: BTreeSet<u64> = membership.voter_ids().collect();
            let members: Vec<(u64, String, Role)> = membership
                .nodes()
                .map(|(id, node)| {
                    let role = if voters.contains(id) {
                        Role::Voter
                    } else {
                        Role::Learner
                    };
                    (*id, node.addr.clone(), role)
                })
                .collect();
            let matched: BTreeMap<u64, Option<u64>> = metrics
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|(id, log_id)| (*id, log_id.as_ref().map(|l| l.index)))
                        .collect()
                })
                .unwrap_or_default();
            (
                metrics.current_leader,
                metrics.current_term,
                stored.log_id().as_ref().map(|l| l.index),
                members,
                matched,
            )
        };
        let reports = futures_util::future::join_all(members.iter().map(|(id, addr, _)| {
            let addr = addr.clone();
            let id = *id;
            async move {
                if id == core.id {
                    return Some(core.local_status());
                }
                core.http
                    .call::<_, LocalStatus>(&addr, wire::STATUS, &(), core.tuning.rpc_timeout)
                    .await
                    .ok()
            }
        }))
        .await;
        let members = members
            .into_iter()
            .zip(reports)
            .map(|((id, addr, role), report)| MemberStatus {
                id,
                addr,
                role,
                reachable: report.is_some(),
                state: report.as_ref().map(|r| r.state.clone()),
                term: report.as_ref().map(|r| r.term),
                last_log_index: report.as_ref().and_then(|r| r.last_log_index),
                applied_index: report.as_ref().map(|r| r.applied_index),
                snapshot_index: report.as_ref().and_then(|r| r.snapshot_index),
                purged_index: report.as_ref().and_then(|r| r.purged_index),
                matched_index: matched.get(&id).copied().flatten(),
            })
            .collect();
        ClusterStatus {
            node_id: core.id,
            leader,
            term,
            membership_index,
            members,
        }
    }

    /// Every applied outcome on this node, in log order, from now on. A subscriber that falls
    /// more than `publish_capacity` events behind gets `RecvError::Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AppliedEvent>> {
        self.inner.core.hub.subscribe()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.core.hub.counters.snapshot()
    }

    /// Registers the handler of messages on `topic` from peers (replacing any previous one).
    pub fn on_message(
        &self,
        topic: &str,
        handler: crate::MessageHandler,
    ) -> Result<(), RaftNodeError> {
        if !crate::valid_topic(topic) {
            return Err(RaftNodeError::Refused(format!("invalid topic {topic:?}")));
        }
        self.inner.core.messenger.set_handler(topic, handler);
        Ok(())
    }

    /// Sends `body` on `topic` to every other node of the configuration, best effort (see
    /// [`crate::PeerMessage`]): returns how many peers' outboxes took it.
    pub fn send_to_peers(&self, topic: &str, body: bytes::Bytes) -> Result<usize, RaftNodeError> {
        if !crate::valid_topic(topic) {
            return Err(RaftNodeError::Refused(format!("invalid topic {topic:?}")));
        }
        let core = &self.inner.core;
        Ok(core.messenger.send(&core.members(), topic, body))
    }

    /// Peer messages dropped because a peer's outbox was full.
    pub fn peer_messages_dropped(&self) -> u64 {
        self.inner
            .core
            .messenger
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Builds a snapshot now (the log behind it is purged per the tuning).
    pub async fn trigger_snapshot(&self) -> Result<(), RaftNodeError> {
        self.inner
            .core
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| RaftNodeError::Stopped(e.to_string()))
    }

    /// Waits until Raft stops by itself — a fatal error such as a full disk or an I/O error in
    /// the log or the state machine — and says why. Such a node can no longer apply, vote or
    /// catch up; it must not go on serving reads from a replica that silently stopped moving.
    pub async fn stopped(&self) -> String {
        let mut metrics = self.inner.core.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_watched().running_state {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return "the Raft core ended".to_string();
            }
        }
    }

    /// Stops Raft and the raft port. The engine stays open (the caller owns it).
    pub async fn shutdown(&self) -> Result<(), RaftNodeError> {
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
        self.inner
            .core
            .raft
            .shutdown()
            .await
            .map_err(|e| RaftNodeError::Stopped(e.to_string()))
    }
}

/// Counts leader changes as this node observes them.
/// How often the log's size is checked.
const SIZE_CHECK: Duration = Duration::from_secs(1);

/// openraft snapshots and purges by entry count; this adds the same by bytes
/// ([`Tuning::snapshot_every_log_bytes`], [`Tuning::log_bytes_kept_after_snapshot`]), so file
/// chunks do not pile up in the log until the 100,000th entry. Every node runs it on its own log.
async fn snapshot_and_purge_by_size(
    raft: Raft,
    sizes: Arc<LogSizes>,
    counters: Arc<Counters>,
    tuning: Tuning,
) {
    let mut purge_asked = 0;
    loop {
        tokio::time::sleep(SIZE_CHECK).await;
        counters
            .log_bytes
            .store(sizes.held(), std::sync::atomic::Ordering::Relaxed);
        let (snapshot, applied) = {
            let metrics = raft.metrics();
            let m = metrics.borrow_watched();
            (
                m.snapshot.map_or(0, |id| id.index),
                m.last_applied.map_or(0, |id| id.index),
            )
        };
        let threshold = tuning.snapshot_every_log_bytes.max(
            counters
                .snapshot_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        // openraft ignores the trigger while a snapshot is being built.
        if applied > snapshot
            && sizes.bytes_after(snapshot) >= threshold
            && raft.trigger().snapshot().await.is_err()
        {
            return;
        }
        if let Some(upto) = sizes.purge_point(snapshot, tuning.log_bytes_kept_after_snapshot) {
            if upto > purge_asked {
                purge_asked = upto;
                tracing::info!(upto, "purging the log by size");
                if raft.trigger().purge_log(upto).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn count_leader_changes(raft: Raft, counters: Arc<Counters>) {
    let mut metrics = raft.metrics();
    let mut leader = metrics.borrow_watched().current_leader;
    while metrics.changed().await.is_ok() {
        let now = metrics.borrow_watched().current_leader;
        if now != leader {
            leader = now;
            Counters::bump(&counters.leader_changes);
        }
    }
}
