//! A real 3-node cluster: events cross nodes, private posts stay private, and a client resumes on
//! another node with exactly the events it missed.

mod common;

use common::{eventually, inner, three_nodes, Api, Socket};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_nodes_and_resume_anywhere() {
    let (_dir, nodes) = three_nodes().await;
    let (n1, n2, n3) = (&nodes[0].api, &nodes[1].api, &nodes[2].api);
    let alice = Api::signup(n1, "alice").await;
    let bob = Api::signup(n3, "bob").await;
    let carol = Api::signup(n2, "carol").await;
    let team = alice
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": "c3", "display_name": "C3", "type": "O"})),
        )
        .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    for user in [&bob, &carol] {
        alice
            .ok(
                "POST",
                &format!("/teams/{team_id}/members"),
                Some(json!({"team_id": team_id, "user_id": user.user_id})),
            )
            .await;
    }
    let public = alice
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/town-square"),
            None,
        )
        .await;
    let public = public["id"].as_str().unwrap().to_string();
    let private = alice
        .ok("POST", "/channels", Some(json!({"team_id": team_id, "name": "secret", "display_name": "Secret", "type": "P"})))
        .await;
    let private = private["id"].as_str().unwrap().to_string();

    // bob listens on node 3, carol on node 2; alice posts on node 1.
    let mut bob_socket = Socket::connect(n3, bob.token.as_deref().unwrap()).await;
    let mut carol_socket = Socket::connect(n2, carol.token.as_deref().unwrap()).await;
    let post = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "hello from node 1"})),
        )
        .await;
    let posted = bob_socket.wait_event("posted", WAIT).await;
    assert_eq!(inner(&posted["data"]["post"])["id"], post["id"]);
    carol_socket.wait_event("posted", WAIT).await;

    // A private channel's post never reaches a non-member's socket.
    alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": private, "message": "for alice only"})),
        )
        .await;
    alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "marker"})),
        )
        .await;
    let marker = bob_socket.wait_event("posted", WAIT).await;
    assert_eq!(
        inner(&marker["data"]["post"])["message"],
        "marker",
        "the private post was not delivered first"
    );
    assert!(bob_socket
        .events
        .iter()
        .all(|e| inner(&e["data"]["post"])["channel_id"] != json!(private)));

    // Reads from a replica with read-your-writes: bob's own write is visible on node 3, and
    // alice's writes are visible on node 2 once it applied the index she got.
    let answer = alice
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "indexed"})),
        )
        .await;
    let index = answer
        .headers
        .get("x-confab-applied")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let client = reqwest::Client::new();
    let page: serde_json::Value = client
        .get(format!("{n2}/api/v4/channels/{public}/posts?per_page=1"))
        .header(
            "Authorization",
            format!("Bearer {}", carol.token.as_deref().unwrap()),
        )
        .header("X-Confab-Applied", index)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["order"][0], answer.body["id"]);

    // bob drops his connection, misses two posts, and resumes on node 1.
    let last_seq = bob_socket.wait_event("posted", WAIT).await["seq"]
        .as_i64()
        .unwrap();
    let connection_id = bob_socket.connection_id.clone();
    bob_socket.close().await;
    let missed_1 = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "missed 1"})),
        )
        .await;
    let missed_2 = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "missed 2"})),
        )
        .await;
    let mut resumed = Socket::connect_query(
        n1,
        bob.token.as_deref().unwrap(),
        &format!(
            "connection_id={connection_id}&sequence_number={}",
            last_seq + 1
        ),
    )
    .await;
    resumed.last_seq = last_seq;
    let first = resumed.next_json(WAIT).await.expect("a replayed event");
    assert_ne!(
        first["event"], "hello",
        "resumed without a new hello: {first}"
    );
    assert_eq!(first["seq"], json!(last_seq + 1));
    assert_eq!(inner(&first["data"]["post"])["id"], missed_1["id"]);
    let second = resumed.wait_event("posted", WAIT).await;
    assert_eq!(inner(&second["data"]["post"])["id"], missed_2["id"]);
    assert_eq!(second["seq"], json!(last_seq + 2));
    // And live events continue with the same numbering.
    let live = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "live"})),
        )
        .await;
    let next = resumed.wait_event("posted", WAIT).await;
    assert_eq!(inner(&next["data"]["post"])["id"], live["id"]);
    resumed.close().await;
    carol_socket.close().await;

    // A session used on every node (so each node has it cached) ends everywhere at logout on
    // one of them.
    for node in [n1, n2, n3] {
        assert_eq!(
            carol.on(node).ok("GET", "/users/me", None).await["username"],
            "carol"
        );
    }
    let logout = carol.call("POST", "/users/logout", None).await;
    assert!(logout.status.is_success(), "{}", logout.body);
    for node in [n1, n2, n3] {
        let on_node = carol.on(node);
        eventually(WAIT, "the logout to reach every node", || {
            let on_node = &on_node;
            async move {
                let status = on_node.call("GET", "/users/me", None).await.status;
                (status == reqwest::StatusCode::UNAUTHORIZED).then_some(())
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_status_and_a_node_joins() {
    let (dir, nodes) = three_nodes().await;
    let admin = Api::signup(&nodes[0].api, "admin").await;
    let status = admin.ok("GET", "/cluster/status", None).await;
    assert_eq!(status["members"].as_array().unwrap().len(), 3);
    assert!(status["leader"].as_u64().is_some());
    let user = Api::signup(&nodes[1].api, "plain").await;
    assert_eq!(
        user.call("GET", "/cluster/status", None).await.status,
        reqwest::StatusCode::FORBIDDEN
    );

    // A 4th node joins through node 2's API and becomes a voter.
    let node_dir = dir.path().join("n4");
    std::fs::create_dir_all(&node_dir).unwrap();
    let mut fourth =
        common::Node::start(4, node_dir, &["--join".to_string(), nodes[1].api.clone()]);
    fourth.wait_ready().await;
    common::eventually(Duration::from_secs(60), "node 4 to become a voter", || {
        let admin = admin.clone();
        async move {
            let status = admin.ok("GET", "/cluster/status", None).await;
            status["members"]
                .as_array()?
                .iter()
                .any(|m| m["id"] == 4 && m["role"] == "voter")
                .then_some(())
        }
    })
    .await;
    // The CLI works against it.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "cluster",
            "--api",
            &fourth.api,
            "--token",
            admin.token.as_deref().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("\"voter\""), "{text}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "cluster",
            "--api",
            &nodes[0].api,
            "--token",
            admin.token.as_deref().unwrap(),
            "remove",
            "--node-id",
            "4",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The cluster keeps accepting writes.
    admin
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": "after", "display_name": "After"})),
        )
        .await;
}
