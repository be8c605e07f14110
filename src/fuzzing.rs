//! The server's side of the fuzz targets (`fuzz/fuzz_targets/http_api.rs`, `ws_stream.rs`):
//! bytes from outside driven through the real thing. Both targets share one single-node
//! cluster started in-process on first use ([`Harness`]): RocksDB in a temp dir, Raft, the hub
//! and every background task, exactly as `confab serve` starts them, only not listening on a
//! socket. Each input must never panic, and every answer must be one a client can read:
//!
//! - [`http_request`]: one request through the whole router (every route of the REST API and
//!   the webhook and public-file routes), its method, path ids, query string and JSON body
//!   taken from the input. A 5xx answer (save Mattermost's own 501s), or an error answer of
//!   the API that is not a Mattermost error object naming its own status, is a finding.
//! - [`ws_stream`]: the input is the raw byte stream a client sends after the upgrade (frame
//!   headers, masks, lengths, control frames, JSON client messages) into the real connection
//!   code ([`crate::ws::serve_stream`]); the server's answer must be whole WebSocket frames.
//!
//! The state the inputs change persists between inputs, as it does on a real server; when an
//! input leaves the harness's admin unable to act (logged out, deactivated, password changed),
//! the harness logs in again or starts a new cluster in a new temp dir, and it makes again the
//! team, channel, posts or second user an input deleted ([`Node::heal`]).

use crate::server::{start, Started};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::OnceLock;
use tower::ServiceExt;

/// The REST API's modules: their `.route(…)` calls are the routes [`http_request`] picks from.
/// `route_sources_name_every_api_module` keeps this list whole.
const ROUTE_SOURCES: &[(&str, &str)] = &[
    ("accounts.rs", include_str!("api/accounts.rs")),
    ("body_limit.rs", include_str!("api/body_limit.rs")),
    ("bots.rs", include_str!("api/bots.rs")),
    ("categories.rs", include_str!("api/categories.rs")),
    ("channel_admin.rs", include_str!("api/channel_admin.rs")),
    ("channel_edits.rs", include_str!("api/channel_edits.rs")),
    ("channel_stats.rs", include_str!("api/channel_stats.rs")),
    ("channels.rs", include_str!("api/channels.rs")),
    ("client_config.rs", include_str!("api/client_config.rs")),
    ("cluster.rs", include_str!("api/cluster.rs")),
    ("commands.rs", include_str!("api/commands.rs")),
    ("drafts.rs", include_str!("api/drafts.rs")),
    ("emoji.rs", include_str!("api/emoji.rs")),
    ("files.rs", include_str!("api/files.rs")),
    ("mod.rs", include_str!("api/mod.rs")),
    ("notifications.rs", include_str!("api/notifications.rs")),
    ("posts.rs", include_str!("api/posts.rs")),
    ("preferences.rs", include_str!("api/preferences.rs")),
    ("profile_images.rs", include_str!("api/profile_images.rs")),
    ("reactions.rs", include_str!("api/reactions.rs")),
    ("roles.rs", include_str!("api/roles.rs")),
    ("search.rs", include_str!("api/search.rs")),
    ("slash_builtins.rs", include_str!("api/slash_builtins.rs")),
    ("status.rs", include_str!("api/status.rs")),
    ("system.rs", include_str!("api/system.rs")),
    ("team_admin.rs", include_str!("api/team_admin.rs")),
    ("teams.rs", include_str!("api/teams.rs")),
    ("threads.rs", include_str!("api/threads.rs")),
    ("tokens.rs", include_str!("api/tokens.rs")),
    ("user_channels.rs", include_str!("api/user_channels.rs")),
    ("users.rs", include_str!("api/users.rs")),
    ("webhooks.rs", include_str!("api/webhooks.rs")),
];

const ALL_METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// One route: its full path template (`/api/v4/posts/{post_id}`) and the methods it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub path: String,
    pub methods: Vec<Method>,
}

/// Every `.route("…", …)` in [`ROUTE_SOURCES`]: routes made by a function named `routes` are
/// nested under `/api/v4` (as `api::router` nests them), the others (`root_routes`,
/// `public_routes`, the router's own) are at the root. The methods are the `get(`/`post(`/…
/// calls inside the route's parentheses; a route made by a helper of its own gets all five.
pub fn routes() -> Vec<Route> {
    let mut out = Vec::new();
    for (_, source) in ROUTE_SOURCES {
        for (start, found) in source.match_indices(".route(") {
            let call = &source[start + found.len()..];
            let Some(path) = route_path(call, &source[..start]) else {
                continue;
            };
            let args = balanced(call);
            let mut methods: Vec<Method> = ALL_METHODS
                .iter()
                .filter(|m| {
                    let name = m.as_str().to_ascii_lowercase();
                    // `post(` or, imported under another name where `post` is taken, `post_route(`.
                    [format!("{name}("), format!("{name}_route(")]
                        .iter()
                        .any(|call| {
                            args.match_indices(call.as_str()).any(|(i, _)| {
                                i == 0 || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                            })
                        })
                })
                .cloned()
                .collect();
            if methods.is_empty() {
                methods = ALL_METHODS.to_vec();
            }
            let nested = enclosing_fn(&source[..start]) == Some("routes");
            out.push(Route {
                path: if nested {
                    format!("/api/v4{path}")
                } else {
                    path.to_string()
                },
                methods,
            });
        }
    }
    out
}

/// The path a `.route(` call names: a string literal, the function's `let base = "…"`, or
/// `&format!("{base}…")` of it.
fn route_path(call: &str, before: &str) -> Option<String> {
    let call = call.trim_start();
    let base = || {
        let at = before.rfind("let base = \"")? + "let base = \"".len();
        before[at..].split('"').next()
    };
    if let Some(literal) = call.strip_prefix('"') {
        return literal.split('"').next().map(String::from);
    }
    if call.starts_with("base") {
        return base().map(String::from);
    }
    let format = call.strip_prefix("&format!(\"")?.split('"').next()?;
    Some(
        format
            .replace("{base}", base()?)
            .replace("{{", "{")
            .replace("}}", "}"),
    )
}

/// The text of a call's arguments: up to the parenthesis that closes the one before `text`.
fn balanced(text: &str) -> &str {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

/// The name of the last `fn name(` before the end of `text`.
fn enclosing_fn(text: &str) -> Option<&str> {
    let at = text.rfind("fn ")?;
    let name = &text[at + 3..];
    name.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
}

/// The single-node cluster the targets drive, and what its admin made to aim requests at.
struct Harness {
    /// Taken and shut down at process exit ([`stop_at_exit`]).
    runtime: parking_lot::Mutex<Option<tokio::runtime::Runtime>>,
    node: parking_lot::Mutex<Node>,
    routes: Vec<Route>,
}

/// One started node and its objects; replaced when an input leaves its admin unusable.
struct Node {
    started: Started,
    token: String,
    /// Values a path parameter can take besides fuzzed text: the admin's id, `me`, a second
    /// user's id, the team, its name, the channel, its name, a post, a reply.
    known: Vec<String>,
    /// Objects made again so far (their names carry the count).
    made: u64,
}

const ADMIN: &str = "fuzzadmin";
const PASSWORD: &str = "passw0rd!";
/// The harness's own requests come from another address than the inputs', so an input's
/// login attempts never rate-limit the harness's logins.
const HARNESS_PEER: &str = "127.0.0.2:1";
const INPUT_PEER: &str = "127.0.0.1:1";

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fuzz harness: tokio runtime");
        let node = runtime.block_on(Node::start());
        // SAFETY: registers a plain function with no arguments, as atexit requires.
        unsafe { libc::atexit(stop_at_exit) };
        Harness {
            runtime: parking_lot::Mutex::new(Some(runtime)),
            node: parking_lot::Mutex::new(node),
            routes: routes(),
        }
    })
}

/// Every engine the harness opened (a node replaced by [`Node::heal`] keeps its engine open
/// in tasks that hold it).
static ENGINES: parking_lot::Mutex<Vec<std::sync::Arc<confab_storage::Engine>>> =
    parking_lot::Mutex::new(Vec::new());

/// libFuzzer ends with exit(), which destroys RocksDB's statics while the harness's tasks and
/// RocksDB's jobs still run and read them: stop the tasks, then the jobs, first.
extern "C" fn stop_at_exit() {
    if let Some(harness) = HARNESS.get() {
        if let Some(runtime) = harness.runtime.lock().take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
    for engine in ENGINES.lock().iter() {
        engine.stop_background_work();
    }
    // The data dirs are on tmpfs (memory): a replay in `make test` must not leave them behind.
    for dir in DATA_DIRS.lock().iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Every data dir the harness made ([`fresh_data_dir`]), removed at exit.
static DATA_DIRS: parking_lot::Mutex<Vec<std::path::PathBuf>> = parking_lot::Mutex::new(Vec::new());

/// Runs `work` on the harness's runtime (gone only once the process exits).
fn block_on<T>(harness: &Harness, work: impl std::future::Future<Output = T>) -> Option<T> {
    let runtime = harness.runtime.lock();
    runtime.as_ref().map(|runtime| runtime.block_on(work))
}

/// A data dir on tmpfs when there is one: the fuzzer runs thousands of writes a second.
fn fresh_data_dir() -> std::path::PathBuf {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = base.join(format!("confab-fuzz-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    DATA_DIRS.lock().push(dir.clone());
    dir
}

/// An answer, whole.
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(router: &axum::Router, request: Request<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

fn request(
    method: Method,
    uri: &str,
    token: Option<&str>,
    peer: &str,
    body: Vec<u8>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("x-requested-with", "XMLHttpRequest");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = builder
        .body(Body::from(body))
        .expect("fuzz harness: a request the harness builds is valid");
    let peer: SocketAddr = peer.parse().expect("fuzz harness: peer address");
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

impl Node {
    async fn start() -> Node {
        let dir = fresh_data_dir();
        let args = [
            "confab",
            "serve",
            "--node-id",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--raft-listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().expect("fuzz harness: data dir path"),
            "--password-hash-memory-kib",
            "64",
            "--password-hash-iterations",
            "1",
        ];
        let cli = <crate::config::Cli as clap::Parser>::try_parse_from(args)
            .expect("fuzz harness: serve arguments");
        let crate::config::Commands::Serve(serve_args) = cli.command else {
            unreachable!("the harness's arguments name `serve`")
        };
        let config = serve_args.resolve().expect("fuzz harness: config");
        let started = start(&config).await.expect("fuzz harness: start a node");
        ENGINES.lock().push(started.engine.clone());
        let mut node = Node {
            started,
            token: String::new(),
            known: vec![String::new(); 9],
            made: 0,
        };
        // The first user becomes the system admin once Raft has elected this node.
        for _ in 0..200 {
            let answer = node
                .call(
                    Method::POST,
                    "/api/v4/users",
                    json!({"username": ADMIN, "email": "fuzzadmin@example.com", "password": PASSWORD}),
                )
                .await;
            if answer.status == StatusCode::CREATED {
                node.known[0] = text(&answer.json(), "id");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            !node.known[0].is_empty(),
            "fuzz harness: the admin is created once Raft elects"
        );
        node.known[1] = "me".to_string();
        node.token = login(&node.started.router)
            .await
            .expect("fuzz harness: admin login");
        node.make_what_is_missing().await;
        node
    }

    /// A request of the harness's own, as the admin.
    async fn call(&self, method: Method, uri: &str, body: Value) -> Answer {
        let token = (!self.token.is_empty()).then_some(self.token.as_str());
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        send(
            &self.started.router,
            request(method, uri, token, HARNESS_PEER, body),
        )
        .await
    }

    /// Creates an object as the admin; its id (empty when refused).
    async fn create(&self, uri: &str, body: Value) -> String {
        text(&self.call(Method::POST, uri, body).await.json(), "id")
    }

    /// The object at `uri` exists, is not deleted, and the admin can read it.
    async fn alive(&self, uri: &str) -> bool {
        let answer = self.call(Method::GET, uri, Value::Null).await;
        answer.status == StatusCode::OK && answer.json()["delete_at"].as_u64().unwrap_or(0) == 0
    }

    /// Makes again whatever of the harness's objects an input deleted, archived or left (a
    /// second user, a team and a channel the admin is in, a post and a reply), under new
    /// names, so that every input meets the same kind of world.
    async fn make_what_is_missing(&mut self) {
        let k = self.known.clone();
        if !self.alive(&format!("/api/v4/users/{}", k[2])).await {
            self.made += 1;
            let name = format!("fuzzother{}", self.made);
            self.known[2] = self
                .create(
                    "/api/v4/users",
                    json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}),
                )
                .await;
        }
        let team_ok = self.alive(&format!("/api/v4/teams/{}", k[3])).await
            && self
                .alive(&format!("/api/v4/teams/{}/members/me", k[3]))
                .await;
        if !team_ok {
            self.made += 1;
            let name = format!("fuzz{}", self.made);
            self.known[3] = self
                .create(
                    "/api/v4/teams",
                    json!({"name": name, "display_name": "Fuzz", "type": "O"}),
                )
                .await;
            self.known[4] = name;
        }
        let k = self.known.clone();
        let channel_ok = team_ok
            && self.alive(&format!("/api/v4/channels/{}", k[5])).await
            && self
                .alive(&format!("/api/v4/channels/{}/members/me", k[5]))
                .await;
        if !channel_ok {
            self.made += 1;
            let name = format!("fuzz-channel{}", self.made);
            self.known[5] = self
                .create(
                    "/api/v4/channels",
                    json!({"team_id": k[3], "name": name, "display_name": "Fuzz channel", "type": "O"}),
                )
                .await;
            self.known[6] = name;
        }
        let k = self.known.clone();
        let posts_ok = channel_ok
            && self.alive(&format!("/api/v4/posts/{}", k[7])).await
            && self.alive(&format!("/api/v4/posts/{}", k[8])).await;
        if !posts_ok {
            self.known[7] = self
                .create(
                    "/api/v4/posts",
                    json!({"channel_id": k[5], "message": "hello @fuzzother"}),
                )
                .await;
            self.known[8] = self
                .create(
                    "/api/v4/posts",
                    json!({"channel_id": k[5], "message": "a reply", "root_id": self.known[7]}),
                )
                .await;
        }
    }

    /// Makes the admin and its objects usable again after an input: logs in again when its
    /// session is gone, starts over when the admin can no longer log in or is no longer an
    /// admin, and makes again what the input removed.
    async fn heal(&mut self) {
        let is_admin = |user: &Value| {
            user["roles"]
                .as_str()
                .is_some_and(|roles| roles.split(' ').any(|r| r == "system_admin"))
                && user["delete_at"].as_u64() == Some(0)
        };
        let me = self
            .call(Method::GET, "/api/v4/users/me", Value::Null)
            .await;
        if me.status != StatusCode::OK || !is_admin(&me.json()) {
            self.token = login(&self.started.router).await.unwrap_or_default();
            let me = self
                .call(Method::GET, "/api/v4/users/me", Value::Null)
                .await;
            if self.token.is_empty() || me.status != StatusCode::OK || !is_admin(&me.json()) {
                let _ = self.started.raft.shutdown().await;
                *self = Node::start().await;
                return;
            }
        }
        self.make_what_is_missing().await;
    }
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

async fn login(router: &axum::Router) -> Option<String> {
    let answer = send(
        router,
        request(
            Method::POST,
            "/api/v4/users/login",
            None,
            HARNESS_PEER,
            json!({"login_id": ADMIN, "password": PASSWORD})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    (answer.status == StatusCode::OK)
        .then(|| answer.headers.get("token")?.to_str().ok().map(String::from))
        .flatten()
}

/// Reads an input front to back; past its end every read is empty.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// Text of a path segment or query as the bytes say, percent-encoding only what a URI cannot
/// carry (so `%zz`, `..`, `;`, empty segments and the like reach the router as sent).
fn uri_text(bytes: &[u8], in_query: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let plain = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@%".contains(&b)
            || (in_query && (b == b'/' || b == b'?'));
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `bytes` with every `@@N` (N a digit) replaced by the Nth known value, so that a body or query
/// can name the harness's objects, whose ids differ from run to run.
fn with_known(bytes: &[u8], known: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if let [b'@', b'@', digit @ b'0'..=b'9', ..] = bytes[at..] {
            if let Some(value) = known.get(usize::from(digit - b'0')) {
                out.extend_from_slice(value.as_bytes());
                at += 3;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}

/// One HTTP request made of the input:
///
/// - bytes 0–1: the route (little-endian, modulo the number of routes);
/// - byte 2: the method (modulo the route's methods); its top bit sends no session token;
/// - one byte per `{param}` of the path: below 0x80 a known value (modulo their number),
///   else that many (`& 0x7f`) bytes of the input as the segment;
/// - one byte of query length, then the query;
/// - the rest: the JSON body.
///
/// A known value (and `@@N` in the query or body) is one of the harness's: 0 the admin's id,
/// 1 `me`, 2 a second user's id, 3 the team's id, 4 its name, 5 the channel's id, 6 its name,
/// 7 a post's id, 8 a reply's id.
pub fn http_request(data: &[u8]) {
    let _ = http_exchange(data);
}

/// [`http_request`], answering the status of the request made (none when the input makes no
/// valid URI).
fn http_exchange(data: &[u8]) -> Option<StatusCode> {
    let harness = harness();
    if harness.routes.is_empty() {
        return None;
    }
    let mut input = Input(data);
    let route_index = u16::from_le_bytes([input.byte(), input.byte()]) as usize;
    let route = &harness.routes[route_index % harness.routes.len()];
    let method_byte = input.byte();
    let method = route.methods[(method_byte & 0x7f) as usize % route.methods.len()].clone();
    let anonymous = method_byte & 0x80 != 0;
    let mut node = harness.node.lock();
    let mut path = String::new();
    let mut rest = route.path.as_str();
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        rest = &rest[close..];
        let choice = input.byte();
        if choice < 0x80 {
            path.push_str(&node.known[choice as usize % node.known.len()]);
        } else {
            path.push_str(&uri_text(input.take((choice & 0x7f) as usize), false));
        }
    }
    path.push_str(rest);
    let query_len = input.byte() as usize;
    let query = uri_text(&with_known(input.take(query_len), &node.known), true);
    let uri = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let body = with_known(input.0, &node.known);
    let token = (!anonymous).then(|| node.token.clone());
    let Ok(uri) = uri.parse::<axum::http::Uri>() else {
        return None;
    };
    let mut req = request(method.clone(), "/", token.as_deref(), INPUT_PEER, body);
    *req.uri_mut() = uri;
    let router = node.started.router.clone();
    block_on(harness, async {
        let answer = send(&router, req).await;
        if std::env::var_os("CONFAB_FUZZ_VERBOSE").is_some() {
            eprintln!("{method} {path}?{query} -> {}", answer.status);
        }
        check_answer(&method, &path, &answer);
        node.heal().await;
        answer.status
    })
}

/// Bad input gets a 4xx, and an API error is Mattermost's error object naming its status. The
/// one 5xx allowed is Mattermost's own 501 (`config/client` without `format=old`).
fn check_answer(method: &Method, path: &str, answer: &Answer) {
    assert!(
        !answer.status.is_server_error() || answer.status == StatusCode::NOT_IMPLEMENTED,
        "{method} {path} answered {}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    if answer.status.as_u16() >= 400 && path.starts_with("/api/v4/") {
        let error = answer.json();
        assert_eq!(
            error["status_code"].as_u64(),
            Some(u64::from(answer.status.as_u16())),
            "{method} {path} answered {} without a Mattermost error: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        assert!(
            error["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{method} {path}: an error without an id: {error}"
        );
    }
}

/// The raw client side of one WebSocket connection (after the upgrade) through the real
/// connection code. The first byte picks how it starts: bit 0 set, already authenticated by
/// the admin's token (as a browser's cookie does); bit 1 set, asking to resume a stream. The
/// rest is the stream, cut off at its end as a client that goes away.
pub fn ws_stream(data: &[u8]) {
    let _ = ws_exchange(data);
}

/// [`ws_stream`], answering the JSON of every text frame the server sent.
fn ws_exchange(data: &[u8]) -> Vec<Value> {
    let harness = harness();
    let mut input = Input(data);
    let how = input.byte();
    let stream = input.0.to_vec();
    let node = harness.node.lock();
    let hub = node.started.hub.clone();
    let token = (how & 1 != 0).then(|| node.token.clone());
    let query = (how & 2 != 0).then_some("connection_id=abc&sequence_number=3");
    block_on(harness, async move {
        let (client, server) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(async move {
            let _ = crate::ws::serve_stream(hub, server, token.as_deref(), query).await;
        });
        let (mut read, mut write) = tokio::io::split(client);
        let writing = async move {
            use tokio::io::AsyncWriteExt;
            let _ = write.write_all(&stream).await;
            let _ = write.shutdown().await;
        };
        let reading = async move {
            use tokio::io::AsyncReadExt;
            let mut out = Vec::new();
            let _ = read.read_to_end(&mut out).await;
            out
        };
        let (_, answer) = tokio::join!(writing, reading);
        serving.await.expect("fuzz: the connection task panicked");
        check_frames(&answer)
    })
    .unwrap_or_default()
}

/// The server's bytes are whole, unmasked WebSocket frames, each text frame JSON; answers
/// the text frames.
fn check_frames(mut bytes: &[u8]) -> Vec<Value> {
    let mut texts = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "a cut frame header: {bytes:?}");
        let opcode = bytes[0] & 0x0f;
        assert_eq!(bytes[1] & 0x80, 0, "a server frame is never masked");
        let (len, head) = match bytes[1] & 0x7f {
            126 => {
                assert!(bytes.len() >= 4, "a cut frame length");
                (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4)
            }
            127 => {
                assert!(bytes.len() >= 10, "a cut frame length");
                let mut eight = [0u8; 8];
                eight.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(eight) as usize, 10)
            }
            n => (n as usize, 2),
        };
        assert!(bytes.len() >= head + len, "a cut frame payload");
        let payload = &bytes[head..head + len];
        if opcode == 1 {
            let text = serde_json::from_slice::<Value>(payload);
            assert!(
                text.is_ok(),
                "a text frame that is not JSON: {}",
                String::from_utf8_lossy(payload)
            );
            texts.extend(text.ok());
        }
        bytes = &bytes[head + len..];
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_sources_name_every_api_module() {
        let dir = confab_storage::fuzzing::package_dir(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("src/api")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".rs"))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = ROUTE_SOURCES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn routes_are_read_with_their_prefix_and_methods() {
        let routes = routes();
        let calls: usize = ROUTE_SOURCES
            .iter()
            .map(|(_, source)| source.matches(".route(").count())
            .sum();
        assert_eq!(routes.len(), calls, "every .route( call is read");
        let find = |path: &str| routes.iter().find(|r| r.path == path).cloned();
        assert!(find("/api/v4/users/{user_id}/teams/{team_id}/threads/{thread_id}").is_some());
        assert!(
            find("/api/v4/users/{user_id}/teams/{team_id}/channels/categories/order").is_some()
        );
        assert_eq!(
            find("/api/v4/posts").map(|r| r.methods),
            Some(vec![Method::POST])
        );
        assert_eq!(
            find("/hooks/{hook_id}").map(|r| r.methods),
            Some(vec![Method::POST]),
            "a root route stays at the root; `post as post_route` is a POST"
        );
        assert_eq!(
            find("/api/v4/hooks/incoming").map(|r| r.methods),
            Some(vec![Method::GET, Method::POST])
        );
        assert!(find("/api/v4/files/{file_id}/public").is_none());
        assert!(find("/files/{file_id}/public").is_some());
        assert!(find("/metrics").is_some());
        assert!(routes.iter().all(|r| r.path.starts_with('/')), "{routes:?}");
        let user = find("/api/v4/users/{user_id}").expect("a user route");
        assert!(user.methods.contains(&Method::GET) && user.methods.contains(&Method::DELETE));
    }

    /// The harness itself: its requests reach the handlers with the statuses they should get,
    /// the WebSocket stream is served, and it heals after a logout and a deleted channel.
    #[test]
    fn the_harness_drives_the_router_and_the_socket_and_heals_what_inputs_break() {
        let routes = routes();
        let index = |path: &str, method: Method| -> Vec<u8> {
            let i = routes.iter().position(|r| r.path == path).expect("route") as u16;
            let m = routes[i as usize]
                .methods
                .iter()
                .position(|x| *x == method)
                .expect("method") as u8;
            let mut out = i.to_le_bytes().to_vec();
            out.push(m);
            out
        };
        let status = |input: &[u8]| http_exchange(input).expect("a valid URI");
        let known = harness().node.lock().known.clone();
        assert!(
            known.iter().all(|k| !k.is_empty()),
            "the harness made its objects: {known:?}"
        );
        // A body of the wrong shape is refused with a 400 (and an error object: check_answer).
        let mut create = index("/api/v4/posts", Method::POST);
        create.push(0);
        create.extend_from_slice(br#"{"channel_id": 7, "message": ["x"]}"#);
        assert_eq!(status(&create), StatusCode::BAD_REQUEST);
        // `@@5` in a body is the harness's channel: the post is made.
        let mut post = index("/api/v4/posts", Method::POST);
        post.push(0);
        post.extend_from_slice(br#"{"channel_id": "@@5", "message": "hi"}"#);
        assert_eq!(status(&post), StatusCode::CREATED);
        // A known path id reaches the object.
        let mut get_post = index("/api/v4/posts/{post_id}", Method::GET);
        get_post.push(7);
        get_post.push(0);
        assert_eq!(status(&get_post), StatusCode::OK);
        // A path id that is not UTF-8: a Mattermost 400, not axum's plain text (the finding).
        let mut not_utf8 = index("/api/v4/posts/{post_id}/thread", Method::GET);
        not_utf8.extend_from_slice(&[0x80 | 1, 0xff, 0]);
        assert_eq!(status(&not_utf8), StatusCode::BAD_REQUEST);
        // A logout: the harness logs in again.
        let token = harness().node.lock().token.clone();
        let mut logout = index("/api/v4/users/logout", Method::POST);
        logout.push(0);
        assert_eq!(status(&logout), StatusCode::OK);
        let healed = harness().node.lock().token.clone();
        assert_ne!(token, healed, "the harness logged in again after a logout");
        assert_eq!(status(&get_post), StatusCode::OK, "the new session works");
        // The channel deleted: the harness makes another, with its posts.
        let mut delete = index("/api/v4/channels/{channel_id}", Method::DELETE);
        delete.extend_from_slice(&[5, 0]);
        assert_eq!(status(&delete), StatusCode::OK);
        let remade = harness().node.lock().known.clone();
        assert_ne!(remade[5], known[5], "a new channel");
        assert_ne!(remade[7], known[7], "a new post in it");
        assert_eq!(status(&get_post), StatusCode::OK);

        // An authenticated stream: the hello, then the answer to the client's message, then a
        // ping and a cut frame.
        let mut ws = vec![1u8];
        let message = br#"{"seq":1,"action":"ping"}"#;
        ws.extend_from_slice(&[0x81, 0x80 | message.len() as u8, 0, 0, 0, 0]);
        ws.extend_from_slice(message);
        ws.extend_from_slice(&[0x89, 0x80, 0, 0, 0, 0, 0x81, 0xfe]);
        let texts = ws_exchange(&ws);
        assert!(
            texts.iter().any(|t| t["event"] == "hello"),
            "a hello: {texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t["seq_reply"] == 1 && t["data"]["text"] == "pong"),
            "the ping answered: {texts:?}"
        );
        // Not authenticated: no hello.
        ws[0] = 0;
        let texts = ws_exchange(&ws);
        assert!(!texts.iter().any(|t| t["event"] == "hello"), "{texts:?}");
    }
}
