//! Email notifications through a real SMTP server (aiosmtpd, `tests/common/smtp.rs`): who gets
//! mail (away and offline users, per their notify props; never the online, never the author),
//! what it says (subject, link, threading headers), exactly once from a 3-node cluster, and
//! batching (one digest per user per interval, dropped when the user read the channel).

mod common;

use common::smtp::{Mail, SmtpSink};
use common::*;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn email_flags(sink: &SmtpSink, batching: bool) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--send-email-notifications",
        "true",
        "--smtp-server",
        "127.0.0.1",
        "--smtp-port",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    flags.push(sink.port.to_string());
    if batching {
        for flag in [
            "--enable-email-batching",
            "true",
            "--email-batching-interval",
            "1",
            "--email-batching-default-interval",
            "2",
        ] {
            flags.push(flag.to_string());
        }
    }
    flags
}

/// Waits until the sink holds `count` mails, then returns them all.
async fn mails(sink: &SmtpSink, count: usize, what: &str) -> Vec<Mail> {
    eventually(WAIT, what, || async {
        let got = sink.mails();
        (got.len() >= count).then_some(got)
    })
    .await
}

async fn post(api: &Api, channel: &str, message: &str, root: &str) -> String {
    let post = api
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel, "message": message, "root_id": root})),
        )
        .await;
    post["id"].as_str().expect("post id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_mail_away_and_offline_users_once_with_threading_headers() {
    let sink = SmtpSink::start();
    let flags = email_flags(&sink, false);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_dir, nodes) = three_nodes_with(&flags).await;
    let alice = Api::signup(&nodes[0].api, "alice").await;
    let bob = Api::signup(&nodes[0].api, "bob").await;
    let carol = Api::signup(&nodes[0].api, "carol").await;
    let dave = Api::signup(&nodes[0].api, "dave").await;
    let (_team, town) = team_with(&alice, "tt", &[&bob, &carol, &dave]).await;
    // alice is online on node 2; bob and dave have no socket anywhere: offline.
    let alice_token = alice.token.clone().expect("token");
    let _alice_socket = Socket::connect(&nodes[1].api, &alice_token).await;
    let ids = json!([alice.user_id]);
    eventually(WAIT, "alice online on node 3", || {
        let on3 = alice.on(&nodes[2].api);
        let ids = ids.clone();
        async move {
            let statuses = on3.ok("POST", "/users/status/ids", Some(ids)).await;
            (statuses[0]["status"] == json!("online")).then_some(())
        }
    })
    .await;

    let carol3 = carol.on(&nodes[2].api);
    let root = post(&carol3, &town, "hello @alice and @bob", "").await;
    let first = mails(&sink, 1, "the mention mail").await;
    assert_eq!(
        first[0].rcpt_tos,
        ["bob@example.com"],
        "only the offline user"
    );
    assert!(
        first[0]
            .subject
            .starts_with("[confab] Notification in tt on "),
        "{}",
        first[0].subject
    );
    assert_eq!(first[0].message_id, format!("<{root}@127.0.0.1>"));
    assert!(first[0].in_reply_to.is_empty());
    assert!(
        first[0].text.contains("hello @alice and @bob"),
        "{}",
        first[0].text
    );
    assert!(first[0].text.contains(&format!("/landing#/tt/pl/{root}")));
    assert!(first[0].html.contains("View Message"));

    // A reply threads under its root.
    let reply = post(&carol3, &town, "more for @bob", &root).await;
    let got = mails(&sink, 2, "the reply mail").await;
    assert_eq!(got[1].rcpt_tos, ["bob@example.com"]);
    assert_eq!(got[1].message_id, format!("<{reply}@127.0.0.1>"));
    assert_eq!(got[1].in_reply_to, format!("<{root}@127.0.0.1>"));
    assert_eq!(got[1].references, format!("<{root}@127.0.0.1>"));

    // A direct message needs no mention.
    let dm = carol3
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([carol.user_id, bob.user_id])),
        )
        .await;
    let dm = dm["id"].as_str().expect("dm").to_string();
    post(&carol3, &dm, "psst", "").await;
    let got = mails(&sink, 3, "the DM mail").await;
    assert!(
        got[2]
            .subject
            .starts_with("[confab] New Direct Message from @carol on "),
        "{}",
        got[2].subject
    );

    // bob turns email off; a later mention reaches dave only (and is the barrier that shows
    // bob's was decided).
    let me = bob.ok("GET", "/users/me", None).await;
    let mut props = me["notify_props"].clone();
    props["email"] = json!("false");
    bob.ok(
        "PUT",
        &format!("/users/{}/patch", bob.user_id),
        Some(json!({"notify_props": props})),
    )
    .await;
    post(&carol3, &town, "@bob @dave and @carol", "").await;
    let got = mails(&sink, 4, "dave's mail").await;
    assert_eq!(got[3].rcpt_tos, ["dave@example.com"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = sink.mails();
    assert_eq!(
        all.len(),
        4,
        "exactly once each, nothing for alice, carol or bob: {all:?}"
    );
    assert!(all.iter().all(|m| m.rcpt_tos.len() == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_collect_per_user_and_are_dropped_once_read() {
    let sink = SmtpSink::start();
    let flags = email_flags(&sink, true);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_dir, nodes) = three_nodes_with(&flags).await;
    let api = &nodes[0].api;
    let carol = Api::signup(api, "carol").await;
    let bob = Api::signup(api, "bob").await;
    let dave = Api::signup(api, "dave").await;
    let erin = Api::signup(api, "erin").await;
    let (_team, town) = team_with(&carol, "tt", &[&bob, &dave, &erin]).await;

    // Two mentions inside bob's interval make one digest.
    post(&carol, &town, "first @bob", "").await;
    post(&carol, &town, "second @bob", "").await;
    let got = mails(&sink, 1, "bob's digest").await;
    assert_eq!(got[0].rcpt_tos, ["bob@example.com"]);
    assert!(
        got[0]
            .subject
            .starts_with("[confab] New Notifications for "),
        "{}",
        got[0].subject
    );
    assert!(got[0].text.contains("first @bob") && got[0].text.contains("second @bob"));

    // dave reads the channel before his batch is due: nothing is sent to him. erin's batch,
    // which starts later, is the barrier.
    post(&carol, &town, "third @dave", "").await;
    dave.ok(
        "POST",
        "/channels/members/me/view",
        Some(json!({"channel_id": town})),
    )
    .await;
    post(&carol, &town, "fourth @erin", "").await;
    let got = mails(&sink, 2, "erin's digest").await;
    assert_eq!(got[1].rcpt_tos, ["erin@example.com"]);

    // bob asks for immediate mail (preference "30"): the next mention is mailed alone.
    bob.ok(
        "PUT",
        &format!("/users/{}/preferences", bob.user_id),
        Some(json!([{"user_id": bob.user_id, "category": "notifications",
                     "name": "email_interval", "value": "30"}])),
    )
    .await;
    let fifth = post(&carol, &town, "fifth @bob", "").await;
    let got = mails(&sink, 3, "bob's immediate mail").await;
    assert_eq!(got[2].rcpt_tos, ["bob@example.com"]);
    assert_eq!(got[2].message_id, format!("<{fifth}@127.0.0.1>"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = sink.mails();
    assert_eq!(
        all.len(),
        3,
        "nothing for dave, who read the channel: {all:?}"
    );
}
