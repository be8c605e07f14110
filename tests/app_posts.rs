//! What the official apps read about posts, on a real node: reactions inside each post's
//! `metadata` (the mobile app reads them only there), `POST /posts/ids` with its refusals and
//! privacy, `GET /posts/{id}/thread` paged the way the mobile app pages it, and `is_following`
//! on a user's thread, and the channel stats and pinned list a channel header shows.

mod common;

use common::{single_node, team_with, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

async fn post(api: &Api, channel: &str, message: &str, root: &str) -> Value {
    api.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": channel, "message": message, "root_id": root})),
    )
    .await
}

fn order(list: &Value) -> Vec<String> {
    list["order"]
        .as_array()
        .expect("order")
        .iter()
        .map(text)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_carry_their_reactions_in_metadata() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let (team, town) = team_with(&alice, "meta", &[&bob]).await;
    let root = post(&alice, &town, "root", "").await;
    let root_id = text(&root["id"]);
    let plain = post(&alice, &town, "no reactions", "").await;
    let reply = post(&bob, &town, "reply", &root_id).await;
    for (who, emoji) in [(&alice, "smile"), (&bob, "tada")] {
        // Reactions list oldest first; distinct milliseconds make that order the only answer.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        who.ok(
            "POST",
            "/reactions",
            Some(json!({"user_id": who.user_id, "post_id": root_id, "emoji_name": emoji})),
        )
        .await;
    }

    let check = |post: &Value| {
        let reactions = post["metadata"]["reactions"].as_array().expect("reactions");
        let names: Vec<&str> = reactions
            .iter()
            .map(|r| r["emoji_name"].as_str().expect("emoji_name"))
            .collect();
        assert_eq!(names, ["smile", "tada"], "{post}");
        assert_eq!(reactions[0]["user_id"], json!(alice.user_id));
        assert_eq!(reactions[1]["user_id"], json!(bob.user_id));
        assert_eq!(reactions[0]["post_id"], json!(root_id));
        assert_eq!(reactions[0]["channel_id"], json!(town));
        assert_eq!(post["has_reactions"], true);
    };
    // Everywhere the apps read a post: a channel page, one post, its thread, a user's thread.
    let page = bob
        .ok("GET", &format!("/channels/{town}/posts"), None)
        .await;
    check(&page["posts"][&root_id]);
    let plain_id = text(&plain["id"]);
    assert_eq!(page["posts"][&plain_id]["metadata"], json!({}));
    assert!(page["posts"][text(&reply["id"])]["metadata"]
        .get("reactions")
        .is_none());
    check(&bob.ok("GET", &format!("/posts/{root_id}"), None).await);
    let thread = bob
        .ok("GET", &format!("/posts/{root_id}/thread"), None)
        .await;
    check(&thread["posts"][&root_id]);
    let user_thread = bob
        .ok(
            "GET",
            &format!("/users/me/teams/{team}/threads/{root_id}"),
            None,
        )
        .await;
    check(&user_thread["post"]);
    assert_eq!(user_thread["is_following"], true, "{user_thread}");

    // Removing one leaves the other; removing both leaves no `reactions` key.
    bob.ok(
        "DELETE",
        &format!("/users/me/posts/{root_id}/reactions/tada"),
        None,
    )
    .await;
    let one = bob.ok("GET", &format!("/posts/{root_id}"), None).await;
    assert_eq!(
        one["metadata"]["reactions"].as_array().map(Vec::len),
        Some(1)
    );
    alice
        .ok(
            "DELETE",
            &format!("/users/me/posts/{root_id}/reactions/smile"),
            None,
        )
        .await;
    let none = bob.ok("GET", &format!("/posts/{root_id}"), None).await;
    assert!(none["metadata"].get("reactions").is_none(), "{none}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_by_ids_returns_only_readable_live_posts_in_order() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let (team, town) = team_with(&alice, "ids", &[&bob]).await;
    let private = alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team, "name": "secret", "display_name": "Secret", "type": "P"})),
        )
        .await;
    let first = text(&post(&alice, &town, "first", "").await["id"]);
    let second = text(&post(&alice, &town, "second", "").await["id"]);
    let hidden = text(&post(&alice, &text(&private["id"]), "hidden", "").await["id"]);
    let gone = text(&post(&alice, &town, "gone", "").await["id"]);
    alice.ok("DELETE", &format!("/posts/{gone}"), None).await;
    // A well-formed id that names no post.
    let unknown = team.clone();

    let posts = bob
        .ok(
            "POST",
            "/posts/ids",
            Some(json!([second, hidden, first, gone, unknown])),
        )
        .await;
    let ids: Vec<String> = posts
        .as_array()
        .expect("an array of posts")
        .iter()
        .map(|p| text(&p["id"]))
        .collect();
    assert_eq!(ids, [second.clone(), first.clone()]);
    assert_eq!(posts[0]["message"], "second");
    // The channel's member reads the private post.
    let mine = alice.ok("POST", "/posts/ids", Some(json!([hidden]))).await;
    assert_eq!(mine[0]["message"], "hidden");

    for (body, what) in [
        (json!([]), "no ids"),
        (json!(["not-an-id"]), "a malformed id"),
        (json!({"ids": [first]}), "not an array"),
        (json!(vec![first.clone(); 1001]), "over 1,000 ids"),
    ] {
        let answer = bob.call("POST", "/posts/ids", Some(body)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            answer.body
        );
        assert_eq!(answer.body["status_code"], 400, "{what}");
    }
    let anonymous = Api::new(&node.api)
        .call("POST", "/posts/ids", Some(json!([first])))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_pages_up_and_down_like_the_mobile_app_asks() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let (_team, town) = team_with(&alice, "paging", &[&bob]).await;
    let root = text(&post(&alice, &town, "root", "").await["id"]);
    let mut replies = Vec::new();
    for n in 0..5 {
        // Distinct create_at per reply, so time order is creation order.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let reply = post(&bob, &town, &format!("reply {n}"), &root).await;
        replies.push((
            text(&reply["id"]),
            reply["create_at"].as_u64().expect("create_at"),
        ));
    }
    let r = |n: usize| replies[n].0.clone();
    let thread = |query: String| {
        let bob = bob.clone();
        let root = root.clone();
        async move {
            bob.ok("GET", &format!("/posts/{root}/thread?{query}"), None)
                .await
        }
    };

    // Newest first, two at a time, the asked-for root leading every page.
    let page = thread("perPage=2&direction=up&skipFetchThreads=false".into()).await;
    assert_eq!(order(&page), [root.clone(), r(4), r(3)]);
    assert_eq!(page["has_next"], true);
    let (last, at) = replies[3].clone();
    let page = thread(format!(
        "perPage=2&direction=up&fromPost={last}&fromCreateAt={at}"
    ))
    .await;
    assert_eq!(order(&page), [root.clone(), r(2), r(1)]);
    assert_eq!(page["has_next"], true);
    let (last, at) = replies[1].clone();
    let page = thread(format!(
        "perPage=2&direction=up&fromPost={last}&fromCreateAt={at}"
    ))
    .await;
    // The root itself is the oldest post of the page and counts toward it.
    assert_eq!(order(&page), [root.clone(), r(0)]);
    assert_eq!(page["has_next"], false);

    // Oldest first from a reply: that reply leads, the rest follow it in time.
    let from = r(1);
    let page = bob
        .ok(
            "GET",
            &format!("/posts/{from}/thread?perPage=3&direction=down"),
            None,
        )
        .await;
    assert_eq!(order(&page), [r(1), root.clone(), r(0)]);
    assert_eq!(page["has_next"], true);
    let (last, at) = replies[2].clone();
    let page = thread(format!(
        "perPage=10&direction=down&fromPost={last}&fromCreateAt={at}"
    ))
    .await;
    assert_eq!(order(&page), [root.clone(), r(3), r(4)]);
    assert_eq!(page["has_next"], false);
    // Every page carries the posts its order names.
    for id in order(&page) {
        assert_eq!(page["posts"][&id]["id"], json!(id));
    }

    // Without paging: the whole thread.
    let whole = thread(String::new()).await;
    assert_eq!(order(&whole), [root.clone(), r(4), r(3), r(2), r(1), r(0)]);

    for query in [
        "perPage=abc",
        "perPage=0",
        "direction=sideways",
        "fromPost=aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "fromCreateAt=yesterday",
        "perPage=2&fromCreateAt=1&fromPost=bad",
    ] {
        let answer = bob
            .call("GET", &format!("/posts/{root}/thread?{query}"), None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_stats_and_pinned_list_follow_pins_unpins_and_deletes() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let carol = Api::signup(&node.api, "carol").await;
    let (team, town) = team_with(&alice, "pins", &[&bob, &carol]).await;
    let first = text(&post(&alice, &town, "first", "").await["id"]);
    let second = text(&post(&alice, &town, "second", "").await["id"]);
    let third = text(&post(&alice, &town, "third", "").await["id"]);
    let reply = text(&post(&bob, &town, "a reply", &first).await["id"]);
    for id in [&first, &second, &third, &reply] {
        alice.ok("POST", &format!("/posts/{id}/pin"), None).await;
    }
    alice
        .ok("POST", &format!("/posts/{second}/unpin"), None)
        .await;
    alice.ok("DELETE", &format!("/posts/{third}"), None).await;

    let stats = bob
        .ok("GET", &format!("/channels/{town}/stats"), None)
        .await;
    assert_eq!(stats["channel_id"], json!(town));
    assert_eq!(stats["member_count"], json!(3));
    assert_eq!(
        stats["pinnedpost_count"],
        json!(2),
        "unpinned and deleted drop out"
    );
    assert_eq!(stats["guest_count"], json!(0));
    let pinned = bob
        .ok("GET", &format!("/channels/{town}/pinned"), None)
        .await;
    assert_eq!(
        order(&pinned),
        [reply.clone(), first.clone()],
        "newest first"
    );
    assert_eq!(pinned["posts"][&first]["is_pinned"], json!(true));

    // Deleting a root deletes its pinned reply too.
    alice.ok("DELETE", &format!("/posts/{first}"), None).await;
    let stats = bob
        .ok("GET", &format!("/channels/{town}/stats"), None)
        .await;
    assert_eq!(stats["pinnedpost_count"], json!(0));

    // A private channel's stats are for its members only.
    let private = alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team, "name": "secret", "display_name": "Secret", "type": "P"})),
        )
        .await;
    let private = text(&private["id"]);
    for path in ["stats", "pinned"] {
        let refused = carol
            .call("GET", &format!("/channels/{private}/{path}"), None)
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        let missing = carol
            .call("GET", &format!("/channels/{team}/{path}"), None)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        let bad = carol
            .call("GET", &format!("/channels/nope/{path}"), None)
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_priority_and_attachment_embeds() {
    let (_dir, node) = single_node().await;
    let base = &node.api;
    let alice = Api::signup(base, "alice").await;
    let bob = Api::signup(base, "bob").await;
    let carol = Api::signup(base, "carol").await;
    let (team, town) = team_with(&alice, "acks", &[&bob]).await;
    let mut alice_socket = common::Socket::connect(base, alice.token.as_deref().unwrap()).await;

    // A root post asking for acknowledgement carries it in `metadata.priority`.
    let asked = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "read the policy", "metadata": {"priority": {"priority": "important", "requested_ack": true}}})),
        )
        .await;
    assert_eq!(
        asked["metadata"]["priority"],
        json!({"priority": "important", "requested_ack": true})
    );
    let post_id = text(&asked["id"]);
    // Priority and acknowledgements are for root posts only.
    let reply = alice
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "root_id": post_id, "message": "r", "metadata": {"priority": {"priority": "", "requested_ack": true}}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["id"],
        "api.post.post_priority.priority_post_only_allowed_for_root_post"
    );

    // Bob acknowledges; the channel hears it; the post lists it when read back.
    let ack_path = format!("/users/{}/posts/{post_id}/ack", bob.user_id);
    let acked = bob.ok("POST", &ack_path, None).await;
    assert_eq!(acked["user_id"], bob.user_id.as_str());
    assert_eq!(acked["post_id"], post_id.as_str());
    let at = acked["acknowledged_at"].as_u64().unwrap_or(0);
    assert!(at > 0);
    let event = alice_socket
        .wait_event(
            "post_acknowledgement_added",
            std::time::Duration::from_secs(10),
        )
        .await;
    let sent = common::inner(&event["data"]["acknowledgement"]);
    assert_eq!(sent["user_id"], bob.user_id.as_str());
    // Acknowledging again keeps the first time.
    let again = bob.ok("POST", &ack_path, None).await;
    assert_eq!(again["acknowledged_at"].as_u64(), Some(at));
    let page = alice
        .ok("GET", &format!("/channels/{town}/posts"), None)
        .await;
    let acks = &page["posts"][post_id.as_str()]["metadata"]["acknowledgements"];
    assert_eq!(acks.as_array().map(Vec::len), Some(1), "{acks}");
    assert_eq!(acks[0]["user_id"], bob.user_id.as_str());

    // Refusals: for someone else; outside the channel; an unknown post.
    let other = bob
        .call(
            "POST",
            &format!("/users/{}/posts/{post_id}/ack", alice.user_id),
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let outsider = carol
        .call(
            "POST",
            &format!("/users/{}/posts/{post_id}/ack", carol.user_id),
            None,
        )
        .await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN, "{}", outsider.body);
    let missing = bob
        .call(
            "POST",
            &format!(
                "/users/{}/posts/aaaaaaaaaaaaaaaaaaaaaaaaaa/ack",
                bob.user_id
            ),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Taking it back (within 5 minutes): the event, and the post no longer lists it.
    let removed = bob.call("DELETE", &ack_path, None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    alice_socket
        .wait_event(
            "post_acknowledgement_removed",
            std::time::Duration::from_secs(10),
        )
        .await;
    let page = alice
        .ok("GET", &format!("/channels/{town}/posts"), None)
        .await;
    assert_eq!(
        page["posts"][post_id.as_str()]["metadata"].get("acknowledgements"),
        None
    );
    let none_left = bob.call("DELETE", &ack_path, None).await;
    assert_eq!(none_left.status, StatusCode::NOT_FOUND);

    // A post with Slack-style attachments says so in `metadata.embeds` (the apps render
    // `props.attachments` only then); one without has none.
    let attached = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "", "props": {"attachments": [{"text": "build passed", "color": "#00ff00"}]}})),
        )
        .await;
    assert_eq!(
        attached["metadata"]["embeds"],
        json!([{"type": "message_attachment"}])
    );
    assert_eq!(asked["metadata"].get("embeds"), None);
    let _ = team;
}
