//! The HTTP side: `GET /api/v4/websocket` upgraded by fastwebsockets through hyper, the auth
//! handshake, and the client's actions (`authentication_challenge`, `ping`, `user_typing`; the
//! status actions are in [`super::status_actions`]).

use super::conn::{self, Closing, Conn, Identity, Out};
use super::frame_bound::FrameBound;
use super::hub::{parse_connection_id, Hub, Registered, Resume};
use crate::{auth, clock};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use confab_storage::{Command, Id, Session};
use fastwebsockets::upgrade::IncomingUpgrade;
use fastwebsockets::{Frame, OpCode, Role, WebSocket, WebSocketError};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Client messages are small; anything bigger is refused by closing.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// One typing notice per channel per connection per this interval reaches the log.
const TYPING_INTERVAL: Duration = Duration::from_millis(1000);

/// Errors of one connection; logged, never sent as a panic.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("websocket upgrade failed: {0}")]
    Upgrade(#[source] WebSocketError),
    #[error("websocket protocol: {0}")]
    Protocol(#[source] WebSocketError),
    #[error("no authentication within {0:?}")]
    AuthTimeout(Duration),
}

pub fn router(hub: &Arc<Hub>) -> Router {
    Router::new()
        .route("/api/v4/websocket", get(upgrade))
        .with_state(hub.clone())
}

/// Query parameters of the upgrade (Client4 also sends posted_ack and disconnect_err_code,
/// which are ignored).
#[derive(Debug, Default, Clone)]
struct UpgradeQuery {
    connection_id: String,
    sequence_number: Option<u64>,
}

fn parse_query(query: Option<&str>) -> UpgradeQuery {
    let mut out = UpgradeQuery::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "connection_id" => out.connection_id = value.into_owned(),
            "sequence_number" => out.sequence_number = value.trim().parse().ok(),
            _ => {}
        }
    }
    out
}

async fn upgrade(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: IncomingUpgrade,
) -> Response {
    let query = parse_query(uri.query());
    let session = match auth::token_from_parts(&headers, uri.query()) {
        Some(token) => crate::catch_up::resolve_or_catch_up(&hub, &token)
            .await
            .map(|(session, _)| session),
        None => None,
    };
    let (response, fut) = match upgrade.upgrade() {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%error, "websocket upgrade refused");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    tokio::spawn(async move {
        let ws = match fut.await {
            Ok(ws) => ws,
            Err(error) => {
                tracing::debug!(error = %WsError::Upgrade(error), "websocket upgrade did not complete");
                return;
            }
        };
        hub.sockets.fetch_add(1, Ordering::Relaxed);
        ::metrics::gauge!("confab_ws_connections").increment(1.0);
        if let Err(error) = serve(hub.clone(), ws.into_inner(), session, query).await {
            tracing::debug!(%error, "websocket connection ended");
        }
        hub.sockets.fetch_sub(1, Ordering::Relaxed);
        ::metrics::gauge!("confab_ws_connections").decrement(1.0);
    });
    response.into_response()
}

/// The read side of the socket for fastwebsockets: reads from the socket, never past the end
/// of the client's current frame ([`FrameBound`]), and hands the frames fastwebsockets must send
/// (pong, close answer) to the connection's writer as raw bytes.
struct ReadSide<R> {
    read: R,
    conn: Arc<Conn>,
    bound: FrameBound,
    /// The first byte of the next frame, read while waiting without a buffer.
    first: Option<u8>,
}

impl<R: AsyncRead + Unpin> ReadSide<R> {
    /// Waits until the client sends the first byte of its next frame, holding one byte of
    /// buffer while it waits; false when the client closed the stream instead.
    async fn next_frame_arrives(&mut self) -> std::io::Result<bool> {
        if self.first.is_some() || !self.bound.at_boundary() {
            return Ok(true);
        }
        let mut byte = [0u8; 1];
        let read = self.read.read(&mut byte).await?;
        if read == 0 {
            return Ok(false);
        }
        self.first = Some(byte[0]);
        Ok(true)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ReadSide<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let side = &mut *self;
        if let Some(byte) = side.first.take() {
            buf.put_slice(&[byte]);
            side.bound.advance(&[byte]);
            return Poll::Ready(Ok(()));
        }
        let allowance = usize::try_from(side.bound.allowance()).unwrap_or(usize::MAX);
        let room = buf.initialize_unfilled_to(allowance.min(buf.remaining()));
        let mut limited = ReadBuf::new(room);
        std::task::ready!(Pin::new(&mut side.read).poll_read(cx, &mut limited))?;
        let read = limited.filled().len();
        side.bound.advance(limited.filled());
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl<R: Unpin> AsyncWrite for ReadSide<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.conn.push(Out::Raw(Bytes::copy_from_slice(data)));
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The reading side's state of one connection.
struct Reader {
    hub: Arc<Hub>,
    conn: Arc<Conn>,
    query: UpgradeQuery,
    /// When this connection last put a typing notice in the log, per channel and thread (a
    /// thread's composer and its channel's are separate places to type).
    last_typing: HashMap<(Id, Option<Id>), Instant>,
}

/// One connection over any byte stream, as if upgraded with this query string and the session
/// of this token: what the fuzz target `ws_stream` feeds a client's raw bytes to
/// ([`crate::fuzzing::ws_stream`]).
pub async fn serve_stream<S>(
    hub: Arc<Hub>,
    io: S,
    token: Option<&str>,
    query: Option<&str>,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let session = token
        .and_then(|token| hub.sessions.resolve(&hub.engine, token, clock::now_ms()))
        .map(|(session, _)| session);
    serve(hub, io, session, parse_query(query)).await
}

async fn serve<S>(
    hub: Arc<Hub>,
    io: S,
    session: Option<Session>,
    query: UpgradeQuery,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(io);
    let conn = Arc::new(Conn::new(hub.next_key(), hub.config.queue_frames));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn({
        let conn = conn.clone();
        async move {
            conn::write_loop(conn, write).await;
            let _ = done_tx.send(());
        }
    });
    let side = ReadSide {
        read,
        conn: conn.clone(),
        bound: FrameBound::default(),
        first: None,
    };
    let mut reader = Reader {
        hub: hub.clone(),
        conn: conn.clone(),
        query,
        last_typing: HashMap::new(),
    };
    if let Some(session) = session {
        reader.authenticated(&session);
    }
    let deadline = tokio::time::Instant::now() + hub.config.auth_timeout;
    let result = read_loop(side, &mut reader, deadline, done_rx).await;
    match &result {
        Err(WsError::AuthTimeout(_)) => conn.close(Closing::Close(
            conn::CLOSE_AUTH,
            "authentication required".into(),
        )),
        Err(WsError::Protocol(WebSocketError::FrameTooLarge)) => {
            conn.close(Closing::Close(1009, "message too large".into()))
        }
        // The peer went away: nothing to tell it.
        Err(WsError::Protocol(WebSocketError::UnexpectedEOF | WebSocketError::IoError(_))) => {
            conn.close(Closing::Flush)
        }
        Err(WsError::Protocol(_)) => conn.close(Closing::Close(1002, "protocol error".into())),
        _ => conn.close(Closing::Flush),
    }
    hub.unregister(&conn);
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    result
}

/// fastwebsockets over the read side, for one frame: built when a frame starts arriving and
/// dropped after it, so a quiet connection holds no read buffer.
fn frame_reader<R: AsyncRead + Unpin>(side: ReadSide<R>) -> WebSocket<ReadSide<R>> {
    let mut ws = WebSocket::after_handshake(side, Role::Server);
    // Pings are answered here, after the frame: fastwebsockets' own answer would go on to wait
    // for the next frame while holding its buffer.
    ws.set_auto_pong(false);
    ws.set_auto_close(true);
    ws.set_max_message_size(MAX_CLIENT_MESSAGE);
    ws
}

/// Runs one step of reading unless the writer ends first (`None`) or, while the connection has
/// not authenticated, its deadline passes.
async fn unless_done<T>(
    step: impl std::future::Future<Output = T>,
    authenticated: bool,
    deadline: tokio::time::Instant,
    auth_timeout: Duration,
    writer_done: &mut tokio::sync::oneshot::Receiver<()>,
) -> Result<Option<T>, WsError> {
    let deadline = if authenticated { None } else { Some(deadline) };
    let timeout = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        out = step => Ok(Some(out)),
        _ = timeout => Err(WsError::AuthTimeout(auth_timeout)),
        _ = writer_done => Ok(None),
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut side: ReadSide<R>,
    reader: &mut Reader,
    deadline: tokio::time::Instant,
    mut writer_done: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), WsError> {
    let auth_timeout = reader.hub.config.auth_timeout;
    loop {
        if reader.conn.is_closing() {
            return Ok(());
        }
        let authenticated = reader.conn.identity().is_some();
        let arrived = unless_done(
            side.next_frame_arrives(),
            authenticated,
            deadline,
            auth_timeout,
            &mut writer_done,
        )
        .await?;
        match arrived {
            None => return Ok(()),
            Some(Ok(true)) => {}
            Some(Ok(false)) => return Err(WsError::Protocol(WebSocketError::UnexpectedEOF)),
            Some(Err(error)) => return Err(WsError::Protocol(WebSocketError::IoError(error))),
        }
        let mut ws = frame_reader(side);
        let frame = unless_done(
            ws.read_frame(),
            authenticated,
            deadline,
            auth_timeout,
            &mut writer_done,
        )
        .await?;
        let Some(frame) = frame else {
            return Ok(());
        };
        let frame = frame.map_err(WsError::Protocol)?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Ping => ws
                .write_frame(Frame::pong(frame.payload))
                .await
                .map_err(WsError::Protocol)?,
            // Clients send small single-frame messages; fragments are not reassembled (that
            // would let a client grow a message without bound) and are ignored.
            OpCode::Text if frame.fin => {
                if let Some(reply) = reader.handle_text(&frame.payload).await {
                    reader.conn.push(Out::Reply(reply));
                }
            }
            // Binary frames, fragments, pongs (mattermostdriver's heartbeats): ignored.
            _ => {}
        }
        side = ws.into_inner();
    }
}

/// `{"status":"OK","seq_reply":N}` with optional data.
pub fn ok_reply(seq: u64, data: Option<Value>) -> Bytes {
    let mut value = json!({"status": "OK", "seq_reply": seq});
    if let Some(data) = data {
        value["data"] = data;
    }
    Bytes::from(value.to_string())
}

/// A FAIL reply with a Mattermost error object.
pub fn fail_reply(seq: u64, id: &str, message: &str, status: u16) -> Bytes {
    Bytes::from(
        json!({
            "status": "FAIL",
            "seq_reply": seq,
            "error": {
                "id": id,
                "message": message,
                "detailed_error": "",
                "request_id": "",
                "status_code": status,
            }
        })
        .to_string(),
    )
}

impl Reader {
    /// Sets the connection's identity and registers it: resume or hello.
    fn authenticated(&mut self, session: &Session) {
        let identity = Identity {
            user: session.user_id,
            token: session.token,
        };
        if !self.conn.authenticate(identity) {
            return;
        }
        let resume = match (
            self.query.sequence_number,
            self.query.connection_id.as_str(),
        ) {
            (Some(next_seq), text) if !text.is_empty() => {
                parse_connection_id(identity.user, text).map(|stream| Resume { stream, next_seq })
            }
            _ => None,
        };
        let asked = resume.is_some();
        match self.hub.register(&self.conn, resume) {
            Registered::Fresh { connection_id } => {
                if asked {
                    ::metrics::counter!("confab_ws_resumes_refused_total").increment(1);
                }
                tracing::debug!(user = %identity.user, %connection_id, "websocket stream started")
            }
            Registered::Resumed { replayed } => {
                ::metrics::counter!("confab_ws_resumes_accepted_total").increment(1);
                tracing::debug!(user = %identity.user, replayed, "websocket stream resumed")
            }
        }
    }

    /// Handles one client text message; returns the reply, if any.
    async fn handle_text(&mut self, payload: &[u8]) -> Option<Bytes> {
        let Ok(message) = serde_json::from_slice::<Value>(payload) else {
            // Not JSON: nothing to reply to (a reply without seq_reply would break Client4).
            return None;
        };
        let seq = message.get("seq").and_then(Value::as_u64)?;
        let Some(action) = message.get("action").and_then(Value::as_str) else {
            return Some(fail_reply(
                seq,
                "api.web_socket_router.no_action.app_error",
                "No websocket action",
                400,
            ));
        };
        let data = message.get("data");
        match action {
            // Boxed: the challenge may wait for a catch-up, a deep future to nest in the loop.
            "authentication_challenge" => Box::pin(self.challenge(seq, data)).await,
            _ if self.conn.identity().is_none() => Some(fail_reply(
                seq,
                "api.web_socket_router.not_authenticated.app_error",
                "Send authentication_challenge first",
                401,
            )),
            "ping" => Some(ok_reply(
                seq,
                Some(json!({
                    "text": "pong",
                    "version": self.hub.config.server_version,
                    "server_time": clock::now_ms(),
                    "node_id": "",
                })),
            )),
            "user_typing" => Some(self.typing(seq, data)),
            // The apps name the channel, team or thread on screen. Mattermost keeps it to narrow
            // some deliveries; confab delivers by membership alone, so it only acknowledges.
            "presence" => Some(ok_reply(seq, None)),
            "get_statuses" | "get_statuses_by_ids" | "user_update_active_status" => Some(
                super::status_actions::handle(&self.hub, &self.conn, action, seq, data),
            ),
            _ => Some(fail_reply(
                seq,
                "api.web_socket_router.bad_action.app_error",
                "Unknown websocket action",
                501,
            )),
        }
    }

    /// `authentication_challenge`: the OK reply goes out before the hello (or the replay), as
    /// mattermostdriver and Client4 expect. The mobile app sends it right after logging in,
    /// maybe to a node that has not applied the session yet: an unknown token waits for this
    /// node to catch up (the connection has nothing else to do before it authenticates).
    async fn challenge(&mut self, seq: u64, data: Option<&Value>) -> Option<Bytes> {
        if self.conn.identity().is_some() {
            return Some(ok_reply(seq, None));
        }
        let token = data
            .and_then(|d| d.get("token"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some((session, _)) = crate::catch_up::resolve_or_catch_up(&self.hub, token).await
        else {
            return Some(fail_reply(
                seq,
                "api.web_socket_router.bad_token.app_error",
                "Invalid or expired session token",
                401,
            ));
        };
        self.conn.push(Out::Reply(ok_reply(seq, None)));
        self.authenticated(&session);
        None
    }

    fn typing(&mut self, seq: u64, data: Option<&Value>) -> Bytes {
        let Some(identity) = self.conn.identity() else {
            return fail_reply(
                seq,
                "api.web_socket_router.not_authenticated.app_error",
                "",
                401,
            );
        };
        let field = |name: &str| {
            data.and_then(|d| d.get(name))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let Ok(channel_id) = Id::parse(&field("channel_id")) else {
            return fail_reply(
                seq,
                "api.websocket_handler.invalid_param.app_error",
                "Invalid channel_id",
                400,
            );
        };
        let parent = field("parent_id");
        let parent_id = if parent.is_empty() {
            None
        } else {
            match Id::parse(&parent) {
                Ok(id) => Some(id),
                Err(_) => {
                    return fail_reply(
                        seq,
                        "api.websocket_handler.invalid_param.app_error",
                        "Invalid parent_id",
                        400,
                    )
                }
            }
        };
        // A point lookup keeps non-members' notices out of the log (apply refuses them too).
        let member = self
            .hub
            .engine
            .reader()
            .is_channel_member(channel_id, identity.user);
        if !matches!(member, Ok(true)) {
            return fail_reply(
                seq,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
                403,
            );
        }
        let now = Instant::now();
        let recent = self
            .last_typing
            .get(&(channel_id, parent_id))
            .is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL);
        if !recent {
            if self.last_typing.len() > 256 {
                self.last_typing.clear();
            }
            self.last_typing.insert((channel_id, parent_id), now);
            (self.hub.proposer)(Command::UserTyping {
                user_id: identity.user,
                channel_id,
                parent_id,
                at: clock::now_ms(),
            });
        }
        ok_reply(seq, None)
    }
}
