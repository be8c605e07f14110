//! The REST surface on a real single node: each endpoint's happy path and its main refusals, in
//! Mattermost's JSON.

mod common;

use common::{single_node, team_fixture, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn assert_error(answer: &common::Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.body["status_code"],
        json!(status.as_u16()),
        "error repeats the status: {}",
        answer.body
    );
    assert!(
        answer.body["id"].as_str().is_some_and(|id| !id.is_empty()),
        "error has an id: {}",
        answer.body
    );
    assert!(answer.body["message"].is_string());
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sessions_and_auth() {
    let (_dir, node) = single_node().await;
    let anon = Api::new(&node.api);
    let ping = anon
        .ok("GET", "/system/ping?use_rest_semantics=true", None)
        .await;
    assert_eq!(ping["status"], "OK");

    let admin = Api::signup(&node.api, "alice").await;
    let me = admin.ok("GET", "/users/me", None).await;
    assert_eq!(me["username"], "alice");
    assert!(
        me["roles"].as_str().unwrap().contains("system_admin"),
        "first user is admin"
    );
    let bob = Api::signup(&node.api, "bob").await;
    let bob_me = bob.ok("GET", "/users/me", None).await;
    assert_eq!(bob_me["roles"], "system_user");

    // Refusals.
    assert_error(
        &anon.call("GET", "/users/me", None).await,
        StatusCode::UNAUTHORIZED,
    );
    let dup = anon
        .call(
            "POST",
            "/users",
            Some(json!({"username": "alice", "email": "x@example.com", "password": "passw0rd!"})),
        )
        .await;
    assert_error(&dup, StatusCode::BAD_REQUEST);
    let bad = anon
        .call(
            "POST",
            "/users",
            Some(json!({"username": "A!", "email": "nope", "password": "passw0rd!"})),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST);
    let wrong = anon
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "alice", "password": "wrong-password"})),
        )
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body["id"],
        "api.user.login.invalid_credentials_email_username"
    );
    let garbage = anon
        .call("POST", "/users", Some(json!(["not", "an", "object"])))
        .await;
    assert_error(&garbage, StatusCode::BAD_REQUEST);
    assert_error(
        &admin.call("GET", "/users/not-an-id", None).await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &admin
            .call("GET", &format!("/users/{}", "y".repeat(26)), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &admin.call("GET", "/no/such/path", None).await,
        StatusCode::NOT_FOUND,
    );

    // Lookups.
    let got = admin
        .ok("GET", &format!("/users/{}", bob.user_id), None)
        .await;
    assert_eq!(got["username"], "bob");
    assert_eq!(got["email"], "bob@example.com", "admins see emails");
    let seen_by_bob = bob
        .ok("GET", &format!("/users/{}", admin.user_id), None)
        .await;
    assert_eq!(seen_by_bob["email"], "", "others' emails are hidden");
    let by_ids = admin
        .ok(
            "POST",
            "/users/ids",
            Some(json!([admin.user_id, bob.user_id])),
        )
        .await;
    assert_eq!(by_ids.as_array().unwrap().len(), 2);
    let by_name = admin.ok("GET", "/users/username/bob", None).await;
    assert_eq!(by_name["id"], json!(bob.user_id));

    // Cookie auth and access_token query work too.
    let token = bob.token.clone().unwrap();
    let client = reqwest::Client::new();
    let via_cookie = client
        .get(format!("{}/api/v4/users/me", node.api))
        .header("Cookie", format!("MMAUTHTOKEN={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(via_cookie.status(), StatusCode::OK);
    let via_query = client
        .get(format!("{}/api/v4/users/me?access_token={token}", node.api))
        .send()
        .await
        .unwrap();
    assert_eq!(via_query.status(), StatusCode::OK);

    // Logout ends the session.
    let out = bob.ok("POST", "/users/logout", None).await;
    assert_eq!(out["status"], "OK");
    assert_error(
        &bob.call("GET", "/users/me", None).await,
        StatusCode::UNAUTHORIZED,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_channels_and_permissions() {
    let (_dir, node) = single_node().await;
    let (alice, bob, carol, team_id, public, private) = team_fixture(&node.api).await;

    let teams = bob.ok("GET", "/users/me/teams", None).await;
    assert_eq!(teams[0]["name"], "tt");
    assert_eq!(
        alice.ok("GET", "/teams/name/tt", None).await["id"],
        json!(team_id)
    );
    let members = alice
        .ok("GET", &format!("/teams/{team_id}/members"), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 3);

    // Default channels exist and new members joined them.
    let town = bob
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/town-square?include_deleted=false"),
            None,
        )
        .await;
    assert_eq!(town["type"], "O");
    let by_names = bob
        .ok("GET", "/teams/name/tt/channels/name/pub", None)
        .await;
    assert_eq!(by_names["id"], json!(public));
    let mine = carol
        .ok("GET", &format!("/users/me/teams/{team_id}/channels"), None)
        .await;
    let names: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"pub") && names.contains(&"town-square") && !names.contains(&"priv"),
        "{names:?}"
    );
    let my_members = carol
        .ok(
            "GET",
            &format!("/users/me/teams/{team_id}/channels/members"),
            None,
        )
        .await;
    assert_eq!(my_members.as_array().unwrap().len(), names.len());

    // Private channels of a team, for system admins; public ones by ids, for team members.
    let privates = alice
        .ok("GET", &format!("/teams/{team_id}/channels/private"), None)
        .await;
    assert_eq!(
        privates,
        json!([alice.ok("GET", &format!("/channels/{private}"), None).await])
    );
    assert_error(
        &bob.call("GET", &format!("/teams/{team_id}/channels/private"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    let by_ids = carol
        .ok(
            "POST",
            &format!("/teams/{team_id}/channels/ids"),
            Some(json!([public, private, "aaaaaaaaaaaaaaaaaaaaaaaaaa"])),
        )
        .await;
    let listed: Vec<&str> = by_ids
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        listed,
        [public.as_str()],
        "the private channel is not listed"
    );
    for body in [json!([]), json!(["not an id"]), json!({"no": "list"})] {
        assert_error(
            &carol
                .call(
                    "POST",
                    &format!("/teams/{team_id}/channels/ids"),
                    Some(body),
                )
                .await,
            StatusCode::BAD_REQUEST,
        );
    }

    // Private channel: members only.
    assert_error(
        &carol
            .call("GET", &format!("/channels/{private}"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol
            .call("GET", &format!("/channels/{private}/posts"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol
            .call(
                "POST",
                "/posts",
                Some(json!({"channel_id": private, "message": "let me in"})),
            )
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol
            .call(
                "POST",
                &format!("/channels/{private}/members"),
                Some(json!({"user_id": carol.user_id})),
            )
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(
        bob.ok("GET", &format!("/channels/{private}"), None).await["name"],
        "priv"
    );
    let member = bob
        .ok("GET", &format!("/channels/{private}/members/me"), None)
        .await;
    assert_eq!(member["user_id"], json!(bob.user_id));
    assert_error(
        &alice
            .call("GET", &format!("/channels/{}", "y".repeat(26)), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &alice
            .call(
                "POST",
                "/channels",
                Some(json!({"team_id": team_id, "name": "pub", "display_name": "Again"})),
            )
            .await,
        StatusCode::BAD_REQUEST,
    );

    // DMs and group messages; idempotent by members.
    let dm = bob
        .call(
            "POST",
            "/channels/direct",
            Some(json!([bob.user_id, carol.user_id])),
        )
        .await;
    assert_eq!(dm.status, StatusCode::CREATED);
    assert_eq!(dm.body["type"], "D");
    // Named from the ids sorted as strings, as Mattermost and its clients compute it.
    let mut pair = [bob.user_id.clone(), carol.user_id.clone()];
    pair.sort();
    assert_eq!(dm.body["name"], format!("{}__{}", pair[0], pair[1]));
    let again = bob
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([carol.user_id, bob.user_id])),
        )
        .await;
    assert_eq!(again["id"], dm.body["id"]);
    let dm_id = dm.body["id"].as_str().unwrap().to_string();
    assert_error(
        &alice
            .call("GET", &format!("/channels/{dm_id}/posts"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    let group = alice
        .ok(
            "POST",
            "/channels/group",
            Some(json!([alice.user_id, bob.user_id, carol.user_id])),
        )
        .await;
    assert_eq!(group["type"], "G");
    let mut trio = [
        alice.user_id.clone(),
        bob.user_id.clone(),
        carol.user_id.clone(),
    ];
    trio.sort();
    use sha1::Digest;
    assert_eq!(
        group["name"],
        hex::encode(sha1::Sha1::digest(trio.concat().as_bytes()))
    );
    assert_error(
        &alice
            .call("POST", "/channels/group", Some(json!([bob.user_id])))
            .await,
        StatusCode::BAD_REQUEST,
    );

    // A non-member of the team cannot read team data.
    let dave = Api::signup(&node.api, "dave").await;
    assert_error(
        &dave
            .call("GET", &format!("/teams/{team_id}/members"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &dave
            .call("GET", &format!("/channels/{public}/posts"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &dave
            .call("GET", &format!("/users/{}/teams", bob.user_id), None)
            .await,
        StatusCode::FORBIDDEN,
    );
}

fn order(list: &Value) -> Vec<String> {
    list["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_threads_reactions_and_unreads() {
    let (_dir, node) = single_node().await;
    let (alice, bob, carol, team_id, public, private) = team_fixture(&node.api).await;

    let mut ids = Vec::new();
    for i in 0..5 {
        let answer = alice
            .call(
                "POST",
                "/posts",
                Some(json!({"channel_id": public, "message": format!("post {i}")})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        assert!(
            answer.headers.get("x-confab-applied").is_some(),
            "writes carry the applied index"
        );
        ids.push(answer.body["id"].as_str().unwrap().to_string());
    }
    // Paging, newest first.
    let page = bob
        .ok(
            "GET",
            &format!("/channels/{public}/posts?page=0&per_page=2"),
            None,
        )
        .await;
    assert_eq!(order(&page), vec![ids[4].clone(), ids[3].clone()]);
    let page2 = bob
        .ok(
            "GET",
            &format!("/channels/{public}/posts?page=1&per_page=2&since=&before=&after="),
            None,
        )
        .await;
    assert_eq!(order(&page2), vec![ids[2].clone(), ids[1].clone()]);
    let before = bob
        .ok(
            "GET",
            &format!("/channels/{public}/posts?before={}&per_page=2", ids[2]),
            None,
        )
        .await;
    assert_eq!(order(&before), vec![ids[1].clone(), ids[0].clone()]);
    let after = bob
        .ok(
            "GET",
            &format!("/channels/{public}/posts?after={}&per_page=10", ids[2]),
            None,
        )
        .await;
    assert_eq!(order(&after), vec![ids[4].clone(), ids[3].clone()]);
    let created_at = page["posts"][&ids[4]]["create_at"].as_u64().unwrap();
    let since = bob
        .ok(
            "GET",
            &format!("/channels/{public}/posts?since={}", created_at - 1),
            None,
        )
        .await;
    // Everything changed after `since`, and nothing older (posts may share a millisecond).
    assert!(order(&since).contains(&ids[4]));
    for post in since["posts"].as_object().unwrap().values() {
        assert!(post["update_at"].as_u64().unwrap() >= created_at, "{post}");
    }

    // Reply, thread, edit, react, delete.
    let reply = bob
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "root_id": ids[0], "message": "a reply @alice"})),
        )
        .await;
    let reply_id = reply["id"].as_str().unwrap().to_string();
    let thread = carol
        .ok("GET", &format!("/posts/{}/thread", ids[0]), None)
        .await;
    // The post asked for leads, then the rest newest first (Mattermost puts it first).
    assert_eq!(order(&thread), vec![ids[0].clone(), reply_id.clone()]);
    assert_eq!(thread["posts"][&ids[0]]["reply_count"], 1);
    let edited = bob
        .ok(
            "PUT",
            &format!("/posts/{reply_id}/patch"),
            Some(json!({"id": reply_id, "message": "edited"})),
        )
        .await;
    assert_eq!(edited["message"], "edited");
    assert!(edited["edit_at"].as_u64().unwrap() > 0);
    assert_error(
        &carol
            .call(
                "PUT",
                &format!("/posts/{reply_id}/patch"),
                Some(json!({"message": "not mine"})),
            )
            .await,
        StatusCode::FORBIDDEN,
    );
    // Pinning by a reader of the channel; the post shows it.
    carol
        .ok("POST", &format!("/posts/{reply_id}/pin"), None)
        .await;
    assert_eq!(
        alice.ok("GET", &format!("/posts/{reply_id}"), None).await["is_pinned"],
        true
    );
    carol
        .ok("POST", &format!("/posts/{reply_id}/unpin"), None)
        .await;
    assert_eq!(
        alice.ok("GET", &format!("/posts/{reply_id}"), None).await["is_pinned"],
        false
    );
    let reaction = carol
        .call(
            "POST",
            "/reactions",
            Some(json!({"user_id": carol.user_id, "post_id": reply_id, "emoji_name": "smile"})),
        )
        .await;
    assert_eq!(reaction.status, StatusCode::CREATED);
    let reactions = alice
        .ok("GET", &format!("/posts/{reply_id}/reactions"), None)
        .await;
    assert_eq!(reactions[0]["emoji_name"], "smile");
    carol
        .ok(
            "DELETE",
            &format!("/users/me/posts/{reply_id}/reactions/smile"),
            None,
        )
        .await;
    assert_eq!(
        alice
            .ok("GET", &format!("/posts/{reply_id}/reactions"), None)
            .await,
        json!([])
    );
    assert_error(
        &carol
            .call(
                "POST",
                "/reactions",
                Some(json!({"user_id": bob.user_id, "post_id": reply_id, "emoji_name": "x"})),
            )
            .await,
        StatusCode::FORBIDDEN,
    );

    // Over-long message.
    let long = "x".repeat(16_384);
    let refused = alice
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": long})),
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body["id"],
        "model.post.is_valid.message_length.app_error"
    );
    assert!(alice
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "y".repeat(16_383)}))
        )
        .await
        .status
        .is_success());

    // Channel unread before and after a view.
    let unread = carol
        .ok("GET", &format!("/users/me/channels/{public}/unread"), None)
        .await;
    assert_eq!(
        unread["msg_count"], 7,
        "5 roots + 1 reply + 1 long post: {unread}"
    );
    let member = carol
        .ok("GET", &format!("/channels/{public}/members/me"), None)
        .await;
    let channel = carol.ok("GET", &format!("/channels/{public}"), None).await;
    assert_eq!(
        channel["total_msg_count"].as_u64().unwrap() - member["msg_count"].as_u64().unwrap(),
        7
    );
    let around = carol
        .ok(
            "GET",
            &format!("/users/me/channels/{public}/posts/unread?limit_before=30&limit_after=30"),
            None,
        )
        .await;
    assert_eq!(order(&around).len(), 7);
    let viewed = carol
        .ok("POST", "/channels/members/me/view", Some(json!({"channel_id": public, "prev_channel_id": "", "collapsed_threads_supported": true})))
        .await;
    assert_eq!(viewed["status"], "OK");
    assert!(viewed["last_viewed_at_times"][&public].as_u64().is_some());
    let unread = carol
        .ok("GET", &format!("/users/me/channels/{public}/unread"), None)
        .await;
    assert_eq!(unread["msg_count"], 0);
    // Set unread from a post moves the cursor back.
    carol
        .ok(
            "POST",
            &format!("/users/me/posts/{}/set_unread", ids[3]),
            None,
        )
        .await;
    let unread = carol
        .ok("GET", &format!("/users/me/channels/{public}/unread"), None)
        .await;
    assert_eq!(
        unread["msg_count"], 4,
        "post 3, post 4, the reply and the long post"
    );

    // Collapsed Reply Threads: alice follows her root (bob replied, mentioning her).
    let threads = alice.ok("GET", &format!("/users/me/teams/{team_id}/threads?since=&before=&after=&per_page=25&unread=false&extended=false&deleted=false"), None).await;
    assert_eq!(threads["total"], 1);
    assert_eq!(threads["total_unread_threads"], 1);
    assert_eq!(threads["total_unread_mentions"], 1);
    assert_eq!(threads["threads"][0]["unread_replies"], 1);
    assert_eq!(threads["threads"][0]["id"], json!(ids[0]));
    let one = alice
        .ok(
            "GET",
            &format!("/users/me/teams/{team_id}/threads/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(one["reply_count"], 1);
    let read = alice
        .ok(
            "PUT",
            &format!(
                "/users/me/teams/{team_id}/threads/{}/read/{}",
                ids[0],
                u64::MAX / 2
            ),
            None,
        )
        .await;
    assert_eq!(read["unread_replies"], 0);
    assert_eq!(read["unread_mentions"], 0);
    let unread_again = alice
        .ok(
            "POST",
            &format!(
                "/users/me/teams/{team_id}/threads/{}/set_unread/{reply_id}",
                ids[0]
            ),
            None,
        )
        .await;
    assert_eq!(unread_again["unread_replies"], 1);
    alice
        .ok(
            "DELETE",
            &format!("/users/me/teams/{team_id}/threads/{}/following", ids[0]),
            None,
        )
        .await;
    assert_eq!(
        alice
            .ok("GET", &format!("/users/me/teams/{team_id}/threads"), None)
            .await["total"],
        0
    );
    alice
        .ok(
            "PUT",
            &format!("/users/me/teams/{team_id}/threads/{}/following", ids[0]),
            None,
        )
        .await;
    assert_eq!(
        alice
            .ok(
                "GET",
                &format!("/users/me/teams/{team_id}/threads?unread=true"),
                None
            )
            .await["total_unread_threads"],
        1
    );
    alice
        .ok(
            "PUT",
            &format!("/users/me/teams/{team_id}/threads/read"),
            None,
        )
        .await;
    let totals = alice
        .ok(
            "GET",
            &format!("/users/me/teams/{team_id}/threads?totalsOnly=true"),
            None,
        )
        .await;
    assert_eq!(totals["total_unread_threads"], 0);

    // Nobody reads a thread they may not see.
    let secret = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": private, "message": "secret root"})),
        )
        .await;
    let secret_id = secret["id"].as_str().unwrap().to_string();
    bob.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": private, "root_id": secret_id, "message": "secret reply"})),
    )
    .await;
    assert_error(
        &carol
            .call("GET", &format!("/posts/{secret_id}/thread"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol
            .call("GET", &format!("/posts/{secret_id}"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol
            .call("GET", &format!("/posts/{secret_id}/reactions"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol
            .call(
                "GET",
                &format!("/users/me/teams/{team_id}/threads/{secret_id}"),
                None,
            )
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol
            .call(
                "GET",
                &format!("/users/{}/teams/{team_id}/threads", alice.user_id),
                None,
            )
            .await,
        StatusCode::FORBIDDEN,
    );

    // Delete: authors or admins only; deleted posts are gone.
    assert_error(
        &carol
            .call("DELETE", &format!("/posts/{reply_id}"), None)
            .await,
        StatusCode::FORBIDDEN,
    );
    alice
        .ok("DELETE", &format!("/posts/{reply_id}"), None)
        .await;
    assert_error(
        &alice.call("GET", &format!("/posts/{reply_id}"), None).await,
        StatusCode::NOT_FOUND,
    );
    let thread = alice
        .ok("GET", &format!("/posts/{}/thread", ids[0]), None)
        .await;
    assert_eq!(order(&thread), vec![ids[0].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_input_gets_clear_errors_and_the_server_keeps_serving() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let client = reqwest::Client::new();
    let token = alice.token.clone().unwrap();
    let url = |path: &str| format!("{}/api/v4{path}", node.api);
    for (path, body) in [
        ("/posts", "{not json"),
        ("/posts", "{\"channel_id\": 5}"),
        ("/teams", "[]"),
        ("/channels/direct", "{\"a\":1}"),
        ("/users/ids", "\"x\""),
        ("/channels", ""),
    ] {
        let response = client
            .post(url(path))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        let value: Value = response.json().await.unwrap();
        assert_eq!(value["status_code"], 400);
    }
    // A huge body is refused in Mattermost's shape, whether its length is declared or it is
    // streamed in chunks, and the client reads the answer instead of a broken pipe.
    for chunked in [false, true] {
        let huge = "x".repeat(4 << 20);
        let body = if chunked {
            let chunks = huge
                .into_bytes()
                .chunks(64 << 10)
                .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec()))
                .collect::<Vec<_>>();
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
        } else {
            reqwest::Body::from(huge)
        };
        let response = client
            .post(url("/posts"))
            .header("Authorization", format!("Bearer {token}"))
            .body(body)
            .send()
            .await
            .expect("the 413 is read, not a reset");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let value: Value = response.json().await.unwrap();
        assert_eq!(value["status_code"], 413);
        assert_eq!(value["id"], "api.context.request_body_too_large.app_error");
    }
    // A declared length far past what is worth reading is refused before any of it is sent.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = node.api.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!(
            "POST /api/v4/posts HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("answered without the body")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("request_body_too_large"), "{answer}");
    }
    // Bad query values.
    let response = alice.call("GET", "/users?page=minus-one", None).await;
    assert_error(&response, StatusCode::BAD_REQUEST);
    // Bad WebSocket traffic: garbage frames do not take the node down.
    let mut socket = common::Socket::connect(&node.api, &token).await;
    socket.send(json!("just a string")).await;
    socket
        .send(json!({"seq": 5, "action": "no_such_action"}))
        .await;
    socket.send(json!({"seq": 6, "action": "ping"})).await;
    let reply = loop {
        let value = socket
            .next_json(std::time::Duration::from_secs(5))
            .await
            .expect("a reply");
        if value["seq_reply"] == 6 {
            break value;
        }
    };
    assert_eq!(reply["status"], "OK");
    // Still serving.
    assert_eq!(
        alice.ok("GET", "/users/me", None).await["username"],
        "alice"
    );
    let metrics = client
        .get(format!("{}/metrics", node.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("confab_http_requests_total"),
        "metrics list requests"
    );
    assert!(metrics.contains("confab_raft_commit_latency_seconds_p99"));
}

/// A node whose API port is already taken exits at once with an error (it must not limp on
/// without its API), and the harness sees that as a failed start instead of waiting it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_port_is_taken_exits_and_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let api_port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = common::Node::start_on(
        1,
        dir.path().to_path_buf(),
        api_port,
        common::free_port(),
        &[],
    );
    let why = node
        .try_ready()
        .await
        .expect_err("the node cannot be ready: its port is taken");
    assert!(why.contains("exited before it was ready"), "{why}");
    drop(taken);
}
