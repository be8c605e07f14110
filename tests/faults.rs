//! Seeded fault schedules against a real 3-node cluster, checked afterwards as a whole history.
//!
//! Each schedule (one seed) runs, one fault at a time so a quorum always remains: kill -9 of a
//! random node and its restart on the same data dir, or SIGSTOP of a random node and SIGCONT
//! after 0.5–3 s. Meanwhile three writers post through random nodes with `pending_post_id`
//! retries (a timed-out or refused attempt is retried through another node), a reader checks
//! read-your-writes with `X-Confab-Applied` on a random node after acknowledged posts, and a
//! listener drops its WebSocket every 0.5–2 s and resumes on a random node. Once healed (every
//! node running), the checker requires: every acknowledged post on every node exactly once, no
//! post made twice, the channel's order identical on every node, every listener stream (a
//! hello and its accepted resumes) saw a gap-free, duplicate-free run of the channel with
//! contiguous seq, and the replicas' digests equal at the same applied index.
//!
//! `CONFAB_CHAOS_SEEDS` (e.g. `1,2,3`) picks the schedules, `CONFAB_CHAOS_SECONDS` their length;
//! `make test` runs two short ones and `make chaos SEEDS="…"` many. A failure prints its seed;
//! the fault schedule is a function of the seed (the clients' timing is not).

mod common;

use common::{eventually, inner, team_with, three_nodes, Api, Node, Socket};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEFAULT_SEEDS: &[u64] = &[1, 2];
const DEFAULT_SECONDS: u64 = 8;
const WRITERS: u64 = 3;
const HEAL_WAIT: Duration = Duration::from_secs(90);

/// splitmix64: a small deterministic generator, so a seed names one schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// kill -9, then restart on the same data dir after the hold.
    Kill,
    /// SIGSTOP, then SIGCONT after the hold.
    Pause,
}

#[derive(Debug, Clone, Copy)]
struct Step {
    /// Quiet time before the fault.
    gap: Duration,
    node: usize,
    fault: Fault,
    hold: Duration,
}

/// The schedule a seed names: faults one after another for about `seconds`.
fn schedule(seed: u64, seconds: u64) -> Vec<Step> {
    let mut rng = Rng(seed);
    let mut steps = Vec::new();
    let mut total = 0;
    while total < seconds * 1000 {
        let step = Step {
            gap: Duration::from_millis(300 + rng.below(1200)),
            node: rng.below(3) as usize,
            fault: if rng.below(2) == 0 {
                Fault::Kill
            } else {
                Fault::Pause
            },
            hold: Duration::from_millis(500 + rng.below(2500)),
        };
        total += (step.gap + step.hold).as_millis() as u64;
        steps.push(step);
    }
    steps
}

fn env_list(name: &str) -> Option<Vec<u64>> {
    let text = std::env::var(name).ok()?;
    let list: Vec<u64> = text
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("seeds are numbers"))
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Prints the seed of a schedule that panics.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "fault schedule failed: seed {0} (rerun: CONFAB_CHAOS_SEEDS={0} cargo test --release -p confab --test faults -- --nocapture)",
                self.0
            );
        }
    }
}

fn signal(node: &Node, name: &str) {
    let Some(child) = node.child.as_ref() else {
        return;
    };
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// What the clients saw.
#[derive(Default)]
struct History {
    /// Acknowledged posts: (id, message).
    acknowledged: Vec<(String, String)>,
    /// Read-your-writes checks that answered, and those a down node could not serve.
    reads_checked: usize,
    reads_unavailable: usize,
    /// Each listener stream's posted ids, in the order received.
    streams: Vec<Vec<String>>,
    resumes_accepted: usize,
    resumes_refused: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeded_fault_schedules_lose_or_double_nothing() {
    let seeds = env_list("CONFAB_CHAOS_SEEDS").unwrap_or_else(|| DEFAULT_SEEDS.to_vec());
    let seconds = env_list("CONFAB_CHAOS_SECONDS")
        .and_then(|l| l.first().copied())
        .unwrap_or(DEFAULT_SECONDS);
    for seed in seeds {
        run(seed, seconds).await;
    }
}

async fn run(seed: u64, seconds: u64) {
    let _guard = SeedGuard(seed);
    let steps = schedule(seed, seconds);
    let (_dir, mut nodes) = three_nodes().await;
    let bases: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let admin = Api::signup(&bases[0], "admin").await;
    let listener = Api::signup(&bases[1], "listener").await;
    let (_team_id, channel) = team_with(&admin, "chaos", &[&listener]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(parking_lot::Mutex::new(History::default()));
    let mut clients = Vec::new();
    for writer in 0..WRITERS {
        clients.push(tokio::spawn(write_and_read(
            seed * 100 + writer,
            admin.clone(),
            bases.clone(),
            channel.clone(),
            stop.clone(),
            history.clone(),
        )));
    }
    clients.push(tokio::spawn(listen(
        seed * 100 + 99,
        listener.token.clone().expect("token"),
        bases.clone(),
        channel.clone(),
        stop.clone(),
        history.clone(),
    )));

    let started = Instant::now();
    for step in &steps {
        tokio::time::sleep(step.gap).await;
        let node = &mut nodes[step.node];
        match step.fault {
            Fault::Kill => {
                node.kill();
                tokio::time::sleep(step.hold).await;
                node.restart();
                node.wait_ready().await;
            }
            Fault::Pause => {
                signal(node, "STOP");
                tokio::time::sleep(step.hold).await;
                signal(node, "CONT");
            }
        }
    }
    // Healed: every node runs. A last quiet stretch lets the clients finish what is in flight.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }
    let history = std::mem::take(&mut *history.lock());
    check(&admin, &bases, &channel, &history).await;
    eprintln!(
        "seed {seed}: {} faults ({} kills, {} pauses) in {:.1} s; {} acknowledged posts, {} \
         read-your-writes checks ({} unavailable), {} streams, {} resumes accepted, {} refused",
        steps.len(),
        steps.iter().filter(|s| s.fault == Fault::Kill).count(),
        steps.iter().filter(|s| s.fault == Fault::Pause).count(),
        started.elapsed().as_secs_f64(),
        history.acknowledged.len(),
        history.reads_checked,
        history.reads_unavailable,
        history.streams.len(),
        history.resumes_accepted,
        history.resumes_refused,
    );
}

/// A writer: posts through random nodes until stopped, each post retried with its
/// `pending_post_id` until acknowledged; after every other acknowledged post, reads it back on
/// a random node with `X-Confab-Applied`.
async fn write_and_read(
    seed: u64,
    author: Api,
    bases: Vec<String>,
    channel: String,
    stop: Arc<AtomicBool>,
    history: Arc<parking_lot::Mutex<History>>,
) {
    let mut rng = Rng(seed);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let message = format!("w{seed}-{n}");
        let first = rng.below(bases.len() as u64) as usize;
        let (post, index) = author
            .post_with_retries(&bases, first, &channel, &message, &message)
            .await;
        let id = post["id"].as_str().expect("post id").to_string();
        assert_eq!(
            post["message"],
            json!(message),
            "the acknowledged post is ours"
        );
        if n % 2 == 0 {
            let node = &bases[rng.below(bases.len() as u64) as usize];
            let applied = index.to_string();
            let read = author
                .on(node)
                .try_call_with(
                    "GET",
                    &format!("/posts/{id}"),
                    None,
                    &[("X-Confab-Applied", &applied)],
                    Some(Duration::from_secs(8)),
                )
                .await;
            let mut history = history.lock();
            match read {
                Ok(answer) if answer.status.is_success() => {
                    assert_eq!(answer.body["id"], json!(id), "read-your-writes on {node}");
                    history.reads_checked += 1;
                }
                Ok(answer) if answer.status == reqwest::StatusCode::NOT_FOUND => {
                    panic!("read-your-writes broken on {node}: {id} at {index} not found")
                }
                _ => history.reads_unavailable += 1,
            }
        }
        history.lock().acknowledged.push((id, message));
    }
}

/// The posted ids of `channel` among a socket's events.
fn posted_ids(events: &[Value], channel: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "posted")
        .map(|e| inner(&e["data"]["post"]))
        .filter(|post| post["channel_id"] == json!(channel))
        .filter_map(|post| post["id"].as_str().map(String::from))
        .collect()
}

/// A listener: a stream started with a hello on a random node, dropped every 0.5–2 s and
/// resumed on a random node; a refused resume (a new hello) ends the stream and starts another.
async fn listen(
    seed: u64,
    token: String,
    bases: Vec<String>,
    channel: String,
    stop: Arc<AtomicBool>,
    history: Arc<parking_lot::Mutex<History>>,
) {
    let mut rng = Rng(seed);
    // The current stream: its connection id, last seq, and posts so far.
    let mut stream: Option<(String, i64, Vec<String>)> = None;
    while !stop.load(Ordering::Relaxed) {
        let node = &bases[rng.below(bases.len() as u64) as usize];
        let query = match &stream {
            Some((id, last, _)) => format!("connection_id={id}&sequence_number={}", last + 1),
            None => String::new(),
        };
        let Ok(mut socket) =
            Socket::try_connect_query(node, &token, &query, Duration::from_secs(3)).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Some(first) = socket.next_frame(Duration::from_secs(3)).await else {
            // A paused node upgrades nothing further; try elsewhere (the stream is unchanged).
            continue;
        };
        if first["event"] == "hello" {
            let mut history = history.lock();
            if let Some((_, _, posts)) = stream.take() {
                history.resumes_refused += 1;
                history.streams.push(posts);
            }
            let id = first["data"]["connection_id"]
                .as_str()
                .expect("hello names the connection")
                .to_string();
            stream = Some((id, 0, Vec::new()));
        } else if let Some((_, last, posts)) = stream.as_mut() {
            // Accepted: the first frame is the stream's next event.
            assert_eq!(
                first["seq"],
                json!(*last + 1),
                "resume continues the seq: {first}"
            );
            *last += 1;
            posts.extend(posted_ids(std::slice::from_ref(&first), &channel));
            history.lock().resumes_accepted += 1;
        }
        let Some((_, last, posts)) = stream.as_mut() else {
            continue;
        };
        socket.last_seq = *last;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500 + rng.below(1500));
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || socket.next_json(left).await.is_none() {
                break;
            }
        }
        *last = socket.last_seq;
        posts.extend(posted_ids(&socket.events, &channel));
    }
    if let Some((_, _, posts)) = stream {
        history.lock().streams.push(posts);
    }
}

/// Every post of `channel` on `node`, oldest first (the channel's order there).
async fn channel_order(api: &Api, channel: &str) -> Option<Vec<(String, String)>> {
    let mut order = Vec::new();
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
        let ids = answer.body["order"].as_array()?.clone();
        if ids.is_empty() {
            break;
        }
        for id in ids {
            let id = id.as_str()?.to_string();
            let message = answer.body["posts"][&id]["message"].as_str()?.to_string();
            order.push((id, message));
        }
    }
    order.reverse();
    Some(order)
}

async fn check(admin: &Api, bases: &[String], channel: &str, history: &History) {
    let acknowledged: HashSet<&str> = history
        .acknowledged
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        acknowledged.len(),
        history.acknowledged.len(),
        "an acknowledgement named a post twice"
    );
    // Every node converges on one order holding every acknowledged post.
    let orders: Vec<Vec<(String, String)>> =
        eventually(HEAL_WAIT, "every node to hold every post", || async {
            let mut orders = Vec::new();
            for base in bases {
                let order = channel_order(&admin.on(base), channel).await?;
                let ids: HashSet<&str> = order.iter().map(|(id, _)| id.as_str()).collect();
                if !acknowledged.is_subset(&ids) {
                    return None;
                }
                orders.push(order);
            }
            orders.windows(2).all(|w| w[0] == w[1]).then_some(orders)
        })
        .await;
    let order = &orders[0];
    let mut ids = HashSet::new();
    let mut messages = HashSet::new();
    for (id, message) in order {
        assert!(ids.insert(id.as_str()), "post {id} listed twice");
        assert!(
            messages.insert(message.as_str()),
            "message {message} stored twice (a retry made a second post)"
        );
    }
    // Listener streams: each a gap-free, duplicate-free run of the channel's order.
    let position: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(at, (id, _))| (id.as_str(), at))
        .collect();
    for (n, stream) in history.streams.iter().enumerate() {
        let at: Vec<usize> = stream
            .iter()
            .map(|id| *position.get(id.as_str()).expect("a streamed post exists"))
            .collect();
        for pair in at.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "stream {n} skipped or repeated posts between positions {} and {}",
                pair[0],
                pair[1]
            );
        }
    }
    // Byte-identical replicas at the same applied index.
    eventually(HEAL_WAIT, "equal digests at one applied index", || async {
        let mut seen = Vec::new();
        for base in bases {
            let answer = admin
                .on(base)
                .try_call_with("GET", "/cluster/digest", None, &[], None)
                .await
                .ok()?;
            if !answer.status.is_success() || answer.body["stable"] != json!(true) {
                return None;
            }
            seen.push((
                answer.body["applied_index"].clone(),
                answer.body["digest"].clone(),
            ));
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
