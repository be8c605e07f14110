//! Synced drafts on a real 3-node cluster: a draft saved through one node is listed and
//! announced on another (created, updated, deleted), thread drafts are apart from the channel's,
//! an empty save deletes, and refusals are Mattermost-shaped and change nothing.

mod common;

use common::{inner, team_with, three_nodes, Api, Socket};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// The applied index of a write, as the `X-Confab-Applied` header a read on another node waits for.
fn applied(answer: &common::Answer) -> String {
    common::applied_index(answer).to_string()
}

fn messages(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|d| d["message"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_follow_the_user_across_nodes() {
    let (_dir, nodes) = three_nodes().await;
    let (n1, n3) = (&nodes[0].api, &nodes[2].api);
    let alice = Api::signup(n1, "alice").await;
    let bob = Api::signup(n1, "bob").await;
    let (team_id, town) = team_with(&alice, "drafty", &[]).await;
    let root = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "a root"})),
        )
        .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut socket = Socket::connect(n3, alice.token.as_deref().unwrap()).await;
    let list_path = format!("/users/{}/teams/{team_id}/drafts", alice.user_id);

    let saved = alice
        .call(
            "POST",
            "/drafts",
            Some(json!({"channel_id": town, "root_id": "", "message": "half a thought", "props": {"k": 1}})),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    assert_eq!(saved.body["user_id"], alice.user_id.as_str());
    assert_eq!(saved.body["props"], json!({"k": 1}));
    let created = socket.wait_event("draft_created", WAIT).await;
    assert_eq!(
        inner(&created["data"]["draft"])["message"],
        "half a thought"
    );

    let reply = alice
        .call(
            "POST",
            "/drafts",
            Some(json!({"channel_id": town, "root_id": root, "message": "a reply"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let update = alice
        .call(
            "POST",
            "/drafts",
            Some(json!({"channel_id": town, "message": "a whole thought"})),
        )
        .await;
    let updated = socket.wait_event("draft_updated", WAIT).await;
    assert_eq!(
        inner(&updated["data"]["draft"])["message"],
        "a whole thought"
    );
    assert_eq!(
        update.body["create_at"], saved.body["create_at"],
        "an update keeps the creation time"
    );

    // Listed on another node, most recently saved first.
    let on_n3 = alice
        .on(n3)
        .call_with(
            "GET",
            &list_path,
            None,
            &[("X-Confab-Applied", &applied(&update))],
        )
        .await;
    assert_eq!(on_n3.status, StatusCode::OK, "{}", on_n3.body);
    assert_eq!(messages(&on_n3.body), ["a whole thought", "a reply"]);

    // The thread's draft is deleted by path; an empty save deletes the channel's.
    let gone = alice
        .call(
            "DELETE",
            &format!("/users/me/channels/{town}/drafts/{root}"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    let deleted = socket.wait_event("draft_deleted", WAIT).await;
    assert_eq!(inner(&deleted["data"]["draft"])["root_id"], root.as_str());
    let emptied = alice
        .call(
            "POST",
            "/drafts",
            Some(json!({"channel_id": town, "message": ""})),
        )
        .await;
    assert_eq!(emptied.status, StatusCode::CREATED);
    assert_eq!(emptied.body, Value::Null);
    socket.wait_event("draft_deleted", WAIT).await;
    let again = alice
        .call("DELETE", &format!("/users/me/channels/{town}/drafts"), None)
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "nothing to delete is no error"
    );
    assert_eq!(messages(&alice.ok("GET", &list_path, None).await).len(), 0);

    // Refusals.
    let kept = alice
        .ok(
            "POST",
            "/drafts",
            Some(json!({"channel_id": town, "message": "kept"})),
        )
        .await;
    for (who, method, path, body, status) in [
        (
            &bob,
            "POST",
            "/drafts".to_string(),
            Some(json!({"channel_id": town, "message": "x"})),
            StatusCode::FORBIDDEN,
        ),
        (
            &alice,
            "POST",
            "/drafts".to_string(),
            Some(json!({"channel_id": "nope", "message": "x"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            &alice,
            "POST",
            "/drafts".to_string(),
            Some(json!({"message": "no channel"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            &alice,
            "POST",
            "/drafts".to_string(),
            Some(json!({"channel_id": town, "message": "x", "props": "text"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            &alice,
            "POST",
            "/drafts".to_string(),
            Some(json!({"channel_id": town, "message": "x".repeat(16_384)})),
            StatusCode::BAD_REQUEST,
        ),
        (&bob, "GET", list_path.clone(), None, StatusCode::FORBIDDEN),
        (
            &bob,
            "GET",
            format!("/users/me/teams/{team_id}/drafts"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            &bob,
            "DELETE",
            format!("/users/{}/channels/{town}/drafts", alice.user_id),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            &alice,
            "DELETE",
            "/users/me/channels/nope/drafts".to_string(),
            None,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = who.call(method, &path, body.clone()).await;
        assert_eq!(
            answer.status, status,
            "{method} {path} {body:?}: {}",
            answer.body
        );
        assert!(answer.body["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    let anonymous = Api::new(n1).call("GET", &list_path, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let listed = alice.ok("GET", &list_path, None).await;
    assert_eq!(messages(&listed), ["kept"]);
    assert_eq!(listed[0]["create_at"], kept["create_at"]);
}
