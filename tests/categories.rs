//! Sidebar category writes on a real 3-node cluster: a custom category created on one node is
//! read and announced on another; channels move between categories (into Favorites too, which
//! saves the `favorite_channel` preference), the order and one category change, a deleted
//! category's channels go home, a channel joined later lands in its default category, and every
//! refusal is Mattermost-shaped and changes nothing.

mod common;

use common::{inner, team_with, three_nodes, Api, Socket};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The applied index of a write, as the `X-Confab-Applied` header a read on another node waits for.
fn applied(answer: &common::Answer) -> String {
    common::applied_index(answer).to_string()
}

/// GET of the categories on another node, once it has applied `index`.
async fn categories_on(api: &Api, path: &str, index: &str) -> Value {
    let answer = api
        .call_with("GET", path, None, &[("X-Confab-Applied", index)])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

fn by_type<'a>(categories: &'a Value, kind: &str) -> &'a Value {
    categories["categories"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_categories_order_and_favorites_across_a_cluster() {
    let (_dir, nodes) = three_nodes().await;
    let (n1, n3) = (&nodes[0].api, &nodes[2].api);
    let alice = Api::signup(n1, "alice").await;
    let bob = Api::signup(n1, "bob").await;
    let carol = Api::signup(n1, "carol").await;
    let (team_id, town) = team_with(&alice, "side", &[&bob, &carol]).await;
    let off_topic = text(
        &bob.ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/off-topic"),
            None,
        )
        .await["id"],
    );
    let dm = text(
        &bob.ok(
            "POST",
            "/channels/direct",
            Some(json!([bob.user_id, alice.user_id])),
        )
        .await["id"],
    );
    let path = format!("/users/{}/teams/{team_id}/channels/categories", bob.user_id);
    let bob_on_n3 = bob.on(n3);
    let mut socket = Socket::connect(n3, bob.token.as_deref().unwrap()).await;

    // Create "Work" with town square: placed after Favorites, town square taken out of Channels.
    let made = bob
        .call(
            "POST",
            &path,
            Some(json!({"user_id": bob.user_id, "team_id": team_id, "display_name": "Work", "channel_ids": [town]})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let work = text(&made.body["id"]);
    assert_eq!(work.len(), 26);
    assert_eq!(made.body["type"], "custom");
    assert_eq!(made.body["channel_ids"], json!([town]));
    let got = categories_on(&bob_on_n3, &path, &applied(&made)).await;
    let order: Vec<String> = got["order"].as_array().unwrap().iter().map(text).collect();
    assert_eq!(order.len(), 4);
    assert_eq!(order[1], work, "after Favorites");
    assert_eq!(by_type(&got, "channels")["channel_ids"], json!([off_topic]));
    assert_eq!(by_type(&got, "direct_messages")["channel_ids"], json!([dm]));
    let created = socket.wait_event("sidebar_category_created", WAIT).await;
    assert_eq!(created["data"]["category_id"], work.as_str());
    assert_eq!(created["broadcast"]["team_id"], team_id.as_str());
    socket
        .wait_event("sidebar_category_order_updated", WAIT)
        .await;

    // Move off-topic into Favorites with a bulk update: the favourite preference is saved.
    let favorites_id = text(&by_type(&got, "favorites")["id"]);
    let moved = bob
        .call(
            "PUT",
            &path,
            Some(json!([{"id": favorites_id, "type": "favorites", "channel_ids": [off_topic]}])),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body[0]["channel_ids"], json!([off_topic]));
    let updated = socket.wait_event("sidebar_category_updated", WAIT).await;
    let updated = inner(&updated["data"]["updatedCategories"]);
    assert!(updated
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == favorites_id.as_str() && c["channel_ids"] == json!([off_topic])));
    let changed = socket.wait_event("preferences_changed", WAIT).await;
    assert_eq!(
        inner(&changed["data"]["preferences"])[0]["name"],
        off_topic.as_str()
    );
    let favorite = bob_on_n3
        .call_with(
            "GET",
            &format!("/users/me/preferences/favorite_channel/name/{off_topic}"),
            None,
            &[("X-Confab-Applied", &applied(&moved))],
        )
        .await;
    assert_eq!(favorite.body["value"], "true", "{}", favorite.body);

    // One category: rename, sort by hand, collapse; a default keeps its name.
    let one = bob
        .call(
            "PUT",
            &format!("{path}/{work}"),
            Some(json!({"id": work, "display_name": "Projects", "sorting": "manual", "collapsed": true})),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["display_name"], "Projects");
    assert_eq!(one.body["sorting"], "manual");
    assert_eq!(one.body["collapsed"], true);
    let renamed = bob
        .ok(
            "PUT",
            &format!("{path}/{favorites_id}"),
            Some(json!({"id": favorites_id, "display_name": "Best"})),
        )
        .await;
    assert_eq!(renamed["display_name"], "Favorites");

    // The order, reversed.
    let mut reversed = order.clone();
    reversed.reverse();
    let set = bob
        .call("PUT", &format!("{path}/order"), Some(json!(reversed)))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body, json!(reversed));
    let on_n3 = bob_on_n3
        .call_with(
            "GET",
            &format!("{path}/order"),
            None,
            &[("X-Confab-Applied", &applied(&set))],
        )
        .await;
    assert_eq!(on_n3.body, json!(reversed));
    let order_event = socket
        .wait_event("sidebar_category_order_updated", WAIT)
        .await;
    assert_eq!(order_event["data"]["order"], json!(reversed));

    // A channel joined later goes on top of its default category.
    let later = text(
        &alice
            .ok(
                "POST",
                "/channels",
                Some(json!({"team_id": team_id, "name": "later", "display_name": "Later", "type": "O"})),
            )
            .await["id"],
    );
    alice
        .ok(
            "POST",
            &format!("/channels/{later}/members"),
            Some(json!({"user_id": bob.user_id})),
        )
        .await;
    let got = bob.ok("GET", &path, None).await;
    assert_eq!(by_type(&got, "channels")["channel_ids"], json!([later]));

    // Refusals change nothing.
    let channels_id = text(&by_type(&got, "channels")["id"]);
    let dms_id = text(&by_type(&got, "direct_messages")["id"]);
    for (method, at, body, status) in [
        (
            "DELETE",
            format!("{path}/{channels_id}"),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "DELETE",
            format!("{path}/nope"),
            None,
            StatusCode::NOT_FOUND,
        ),
        ("GET", format!("{path}/nope"), None, StatusCode::NOT_FOUND),
        (
            "PUT",
            format!("{path}/order"),
            Some(json!([work])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            format!("{path}/order"),
            Some(json!([work, work, channels_id, dms_id])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            path.clone(),
            Some(json!([{"id": work, "type": "channels"}])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            path.clone(),
            Some(json!([{"id": channels_id, "channel_ids": [dm]}])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            path.clone(),
            Some(json!([{"id": dms_id, "muted": true}])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            format!("{path}/{work}"),
            Some(json!({"id": channels_id})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            path.clone(),
            Some(json!({"not": "a list"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            path.clone(),
            Some(json!({"display_name": "  "})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            path.clone(),
            Some(json!({"display_name": "x".repeat(65)})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            path.clone(),
            Some(json!({"display_name": "ok", "channel_ids": ["bad id"]})),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = bob.call(method, &at, body.clone()).await;
        assert_eq!(
            answer.status, status,
            "{method} {at} {body:?}: {}",
            answer.body
        );
        assert!(answer.body["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    // Someone else's sidebar (Carol is no admin), and no session.
    let theirs = carol.call("GET", &path, None).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    let anonymous = Api::new(n1)
        .call("POST", &path, Some(json!({"display_name": "x"})))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let unchanged = bob.ok("GET", &path, None).await;
    assert_eq!(unchanged["order"], json!(reversed));

    // Deleting the custom category: town square goes back to Channels.
    let deleted = bob.call("DELETE", &format!("{path}/{work}"), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["status"], "OK");
    let gone = socket.wait_event("sidebar_category_deleted", WAIT).await;
    assert_eq!(gone["data"]["category_id"], work.as_str());
    let got = categories_on(&bob_on_n3, &path, &applied(&deleted)).await;
    assert_eq!(got["order"].as_array().map(Vec::len), Some(3));
    let mut channels: Vec<String> = by_type(&got, "channels")["channel_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    channels.sort();
    let mut expected = vec![town.clone(), later.clone()];
    expected.sort();
    assert_eq!(channels, expected);
    assert_eq!(
        by_type(&got, "favorites")["channel_ids"],
        json!([off_topic])
    );

    // Taking off-topic out of Favorites deletes the preference.
    let back = bob
        .call(
            "PUT",
            &path,
            Some(json!([{"id": channels_id, "channel_ids": [town, later, off_topic]}])),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    let removed = socket.wait_event("preferences_deleted", WAIT).await;
    assert_eq!(
        inner(&removed["data"]["preferences"])[0]["name"],
        off_topic.as_str()
    );
    let got = bob.ok("GET", &path, None).await;
    assert_eq!(by_type(&got, "favorites")["channel_ids"], json!([]));
}
