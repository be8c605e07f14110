//! A cluster of real nodes for the tests: each node has its own RocksDB in a temp dir, its own
//! raft port on 127.0.0.1 (port chosen by binding port 0) and its own tokio runtime, so that
//! killing a node (dropping its runtime without a clean shutdown) is as abrupt as a crash.
#![allow(dead_code)]

use confab_raft::{NodeConfig, RaftNode, RaftNodeError, Tuning, WriteResult};
use confab_storage::{Command, Engine, Id, Outcome, TeamType};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-cluster-secret";

pub fn id(n: u64) -> Id {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0x5a;
    Id::from_bytes(bytes)
}

pub fn create_user(n: u64, name: &str) -> Command {
    Command::CreateUser {
        id: id(n),
        at: 1_700_000_000_000 + n,
        username: name.into(),
        email: format!("{name}@example.com"),
        password_hash: "hash".into(),
        nickname: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        roles: "system_user".into(),
    }
}

/// A team with its town square at `n + 1`.
pub fn create_team(n: u64, name: &str, creator: u64) -> Command {
    Command::CreateTeam {
        id: id(n),
        at: 1_700_000_000_000 + n,
        name: name.into(),
        display_name: name.into(),
        team_type: TeamType::Open,
        creator_id: id(creator),
        town_square_id: id(n + 1),
        off_topic_id: id(n + 2),
        invite_id: String::new(),
    }
}

pub fn post(n: u64, channel: u64, user: u64, message: &str) -> Command {
    Command::CreatePost {
        file_ids: Vec::new(),
        id: id(n),
        at: 1_700_000_000_000 + n,
        channel_id: id(channel),
        user_id: id(user),
        root_id: None,
        message: message.into(),
        post_type: String::new(),
        props: "{}".into(),
        pending_post_id: String::new(),
        priority: String::new(),
        requested_ack: false,
        here_online: Vec::new(),
        channel_wide_ignored: false,
    }
}

pub fn fast_tuning() -> Tuning {
    Tuning {
        heartbeat_interval: Duration::from_millis(100),
        election_timeout_min: Duration::from_millis(500),
        election_timeout_max: Duration::from_millis(1000),
        write_timeout: Duration::from_secs(15),
        rpc_timeout: Duration::from_millis(1000),
        membership_timeout: Duration::from_secs(20),
        ..Tuning::default()
    }
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub struct TestNode {
    pub id: u64,
    pub dir: PathBuf,
    pub addr: String,
    pub engine: Option<Arc<Engine>>,
    pub node: Option<RaftNode>,
    rt: Option<tokio::runtime::Runtime>,
}

impl TestNode {
    pub fn node(&self) -> &RaftNode {
        self.node.as_ref().expect("node is running")
    }

    pub fn engine(&self) -> &Arc<Engine> {
        self.engine.as_ref().expect("node is running")
    }

    pub fn running(&self) -> bool {
        self.node.is_some()
    }

    /// Runs `f(node)` on the node's own runtime; it starts at once, the returned future only
    /// waits for it (and borrows nothing).
    pub fn on<T, F, Fut>(&self, f: F) -> impl Future<Output = T> + Send + 'static
    where
        F: FnOnce(RaftNode) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = self.rt.as_ref().expect("node is running");
        let handle = rt.spawn(f(self.node().clone()));
        async move { handle.await.expect("node task panicked") }
    }

    pub fn write(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<WriteResult, RaftNodeError>> + Send + 'static {
        self.on(move |node| async move { node.write(command).await })
    }

    pub fn wait_applied(
        &self,
        index: u64,
    ) -> impl Future<Output = Result<(), RaftNodeError>> + Send + 'static {
        self.on(move |node| async move { node.wait_applied(index, Duration::from_secs(20)).await })
    }
}

pub struct Cluster {
    pub base: tempfile::TempDir,
    pub nodes: BTreeMap<u64, TestNode>,
    pub tuning: Tuning,
}

impl Cluster {
    pub fn new(tuning: Tuning) -> Cluster {
        Cluster {
            base: tempfile::tempdir().expect("temp dir"),
            nodes: BTreeMap::new(),
            tuning,
        }
    }

    /// Starts node `id` (fresh, or from its existing data dir) on `listen` (port 0 for new).
    pub async fn start_node(&mut self, id: u64, listen: &str, secret: &str) -> &TestNode {
        let dir = self.base.path().join(format!("node-{id}"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(8)
            .thread_name(format!("node-{id}"))
            .enable_all()
            .build()
            .expect("runtime");
        let db = dir.join("db");
        let engine = Arc::new(Engine::open(&db).expect("open engine"));
        let config = NodeConfig {
            node_id: id,
            listen_addr: listen.to_string(),
            advertise_addr: None,
            dial: Default::default(),
            engine: engine.clone(),
            secret: secret.to_string(),
            snapshot_dir: dir.join("snapshots"),
            tuning: self.tuning.clone(),
        };
        let node = rt
            .spawn(RaftNode::start(config))
            .await
            .expect("start task")
            .expect("start node");
        let addr = node.advertise_addr().to_string();
        self.nodes.insert(
            id,
            TestNode {
                id,
                dir,
                addr,
                engine: Some(engine),
                node: Some(node),
                rt: Some(rt),
            },
        );
        &self.nodes[&id]
    }

    /// Starts `ids` and initializes them as one cluster; returns once a leader is known to all.
    pub async fn start(tuning: Tuning, ids: &[u64]) -> Cluster {
        let mut cluster = Cluster::new(tuning);
        for id in ids {
            cluster.start_node(*id, "127.0.0.1:0", SECRET).await;
        }
        let members: BTreeMap<u64, String> = ids
            .iter()
            .map(|id| (*id, cluster.nodes[id].addr.clone()))
            .collect();
        let first = &cluster.nodes[&ids[0]];
        first
            .on(move |node| async move { node.initialize(members).await })
            .await
            .expect("initialize");
        cluster.wait_leader(&[]).await;
        cluster
    }

    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[&id]
    }

    pub fn running(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.values().filter(|n| n.running())
    }

    /// The leader every running node (except `ignoring`) agrees on.
    pub async fn wait_leader(&self, ignoring: &[u64]) -> u64 {
        let mut agreed = 0;
        eventually(
            "a leader all running nodes agree on",
            Duration::from_secs(20),
            || {
                let leaders: Vec<Option<u64>> = self
                    .running()
                    .filter(|n| !ignoring.contains(&n.id))
                    .map(|n| n.node().leader())
                    .collect();
                let ok = leaders.first().copied().flatten().is_some_and(|l| {
                    leaders.iter().all(|x| *x == Some(l))
                        && self.nodes.get(&l).is_some_and(|n| n.running())
                });
                if ok {
                    agreed = leaders[0].unwrap_or(0);
                }
                async move { ok }
            },
        )
        .await;
        agreed
    }

    pub fn leader_id(&self) -> Option<u64> {
        self.running().find_map(|n| n.node().leader())
    }

    pub fn followers(&self, leader: u64) -> Vec<u64> {
        self.running()
            .map(|n| n.id)
            .filter(|id| *id != leader)
            .collect()
    }

    /// Kills a node without a clean shutdown: its runtime is dropped with every task, so Raft
    /// stops mid-flight. Waits until its engine is released so it can be reopened.
    pub async fn kill(&mut self, id: u64) {
        let test_node = self.nodes.get_mut(&id).expect("known node");
        test_node.node = None;
        if let Some(rt) = test_node.rt.take() {
            rt.shutdown_background();
        }
        let engine = test_node.engine.take().expect("running");
        eventually(
            "the killed node's engine to be released",
            Duration::from_secs(20),
            || {
                let free = Arc::strong_count(&engine) == 1;
                async move { free }
            },
        )
        .await;
        drop(engine);
    }

    /// Restarts a killed node from its data dir on its old address.
    pub async fn restart(&mut self, id: u64) {
        let addr = self.nodes[&id].addr.clone();
        self.start_node(id, &addr, SECRET).await;
    }

    /// Asserts every running node has applied `index` and holds every post of `posts`.
    pub async fn assert_posts_everywhere(&self, index: u64, posts: &[u64]) {
        for test_node in self.running() {
            test_node
                .wait_applied(index)
                .await
                .unwrap_or_else(|e| panic!("node {} did not apply {index}: {e}", test_node.id));
            let reader = test_node.engine().reader();
            for n in posts {
                let found = reader.post(id(*n)).expect("read post");
                assert!(found.is_some(), "post {n} missing on node {}", test_node.id);
            }
        }
    }
}

/// Creates user 1, team 10 (town square 11) and returns the town square's number.
pub async fn seed(node: &TestNode) -> u64 {
    let user = node
        .write(create_user(1, "alice"))
        .await
        .expect("create user");
    assert!(
        matches!(user.applied.result, Ok(Outcome::UserCreated(_))),
        "{user:?}"
    );
    let team = node
        .write(create_team(10, "team", 1))
        .await
        .expect("create team");
    assert!(
        matches!(team.applied.result, Ok(Outcome::TeamCreated { .. })),
        "{team:?}"
    );
    11
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            node.node = None;
            if let Some(rt) = node.rt.take() {
                rt.shutdown_background();
            }
        }
    }
}
