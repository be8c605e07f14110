//! A real 3-node cluster: events cross nodes, private posts stay private, a client resumes on
//! another node with exactly the events it missed, and a post retried with its
//! `pending_post_id` through other nodes is made once.

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

/// The post's fields a retry must reproduce exactly.
fn post_identity(post: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    (post["id"].clone(), post["create_at"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_retried_through_other_nodes_is_made_once() {
    let (_dir, nodes) = three_nodes().await;
    let (n1, n2, n3) = (&nodes[0].api, &nodes[1].api, &nodes[2].api);
    let alice = Api::signup(n1, "alice").await;
    let bob = Api::signup(n2, "bob").await;
    let team = alice
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": "idem", "display_name": "Idem", "type": "O"})),
        )
        .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    alice
        .ok(
            "POST",
            &format!("/teams/{team_id}/members"),
            Some(json!({"team_id": team_id, "user_id": bob.user_id})),
        )
        .await;
    let channel = alice
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/town-square"),
            None,
        )
        .await;
    let channel = channel["id"].as_str().unwrap().to_string();
    let mut bob_socket = Socket::connect(n3, bob.token.as_deref().unwrap()).await;

    // The web app's retry: the same body, same pending_post_id, first to node 1, then to node 2.
    let once_pending = format!("{}:1700000000001", alice.user_id);
    let once =
        json!({"channel_id": channel, "message": "once @bob", "pending_post_id": once_pending});
    let first = alice.call("POST", "/posts", Some(once.clone())).await;
    assert_eq!(first.status, reqwest::StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["pending_post_id"], json!(once_pending));
    let retry = alice
        .on(n2)
        .call("POST", "/posts", Some(once.clone()))
        .await;
    assert_eq!(retry.status, reqwest::StatusCode::CREATED, "{}", retry.body);
    assert_eq!(post_identity(&retry.body), post_identity(&first.body));
    assert_eq!(retry.body["pending_post_id"], json!(once_pending));
    assert_eq!(retry.body["message"], json!("once @bob"));

    // Three attempts at once, one through each node.
    let concurrent_pending = format!("{}:1700000000002", alice.user_id);
    let concurrent = json!({"channel_id": channel, "message": "concurrent", "pending_post_id": concurrent_pending});
    let (on1, on2, on3) = (alice.on(n1), alice.on(n2), alice.on(n3));
    let (a, b, c) = tokio::join!(
        on1.call("POST", "/posts", Some(concurrent.clone())),
        on2.call("POST", "/posts", Some(concurrent.clone())),
        on3.call("POST", "/posts", Some(concurrent.clone())),
    );
    for answer in [&a, &b, &c] {
        assert_eq!(
            answer.status,
            reqwest::StatusCode::CREATED,
            "{}",
            answer.body
        );
        assert_eq!(post_identity(&answer.body), post_identity(&a.body));
        assert_eq!(answer.body["pending_post_id"], json!(concurrent_pending));
    }

    // A marker posted last: once bob's socket has it, every earlier event was delivered.
    let marker = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel, "message": "marker"})),
        )
        .await;
    loop {
        let posted = bob_socket.wait_event("posted", WAIT).await;
        if inner(&posted["data"]["post"])["id"] == marker["id"] {
            break;
        }
    }
    bob_socket
        .assert_no_event("posted", Duration::from_millis(500))
        .await;
    let posted: Vec<serde_json::Value> = bob_socket
        .events
        .iter()
        .filter(|e| e["event"] == "posted")
        .map(|e| inner(&e["data"]["post"]))
        .collect();
    let ids: Vec<&serde_json::Value> = posted.iter().map(|p| &p["id"]).collect();
    assert_eq!(
        ids,
        vec![&first.body["id"], &a.body["id"], &marker["id"]],
        "exactly one posted event per post"
    );
    assert_eq!(posted[0]["pending_post_id"], json!(once_pending));

    // Every node's replica holds each post once, and bob's counters moved once.
    for node in [n1, n2, n3] {
        let on_node = bob.on(node);
        let channel = &channel;
        let messages = eventually(WAIT, "the marker on every node", || {
            let on_node = &on_node;
            async move {
                let page = on_node
                    .ok(
                        "GET",
                        &format!("/channels/{channel}/posts?per_page=50"),
                        None,
                    )
                    .await;
                let posts = &page["posts"];
                let messages: Vec<String> = page["order"]
                    .as_array()?
                    .iter()
                    .filter_map(|id| posts[id.as_str()?]["message"].as_str())
                    .map(String::from)
                    .collect();
                messages.iter().any(|m| m == "marker").then_some(messages)
            }
        })
        .await;
        assert_eq!(
            messages,
            vec!["marker", "concurrent", "once @bob"],
            "node {node}: {messages:?}"
        );
        let unread = on_node
            .ok(
                "GET",
                &format!("/users/{}/channels/{channel}/unread", bob.user_id),
                None,
            )
            .await;
        assert_eq!(unread["mention_count"], json!(1), "node {node}: {unread}");
    }

    // An absurd pending_post_id is refused before it reaches the log.
    let refused = alice
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel, "message": "x", "pending_post_id": "p".repeat(65)})),
        )
        .await;
    assert_eq!(
        refused.status,
        reqwest::StatusCode::BAD_REQUEST,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["id"],
        json!("model.post.is_valid.pending_post_id.app_error")
    );
    bob_socket.close().await;
}

/// The channel's messages on one node's replica, newest first, once `expected` many are there.
async fn messages_on(api: &Api, channel: &str, expected: usize) -> Vec<String> {
    eventually(WAIT, "the channel's posts on a node", || async move {
        let page = api
            .call(
                "GET",
                &format!("/channels/{channel}/posts?per_page=50"),
                None,
            )
            .await;
        let posts = &page.body["posts"];
        let messages: Vec<String> = page.body["order"]
            .as_array()?
            .iter()
            .filter_map(|id| posts[id.as_str()?]["message"].as_str())
            .map(String::from)
            .collect();
        (messages.len() >= expected).then_some(messages)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_leader_change_and_a_restart_finds_the_original() {
    let (_dir, mut nodes) = three_nodes().await;
    let alice = Api::signup(&nodes[0].api, "alice").await;
    let team = alice
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": "failover", "display_name": "Failover", "type": "O"})),
        )
        .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    let channel = alice
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/town-square"),
            None,
        )
        .await;
    let channel = channel["id"].as_str().unwrap().to_string();
    let status = alice.ok("GET", "/cluster/status", None).await;
    let leader = status["leader"].as_u64().expect("a leader") as usize - 1;
    let first_node = (leader + 1) % 3;
    let retry_node = (leader + 2) % 3;

    // The first attempt goes through a follower; then the leader dies, and the client's retry
    // reaches the other follower, which has to wait for a new leader.
    let pending = format!("{}:1700000000003", alice.user_id);
    let body = json!({"channel_id": channel, "message": "survives", "pending_post_id": pending});
    let first = alice
        .on(&nodes[first_node].api)
        .ok("POST", "/posts", Some(body.clone()))
        .await;
    nodes[leader].kill();
    let retrying = alice.on(&nodes[retry_node].api);
    let retry = eventually(
        Duration::from_secs(60),
        "a retry after the leader died",
        || {
            let (retrying, body) = (&retrying, &body);
            async move {
                let answer = retrying.call("POST", "/posts", Some(body.clone())).await;
                (answer.status == reqwest::StatusCode::CREATED).then_some(answer.body)
            }
        },
    )
    .await;
    assert_eq!(post_identity(&retry), post_identity(&first));

    // The old leader comes back on its data dir, catches up, and answers the same.
    nodes[leader].restart();
    nodes[leader].wait_ready().await;
    let restarted = alice.on(&nodes[leader].api);
    let again = eventually(
        Duration::from_secs(60),
        "a retry on the restarted node",
        || {
            let (restarted, body) = (&restarted, &body);
            async move {
                let answer = restarted.call("POST", "/posts", Some(body.clone())).await;
                (answer.status == reqwest::StatusCode::CREATED).then_some(answer.body)
            }
        },
    )
    .await;
    assert_eq!(post_identity(&again), post_identity(&first));
    for node in &nodes {
        let on_node = alice.on(&node.api);
        assert_eq!(
            messages_on(&on_node, &channel, 1).await,
            vec!["survives"],
            "node {}",
            node.id
        );
    }
}

/// A login through one node, then at once a request through a node that has not applied that
/// session yet (a load balancer, or the mobile app's WebSocket, may pick any node): the lagging
/// node catches up before it refuses a token it does not know, so the user is not logged out.
/// A follower's links are slowed by 40 ms each way, so it applies every entry well after the
/// others acknowledged it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_node_works_at_once_on_a_lagging_node() {
    use common::links::ports_with_links;
    use common::{initial_members, Node};

    let dir = tempfile::tempdir().expect("temp dir");
    let (ports, raft_addrs, links) = ports_with_links(3).await;
    let members = initial_members(ports.iter().map(|(_, raft)| *raft));
    let mut nodes = Vec::new();
    for (i, (api, raft)) in ports.iter().enumerate() {
        let node_dir = dir.path().join(format!("n{}", i + 1));
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let args = vec![
            "--initial-members".to_string(),
            members.clone(),
            "--raft-dial".to_string(),
            links.dial_arg(i, &raft_addrs),
        ];
        nodes.push(Node::start_on(i as u64 + 1, node_dir, *api, *raft, &args));
    }
    for node in &mut nodes {
        node.wait_ready().await;
    }
    let admin = Api::signup(&nodes[0].api, "admin").await;
    // Logins go through the leader; a follower lags (slowing the leader would slow every
    // write instead).
    let status = admin.ok("GET", "/cluster/status", None).await;
    let leader = status["leader"].as_u64().expect("a leader") as usize - 1;
    let slow = (leader + 1) % 3;
    let fast = nodes[leader].api.clone();
    let lagging = nodes[slow].api.clone();
    for name in ["ann", "ben", "cat"] {
        admin
            .ok(
                "POST",
                "/users",
                Some(json!({"username": name, "email": format!("{name}@example.com"), "password": "passw0rd!"})),
            )
            .await;
    }
    links.slow(slow, Duration::from_millis(40));

    // REST: the first request on the lagging node with a session it has not applied.
    let ann = Api::login(&fast, "ann").await;
    let me = ann.on(&lagging).call("GET", "/users/me", None).await;
    assert_eq!(
        me.status, 200,
        "the lagging node refused a new session: {}",
        me.body
    );
    assert_eq!(me.body["username"], "ann");

    // The WebSocket upgrade, authenticated by header.
    let ben = Api::login(&fast, "ben").await;
    let socket = Socket::connect(&lagging, ben.token.as_deref().expect("token")).await;
    assert!(!socket.connection_id.is_empty());
    socket.close().await;

    // The mobile app's way: a socket with no credentials, then the challenge.
    let cat = Api::login(&fast, "cat").await;
    let mut socket = Socket::connect_anonymous(&lagging).await;
    socket
        .send(json!({"seq": 1, "action": "authentication_challenge", "data": {"token": cat.token}}))
        .await;
    let reply = socket
        .next_frame(Duration::from_secs(15))
        .await
        .expect("a reply to the challenge");
    assert_eq!(reply["status"], "OK", "{reply}");
    let hello = socket.wait_event("hello", Duration::from_secs(10)).await;
    assert_eq!(hello["broadcast"]["user_id"], cat.user_id.as_str());
    socket.close().await;

    // A login on the lagging node by an account just created through the leader: it catches
    // up before it answers "no such user".
    admin
        .on(&fast)
        .ok(
            "POST",
            "/users",
            Some(json!({"username": "dee", "email": "dee@example.com", "password": "passw0rd!"})),
        )
        .await;
    let login = Api::new(&lagging)
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "dee", "password": "passw0rd!"})),
        )
        .await;
    assert_eq!(
        login.status, 200,
        "the lagging node refused a new account's login: {}",
        login.body
    );
    assert_eq!(login.body["username"], "dee");
    // An account no node knows is still refused once caught up.
    let nobody = Api::new(&lagging)
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "nobody", "password": "passw0rd!"})),
        )
        .await;
    assert_eq!(nobody.status, 401, "{}", nobody.body);

    // A well-formed token no node knows (a user id is not a session) is still refused once
    // caught up.
    let mut stranger = Api::new(&lagging);
    stranger.token = Some(admin.user_id.clone());
    let refused = stranger.call("GET", "/users/me", None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let caught_up = common::metrics(&lagging).await;
    assert!(
        caught_up
            .get("confab_auth_catch_ups_total")
            .is_some_and(|n| *n >= 1.0),
        "the lagging node counted its catch-ups"
    );
    drop(links);
}
