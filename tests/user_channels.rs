//! A user's channels across teams as the apps load them, on a real node: every channel and
//! channel membership, unread totals per team (with thread counts), the member picker's
//! `/users?in_team=&not_in_channel=`, `POST /users/ids?since=` and `POST /users/group_channels`.

mod common;

use common::{single_node, team_with, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| text(&v["id"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_members_and_unreads_across_teams() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let (team_a, town_a) = team_with(&alice, "alpha", &[&bob]).await;
    let (team_b, town_b) = team_with(&alice, "beta", &[&bob]).await;
    let direct = alice
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([alice.user_id, bob.user_id])),
        )
        .await;
    let doomed = alice
        .ok(
            "POST",
            "/channels",
            Some(
                json!({"team_id": team_b, "name": "doomed", "display_name": "Doomed", "type": "O"}),
            ),
        )
        .await;
    let doomed_id = text(&doomed["id"]);
    bob.ok(
        "POST",
        &format!("/channels/{doomed_id}/members"),
        Some(json!({"user_id": bob.user_id})),
    )
    .await;
    alice
        .ok("DELETE", &format!("/channels/{doomed_id}"), None)
        .await;

    // Every channel of bob's, in both teams and his DM; the archived one only when asked.
    let channels = bob.ok("GET", "/users/me/channels", None).await;
    let listed = ids(&channels);
    for channel in [&town_a, &town_b, &text(&direct["id"])] {
        assert!(listed.contains(channel), "{channel} in {listed:?}");
    }
    assert!(!listed.contains(&doomed_id));
    let with_deleted = bob
        .ok("GET", "/users/me/channels?include_deleted=true", None)
        .await;
    assert!(ids(&with_deleted).contains(&doomed_id));
    // Memberships: one per channel, all bob's; paged when asked.
    let members = bob.ok("GET", "/users/me/channel_members", None).await;
    let members = members.as_array().expect("a list");
    assert_eq!(members.len(), with_deleted.as_array().map_or(0, Vec::len));
    assert!(members.iter().all(|m| m["user_id"] == json!(bob.user_id)));
    let first = bob
        .ok("GET", "/users/me/channel_members?page=0&per_page=2", None)
        .await;
    let second = bob
        .ok("GET", "/users/me/channel_members?page=1&per_page=2", None)
        .await;
    assert_eq!(first.as_array().map(Vec::len), Some(2));
    assert_ne!(first[0]["channel_id"], second[0]["channel_id"]);
    assert_eq!(
        alice
            .call("GET", &format!("/users/{}/channels", bob.user_id), None)
            .await
            .status,
        StatusCode::OK,
        "the first user is an admin"
    );
    assert_eq!(
        bob.call("GET", &format!("/users/{}/channels", alice.user_id), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Unreads per team: two posts in alpha (one mentions bob), a thread reply bob follows.
    let root = bob
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town_a, "message": "bob's thread"})),
        )
        .await;
    alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town_a, "message": "hello @bob"})),
        )
        .await;
    alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town_a, "message": "a reply", "root_id": root["id"]})),
        )
        .await;
    let unread = bob
        .ok(
            "GET",
            "/users/me/teams/unread?include_collapsed_threads=true",
            None,
        )
        .await;
    let unread = unread.as_array().expect("a list");
    assert_eq!(unread.len(), 2);
    let alpha = unread
        .iter()
        .find(|t| t["team_id"] == json!(team_a))
        .expect("alpha");
    let beta = unread
        .iter()
        .find(|t| t["team_id"] == json!(team_b))
        .expect("beta");
    assert_eq!(alpha["msg_count"], 2, "{alpha}");
    assert_eq!(alpha["msg_count_root"], 1, "{alpha}");
    assert_eq!(alpha["mention_count"], 1, "{alpha}");
    assert_eq!(alpha["thread_count"], 1, "{alpha}");
    assert_eq!(beta["msg_count"], 0, "{beta}");
    assert_eq!(beta["thread_count"], 0, "{beta}");
    let excluded = bob
        .ok(
            "GET",
            &format!("/users/me/teams/unread?exclude_team={team_a}"),
            None,
        )
        .await;
    assert_eq!(ids_of_teams(&excluded), [team_b]);
    // Viewing the channel clears its part.
    bob.ok(
        "POST",
        "/channels/members/me/view",
        Some(json!({"channel_id": town_a})),
    )
    .await;
    let after = bob.ok("GET", "/users/me/teams/unread", None).await;
    let alpha = after
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["team_id"] == json!(team_a))
        .cloned()
        .expect("alpha");
    assert_eq!(alpha["msg_count"], 0, "{alpha}");
    assert_eq!(alpha["mention_count"], 0, "{alpha}");
}

fn ids_of_teams(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|t| text(&t["team_id"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_picker_ids_since_and_group_channels() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let carol = Api::signup(&node.api, "carol").await;
    let dave = Api::signup(&node.api, "dave").await;
    let (team, _town) = team_with(&alice, "picker", &[&bob, &carol]).await;
    let private = alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team, "name": "inner", "display_name": "Inner", "type": "P"})),
        )
        .await;
    let private_id = text(&private["id"]);
    alice
        .ok(
            "POST",
            &format!("/channels/{private_id}/members"),
            Some(json!({"user_id": bob.user_id})),
        )
        .await;

    // Team members not in the channel: carol only (alice and bob are in it, dave not in the team).
    let outside = bob
        .ok(
            "GET",
            &format!("/users?in_team={team}&not_in_channel={private_id}"),
            None,
        )
        .await;
    assert_eq!(
        ids(&outside),
        BTreeSet::from([carol.user_id.clone()]),
        "{outside}"
    );
    let page_two = bob
        .ok(
            "GET",
            &format!("/users?in_team={team}&not_in_channel={private_id}&page=1&per_page=1"),
            None,
        )
        .await;
    assert_eq!(page_two, json!([]));
    assert_eq!(
        bob.call("GET", &format!("/users?not_in_channel={private_id}"), None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        dave.call(
            "GET",
            &format!("/users?in_team={team}&not_in_channel={private_id}"),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN,
        "not a member of the team"
    );

    // POST /users/ids?since=: only users changed after it.
    let everyone = json!([alice.user_id, bob.user_id, carol.user_id]);
    let all = bob.ok("POST", "/users/ids", Some(everyone.clone())).await;
    let since = all
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|u| u["update_at"].as_u64())
        .max()
        .expect("update_at");
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    carol
        .ok("PUT", "/users/me/patch", Some(json!({"nickname": "cc"})))
        .await;
    let changed = bob
        .ok("POST", &format!("/users/ids?since={since}"), Some(everyone))
        .await;
    assert_eq!(ids(&changed), BTreeSet::from([carol.user_id.clone()]));

    // Group channels: members of the caller's groups only.
    let group = bob
        .ok(
            "POST",
            "/channels/group",
            Some(json!([alice.user_id, bob.user_id, carol.user_id])),
        )
        .await;
    let group_id = text(&group["id"]);
    let named = bob
        .ok("POST", "/users/group_channels", Some(json!([group_id])))
        .await;
    let members: BTreeSet<String> = named[&group_id]
        .as_array()
        .expect("members")
        .iter()
        .map(|u| text(&u["id"]))
        .collect();
    assert_eq!(
        members,
        BTreeSet::from([
            alice.user_id.clone(),
            bob.user_id.clone(),
            carol.user_id.clone()
        ])
    );
    let not_mine = dave
        .ok("POST", "/users/group_channels", Some(json!([group_id])))
        .await;
    assert_eq!(not_mine, json!({}));
    assert_eq!(
        dave.call("POST", "/users/group_channels", Some(json!(["nope"])))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_list_pages_after_privacy_with_a_total() {
    let (_dir, node) = single_node().await;
    let admin = Api::signup(&node.api, "admin").await;
    let bob = Api::signup(&node.api, "bob").await;
    for name in ["open-a", "open-b", "open-c"] {
        team_with(&admin, name, &[]).await;
    }
    let hidden = admin
        .ok(
            "POST",
            "/teams",
            Some(json!({"name": "invite-only", "display_name": "Invite", "type": "I"})),
        )
        .await;
    let hidden_id = text(&hidden["id"]);

    // Bob sees the three open teams, two per page, and the total of what he may see.
    let first = bob
        .ok(
            "GET",
            "/teams?page=0&per_page=2&include_total_count=true",
            None,
        )
        .await;
    assert_eq!(first["total_count"], 3, "{first}");
    assert_eq!(first["teams"].as_array().map(Vec::len), Some(2));
    let second = bob
        .ok(
            "GET",
            "/teams?page=1&per_page=2&include_total_count=true",
            None,
        )
        .await;
    assert_eq!(second["teams"].as_array().map(Vec::len), Some(1));
    let mut seen = ids(&first["teams"]);
    seen.extend(ids(&second["teams"]));
    assert_eq!(seen.len(), 3);
    assert!(!seen.contains(&hidden_id));
    // Without the flag: a plain list. The admin sees the invite-only team too.
    let plain = bob.ok("GET", "/teams", None).await;
    assert_eq!(plain.as_array().map(Vec::len), Some(3));
    let all = admin
        .ok("GET", "/teams?include_total_count=true", None)
        .await;
    assert_eq!(all["total_count"], 4);
    assert!(ids(&all["teams"]).contains(&hidden_id));
    assert_eq!(
        bob.call("GET", "/teams?page=-1", None).await.status,
        StatusCode::BAD_REQUEST
    );
}
