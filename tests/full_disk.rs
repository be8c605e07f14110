//! A full disk on one node of three: the node's data dir is a small tmpfs (mounted by the test;
//! the tests run as root), filled by ordinary posts.
//!
//! What must hold: the other two nodes keep acknowledging every post while the full node
//! cannot write; the full node never answers a read as if it were current (a read that names
//! an index it has not applied waits and fails, it does not answer 404); once the disk has room
//! again (the tmpfs grown in place) and the node is started again if it stopped, it catches up
//! and holds every acknowledged post, exactly once, with a state digest equal to the others'.

mod common;

use common::{assert_equal_digests, eventually, list_post_ids, team_with, try_three_nodes_in, Api};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The full node's disk: RocksDB, the Raft log and the snapshots all live on it.
const SMALL_DISK: &str = "size=48m";
const GROWN_DISK: &str = "size=2g";
/// Posts of ~16 KB: the disk fills after a few thousand.
const MESSAGE_BYTES: usize = 16_000;

/// A tmpfs mounted at a path; unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the full-disk test makes a small disk for one node)"
        );
        Tmpfs(at.to_path_buf())
    }

    fn grow(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount the tmpfs bigger");
    }

    fn free_bytes(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .expect("run df");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_on_one_node_loses_nothing_and_the_node_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Tmpfs::mount(&dir.path().join("n3"), SMALL_DISK);
    let mut nodes = try_three_nodes_in(dir.path(), &[])
        .await
        .expect("3 nodes, the third on a small disk");
    let bases: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let admin = Api::signup(&bases[0], "admin").await;
    let (_team, channel) = team_with(&admin, "disk", &[]).await;

    // Fill node 3's disk with posts through node 1 (and 2), every one acknowledged, until node
    // 3 stops keeping up: it exited, or it cannot serve a post the others acknowledged.
    let filler = "x".repeat(MESSAGE_BYTES);
    let mut acknowledged = Vec::new();
    let mut n = 0;
    let node3 = admin.on(&bases[2]);
    let mut stuck = None;
    while stuck.is_none() {
        assert!(n < 20_000, "node 3 never ran out of its 48 MiB disk");
        let mut last = (String::new(), 0);
        for _ in 0..20 {
            n += 1;
            let message = format!("p{n} {filler}");
            let (post, index) = admin
                .post_with_retries(&bases[..2], n, &channel, &message, &format!("p{n}"))
                .await;
            last = (post["id"].as_str().expect("post id").to_string(), index);
            acknowledged.push(last.0.clone());
        }
        // The exit is checked first in every round: a node that stops on ENOSPC drops its
        // half-written SST, so the disk shows room again once it has gone.
        let exited = nodes[2]
            .child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
        if exited {
            stuck = Some("exited".to_string());
            break;
        }
        if disk.free_bytes() > 4 << 20 {
            continue;
        }
        // A read that names the index of a post node 3 has not applied must wait and fail,
        // never answer 404 as if the post did not exist.
        let read = node3
            .try_call_with(
                "GET",
                &format!("/posts/{}", last.0),
                None,
                &[("X-Confab-Applied", &last.1.to_string())],
                Some(Duration::from_secs(5)),
            )
            .await;
        match read {
            Ok(answer) if answer.status.is_success() => {}
            Ok(answer) => {
                assert_ne!(
                    answer.status,
                    reqwest::StatusCode::NOT_FOUND,
                    "a node that cannot apply answered a read as if it were current: {}",
                    answer.body
                );
                stuck = Some(format!("answers {} {}", answer.status, answer.body));
            }
            Err(error) => stuck = Some(format!("does not answer in time ({error})")),
        }
    }
    let node3_exited = stuck.as_deref() == Some("exited");
    eprintln!(
        "node 3's disk full after {n} posts ({} bytes free); node 3 {}",
        disk.free_bytes(),
        stuck.unwrap_or_default()
    );
    // The quorum of two goes on.
    for _ in 0..50 {
        n += 1;
        let message = format!("p{n} {filler}");
        let (post, _) = admin
            .post_with_retries(&bases[..2], n, &channel, &message, &format!("p{n}"))
            .await;
        acknowledged.push(post["id"].as_str().expect("post id").to_string());
    }

    // Room again: the node (restarted if it stopped) catches up.
    disk.grow(GROWN_DISK);
    if node3_exited {
        nodes[2].restart();
    }
    nodes[2].wait_ready().await;
    let wanted: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    eventually(
        Duration::from_secs(120),
        "node 3 to hold every acknowledged post",
        || async {
            let listed = list_post_ids(&node3, &channel).await?;
            wanted
                .iter()
                .all(|id| listed.contains(&id.to_string()))
                .then_some(())
        },
    )
    .await;
    assert_equal_digests(&admin, &bases, Duration::from_secs(120)).await;
    // Caught up (nothing is being applied any more, so pages do not shift): each post once.
    let listed = list_post_ids(&node3, &channel).await.expect("node 3 lists");
    let distinct: HashSet<&String> = listed.iter().collect();
    assert_eq!(
        distinct.len(),
        listed.len(),
        "a post is listed twice on node 3"
    );
    let made: Vec<&String> = listed
        .iter()
        .filter(|id| wanted.contains(id.as_str()))
        .collect();
    assert_eq!(
        made.len(),
        acknowledged.len(),
        "every acknowledged post once"
    );
    drop(nodes);
    drop(disk);
}
