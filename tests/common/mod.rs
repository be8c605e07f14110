//! Test harness: real `confab` processes on loopback with temp data dirs, and a small client.
#![allow(dead_code)]

pub mod hook_receiver;
pub mod links;
pub mod push_proxy;
pub mod slow_fsync;
pub mod smtp;

/// The checkout the tests run from. Read at run time (cargo sets it for every test process):
/// the compile-time value names wherever the shared target dir was first built, which need not
/// be this clone.
pub fn repo_root() -> std::path::PathBuf {
    confab_storage::fuzzing::package_dir(env!("CARGO_MANIFEST_DIR"))
}

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// First port test servers may use; the span ends below the kernel's ephemeral range
/// (32768 and up on Linux), so no outgoing connection can take a port between the check here
/// and the server's own bind.
const TEST_PORTS_FIRST: u16 = 12_000;
const TEST_PORTS_SPAN: u32 = 20_000;

/// A loopback port nobody listens on. Ports come from one counter per test binary, so tests
/// running in parallel threads never get the same one; the binary's pid picks where the
/// counter starts, so leftovers of an earlier binary are unlikely to be in the way.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..TEST_PORTS_SPAN {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % TEST_PORTS_SPAN;
        // offset < 20,000, so the port stays under 32,000.
        let port = TEST_PORTS_FIRST + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS_FIRST}..+{TEST_PORTS_SPAN}");
}

/// How many times a node or cluster is started on fresh ports when a process exits before it
/// is ready (its port was taken after all).
const START_ATTEMPTS: usize = 3;

/// A running node; killed when dropped.
pub struct Node {
    pub id: u64,
    pub api: String,
    pub raft_addr: String,
    pub child: Option<Child>,
    pub dir: std::path::PathBuf,
    args: Vec<String>,
    /// Extra environment of the process (kept across restarts).
    envs: Vec<(String, String)>,
}

pub const SECRET: &str = "test-cluster-secret-0123456789";

/// The `confab` binary the tests run: the one cargo built for this test, unless
/// `CONFAB_TEST_BIN` names another. A long run (`make chaos`) uses a copy, so a rebuild
/// of the workspace while it runs cannot swap the binary under a node being restarted.
pub fn confab_bin() -> std::path::PathBuf {
    std::env::var_os("CONFAB_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_confab")))
}

impl Node {
    /// Nodes log warnings to the test's stderr; `CONFAB_TEST_LOG` (a `CONFAB_LOG` filter)
    /// shows more, on the test's stdout.
    fn spawn_process(dir: &std::path::Path, args: &[String], envs: &[(String, String)]) -> Child {
        let verbose = std::env::var("CONFAB_TEST_LOG").ok();
        Command::new(confab_bin())
            .arg("serve")
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .env("CONFAB_CLUSTER_SECRET", SECRET)
            .env("CONFAB_LOG", verbose.as_deref().unwrap_or("warn"))
            .current_dir(dir)
            .stdout(if verbose.is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn confab")
    }

    pub fn start(id: u64, dir: std::path::PathBuf, extra: &[String]) -> Node {
        let api_port = free_port();
        let raft_port = free_port();
        Node::start_on(id, dir, api_port, raft_port, extra)
    }

    pub fn start_on(
        id: u64,
        dir: std::path::PathBuf,
        api_port: u16,
        raft_port: u16,
        extra: &[String],
    ) -> Node {
        Node::start_on_with_env(id, dir, api_port, raft_port, extra, Vec::new())
    }

    /// [`Node::start_on`] with extra environment variables for the process.
    pub fn start_on_with_env(
        id: u64,
        dir: std::path::PathBuf,
        api_port: u16,
        raft_port: u16,
        extra: &[String],
        envs: Vec<(String, String)>,
    ) -> Node {
        let mut args = vec![
            "--node-id".to_string(),
            id.to_string(),
            "--listen".into(),
            format!("127.0.0.1:{api_port}"),
            "--raft-listen".into(),
            format!("127.0.0.1:{raft_port}"),
            "--data-dir".into(),
            dir.join("data").display().to_string(),
        ];
        args.extend(extra.iter().cloned());
        let child = Node::spawn_process(&dir, &args, &envs);
        Node {
            id,
            api: format!("http://127.0.0.1:{api_port}"),
            raft_addr: format!("127.0.0.1:{raft_port}"),
            child: Some(child),
            dir,
            args,
            envs,
        }
    }

    /// The flags the node was started with (after `serve`).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The node's API and Raft ports.
    pub fn ports(&self) -> (u16, u16) {
        let port = |addr: &str| {
            addr.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("an address with a port")
        };
        (port(&self.api), port(&self.raft_addr))
    }

    /// Kills the process without a clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same data dir and flags.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(Node::spawn_process(&self.dir, &self.args, &self.envs));
    }

    pub async fn wait_ready(&mut self) {
        if let Err(why) = self.try_ready().await {
            panic!("{why}");
        }
    }

    /// Waits until the node answers ping; fails at once if its process exits first.
    pub async fn try_ready(&mut self) -> Result<(), String> {
        // A ping bounded in time: whatever else holds the port may accept and never answer.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "node {} exited before it was ready: {status}",
                        self.id
                    ));
                }
            }
            if let Ok(r) = client
                .get(format!("{}/api/v4/system/ping", self.api))
                .send()
                .await
            {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("node {} did not come up within 60 s", self.id))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A single node in a temp dir.
pub async fn single_node() -> (tempfile::TempDir, Node) {
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = Node::start(1, dir.path().to_path_buf(), &[]);
        match node.try_ready().await {
            Ok(()) => return (dir, node),
            Err(why) => failures.push(why),
        }
    }
    panic!("single node did not start: {failures:?}");
}

/// A single node in a temp dir, started with `extra` flags.
pub async fn single_node_with(extra: &[&str]) -> (tempfile::TempDir, Node) {
    let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = Node::start(1, dir.path().to_path_buf(), &extra);
        match node.try_ready().await {
            Ok(()) => return (dir, node),
            Err(why) => failures.push(why),
        }
    }
    panic!("single node did not start: {failures:?}");
}

/// The log index a write's answer says it was applied at.
pub fn applied_index(answer: &Answer) -> u64 {
    answer
        .headers
        .get("x-confab-applied")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("x-confab-applied header")
}

/// A fixed 3-node cluster.
pub async fn three_nodes() -> (tempfile::TempDir, Vec<Node>) {
    three_nodes_with(&[]).await
}

/// A fixed 3-node cluster, every node started with `extra` flags too.
pub async fn three_nodes_with(extra: &[&str]) -> (tempfile::TempDir, Vec<Node>) {
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match try_three_nodes(extra).await {
            Ok(cluster) => return cluster,
            Err(why) => failures.push(why),
        }
    }
    panic!("3-node cluster did not start: {failures:?}");
}

async fn try_three_nodes(extra: &[&str]) -> Result<(tempfile::TempDir, Vec<Node>), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = try_three_nodes_in(dir.path(), extra).await?;
    Ok((dir, nodes))
}

/// `--initial-members` naming node i+1 at each Raft port.
pub fn initial_members(raft_ports: impl IntoIterator<Item = u16>) -> String {
    raft_ports
        .into_iter()
        .enumerate()
        .map(|(i, raft)| format!("{}=127.0.0.1:{raft}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// A fixed 3-node cluster with node i's files in `dir/n{i}` (which may already exist, e.g. as
/// a mount point), every node started with `extra` flags too.
pub async fn try_three_nodes_in(
    dir: &std::path::Path,
    extra: &[&str],
) -> Result<Vec<Node>, String> {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let members = initial_members(ports.iter().map(|(_, raft)| *raft));
    let mut nodes = Vec::new();
    for (i, (api, raft)) in ports.iter().enumerate() {
        let node_dir = dir.join(format!("n{}", i + 1));
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let mut args = vec!["--initial-members".to_string(), members.clone()];
        args.extend(extra.iter().map(|a| a.to_string()));
        nodes.push(Node::start_on(i as u64 + 1, node_dir, *api, *raft, &args));
    }
    for node in &mut nodes {
        node.try_ready().await?;
    }
    Ok(nodes)
}

/// A node's replicated-state digest and the applied index it was taken at, when the node
/// answers and nothing was applied while it was computed.
pub async fn digest(admin: &Api, base: &str) -> Option<(u64, String)> {
    let answer = admin
        .on(base)
        .try_call_with(
            "GET",
            "/cluster/digest",
            None,
            &[],
            Some(Duration::from_secs(10)),
        )
        .await
        .ok()?;
    if !answer.status.is_success() || answer.body["stable"] != json!(true) {
        return None;
    }
    Some((
        answer.body["applied_index"].as_u64()?,
        answer.body["digest"].as_str()?.to_string(),
    ))
}

/// Waits until every node reports its digest at one applied index, and asserts the digests
/// are equal there: byte-identical replicas.
pub async fn assert_equal_digests(admin: &Api, bases: &[String], timeout: Duration) {
    eventually(timeout, "digests at one applied index", || async {
        let mut seen = Vec::new();
        for base in bases {
            seen.push(digest(admin, base).await?);
        }
        if seen.windows(2).all(|w| w[0].0 == w[1].0) {
            assert!(
                seen.windows(2).all(|w| w[0].1 == w[1].1),
                "replicas differ at one index: {seen:?}"
            );
            return Some(());
        }
        None
    })
    .await;
}

/// Every post of `channel` on the node `api` talks to, newest first, or None when the node
/// does not answer. Pages shift while posts are applied: check for repeats only once nothing
/// is being written.
pub async fn list_posts(api: &Api, channel: &str) -> Option<Vec<Value>> {
    let mut listed = Vec::new();
    for page in 0.. {
        let answer = api
            .try_call_with(
                "GET",
                &format!("/channels/{channel}/posts?page={page}&per_page=200"),
                None,
                &[],
                Some(Duration::from_secs(10)),
            )
            .await
            .ok()?;
        if !answer.status.is_success() {
            return None;
        }
        let order = answer.body["order"].as_array()?;
        if order.is_empty() {
            break;
        }
        for id in order {
            listed.push(answer.body["posts"][id.as_str()?].clone());
        }
    }
    Some(listed)
}

/// The ids of [`list_posts`].
pub async fn list_post_ids(api: &Api, channel: &str) -> Option<Vec<String>> {
    let posts = list_posts(api, channel).await?;
    posts
        .iter()
        .map(|post| post["id"].as_str().map(String::from))
        .collect()
}

/// A logged-in (or anonymous) API client bound to one node.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub user_id: String,
    http: reqwest::Client,
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            token: None,
            user_id: String::new(),
            http: reqwest::Client::new(),
        }
    }

    pub fn on(&self, base: &str) -> Api {
        Api {
            base: base.to_string(),
            ..self.clone()
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, body, &[]).await
    }

    /// Like [`Api::call`], with extra request headers (an app's own, or `X-Confab-Applied`).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_call_with(method, path, body, headers, None)
            .await
            .expect("request")
    }

    /// Like [`Api::call_with`], bounded by `timeout`, and a node that cannot be reached or does
    /// not answer in time is an `Err` rather than a panic (nodes die in fault tests).
    pub async fn try_call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<Answer, String> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self
            .http
            .request(method, format!("{}/api/v4{}", self.base, path));
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("BEARER {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            headers,
        })
    }

    /// Posts `message` to `channel` with `pending_post_id`, through `nodes` in turn (starting at
    /// `first`) until one acknowledges it, as Mattermost's clients retry a post that timed out:
    /// every retry carries the same `pending_post_id`, so the post is made once. Returns the
    /// post and the log index it was applied at (`X-Confab-Applied`).
    pub async fn post_with_retries(
        &self,
        nodes: &[String],
        first: usize,
        channel: &str,
        message: &str,
        pending_post_id: &str,
    ) -> (Value, u64) {
        let body =
            json!({"channel_id": channel, "message": message, "pending_post_id": pending_post_id});
        self.post_body_with_retries(nodes, first, body).await
    }

    /// [`Api::post_with_retries`] of a whole post body (a reply has its `root_id`), which must
    /// hold a `pending_post_id`.
    pub async fn post_body_with_retries(
        &self,
        nodes: &[String],
        first: usize,
        body: Value,
    ) -> (Value, u64) {
        let pending_post_id = body["pending_post_id"].as_str().unwrap_or("").to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = first;
        let mut last = String::new();
        while Instant::now() < deadline {
            let node = &nodes[attempt % nodes.len()];
            attempt += 1;
            let answer = self
                .on(node)
                .try_call_with(
                    "POST",
                    "/posts",
                    Some(body.clone()),
                    &[],
                    Some(Duration::from_secs(10)),
                )
                .await;
            match answer {
                Ok(answer) if answer.status.is_success() => {
                    let index = answer
                        .headers
                        .get("x-confab-applied")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .expect("a write answers X-Confab-Applied");
                    return (answer.body, index);
                }
                Ok(answer) => last = format!("{} {}", answer.status, answer.body),
                Err(error) => last = error,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("post {pending_post_id} not acknowledged within 60 s: {last}");
    }

    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let answer = self.call(method, path, body).await;
        assert!(
            answer.status.is_success(),
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
        assert_eq!(
            answer
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path}"
        );
        answer.body
    }

    /// Creates a user and logs in as them.
    pub async fn signup(base: &str, username: &str) -> Api {
        let anon = Api::new(base);
        let created = anon
            .call("POST", "/users", Some(json!({"username": username, "email": format!("{username}@example.com"), "password": "passw0rd!"})))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        Api::login(base, username).await
    }

    pub async fn login(base: &str, username: &str) -> Api {
        Api::login_with(base, username, "passw0rd!").await
    }

    pub async fn login_with(base: &str, login_id: &str, password: &str) -> Api {
        let mut api = Api::new(base);
        let answer = api
            .call(
                "POST",
                "/users/login",
                Some(json!({"login_id": login_id, "password": password})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        api.token = answer
            .headers
            .get("token")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        assert!(api.token.is_some(), "login answers a Token header");
        api.user_id = answer.body["id"].as_str().expect("user id").to_string();
        api
    }
}

/// The gauges and counters of a node's `/metrics`, by name.
pub async fn metrics(base: &str) -> std::collections::HashMap<String, f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// An open team named `name` created by `admin` with `members` added: its id and its
/// town-square's id.
pub async fn team_with(admin: &Api, name: &str, members: &[&Api]) -> (String, String) {
    let team = admin
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": name, "display_name": name, "type": "O"})),
        )
        .await;
    let team_id = team["id"].as_str().expect("team id").to_string();
    for member in members {
        admin
            .ok(
                "POST",
                &format!("/teams/{team_id}/members"),
                Some(json!({"team_id": team_id, "user_id": member.user_id})),
            )
            .await;
    }
    let town = admin
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/town-square"),
            None,
        )
        .await;
    let town_id = town["id"].as_str().expect("town-square id").to_string();
    (team_id, town_id)
}

/// Sets up alice (admin), bob and carol in team "t" with public channel "pub" (all three) and
/// private channel "priv" (alice and bob).
pub async fn team_fixture(base: &str) -> (Api, Api, Api, String, String, String) {
    let alice = Api::signup(base, "alice").await;
    let bob = Api::signup(base, "bob").await;
    let carol = Api::signup(base, "carol").await;
    let (team_id, _town) = team_with(&alice, "tt", &[&bob, &carol]).await;
    let public = alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team_id, "name": "pub", "display_name": "Pub", "type": "O"})),
        )
        .await;
    let private = alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team_id, "name": "priv", "display_name": "Priv", "type": "P"})),
        )
        .await;
    let (public, private) = (
        public["id"].as_str().unwrap().to_string(),
        private["id"].as_str().unwrap().to_string(),
    );
    for user in [&bob, &carol] {
        alice
            .ok(
                "POST",
                &format!("/channels/{public}/members"),
                Some(json!({"user_id": user.user_id, "channel_id": public, "post_root_id": ""})),
            )
            .await;
    }
    alice
        .ok(
            "POST",
            &format!("/channels/{private}/members"),
            Some(json!({"user_id": bob.user_id})),
        )
        .await;
    (alice, bob, carol, team_id, public, private)
}

/// Polls `check` until it returns Some, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of `/api/v4/websocket`.
pub struct Socket {
    stream: WsStream,
    pub connection_id: String,
    /// Seq of the last event received.
    pub last_seq: i64,
    /// Every event received, in order.
    pub events: Vec<Value>,
}

impl Socket {
    pub async fn connect(base: &str, token: &str) -> Socket {
        Socket::connect_query(base, token, "").await
    }

    /// Connects with a query string (e.g. `connection_id=…&sequence_number=…`), authenticated
    /// by header, and reads the hello unless resuming.
    pub async fn connect_query(base: &str, token: &str, query: &str) -> Socket {
        let mut socket = Socket::try_connect_query(base, token, query, Duration::from_secs(30))
            .await
            .expect("ws connect");
        if query.is_empty() {
            let hello = socket.wait_event("hello", Duration::from_secs(10)).await;
            assert_eq!(hello["seq"], json!(0));
            socket.connection_id = hello["data"]["connection_id"]
                .as_str()
                .expect("connection_id")
                .to_string();
        }
        socket
    }

    /// Opens the socket only (no frame read), or an `Err` when the node cannot be reached or
    /// does not complete the upgrade within `timeout` (nodes die in fault tests).
    pub async fn try_connect_query(
        base: &str,
        token: &str,
        query: &str,
        timeout: Duration,
    ) -> Result<Socket, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!(
            "{}/api/v4/websocket?{query}",
            base.replacen("http", "ws", 1)
        );
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        let bearer = format!("Bearer {token}").parse().map_err(|_| "bad token")?;
        request.headers_mut().insert("Authorization", bearer);
        let (stream, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| format!("no upgrade within {timeout:?}"))?
            .map_err(|e| e.to_string())?;
        Ok(Socket {
            stream,
            connection_id: String::new(),
            last_seq: -1,
            events: Vec::new(),
        })
    }

    /// Connects with no credentials at all, as the iOS app and mattermostdriver do; the caller
    /// then sends `authentication_challenge`.
    pub async fn connect_anonymous(base: &str) -> Socket {
        let url = format!("{}/api/v4/websocket", base.replacen("http", "ws", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Socket {
            stream,
            connection_id: String::new(),
            last_seq: -1,
            events: Vec::new(),
        }
    }

    pub async fn send(&mut self, value: Value) {
        self.stream
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("ws send");
    }

    /// The next JSON message as it came, with no seq check and not recorded, or None after
    /// `timeout` or when the socket ends.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(text) = message {
                return Some(serde_json::from_str(&text).expect("server frames are JSON"));
            }
        }
    }

    /// The next JSON message (event or reply), or None after `timeout`; an event's seq must
    /// follow the last one's, and the event is recorded.
    pub async fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        let value = self.next_frame(timeout).await?;
        if let Some(seq) = value.get("seq").and_then(Value::as_i64) {
            if value.get("event").is_some() {
                assert_eq!(seq, self.last_seq + 1, "event seq is contiguous: {value}");
                self.last_seq = seq;
                self.events.push(value.clone());
            }
        }
        Some(value)
    }

    /// Waits for an event by name, skipping others.
    pub async fn wait_event(&mut self, event: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_json(left).await {
                Some(value) if value["event"] == event => return value,
                Some(_) => continue,
                None => panic!("no {event} event within {timeout:?}; got {:?}", self.events),
            }
        }
    }

    /// Asserts no event of this name arrives within `window`.
    pub async fn assert_no_event(&mut self, event: &str, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.next_json(left).await {
                Some(value) if value["event"] == event => panic!("unexpected {event}: {value}"),
                Some(_) => continue,
                None => return,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Decodes a field that Mattermost sends as a JSON string holding JSON.
pub fn inner(value: &Value) -> Value {
    value
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}
