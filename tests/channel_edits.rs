//! Editing channels on a real node: patch and full update of name, display name, header and
//! purpose with the `channel_updated` event, Mattermost's refusals, and archive + restore with
//! `channel_restored`.

mod common;

use common::{single_node, team_with, Api, Socket};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_edit_channels_and_creators_restore_them() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let carol = Api::signup(&node.api, "carol").await;
    let (team_id, _town) = team_with(&alice, "edits", &[&bob, &carol]).await;
    let channel = bob
        .ok(
            "POST",
            "/channels",
            Some(
                json!({"team_id": team_id, "name": "plans", "display_name": "Plans", "type": "P"}),
            ),
        )
        .await;
    let id = text(&channel["id"]);
    let mut watcher = Socket::connect(&node.api, bob.token.as_deref().expect("token")).await;

    let patched = bob
        .ok(
            "PUT",
            &format!("/channels/{id}/patch"),
            Some(
                json!({"header": "Q3 plans", "purpose": "planning", "display_name": "Plans 2026"}),
            ),
        )
        .await;
    assert_eq!(patched["header"], "Q3 plans");
    assert_eq!(patched["purpose"], "planning");
    assert_eq!(patched["display_name"], "Plans 2026");
    assert_eq!(patched["name"], "plans", "absent fields keep their value");
    let event = watcher.wait_event("channel_updated", WAIT).await;
    let sent: Value = serde_json::from_str(event["data"]["channel"].as_str().expect("a string"))
        .expect("channel JSON");
    assert_eq!(sent["header"], "Q3 plans");
    assert_eq!(event["broadcast"]["channel_id"], json!(id));

    // Renaming moves the name index.
    bob.ok(
        "PUT",
        &format!("/channels/{id}"),
        Some(json!({"id": id, "name": "roadmap"})),
    )
    .await;
    let by_name = bob
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/roadmap"),
            None,
        )
        .await;
    assert_eq!(by_name["id"], json!(id));
    assert_eq!(
        bob.call(
            "GET",
            &format!("/teams/{team_id}/channels/name/plans"),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // Refusals: a non-member, a taken name, bad names, the town square's name, a wrong body id.
    assert_eq!(
        carol
            .call(
                "PUT",
                &format!("/channels/{id}/patch"),
                Some(json!({"header": "mine now"}))
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let taken = bob
        .call(
            "PUT",
            &format!("/channels/{id}/patch"),
            Some(json!({"name": "off-topic"})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST, "{}", taken.body);
    assert_eq!(
        taken.body["id"],
        "store.sql_channel.save_channel.exists.app_error"
    );
    for body in [
        json!({"name": "Not Valid!"}),
        json!({"display_name": ""}),
        json!({"header": "h".repeat(1025)}),
        json!({"purpose": "p".repeat(251)}),
        json!("not an object"),
    ] {
        let answer = bob
            .call("PUT", &format!("/channels/{id}/patch"), Some(body.clone()))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
    }
    let town = bob
        .ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/town-square"),
            None,
        )
        .await;
    let town_id = text(&town["id"]);
    assert_eq!(
        bob.call(
            "PUT",
            &format!("/channels/{town_id}/patch"),
            Some(json!({"name": "lobby"}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    bob.ok(
        "PUT",
        &format!("/channels/{town_id}/patch"),
        Some(json!({"header": "welcome"})),
    )
    .await;
    assert_eq!(
        bob.call(
            "PUT",
            &format!("/channels/{id}"),
            Some(json!({"id": town_id, "header": "x"}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    // A DM's header is the members' to set; its name is not.
    let direct = bob
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([bob.user_id, carol.user_id])),
        )
        .await;
    let direct_id = text(&direct["id"]);
    carol
        .ok(
            "PUT",
            &format!("/channels/{direct_id}/patch"),
            Some(json!({"header": "our chat"})),
        )
        .await;
    assert_eq!(
        carol
            .call(
                "PUT",
                &format!("/channels/{direct_id}/patch"),
                Some(json!({"display_name": "Renamed"}))
            )
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Archive, then restore: only the creator (or an admin); a live channel is not restored.
    bob.ok("DELETE", &format!("/channels/{id}"), None).await;
    watcher.wait_event("channel_deleted", WAIT).await;
    assert_eq!(
        bob.call(
            "PUT",
            &format!("/channels/{id}/patch"),
            Some(json!({"header": "archived"}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST,
        "an archived channel is read-only"
    );
    assert_eq!(
        carol
            .call("POST", &format!("/channels/{id}/restore"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let restored = bob
        .ok("POST", &format!("/channels/{id}/restore"), None)
        .await;
    assert_eq!(restored["delete_at"], 0);
    let event = watcher.wait_event("channel_restored", WAIT).await;
    assert_eq!(event["data"]["channel_id"], json!(id));
    assert_eq!(
        bob.call("POST", &format!("/channels/{id}/restore"), None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    bob.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": id, "message": "back again"})),
    )
    .await;
}
