//! WebSocket resume of a long-lived stream on a real 3-node cluster with resume windows of 256
//! events: a listener receives 2,000 events on node 1, drops, and resumes on node 2; receives
//! 1,000 more there, node 2 is killed with SIGKILL, and the stream resumes on node 3. Every
//! resume is accepted (no new `hello`), seq is contiguous over the stream's whole life, and
//! every acknowledged post arrives exactly once.

mod common;

use common::{eventually, inner, metrics, team_with, three_nodes_with, Api, Socket};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// Resume window per user, in events: every phase below is several windows long.
const WINDOW_EVENTS: &str = "256";

/// Posts `count` messages through every node in turn, 8 at a time, each with its own
/// `pending_post_id` and retried until acknowledged; returns their ids and the highest log
/// index among them.
async fn post_burst(
    author: &Api,
    nodes: &[String],
    channel: &str,
    tag: &str,
    count: usize,
) -> (Vec<String>, u64) {
    let posted: Vec<(Value, u64)> = stream::iter(0..count)
        .map(|n| {
            let pending = format!("{tag}-{n}");
            async move {
                author
                    .post_with_retries(nodes, n, channel, &format!("{tag} {n}"), &pending)
                    .await
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let newest = posted.iter().map(|(_, index)| *index).max().unwrap_or(0);
    let ids = posted
        .iter()
        .map(|(post, _)| post["id"].as_str().expect("post id").to_string())
        .collect();
    (ids, newest)
}

/// Reads `socket` until every post of `ids` has arrived (those it already received count).
async fn read_until(socket: &mut Socket, ids: &[String]) {
    let mut missing: HashSet<&str> = ids.iter().map(String::as_str).collect();
    for event in &socket.events {
        if let Some(id) = inner(&event["data"]["post"])["id"].as_str() {
            missing.remove(id);
        }
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(value) = socket.next_json(left).await else {
            panic!(
                "{} of {} posts never arrived (last seq {}): {missing:?}",
                missing.len(),
                ids.len(),
                socket.last_seq
            );
        };
        if value["event"] == "posted" {
            if let Some(id) = inner(&value["data"]["post"])["id"].as_str() {
                missing.remove(id);
            }
        }
    }
}

/// Waits until `node` has a stream checkpoint from a peer taken at `index` or later.
async fn wait_for_checkpoint(node: &str, index: u64) {
    eventually(WAIT, "a peer's checkpoint of the stream", || async move {
        let gauges = metrics(node).await;
        let newest = gauges
            .get("confab_ws_peer_checkpoint_index")
            .copied()
            .unwrap_or(0.0);
        (newest >= index as f64).then_some(())
    })
    .await;
}

/// Resumes the stream `connection_id`, whose last event the client got was `last_seq`, on
/// `node`, and checks the resume was accepted: the first frame is the stream's next event, not
/// a new `hello`.
async fn resume(node: &str, token: &str, connection_id: &str, last_seq: i64) -> Socket {
    let query = format!(
        "connection_id={connection_id}&sequence_number={}",
        last_seq + 1
    );
    let mut socket = Socket::connect_query(node, token, &query).await;
    socket.connection_id = connection_id.to_string();
    socket.last_seq = last_seq;
    let first = socket.next_json(WAIT).await.expect("a replayed event");
    assert_ne!(first["event"], "hello", "the resume was refused: {first}");
    assert_eq!(first["seq"], json!(last_seq + 1));
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_thousands_of_events_resumes_on_other_nodes_and_after_sigkill() {
    let (_dir, mut nodes) = three_nodes_with(&["--ws-window-events", WINDOW_EVENTS]).await;
    let bases: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let alice = Api::signup(&bases[0], "alice").await;
    let bob = Api::signup(&bases[1], "bob").await;
    let (_team_id, channel) = team_with(&alice, "long", &[&bob]).await;
    let token = bob.token.clone().expect("token");
    let mut acknowledged: Vec<String> = Vec::new();
    let mut history: Vec<Value> = Vec::new();

    // Node 1: 2,000 events live, then the socket drops and 20 posts are missed.
    let mut socket = Socket::connect(&bases[0], &token).await;
    let (ids, newest) = post_burst(&alice, &bases, &channel, "one", 2_000).await;
    read_until(&mut socket, &ids).await;
    acknowledged.extend(ids);
    wait_for_checkpoint(&bases[1], newest).await;
    history.extend(socket.events.iter().cloned());
    let (connection_id, last_seq) = (socket.connection_id.clone(), socket.last_seq);
    socket.close().await;
    let (missed, _) = post_burst(&alice, &bases, &channel, "missed-one", 20).await;
    acknowledged.extend(missed.iter().cloned());

    // Node 2 resumes it: the missed posts, then 1,000 live ones.
    let mut socket = resume(&bases[1], &token, &connection_id, last_seq).await;
    let (ids, newest) = post_burst(&alice, &bases, &channel, "two", 1_000).await;
    let mut wanted = missed;
    wanted.extend(ids.iter().cloned());
    read_until(&mut socket, &wanted).await;
    acknowledged.extend(ids);
    wait_for_checkpoint(&bases[2], newest).await;

    // Node 2 dies with the socket open; 20 posts are made through the others meanwhile.
    nodes[1].kill();
    let survivors = [bases[0].clone(), bases[2].clone()];
    let (missed, _) = post_burst(&alice, &survivors, &channel, "missed-two", 20).await;
    acknowledged.extend(missed.iter().cloned());
    history.extend(socket.events.iter().cloned());

    // Node 3 resumes it from node 2's checkpoint.
    let mut socket = resume(&bases[2], &token, &connection_id, socket.last_seq).await;
    read_until(&mut socket, &missed).await;
    history.extend(socket.events.iter().cloned());

    // Over the stream's whole life: seq 1, 2, 3, … with no gap or repeat across the three
    // sockets, one hello (the first), and each acknowledged post exactly once.
    let seqs: Vec<u64> = history
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..history.len() as u64).collect::<Vec<u64>>());
    let hellos = history.iter().filter(|e| e["event"] == "hello").count();
    assert_eq!(hellos, 1);
    let mut times: HashMap<String, usize> = HashMap::new();
    for event in history.iter().filter(|e| e["event"] == "posted") {
        let id = inner(&event["data"]["post"])["id"]
            .as_str()
            .expect("post id")
            .to_string();
        *times.entry(id).or_default() += 1;
    }
    assert_eq!(acknowledged.len(), 3_040);
    for id in &acknowledged {
        assert_eq!(
            times.get(id),
            Some(&1),
            "post {id} seen {:?} times",
            times.get(id)
        );
    }
    assert_eq!(
        times.len(),
        acknowledged.len(),
        "no post beyond those acknowledged"
    );
}
