//! Push notifications through a real push-proxy receiver on loopback: the PushNotification JSON
//! field by field in each contents mode, Mattermost's rules (DM, @mention, @channel and its
//! cap, mute, push=none/all, the author, push_status, CRT followers), REMOVE detaching the
//! device, clear on view, the device and ack routes; and on 3 nodes, exactly once with a leader
//! killed mid-dispatch (pushes, and the emails that share their batches).

mod common;

use common::push_proxy::PushProxy;
use common::smtp::SmtpSink;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn push_node(proxy: &PushProxy, extra: &[&str]) -> (tempfile::TempDir, Node) {
    let mut flags = vec![
        "--send-push-notifications",
        "true",
        "--push-notification-server",
        proxy.url.as_str(),
    ];
    flags.extend_from_slice(extra);
    single_node_with(&flags).await
}

async fn attach(api: &Api, device_id: &str) {
    let answer = api
        .call(
            "PUT",
            "/users/sessions/device",
            Some(json!({"device_id": device_id})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, json!({"status": "OK"}));
}

/// Posts and answers (post id, applied index).
async fn post(api: &Api, channel: &str, message: &str, root: &str) -> (String, u64) {
    let answer = api
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel, "message": message, "root_id": root})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    (
        answer.body["id"].as_str().expect("post id").to_string(),
        applied_index(&answer),
    )
}

/// Waits until the notifications of every entry up to `index` were dispatched (sent, or found
/// not due): the mark only moves after a batch's pushes were answered.
async fn settled(base: &str, index: u64) {
    eventually(WAIT, "notifications dispatched", || async {
        let m = metrics(base).await;
        (m.get("confab_notify_dispatched_index")
            .copied()
            .unwrap_or(0.0)
            >= index as f64)
            .then_some(())
    })
    .await;
}

async fn set_user_props(api: &Api, props: Value) {
    let answer = api
        .call(
            "PUT",
            &format!("/users/{}/patch", api.user_id),
            Some(json!({ "notify_props": props })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

async fn set_channel_props(api: &Api, channel: &str, props: Value) {
    let answer = api
        .call(
            "PUT",
            &format!("/channels/{channel}/members/{}/notify_props", api.user_id),
            Some(props),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

async fn direct(a: &Api, b: &Api) -> String {
    let dm = a
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([a.user_id, b.user_id])),
        )
        .await;
    dm["id"].as_str().expect("dm id").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_and_json_in_full_mode() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(&proxy, &[]).await;
    let base = node.api.clone();
    let (alice, bob, carol, team, public, private) = team_fixture(&base).await;
    attach(&alice, "apple_rn-v2:alice-token").await;
    attach(&bob, "android_rn-v2:bob-token").await;
    attach(&carol, "apple:carol-token").await;
    // The device shows on the session.
    let sessions = bob
        .ok("GET", &format!("/users/{}/sessions", bob.user_id), None)
        .await;
    assert_eq!(sessions[0]["device_id"], "android_rn-v2:bob-token");

    // @mention: bob only; the author mentioning herself gets nothing; carol is not mentioned.
    let (mention, index) = post(&alice, &public, "hi @bob and @alice", "").await;
    settled(&base, index).await;
    let pushes = proxy.pushes();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let push = &pushes[0];
    let fields = [
        ("platform", json!("android_rn-v2")),
        ("device_id", json!("bob-token")),
        ("post_id", json!(mention)),
        ("category", json!("CAN_REPLY")),
        ("version", json!("v2")),
        ("type", json!("message")),
        ("team_id", json!(team)),
        ("channel_id", json!(public)),
        ("channel_name", json!("Pub")),
        ("sender_id", json!(alice.user_id)),
        ("sender_name", json!("alice")),
        ("message", json!("alice: hi @bob and @alice")),
        ("badge", json!(1)),
        ("is_crt_enabled", json!(false)),
        ("is_id_loaded", json!(false)),
    ];
    for (field, value) in fields {
        assert_eq!(push[field], value, "field {field} of {push}");
    }
    assert!(push.get("root_id").is_none(), "a root post has no root_id");
    assert_eq!(push["ack_id"].as_str().map(str::len), Some(26));
    assert!(!push["server_id"].as_str().unwrap_or_default().is_empty());

    // A DM: the raw text, the sender as channel name, no team.
    let dm = direct(&alice, &bob).await;
    let (_, index) = post(&alice, &dm, "psst", "").await;
    settled(&base, index).await;
    let to_bob = proxy.pushes_to("bob-token");
    assert_eq!(to_bob.len(), 2);
    assert_eq!(to_bob[1]["message"], "psst");
    assert_eq!(to_bob[1]["channel_name"], "alice");
    assert_eq!(to_bob[1]["channel_id"], json!(dm));
    assert!(to_bob[1].get("team_id").is_none());
    // The badge is Mattermost's unread count: the unread mention in the public channel plus
    // every unread message of a direct channel.
    assert_eq!(to_bob[1]["badge"], 2);

    // @channel: both members with devices, not the author.
    let (wide, index) = post(&alice, &public, "@channel standup", "").await;
    settled(&base, index).await;
    assert_eq!(
        proxy.pushes_to("bob-token").last().unwrap()["post_id"],
        json!(wide)
    );
    assert_eq!(proxy.pushes_to("carol-token").len(), 1);
    assert!(proxy.pushes_to("alice-token").is_empty());

    // Muted: bob mutes the public channel; a mention there sends him nothing.
    set_channel_props(&bob, &public, json!({"mark_unread": "mention"})).await;
    let member = bob
        .ok(
            "GET",
            &format!("/channels/{public}/members/{}", bob.user_id),
            None,
        )
        .await;
    assert_eq!(member["notify_props"]["mark_unread"], "mention");
    assert_eq!(member["notify_props"]["push"], "default");
    let before = proxy.pushes_to("bob-token").len();
    let (_, index) = post(&alice, &public, "@bob muted?", "").await;
    settled(&base, index).await;
    assert_eq!(proxy.pushes_to("bob-token").len(), before);

    // push=none: carol's own mention sends nothing; push=all: a plain post reaches her.
    set_user_props(&carol, json!({"push": "none"})).await;
    let (_, index) = post(&alice, &public, "@carol quiet", "").await;
    settled(&base, index).await;
    assert_eq!(proxy.pushes_to("carol-token").len(), 1);
    set_user_props(&carol, json!({"push": "all"})).await;
    let me = carol.ok("GET", "/users/me", None).await;
    assert_eq!(me["notify_props"]["push"], "all");
    assert_eq!(me["notify_props"]["push_status"], "away");
    let (plain, index) = post(&alice, &public, "no mention here", "").await;
    settled(&base, index).await;
    let to_carol = proxy.pushes_to("carol-token");
    assert_eq!(to_carol.len(), 2);
    assert_eq!(to_carol[1]["post_id"], json!(plain));
    // The channel-member level: bob's push=all in the private channel.
    set_channel_props(&bob, &private, json!({"push": "all"})).await;
    let before = proxy.pushes_to("bob-token").len();
    let (_, index) = post(&alice, &private, "plain in private", "").await;
    settled(&base, index).await;
    assert_eq!(proxy.pushes_to("bob-token").len(), before + 1);

    // Online (a socket open) with push_status=away: nothing; with push_status=online and no
    // active channel: a push.
    let socket = Socket::connect(&base, bob.token.as_deref().unwrap()).await;
    let before = proxy.pushes_to("bob-token").len();
    let (_, index) = post(&alice, &private, "@bob online", "").await;
    settled(&base, index).await;
    assert_eq!(proxy.pushes_to("bob-token").len(), before);
    set_user_props(&bob, json!({"push_status": "online"})).await;
    let (_, index) = post(&alice, &private, "@bob online again", "").await;
    settled(&base, index).await;
    assert_eq!(proxy.pushes_to("bob-token").len(), before + 1);
    socket.close().await;

    // CRT follower: bob turns collapsed threads on and writes a root; alice's reply reaches
    // him as a thread push.
    bob.ok(
        "PUT",
        &format!("/users/{}/preferences", bob.user_id),
        Some(json!([{"user_id": bob.user_id, "category": "display_settings", "name": "collapsed_reply_threads", "value": "on"}])),
    )
    .await;
    let (root, _) = post(&bob, &private, "a root by bob", "").await;
    let (reply, index) = post(&alice, &private, "a reply", &root).await;
    settled(&base, index).await;
    let thread_push = proxy.pushes_to("bob-token").last().cloned().unwrap();
    assert_eq!(thread_push["post_id"], json!(reply));
    assert_eq!(thread_push["root_id"], json!(root));
    assert_eq!(thread_push["is_crt_enabled"], true);
    assert_eq!(thread_push["channel_name"], "Reply in Priv");

    // Clear on view: bob reads the private channel, where he had unread mentions.
    let view = bob
        .call(
            "POST",
            "/channels/members/me/view",
            Some(json!({"channel_id": private})),
        )
        .await;
    assert_eq!(view.status, StatusCode::OK);
    let cleared = eventually(WAIT, "a clear push", || async {
        proxy
            .pushes_to("bob-token")
            .into_iter()
            .find(|p| p["type"] == "clear")
    })
    .await;
    assert_eq!(cleared["channel_id"], json!(private));
    assert_eq!(cleared["version"], "v2");
    assert_eq!(cleared["cont_ava"], 1);
    assert_eq!(cleared["post_id"], "");

    // REMOVE: the proxy says carol's device is gone; her session loses it.
    proxy.remove_device("carol-token");
    let (_, index) = post(&alice, &public, "@carol are you there", "").await;
    settled(&base, index).await;
    let sessions = carol
        .ok("GET", &format!("/users/{}/sessions", carol.user_id), None)
        .await;
    assert_eq!(sessions[0]["device_id"], "");
    let removed = metrics(&base).await;
    assert!(removed["confab_push_devices_removed_total"] >= 1.0);
    assert!(removed["confab_push_sent_total"] >= 8.0);
    assert_eq!(removed["confab_notify_outbox_backlog"], 0.0);
    let to_carol = proxy.pushes_to("carol-token").len();
    let (_, index) = post(&alice, &public, "@carol still?", "").await;
    settled(&base, index).await;
    assert_eq!(proxy.pushes_to("carol-token").len(), to_carol, "detached");
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_contents_and_the_channel_mention_cap() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(
        &proxy,
        &[
            "--push-notification-contents",
            "generic",
            "--max-notifications-per-channel",
            "3",
        ],
    )
    .await;
    let base = node.api.clone();
    let (alice, bob, _carol, _team, public, _private) = team_fixture(&base).await;
    attach(&bob, "android:bob").await;
    // Three members: at the cap, @channel notifies nobody and counts for nobody (as
    // Mattermost's mention counts leave it out); an explicit mention still does both.
    let bobs_mentions = || async {
        bob.ok(
            "GET",
            &format!("/channels/{public}/members/{}", bob.user_id),
            None,
        )
        .await["mention_count"]
            .as_u64()
    };
    let (_, index) = post(&alice, &public, "@channel hello", "").await;
    settled(&base, index).await;
    assert!(proxy.pushes().is_empty());
    assert_eq!(bobs_mentions().await, Some(0));
    let (_, index) = post(&alice, &public, "@here hello", "").await;
    settled(&base, index).await;
    assert_eq!(bobs_mentions().await, Some(0));
    let (_, index) = post(&alice, &public, "@bob hello", "").await;
    settled(&base, index).await;
    assert_eq!(bobs_mentions().await, Some(1));
    let dm = direct(&alice, &bob).await;
    let (_, index) = post(&alice, &dm, "secret text", "").await;
    settled(&base, index).await;
    let pushes = proxy.pushes();
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0]["message"], "alice mentioned you.");
    assert_eq!(pushes[0]["channel_name"], "Pub");
    assert_eq!(pushes[1]["message"], "sent you a message.");
    assert_eq!(pushes[1]["platform"], "android");
}

async fn mention_count(api: &Api, channel: &str) -> Option<u64> {
    api.ok(
        "GET",
        &format!("/channels/{channel}/members/{}", api.user_id),
        None,
    )
    .await["mention_count"]
        .as_u64()
}

/// A user who turned channel mentions off (`channel: "false"`), and a member who ignores them
/// in the channel (`ignore_channel_mentions: "on"`), get no push, no mention count and no badge
/// from `@channel`; turned back on, the next one counts and the earlier one stays uncounted.
#[tokio::test(flavor = "multi_thread")]
async fn channel_mentions_turned_off_count_and_notify_nobody() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(&proxy, &[]).await;
    let base = node.api.clone();
    let (alice, bob, carol, _team, public, _private) = team_fixture(&base).await;
    attach(&bob, "android:bob").await;
    attach(&carol, "android:carol").await;
    set_user_props(&bob, json!({"channel": "false"})).await;
    set_channel_props(&carol, &public, json!({"ignore_channel_mentions": "on"})).await;
    let (_, index) = post(&alice, &public, "@channel hello", "").await;
    settled(&base, index).await;
    assert!(proxy.pushes().is_empty(), "{:?}", proxy.pushes());
    assert_eq!(mention_count(&bob, &public).await, Some(0));
    assert_eq!(mention_count(&carol, &public).await, Some(0));

    set_user_props(&bob, json!({"channel": "true"})).await;
    set_channel_props(&carol, &public, json!({"ignore_channel_mentions": "off"})).await;
    let (_, index) = post(&alice, &public, "@channel again", "").await;
    settled(&base, index).await;
    let pushes = proxy.pushes();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    for push in &pushes {
        assert_eq!(push["badge"], 1, "{push}");
    }
    assert_eq!(mention_count(&bob, &public).await, Some(1));
    assert_eq!(mention_count(&carol, &public).await, Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_no_channel_hides_the_channel_name() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(
        &proxy,
        &["--push-notification-contents", "generic_no_channel"],
    )
    .await;
    let base = node.api.clone();
    let (alice, bob, _carol, _team, public, _private) = team_fixture(&base).await;
    attach(&bob, "apple:bob").await;
    let (_, index) = post(&alice, &public, "@channel look", "").await;
    settled(&base, index).await;
    let dm = direct(&alice, &bob).await;
    let (_, index) = post(&alice, &dm, "hey", "").await;
    settled(&base, index).await;
    let pushes = proxy.pushes();
    assert_eq!(pushes.len(), 2);
    assert!(pushes[0].get("channel_name").is_none(), "{}", pushes[0]);
    assert_eq!(pushes[0]["message"], "alice notified the channel.");
    assert_eq!(pushes[1]["channel_name"], "alice", "a DM keeps its name");
}

#[tokio::test(flavor = "multi_thread")]
async fn id_loaded_pushes_and_the_ack_that_loads_them() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(&proxy, &["--push-notification-contents", "id_loaded"]).await;
    let base = node.api.clone();
    let (alice, bob, carol, _team, _public, private) = team_fixture(&base).await;
    attach(&bob, "apple_rn-v2:bob").await;
    let (post_id, index) = post(
        &alice,
        &private,
        "@bob the **secret** [plan](https://x.example)",
        "",
    )
    .await;
    settled(&base, index).await;
    let pushes = proxy.pushes();
    assert_eq!(pushes.len(), 1);
    let push = &pushes[0];
    assert_eq!(push["is_id_loaded"], true);
    assert_eq!(
        push["sender_id"],
        json!(bob.user_id),
        "the recipient, as Mattermost"
    );
    assert_eq!(push["message"], "You've received a new message.");
    assert_eq!(push["post_id"], json!(post_id));
    assert!(push.get("sender_name").is_none());
    let ack = json!({
        "id": push["ack_id"], "received_at": 1, "platform": "apple_rn-v2",
        "type": "message", "post_id": post_id, "is_id_loaded": true,
    });
    let full = bob
        .call("POST", "/notifications/ack", Some(ack.clone()))
        .await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.body);
    // The full text, its Markdown stripped as Mattermost's push text is.
    assert_eq!(full.body["message"], "alice: @bob the secret plan");
    assert_eq!(full.body["sender_name"], "alice");
    assert_eq!(full.body["channel_name"], "Priv");
    assert_eq!(proxy.acks().len(), 1, "the ack is forwarded");
    assert_eq!(proxy.acks()[0]["id"], push["ack_id"]);
    // carol may not read the private channel.
    let refused = carol.call("POST", "/notifications/ack", Some(ack)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // A plain ack: forwarded, answered OK.
    let plain = bob
        .call(
            "POST",
            "/notifications/ack",
            Some(json!({"id": "x", "platform": "apple", "type": "clear"})),
        )
        .await;
    assert_eq!(plain.body, json!({"status": "OK"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn device_and_ack_routes_refuse_bad_input_and_push_off() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let empty = alice
        .call(
            "PUT",
            "/users/sessions/device",
            Some(json!({"device_id": ""})),
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.body["status_code"], 400);
    let bad = reqwest::Client::new()
        .post(format!("{}/api/v4/notifications/ack", node.api))
        .header(
            "Authorization",
            format!("Bearer {}", alice.token.clone().unwrap()),
        )
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("ack request");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let off = alice
        .call(
            "POST",
            "/notifications/ack",
            Some(json!({"id": "a", "platform": "apple", "type": "message"})),
        )
        .await;
    assert_eq!(off.status, StatusCode::NOT_IMPLEMENTED);
    // A second session of the same device ends the first.
    attach(&alice, "apple:same").await;
    let second = Api::login(&node.api, "alice").await;
    attach(&second, "apple:same").await;
    let gone = alice.call("GET", "/users/me", None).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    let sessions = second
        .ok("GET", &format!("/users/{}/sessions", second.user_id), None)
        .await;
    assert_eq!(sessions.as_array().map(Vec::len), Some(1));
    // Login with a device id stores it.
    let anon = Api::new(&node.api);
    let login = anon
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "alice", "password": "passw0rd!", "device_id": "android:l"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let sessions = second
        .ok("GET", &format!("/users/{}/sessions", second.user_id), None)
        .await;
    assert!(sessions
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["device_id"] == "android:l"));
    // Bad notify props are a 400.
    let bad_props = second
        .call(
            "PUT",
            &format!("/users/{}/patch", second.user_id),
            Some(json!({"notify_props": {"push": "sometimes"}})),
        )
        .await;
    assert_eq!(bad_props.status, StatusCode::BAD_REQUEST);
}

/// Three nodes, users on different nodes: one push for a mention posted on node 3; then 500
/// mentions with the leader killed while they are being dispatched: every one arrives, and
/// repeats stay within one batch (`--push-batch`), as `src/notify/mod.rs` documents.
#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_across_a_leader_crash() {
    const BATCH: usize = 50;
    const MENTIONS: usize = 500;
    let proxy = PushProxy::start().await;
    // Email rides the same batches and mark: every mention of offline bob is also a mail.
    let sink = SmtpSink::start();
    let smtp_port = sink.port.to_string();
    let batch = BATCH.to_string();
    let (_dir, mut nodes) = three_nodes_with(&[
        "--send-push-notifications",
        "true",
        "--push-notification-server",
        &proxy.url,
        "--push-batch",
        &batch,
        "--push-concurrency",
        "4",
        "--send-email-notifications",
        "true",
        "--smtp-server",
        "127.0.0.1",
        "--smtp-port",
        &smtp_port,
    ])
    .await;
    let alice = Api::signup(&nodes[0].api, "alice").await;
    let bob = Api::signup(&nodes[1].api, "bob").await;
    let carol = Api::signup(&nodes[2].api, "carol").await;
    let (_team, town) = team_with(&alice, "crew", &[&bob, &carol]).await;
    attach(&bob, "android:bob").await;

    // bob has no socket anywhere: a mention from node 3 reaches his device once.
    let (first, index) = post(&carol, &town, "@bob ping", "").await;
    settled(&nodes[2].api, index).await;
    let pushes = proxy.pushes();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["post_id"], json!(first));
    // Its mail left before the mark that settled it.
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].rcpt_tos, ["bob@example.com"]);
    assert_eq!(mails[0].message_id, format!("<{first}@127.0.0.1>"));

    // Hold each push so the batches are in flight when the leader dies.
    proxy.set_delay(Duration::from_millis(15));
    let status = alice.ok("GET", "/cluster/status", None).await;
    let leader = status["leader"].as_u64().expect("a leader") as usize - 1;
    let poster = carol.on(&nodes[(leader + 1) % 3].api);
    let mut posted = Vec::new();
    for n in 0..MENTIONS {
        let (id, _) = post(&poster, &town, &format!("@bob number {n}"), "").await;
        posted.push(id);
    }
    proxy.wait_for(1 + MENTIONS / 5, WAIT).await;
    nodes[leader].kill();
    let survivor = nodes[(leader + 1) % 3].api.clone();
    let expected: std::collections::HashSet<Value> = posted.iter().map(|id| json!(id)).collect();
    let all = eventually(Duration::from_secs(120), "every due push", || async {
        let seen: std::collections::HashSet<Value> = proxy
            .pushes()
            .iter()
            .map(|p| p["post_id"].clone())
            .collect();
        expected.is_subset(&seen).then(|| proxy.pushes())
    })
    .await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for push in &all {
        *counts
            .entry(push["post_id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    println!(
        "pushes received: {}, distinct posts: {}, duplicates: {duplicates}",
        all.len(),
        counts.len()
    );
    assert_eq!(counts.len(), MENTIONS + 1, "every due push arrived");
    assert!(
        duplicates <= BATCH,
        "{duplicates} duplicates, more than one batch of {BATCH}"
    );
    // Every due email too, each post's at most twice and no more duplicates than one batch.
    let mut expected_mails: std::collections::HashSet<String> = posted
        .iter()
        .map(|id| format!("<{id}@127.0.0.1>"))
        .collect();
    expected_mails.insert(format!("<{first}@127.0.0.1>"));
    let mails = eventually(Duration::from_secs(120), "every due email", || async {
        let mails = sink.mails();
        let seen: std::collections::HashSet<String> =
            mails.iter().map(|m| m.message_id.clone()).collect();
        expected_mails.is_subset(&seen).then_some(mails)
    })
    .await;
    let mail_duplicates = mails.len() - expected_mails.len();
    println!(
        "emails received: {}, distinct posts: {}, duplicates: {mail_duplicates}",
        mails.len(),
        expected_mails.len()
    );
    assert!(mails.iter().all(|m| m.rcpt_tos == ["bob@example.com"]));
    assert!(
        mail_duplicates <= BATCH,
        "{mail_duplicates} duplicate emails, more than one batch of {BATCH}"
    );
    // The outbox drains on the new leader.
    eventually(WAIT, "an empty outbox", || async {
        let m = metrics(&survivor).await;
        (m.get("confab_notify_outbox_backlog").copied() == Some(0.0)).then_some(())
    })
    .await;
}

/// Marking a post unread changes the badge without a new post: the user's devices get an
/// `update_badge` push with the new count, silently, as Mattermost sends after set-unread.
#[tokio::test(flavor = "multi_thread")]
async fn marking_a_post_unread_updates_the_badge() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(&proxy, &[]).await;
    let base = node.api.clone();
    let (alice, bob, _carol, _team, public, _private) = team_fixture(&base).await;
    attach(&bob, "android_rn-v2:bob").await;
    let (post_id, index) = post(&alice, &public, "@bob one", "").await;
    settled(&base, index).await;
    let view = json!({"channel_id": public, "collapsed_threads_supported": false});
    let viewed = bob
        .call("POST", "/channels/members/me/view", Some(view))
        .await;
    assert!(viewed.status.is_success(), "{}", viewed.body);
    let set_unread = bob
        .call(
            "POST",
            &format!("/users/{}/posts/{post_id}/set_unread", bob.user_id),
            Some(json!({})),
        )
        .await;
    assert!(set_unread.status.is_success(), "{}", set_unread.body);
    settled(&base, applied_index(&set_unread)).await;
    // One batch's pushes go out concurrently: the clear and the badge in either order.
    let pushes = proxy.pushes();
    let mut kinds: Vec<String> = pushes
        .iter()
        .map(|p| p["type"].as_str().unwrap_or_default().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["clear", "message", "update_badge"], "{pushes:?}");
    let badge = pushes
        .iter()
        .find(|p| p["type"] == "update_badge")
        .expect("an update_badge push");
    assert_eq!(badge["badge"], 1, "the mention is unread again: {badge}");
    assert_eq!(badge["sound"], "none");
    assert_eq!(badge["cont_ava"], 1);
    assert_eq!(badge["device_id"], "bob");
}

/// A custom `mention_keys` entry mentions in any case, the first name (with `first_name` on)
/// only as written; both count as mentions for a user whose push level is `mention`, and in
/// the channel's mention count and the badge.
#[tokio::test(flavor = "multi_thread")]
async fn mention_keys_and_the_first_name_mention() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(&proxy, &[]).await;
    let base = node.api.clone();
    let (alice, bob, _carol, _team, public, _private) = team_fixture(&base).await;
    attach(&bob, "android_rn-v2:bob-token").await;
    let answer = bob
        .call(
            "PUT",
            &format!("/users/{}/patch", bob.user_id),
            Some(json!({
                "first_name": "Bobby",
                "notify_props": {"mention_keys": "oncall,@dbteam", "first_name": "true"},
            })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let mut expected = Vec::new();
    for (message, mentions) in [
        ("ONCALL: the db is down", true),
        ("calling @DBteam.", true),
        ("dbteam without the at", false),
        ("Bobby, can you look?", true),
        ("bobby in lower case", false),
        ("nothing for anyone", false),
    ] {
        let (id, index) = post(&alice, &public, message, "").await;
        settled(&base, index).await;
        if mentions {
            expected.push(id);
        }
        let pushed: Vec<Value> = proxy
            .pushes_to("bob-token")
            .iter()
            .map(|p| p["post_id"].clone())
            .collect();
        assert_eq!(pushed, expected, "after {message:?}");
    }
    let last = proxy.pushes_to("bob-token").pop().expect("a push");
    assert_eq!(last["badge"], 3, "{last}");
    let unread = bob
        .ok(
            "GET",
            &format!("/users/{}/channels/{public}/unread", bob.user_id),
            None,
        )
        .await;
    assert_eq!(unread["mention_count"], 3, "{unread}");
}

/// Attaching a device restarts the session's lifetime at `SessionLengthMobileInHours` and sets
/// the cookie to match; a login that names a device gets that length too.
#[tokio::test(flavor = "multi_thread")]
async fn a_device_session_gets_the_mobile_length() {
    let proxy = PushProxy::start().await;
    let (_dir, node) = push_node(&proxy, &["--session-length-mobile-hours", "2"]).await;
    let base = node.api.clone();
    let bob = Api::signup(&base, "bob").await;
    let expiry = |sessions: &Value| sessions[0]["expires_at"].as_u64().expect("expires_at");
    let sessions = bob
        .ok("GET", &format!("/users/{}/sessions", bob.user_id), None)
        .await;
    let web_expiry = expiry(&sessions);
    let before = now_ms();
    let answer = bob
        .call(
            "PUT",
            "/users/sessions/device",
            Some(json!({"device_id": "apple_rn-v2:bob-phone"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let cookie = answer
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    assert!(
        cookie.starts_with(&format!(
            "MMAUTHTOKEN={};",
            bob.token.as_deref().unwrap_or("")
        )),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age=7200;"), "{cookie}");
    let sessions = bob
        .ok("GET", &format!("/users/{}/sessions", bob.user_id), None)
        .await;
    let two_hours = 2 * 3_600_000;
    let mobile_expiry = expiry(&sessions);
    assert!(
        (before + two_hours..=now_ms() + two_hours).contains(&mobile_expiry),
        "{mobile_expiry} is not two hours from the attach (the web session ended at {web_expiry})"
    );

    // A login naming a device starts with the mobile length.
    let answer = Api::new(&base)
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "bob", "password": "passw0rd!", "device_id": "android_rn-v2:tab"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let sessions = bob
        .ok("GET", &format!("/users/{}/sessions", bob.user_id), None)
        .await;
    let tablet = sessions
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["device_id"] == "android_rn-v2:tab")
        .expect("the tablet's session");
    assert!(tablet["expires_at"].as_u64().expect("expiry") <= now_ms() + two_hours);
}

/// A session with a device that expires gets one `session` push, from the leader, once.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_mobile_session_is_told_once() {
    let proxy = PushProxy::start().await;
    // Mobile sessions last 3.6 s; the leader looks every second.
    let flags = [
        "--session-length-mobile-hours",
        "0.001",
        "--session-expiry-check-secs",
        "1",
        "--site-name",
        "Acme",
    ];
    let (_dir, node) = push_node(&proxy, &flags).await;
    let base = node.api.clone();
    let bob = Api::signup(&base, "bob").await;
    let carol = Api::signup(&base, "carol").await;
    attach(&bob, "android_rn-v2:bob-phone").await;
    // Carol's web session has no device and lasts for days: nothing for her.
    let pushes = proxy.wait_for(1, WAIT).await;
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let push = &pushes[0];
    assert_eq!(push["type"], "session", "{push}");
    assert_eq!(push["platform"], "android_rn-v2");
    assert_eq!(push["device_id"], "bob-phone");
    assert_eq!(push["version"], "v2");
    assert_eq!(push["ack_id"].as_str().map(str::len), Some(26));
    assert!(
        push["message"].as_str().unwrap_or_default().starts_with(
            "Session Expired: Please log in to continue receiving notifications. Sessions for Acme"
        ),
        "{push}"
    );
    // The session is over, and three more rounds tell it nothing more.
    let answer = bob.call("GET", "/users/me", None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(proxy.pushes().len(), 1, "{:?}", proxy.pushes());
    let me = carol.ok("GET", "/users/me", None).await;
    assert_eq!(me["username"], "carol");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
