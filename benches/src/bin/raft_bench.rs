//! Write path of a 3-node cluster on loopback, WAL sync on: committed commands/s and commit
//! latency for N concurrent writers (closed loop), and latency at a fixed rate (open loop: the
//! schedule does not wait for answers; latency counts from the scheduled time).
//!
//! `cargo run --release -p confab-bench --bin confab-raft-bench -- --writers 1,16,256 --seconds 10 --rate 1000`

use clap::Parser;
use confab_bench::{post, BUSY_CHANNEL, READER};
use confab_raft::{NodeConfig, RaftNode, Tuning};
use confab_storage::Engine;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Closed-loop runs, one per writer count.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    writers: Vec<u64>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Open-loop run at this many posts/s (0 to skip).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Write through a follower instead of the leader.
    #[arg(long)]
    via_follower: bool,
}

struct Cluster {
    nodes: Vec<RaftNode>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start_cluster() -> Cluster {
    let mut dirs = Vec::new();
    let mut engines = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Arc::new(Engine::open(dir.path().join("db")).expect("engine"));
        engines.push((dir.path().join("snapshots"), engine));
        dirs.push(dir);
    }
    let mut nodes = Vec::new();
    for (i, (snapshots, engine)) in engines.into_iter().enumerate() {
        let node = RaftNode::start(NodeConfig {
            node_id: i as u64 + 1,
            listen_addr: "127.0.0.1:0".into(),
            advertise_addr: None,
            dial: Default::default(),
            engine,
            secret: "bench-secret".into(),
            snapshot_dir: snapshots,
            tuning: Tuning::default(),
        })
        .await
        .expect("start node");
        nodes.push(node);
    }
    let members: BTreeMap<u64, String> = nodes
        .iter()
        .map(|n| (n.id(), n.advertise_addr().to_string()))
        .collect();
    nodes[0].initialize(members).await.expect("initialize");
    Cluster { nodes, _dirs: dirs }
}

async fn seed(node: &RaftNode) {
    // The fixture's users, team and channels, committed through Raft.
    for command in confab_bench::base_commands(20) {
        let written = node.write(command).await.expect("seed write");
        assert!(
            written.applied.result.is_ok(),
            "{:?}",
            written.applied.result
        );
    }
}

fn report(label: &str, hist: &Histogram<u64>, committed: u64, elapsed: Duration) {
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{label:>24}: {:>8.0} committed/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  max {:>7.2} ms  ({committed} writes)",
        committed as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0
    );
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let cluster = start_cluster().await;
        let mut leader = None;
        for _ in 0..200 {
            leader = cluster.nodes[0].leader();
            if leader.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let leader = leader.expect("a leader");
        let target = cluster
            .nodes
            .iter()
            .find(|n| (n.id() == leader) != args.via_follower)
            .expect("target node")
            .clone();
        seed(&target).await;
        let next_post = Arc::new(AtomicU64::new(50_000_000));
        println!(
            "3 nodes on loopback, WAL fsync on; writes through the {}",
            if args.via_follower {
                "follower"
            } else {
                "leader"
            }
        );
        for writers in &args.writers {
            let deadline = Instant::now() + Duration::from_secs(args.seconds);
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..*writers {
                let node = target.clone();
                let next = next_post.clone();
                tasks.push(tokio::spawn(async move {
                    let mut hist = Histogram::<u64>::new(3).expect("histogram");
                    while Instant::now() < deadline {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let command = post(n, BUSY_CHANNEL, READER + 1 + n % 20, None, 1_000 + n);
                        let sent = Instant::now();
                        if node.write(command).await.is_ok() {
                            let _ = hist.record(sent.elapsed().as_micros() as u64);
                        }
                    }
                    hist
                }));
            }
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            for task in tasks {
                if let Ok(h) = task.await {
                    let _ = hist.add(&h);
                }
            }
            report(
                &format!("{writers} writers"),
                &hist,
                hist.len(),
                started.elapsed(),
            );
        }
        if args.rate > 0 {
            let total = args.rate * args.seconds;
            let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
            let started = tokio::time::Instant::now();
            let mut tasks = Vec::with_capacity(total as usize);
            for i in 0..total {
                let scheduled = started + interval * i as u32;
                tokio::time::sleep_until(scheduled).await;
                let node = target.clone();
                let n = next_post.fetch_add(1, Ordering::Relaxed);
                tasks.push(tokio::spawn(async move {
                    let command = post(n, BUSY_CHANNEL, READER + 1 + n % 20, None, 1_000 + n);
                    node.write(command).await.ok()?;
                    Some(scheduled.elapsed().as_micros() as u64)
                }));
            }
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            for task in tasks {
                if let Ok(Some(us)) = task.await {
                    let _ = hist.record(us);
                }
            }
            report(
                &format!("open loop {} /s", args.rate),
                &hist,
                hist.len(),
                started.elapsed(),
            );
        }
        for node in &cluster.nodes {
            let _ = node.shutdown().await;
        }
    });
}
