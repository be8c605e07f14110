//! Integrations over HTTP against real nodes: personal access tokens (four ways to send one,
//! disable/enable/revoke, a revoke on node 1 refused on node 3), bots, incoming webhooks (JSON,
//! `payload=` form, multipart, a plain `curl -d`, channel overrides and locks, attachments,
//! through a follower), slash commands answered by a server started here (the fields sent, the
//! reply in the channel, an ephemeral answer to the caller only, the response_url, the
//! built-ins), outgoing webhooks (exactly one call per trigger from 3 nodes, a retry after a
//! failure, the reply in the thread, a slow endpoint holding back only its own calls and a new
//! leader repeating only the calls in flight), refusals in Mattermost's shape, and the SSRF guard.

mod common;

use common::hook_receiver::HookReceiver;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Asserts a Mattermost-shaped error with `status` (and `id`, when given).
fn refused(answer: &Answer, status: StatusCode, id: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.body["status_code"],
        status.as_u16(),
        "{}",
        answer.body
    );
    assert!(answer.body["message"].is_string(), "{}", answer.body);
    if let Some(id) = id {
        assert_eq!(answer.body["id"], id, "{}", answer.body);
    }
}

/// The newest post of a channel.
async fn last_post(api: &Api, channel: &str) -> Value {
    let page = api
        .ok(
            "GET",
            &format!("/channels/{channel}/posts?per_page=1"),
            None,
        )
        .await;
    let id = page["order"][0].as_str().expect("a post").to_string();
    page["posts"][&id].clone()
}

/// A raw request to the site root (webhooks live outside `/api/v4`).
async fn root_post(
    base: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, kind, response.text().await.expect("body"))
}

fn as_api_error(status: StatusCode, text: &str) -> Answer {
    Answer {
        status,
        body: serde_json::from_str(text).unwrap_or(Value::Null),
        headers: Default::default(),
    }
}

#[tokio::test]
async fn disabled_integrations_are_refused_as_mattermost_does() {
    let (_dir, node) = single_node_with(&[
        "--enable-incoming-webhooks",
        "false",
        "--enable-outgoing-webhooks",
        "false",
        "--enable-commands",
        "false",
    ])
    .await;
    let (alice, _bob, _carol, team, public, _private) = team_fixture(&node.api).await;
    // Tokens are off by default: 501; bot creation is off by default: 403.
    let answer = alice
        .call(
            "POST",
            "/users/me/tokens",
            Some(json!({"description": "ci"})),
        )
        .await;
    refused(&answer, StatusCode::NOT_IMPLEMENTED, None);
    let answer = alice
        .call(
            "POST",
            "/bots",
            Some(json!({"username": "robot", "display_name": "R"})),
        )
        .await;
    refused(
        &answer,
        StatusCode::FORBIDDEN,
        Some("api.bot.create_disabled"),
    );
    let answer = alice
        .call(
            "POST",
            "/hooks/incoming",
            Some(json!({"channel_id": public})),
        )
        .await;
    refused(&answer, StatusCode::NOT_IMPLEMENTED, None);
    let answer = alice
        .call(
            "POST",
            "/hooks/outgoing",
            Some(json!({"team_id": team, "trigger_words": ["x"], "callback_urls": ["http://example.com"]})),
        )
        .await;
    refused(&answer, StatusCode::NOT_IMPLEMENTED, None);
    let answer = alice
        .call(
            "POST",
            "/commands",
            Some(json!({"team_id": team, "trigger": "deploy", "url": "http://example.com"})),
        )
        .await;
    refused(&answer, StatusCode::NOT_IMPLEMENTED, None);
    let (status, _, text) = root_post(
        &node.api,
        "/hooks/aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "application/json",
        br#"{"text":"x"}"#.to_vec(),
    )
    .await;
    refused(
        &as_api_error(status, &text),
        StatusCode::NOT_IMPLEMENTED,
        None,
    );
    // Built-in commands still work with custom commands off.
    let answer = alice
        .ok(
            "POST",
            "/commands/execute",
            Some(json!({"channel_id": public, "command": "/echo 'still here'"})),
        )
        .await;
    assert_eq!(answer["response_type"], "in_channel");
    assert_eq!(last_post(&alice, &public).await["message"], "still here");
}

#[tokio::test]
async fn access_tokens_authenticate_four_ways_and_end_on_disable_and_revoke() {
    let (_dir, node) = single_node_with(&[
        "--enable-user-access-tokens",
        "true",
        "--enable-bot-account-creation",
        "true",
    ])
    .await;
    let (alice, bob, _carol, _team, public, _private) = team_fixture(&node.api).await;
    let refused_body = alice
        .call("POST", "/users/me/tokens", Some(json!({})))
        .await;
    refused(&refused_body, StatusCode::BAD_REQUEST, None);
    // Bob holds no `create_user_access_token` (a system admin's by default).
    let answer = bob
        .call(
            "POST",
            "/users/me/tokens",
            Some(json!({"description": "mine"})),
        )
        .await;
    refused(&answer, StatusCode::FORBIDDEN, None);
    let answer = alice
        .call(
            "POST",
            &format!("/users/{}/tokens", bob.user_id),
            Some(json!({"description": "for bob"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let created = alice
        .ok(
            "POST",
            "/users/me/tokens",
            Some(json!({"description": "ci"})),
        )
        .await;
    let secret = created["token"]
        .as_str()
        .expect("token at creation")
        .to_string();
    let token_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 26);
    assert_eq!(created["is_active"], true);
    assert_eq!(created["user_id"], alice.user_id.as_str());

    let http = reqwest::Client::new();
    let me = format!("{}/api/v4/users/me", node.api);
    let ways = [
        http.get(&me)
            .header("Authorization", format!("Bearer {secret}")),
        http.get(&me)
            .header("Authorization", format!("Token {secret}")),
        http.get(&me)
            .header("Cookie", format!("MMAUTHTOKEN={secret}")),
        http.get(format!("{me}?access_token={secret}")),
    ];
    for request in ways {
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["id"], alice.user_id.as_str());
    }
    let mut pat = alice.clone();
    pat.token = Some(secret.clone());
    // Listing never shows the secret again.
    let listed = alice.ok("GET", "/users/me/tokens", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("token").is_none());
    let got = alice
        .ok("GET", &format!("/users/tokens/{token_id}"), None)
        .await;
    assert_eq!(got["description"], "ci");
    let found = alice
        .ok(
            "POST",
            "/users/tokens/search",
            Some(json!({"term": "alice"})),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(
        alice
            .ok("GET", "/users/tokens", None)
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    refused(
        &bob.call("GET", "/users/tokens", None).await,
        StatusCode::FORBIDDEN,
        None,
    );
    refused(
        &bob.call("GET", &format!("/users/tokens/{token_id}"), None)
            .await,
        StatusCode::FORBIDDEN,
        None,
    );
    refused(
        &alice
            .call("GET", "/users/tokens/aaaaaaaaaaaaaaaaaaaaaaaaaa", None)
            .await,
        StatusCode::NOT_FOUND,
        None,
    );
    // Disable ends its session, enable starts one, revoke ends it for good.
    alice
        .ok(
            "POST",
            "/users/tokens/disable",
            Some(json!({"token_id": token_id})),
        )
        .await;
    refused(
        &pat.call("GET", "/users/me", None).await,
        StatusCode::UNAUTHORIZED,
        None,
    );
    alice
        .ok(
            "POST",
            "/users/tokens/enable",
            Some(json!({"token_id": token_id})),
        )
        .await;
    pat.ok("GET", "/users/me", None).await;
    pat.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": public, "message": "from a token"})),
    )
    .await;
    alice
        .ok(
            "POST",
            "/users/tokens/revoke",
            Some(json!({"token_id": token_id})),
        )
        .await;
    refused(
        &pat.call("GET", "/users/me", None).await,
        StatusCode::UNAUTHORIZED,
        None,
    );

    // Bots: created by an admin, users with is_bot, token-authenticated, hidden from others.
    let answer = bob
        .call(
            "POST",
            "/bots",
            Some(json!({"username": "robot", "display_name": "Robot"})),
        )
        .await;
    refused(&answer, StatusCode::FORBIDDEN, None);
    let answer = alice
        .call(
            "POST",
            "/bots",
            Some(json!({"username": "robot", "display_name": "Robot", "description": "builds"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let bot = answer.body;
    let bot_id = bot["user_id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            bot["username"].as_str(),
            bot["display_name"].as_str(),
            bot["owner_id"].as_str()
        ),
        (Some("robot"), Some("Robot"), Some(alice.user_id.as_str()))
    );
    let user = alice.ok("GET", &format!("/users/{bot_id}"), None).await;
    assert_eq!(user["is_bot"], true);
    refused(
        &bob.call("GET", &format!("/bots/{bot_id}"), None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_eq!(bob.ok("GET", "/bots", None).await, json!([]));
    assert_eq!(
        alice
            .ok("GET", "/bots", None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let patched = alice
        .ok(
            "PUT",
            &format!("/bots/{bot_id}"),
            Some(json!({"description": "deploys"})),
        )
        .await;
    assert_eq!(patched["description"], "deploys");
    let bot_token = alice
        .ok(
            "POST",
            &format!("/users/{bot_id}/tokens"),
            Some(json!({"description": "bot"})),
        )
        .await;
    let mut bot_api = alice.clone();
    bot_api.token = Some(bot_token["token"].as_str().unwrap().to_string());
    let me = bot_api.ok("GET", "/users/me", None).await;
    assert_eq!(
        (me["id"].as_str(), me["is_bot"].as_bool()),
        (Some(bot_id.as_str()), Some(true))
    );
    let disabled = alice
        .ok("POST", &format!("/bots/{bot_id}/disable"), None)
        .await;
    assert!(disabled["delete_at"].as_u64().unwrap() > 0);
    refused(
        &bot_api.call("GET", "/users/me", None).await,
        StatusCode::UNAUTHORIZED,
        None,
    );
    let enabled = alice
        .ok("POST", &format!("/bots/{bot_id}/enable"), None)
        .await;
    assert_eq!(enabled["delete_at"], 0);
    // Its active token works again once the bot is enabled.
    bot_api.ok("GET", "/users/me", None).await;
    let assigned = alice
        .ok(
            "POST",
            &format!("/bots/{bot_id}/assign/{}", bob.user_id),
            None,
        )
        .await;
    assert_eq!(assigned["owner_id"], bob.user_id.as_str());
    bob.ok("GET", &format!("/bots/{bot_id}"), None).await;
}

#[tokio::test]
async fn incoming_webhooks_take_json_form_multipart_and_curl() {
    let (_dir, node) = single_node_with(&[
        "--enable-post-username-override",
        "true",
        "--enable-post-icon-override",
        "true",
    ])
    .await;
    let (alice, bob, _carol, team, public, private) = team_fixture(&node.api).await;
    // Only team and system admins manage hooks.
    let answer = bob
        .call(
            "POST",
            "/hooks/incoming",
            Some(json!({"channel_id": public})),
        )
        .await;
    refused(&answer, StatusCode::FORBIDDEN, None);
    let answer = alice
        .call(
            "POST",
            "/hooks/incoming",
            Some(json!({"channel_id": "nope"})),
        )
        .await;
    refused(&answer, StatusCode::BAD_REQUEST, None);
    let hook = alice
        .ok(
            "POST",
            "/hooks/incoming",
            Some(json!({"channel_id": public, "display_name": "CI", "username": "ci-bot"})),
        )
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["team_id"], team.as_str());
    assert_eq!(hook["channel_locked"], false);
    let path = format!("/hooks/{hook_id}");

    // JSON.
    let (status, kind, text) = root_post(
        &node.api,
        &path,
        "application/json",
        json!({"text": "build <https://ci.example/1|#1> passed", "icon_url": "https://ci.example/i.png"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"));
    assert!(kind.starts_with("text/plain"), "{kind}");
    let post = last_post(&alice, &public).await;
    assert_eq!(post["message"], "build [#1](https://ci.example/1) passed");
    assert_eq!(post["user_id"], alice.user_id.as_str());
    assert_eq!(post["props"]["from_webhook"], "true");
    assert_eq!(post["props"]["override_username"], "ci-bot");
    assert_eq!(
        post["props"]["override_icon_url"],
        "https://ci.example/i.png"
    );
    assert_eq!(post["props"]["webhook_display_name"], "CI");

    // `payload=` form, with raw newlines in the text (retried escaped, as Mattermost does).
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(
            b"{\"text\": \"line one\nline two\", \"username\": \"deployer\"}"
        )
        .collect::<String>()
    );
    let (status, _, text) = root_post(
        &node.api,
        &path,
        "application/x-www-form-urlencoded",
        form.into_bytes(),
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"));
    let post = last_post(&alice, &public).await;
    assert_eq!(post["message"], "line one\nline two");
    assert_eq!(post["props"]["override_username"], "deployer");

    // Multipart form fields.
    let form = reqwest::multipart::Form::new()
        .text("text", "from multipart")
        .text("channel", "town-square");
    let response = reqwest::Client::new()
        .post(format!("{}{path}", node.api))
        .multipart(form)
        .send()
        .await
        .expect("multipart");
    assert_eq!(response.status(), StatusCode::OK);
    let town = alice
        .ok(
            "GET",
            &format!("/teams/{team}/channels/name/town-square"),
            None,
        )
        .await;
    let town_id = town["id"].as_str().unwrap().to_string();
    assert_eq!(
        last_post(&alice, &town_id).await["message"],
        "from multipart"
    );

    // A plain `curl -d 'payload={...}'`, as CI scripts do.
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-d",
            r##"payload={"text": "from curl", "channel": "#priv"}"##,
            &format!("{}{path}", node.api),
        ])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ok");
    assert_eq!(last_post(&alice, &private).await["message"], "from curl");

    // Slack attachments become a `slack_attachment` post.
    let attachments =
        json!([{"fallback": "deploy", "color": "#36a64f", "title": "Deployed", "text": "v1.2"}]);
    let (status, _, _) = root_post(
        &node.api,
        &path,
        "application/json",
        json!({"attachments": attachments}).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let post = last_post(&alice, &public).await;
    assert_eq!(post["type"], "slack_attachment");
    assert_eq!(post["props"]["attachments"], attachments);

    // `@user` is a direct channel between the hook's owner and that user.
    let (status, _, text) = root_post(
        &node.api,
        &path,
        "application/json",
        json!({"text": "psst", "channel": "@bob"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let dm = alice
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([alice.user_id, bob.user_id])),
        )
        .await;
    assert_eq!(
        last_post(&bob, dm["id"].as_str().unwrap()).await["message"],
        "psst"
    );

    // Refusals: no text, malformed, unknown channel, unknown hook, system type.
    for (body, status, id) in [
        (
            json!({"username": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "web.incoming_webhook.text.app_error",
        ),
        (
            "{not json".to_string(),
            StatusCode::BAD_REQUEST,
            "api.webhook.incoming.decode.app_error",
        ),
        (
            json!({"text": "x", "channel": "#missing"}).to_string(),
            StatusCode::NOT_FOUND,
            "web.incoming_webhook.channel.app_error",
        ),
        (
            json!({"text": "x", "type": "system_join_channel"}).to_string(),
            StatusCode::BAD_REQUEST,
            "api.context.invalid_param.app_error",
        ),
    ] {
        let (got, _, text) =
            root_post(&node.api, &path, "application/json", body.into_bytes()).await;
        refused(&as_api_error(got, &text), status, Some(id));
    }
    let (got, _, text) = root_post(
        &node.api,
        "/hooks/aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "application/json",
        br#"{"text":"x"}"#.to_vec(),
    )
    .await;
    refused(
        &as_api_error(got, &text),
        StatusCode::BAD_REQUEST,
        Some("web.incoming_webhook.invalid.app_error"),
    );

    // Management: lock the channel, list, get, delete.
    let updated = alice
        .ok(
            "PUT",
            &format!("/hooks/incoming/{hook_id}"),
            Some(json!({"id": hook_id, "channel_id": public, "display_name": "CI", "channel_locked": true})),
        )
        .await;
    assert_eq!(updated["channel_locked"], true);
    let (got, _, text) = root_post(
        &node.api,
        &path,
        "application/json",
        json!({"text": "x", "channel": "town-square"})
            .to_string()
            .into_bytes(),
    )
    .await;
    refused(
        &as_api_error(got, &text),
        StatusCode::FORBIDDEN,
        Some("web.incoming_webhook.channel_locked.app_error"),
    );
    let listed = alice
        .ok("GET", &format!("/hooks/incoming?team_id={team}"), None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    refused(
        &bob.call("GET", &format!("/hooks/incoming?team_id={team}"), None)
            .await,
        StatusCode::FORBIDDEN,
        None,
    );
    refused(
        &bob.call("GET", &format!("/hooks/incoming/{hook_id}"), None)
            .await,
        StatusCode::FORBIDDEN,
        None,
    );
    alice
        .ok("GET", &format!("/hooks/incoming/{hook_id}"), None)
        .await;
    alice
        .ok("DELETE", &format!("/hooks/incoming/{hook_id}"), None)
        .await;
    refused(
        &alice
            .call("GET", &format!("/hooks/incoming/{hook_id}"), None)
            .await,
        StatusCode::NOT_FOUND,
        None,
    );
    let (got, _, _) = root_post(
        &node.api,
        &path,
        "application/json",
        br#"{"text":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn slash_commands_call_their_url_and_answer_where_they_should() {
    let (_dir, node) =
        single_node_with(&["--allowed-untrusted-internal-connections", "127.0.0.1"]).await;
    let (alice, bob, _carol, team, public, _private) = team_fixture(&node.api).await;
    let receiver = HookReceiver::start().await;
    let url = format!("{}/deploy", receiver.url);
    let answer = bob
        .call(
            "POST",
            "/commands",
            Some(json!({"team_id": team, "trigger": "deploy", "url": url})),
        )
        .await;
    refused(&answer, StatusCode::FORBIDDEN, None);
    let answer = alice
        .call(
            "POST",
            "/commands",
            Some(json!({"team_id": team, "trigger": "echo", "url": url})),
        )
        .await;
    refused(
        &answer,
        StatusCode::BAD_REQUEST,
        Some("api.command.duplicate_trigger.app_error"),
    );
    let command = alice
        .ok(
            "POST",
            "/commands",
            Some(json!({"team_id": team, "trigger": "Deploy", "url": url, "method": "P", "auto_complete": true, "auto_complete_desc": "Ship it"})),
        )
        .await;
    assert_eq!(command["trigger"], "deploy");
    let command_id = command["id"].as_str().unwrap().to_string();
    let command_token = command["token"].as_str().unwrap().to_string();

    // An in_channel answer is posted by the caller; the request carries Mattermost's fields.
    receiver.reply_json(json!({"response_type": "in_channel", "text": "deploying v2"}));
    let answer = bob
        .ok(
            "POST",
            "/commands/execute",
            Some(json!({"channel_id": public, "team_id": team, "command": "/deploy v2 now"})),
        )
        .await;
    assert_eq!(answer["text"], "deploying v2");
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.headers["authorization"],
        format!("Token {command_token}").as_str()
    );
    assert_eq!(request.headers["accept"], "application/json");
    for (field, value) in [
        ("token", command_token.as_str()),
        ("team_id", team.as_str()),
        ("team_domain", "tt"),
        ("channel_id", public.as_str()),
        ("channel_name", "pub"),
        ("user_id", bob.user_id.as_str()),
        ("user_name", "bob"),
        ("command", "/deploy"),
        ("text", "v2 now"),
    ] {
        assert_eq!(request.field(field), value, "{field}");
    }
    let response_url = request.field("response_url");
    assert!(
        response_url.starts_with(&format!("{}/hooks/commands/", node.api)),
        "{response_url}"
    );
    let post = last_post(&alice, &public).await;
    assert_eq!(
        (post["message"].as_str(), post["user_id"].as_str()),
        (Some("deploying v2"), Some(bob.user_id.as_str()))
    );

    // An ephemeral answer reaches the caller's sockets only.
    let mut bob_socket = Socket::connect(&node.api, bob.token.as_deref().unwrap()).await;
    let mut alice_socket = Socket::connect(&node.api, alice.token.as_deref().unwrap()).await;
    receiver.reply_text("only you can see this");
    bob.ok(
        "POST",
        "/commands/execute",
        Some(json!({"channel_id": public, "command": "/deploy"})),
    )
    .await;
    let event = bob_socket.wait_event("ephemeral_message", WAIT).await;
    let ephemeral = inner(&event["data"]["post"]);
    assert_eq!(ephemeral["message"], "only you can see this");
    assert_eq!(ephemeral["channel_id"], public.as_str());
    alice_socket
        .assert_no_event("ephemeral_message", Duration::from_millis(500))
        .await;
    assert_ne!(
        last_post(&alice, &public).await["message"],
        "only you can see this"
    );

    // The response_url takes later answers.
    let (status, _, text) = root_post(
        &node.api,
        response_url.trim_start_matches(&node.api),
        "application/json",
        json!({"response_type": "in_channel", "text": "deployed"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(last_post(&alice, &public).await["message"], "deployed");

    // A GET command gets its fields in the query; a failing URL is a 500.
    alice
        .ok("PUT", &format!("/commands/{command_id}"), Some(json!({"team_id": team, "trigger": "deploy", "url": url, "method": "G", "auto_complete": true})))
        .await;
    receiver.reply_json(json!({"text": "queued"}));
    bob.ok(
        "POST",
        "/commands/execute",
        Some(json!({"channel_id": public, "command": "/deploy later"})),
    )
    .await;
    let request = receiver.wait_for(3, WAIT).await.remove(2);
    assert_eq!(
        (request.method.as_str(), request.field("text").as_str()),
        ("GET", "later")
    );
    receiver.fail_first(1);
    let answer = bob
        .call(
            "POST",
            "/commands/execute",
            Some(json!({"channel_id": public, "command": "/deploy"})),
        )
        .await;
    refused(
        &answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        Some("api.command.execute_command.failed_resp.app_error"),
    );

    // Refusals.
    refused(
        &bob.call(
            "POST",
            "/commands/execute",
            Some(json!({"channel_id": public, "command": "deploy"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        None,
    );
    refused(
        &bob.call(
            "POST",
            "/commands/execute",
            Some(json!({"channel_id": "x", "command": "/deploy"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        None,
    );
    refused(
        &bob.call(
            "POST",
            "/commands/execute",
            Some(json!({"channel_id": public, "command": "/nosuch"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        Some("api.command.execute_command.not_found.app_error"),
    );
    refused(
        &bob.call("GET", &format!("/commands/{command_id}"), None)
            .await,
        StatusCode::NOT_FOUND,
        None,
    );

    // Management and autocomplete.
    let listed = alice
        .ok(
            "GET",
            &format!("/commands?team_id={team}&custom_only=true"),
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let all = bob
        .ok("GET", &format!("/commands?team_id={team}"), None)
        .await;
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["trigger"] == "shrug"));
    let auto = bob
        .ok("GET", &format!("/teams/{team}/commands/autocomplete"), None)
        .await;
    assert!(auto
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["trigger"] == "deploy"));
    let suggestions = bob
        .ok("GET", &format!("/teams/{team}/commands/autocomplete_suggestions?user_input=%2Fde&channel_id={public}"), None)
        .await;
    assert_eq!(suggestions[0]["Suggestion"], "/deploy");
    let regen = alice
        .ok("PUT", &format!("/commands/{command_id}/regen_token"), None)
        .await;
    assert_ne!(regen["token"], command_token.as_str());
    alice
        .ok("DELETE", &format!("/commands/{command_id}"), None)
        .await;
    refused(
        &bob.call(
            "POST",
            "/commands/execute",
            Some(json!({"channel_id": public, "command": "/deploy"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        None,
    );
}

#[tokio::test]
async fn built_in_commands_do_what_their_routes_do() {
    let (_dir, node) = single_node().await;
    let (_alice, bob, carol, team, public, private) = team_fixture(&node.api).await;
    // Connected, so that a cleared manual status derives to online.
    let _socket = Socket::connect(&node.api, bob.token.as_deref().unwrap()).await;
    let run = |api: &Api, channel: &str, command: &str| {
        let (api, body) = (
            api.clone(),
            json!({"channel_id": channel, "team_id": team, "command": command}),
        );
        async move { api.ok("POST", "/commands/execute", Some(body)).await }
    };
    run(&bob, &public, "/me waves").await;
    let post = last_post(&bob, &public).await;
    assert_eq!(
        (post["message"].as_str(), post["type"].as_str()),
        (Some("*waves*"), Some("me"))
    );
    run(&bob, &public, "/shrug oh well").await;
    assert_eq!(
        last_post(&bob, &public).await["message"],
        r"oh well ¯\\\_(ツ)\_/¯"
    );
    run(&bob, &public, "/echo \"hello\" 1").await;
    assert_eq!(last_post(&bob, &public).await["message"], "hello");
    run(&bob, &public, "/header Release day").await;
    run(&bob, &public, "/purpose Ship things").await;
    let channel = bob.ok("GET", &format!("/channels/{public}"), None).await;
    assert_eq!(
        (channel["header"].as_str(), channel["purpose"].as_str()),
        (Some("Release day"), Some("Ship things"))
    );
    run(&bob, &public, "/away").await;
    assert_eq!(
        bob.ok("GET", "/users/me/status", None).await["status"],
        "away"
    );
    run(&bob, &public, "/dnd").await;
    assert_eq!(
        bob.ok("GET", "/users/me/status", None).await["status"],
        "dnd"
    );
    run(&bob, &public, "/online").await;
    assert_eq!(
        bob.ok("GET", "/users/me/status", None).await["status"],
        "online"
    );
    run(&bob, &public, "/mute").await;
    let member = bob
        .ok("GET", &format!("/channels/{public}/members/me"), None)
        .await;
    assert_eq!(member["notify_props"]["mark_unread"], "mention");
    run(&bob, &public, "/mute").await;
    let member = bob
        .ok("GET", &format!("/channels/{public}/members/me"), None)
        .await;
    assert_eq!(member["notify_props"]["mark_unread"], "all");
    // Leave, then join again by name.
    let answer = run(&carol, &public, "/leave").await;
    assert_eq!(answer["goto_location"], "/tt/channels/town-square");
    refused(
        &carol
            .call("GET", &format!("/channels/{public}/members/me"), None)
            .await,
        StatusCode::NOT_FOUND,
        None,
    );
    let town = carol
        .ok(
            "GET",
            &format!("/teams/{team}/channels/name/town-square"),
            None,
        )
        .await;
    let town_id = town["id"].as_str().unwrap().to_string();
    let answer = run(&carol, &town_id, "/join ~pub").await;
    assert_eq!(answer["goto_location"], "/tt/channels/pub");
    carol
        .ok("GET", &format!("/channels/{public}/members/me"), None)
        .await;
    // Invite carol to the private channel; message her directly.
    let answer = run(&bob, &private, "/invite @carol").await;
    assert_eq!(answer["response_type"], "ephemeral");
    carol
        .ok("GET", &format!("/channels/{private}/members/me"), None)
        .await;
    let answer = run(&bob, &public, "/msg @carol psst").await;
    assert_eq!(answer["goto_location"], "/tt/messages/@carol");
    let dm = bob
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([bob.user_id, carol.user_id])),
        )
        .await;
    assert_eq!(
        last_post(&carol, dm["id"].as_str().unwrap()).await["message"],
        "psst"
    );
    let answer = run(&bob, &public, "/search hello").await;
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(
        answer["text"].as_str().unwrap().contains("> hello"),
        "{answer}"
    );
    // Refusals come back as ephemeral text, as Mattermost's built-ins answer.
    let answer = run(&bob, &public, "/join ~nowhere").await;
    assert_eq!(answer["response_type"], "ephemeral");
}

#[tokio::test]
async fn outgoing_webhooks_fire_once_per_trigger_from_three_nodes() {
    let (_dir, nodes) =
        three_nodes_with(&["--allowed-untrusted-internal-connections", "127.0.0.1"]).await;
    let bases: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let (alice, bob, _carol, team, public, _private) = team_fixture(&bases[0]).await;
    let receiver = HookReceiver::start().await;
    receiver.reply_json(json!({"text": "pong", "response_type": "comment"}));
    let answer = bob
        .call(
            "POST",
            "/hooks/outgoing",
            Some(json!({"team_id": team, "trigger_words": ["ping"], "callback_urls": [receiver.url]})),
        )
        .await;
    refused(&answer, StatusCode::FORBIDDEN, None);
    let answer = alice
        .call(
            "POST",
            "/hooks/outgoing",
            Some(json!({"team_id": team, "callback_urls": [receiver.url]})),
        )
        .await;
    refused(&answer, StatusCode::BAD_REQUEST, None);
    let hook = alice
        .ok(
            "POST",
            "/hooks/outgoing",
            Some(json!({"team_id": team, "channel_id": public, "trigger_words": ["ping"], "callback_urls": [format!("{}/hook", receiver.url)], "display_name": "Pinger"})),
        )
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["content_type"], "application/x-www-form-urlencoded");
    let hook_token = hook["token"].as_str().unwrap().to_string();

    // The receiver fails the first call: the leader retries it.
    receiver.fail_first(1);
    let on_two = bob.on(&bases[1]);
    let posted = on_two
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "ping the build"})),
        )
        .await;
    let post_id = posted["id"].as_str().unwrap().to_string();
    let requests = receiver.wait_for(2, WAIT).await;
    let request = &requests[1];
    assert_eq!(request.field("token"), hook_token);
    assert_eq!(request.field("trigger_word"), "ping");
    assert_eq!(request.field("text"), "ping the build");
    assert_eq!(request.field("post_id"), post_id);
    assert_eq!(request.field("user_name"), "bob");
    assert_eq!(request.field("channel_name"), "pub");
    let seconds: u64 = request.field("timestamp").parse().expect("timestamp");
    assert_eq!(seconds, posted["create_at"].as_u64().unwrap() / 1000);
    // The reply lands in the thread of the trigger, by the hook's creator.
    let thread = eventually(WAIT, "the hook's reply", || {
        let (alice, post_id) = (alice.clone(), post_id.clone());
        async move {
            let thread = alice
                .ok("GET", &format!("/posts/{post_id}/thread"), None)
                .await;
            (thread["order"].as_array().unwrap().len() == 2).then_some(thread)
        }
    })
    .await;
    let reply = thread["posts"]
        .as_object()
        .unwrap()
        .values()
        .find(|p| p["id"] != post_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(reply["message"], "pong");
    assert_eq!(reply["root_id"], post_id.as_str());
    assert_eq!(reply["user_id"], alice.user_id.as_str());
    assert_eq!(reply["props"]["from_webhook"], "true");

    // Three more triggers through each node, and one non-trigger: exactly one call each.
    for (i, base) in bases.iter().enumerate() {
        bob.on(base)
            .ok(
                "POST",
                "/posts",
                Some(json!({"channel_id": public, "message": format!("ping {i}")})),
            )
            .await;
    }
    bob.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": public, "message": "no trigger here"})),
    )
    .await;
    receiver.wait_for(5, WAIT).await;
    // The replies to all three exist once the calls were answered; no call repeats.
    eventually(WAIT, "three more replies", || {
        let (alice, public) = (alice.clone(), public.clone());
        async move {
            let page = alice
                .ok(
                    "GET",
                    &format!("/channels/{public}/posts?per_page=100"),
                    None,
                )
                .await;
            let pongs = page["posts"]
                .as_object()
                .unwrap()
                .values()
                .filter(|p| p["message"] == "pong")
                .count();
            (pongs == 4).then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let texts: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.field("text"))
        .collect();
    assert_eq!(texts.len(), 5, "{texts:?}");
    for i in 0..3 {
        assert_eq!(
            texts.iter().filter(|t| **t == format!("ping {i}")).count(),
            1
        );
    }

    // An incoming webhook posts through a follower (every node).
    let incoming = alice
        .ok(
            "POST",
            "/hooks/incoming",
            Some(json!({"channel_id": public})),
        )
        .await;
    let path = format!("/hooks/{}", incoming["id"].as_str().unwrap());
    for base in &bases {
        let (status, _, text) = root_post(
            base,
            &path,
            "application/json",
            json!({"text": format!("via {base}")})
                .to_string()
                .into_bytes(),
        )
        .await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"));
    }
    // Posts made by webhooks never trigger outgoing hooks.
    let (status, _, _) = root_post(
        &bases[2],
        &path,
        "application/json",
        br#"{"text":"ping from a hook"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Management: regen token, list, delete.
    let regen = alice
        .ok(
            "POST",
            &format!("/hooks/outgoing/{hook_id}/regen_token"),
            None,
        )
        .await;
    assert_ne!(regen["token"], hook_token.as_str());
    let listed = alice
        .ok("GET", &format!("/hooks/outgoing?team_id={team}"), None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    alice
        .ok("DELETE", &format!("/hooks/outgoing/{hook_id}"), None)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.requests().len(),
        5,
        "a hook-made post triggered nothing"
    );
}

/// Texts of the requests a receiver got, each with how often it came.
fn texts_of(receiver: &HookReceiver) -> std::collections::BTreeMap<String, usize> {
    let mut texts = std::collections::BTreeMap::new();
    for request in receiver.requests() {
        *texts.entry(request.field("text")).or_default() += 1;
    }
    texts
}

#[tokio::test]
async fn a_slow_outgoing_webhook_holds_back_only_its_own_calls_and_a_new_leader_repeats_only_those()
{
    let (_dir, mut nodes) =
        three_nodes_with(&["--allowed-untrusted-internal-connections", "127.0.0.1"]).await;
    let bases: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let (alice, _bob, _carol, team, public, _private) = team_fixture(&bases[0]).await;
    let other = alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team, "name": "quick", "display_name": "Quick", "type": "O"})),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_string();
    // One hook per channel, no trigger words: every post there calls it. The slow endpoint
    // answers nothing until the test releases it.
    let (slow, fast) = (HookReceiver::start().await, HookReceiver::start().await);
    slow.hold();
    for (channel, receiver) in [(&public, &slow), (&other, &fast)] {
        alice
            .ok(
                "POST",
                "/hooks/outgoing",
                Some(json!({"team_id": team, "channel_id": channel, "callback_urls": [format!("{}/hook", receiver.url)]})),
            )
            .await;
    }
    let status = alice.ok("GET", "/cluster/status", None).await;
    let leader = status["leader"].as_u64().expect("a leader") as usize - 1;
    let follower = alice.on(&bases[(leader + 1) % 3]);

    const SLOW_POSTS: usize = 100;
    for i in 0..SLOW_POSTS {
        follower
            .ok(
                "POST",
                "/posts",
                Some(json!({"channel_id": public, "message": format!("slow {i}")})),
            )
            .await;
    }
    // The slow hook gets its share at once (not one batch at a time), and no more.
    slow.wait_for(64, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(slow.requests().len(), 64, "calls of one hook in flight");
    eventually(WAIT, "the rest of the slow hook's calls queued", || async {
        let m = metrics(&bases[leader]).await;
        (m.get("confab_outgoing_webhook_queued").copied() == Some((SLOW_POSTS - 64) as f64))
            .then_some(())
    })
    .await;

    // The other hook's calls are not behind the held ones.
    for i in 0..5 {
        follower
            .ok(
                "POST",
                "/posts",
                Some(json!({"channel_id": other, "message": format!("fast {i}")})),
            )
            .await;
    }
    fast.wait_for(5, WAIT).await;
    assert_eq!(slow.requests().len(), 64, "the slow calls are still held");

    // The leader dies with the slow calls unanswered. The next leader makes every slow call
    // again (none finished), and none of the fast ones (they were committed as done).
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[leader].kill();
    slow.wait_for(64 * 2, Duration::from_secs(60)).await;
    slow.release();
    let survivor = &bases[(leader + 1) % 3];
    eventually(WAIT, "every slow post called", || async {
        (texts_of(&slow).len() == SLOW_POSTS).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let texts = texts_of(&slow);
    assert!(
        texts.values().all(|n| *n <= 2),
        "a slow call made more than twice: {texts:?}"
    );
    assert_eq!(
        texts.values().filter(|n| **n == 2).count(),
        64,
        "only the calls in flight at the leader change were made again"
    );
    let fast_texts = texts_of(&fast);
    assert_eq!(fast_texts.len(), 5);
    assert!(
        fast_texts.values().all(|n| *n == 1),
        "a finished call was made again: {fast_texts:?}"
    );
    // Nothing is left in the outbox: the new leader's queue is empty.
    eventually(WAIT, "the outbox drained", || async {
        let status = alice.on(survivor).ok("GET", "/cluster/status", None).await;
        let leader = status["leader"].as_u64()? as usize - 1;
        let m = metrics(&bases[leader]).await;
        (m.get("confab_outgoing_webhook_queued").copied() == Some(0.0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_token_revoked_on_node_one_is_refused_on_node_three() {
    let (_dir, nodes) = three_nodes_with(&["--enable-user-access-tokens", "true"]).await;
    let alice = Api::signup(&nodes[0].api, "alice").await;
    let created = alice
        .call(
            "POST",
            "/users/me/tokens",
            Some(json!({"description": "ci"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let mut on_three = alice.on(&nodes[2].api);
    on_three.token = Some(created.body["token"].as_str().unwrap().to_string());
    // Read-your-writes: node 3 answers once it applied the write the index names.
    let at = applied_index(&created).to_string();
    let me = on_three
        .call_with("GET", "/users/me", None, &[("x-confab-applied", &at)])
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let revoked = alice
        .call(
            "POST",
            "/users/tokens/revoke",
            Some(json!({"token_id": created.body["id"]})),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let at = applied_index(&revoked).to_string();
    let answer = on_three
        .call_with("GET", "/users/me", None, &[("x-confab-applied", &at)])
        .await;
    refused(&answer, StatusCode::UNAUTHORIZED, None);
}

#[tokio::test]
async fn internal_addresses_are_refused_without_the_allow_list() {
    // No `allowed_untrusted_internal_connections`: loopback is off limits.
    let (_dir, node) = single_node().await;
    let (alice, bob, _carol, team, public, _private) = team_fixture(&node.api).await;
    let receiver = HookReceiver::start().await;
    receiver.reply_json(json!({"text": "should never be posted"}));
    let port = receiver.url.rsplit(':').next().unwrap().to_string();
    for (n, url) in [
        format!("{}/cmd", receiver.url),
        format!("http://localhost:{port}/cmd"),
    ]
    .into_iter()
    .enumerate()
    {
        let trigger = format!("internal{n}");
        alice
            .ok(
                "POST",
                "/commands",
                Some(json!({"team_id": team, "trigger": trigger, "url": url})),
            )
            .await;
        let answer = bob
            .call(
                "POST",
                "/commands/execute",
                Some(json!({"channel_id": public, "command": format!("/{trigger}")})),
            )
            .await;
        refused(
            &answer,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("api.command.execute_command.failed.app_error"),
        );
    }
    alice
        .ok(
            "POST",
            "/hooks/outgoing",
            Some(json!({"team_id": team, "channel_id": public, "callback_urls": [format!("{}/hook", receiver.url)], "content_type": "application/json"})),
        )
        .await;
    bob.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": public, "message": "anything"})),
    )
    .await;
    eventually(WAIT, "the refused call counted", || async {
        let m = metrics(&node.api).await;
        (m.get("confab_outgoing_webhook_failed_total")
            .copied()
            .unwrap_or(0.0)
            >= 1.0)
            .then_some(())
    })
    .await;
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the loopback receiver"
    );
}

#[tokio::test]
async fn a_json_outgoing_webhook_gets_mattermosts_json_payload() {
    let (_dir, node) =
        single_node_with(&["--allowed-untrusted-internal-connections", "127.0.0.1"]).await;
    let (alice, bob, _carol, team, public, _private) = team_fixture(&node.api).await;
    let receiver = HookReceiver::start().await;
    receiver.reply_json(json!({"text": "seen", "username": "watcher"}));
    let hook = alice
        .ok(
            "POST",
            "/hooks/outgoing",
            Some(json!({"team_id": team, "trigger_words": ["build"], "trigger_when": 1, "callback_urls": [format!("{}/json", receiver.url)], "content_type": "application/json"})),
        )
        .await;
    let posted = bob
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "builder go"})),
        )
        .await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert!(
        request.content_type.starts_with("application/json"),
        "{}",
        request.content_type
    );
    assert_eq!(request.field("token"), hook["token"].as_str().unwrap());
    assert_eq!(request.field("trigger_word"), "build");
    assert_eq!(request.field("team_domain"), "tt");
    assert_eq!(request.fields["timestamp"], posted["create_at"]);
    // The reply is a new post in the channel (not a thread reply), by the hook's creator.
    let reply = eventually(WAIT, "the reply", || {
        let (alice, public) = (alice.clone(), public.clone());
        async move {
            let post = last_post(&alice, &public).await;
            (post["message"] == "seen").then_some(post)
        }
    })
    .await;
    assert_eq!(reply["root_id"], "");
    assert_eq!(reply["user_id"], alice.user_id.as_str());
}
