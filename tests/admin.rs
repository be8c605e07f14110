//! Running teams and channels over HTTP on real nodes: team patch/update and invite links
//! (regenerate, the public invite info, joining by the secret, allowed domains), team and
//! channel admins (`roles` and `schemeRoles`), channel privacy (`privacy`, `convert`), each
//! with its refusals and its WebSocket events; and on a 3-node cluster, profile pictures and
//! custom emoji (with `metadata.emojis`) written on one node and read on another.

mod common;

use common::{applied_index, inner, single_node, team_with, three_nodes, Api, Socket};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The error id of a Mattermost-shaped refusal.
fn error_id(answer: &common::Answer) -> String {
    text(&answer.body["id"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_admins_edit_their_team_and_its_invite_link() {
    let (_dir, node) = single_node().await;
    let base = &node.api;
    let _root = Api::signup(base, "root").await; // the first user: system admin
    let bob = Api::signup(base, "bob").await;
    let carol = Api::signup(base, "carol").await;
    let dave = Api::signup(base, "dave").await;
    let (team, _town) = team_with(&bob, "bobs", &[&carol]).await;
    let mut carol_socket = Socket::connect(base, carol.token.as_deref().unwrap()).await;

    // The creator runs the team; its invite secret is set and shown to members only.
    let created = bob.ok("GET", &format!("/teams/{team}"), None).await;
    let secret = text(&created["invite_id"]);
    assert_eq!(secret.len(), 26, "{created}");
    let listed = dave.ok("GET", "/teams", None).await;
    let seen_by_outsider = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == team.as_str())
        .expect("an open team is listed");
    assert_eq!(seen_by_outsider["invite_id"], "");

    let patched = bob
        .call(
            "PUT",
            &format!("/teams/{team}/patch"),
            Some(json!({"display_name": "Bob's Team", "description": "we ship", "allow_open_invite": false})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["display_name"], "Bob's Team");
    assert_eq!(patched.body["description"], "we ship");
    assert_eq!(patched.body["allow_open_invite"], false);
    assert_eq!(patched.body["name"], "bobs");
    let event = carol_socket.wait_event("update_team", WAIT).await;
    let sent = inner(&event["data"]["team"]);
    assert_eq!(sent["display_name"], "Bob's Team");
    assert_eq!(sent["invite_id"], "", "events carry the team sanitized");
    assert_eq!(event["broadcast"]["team_id"], team.as_str());

    // Closed to self-service now: dave can neither see it listed nor join it.
    let listed = dave.ok("GET", "/teams", None).await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["id"] != team.as_str()));
    let join = dave
        .call(
            "POST",
            &format!("/teams/{team}/members"),
            Some(json!({"team_id": team, "user_id": dave.user_id})),
        )
        .await;
    assert_eq!(join.status, StatusCode::FORBIDDEN);

    // Members who do not run the team may not edit it.
    let refused = carol
        .call(
            "PUT",
            &format!("/teams/{team}/patch"),
            Some(json!({"display_name": "Carol's"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // The full update needs the matching id and a display name; bad bodies are 400s.
    let mismatch = bob
        .call(
            "PUT",
            &format!("/teams/{team}"),
            Some(json!({"id": carol.user_id, "display_name": "X"})),
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    let too_long = bob
        .call(
            "PUT",
            &format!("/teams/{team}/patch"),
            Some(json!({"description": "d".repeat(300)})),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    let updated = bob
        .ok(
            "PUT",
            &format!("/teams/{team}"),
            Some(json!({"id": team, "display_name": "Bobs", "company_name": "Bob Inc"})),
        )
        .await;
    assert_eq!(updated["company_name"], "Bob Inc");
    assert_eq!(
        updated["description"], "we ship",
        "fields not given are kept"
    );
    let missing = bob
        .call(
            "PUT",
            "/teams/aaaaaaaaaaaaaaaaaaaaaaaaaa/patch",
            Some(json!({"display_name": "X"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The invite link: anyone (no session) reads what it leads to; a user joins by it.
    let info = Api::new(base)
        .call("GET", &format!("/teams/invite/{secret}"), None)
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.body["display_name"], "Bobs");
    assert_eq!(info.body["id"], team.as_str());
    assert_eq!(info.body.get("invite_id"), None);
    let joined = dave
        .call(
            "POST",
            &format!("/teams/members/invite?invite_id={secret}"),
            None,
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(joined.body["team_id"], team.as_str());
    assert_eq!(joined.body["user_id"], dave.user_id.as_str());

    // Regenerating ends the old link.
    let regenerated = bob
        .ok("POST", &format!("/teams/{team}/regenerate_invite_id"), None)
        .await;
    let new_secret = text(&regenerated["invite_id"]);
    assert_eq!(new_secret.len(), 26);
    assert_ne!(new_secret, secret);
    let old = Api::new(base)
        .call("GET", &format!("/teams/invite/{secret}"), None)
        .await;
    assert_eq!(old.status, StatusCode::NOT_FOUND);
    let late = Api::signup(base, "erin").await;
    let refused = late
        .call(
            "POST",
            &format!("/teams/members/invite?invite_id={secret}"),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let no_id = late.call("POST", "/teams/members/invite", None).await;
    assert_eq!(no_id.status, StatusCode::BAD_REQUEST);
    let bad = Api::new(base)
        .call("GET", "/teams/invite/not-a-secret!", None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Allowed domains bind joining by link too.
    bob.ok(
        "PUT",
        &format!("/teams/{team}/patch"),
        Some(json!({"allowed_domains": "corp.example"})),
    )
    .await;
    let outsider = late
        .call(
            "POST",
            &format!("/teams/members/invite?invite_id={new_secret}"),
            None,
        )
        .await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN, "{}", outsider.body);

    // Team admins: appointed by `roles` or `schemeRoles`; the member is told.
    let roles_path = format!("/teams/{team}/members/{}/roles", carol.user_id);
    let refused = carol
        .call(
            "PUT",
            &roles_path,
            Some(json!({"roles": "team_user team_admin"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let unknown = bob
        .call(
            "PUT",
            &roles_path,
            Some(json!({"roles": "team_user system_admin"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let granted = bob
        .call(
            "PUT",
            &roles_path,
            Some(json!({"roles": "team_user team_admin"})),
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(granted.body["status"], "OK");
    let event = carol_socket.wait_event("memberrole_updated", WAIT).await;
    assert_eq!(inner(&event["data"]["member"])["scheme_admin"], true);
    let member = carol
        .ok(
            "GET",
            &format!("/teams/{team}/members/{}", carol.user_id),
            None,
        )
        .await;
    assert_eq!(member["roles"], "team_user team_admin");
    // Now carol runs the team.
    carol
        .ok(
            "PUT",
            &format!("/teams/{team}/patch"),
            Some(json!({"description": "carol was here"})),
        )
        .await;
    bob.ok(
        "PUT",
        &format!("/teams/{team}/members/{}/schemeRoles", carol.user_id),
        Some(json!({"scheme_admin": false, "scheme_user": true})),
    )
    .await;
    let member = carol
        .ok(
            "GET",
            &format!("/teams/{team}/members/{}", carol.user_id),
            None,
        )
        .await;
    assert_eq!(member["scheme_admin"], false);
    let guest = bob
        .call(
            "PUT",
            &format!("/teams/{team}/members/{}/schemeRoles", carol.user_id),
            Some(json!({"scheme_admin": false, "scheme_user": false, "scheme_guest": true})),
        )
        .await;
    assert_eq!(guest.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_admins_change_privacy_and_appoint_admins() {
    let (_dir, node) = single_node().await;
    let base = &node.api;
    let _root = Api::signup(base, "root").await;
    let bob = Api::signup(base, "bob").await;
    let carol = Api::signup(base, "carol").await;
    let dave = Api::signup(base, "dave").await;
    let (team, town) = team_with(&bob, "chans", &[&carol, &dave]).await;
    // Carol creates a channel: she runs it; bob runs the team.
    let channel = carol
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team, "name": "plans", "display_name": "Plans", "type": "O"})),
        )
        .await;
    let channel = text(&channel["id"]);
    let own = carol
        .ok(
            "GET",
            &format!("/channels/{channel}/members/{}", carol.user_id),
            None,
        )
        .await;
    assert_eq!(own["scheme_admin"], true, "{own}");
    carol
        .ok(
            "POST",
            &format!("/channels/{channel}/members"),
            Some(json!({"user_id": dave.user_id})),
        )
        .await;
    let mut dave_socket = Socket::connect(base, dave.token.as_deref().unwrap()).await;
    let mut bob_socket = Socket::connect(base, bob.token.as_deref().unwrap()).await;

    // Dave is a plain member: he may not change privacy or roles.
    let refused = dave
        .call(
            "PUT",
            &format!("/channels/{channel}/privacy"),
            Some(json!({"privacy": "P"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let bad = carol
        .call(
            "PUT",
            &format!("/channels/{channel}/privacy"),
            Some(json!({"privacy": "D"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let private = carol
        .call(
            "PUT",
            &format!("/channels/{channel}/privacy"),
            Some(json!({"privacy": "P"})),
        )
        .await;
    assert_eq!(private.status, StatusCode::OK, "{}", private.body);
    assert_eq!(private.body["type"], "P");
    let updated = dave_socket.wait_event("channel_updated", WAIT).await;
    assert_eq!(inner(&updated["data"]["channel"])["type"], "P");
    // Bob is in the team but not the channel: he hears it left the public list.
    let converted = bob_socket.wait_event("channel_converted", WAIT).await;
    assert_eq!(converted["data"]["channel_id"], channel.as_str());
    let public: Value = bob
        .ok("GET", &format!("/teams/{team}/channels"), None)
        .await;
    assert!(public
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != channel.as_str()));
    // Already private: the old convert route refuses, the privacy route answers it as it is
    // (as Mattermost does, so a retry is no error); the team's default channel stays open.
    let again = carol
        .call("POST", &format!("/channels/{channel}/convert"), None)
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let same = carol
        .call(
            "PUT",
            &format!("/channels/{channel}/privacy"),
            Some(json!({"privacy": "P"})),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert_eq!(same.body["type"], "P");
    let town_private = bob
        .call(
            "PUT",
            &format!("/channels/{town}/privacy"),
            Some(json!({"privacy": "P"})),
        )
        .await;
    assert_eq!(town_private.status, StatusCode::BAD_REQUEST);
    // The team admin runs every channel of the team, member or not.
    let reopened = bob
        .call(
            "PUT",
            &format!("/channels/{channel}/privacy"),
            Some(json!({"privacy": "O"})),
        )
        .await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.body);
    assert_eq!(reopened.body["type"], "O");

    // Channel admins: appointed and removed; the member's sockets are told.
    let roles_path = format!("/channels/{channel}/members/{}/roles", dave.user_id);
    let unknown = carol
        .call(
            "PUT",
            &roles_path,
            Some(json!({"roles": "channel_user team_admin"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    carol
        .ok(
            "PUT",
            &roles_path,
            Some(json!({"roles": "channel_user channel_admin"})),
        )
        .await;
    let event = dave_socket.wait_event("channel_member_updated", WAIT).await;
    let member = inner(&event["data"]["channelMember"]);
    assert_eq!(member["scheme_admin"], true, "{member}");
    // Dave now runs it: he converts it.
    dave.ok("POST", &format!("/channels/{channel}/convert"), None)
        .await;
    carol
        .ok(
            "PUT",
            &format!("/channels/{channel}/members/{}/schemeRoles", dave.user_id),
            Some(json!({"scheme_admin": false, "scheme_user": true})),
        )
        .await;
    let member = dave
        .ok(
            "GET",
            &format!("/channels/{channel}/members/{}", dave.user_id),
            None,
        )
        .await;
    assert_eq!(member["scheme_admin"], false);
    let not_member = carol
        .call(
            "PUT",
            &format!("/channels/{channel}/members/{}/roles", bob.user_id),
            Some(json!({"roles": "channel_user channel_admin"})),
        )
        .await;
    assert_eq!(
        not_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        not_member.body
    );
    // Roles say what channel admins may do.
    let roles = dave
        .ok("POST", "/roles/names", Some(json!(["channel_admin"])))
        .await;
    let permissions = &roles[0]["permissions"];
    assert!(permissions
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "manage_channel_roles"));
}

fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// GET of a binary route: status, content type, bytes.
async fn get_bytes(api: &Api, path: &str) -> (StatusCode, String, Vec<u8>) {
    let answer = reqwest::Client::new()
        .get(format!("{}/api/v4{path}", api.base))
        .header(
            "Authorization",
            format!("Bearer {}", api.token.as_deref().unwrap_or_default()),
        )
        .send()
        .await
        .expect("get");
    let status = answer.status();
    let kind = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, answer.bytes().await.expect("bytes").to_vec())
}

/// A multipart POST; the answer's status, body and applied index (0 when none).
async fn post_form(api: &Api, path: &str, form: Form) -> (StatusCode, Value, u64) {
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v4{path}", api.base))
        .header(
            "Authorization",
            format!("Bearer {}", api.token.as_deref().unwrap_or_default()),
        )
        .multipart(form)
        .send()
        .await
        .expect("post");
    let status = answer.status();
    let index = answer
        .headers()
        .get("x-confab-applied")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (status, answer.json().await.unwrap_or(Value::Null), index)
}

fn image_form(bytes: Vec<u8>) -> Form {
    Form::new().part("image", Part::bytes(bytes).file_name("me.png"))
}

fn emoji_form(name: &str, creator: &str, bytes: Vec<u8>) -> Form {
    Form::new()
        .text(
            "emoji",
            json!({"name": name, "creator_id": creator}).to_string(),
        )
        .part("image", Part::bytes(bytes).file_name("e.png"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_pictures_and_custom_emoji_replicate() {
    let (_dir, nodes) = three_nodes().await;
    let (n1, n3) = (&nodes[0].api, &nodes[2].api);
    let root = Api::signup(n1, "root").await;
    let bob = Api::signup(n1, "bob").await;
    let carol = Api::signup(n1, "carol").await;
    let (_team, town) = team_with(&bob, "pics", &[&carol]).await;
    let bob3 = bob.on(n3);
    let carol3 = carol.on(n3);

    // The generated picture: a 128 px PNG, the same from every node.
    let (status, kind, generated) =
        get_bytes(&carol, &format!("/users/{}/image", bob.user_id)).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "image/png"));
    let decoded = image::load_from_memory(&generated).expect("a PNG");
    assert_eq!((decoded.width(), decoded.height()), (128, 128));
    let (_, _, from_n3) = get_bytes(&carol3, &format!("/users/{}/image", bob.user_id)).await;
    assert_eq!(from_n3, generated);
    let (_, _, default) = get_bytes(&carol, &format!("/users/{}/image/default", bob.user_id)).await;
    assert_eq!(default, generated);
    let (status, _, _) = get_bytes(&carol, "/users/aaaaaaaaaaaaaaaaaaaaaaaaaa/image").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bob uploads a photo; everyone sharing a team hears `user_updated`, and every node serves
    // the 128 px square.
    let mut carol_socket = Socket::connect(n3, carol.token.as_deref().unwrap()).await;
    let (status, body, index) = post_form(
        &bob,
        &format!("/users/{}/image", bob.user_id),
        image_form(png(300, 200, [200, 30, 30])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = carol_socket.wait_event("user_updated", WAIT).await;
    let stamp = event["data"]["user"]["last_picture_update"]
        .as_i64()
        .unwrap_or(0);
    assert!(stamp > 0, "{event}");
    let wait = index.to_string();
    let me = bob3
        .call_with(
            "GET",
            "/users/me",
            None,
            &[("X-Confab-Applied", wait.as_str())],
        )
        .await;
    assert_eq!(me.body["last_picture_update"].as_i64(), Some(stamp));
    let (_, kind, uploaded) =
        get_bytes(&carol3, &format!("/users/{}/image?_={stamp}", bob.user_id)).await;
    assert_eq!(kind, "image/png");
    let picture = image::load_from_memory(&uploaded).expect("a PNG").to_rgb8();
    assert_eq!(picture.dimensions(), (128, 128));
    assert!(
        picture.get_pixel(64, 64).0[0] > 150,
        "the photo, not the initial"
    );
    // Not an image; someone else's picture; no `image` part: refused, nothing changes.
    let (status, body, _) = post_form(
        &bob,
        &format!("/users/{}/image", bob.user_id),
        image_form(b"plain text".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = post_form(
        &carol,
        &format!("/users/{}/image", bob.user_id),
        image_form(png(10, 10, [0, 0, 0])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(
        &bob,
        &format!("/users/{}/image", bob.user_id),
        Form::new().text("other", "x"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The admin may reset it; the stamp goes negative and the generated picture is back.
    let reset = root
        .call("DELETE", &format!("/users/{}/image", bob.user_id), None)
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let wait = applied_index(&reset).to_string();
    let me = bob3
        .call_with(
            "GET",
            "/users/me",
            None,
            &[("X-Confab-Applied", wait.as_str())],
        )
        .await;
    assert!(me.body["last_picture_update"].as_i64().unwrap_or(0) < 0);
    let (_, _, back) = get_bytes(&carol3, &format!("/users/{}/image", bob.user_id)).await;
    assert_eq!(back, generated);

    // Custom emoji: created on node 1, announced to everyone, served by node 3.
    let (status, body, index) = post_form(
        &bob,
        "/emoji",
        emoji_form("party_parrot", &bob.user_id, png(256, 256, [1, 2, 3])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let emoji_id = text(&body["id"]);
    assert_eq!(body["name"], "party_parrot");
    assert_eq!(body["creator_id"], bob.user_id.as_str());
    let added = carol_socket.wait_event("emoji_added", WAIT).await;
    assert_eq!(inner(&added["data"]["emoji"])["id"], emoji_id.as_str());
    let wait = index.to_string();
    let by_name = carol3
        .call_with(
            "GET",
            "/emoji/name/party_parrot",
            None,
            &[("X-Confab-Applied", wait.as_str())],
        )
        .await;
    assert_eq!(by_name.status, StatusCode::OK, "{}", by_name.body);
    assert_eq!(by_name.body["id"], emoji_id.as_str());
    let (status, kind, image) = get_bytes(&carol3, &format!("/emoji/{emoji_id}/image")).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "image/png"));
    let fitted = image::load_from_memory(&image).expect("an image");
    assert_eq!((fitted.width(), fitted.height()), (128, 128));
    // A second one, then listing, search, autocomplete and names.
    let (status, body, _) = post_form(
        &carol,
        "/emoji",
        emoji_form("rainbow_parrot", "", png(16, 16, [9, 9, 9])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .map(|l| l.iter().map(|e| text(&e["name"])).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        names(&carol.ok("GET", "/emoji?sort=name", None).await),
        ["party_parrot", "rainbow_parrot"]
    );
    assert_eq!(
        names(&carol.ok("GET", "/emoji?page=0&per_page=1", None).await),
        ["party_parrot"]
    );
    assert_eq!(
        names(
            &carol
                .ok("POST", "/emoji/search", Some(json!({"term": "rot"})))
                .await
        ),
        ["party_parrot", "rainbow_parrot"]
    );
    assert_eq!(
        names(
            &carol
                .ok(
                    "POST",
                    "/emoji/search",
                    Some(json!({"term": "part", "prefix_only": true}))
                )
                .await
        ),
        ["party_parrot"]
    );
    assert_eq!(
        names(&carol.ok("GET", "/emoji/autocomplete?name=rain", None).await),
        ["rainbow_parrot"]
    );
    assert_eq!(
        names(
            &carol
                .ok(
                    "POST",
                    "/emoji/names",
                    Some(json!(["rainbow_parrot", "nope", "smile"]))
                )
                .await
        ),
        ["rainbow_parrot"]
    );
    // Refusals: a taken name, a standard emoji's name, a bad name, someone else as creator,
    // no image, a missing emoji.
    for (name, creator, expected) in [
        (
            "rainbow_parrot",
            bob.user_id.as_str(),
            StatusCode::BAD_REQUEST,
        ),
        // `parrot` is a standard emoji (Unicode 13).
        ("parrot", bob.user_id.as_str(), StatusCode::BAD_REQUEST),
        ("bad name", bob.user_id.as_str(), StatusCode::BAD_REQUEST),
        ("mine", carol.user_id.as_str(), StatusCode::FORBIDDEN),
    ] {
        let (status, body, _) = post_form(
            &bob,
            "/emoji",
            emoji_form(name, creator, png(8, 8, [0, 0, 0])),
        )
        .await;
        assert_eq!(status, expected, "{name}: {body}");
    }
    let (status, _, _) = post_form(
        &bob,
        "/emoji",
        Form::new().text("emoji", json!({"name": "noimage"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let missing = carol.call("GET", "/emoji/name/not_there", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!error_id(&missing).is_empty());

    // A post using a custom emoji lists it in `metadata.emojis` (text and reactions), live and
    // when read back; a standard emoji is not listed.
    let post = carol
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "ship it :party_parrot: :smile:"})),
        )
        .await;
    let emojis = &post["metadata"]["emojis"];
    assert_eq!(names(emojis), ["party_parrot"], "{post}");
    let posted = carol_socket.wait_event("posted", WAIT).await;
    assert_eq!(
        names(&inner(&posted["data"]["post"])["metadata"]["emojis"]),
        ["party_parrot"]
    );
    let post_id = text(&post["id"]);
    carol
        .ok(
            "POST",
            "/reactions",
            Some(json!({"user_id": carol.user_id, "post_id": post_id, "emoji_name": "rainbow_parrot"})),
        )
        .await;
    let page = carol
        .ok("GET", &format!("/channels/{town}/posts"), None)
        .await;
    assert_eq!(
        names(&page["posts"][post_id.as_str()]["metadata"]["emojis"]),
        ["party_parrot", "rainbow_parrot"]
    );

    // Only the creator or an admin deletes; then the name is gone everywhere.
    let refused = carol
        .call("DELETE", &format!("/emoji/{emoji_id}"), None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let deleted = bob
        .call("DELETE", &format!("/emoji/{emoji_id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let wait = applied_index(&deleted).to_string();
    let gone = carol3
        .call_with(
            "GET",
            &format!("/emoji/{emoji_id}"),
            None,
            &[("X-Confab-Applied", wait.as_str())],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let (status, _, _) = get_bytes(&carol3, &format!("/emoji/{emoji_id}/image")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
