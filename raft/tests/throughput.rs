//! A smoke measurement, not a benchmark (the workspace bench owns numbers): 3 nodes on
//! loopback, many concurrent writers on the leader. Run with `--ignored --nocapture`.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
#[ignore]
fn throughput_smoke() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cluster = Cluster::start(fast_tuning(), &[1, 2, 3]).await;
        let leader = cluster.wait_leader(&[]).await;
        let channel = seed(cluster.node(leader)).await;
        for writers in [1u64, 16, 256] {
            let total = if writers == 1 { 500 } else { 5000 };
            let started = Instant::now();
            let node = cluster.node(leader).node().clone();
            let base = 1_000_000 * writers;
            cluster
                .node(leader)
                .on(move |_| async move {
                    let mut tasks = Vec::new();
                    for w in 0..writers {
                        let node = node.clone();
                        tasks.push(tokio::spawn(async move {
                            let mut n = base + w;
                            while n < base + total {
                                node.write(post(n, channel, 1, "bench"))
                                    .await
                                    .expect("write");
                                n += writers;
                            }
                        }));
                    }
                    for task in tasks {
                        task.await.expect("writer");
                    }
                })
                .await;
            let elapsed = started.elapsed();
            let metrics = cluster.node(leader).node().metrics();
            println!(
                "{writers} writers: {:.0} writes/s, p50 ≤ {} µs, p99 ≤ {} µs",
                total as f64 / elapsed.as_secs_f64(),
                metrics.commit_latency.quantile_us(0.5),
                metrics.commit_latency.quantile_us(0.99)
            );
            assert!(elapsed < Duration::from_secs(120));
        }
    });
}
