//! The bare broadcaster: what WebSocket fan-out costs on this machine with nothing else in the
//! way (no storage, no Raft, no auth, no per-connection envelope). confab's fan-out numbers are
//! read against it, so it stays a plain design: the event is serialized once per post and every
//! recipient connection gets its own text frame from its own writer task, with no batching.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::proto::Layout;

/// Load posts are a few KiB; the cap only keeps a broken client from ballooning memory.
const MAX_POST_BODY: usize = 1 << 20;

/// Clients never send data here, only control frames; anything large is a broken client.
const MAX_INBOUND_MESSAGE: usize = 64 << 10;

/// Mattermost ids are 26 characters; the fixed ids keep the payload the size of confab's.
const TEAM_ID: &str = "baselineteam00000000000000";

/// Binds, tells the parent process it is ready, and serves until killed.
pub async fn serve(listen: SocketAddr, layout: Layout) -> anyhow::Result<()> {
    let listener = bind(listen).await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {addr}")?;
        out.flush()?;
    }
    run(listener, layout).await
}

/// Separate from [`run`] so a caller binding port 0 can learn the port before serving.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))
}

/// Accepts forever; only returns on a layout it cannot serve.
pub async fn run(listener: TcpListener, layout: Layout) -> anyhow::Result<()> {
    // `Layout::members` divides by the user count.
    anyhow::ensure!(
        layout.users > 0,
        "the baseline server needs at least one user"
    );
    let state = Arc::new(State::new(layout));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: neither is fatal,
                // and retrying at once would spin.
                eprintln!("baseline: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Frames are small and latency is what is measured.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, &state).await) }
            });
            // A client hanging up mid-request is routine under load, not worth a log line.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

type Sender = mpsc::UnboundedSender<Bytes>;

struct State {
    layout: Layout,
    /// Per user, its open connections as (connection id, writer queue). One lock per user so
    /// posts to different channels rarely contend.
    users: Vec<Mutex<Vec<(u64, Sender)>>>,
    next_id: AtomicU64,
    connections: AtomicU64,
    /// Frames handed to writer queues. Counted once per post rather than once per write so the
    /// counter itself does not become a contended cache line in the measurement.
    frames_sent: AtomicU64,
}

impl State {
    fn new(layout: Layout) -> Self {
        State {
            layout,
            users: (0..layout.users).map(|_| Mutex::new(Vec::new())).collect(),
            next_id: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
        }
    }

    fn conns(&self, user: u32) -> Option<std::sync::MutexGuard<'_, Vec<(u64, Sender)>>> {
        let slot = self.users.get(user as usize)?;
        // A panic elsewhere while holding the lock leaves the Vec intact; keep serving.
        Some(slot.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn register(&self, user: u32, tx: Sender) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(mut conns) = self.conns(user) {
            conns.push((id, tx));
            self.connections.fetch_add(1, Ordering::Relaxed);
        }
        id
    }

    fn unregister(&self, user: u32, id: u64) {
        if let Some(mut conns) = self.conns(user) {
            if let Some(at) = conns.iter().position(|(c, _)| *c == id) {
                conns.swap_remove(at);
                self.connections.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

async fn route(req: Request<Incoming>, state: &Arc<State>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/ws") => websocket(req, state),
        (&Method::POST, "/post") => post(req, state).await,
        (&Method::GET, "/stats") => json_response(
            StatusCode::OK,
            &json!({
                "connections": state.connections.load(Ordering::Relaxed),
                "frames_sent": state.frames_sent.load(Ordering::Relaxed),
            }),
        ),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn query_user(query: Option<&str>) -> Option<u32> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("user="))?
        .parse()
        .ok()
}

fn websocket(mut req: Request<Incoming>, state: &Arc<State>) -> Response<Full<Bytes>> {
    let Some(user) = query_user(req.uri().query()).filter(|&u| u < state.layout.users) else {
        return error(StatusCode::BAD_REQUEST, "user must be a user index");
    };
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return error(StatusCode::BAD_REQUEST, "not a WebSocket upgrade");
    }
    let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(upgrade) => upgrade,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // Registered before the 101 goes out, so a client that posts as soon as its handshake
    // completes already receives the post; frames wait in the queue until the upgrade is done.
    let (tx, rx) = mpsc::unbounded_channel();
    let id = state.register(user, tx);
    let state = state.clone();
    tokio::spawn(async move {
        if let Ok(ws) = upgrade.await {
            connection(ws, rx).await;
        }
        state.unregister(user, id);
    });
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, Full::default())
}

/// Replies the protocol obliges the reader to send; they go through the writer task because
/// it owns the write half.
enum Control {
    Pong(Vec<u8>),
    Close(Vec<u8>),
}

/// Returns when the client closes or the socket fails; the caller then unregisters, which
/// (with the control sender dropped here) ends the writer.
async fn connection(ws: WebSocket<TokioIo<Upgraded>>, data: mpsc::UnboundedReceiver<Bytes>) {
    let (mut reader, writer) = ws.split(tokio::io::split);
    reader.set_max_message_size(MAX_INBOUND_MESSAGE);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(writer, data, control_rx));

    let mut obligated = |frame: Frame<'_>| {
        let control = match frame.opcode {
            OpCode::Pong => Some(Control::Pong(frame.payload.into())),
            OpCode::Close => Some(Control::Close(frame.payload.into())),
            _ => None,
        };
        let sent = match control {
            Some(control) => control_tx
                .send(control)
                .map_err(|_| std::io::Error::other("writer gone")),
            None => Ok(()),
        };
        std::future::ready(sent)
    };
    loop {
        match reader.read_frame(&mut obligated).await {
            Ok(frame) if frame.opcode == OpCode::Close => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

async fn write_loop<W>(
    mut ws: fastwebsockets::WebSocketWrite<W>,
    mut data: mpsc::UnboundedReceiver<Bytes>,
    mut control: mpsc::UnboundedReceiver<Control>,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    loop {
        let written = tokio::select! {
            // A close must not wait behind a backlog of posts.
            biased;
            c = control.recv() => match c {
                Some(Control::Pong(payload)) => {
                    ws.write_frame(Frame::pong(Payload::Owned(payload))).await
                }
                Some(Control::Close(payload)) => {
                    let _ = ws.write_frame(Frame::close_raw(Payload::Owned(payload))).await;
                    break;
                }
                None => break,
            },
            m = data.recv() => match m {
                Some(text) => ws.write_frame(Frame::text(Payload::Borrowed(&text))).await,
                None => break,
            },
        };
        if written.is_err() {
            break;
        }
    }
}

#[derive(Deserialize)]
struct PostRequest {
    channel: u32,
    message: String,
    user: u32,
}

async fn post(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_POST_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large")
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("reading body: {e}")),
    };
    let request: PostRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad post: {e}")),
    };
    if request.channel >= state.layout.channels() {
        return error(StatusCode::BAD_REQUEST, "channel out of range");
    }
    let id = random_id();
    let now = unix_ms();
    let frame = Bytes::from(posted_event(&id, now, &request));

    let mut queued = 0u64;
    for member in state.layout.members(request.channel) {
        let Some(mut conns) = state.conns(member) else {
            continue;
        };
        let before = conns.len();
        // A failed send means the writer is gone; drop the entry instead of feeding it forever.
        conns.retain(|(_, tx)| tx.send(frame.clone()).is_ok());
        let gone = (before - conns.len()) as u64;
        queued += conns.len() as u64;
        drop(conns);
        if gone > 0 {
            state.connections.fetch_sub(gone, Ordering::Relaxed);
        }
    }
    state.frames_sent.fetch_add(queued, Ordering::Relaxed);
    json_response(StatusCode::CREATED, &json!({"id": id, "create_at": now}))
}

/// The same fields as confab's `posted` event (and so about the same size), built the same way
/// (serde_json, post embedded as an escaped string).
fn posted_event(id: &str, now: i64, request: &PostRequest) -> Vec<u8> {
    let channel_name = format!("load-{}", request.channel);
    let channel_id = format!("c{:025}", request.channel);
    let post = json!({
        "id": id,
        "create_at": now,
        "update_at": now,
        "edit_at": 0,
        "delete_at": 0,
        "is_pinned": false,
        "user_id": format!("u{:025}", request.user),
        "channel_id": channel_id,
        "root_id": "",
        "original_id": "",
        "message": request.message,
        "type": "",
        "props": {},
        "hashtag": "",
        "pending_post_id": "",
        "reply_count": 0,
        "last_reply_at": 0,
        "participants": null,
        "metadata": {},
    });
    json!({
        "event": "posted",
        "data": {
            "channel_display_name": channel_name,
            "channel_name": channel_name,
            "channel_type": "O",
            "post": post.to_string(),
            "sender_name": format!("@user{}", request.user),
            "set_online": true,
            "team_id": TEAM_ID,
        },
        "broadcast": {
            "omit_users": null,
            "user_id": "",
            "channel_id": channel_id,
            "team_id": "",
            "connection_id": "",
            "omit_connection_id": "",
        },
        "seq": 0,
    })
    .to_string()
    .into_bytes()
}

fn random_id() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..26)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::join_all;
    use tokio::net::TcpStream;
    use tokio::time::timeout;

    async fn start(layout: Layout) -> SocketAddr {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener, layout));
        addr
    }

    async fn connect(addr: SocketAddr, user: u32) -> WebSocket<TokioIo<Upgraded>> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let request = Request::get(format!("http://{addr}/ws?user={user}"))
            .header("Host", addr.to_string())
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header(
                "Sec-WebSocket-Key",
                fastwebsockets::handshake::generate_key(),
            )
            .header("Sec-WebSocket-Version", "13")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let (ws, _) =
            fastwebsockets::handshake::client(&crate::wsclient::SpawnExecutor, request, stream)
                .await
                .unwrap();
        ws
    }

    async fn http(addr: SocketAddr, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", addr.to_string())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// Channel 0 is users 0..3, channel 1 users 3..6.
    const LAYOUT: Layout = Layout {
        users: 6,
        channel_size: 3,
        channels_per_user: 1,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn post_reaches_every_member_connection_once() {
        let addr = start(LAYOUT).await;
        let mut members = Vec::new();
        for user in [0, 1, 2, 1] {
            members.push(connect(addr, user).await);
        }
        let mut outsider = connect(addr, 3).await;
        let (_, stats) = http(addr, Method::GET, "/stats", "").await;
        assert_eq!(stats["connections"], 5);

        let message = "cl1 hello baseline xxxx";
        let body = json!({"channel": 0, "message": message, "user": 2}).to_string();
        let (status, created) = http(addr, Method::POST, "/post", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 26);
        assert!(created["create_at"].as_i64().unwrap() > 0);

        for ws in &mut members {
            let frame = timeout(Duration::from_secs(5), ws.read_frame())
                .await
                .expect("member got no frame")
                .unwrap();
            assert_eq!(frame.opcode, OpCode::Text);
            let text = std::str::from_utf8(&frame.payload).unwrap().to_owned();
            assert!(text.contains(message));
            let event: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(event["event"], "posted");
            assert_eq!(event["data"]["team_id"].as_str().unwrap().len(), 26);
            assert_eq!(event["data"]["sender_name"], "@user2");
            let post: Value =
                serde_json::from_str(event["data"]["post"].as_str().unwrap()).unwrap();
            assert_eq!(post["id"], id.as_str());
            assert_eq!(post["message"], message);
            assert_eq!(post["channel_id"], event["broadcast"]["channel_id"]);
        }

        let quiet = join_all(
            members
                .iter_mut()
                .chain(std::iter::once(&mut outsider))
                .map(|ws| async move {
                    timeout(Duration::from_millis(200), ws.read_frame())
                        .await
                        .is_err()
                }),
        )
        .await;
        assert!(
            quiet.iter().all(|&q| q),
            "an extra frame arrived: {quiet:?}"
        );

        let (_, stats) = http(addr, Method::GET, "/stats", "").await;
        assert_eq!(stats["frames_sent"], 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_requests_are_rejected() {
        let addr = start(LAYOUT).await;
        let (status, body) = http(addr, Method::POST, "/post", "{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].is_string());

        let (status, _) = http(addr, Method::POST, "/post", r#"{"channel":1}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let out_of_range = json!({"channel": 2, "message": "x", "user": 0}).to_string();
        let (status, _) = http(addr, Method::POST, "/post", &out_of_range).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        for path in ["/ws", "/ws?user=6", "/ws?user=x", "/ws?user=1"] {
            let (status, _) = http(addr, Method::GET, path, "").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        }
        let (status, _) = http(addr, Method::GET, "/nope", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = http(addr, Method::GET, "/post", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_and_close_are_answered() {
        let addr = start(LAYOUT).await;
        let mut ws = connect(addr, 4).await;
        ws.write_frame(Frame::new(
            true,
            OpCode::Ping,
            None,
            Payload::Borrowed(b"hi"),
        ))
        .await
        .unwrap();
        let pong = timeout(Duration::from_secs(5), ws.read_frame())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pong.opcode, OpCode::Pong);
        assert_eq!(&pong.payload[..], b"hi");
        ws.write_frame(Frame::close(1000, b"bye")).await.unwrap();
        let frame = timeout(Duration::from_secs(5), ws.read_frame())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(frame.opcode, OpCode::Close);
        let mut connections = Value::Null;
        for _ in 0..100 {
            connections = http(addr, Method::GET, "/stats", "").await.1["connections"].clone();
            if connections == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(connections, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn empty_layout_is_refused() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let layout = Layout { users: 0, ..LAYOUT };
        assert!(run(listener, layout).await.is_err());
    }
}
