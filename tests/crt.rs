//! Collapsed Reply Threads end to end on a real node, over REST and WebSocket.

mod common;

use common::{inner, single_node, Api, Socket};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_notifies_follower_and_read_state_follows() {
    let (_dir, node) = single_node().await;
    let a = Api::signup(&node.api, "alice").await;
    let b = Api::signup(&node.api, "bob").await;
    let team = a
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": "crt", "display_name": "CRT", "type": "O"})),
        )
        .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    a.ok(
        "POST",
        &format!("/teams/{team_id}/members"),
        Some(json!({"team_id": team_id, "user_id": b.user_id})),
    )
    .await;
    let channel = a
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/town-square"),
            None,
        )
        .await;
    let channel_id = channel["id"].as_str().unwrap().to_string();

    let mut a_socket = Socket::connect(&node.api, a.token.as_deref().unwrap()).await;
    let root = a
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel_id, "message": "root by A"})),
        )
        .await;
    let root_id = root["id"].as_str().unwrap().to_string();
    let posted = a_socket.wait_event("posted", WAIT).await;
    assert_eq!(inner(&posted["data"]["post"])["id"], json!(root_id));

    let reply = b
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel_id, "root_id": root_id, "message": "reply by B"})),
        )
        .await;
    let updated = a_socket.wait_event("thread_updated", WAIT).await;
    let thread = inner(&updated["data"]["thread"]);
    assert_eq!(thread["id"], json!(root_id));
    assert_eq!(thread["unread_replies"], 1);
    assert_eq!(thread["reply_count"], 1);

    let list = a
        .ok("GET", &format!("/users/me/teams/{team_id}/threads"), None)
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["total_unread_threads"], 1);
    assert_eq!(list["threads"][0]["unread_replies"], 1);

    let reply_at = reply["create_at"].as_u64().unwrap();
    let read = a
        .ok(
            "PUT",
            &format!("/users/me/teams/{team_id}/threads/{root_id}/read/{reply_at}"),
            None,
        )
        .await;
    assert_eq!(read["unread_replies"], 0);
    let changed = a_socket.wait_event("thread_read_changed", WAIT).await;
    assert_eq!(changed["data"]["thread_id"], json!(root_id));
    assert_eq!(changed["data"]["unread_replies"], 0);
    let list = a
        .ok("GET", &format!("/users/me/teams/{team_id}/threads"), None)
        .await;
    assert_eq!(list["total_unread_threads"], 0);
    assert_eq!(list["threads"][0]["unread_replies"], 0);

    // A channel view resets the channel's unreads and tells the viewer's sockets.
    b.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": channel_id, "message": "another root by B"})),
    )
    .await;
    let unread = a
        .ok(
            "GET",
            &format!("/users/me/channels/{channel_id}/unread"),
            None,
        )
        .await;
    assert_eq!(unread["msg_count"], 2, "B's reply and B's root: {unread}");
    a.ok(
        "POST",
        "/channels/members/me/view",
        Some(json!({"channel_id": channel_id, "collapsed_threads_supported": true})),
    )
    .await;
    let viewed = a_socket.wait_event("multiple_channels_viewed", WAIT).await;
    assert!(viewed["data"]["channel_times"][&channel_id]
        .as_u64()
        .is_some());
    let unread = a
        .ok(
            "GET",
            &format!("/users/me/channels/{channel_id}/unread"),
            None,
        )
        .await;
    assert_eq!(unread["msg_count"], 0);
    a_socket.close().await;
}

/// Found by the fault harness's counter check (seed 1, 3 nodes): a mention in the root counted
/// as an unread mention of the thread. As Mattermost's stored counter, only replies that
/// mention the user count; the root's mention makes the user a follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_the_root_makes_a_follower_not_a_thread_mention() {
    let (_dir, node) = single_node().await;
    let a = Api::signup(&node.api, "alice").await;
    let b = Api::signup(&node.api, "bob").await;
    let (team_id, channel_id) = common::team_with(&a, "roots", &[&b]).await;
    let root = a
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel_id, "message": "@bob have a look"})),
        )
        .await;
    let root_id = root["id"].as_str().unwrap().to_string();
    let reply = json!({"channel_id": channel_id, "root_id": root_id, "message": "first reply"});
    a.ok("POST", "/posts", Some(reply)).await;
    let thread_path = format!("/users/{}/teams/{team_id}/threads/{root_id}", b.user_id);
    let thread = b.ok("GET", &thread_path, None).await;
    assert_eq!(thread["is_following"], json!(true), "{thread}");
    assert_eq!(thread["unread_replies"], json!(1), "{thread}");
    assert_eq!(thread["unread_mentions"], json!(0), "{thread}");

    let mention = json!({"channel_id": channel_id, "root_id": root_id, "message": "@bob and you?"});
    a.ok("POST", "/posts", Some(mention)).await;
    let thread = b.ok("GET", &thread_path, None).await;
    assert_eq!(thread["unread_replies"], json!(2), "{thread}");
    assert_eq!(thread["unread_mentions"], json!(1), "{thread}");
}
