//! Memory stays within its configured bounds as a big team signs up: a real 3-node cluster,
//! thousands of users joining one team, and the hub's own byte counts read from `/metrics`.

mod common;

use common::{eventually, metrics as gauges, three_nodes_with, Api};
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use std::time::Duration;

/// Users who join the team (each join is two broad events: town square and off-topic).
const JOINS: usize = 2_500;
/// The broad ring's configured bound, MiB.
const BROAD_MIB: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_team_signing_up_keeps_broad_event_memory_within_its_bound() {
    let broad_mib = BROAD_MIB.to_string();
    let (_dir, nodes) = three_nodes_with(&[
        "--ws-broad-mib",
        &broad_mib,
        "--ws-broad-events",
        "1000000",
        "--password-hash-memory-kib",
        "64",
        "--password-hash-iterations",
        "1",
    ])
    .await;
    let bases: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let admin = Api::signup(&bases[0], "admin").await;
    let team = admin
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": "big", "display_name": "Big", "type": "O"})),
        )
        .await;
    let team_id = team["id"].as_str().expect("team id").to_string();
    // Sign-ups and joins through every node, 32 at a time.
    let joined = stream::iter(0..JOINS)
        .map(|n| {
            let base = bases[n % bases.len()].clone();
            let admin = admin.on(&base);
            let team_id = team_id.clone();
            async move {
                let anon = Api::new(&base);
                let user = anon
                    .ok(
                        "POST",
                        "/users",
                        Some(json!({"username": format!("member{n}"), "email": format!("member{n}@example.com"), "password": "passw0rd!"})),
                    )
                    .await;
                let user_id = user["id"].as_str().expect("user id").to_string();
                admin
                    .ok(
                        "POST",
                        &format!("/teams/{team_id}/members"),
                        Some(json!({"team_id": team_id, "user_id": user_id})),
                    )
                    .await;
            }
        })
        .buffer_unordered(32)
        .count()
        .await;
    assert_eq!(joined, JOINS);
    let bound = (BROAD_MIB << 20) as f64;
    for base in &bases {
        // Every node has applied (and published) every join once its ring stops growing
        // past the count the joins make.
        let expected = 2.0 * (JOINS as f64 - 256.0);
        let metrics = eventually(Duration::from_secs(60), "every join published", || {
            let base = base.clone();
            async move {
                let metrics = gauges(&base).await;
                (metrics
                    .get("confab_ws_broad_events")
                    .copied()
                    .unwrap_or(0.0)
                    >= expected)
                    .then_some(metrics)
            }
        })
        .await;
        let bytes = metrics["confab_ws_broad_bytes"];
        eprintln!(
            "{base}: broad ring {} events in {bytes} bytes (bound {bound}), member cache {} ids, RSS {} bytes",
            metrics["confab_ws_broad_events"],
            metrics.get("confab_ws_member_cache_ids").copied().unwrap_or(0.0),
            metrics.get("confab_process_resident_bytes").copied().unwrap_or(0.0),
        );
        assert!(bytes <= bound, "{base}: broad ring {bytes} bytes > {bound}");
        assert!(bytes > 0.0, "{base}: the ring is counted");
        // Nothing was evicted: each join's audience cost a tree path, not a member list
        // (2,500 copies of a 2,500-member list would be ~100 MB).
        assert!(
            bytes / metrics["confab_ws_broad_events"] < 4096.0,
            "{base}: {bytes} bytes for {} events",
            metrics["confab_ws_broad_events"]
        );
        for gauge in [
            "confab_process_resident_bytes",
            "confab_rocksdb_block_cache_bytes",
            "confab_rocksdb_write_buffer_bytes",
            "confab_ws_window_bytes",
            "confab_ws_member_cache_ids",
        ] {
            assert!(metrics.contains_key(gauge), "{base}: {gauge} missing");
        }
        assert!(metrics["confab_process_resident_bytes"] > 0.0);
    }
}
