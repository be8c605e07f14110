//! Presence across real nodes: statuses derived from sockets on any node, the offline grace,
//! manual statuses and timed DND replicated (and surviving restarts), `status_change` on the
//! user's own sockets, away after the configured timeout, a killed node's users going offline,
//! custom statuses with their recent list, and the 400s and 403s.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(20);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The status `POST /users/status/ids` answers for `user` on `node`.
async fn status_on(api: &Api, node: &str, user: &str) -> Value {
    let answer = api
        .on(node)
        .ok("POST", "/users/status/ids", Some(json!([user])))
        .await;
    let list = answer.as_array().expect("an array of statuses");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["user_id"], user);
    list[0].clone()
}

/// Waits until every node in `nodes` reports `status` for `user`; returns the statuses.
async fn everywhere(api: &Api, nodes: &[String], user: &str, status: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for node in nodes {
        let found = eventually(WAIT, &format!("{user} {status} on {node}"), || async {
            let got = status_on(api, node, user).await;
            (got["status"] == status).then_some(got)
        })
        .await;
        seen.push(found);
    }
    seen
}

/// Waits for a `status_change` event on `socket` saying `status`.
async fn status_change(socket: &mut Socket, user: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = socket.wait_event("status_change", left).await;
        assert_eq!(event["data"]["user_id"], user);
        assert_eq!(event["broadcast"]["user_id"], user, "to the user only");
        if event["data"]["status"] == status {
            return;
        }
    }
}

/// The user's recent custom statuses, decoded from their preference.
async fn recent_custom_statuses(api: &Api) -> Value {
    let recent = api
        .ok(
            "GET",
            "/users/me/preferences/custom_status/name/recent_custom_statuses",
            None,
        )
        .await;
    inner(&recent["value"])
}

async fn set_status(api: &Api, node: &str, user: &str, status: &str, dnd_end: u64) -> Value {
    api.on(node)
        .ok(
            "PUT",
            &format!("/users/{user}/status"),
            Some(json!({"user_id": user, "status": status, "dnd_end_time": dnd_end})),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_is_cluster_wide_survives_restarts_and_dead_nodes() {
    let (_dir, mut nodes) =
        three_nodes_with(&["--offline-grace-secs", "3", "--presence-summary-secs", "2"]).await;
    let urls: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let alice = Api::signup(&urls[0], "alice").await;
    let bob = Api::signup(&urls[0], "bob").await;
    let a = alice.user_id.clone();

    // Nobody connected: offline everywhere, in Mattermost's shape.
    let first = status_on(&alice, &urls[1], &a).await;
    assert_eq!(first["status"], "offline");
    assert_eq!(first["manual"], false);
    assert!(first.get("last_activity_at").is_some() && first.get("dnd_end_time").is_some());

    // A socket on node 1: online on nodes 2 and 3 (and 1).
    let token = alice.token.clone().expect("token");
    let socket = Socket::connect(&urls[0], &token).await;
    let seen = everywhere(&alice, &urls, &a, "online").await;
    assert!(seen
        .iter()
        .all(|s| s["last_activity_at"].as_u64() > Some(0)));

    // Reconnecting to another node within the grace never shows offline.
    socket.close().await;
    let moved = Socket::connect(&urls[1], &token).await;
    let until = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < until {
        for node in &urls {
            let got = status_on(&alice, node, &a).await;
            assert_eq!(got["status"], "online", "no flap on {node}: {got}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Her last socket closes: offline everywhere after the grace.
    moved.close().await;
    everywhere(&alice, &urls, &a, "offline").await;

    // Manual statuses: every node agrees and her socket hears it.
    let mut socket = Socket::connect(&urls[0], &token).await;
    everywhere(&alice, &urls, &a, "online").await;
    let end = now_secs() + 3600;
    let answer = set_status(&alice, &urls[1], &a, "dnd", end).await;
    assert_eq!(
        (
            &answer["status"],
            &answer["manual"],
            &answer["dnd_end_time"]
        ),
        (&json!("dnd"), &json!(true), &json!(end))
    );
    status_change(&mut socket, &a, "dnd").await;
    for got in everywhere(&alice, &urls, &a, "dnd").await {
        assert_eq!(got["dnd_end_time"], end);
        assert_eq!(got["manual"], true);
    }
    set_status(&alice, &urls[2], &a, "away", 0).await;
    status_change(&mut socket, &a, "away").await;
    for got in everywhere(&alice, &urls, &a, "away").await {
        assert_eq!(
            (&got["manual"], &got["dnd_end_time"]),
            (&json!(true), &json!(0))
        );
    }

    // A timed DND ends by itself (the leader commits it) and the manual away comes back.
    let soon = now_secs() + 3;
    set_status(&alice, &urls[0], &a, "dnd", soon).await;
    status_change(&mut socket, &a, "dnd").await;
    status_change(&mut socket, &a, "away").await;
    for got in everywhere(&alice, &urls, &a, "away").await {
        assert_eq!(got["manual"], true, "the manual away is back: {got}");
    }
    // GET agrees with the list route.
    let one = alice
        .on(&urls[2])
        .ok("GET", &format!("/users/{a}/status"), None)
        .await;
    assert_eq!(
        (&one["status"], &one["user_id"]),
        (&json!("away"), &json!(a))
    );
    socket.close().await;

    // The manual status survives a restart of every node.
    for node in nodes.iter_mut() {
        node.restart();
    }
    for node in nodes.iter_mut() {
        node.wait_ready().await;
    }
    for got in everywhere(&alice, &urls, &a, "away").await {
        assert_eq!(got["manual"], true);
    }
    // Online by hand clears it (stored as not manual, as Mattermost does).
    let back = set_status(&alice, &urls[0], &a, "online", 0).await;
    assert_eq!(back["manual"], false);
    everywhere(&alice, &urls, &a, "offline").await;

    // Bob's only socket is on node 3; node 3 is killed: offline on the others within 30 s.
    let bob_socket = Socket::connect(&urls[2], bob.token.as_deref().expect("token")).await;
    everywhere(&bob, &urls, &bob.user_id, "online").await;
    nodes[2].kill();
    drop(bob_socket);
    let alive = urls[..2].to_vec();
    for node in &alive {
        eventually(
            Duration::from_secs(30),
            &format!("bob offline on {node} after node 3 died"),
            || async {
                let got = status_on(&bob, node, &bob.user_id).await;
                (got["status"] == "offline").then_some(())
            },
        )
        .await;
    }
    let metrics = metrics(&urls[0]).await;
    assert!(metrics.get("confab_presence_messages_received_total") > Some(&0.0));
    assert!(metrics.get("confab_presence_bytes_sent_total") > Some(&0.0));
    assert!(metrics.contains_key("confab_presence_users_online"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn away_after_the_timeout_and_the_websocket_actions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = Node::start(
        1,
        dir.path().to_path_buf(),
        &["--away-timeout-secs".into(), "2".into()],
    );
    node.wait_ready().await;
    let base = node.api.clone();
    let alice = Api::signup(&base, "alice").await;
    let bob = Api::signup(&base, "bob").await;
    let a = alice.user_id.clone();
    let mut socket = Socket::connect(&base, alice.token.as_deref().expect("token")).await;
    assert_eq!(status_on(&alice, &base, &a).await["status"], "online");

    // No activity for the timeout: away, and her socket hears it.
    status_change(&mut socket, &a, "away").await;
    let away = status_on(&alice, &base, &a).await;
    assert_eq!(
        (&away["status"], &away["manual"]),
        (&json!("away"), &json!(false))
    );

    // Active again through the socket: online, announced.
    socket
        .send(json!({"seq": 1, "action": "user_update_active_status", "data": {"user_is_active": true, "manual": false}}))
        .await;
    status_change(&mut socket, &a, "online").await;

    // get_statuses_by_ids: a map, offline for the unknown; bad ids are a 400 FAIL.
    socket
        .send(json!({"seq": 2, "action": "get_statuses_by_ids", "data": {"user_ids": [a, bob.user_id]}}))
        .await;
    let reply = reply_to(&mut socket, 2).await;
    assert_eq!(reply["status"], "OK");
    assert_eq!(reply["data"][&bob.user_id], "offline");
    assert!(matches!(
        reply["data"][&a].as_str(),
        Some("online" | "away")
    ));
    socket
        .send(json!({"seq": 3, "action": "get_statuses_by_ids", "data": {"user_ids": ["nope"]}}))
        .await;
    let reply = reply_to(&mut socket, 3).await;
    assert_eq!(
        (&reply["status"], &reply["error"]["status_code"]),
        (&json!("FAIL"), &json!(400))
    );
    // get_statuses: everyone with a known status.
    socket
        .send(json!({"seq": 4, "action": "get_statuses"}))
        .await;
    let reply = reply_to(&mut socket, 4).await;
    assert!(reply["data"].get(&a).is_some(), "{reply}");
    assert!(reply["data"].get(&bob.user_id).is_none());
    // A missing user_is_active is a 400.
    socket
        .send(json!({"seq": 5, "action": "user_update_active_status", "data": {}}))
        .await;
    assert_eq!(reply_to(&mut socket, 5).await["status"], "FAIL");

    // Inactive by hand: a manual away that the timeout never undoes.
    socket
        .send(json!({"seq": 6, "action": "user_update_active_status", "data": {"user_is_active": false, "manual": true}}))
        .await;
    eventually(WAIT, "manual away", || async {
        let got = status_on(&alice, &base, &a).await;
        (got["status"] == "away" && got["manual"] == true).then_some(())
    })
    .await;
    // Active by hand ends it.
    socket
        .send(json!({"seq": 7, "action": "user_update_active_status", "data": {"user_is_active": true, "manual": true}}))
        .await;
    eventually(WAIT, "manual status cleared", || async {
        let got = status_on(&alice, &base, &a).await;
        (got["manual"] == false).then_some(())
    })
    .await;
}

/// The reply to request `seq`, skipping events.
async fn reply_to(socket: &mut Socket, seq: u64) -> Value {
    loop {
        let frame = socket
            .next_json(WAIT)
            .await
            .unwrap_or_else(|| panic!("no reply to {seq}"));
        if frame["seq_reply"] == seq {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_statuses_validation_and_permissions() {
    let (_dir, node) = single_node().await;
    let base = node.api.clone();
    let admin = Api::signup(&base, "admin").await;
    let alice = Api::signup(&base, "alice").await;
    let bob = Api::signup(&base, "bob").await;
    let a = alice.user_id.clone();
    let mut socket = Socket::connect(&base, alice.token.as_deref().expect("token")).await;

    // Setting someone else's status needs a system admin.
    let denied = bob
        .call(
            "PUT",
            &format!("/users/{a}/status"),
            Some(json!({"user_id": a, "status": "away"})),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    assert_eq!(denied.body["status_code"], 403);
    let denied = bob
        .call(
            "PUT",
            &format!("/users/{a}/status/custom"),
            Some(json!({"emoji": "taco", "text": "mine"})),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let by_admin = admin
        .ok(
            "PUT",
            &format!("/users/{a}/status"),
            Some(json!({"user_id": a, "status": "offline"})),
        )
        .await;
    assert_eq!(
        (&by_admin["status"], &by_admin["manual"]),
        (&json!("offline"), &json!(true))
    );

    // Bad statuses are 400s in Mattermost's shape.
    for body in [
        json!({"user_id": bob.user_id, "status": "away"}),
        json!({"user_id": a, "status": "sleeping"}),
        json!({"user_id": a, "status": "ooo"}),
        json!({"user_id": a, "status": "dnd", "dnd_end_time": 1000}),
    ] {
        let answer = alice
            .call("PUT", &format!("/users/{a}/status"), Some(body.clone()))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
        assert_eq!(answer.body["status_code"], 400);
    }
    for body in [json!([]), json!(["short"]), json!({"not": "a list"})] {
        let answer = alice
            .call("POST", "/users/status/ids", Some(body.clone()))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
    }

    // A custom status: stored on the user as props.customStatus (a JSON string), announced
    // with user_updated, text cut to 100 characters, recent list kept.
    let long_text = "é".repeat(130);
    alice
        .ok(
            "PUT",
            "/users/me/status/custom",
            Some(json!({"emoji": "calendar", "text": long_text, "duration": "date_and_time", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    let updated = socket.wait_event("user_updated", WAIT).await;
    let props = inner(&updated["data"]["user"]["props"]["customStatus"]);
    assert_eq!(props["emoji"], "calendar");
    assert_eq!(props["text"].as_str().map(|t| t.chars().count()), Some(100));
    let me = alice.ok("GET", "/users/me", None).await;
    let custom = inner(&me["props"]["customStatus"]);
    assert_eq!(custom["duration"], "date_and_time");
    assert_eq!(custom["expires_at"], "2099-01-01T00:00:00Z");

    for n in 0..6 {
        alice
            .ok(
                "PUT",
                &format!("/users/{a}/status/custom"),
                Some(json!({"emoji": "taco", "text": format!("lunch {n}")})),
            )
            .await;
    }
    let list = recent_custom_statuses(&alice).await;
    let texts: Vec<&str> = list
        .as_array()
        .expect("recent list")
        .iter()
        .filter_map(|s| s["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["lunch 5", "lunch 4", "lunch 3", "lunch 2", "lunch 1"]
    );

    // Removing a recent entry, both routes; one that is not there is a 400.
    alice
        .ok(
            "DELETE",
            &format!("/users/{a}/status/custom/recent"),
            Some(json!({"emoji": "taco", "text": "lunch 4"})),
        )
        .await;
    alice
        .ok(
            "POST",
            &format!("/users/{a}/status/custom/recent/delete"),
            Some(json!({"emoji": "taco", "text": "lunch 3"})),
        )
        .await;
    let gone = alice
        .call(
            "POST",
            &format!("/users/{a}/status/custom/recent/delete"),
            Some(json!({"emoji": "taco", "text": "lunch 3"})),
        )
        .await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST);
    let recent = recent_custom_statuses(&alice).await;
    assert_eq!(recent.as_array().map(Vec::len), Some(3));

    // Validation: nothing to show, an unknown duration, an expiry in the past, a duration
    // without an expiry.
    for body in [
        json!({"emoji": "", "text": ""}),
        json!({"emoji": "taco", "duration": "fortnight", "expires_at": "2099-01-01T00:00:00Z"}),
        json!({"emoji": "taco", "duration": "one_hour", "expires_at": "2000-01-01T00:00:00Z"}),
        json!({"emoji": "taco", "duration": "today"}),
        json!({"emoji": "taco", "expires_at": "not a time"}),
    ] {
        let answer = alice
            .call(
                "PUT",
                &format!("/users/{a}/status/custom"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
    }

    // Clearing it.
    alice
        .ok("DELETE", &format!("/users/{a}/status/custom"), None)
        .await;
    let me = alice.ok("GET", "/users/me", None).await;
    assert!(me["props"].get("customStatus").is_none(), "{me}");
}

/// `seconds` since the epoch as RFC 3339 in UTC (`2026-12-03T06:30:00Z`), the form the apps
/// send in `expires_at`.
fn rfc3339(seconds: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(seconds as i64).expect("a time in range");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A custom status with an expiry is cleared by the server when it ends: every client hears
/// `user_updated` without it and the user record no longer carries it, on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expiring_custom_status_is_cleared_when_it_ends() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_796_160_600), "2026-12-01T21:30:00Z");
    let (_dir, node) = single_node().await;
    let base = node.api.clone();
    let alice = Api::signup(&base, "alice").await;
    let a = alice.user_id.clone();
    let mut watcher = Socket::connect(&base, alice.token.as_deref().expect("token")).await;

    // One that lasts (no expiry) and one that ends in three seconds.
    let ends = now_secs() + 3;
    let expires_at = rfc3339(ends);
    alice
        .ok(
            "PUT",
            "/users/me/status/custom",
            Some(json!({"emoji": "hamburger", "text": "lunch", "duration": "date_and_time", "expires_at": expires_at})),
        )
        .await;
    let set = watcher.wait_event("user_updated", WAIT).await;
    assert_eq!(set["data"]["user"]["id"], a.as_str());
    assert_eq!(
        inner(&set["data"]["user"]["props"]["customStatus"])["expires_at"],
        expires_at.as_str()
    );

    let cleared = watcher.wait_event("user_updated", WAIT).await;
    assert_eq!(cleared["data"]["user"]["id"], a.as_str());
    let props = &cleared["data"]["user"]["props"];
    assert!(
        props.get("customStatus").is_none() || props["customStatus"] == "",
        "the expired status is gone: {props}"
    );
    assert!(now_secs() >= ends, "not before it ends");
    let me = alice.ok("GET", &format!("/users/{a}"), None).await;
    assert!(me["props"].get("customStatus").is_none(), "{me}");

    // The recent list keeps it for picking again; a status without expiry stays.
    assert_eq!(recent_custom_statuses(&alice).await[0]["text"], "lunch");
    alice
        .ok(
            "PUT",
            "/users/me/status/custom",
            Some(json!({"emoji": "palm_tree", "text": "away"})),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let me = alice.ok("GET", "/users/me", None).await;
    assert_eq!(inner(&me["props"]["customStatus"])["text"], "away");
}

/// `EnableUserStatuses` off: no status is shown (404 for one, `[]` for many, `{}` on the
/// socket), none can be set, and no `status_change` is sent, even when the timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statuses_off_show_nothing_and_take_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = [
        "--away-timeout-secs",
        "1",
        "--enable-user-statuses",
        "false",
    ]
    .map(String::from);
    let mut node = Node::start(1, dir.path().to_path_buf(), &flags);
    node.wait_ready().await;
    let base = node.api.clone();
    let alice = Api::signup(&base, "alice").await;
    let a = alice.user_id.clone();
    let mut socket = Socket::connect(&base, alice.token.as_deref().expect("token")).await;

    let answer = alice.call("GET", &format!("/users/{a}/status"), None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert_eq!(answer.body["id"], "api.status.user_not_found.app_error");
    let many = alice
        .ok("POST", "/users/status/ids", Some(json!([a])))
        .await;
    assert_eq!(many, json!([]));
    let set = json!({"user_id": a, "status": "dnd", "dnd_end_time": 0});
    let answer = alice
        .call("PUT", &format!("/users/{a}/status"), Some(set))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    // A bad value is still a 400.
    let bad = json!({"user_id": a, "status": "sleepy"});
    let answer = alice
        .call("PUT", &format!("/users/{a}/status"), Some(bad))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);

    for (seq, request) in [
        (1, json!({"seq": 1, "action": "get_statuses"})),
        (
            2,
            json!({"seq": 2, "action": "get_statuses_by_ids", "data": {"user_ids": [a]}}),
        ),
        (
            3,
            json!({"seq": 3, "action": "user_update_active_status", "data": {"user_is_active": false, "manual": true}}),
        ),
    ] {
        socket.send(request).await;
        let reply = reply_to(&mut socket, seq).await;
        assert_eq!(reply["status"], "OK", "{reply}");
        if seq < 3 {
            assert_eq!(reply["data"], json!({}), "{reply}");
        }
    }
    // Three away timeouts pass: not one status_change.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Some(frame) = socket
        .next_json(until.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        assert_ne!(frame["event"], "status_change", "{frame}");
    }
    let answer = alice.call("GET", &format!("/users/{a}/status"), None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// A member's `mention_count` in `channel` as node `node` has it.
async fn mention_count_on(api: &Api, node: &str, channel: &str, user: &str) -> u64 {
    api.on(node)
        .ok("GET", &format!("/channels/{channel}/members/{user}"), None)
        .await["mention_count"]
        .as_u64()
        .expect("a mention count")
}

/// `@here` is a mention only for the members online somewhere in the cluster when it is posted
/// (Mattermost's rule): the node taking the post decides from its presence view, and every node
/// counts the same. `@channel` still counts for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn here_is_a_mention_only_for_members_online_when_it_is_posted() {
    let (_dir, nodes) = three_nodes_with(&[]).await;
    let urls: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let (alice, bob, carol, _team, public, _private) = team_fixture(&urls[0]).await;
    // bob has a socket on node 3; carol has none anywhere.
    let bob_socket = Socket::connect(&urls[2], bob.token.as_deref().expect("token")).await;
    everywhere(&bob, &urls, &bob.user_id, "online").await;
    everywhere(&carol, &urls, &carol.user_id, "offline").await;
    // Posted through node 2.
    for message in ["@here standup in 5", "and now @channel"] {
        alice
            .on(&urls[1])
            .ok(
                "POST",
                "/posts",
                Some(json!({"channel_id": public, "message": message})),
            )
            .await;
    }
    for node in &urls {
        let counts = eventually(WAIT, &format!("both posts on {node}"), || async {
            let bob_count = mention_count_on(&alice, node, &public, &bob.user_id).await;
            let carol_count = mention_count_on(&alice, node, &public, &carol.user_id).await;
            (bob_count + carol_count >= 3).then_some((bob_count, carol_count))
        })
        .await;
        assert_eq!(counts, (2, 1), "(bob, carol) on {node}");
    }
    drop(bob_socket);
}
