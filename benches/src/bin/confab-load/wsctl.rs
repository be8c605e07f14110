//! A socket's handle for its user's behaviour (`mix`): ask the socket to drop and reopen
//! (resuming its stream), or send a ping action over it and learn when its pong arrived.
//!
//! The worker's socket task owns the read half and must never have a read cancelled (a
//! fastwebsockets read dropped halfway loses the frame header), so it cannot also wait for
//! pings to send. The write half is therefore shared instead: the user's task writes its ping
//! through [`Outbound`], and the reader hands the matching `seq_reply` back through the
//! registered [`oneshot`], stamped with its arrival time.

use crate::wsclient::WsWriter;
use fastwebsockets::{Frame, Payload, WebSocketError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{oneshot, Notify};

/// The write half of one open connection and the `seq` of its next client action (per
/// connection, as the apps count: their `authentication_challenge` is 1; this tool
/// authenticates with the upgrade's bearer header, so its first ping is 1).
pub struct Outbound {
    write: WsWriter,
    next_seq: u64,
}

impl Outbound {
    pub fn new(write: WsWriter) -> Outbound {
        Outbound { write, next_seq: 1 }
    }

    /// Writes a frame the reader is obliged to send (the answer to a ping or a close).
    pub async fn write_frame(&mut self, frame: Frame<'_>) -> Result<(), WebSocketError> {
        self.write.write_frame(frame).await
    }
}

/// Why a ping was not sent, or got no pong: the socket was not open, or closed under it. Not
/// a server failure by itself (closes are counted where the socket sees them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketClosed;

/// The open connection's writer and the pong awaited on it, under one lock, so a ping can
/// never register on a connection that has just closed.
#[derive(Default)]
struct Slot {
    writer: Option<Arc<tokio::sync::Mutex<Outbound>>>,
    pong: Option<oneshot::Sender<Instant>>,
}

/// Shared between one socket task and its user's behaviour.
#[derive(Default)]
pub struct SocketControl {
    pub reconnect: Notify,
    slot: Mutex<Slot>,
    /// The `seq` of the ping awaiting its pong (0: none), read on every frame without a lock.
    awaited: AtomicU64,
}

impl SocketControl {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection opened: pings go through `writer` from now on.
    pub fn opened(&self, writer: Arc<tokio::sync::Mutex<Outbound>>) {
        self.slot().writer = Some(writer);
    }

    /// The connection closed: no more pings through it, and a ping in flight never gets its
    /// pong (its receiver sees the sender dropped).
    pub fn closed(&self) {
        let mut slot = self.slot();
        slot.writer = None;
        slot.pong = None;
        self.awaited.store(0, Ordering::Relaxed);
    }

    /// The reader got a text frame: if it answers the awaited ping, stamp its arrival.
    pub fn on_text(&self, payload: &[u8]) {
        let awaited = self.awaited.load(Ordering::Relaxed);
        if awaited == 0 || crate::wsclient::reply_seq(payload) != Some(awaited) {
            return;
        }
        let arrived = Instant::now();
        let mut slot = self.slot();
        self.awaited.store(0, Ordering::Relaxed);
        if let Some(tx) = slot.pong.take() {
            let _ = tx.send(arrived);
        }
    }

    /// Sends `{"action":"ping","seq":N}` as the apps do every 30 s. Returns when it was
    /// written and the receiver of its pong's arrival time; a ping still awaiting its pong is
    /// forgotten (its receiver sees the sender dropped).
    pub async fn ping(&self) -> Result<(Instant, oneshot::Receiver<Instant>), SocketClosed> {
        let writer = self.slot().writer.clone().ok_or(SocketClosed)?;
        let mut out = writer.lock().await;
        let seq = out.next_seq;
        out.next_seq += 1;
        let (tx, rx) = oneshot::channel();
        {
            // Registered before the write, so a fast pong cannot arrive unexpected; and only
            // if this connection is still the open one.
            let mut slot = self.slot();
            if !slot
                .writer
                .as_ref()
                .is_some_and(|w| Arc::ptr_eq(w, &writer))
            {
                return Err(SocketClosed);
            }
            slot.pong = Some(tx);
            self.awaited.store(seq, Ordering::Relaxed);
        }
        let sent = Instant::now();
        let text = crate::wsclient::ping_message(seq);
        if out
            .write_frame(Frame::text(Payload::Owned(text.into_bytes())))
            .await
            .is_err()
        {
            let mut slot = self.slot();
            if self.awaited.load(Ordering::Relaxed) == seq {
                self.awaited.store(0, Ordering::Relaxed);
                slot.pong = None;
            }
            return Err(SocketClosed);
        }
        Ok((sent, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use fastwebsockets::{FragmentCollector, OpCode};
    use http_body_util::Empty;
    use hyper::body::Incoming;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;
    use tokio::time::timeout;

    /// Answers ping actions with seq 1 and 2 as confab does, but only once it has the pong to
    /// its own control ping (which the client's reader must send through the shared writer);
    /// leaves seq 3 and later unanswered.
    async fn pong_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(|mut req: Request<Incoming>| async move {
                    let (response, upgrade) =
                        fastwebsockets::upgrade::upgrade(&mut req).expect("an upgrade");
                    tokio::spawn(async move {
                        let mut ws = FragmentCollector::new(upgrade.await.expect("upgraded"));
                        let ping = Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b"hb"));
                        ws.write_frame(ping).await.expect("control ping");
                        let (mut ponged, mut held) = (false, Vec::new());
                        while let Ok(frame) = ws.read_frame().await {
                            match frame.opcode {
                                OpCode::Pong => ponged = true,
                                OpCode::Text => {
                                    let action: serde_json::Value =
                                        serde_json::from_slice(&frame.payload).expect("json");
                                    assert_eq!(action["action"], "ping");
                                    held.push(action["seq"].as_u64().expect("seq"));
                                }
                                _ => {}
                            }
                            if !ponged {
                                continue;
                            }
                            for seq in held.drain(..).filter(|&s| s < 3) {
                                let reply = format!(
                                    r#"{{"status":"OK","seq_reply":{seq},"data":{{"text":"pong"}}}}"#
                                );
                                let frame = Frame::text(Payload::Owned(reply.into_bytes()));
                                ws.write_frame(frame).await.expect("reply");
                            }
                        }
                    });
                    Ok::<Response<Empty<Bytes>>, Infallible>(response)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades(),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn pings_get_their_pongs_through_the_shared_writer() {
        let addr = pong_server().await;
        let control = Arc::new(SocketControl::default());
        assert_eq!(
            control.ping().await.err(),
            Some(SocketClosed),
            "no socket yet"
        );
        let local = IpAddr::from([127, 0, 0, 1]);
        let (mut read, write) = crate::wsclient::connect(local, &addr.to_string(), "/", None)
            .await
            .expect("connect");
        let writer = Arc::new(tokio::sync::Mutex::new(Outbound::new(write)));
        control.opened(writer.clone());
        let reader_control = control.clone();
        tokio::spawn(async move {
            let mut obliged = |frame| {
                let writer = writer.clone();
                async move { writer.lock().await.write_frame(frame).await }
            };
            while let Ok(frame) = read.read_frame(&mut obliged).await {
                if frame.opcode == OpCode::Text {
                    reader_control.on_text(&frame.payload);
                }
            }
        });
        for _ in 1..=2 {
            let (sent, arrival) = control.ping().await.expect("sent");
            let arrived = timeout(Duration::from_secs(5), arrival)
                .await
                .expect("a pong in time")
                .expect("the pong");
            assert!(arrived >= sent);
        }
        // Seq 3 gets no pong; the socket closing under it drops the sender.
        let (_, arrival) = control.ping().await.expect("sent");
        control.closed();
        assert!(arrival.await.is_err());
        assert_eq!(control.ping().await.err(), Some(SocketClosed));
    }
}
