//! Multi-node behaviour on real RocksDB and real HTTP on 127.0.0.1.

mod common;

use common::*;
use confab_raft::{AppliedEvent, Role, Tuning};
use confab_storage::Outcome;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Writes posts `from..to` round-robin through `via` concurrently; returns the highest index.
async fn write_posts(cluster: &Cluster, via: &[u64], from: u64, to: u64, channel: u64) -> u64 {
    let mut writes = Vec::new();
    for (i, n) in (from..to).enumerate() {
        let node = cluster.node(via[i % via.len()]);
        writes.push(node.write(post(n, channel, 1, &format!("message {n}"))));
    }
    let mut highest = 0;
    for (n, result) in (from..to).zip(futures_util::future::join_all(writes).await) {
        let result = result.unwrap_or_else(|e| panic!("post {n} failed: {e}"));
        assert!(
            matches!(result.applied.result, Ok(Outcome::Posted(_))),
            "post {n}: {:?}",
            result.applied.result
        );
        highest = highest.max(result.index);
    }
    highest
}

#[test]
fn three_nodes_follower_writes_leader_crash_and_restart() {
    runtime().block_on(async {
        let mut cluster = Cluster::start(fast_tuning(), &[1, 2, 3]).await;
        let leader = cluster.wait_leader(&[]).await;
        let followers = cluster.followers(leader);

        // A subscriber on a follower sees every outcome in log order.
        let mut events = cluster.node(followers[1]).node().subscribe();

        // Write through a follower; read it on every node with the returned index.
        let via = cluster.node(followers[0]);
        let channel = seed(via).await;
        let written = via
            .write(post(100, channel, 1, "hello"))
            .await
            .expect("write via follower");
        assert!(matches!(written.applied.result, Ok(Outcome::Posted(_))));
        for node in cluster.running() {
            node.wait_applied(written.index).await.expect("applied");
            let post = node.engine().reader().post(id(100)).expect("read");
            assert_eq!(
                post.map(|p| p.message),
                Some("hello".to_string()),
                "node {}",
                node.id
            );
        }
        let metrics = via.node().metrics();
        assert!(
            metrics.writes_forwarded >= 3 && metrics.writes_ok >= 3,
            "{metrics:?}"
        );
        assert!(metrics.commit_latency.count >= 3);

        let mut seen = Vec::new();
        while seen.len() < 3 {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Ok(event)) => {
                    if let AppliedEvent::Batch(batch) = event.as_ref() {
                        seen.extend(batch.iter().map(|a| a.index));
                    }
                }
                other => panic!("subscription ended: {other:?}"),
            }
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "log order: {seen:?}");

        // Linearizable read barrier from a follower.
        let barrier = via
            .on(|node| async move { node.linearizable_read_barrier().await })
            .await
            .expect("read barrier");
        assert!(barrier >= written.index);

        // Concurrent writes through every node.
        let all: Vec<u64> = cluster.running().map(|n| n.id).collect();
        let mut highest = write_posts(&cluster, &all, 200, 260, channel).await;

        // Kill the leader mid-stream: no clean shutdown.
        cluster.kill(leader).await;
        let new_leader = cluster.wait_leader(&[]).await;
        assert_ne!(new_leader, leader);
        let survivors: Vec<u64> = cluster.running().map(|n| n.id).collect();
        highest = highest.max(write_posts(&cluster, &survivors, 260, 300, channel).await);
        let acknowledged: Vec<u64> = (200..300).chain([100]).collect();
        cluster
            .assert_posts_everywhere(highest, &acknowledged)
            .await;

        // The killed node restarts from its data dir and catches up.
        cluster.restart(leader).await;
        highest = highest.max(write_posts(&cluster, &survivors, 300, 310, channel).await);
        let acknowledged: Vec<u64> = (200..310).chain([100]).collect();
        cluster
            .assert_posts_everywhere(highest, &acknowledged)
            .await;
        eventually("identical replicas", Duration::from_secs(10), || {
            let digests: BTreeSet<u64> = cluster
                .running()
                .map(|n| n.engine().state_digest().expect("digest"))
                .collect();
            async move { digests.len() == 1 }
        })
        .await;
    });
}

#[test]
fn learner_catches_up_by_snapshot_then_promoted_and_voter_removed() {
    runtime().block_on(async {
        let tuning = Tuning {
            snapshot_every_entries: 20,
            entries_kept_after_snapshot: 5,
            ..fast_tuning()
        };
        let mut cluster = Cluster::start(tuning, &[1, 2, 3]).await;
        let leader = cluster.wait_leader(&[]).await;
        let channel = seed(cluster.node(leader)).await;
        let mut highest = write_posts(&cluster, &[1, 2, 3], 1000, 1080, channel).await;

        // The leader's log is purged behind a snapshot.
        let leader_node = cluster.node(leader).node().clone();
        eventually(
            "the leader to purge its log",
            Duration::from_secs(20),
            || {
                let node = leader_node.clone();
                async move {
                    let status = node.status().await;
                    status
                        .members
                        .iter()
                        .find(|m| m.id == node.id())
                        .and_then(|m| m.purged_index)
                        .is_some_and(|p| p > 10)
                }
            },
        )
        .await;

        // A background writer keeps writing throughout the membership changes.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_flag = stop.clone();
        let background = cluster.node(leader).on(move |node| async move {
            let mut n = 5000;
            let mut done = Vec::new();
            while !stop_flag.load(std::sync::atomic::Ordering::Relaxed) {
                let result = node.write(post(n, channel, 1, "background")).await;
                done.push((n, result.map(|r| r.index).map_err(|e| e.to_string())));
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            done
        });

        let membership = async {
            cluster.start_node(4, "127.0.0.1:0", SECRET).await;
            let addr4 = cluster.node(4).addr.clone();
            let follower = cluster.followers(leader)[0];
            // Asked on a follower: forwarded to the leader.
            cluster
                .node(follower)
                .on(move |node| async move { node.add_learner(4, addr4).await })
                .await
                .expect("add learner");
            let learner = cluster.node(4).node();
            assert!(
                learner.metrics().snapshots_installed >= 1,
                "caught up by snapshot"
            );
            let posted = learner.engine().reader().post(id(1000)).expect("read");
            assert!(posted.is_some(), "learner has the purged history");

            cluster
                .node(follower)
                .on(|node| async move { node.promote(4).await })
                .await
                .expect("promote");
            let status = cluster
                .node(leader)
                .on(|node| async move { node.status().await })
                .await;
            assert_eq!(status.voters(), vec![1, 2, 3, 4], "{status:?}");

            let removed = cluster
                .followers(leader)
                .into_iter()
                .find(|id| *id != 4)
                .expect("a follower");
            cluster
                .node(4)
                .on(move |node| async move { node.remove_voter(removed).await })
                .await
                .expect("remove voter");
            let status = cluster
                .node(leader)
                .on(|node| async move { node.status().await })
                .await;
            assert_eq!(status.voters().len(), 3, "{status:?}");
            assert!(!status
                .members
                .iter()
                .any(|m| m.id == removed && m.role == Role::Voter));
            assert!(status
                .members
                .iter()
                .all(|m| m.reachable || m.id == removed));
            removed
        };
        let removed = membership.await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let background = background.await;
        assert!(!background.is_empty());
        for (n, result) in &background {
            let index = result
                .as_ref()
                .unwrap_or_else(|e| panic!("background post {n} failed: {e}"));
            highest = highest.max(*index);
        }
        highest = highest.max(write_posts(&cluster, &[leader, 4], 1100, 1120, channel).await);

        // Every acknowledged write is on every remaining member.
        cluster.kill(removed).await;
        let acknowledged: Vec<u64> = (1000..1080)
            .chain(1100..1120)
            .chain(background.iter().map(|(n, _)| *n))
            .collect();
        cluster
            .assert_posts_everywhere(highest, &acknowledged)
            .await;
    });
}

#[test]
fn five_nodes_lose_two_and_keep_committing() {
    runtime().block_on(async {
        let mut cluster = Cluster::start(fast_tuning(), &[1, 2, 3, 4, 5]).await;
        let leader = cluster.wait_leader(&[]).await;
        let channel = seed(cluster.node(leader)).await;
        let mut highest = write_posts(&cluster, &[1, 2, 3, 4, 5], 2000, 2020, channel).await;

        // Lose the leader and one follower at once.
        let follower = cluster.followers(leader)[0];
        cluster.kill(leader).await;
        cluster.kill(follower).await;
        cluster.wait_leader(&[]).await;
        let survivors: Vec<u64> = cluster.running().map(|n| n.id).collect();
        assert_eq!(survivors.len(), 3);
        highest = highest.max(write_posts(&cluster, &survivors, 2020, 2060, channel).await);
        let acknowledged: Vec<u64> = (2000..2060).collect();
        cluster
            .assert_posts_everywhere(highest, &acknowledged)
            .await;
    });
}

/// Sends one raw HTTP/1.1 request to the raft port and returns the status code.
fn raw_status(addr: &str, secret: Option<&str>, path: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let header = secret
        .map(|s| format!("x-confab-cluster-secret: {s}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\n{header}content-length: 3\r\nconnection: close\r\n\r\nabc"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[test]
fn peer_without_the_cluster_secret_is_refused() {
    runtime().block_on(async {
        let tuning = Tuning {
            membership_timeout: Duration::from_secs(2),
            ..fast_tuning()
        };
        let mut cluster = Cluster::start(tuning, &[1, 2, 3]).await;
        let leader = cluster.wait_leader(&[]).await;
        let addr = cluster.node(leader).addr.clone();

        let probe = addr.clone();
        let (none, wrong, right) = tokio::task::spawn_blocking(move || {
            (
                raw_status(&probe, None, "/raft/vote"),
                raw_status(&probe, Some("guess"), "/raft/append"),
                raw_status(&probe, Some(SECRET), "/raft/vote"),
            )
        })
        .await
        .expect("probe");
        assert_eq!(none, 401);
        assert_eq!(wrong, 401);
        assert_eq!(
            right, 400,
            "the right secret gets past the check (bad body)"
        );

        // A node configured with another secret cannot be replicated to.
        cluster.start_node(9, "127.0.0.1:0", "not-the-secret").await;
        let addr9 = cluster.node(9).addr.clone();
        let result = cluster
            .node(leader)
            .on(move |node| async move { node.add_learner(9, addr9).await })
            .await;
        assert!(
            result.is_err(),
            "a learner without the secret never catches up"
        );
        assert_eq!(cluster.node(9).node().applied_index(), 0);
        // The cluster itself keeps committing.
        let channel = seed(cluster.node(leader)).await;
        write_posts(&cluster, &[1, 2, 3], 3000, 3005, channel).await;
    });
}

#[test]
fn write_without_quorum_returns_one_error() {
    runtime().block_on(async {
        let tuning = Tuning {
            write_timeout: Duration::from_secs(2),
            ..fast_tuning()
        };
        let mut cluster = Cluster::start(tuning, &[1, 2, 3]).await;
        let leader = cluster.wait_leader(&[]).await;
        let channel = seed(cluster.node(leader)).await;
        let followers = cluster.followers(leader);
        cluster.kill(followers[0]).await;
        cluster.kill(followers[1]).await;
        let started = std::time::Instant::now();
        let result = cluster
            .node(leader)
            .write(post(4000, channel, 1, "lost?"))
            .await;
        assert!(
            matches!(result, Err(confab_raft::RaftNodeError::Timeout(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let metrics = cluster.node(leader).node().metrics();
        assert!(metrics.writes_failed >= 1, "{metrics:?}");
    });
}
