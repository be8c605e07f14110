//! Topic-tagged messages between nodes, outside the Raft log: best-effort, unordered across
//! topics, for state a node wants its peers to know soon but that needs no consensus (a
//! WebSocket stream's position, presence). They travel on the raft port with the cluster secret
//! like every node-to-node call (`POST /cluster/message?topic=…&from=…`, raw body).
//!
//! Sending never blocks the caller: each peer has one sender task draining a bounded outbox in
//! order; when a peer is slow or unreachable its outbox fills and further messages to it are
//! dropped (counted), so a paused peer costs at most `OUTBOX_MESSAGES` queued bodies. Receiving
//! calls the handler registered for the topic on the raft-port connection's task; handlers must
//! be quick and must treat the body as untrusted bytes from an authenticated peer.

use crate::net::client::HttpClient;
use crate::net::wire;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages queued per peer at most; past it, messages to that peer are dropped.
const OUTBOX_MESSAGES: usize = 16;
/// Longest topic name.
pub const MAX_TOPIC_LEN: usize = 64;

/// One message from a peer.
#[derive(Debug, Clone)]
pub struct PeerMessage {
    /// The sending node's id.
    pub from: u64,
    pub topic: String,
    pub body: Bytes,
}

/// Called for every message of its topic.
pub type MessageHandler = Arc<dyn Fn(PeerMessage) + Send + Sync>;

/// Whether `topic` is a valid topic name: 1 to 64 of `a-z 0-9 . _ -` (it travels in a query).
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && topic
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

struct Outbox {
    addr: String,
    queue: mpsc::Sender<(String, Bytes)>,
}

/// Handlers of incoming topics and one outbox per peer.
pub(crate) struct Messenger {
    id: u64,
    http: HttpClient,
    timeout: Duration,
    handlers: RwLock<HashMap<String, MessageHandler>>,
    outboxes: Mutex<HashMap<u64, Outbox>>,
    pub(crate) dropped: AtomicU64,
}

impl Messenger {
    pub(crate) fn new(id: u64, http: HttpClient, timeout: Duration) -> Messenger {
        Messenger {
            id,
            http,
            timeout,
            handlers: RwLock::new(HashMap::new()),
            outboxes: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_handler(&self, topic: &str, handler: MessageHandler) {
        self.handlers.write().insert(topic.to_string(), handler);
    }

    /// Hands an incoming message to its topic's handler; false when nobody handles the topic.
    pub(crate) fn deliver(&self, message: PeerMessage) -> bool {
        let handler = self.handlers.read().get(&message.topic).cloned();
        match handler {
            Some(handler) => {
                handler(message);
                true
            }
            None => false,
        }
    }

    /// Queues `body` for every member of `peers` but this node; returns how many took it.
    /// Outboxes of nodes no longer in `peers` are closed (their tasks end).
    pub(crate) fn send(&self, peers: &[(u64, String)], topic: &str, body: Bytes) -> usize {
        let path = format!("{}?topic={topic}&from={}", wire::PEER_MESSAGE, self.id);
        let mut outboxes = self.outboxes.lock();
        outboxes.retain(|id, outbox| {
            peers
                .iter()
                .any(|(peer, addr)| peer == id && *addr == outbox.addr)
        });
        let mut queued = 0;
        for (peer, addr) in peers.iter().filter(|(peer, _)| *peer != self.id) {
            let outbox = outboxes
                .entry(*peer)
                .or_insert_with(|| self.open_outbox(addr.clone()));
            match outbox.queue.try_send((path.clone(), body.clone())) {
                Ok(()) => queued += 1,
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        queued
    }

    /// A peer's outbox and the task that sends it in order, until the outbox is dropped.
    fn open_outbox(&self, addr: String) -> Outbox {
        let (queue, mut pending) = mpsc::channel::<(String, Bytes)>(OUTBOX_MESSAGES);
        let http = self.http.clone();
        let timeout = self.timeout;
        let target = addr.clone();
        tokio::spawn(async move {
            while let Some((path, body)) = pending.recv().await {
                if let Err(error) = http.post(&target, &path, body, timeout).await {
                    tracing::debug!(peer = %target, %error, "peer message not delivered");
                }
            }
        });
        Outbox { addr, queue }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_short_query_safe_names() {
        assert!(valid_topic("ws.checkpoints"));
        assert!(valid_topic("presence-v1_2"));
        assert!(!valid_topic(""));
        assert!(!valid_topic("a&b=c"));
        assert!(!valid_topic("Upper"));
        assert!(!valid_topic(&"x".repeat(MAX_TOPIC_LEN + 1)));
    }

    #[tokio::test]
    async fn a_handler_gets_its_topic_only() {
        let messenger = Messenger::new(
            1,
            HttpClient::new("s", Default::default()),
            Duration::from_secs(1),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        messenger.set_handler(
            "a",
            Arc::new(move |m: PeerMessage| sink.lock().push((m.from, m.body))),
        );
        let message = |topic: &str| PeerMessage {
            from: 2,
            topic: topic.into(),
            body: Bytes::from_static(b"x"),
        };
        assert!(messenger.deliver(message("a")));
        assert!(!messenger.deliver(message("b")));
        assert_eq!(*seen.lock(), vec![(2, Bytes::from_static(b"x"))]);
    }
}
