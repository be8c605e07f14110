//! A WebSocket client socket from a chosen local address: fastwebsockets' client handshake over
//! a `TcpSocket` bound to a 127.x source address, so one process can hold more sockets to the
//! same node than one address's ephemeral ports allow. Sockets are split into a read half (the
//! worker's socket task) and a shared write half, so a user's pings never cancel a read.

use anyhow::{anyhow, Context};
use bytes::Bytes;
use fastwebsockets::{FragmentCollectorRead, WebSocket, WebSocketRead, WebSocketWrite};
use http_body_util::Empty;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};

type Stream = TokioIo<Upgraded>;
/// The read half, collecting fragmented messages.
pub type WsReader = FragmentCollectorRead<tokio::io::ReadHalf<Stream>>;
/// The write half (shared through [`crate::wsctl::Outbound`]).
pub type WsWriter = WebSocketWrite<tokio::io::WriteHalf<Stream>>;

/// Runs hyper's connection futures on tokio (the handshake needs one).
pub struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

/// Opens `ws://{addr}{path_and_query}` from `source`, with an optional bearer token: its read
/// and write halves.
pub async fn connect(
    source: IpAddr,
    addr: &str,
    path_and_query: &str,
    token: Option<&str>,
) -> anyhow::Result<(WsReader, WsWriter)> {
    let target: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .ok_or_else(|| anyhow!("no address for {addr}"))?;
    let socket = match target {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("binding {source}"))?;
    let stream = socket
        .connect(target)
        .await
        .with_context(|| format!("connecting {source} → {target}"))?;
    stream.set_nodelay(true)?;
    let mut request = Request::builder()
        .method("GET")
        .uri(path_and_query)
        .header("Host", addr)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let request = request.body(Empty::<Bytes>::new())?;
    let (ws, response) = fastwebsockets::handshake::client(&SpawnExecutor, request, stream)
        .await
        .map_err(|e| anyhow!("websocket handshake with {addr}: {e}"))?;
    if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        return Err(anyhow!("websocket upgrade refused: {}", response.status()));
    }
    let ws: WebSocket<Stream> = ws;
    let (read, write): (WebSocketRead<_>, WsWriter) = ws.split(tokio::io::split);
    Ok((FragmentCollectorRead::new(read), write))
}

/// The apps' keep-alive action (mattermost-mobile `client/websocket`, every 30 s).
pub fn ping_message(seq: u64) -> String {
    format!(r#"{{"action":"ping","seq":{seq}}}"#)
}

/// The `seq_reply` of a reply to a client action (`{"status":"OK","seq_reply":N,…}`), read
/// without parsing JSON; `None` for events.
pub fn reply_seq(frame: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"seq_reply\":";
    let at = memchr::memmem::find(frame, KEY)?;
    let digits = &frame[at + KEY.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// The `seq` of a confab event frame (`…,"seq":N}`), read from its end without parsing JSON.
pub fn frame_seq(frame: &[u8]) -> Option<u64> {
    let at = memchr::memmem::rfind(frame, b"\"seq\":")?;
    let digits = &frame[at + 6..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// `data.connection_id` of a `hello` frame.
pub fn hello_connection_id(frame: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(frame).ok()?;
    (value["event"] == "hello")
        .then(|| value["data"]["connection_id"].as_str().map(str::to_string))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_from_the_frame_end() {
        assert_eq!(
            frame_seq(br#"{"event":"posted","data":{"post":"{\"seq\":3}"},"seq":17}"#),
            Some(17)
        );
        assert_eq!(frame_seq(br#"{"status":"OK","seq_reply":2}"#), None);
        assert_eq!(
            hello_connection_id(br#"{"event":"hello","data":{"connection_id":"abc"},"seq":0}"#),
            Some("abc".into())
        );
    }

    #[test]
    fn pong_is_matched_by_seq_reply() {
        assert_eq!(ping_message(7), r#"{"action":"ping","seq":7}"#);
        let pong = br#"{"status":"OK","seq_reply":7,"data":{"text":"pong","version":"10.11.0","server_time":1,"node_id":""}}"#;
        assert_eq!(reply_seq(pong), Some(7));
        // A pong is no event: its seq_reply is not an event seq.
        assert_eq!(frame_seq(pong), None);
        assert_eq!(reply_seq(br#"{"event":"posted","data":{},"seq":3}"#), None);
        assert_eq!(reply_seq(br#"{"status":"OK","seq_reply":}"#), None);
    }
}
