//! Node-to-node links the fault harness can cut, cut one way, slow down and heal.
//!
//! Every directed link `from → to` of a cluster gets its own loopback proxy; node `from` dials
//! it instead of `to`'s Raft port (`--raft-dial`), so every byte between two nodes passes through
//! the proxy of the node that opened the connection. A link direction that is blocked loses
//! what is sent on it, as a network partition does: the bytes are read and dropped, the sender
//! sees no error and waits for answers that never come. A connection that lost bytes is never
//! used again (a TCP stream with a hole in it would be garbage): it is closed when the link
//! heals, as a real connection is reset after a long outage, and new ones are made. A delay
//! passes every chunk on that long after it arrived (latency, chunks in flight together).
//!
//! Clients reach the nodes' API ports directly: a partition cuts nodes from each other, not from
//! their clients, as in the classic split where a cut-off leader still accepts requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What one directed link (from the node that dials to the node that listens) lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    /// Bytes from the dialling node to the listening node are dropped.
    pub drop_forward: bool,
    /// Bytes from the listening node back to the dialling node are dropped.
    pub drop_backward: bool,
    /// Added to every chunk in both directions.
    pub delay: Duration,
}

/// The links of a cluster of `n` nodes (slots `0..n`), each with its proxy.
pub struct Links {
    /// `(from, to)` → the link's state.
    states: HashMap<(usize, usize), watch::Sender<LinkState>>,
    /// `(from, to)` → the proxy's address, which node `from` dials for node `to`.
    addrs: HashMap<(usize, usize), String>,
    /// `(from, to)` → bytes the link passed on and bytes it dropped (both directions).
    counts: HashMap<(usize, usize), Arc<Counts>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    n: usize,
}

/// Bytes through one link, so a test can tell the nodes really talked through it and a
/// partition really cut something.
#[derive(Default)]
pub struct Counts {
    pub passed: AtomicU64,
    pub dropped: AtomicU64,
}

/// Ports for `n` nodes (API, Raft), their Raft addresses, and a proxy for every link between
/// them: what a cluster whose links a test can cut or slow is started from.
pub async fn ports_with_links(n: usize) -> (Vec<(u16, u16)>, Vec<String>, Links) {
    let ports: Vec<(u16, u16)> = (0..n)
        .map(|_| (super::free_port(), super::free_port()))
        .collect();
    let raft_addrs: Vec<String> = ports
        .iter()
        .map(|(_, raft)| format!("127.0.0.1:{raft}"))
        .collect();
    let links = Links::start(&raft_addrs).await;
    (ports, raft_addrs, links)
}

impl Links {
    /// Starts a proxy for every directed link between the nodes whose Raft ports are
    /// `raft_addrs` (one per slot).
    pub async fn start(raft_addrs: &[String]) -> Links {
        let n = raft_addrs.len();
        let mut links = Links {
            states: HashMap::new(),
            addrs: HashMap::new(),
            counts: HashMap::new(),
            tasks: Vec::new(),
            n,
        };
        for from in 0..n {
            for (to, target) in raft_addrs.iter().enumerate() {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                let addr = listener.local_addr().expect("proxy address").to_string();
                let (state, watching) = watch::channel(LinkState::default());
                let counts = Arc::new(Counts::default());
                links.tasks.push(tokio::spawn(serve(
                    listener,
                    target.clone(),
                    watching,
                    counts.clone(),
                )));
                links.counts.insert((from, to), counts);
                links.states.insert((from, to), state);
                links.addrs.insert((from, to), addr);
            }
        }
        links
    }

    /// The `--raft-dial` value for node `from`: every other node's Raft address → its proxy.
    pub fn dial_arg(&self, from: usize, raft_addrs: &[String]) -> String {
        (0..self.n)
            .filter(|to| *to != from)
            .map(|to| format!("{}={}", raft_addrs[to], self.addrs[&(from, to)]))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Bytes passed on and dropped by every link together, and the links that passed nothing.
    pub fn totals(&self) -> (u64, u64, Vec<(usize, usize)>) {
        let mut idle: Vec<(usize, usize)> = Vec::new();
        let (mut passed, mut dropped) = (0, 0);
        for (link, counts) in &self.counts {
            let through = counts.passed.load(Ordering::Relaxed);
            if through == 0 {
                idle.push(*link);
            }
            passed += through;
            dropped += counts.dropped.load(Ordering::Relaxed);
        }
        idle.sort();
        (passed, dropped, idle)
    }

    fn update(&self, from: usize, to: usize, change: impl FnOnce(&mut LinkState)) {
        self.states[&(from, to)].send_modify(change);
    }

    /// Messages from `from` to `to` are lost; the other way still works.
    pub fn drop_one_way(&self, from: usize, to: usize) {
        // Requests `from` sends on its own connections, and its answers on `to`'s.
        self.update(from, to, |s| s.drop_forward = true);
        self.update(to, from, |s| s.drop_backward = true);
    }

    /// No message crosses between `a` and `b`, either way.
    pub fn cut(&self, a: usize, b: usize) {
        self.drop_one_way(a, b);
        self.drop_one_way(b, a);
    }

    /// Cuts every link between a node of `side` and a node outside it.
    pub fn split(&self, side: &[usize]) {
        for a in side {
            for b in (0..self.n).filter(|b| !side.contains(b)) {
                self.cut(*a, b);
            }
        }
    }

    /// Every message to and from `node` is delayed by `delay`.
    pub fn slow(&self, node: usize, delay: Duration) {
        for other in (0..self.n).filter(|o| *o != node) {
            self.update(node, other, |s| s.delay = delay);
            self.update(other, node, |s| s.delay = delay);
        }
    }

    /// Every link lets everything through again, at once.
    pub fn heal(&self) {
        for state in self.states.values() {
            state.send_replace(LinkState::default());
        }
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve(
    listener: TcpListener,
    target: String,
    state: watch::Receiver<LinkState>,
    counts: Arc<Counts>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        let state = state.clone();
        let counts = counts.clone();
        connections.spawn(async move {
            // The listening node is down: the dialler sees the connection close, as it would
            // see a refused connect.
            let Ok(outbound) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            // Whichever direction ends first ends the connection (both sockets dropped).
            tokio::select! {
                _ = pump(in_read, out_write, state.clone(), &counts, |s| s.drop_forward) => {}
                _ = pump(out_read, in_write, state, &counts, |s| s.drop_backward) => {}
            }
        });
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
    }
}

/// Copies one direction until either side closes, or until the link heals after this
/// connection lost bytes. A delay is latency, not a narrow pipe: each chunk leaves `delay` after
/// it arrived, whatever is still in flight ahead of it (holding every chunk in turn would make
/// a link of 64 KiB per `delay`, where a steady stream of heartbeats alone queues without end).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    mut state: watch::Receiver<LinkState>,
    counts: &Counts,
    dropped: fn(&LinkState) -> bool,
) {
    let (in_flight, arriving) = tokio::sync::mpsc::unbounded_channel();
    let deliver = deliver(to, arriving, counts);
    tokio::pin!(deliver);
    let mut buf = vec![0u8; 64 * 1024];
    let mut broken = false;
    loop {
        tokio::select! {
            // The receiving side closed.
            _ = &mut deliver => return,
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => {
                        // What is in flight still arrives, then the connection closes.
                        drop(in_flight);
                        deliver.await;
                        return;
                    }
                    Ok(n) => n,
                };
                let now = *state.borrow();
                if broken || dropped(&now) {
                    broken = true;
                    counts.dropped.fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                let due = tokio::time::Instant::now() + now.delay;
                if in_flight.send((due, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                // Healed: a connection that lost bytes is closed so the nodes open a new one.
                if broken && !dropped(&state.borrow()) {
                    return;
                }
            }
        }
    }
}

/// Writes each chunk once it is due, in the order read.
async fn deliver(
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut arriving: tokio::sync::mpsc::UnboundedReceiver<(tokio::time::Instant, Vec<u8>)>,
    counts: &Counts,
) {
    while let Some((due, bytes)) = arriving.recv().await {
        tokio::time::sleep_until(due).await;
        if to.write_all(&bytes).await.is_err() {
            return;
        }
        counts
            .passed
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}
