//! What the official Mattermost apps need to get past connect and login, on real nodes: the site
//! root, ping, client config and license, roles, preferences (with their events, refusals and
//! replication) and saved posts; and the mobile app's own connect + login sequence replayed with
//! its headers (`../shared/reference/official-apps-boot.md`).

mod common;

use common::{inner, single_node, team_with, three_nodes, Answer, Api, Socket};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn assert_error(answer: &Answer, status: StatusCode, id: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.body["status_code"],
        json!(status.as_u16()),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["id"], id, "{}", answer.body);
}

/// `X-Version-Id` as the mobile app checks it: present, without `Cache-Control` (which makes the
/// apps ignore it), and its first three parts at least 9.11.0.
fn assert_version_header(answer: &Answer, what: &str) {
    assert!(
        answer.headers.get("cache-control").is_none(),
        "{what}: Cache-Control hides X-Version-Id from the apps"
    );
    let version = answer
        .headers
        .get("x-version-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{what}: no X-Version-Id"));
    let parts: Vec<u64> = version
        .split('.')
        .take(3)
        .map(|p| p.parse().expect("numeric version part"))
        .collect();
    assert!(parts >= vec![9, 11, 0], "{what}: {version} is below 9.11.0");
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_ping_config_license_and_plugins() {
    let (_dir, node) = single_node().await;
    let http = reqwest::Client::new();

    // The mobile app's first request: HEAD on the server URL. The web app GETs it.
    let head = http.head(format!("{}/", node.api)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let page = http.get(format!("{}/", node.api)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("confab"));

    let anon = Api::new(&node.api);
    let ping = anon
        .call("GET", "/system/ping?time=1700000000000", None)
        .await;
    assert_eq!(ping.status, StatusCode::OK);
    assert_eq!(ping.body["status"], "OK");
    assert!(ping.body.get("CanReceiveNotifications").is_none());
    assert_version_header(&ping, "ping");
    let status = anon
        .ok(
            "GET",
            "/system/ping?get_server_status=true&device_id=android_rn-v2:abc",
            None,
        )
        .await;
    assert_eq!(status["status"], "OK");
    assert_eq!(status["database_status"], "OK");
    assert_eq!(status["IosMinVersion"], "");
    assert_eq!(
        status["CanReceiveNotifications"], "false",
        "confab sends no push notifications and says so"
    );

    // Config and license: served without a session, only in the old format.
    let config = anon.call("GET", "/config/client?format=old", None).await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);
    assert_version_header(&config, "config");
    let config = config.body;
    let object = config.as_object().expect("an object");
    assert!(
        object.values().all(Value::is_string),
        "every config value is a string"
    );
    assert!(!text(&config["DiagnosticId"]).is_empty());
    assert_eq!(config["Version"], "10.11.0");
    assert_eq!(config["SiteName"], "confab");
    assert_eq!(config["SiteURL"], node.api, "the URL the request reached");
    assert_eq!(config["EnableSignInWithUsername"], "true");
    assert_eq!(config["EnableSignInWithEmail"], "true");
    assert_eq!(config["WebsocketURL"], "");
    assert_eq!(config["MaxPostSize"], "16383");
    assert_eq!(config["EnableFileAttachments"], "true", "files are served");
    assert_eq!(config["AllowSyncedDrafts"], "true");
    assert_eq!(config["MaxFileSize"], (100u64 << 20).to_string());
    assert_eq!(config["PluginsEnabled"], "false");
    assert_eq!(config["FeatureFlagAppsEnabled"], "false");
    assert_eq!(config["EnableGuestMagicLink"], "false");
    assert_eq!(config["NoAccounts"], "true", "nobody signed up yet");
    assert_error(
        &anon.call("GET", "/config/client", None).await,
        StatusCode::NOT_IMPLEMENTED,
        "api.config.client.old_format.app_error",
    );
    let license = anon.ok("GET", "/license/client?format=old", None).await;
    assert_eq!(license, json!({"IsLicensed": "false"}));
    assert_error(
        &anon.call("GET", "/license/client?format=new", None).await,
        StatusCode::NOT_IMPLEMENTED,
        "api.license.client.old_format.app_error",
    );

    let alice = Api::signup(&node.api, "alice").await;
    let config = anon.ok("GET", "/config/client?format=old", None).await;
    assert_eq!(config["NoAccounts"], "false");
    assert_eq!(alice.ok("GET", "/plugins/webapp", None).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_list_what_confab_enforces() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let roles = alice
        .ok(
            "POST",
            "/roles/names",
            Some(json!([
                "system_user",
                "team_user",
                "channel_user",
                "no_such_role",
                ""
            ])),
        )
        .await;
    let roles = roles.as_array().expect("an array");
    let names: Vec<&str> = roles.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["system_user", "team_user", "channel_user"]);
    let channel_user = &roles[2];
    let permissions = channel_user["permissions"].as_array().unwrap();
    assert!(
        permissions.contains(&json!("create_post")),
        "the apps enable the message box"
    );
    assert!(!permissions.contains(&json!("upload_file")), "no files yet");
    assert_eq!(text(&channel_user["id"]).len(), 26);
    assert_eq!(channel_user["built_in"], true);

    let by_name = alice.ok("GET", "/roles/name/system_admin", None).await;
    assert!(by_name["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("manage_system")));
    let by_id = alice
        .ok(
            "GET",
            &format!("/roles/{}", text(&channel_user["id"])),
            None,
        )
        .await;
    assert_eq!(by_id["name"], "channel_user");

    // Refusals.
    let anon = Api::new(&node.api);
    assert_error(
        &anon
            .call("POST", "/roles/names", Some(json!(["system_user"])))
            .await,
        StatusCode::UNAUTHORIZED,
        "api.context.session_expired.app_error",
    );
    assert_error(
        &alice
            .call("POST", "/roles/names", Some(json!({"a": 1})))
            .await,
        StatusCode::BAD_REQUEST,
        "api.context.invalid_body_param.app_error",
    );
    assert_error(
        &alice
            .call("POST", "/roles/names", Some(json!(["Bad-Name"])))
            .await,
        StatusCode::BAD_REQUEST,
        "api.context.invalid_param.app_error",
    );
    assert_error(
        &alice.call("POST", "/roles/names", Some(json!([]))).await,
        StatusCode::BAD_REQUEST,
        "api.context.invalid_param.app_error",
    );
    assert_error(
        &alice.call("GET", "/roles/name/team_guest", None).await,
        StatusCode::NOT_FOUND,
        "app.role.get_by_name.app_error",
    );
    assert_error(
        &alice
            .call("GET", &format!("/roles/{}", "a".repeat(26)), None)
            .await,
        StatusCode::NOT_FOUND,
        "app.role.get.app_error",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_crud_refusals_and_events() {
    let (_dir, node) = single_node().await;
    let admin = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let carol = Api::signup(&node.api, "carol").await;
    let mut socket = Socket::connect(&node.api, bob.token.as_deref().unwrap()).await;
    let mut carol_socket = Socket::connect(&node.api, carol.token.as_deref().unwrap()).await;

    assert_eq!(
        bob.ok("GET", "/users/me/preferences", None).await,
        json!([])
    );
    let saved = bob
        .call(
            "PUT",
            "/users/me/preferences",
            Some(json!([
                {"user_id": bob.user_id, "category": "display_settings", "name": "use_military_time", "value": "true"},
                {"user_id": bob.user_id, "category": "theme", "name": "", "value": "{\"sidebarBg\":\"#145dbf\"}"},
            ])),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body, json!({"status": "OK"}));
    assert!(saved.headers.get("x-confab-applied").is_some());

    let event = socket.wait_event("preferences_changed", WAIT).await;
    let sent = inner(&event["data"]["preferences"]);
    assert_eq!(sent.as_array().map(Vec::len), Some(2), "{event}");
    assert_eq!(sent[0]["user_id"], bob.user_id);
    assert_eq!(event["broadcast"]["user_id"], bob.user_id);
    carol_socket
        .assert_no_event("preferences_changed", Duration::from_millis(500))
        .await;

    // Overwrite one; read all, by category, by name.
    bob.ok(
        "PUT",
        &format!("/users/{}/preferences", bob.user_id),
        Some(json!([{"user_id": bob.user_id, "category": "display_settings", "name": "use_military_time", "value": "false"}])),
    )
    .await;
    let all = bob.ok("GET", "/users/me/preferences", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    let by_category = bob
        .ok("GET", "/users/me/preferences/display_settings", None)
        .await;
    assert_eq!(
        by_category,
        json!([{"user_id": bob.user_id, "category": "display_settings", "name": "use_military_time", "value": "false"}])
    );
    let one = bob
        .ok(
            "GET",
            "/users/me/preferences/display_settings/name/use_military_time",
            None,
        )
        .await;
    assert_eq!(one["value"], "false");

    // Delete one: gone, and the event says which.
    bob.ok(
        "POST",
        "/users/me/preferences/delete",
        Some(json!([{"user_id": bob.user_id, "category": "display_settings", "name": "use_military_time"}])),
    )
    .await;
    let deleted = socket.wait_event("preferences_deleted", WAIT).await;
    assert_eq!(
        inner(&deleted["data"]["preferences"])[0]["name"],
        "use_military_time"
    );
    assert_error(
        &bob.call("GET", "/users/me/preferences/display_settings", None)
            .await,
        StatusCode::NOT_FOUND,
        "api.preference.preferences_category.get.app_error",
    );
    assert_error(
        &bob.call(
            "GET",
            "/users/me/preferences/display_settings/name/use_military_time",
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "app.preference.get.app_error",
    );

    // Refusals: no session, another user's, a list naming someone else, bad JSON, bad values.
    let anon = Api::new(&node.api);
    assert_error(
        &anon
            .call("GET", &format!("/users/{}/preferences", bob.user_id), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "api.context.session_expired.app_error",
    );
    assert_error(
        &carol
            .call("GET", &format!("/users/{}/preferences", bob.user_id), None)
            .await,
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
    );
    assert_error(
        &carol
            .call(
                "PUT",
                &format!("/users/{}/preferences", bob.user_id),
                Some(json!([{"user_id": bob.user_id, "category": "c", "name": "n", "value": "v"}])),
            )
            .await,
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
    );
    assert_error(
        &carol
            .call(
                "PUT",
                "/users/me/preferences",
                Some(json!([{"user_id": bob.user_id, "category": "c", "name": "n", "value": "v"}])),
            )
            .await,
        StatusCode::FORBIDDEN,
        "api.preference.update_preferences.set.app_error",
    );
    assert_error(
        &carol
            .call(
                "POST",
                "/users/me/preferences/delete",
                Some(json!([{"user_id": bob.user_id, "category": "theme", "name": ""}])),
            )
            .await,
        StatusCode::FORBIDDEN,
        "api.preference.delete_preferences.delete.app_error",
    );
    assert_error(
        &bob.call(
            "PUT",
            "/users/me/preferences",
            Some(json!({"not": "a list"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "api.context.invalid_body_param.app_error",
    );
    for (category, name, value, id) in [
        ("", "n", "v", "model.preference.is_valid.category.app_error"),
        (
            "theme",
            "",
            "not json",
            "model.preference.is_valid.theme.app_error",
        ),
        (
            "c",
            "a_name_that_is_far_longer_than_32_bytes",
            "v",
            "model.preference.is_valid.name.app_error",
        ),
    ] {
        assert_error(
            &bob.call(
                "PUT",
                "/users/me/preferences",
                Some(json!([{"user_id": bob.user_id, "category": category, "name": name, "value": value}])),
            )
            .await,
            StatusCode::BAD_REQUEST,
            id,
        );
    }
    assert_error(
        &bob.call("GET", "/users/me/preferences/bad-category", None)
            .await,
        StatusCode::BAD_REQUEST,
        "api.context.invalid_param.app_error",
    );

    // A system admin reads and writes another user's preferences through that user's path.
    admin
        .ok(
            "PUT",
            &format!("/users/{}/preferences", carol.user_id),
            Some(json!([{"user_id": carol.user_id, "category": "tutorial_step", "name": carol.user_id, "value": "999"}])),
        )
        .await;
    let seen = admin
        .ok(
            "GET",
            &format!("/users/{}/preferences", carol.user_id),
            None,
        )
        .await;
    assert_eq!(seen[0]["value"], "999");
    let event = carol_socket.wait_event("preferences_changed", WAIT).await;
    assert_eq!(inner(&event["data"]["preferences"])[0]["value"], "999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_posts_through_flagged_post_preferences() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let (team_id, town) = team_with(&alice, "flags", &[&bob]).await;
    let private = alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team_id, "name": "secret", "display_name": "Secret", "type": "P"})),
        )
        .await;
    let first = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "first"})),
        )
        .await;
    let second = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "second"})),
        )
        .await;
    let hidden = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": private["id"], "message": "hidden"})),
        )
        .await;

    let flag = |post: &Value| json!({"user_id": bob.user_id, "category": "flagged_post", "name": post["id"], "value": "true"});
    bob.ok(
        "PUT",
        "/users/me/preferences",
        Some(json!([flag(&first), flag(&second)])),
    )
    .await;
    let saved = bob.ok("GET", "/users/me/posts/flagged", None).await;
    assert_eq!(
        saved["order"],
        json!([second["id"], first["id"]]),
        "newest first"
    );
    assert_eq!(saved["posts"][text(&first["id"])]["message"], "first");
    let paged = bob
        .ok("GET", "/users/me/posts/flagged?page=1&per_page=1", None)
        .await;
    assert_eq!(paged["order"], json!([first["id"]]));
    let elsewhere = bob
        .ok(
            "GET",
            &format!(
                "/users/me/posts/flagged?channel_id={}",
                private["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(elsewhere["order"], json!([]));

    // bob cannot save a post he cannot read, nor one that does not exist.
    assert_error(
        &bob.call("PUT", "/users/me/preferences", Some(json!([flag(&hidden)])))
            .await,
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
    );
    assert_error(
        &bob.call(
            "PUT",
            "/users/me/preferences",
            Some(json!([flag(&json!({"id": "z".repeat(26)}))])),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "api.context.invalid_param.app_error",
    );

    // A deleted post drops out of the list; unsaving removes it.
    alice
        .ok("DELETE", &format!("/posts/{}", text(&second["id"])), None)
        .await;
    let saved = bob.ok("GET", "/users/me/posts/flagged", None).await;
    assert_eq!(saved["order"], json!([first["id"]]));
    bob.ok(
        "POST",
        "/users/me/preferences/delete",
        Some(json!([flag(&first)])),
    )
    .await;
    let saved = bob.ok("GET", "/users/me/posts/flagged", None).await;
    assert_eq!(saved["order"], json!([]));
    // Only bob or an admin may list bob's saved posts.
    let carol = Api::signup(&node.api, "carol").await;
    assert_error(
        &carol
            .call(
                "GET",
                &format!("/users/{}/posts/flagged", bob.user_id),
                None,
            )
            .await,
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
    );
    let by_admin = alice
        .ok(
            "GET",
            &format!("/users/{}/posts/flagged", bob.user_id),
            None,
        )
        .await;
    assert_eq!(by_admin["order"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_replicate_across_a_cluster() {
    let (_dir, nodes) = three_nodes().await;
    let (n1, n2) = (&nodes[0].api, &nodes[1].api);
    let alice = Api::signup(n1, "alice").await;
    // The session was made through node 1: node 2 authenticates the socket once it has
    // applied it (a socket with a token its node does not know yet waits for a challenge).
    let alice_on_n2 = alice.on(n2);
    common::eventually(WAIT, "node 2 to know alice's session", || async {
        (alice_on_n2.call("GET", "/users/me", None).await.status == StatusCode::OK).then_some(())
    })
    .await;
    let mut socket_on_n2 = Socket::connect(n2, alice.token.as_deref().unwrap()).await;
    let written = alice
        .call(
            "PUT",
            "/users/me/preferences",
            Some(json!([{"user_id": alice.user_id, "category": "display_settings", "name": "name_format", "value": "full_name"}])),
        )
        .await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.body);
    let index = written
        .headers
        .get("x-confab-applied")
        .and_then(|v| v.to_str().ok())
        .expect("the applied index")
        .to_string();
    let on_n2 = alice
        .on(n2)
        .call_with(
            "GET",
            "/users/me/preferences/display_settings/name/name_format",
            None,
            &[("X-Confab-Applied", &index)],
        )
        .await;
    assert_eq!(on_n2.status, StatusCode::OK, "{}", on_n2.body);
    assert_eq!(on_n2.body["value"], "full_name");
    // The event reaches the user's socket on another node.
    let event = socket_on_n2.wait_event("preferences_changed", WAIT).await;
    assert_eq!(
        inner(&event["data"]["preferences"])[0]["value"],
        "full_name"
    );
}

/// The headers the mobile app sends on every request (`managers/network_manager.ts`).
const MOBILE: &[(&str, &str)] = &[
    ("X-Requested-With", "XMLHttpRequest"),
    ("Accept", "application/json"),
    (
        "User-Agent",
        "Mattermost Mobile/2.30.0+614 (Android; 14; Pixel 8)",
    ),
];

/// A request as the mobile app makes it: its headers, and every answer carries a usable
/// `X-Version-Id`. Fatal calls must succeed.
async fn mobile(api: &Api, method: &str, path: &str, body: Option<Value>) -> Value {
    let answer = api.call_with(method, path, body, MOBILE).await;
    assert!(
        answer.status.is_success(),
        "{method} {path}: {} {}",
        answer.status,
        answer.body
    );
    assert_version_header(&answer, path);
    answer.body
}

/// The connect screen and login entry: config and license in parallel, both fatal, with the
/// fields the app reads.
async fn connect_screen(api: &Api) {
    let (config, license) = tokio::join!(
        mobile(api, "GET", "/config/client?format=old", None),
        mobile(api, "GET", "/license/client?format=old", None),
    );
    assert!(
        !text(&config["DiagnosticId"]).is_empty(),
        "DiagnosticId is required"
    );
    for field in [
        "SiteName",
        "Version",
        "MobileJailbreakProtection",
        "MobileEnableBiometrics",
        "SiteURL",
        "MaxPostSize",
        "MaxFileSize",
        "WebsocketPort",
        "WebsocketSecurePort",
        "CollapsedThreads",
    ] {
        assert!(config[field].is_string(), "config {field}: {config}");
    }
    assert!(
        config["EnableSignInWithUsername"] == "true" || config["EnableSignInWithEmail"] == "true",
        "the login form needs a sign-in option"
    );
    assert_eq!(license["IsLicensed"], "false");
}

async fn replay_mobile_connect_and_login(base: &str, other: &str) {
    // Someone has set up a team; mia, who has the mobile app, is in it.
    let admin = Api::signup(other, "owner").await;
    let mia = Api::signup(other, "mia").await;
    let (team_id, town) = team_with(&admin, "mobile", &[&mia]).await;
    let welcome = admin
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "welcome"})),
        )
        .await;
    assert_eq!(welcome.status, StatusCode::CREATED, "{}", welcome.body);
    // The phone's node has applied the setup before the phone arrives (read-your-writes).
    let index = welcome
        .headers
        .get("x-confab-applied")
        .and_then(|v| v.to_str().ok())
        .expect("the applied index")
        .to_string();
    let caught_up = Api::new(base)
        .call_with("GET", "/system/ping", None, &[("X-Confab-Applied", &index)])
        .await;
    assert_eq!(caught_up.status, StatusCode::OK, "{}", caught_up.body);

    // (a) Connect screen: HEAD, ping, config + license.
    let http = reqwest::Client::new();
    let head = http.head(format!("{base}/")).send().await.unwrap();
    assert!(head.status().is_success());
    let anon = Api::new(base);
    let ping = mobile(&anon, "GET", "/system/ping?time=1764590000000", None).await;
    assert_eq!(ping["status"], "OK");
    connect_screen(&anon).await;

    // (b) Login: the Token header is what the app keeps.
    let login = anon
        .call_with(
            "POST",
            "/users/login",
            Some(json!({
                "login_id": "mia", "password": "passw0rd!", "token": "",
                "device_id": "android_rn-v2:f7c1e0d0", "voip_device_id": "",
            })),
            MOBILE,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_version_header(&login, "login");
    let mut app = Api::new(base);
    app.token = login
        .headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    assert!(app.token.is_some(), "login answers a Token header");
    app.user_id = text(&login.body["id"]);
    connect_screen(&app).await;

    // (c) First load: preferences (fatal), teams, team members, me.
    let preferences = mobile(&app, "GET", "/users/me/preferences", None).await;
    assert!(preferences.is_array());
    let teams = mobile(&app, "GET", "/users/me/teams", None).await;
    assert_eq!(teams[0]["id"], team_id);
    let team_members = mobile(&app, "GET", "/users/me/teams/members", None).await;
    let team_member = &team_members[0];
    assert!(
        team_member["roles"].is_string(),
        "roles are split on spaces"
    );
    assert!(team_member["delete_at"].is_number());
    let me = mobile(&app, "GET", "/users/me", None).await;
    assert!(me.get("email").is_some(), "fetchMe fails without email");
    for field in [
        "id",
        "username",
        "roles",
        "locale",
        "timezone",
        "notify_props",
        "props",
    ] {
        assert!(me.get(field).is_some(), "users/me {field}: {me}");
    }
    let channels = mobile(
        &app,
        "GET",
        &format!("/users/me/teams/{team_id}/channels?include_deleted=false&last_delete_at=0"),
        None,
    )
    .await;
    assert!(channels.as_array().is_some_and(|c| !c.is_empty()));
    let channel_members = mobile(
        &app,
        "GET",
        &format!("/users/me/teams/{team_id}/channels/members"),
        None,
    )
    .await;
    for field in [
        "roles",
        "notify_props",
        "msg_count",
        "mention_count",
        "last_viewed_at",
    ] {
        assert!(
            channel_members[0].get(field).is_some(),
            "channel member {field}: {channel_members}"
        );
    }
    let categories = mobile(
        &app,
        "GET",
        &format!("/users/me/teams/{team_id}/channels/categories"),
        None,
    )
    .await;
    let listed: Vec<&Value> = categories["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .flat_map(|c| c["channel_ids"].as_array().expect("channel_ids"))
        .collect();
    for channel in channels.as_array().unwrap() {
        assert!(
            listed.contains(&&channel["id"]),
            "the app lists a channel only through a category: {channel}"
        );
    }
    assert_eq!(categories["order"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        mobile(&app, "GET", "/plugins/webapp", None).await,
        json!([])
    );

    // Deferred: roles by the names the user holds; without create_post the draft box is
    // read-only.
    let mut names: Vec<String> = Vec::new();
    let mut add = |roles: &Value| {
        for name in roles.as_str().unwrap_or("").split_whitespace() {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    };
    add(&me["roles"]);
    add(&team_member["roles"]);
    for member in channel_members.as_array().unwrap() {
        add(&member["roles"]);
    }
    let roles = mobile(&app, "POST", "/roles/names", Some(json!(names))).await;
    let returned: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(returned.contains(&name.as_str()), "role {name} is served");
    }
    let permissions: Vec<&Value> = roles
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["permissions"].as_array().unwrap())
        .collect();
    assert!(permissions.contains(&&json!("create_post")));

    // The app saves a preference to show a DM, then opens town square and posts.
    mobile(
        &app,
        "PUT",
        &format!("/users/{}/preferences", app.user_id),
        Some(json!([{"user_id": app.user_id, "category": "direct_channel_show", "name": admin.user_id, "value": "true"}])),
    )
    .await;
    let posts = mobile(
        &app,
        "GET",
        &format!("/channels/{town}/posts?page=0&per_page=60&collapsedThreads=false&collapsedThreadsExtended=false"),
        None,
    )
    .await;
    assert!(posts["posts"].is_object());
    // Each author's picture, by the URL the app builds from the user's `last_picture_update`.
    let authors = mobile(&app, "POST", "/users/ids", Some(json!([admin.user_id]))).await;
    let stamp = authors[0]["last_picture_update"].as_i64().unwrap_or(-1);
    let picture = app
        .call_with(
            "GET",
            &format!("/users/{}/image?_={stamp}", admin.user_id),
            None,
            MOBILE,
        )
        .await;
    assert_eq!(picture.status, StatusCode::OK);
    assert_eq!(
        picture
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    mobile(
        &app,
        "POST",
        "/channels/members/me/view",
        Some(json!({"channel_id": town, "collapsed_threads_supported": true})),
    )
    .await;
    let pending = format!("{}:1764590000123", app.user_id);
    let posted = mobile(
        &app,
        "POST",
        "/posts",
        Some(json!({"id": "", "user_id": app.user_id, "channel_id": town, "root_id": "", "message": "from my phone", "pending_post_id": pending, "create_at": 0, "update_at": 0, "delete_at": 0})),
    )
    .await;
    assert_eq!(
        posted["pending_post_id"], pending,
        "the app swaps its local copy by it"
    );

    // (f) The WebSocket as the iOS app opens it: no credentials on the upgrade, the challenge,
    // a ping at once; both answered, and hello first among events.
    let mut socket = Socket::connect_anonymous(base).await;
    socket
        .send(json!({"action": "authentication_challenge", "seq": 1, "data": {"token": app.token}}))
        .await;
    socket.send(json!({"action": "ping", "seq": 2})).await;
    let mut replies = Vec::new();
    let mut hello = None;
    while replies.len() < 2 || hello.is_none() {
        let message = socket
            .next_json(WAIT)
            .await
            .expect("a reply or an event from the socket");
        if message.get("seq_reply").is_some() {
            replies.push(message);
        } else if message["event"] == "hello" {
            hello = Some(message);
        } else {
            panic!("an event before hello: {message}");
        }
    }
    assert_eq!(replies[0]["seq_reply"], 1);
    assert_eq!(replies[0]["status"], "OK");
    assert_eq!(replies[1]["seq_reply"], 2);
    assert_eq!(replies[1]["data"]["text"], "pong");
    let hello = hello.unwrap_or_default();
    assert_eq!(hello["seq"], 0);
    assert!(text(&hello["data"]["server_version"]).starts_with("10.11.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mobile_app_connects_and_logs_in_on_one_node() {
    let (_dir, node) = single_node().await;
    replay_mobile_connect_and_login(&node.api, &node.api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mobile_app_connects_and_logs_in_on_a_cluster() {
    let (_dir, nodes) = three_nodes().await;
    // The team is set up through node 1; the phone talks to node 3.
    replay_mobile_connect_and_login(&nodes[2].api, &nodes[0].api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_sidebar_categories_follow_channels_and_favorites() {
    let (_dir, node) = single_node().await;
    let alice = Api::signup(&node.api, "alice").await;
    let bob = Api::signup(&node.api, "bob").await;
    let carol = Api::signup(&node.api, "carol").await;
    let (team_id, town) = team_with(&alice, "side", &[&bob]).await;
    let off_topic = text(
        &bob.ok(
            "GET",
            &format!("/teams/{team_id}/channels/name/off-topic"),
            None,
        )
        .await["id"],
    );
    let dm = bob
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([bob.user_id, alice.user_id])),
        )
        .await;
    let path = format!("/users/me/teams/{team_id}/channels/categories");
    let got = bob.ok("GET", &path, None).await;
    let ids: Vec<String> = got["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| text(&c["id"]))
        .collect();
    let expected: Vec<String> = ["favorites", "channels", "direct_messages"]
        .iter()
        .map(|kind| format!("{kind}_{}_{team_id}", bob.user_id))
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(got["order"], json!(expected));
    assert_eq!(got["categories"][0]["channel_ids"], json!([]));
    assert_eq!(
        got["categories"][1]["channel_ids"],
        json!([off_topic, town]),
        "by display name"
    );
    assert_eq!(got["categories"][2]["channel_ids"], json!([dm["id"]]));
    assert_eq!(got["categories"][2]["sorting"], "recent");

    // A favourite moves to Favorites (Mattermost mirrors that category in these preferences).
    bob.ok(
        "PUT",
        "/users/me/preferences",
        Some(json!([{"user_id": bob.user_id, "category": "favorite_channel", "name": town, "value": "true"}])),
    )
    .await;
    let got = bob.ok("GET", &path, None).await;
    assert_eq!(got["categories"][0]["channel_ids"], json!([town]));
    assert_eq!(got["categories"][1]["channel_ids"], json!([off_topic]));
    let order = bob.ok("GET", &format!("{path}/order"), None).await;
    assert_eq!(order, json!(expected));
    let one = bob
        .ok("GET", &format!("{path}/{}", expected[0]), None)
        .await;
    assert_eq!(one["channel_ids"], json!([town]));

    // Refusals: no session, another user's, a team the user is not in, an unknown category.
    assert_error(
        &Api::new(&node.api).call("GET", &path, None).await,
        StatusCode::UNAUTHORIZED,
        "api.context.session_expired.app_error",
    );
    assert_error(
        &carol
            .call(
                "GET",
                &format!("/users/{}/teams/{team_id}/channels/categories", bob.user_id),
                None,
            )
            .await,
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
    );
    assert_error(
        &carol.call("GET", &path, None).await,
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
    );
    assert_error(
        &bob.call("GET", &format!("{path}/custom_nope"), None).await,
        StatusCode::NOT_FOUND,
        "app.channel.sidebar_categories.app_error",
    );
}

/// A cookie the server set, from a response's `Set-Cookie` headers.
fn set_cookie(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_string())
        })
}

/// The web app's way in: login sets `MMAUTHTOKEN` (HttpOnly), `MMUSERID` and `MMCSRF`; every
/// later call carries only the cookies, and a call that changes something must carry the CSRF
/// token (or `X-Requested-With: XMLHttpRequest`, as Mattermost accepts without strict CSRF).
/// Bearer-authenticated calls (the mobile app, bots) need neither. The WebSocket authenticates
/// by cookie alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_app_signs_in_with_cookies_and_csrf() {
    let (_dir, nodes) = three_nodes().await;
    let admin = Api::signup(&nodes[0].api, "admin").await;
    let bob = Api::signup(&nodes[0].api, "bob").await;
    let (_team, town) = team_with(&admin, "web", &[&bob]).await;
    let http = reqwest::Client::new();
    let api = |node: usize, path: &str| format!("{}/api/v4{path}", nodes[node].api);

    let login = http
        .post(api(1, "/users/login"))
        .header("X-Requested-With", "XMLHttpRequest")
        .json(&json!({"login_id": "bob", "password": "passw0rd!"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    let token = set_cookie(&login, "MMAUTHTOKEN").expect("MMAUTHTOKEN");
    let user_id = set_cookie(&login, "MMUSERID").expect("MMUSERID");
    let csrf = set_cookie(&login, "MMCSRF").expect("MMCSRF");
    assert_eq!(user_id, bob.user_id);
    assert_ne!(csrf, token, "the CSRF token is not the session token");
    let httponly = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("MMAUTHTOKEN="))
        .expect("auth cookie");
    assert!(httponly.contains("HttpOnly"), "{httponly}");
    let cookies = format!("MMAUTHTOKEN={token}; MMUSERID={user_id}; MMCSRF={csrf}");

    // Reads with cookies alone, on any node.
    for node in 0..3 {
        let me = http
            .get(api(node, "/users/me"))
            .header("Cookie", &cookies)
            .send()
            .await
            .expect("me");
        assert_eq!(me.status(), StatusCode::OK, "node {node}");
    }
    let post = |csrf_header: Option<(&'static str, String)>, node: usize| {
        let mut request = http
            .post(api(node, "/posts"))
            .header("Cookie", &cookies)
            .json(&json!({"channel_id": town, "message": "from the browser"}));
        if let Some((name, value)) = csrf_header {
            request = request.header(name, value);
        }
        request.send()
    };
    // A change with cookies but no proof of origin is refused, on every node.
    for node in 0..3 {
        let refused = post(None, node).await.expect("post");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "node {node}");
        let body: Value = refused.json().await.expect("error body");
        assert_eq!(body["id"], "api.context.session_expired.app_error");
        let wrong = post(Some(("X-CSRF-Token", "a".repeat(26))), node)
            .await
            .expect("post");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "node {node}");
    }
    // The CSRF token from the cookie works on every node (it derives from the session).
    for node in 0..3 {
        let created = post(Some(("X-CSRF-Token", csrf.clone())), node)
            .await
            .expect("post");
        assert_eq!(created.status(), StatusCode::CREATED, "node {node}");
    }
    let ajax = post(Some(("X-Requested-With", "XMLHttpRequest".into())), 2)
        .await
        .expect("post");
    assert_eq!(ajax.status(), StatusCode::CREATED);
    // Bearer calls need no CSRF token.
    bob.on(&nodes[2].api)
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": town, "message": "from a bot"})),
        )
        .await;

    // The WebSocket with the cookie alone says hello.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/api/v4/websocket",
        nodes[2].api.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().expect("ws request");
    request
        .headers_mut()
        .insert("Cookie", cookies.parse().expect("cookie header"));
    let (mut stream, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("ws connect");
    use futures_util::StreamExt;
    let first = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a frame in time")
        .expect("a frame")
        .expect("a message");
    let hello: Value = serde_json::from_str(first.to_text().expect("text")).expect("JSON");
    assert_eq!(hello["event"], "hello", "{hello}");

    // Logout clears the cookies and ends the session everywhere.
    let logout = http
        .post(api(0, "/users/logout"))
        .header("Cookie", &cookies)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(set_cookie(&logout, "MMAUTHTOKEN").as_deref(), Some(""));
    for node in 0..3 {
        let status = common::eventually(WAIT, "logged out everywhere", || async {
            let me = http
                .get(api(node, "/users/me"))
                .header("Cookie", &cookies)
                .send()
                .await
                .ok()?;
            (me.status() == StatusCode::UNAUTHORIZED).then_some(me.status())
        })
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
