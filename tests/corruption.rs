//! A corrupted data dir: a node whose SST file has flipped bits refuses to start (it reads its
//! whole data dir with checksums first) instead of serving from it, and the documented repair
//! works under a live cluster: remove the node, drop its data dir, add a new node in its place,
//! which is rebuilt from a snapshot (the log behind it was purged) and ends byte-identical.

mod common;

use common::{
    assert_equal_digests, eventually, initial_members, list_post_ids, team_with,
    try_three_nodes_in, Api, Node, SECRET,
};
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Small memtables, so posts reach SST files quickly; frequent snapshots, so a new node must
/// install one.
const EXTRA: [&str; 4] = ["--write-buffer-mib", "1", "--snapshot-every", "200"];

/// The `.sst` files of the posts' column family under `dir`, as RocksDB's own LOG names the
/// tables it writes (`[postid_post] … table #N`), biggest first. Posts are never range-deleted,
/// so a full scan reads every block of a live one (a Raft log file could be covered by a purge's
/// range tombstone, whose blocks a scan may skip and a compaction drops). Some files listed may
/// not be live: a compaction's output written but not yet installed when the node was killed,
/// or an input not yet deleted; RocksDB drops those at the next open without reading them.
fn post_ssts(dir: &Path) -> Vec<PathBuf> {
    let mut numbers = HashSet::new();
    let entries = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("LOG") {
            continue;
        }
        let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("[postid_post]")) {
            if let Some((_, after)) = line.split_once("table #") {
                let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
                if let Ok(number) = digits.parse::<u64>() {
                    numbers.insert(number);
                }
            }
        }
    }
    let mut files: Vec<(u64, PathBuf)> = numbers
        .into_iter()
        .map(|n| dir.join(format!("{n:06}.sst")))
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.len(), path)))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files.into_iter().map(|(_, path)| path).collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Flips every bit of 64 bytes near the start of the file: inside its first data block (a
/// block-based table starts with its data blocks, which a full scan reads; the filter and index
/// blocks at the end are not all read by one).
fn flip_bits(path: &Path) {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open sst");
    let at = 256;
    let mut bytes = [0u8; 64];
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.read_exact(&mut bytes).expect("read");
    for byte in &mut bytes {
        *byte ^= 0xff;
    }
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.write_all(&bytes).expect("write");
    file.sync_all().expect("sync");
}

fn cluster_cli(api: &str, token: &str, action: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["cluster", "--api", api, "--token", token])
        .args(action)
        .output()
        .expect("run confab cluster");
    assert!(
        output.status.success(),
        "confab cluster {action:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupted_sst_is_refused_at_start_and_the_node_is_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = try_three_nodes_in(dir.path(), &EXTRA)
        .await
        .expect("3 nodes");
    let bases: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let admin = Api::signup(&bases[0], "admin").await;
    let token = admin.token.clone().expect("admin token");
    let (_team, channel) = team_with(&admin, "sst", &[]).await;

    // Posts of 4 KB that do not compress away, until node 3 has SST files of some size.
    let mut acknowledged = Vec::new();
    let db3 = nodes[2].dir.join("data").join("db");
    let mut n = 0;
    while post_ssts(&db3)
        .first()
        .is_none_or(|p| file_len(p) < 256 << 10)
    {
        assert!(n < 5_000, "node 3 wrote no posts' SST file of 256 KiB");
        n += 1;
        let noise: String = (0..512u64)
            .map(|i| {
                format!(
                    "{:08x}",
                    (n * 7919 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32
                )
            })
            .collect();
        let (post, _) = admin
            .post_with_retries(&bases, n as usize, &channel, &noise, &format!("p{n}"))
            .await;
        acknowledged.push(post["id"].as_str().expect("post id").to_string());
    }

    // Node 3 dies; a block of each of its posts' SST files rots. Each, not only the biggest:
    // the biggest may be a compaction's output the kill left uninstalled, which the next open
    // deletes unread.
    nodes[2].kill();
    let ssts = post_ssts(&db3);
    assert!(!ssts.is_empty(), "node 3 has posts' SST files");
    for sst in ssts.iter().filter(|p| file_len(p) > 4096) {
        flip_bits(sst);
    }

    // It refuses to start, saying why, rather than serve from the damaged data.
    let (api3, raft3) = nodes[2].ports();
    let started = Instant::now();
    let args = nodes[2].args().to_vec();
    // A node that started anyway is killed after 60 s and fails the test.
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("serve")
            .args(&args)
            .env("CONFAB_CLUSTER_SECRET", SECRET)
            .env("CONFAB_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run confab serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut exited = false;
        while !exited && Instant::now() < deadline {
            exited = matches!(child.try_wait(), Ok(Some(_)));
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        (exited, child.wait_with_output().expect("node output"))
    })
    .await
    .expect("join");
    let (exited, output) = output;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        exited && !output.status.success(),
        "a node with corrupted SST files {ssts:?} was still running after 60 s"
    );
    assert!(
        stderr.contains("is corrupted") && stderr.contains("refusing to start"),
        "the refusal says why: {stderr}"
    );
    eprintln!(
        "refused in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        stderr.trim()
    );

    // The repair, while the cluster takes posts: remove node 3, drop its data dir, add node 4
    // in its place.
    cluster_cli(&bases[0], &token, &["remove", "--node-id", "3"]);
    for _ in 0..300 {
        n += 1;
        let message = format!("after the removal {n}");
        let (post, _) = admin
            .post_with_retries(
                &bases[..2],
                n as usize,
                &channel,
                &message,
                &format!("p{n}"),
            )
            .await;
        acknowledged.push(post["id"].as_str().expect("post id").to_string());
    }
    let node4_dir = dir.path().join("n4");
    std::fs::create_dir_all(&node4_dir).expect("node dir");
    let members = initial_members(nodes.iter().take(3).map(|n| n.ports().1));
    let mut args = vec!["--initial-members".to_string(), members];
    args.extend(EXTRA.iter().map(|a| a.to_string()));
    nodes[2] = Node::start_on(4, node4_dir, api3, raft3, &args);
    nodes[2].wait_ready().await;
    cluster_cli(
        &bases[0],
        &token,
        &[
            "add",
            "--node-id",
            "4",
            "--raft-addr",
            &format!("127.0.0.1:{raft3}"),
        ],
    );

    let wanted: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let node4 = admin.on(&bases[2]);
    eventually(
        Duration::from_secs(120),
        "node 4 to hold every acknowledged post",
        || async {
            let listed = list_post_ids(&node4, &channel).await?;
            let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
            wanted.is_subset(&listed).then_some(())
        },
    )
    .await;
    assert_equal_digests(&admin, &bases, Duration::from_secs(120)).await;
    // The new node installed a snapshot: the log it would otherwise replay was purged.
    let status = admin.ok("GET", "/cluster/status", None).await;
    let purged = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["purged_index"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        purged > 0,
        "the leader's log was purged behind a snapshot: {status}"
    );
}
