//! Changing an account after sign-up, on real nodes: profile patch and update (with the
//! `user_updated` event and its refusals), password change (other sessions end), system roles,
//! deactivation and reactivation, and a user's sessions listed and revoked — on one node, and
//! on a 3-node cluster where a deactivation on one node ends the user's sessions on the others.

mod common;

use common::{eventually, single_node, team_with, three_nodes, Answer, Api, Socket};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn assert_refused(answer: &Answer, status: StatusCode, id: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["id"], id, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_patch_and_update_with_refusals_and_event() {
    let (_dir, node) = single_node().await;
    let admin = Api::signup(&node.api, "admin").await;
    let bob = Api::signup(&node.api, "bob").await;
    let carol = Api::signup(&node.api, "carol").await;
    team_with(&admin, "people", &[&bob]).await;
    let mut watcher = Socket::connect(&node.api, admin.token.as_deref().expect("token")).await;

    let patched = bob
        .ok(
            "PUT",
            "/users/me/patch",
            Some(json!({"nickname": "bobby", "first_name": "Bob", "position": "builder"})),
        )
        .await;
    assert_eq!(patched["nickname"], "bobby");
    assert_eq!(patched["first_name"], "Bob");
    assert_eq!(patched["position"], "builder");
    assert_eq!(patched["username"], "bob", "absent fields keep their value");
    let event = watcher.wait_event("user_updated", WAIT).await;
    assert_eq!(event["data"]["user"]["nickname"], "bobby");
    assert_eq!(
        event["data"]["user"]["email"], "",
        "others never see the email"
    );
    let read = admin
        .ok("GET", &format!("/users/{}", bob.user_id), None)
        .await;
    assert_eq!(read["nickname"], "bobby");

    // Renaming moves the username index.
    bob.ok(
        "PUT",
        "/users/me/patch",
        Some(json!({"username": "robert"})),
    )
    .await;
    assert_eq!(
        admin.call("GET", "/users/username/bob", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.ok("GET", "/users/username/robert", None).await["id"],
        json!(bob.user_id)
    );
    // People search follows the new names, and forgets the old ones.
    let found = admin
        .ok("POST", "/users/search", Some(json!({"term": "robe"})))
        .await;
    assert_eq!(found[0]["id"], json!(bob.user_id), "{found}");
    let by_nickname = admin
        .ok("POST", "/users/search", Some(json!({"term": "bobby"})))
        .await;
    assert_eq!(by_nickname[0]["id"], json!(bob.user_id), "{by_nickname}");
    bob.ok("PUT", "/users/me/patch", Some(json!({"nickname": "rob"})))
        .await;
    // "bobby" was only the old nickname (the first name "Bob" is shorter than the term).
    let old_name = admin
        .ok("POST", "/users/search", Some(json!({"term": "bobby"})))
        .await;
    assert_eq!(old_name, json!([]), "{old_name}");
    assert_refused(
        &bob.call("PUT", "/users/me/patch", Some(json!({"username": "carol"})))
            .await,
        StatusCode::BAD_REQUEST,
        "app.user.save.username_exists.app_error",
    );
    assert_eq!(
        bob.call(
            "PUT",
            "/users/me/patch",
            Some(json!({"username": "No Spaces!"}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        bob.call(
            "PUT",
            "/users/me/patch",
            Some(json!({"nickname": "n".repeat(65)}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    // Another user's profile is not carol's to change; an admin may.
    assert_refused(
        &carol
            .call(
                "PUT",
                &format!("/users/{}/patch", bob.user_id),
                Some(json!({"nickname": "x"})),
            )
            .await,
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
    );
    admin
        .ok(
            "PUT",
            &format!("/users/{}/patch", bob.user_id),
            Some(json!({"last_name": "Builder"})),
        )
        .await;

    // A new email takes the password; then the new email logs in.
    assert_refused(
        &bob.call(
            "PUT",
            "/users/me/patch",
            Some(json!({"email": "new-bob@example.com"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "api.user.check_user_password.invalid.app_error",
    );
    bob.ok(
        "PUT",
        "/users/me/patch",
        Some(json!({"email": "new-bob@example.com", "password": "passw0rd!"})),
    )
    .await;
    Api::login(&node.api, "new-bob@example.com").await;
    assert_refused(
        &bob.call(
            "PUT",
            "/users/me/patch",
            Some(json!({"email": "carol@example.com", "password": "passw0rd!"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "app.user.save.email_exists.app_error",
    );

    // PUT /users/{id}: the body names the user.
    let updated = bob
        .ok(
            "PUT",
            &format!("/users/{}", bob.user_id),
            Some(json!({"id": bob.user_id, "nickname": "full"})),
        )
        .await;
    assert_eq!(updated["nickname"], "full");
    assert_eq!(updated["last_name"], "Builder");
    assert_eq!(
        bob.call(
            "PUT",
            &format!("/users/{}", bob.user_id),
            Some(json!({"id": carol.user_id, "nickname": "x"}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        bob.call("PUT", "/users/me/patch", Some(json!("not an object")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // The timezone, as the apps set it from the device at login: kept, and merged key by key.
    let zoned = bob
        .ok(
            "PUT",
            "/users/me/patch",
            Some(json!({"timezone": {"useAutomaticTimezone": "true", "automaticTimezone": "Europe/Berlin", "manualTimezone": ""}})),
        )
        .await;
    assert_eq!(zoned["timezone"]["automaticTimezone"], "Europe/Berlin");
    let manual = bob
        .ok(
            "PUT",
            "/users/me/patch",
            Some(json!({"timezone": {"useAutomaticTimezone": "false", "manualTimezone": "Asia/Tokyo"}})),
        )
        .await;
    assert_eq!(
        manual["timezone"],
        json!({"useAutomaticTimezone": "false", "automaticTimezone": "Europe/Berlin", "manualTimezone": "Asia/Tokyo"})
    );
    let read = admin
        .ok("GET", &format!("/users/{}", bob.user_id), None)
        .await;
    assert_eq!(read["timezone"]["manualTimezone"], "Asia/Tokyo");
    for bad in [
        json!({"timezone": {"useAutomaticTimezone": "maybe"}}),
        json!({"timezone": {"manualTimezone": "x".repeat(100)}}),
    ] {
        assert_eq!(
            bob.call("PUT", "/users/me/patch", Some(bad)).await.status,
            StatusCode::BAD_REQUEST
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_ends_other_sessions() {
    let (_dir, node) = single_node().await;
    let admin = Api::signup(&node.api, "admin").await;
    let bob = Api::signup(&node.api, "bob").await;
    let other = Api::login(&node.api, "bob").await;

    assert_refused(
        &bob.call(
            "PUT",
            "/users/me/password",
            Some(json!({"current_password": "wrong", "new_password": "a-new-passw0rd"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "api.user.update_password.incorrect.app_error",
    );
    assert_refused(
        &bob.call(
            "PUT",
            "/users/me/password",
            Some(json!({"current_password": "passw0rd!", "new_password": "abc"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "model.user.is_valid.pwd_length.app_error",
    );
    bob.ok(
        "PUT",
        "/users/me/password",
        Some(json!({"current_password": "passw0rd!", "new_password": "a-new-passw0rd"})),
    )
    .await;
    // The session that changed it lives on; the other one ended.
    bob.ok("GET", "/users/me", None).await;
    assert_eq!(
        other.call("GET", "/users/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let anon = Api::new(&node.api);
    let old = anon
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "bob", "password": "passw0rd!"})),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = anon
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "bob", "password": "a-new-passw0rd"})),
        )
        .await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.body);

    // An admin sets it without the current one; bob cannot set the admin's.
    admin
        .ok(
            "PUT",
            &format!("/users/{}/password", bob.user_id),
            Some(json!({"new_password": "admin-chosen-1"})),
        )
        .await;
    assert_eq!(
        bob.call("GET", "/users/me", None).await.status,
        StatusCode::UNAUTHORIZED,
        "an admin's reset ends every session of the user"
    );
    let bob = Api::login_with(&node.api, "bob", "admin-chosen-1").await;
    assert_eq!(
        bob.call(
            "PUT",
            &format!("/users/{}/password", admin.user_id),
            Some(json!({"new_password": "hijacked-123"}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_deactivation_are_for_admins() {
    let (_dir, node) = single_node().await;
    let admin = Api::signup(&node.api, "admin").await;
    let bob = Api::signup(&node.api, "bob").await;
    let carol = Api::signup(&node.api, "carol").await;
    let sessions_of_carol = format!("/users/{}/sessions", carol.user_id);

    assert_eq!(
        bob.call("GET", &sessions_of_carol, None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.call(
            "PUT",
            &format!("/users/{}/roles", bob.user_id),
            Some(json!({"roles": "system_user system_admin"}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    for roles in ["system_admin", "system_user wizard", ""] {
        assert_eq!(
            admin
                .call(
                    "PUT",
                    &format!("/users/{}/roles", bob.user_id),
                    Some(json!({"roles": roles}))
                )
                .await
                .status,
            StatusCode::BAD_REQUEST,
            "{roles:?}"
        );
    }
    let mut bob_socket = Socket::connect(&node.api, bob.token.as_deref().expect("token")).await;
    admin
        .ok(
            "PUT",
            &format!("/users/{}/roles", bob.user_id),
            Some(json!({"roles": "system_user system_admin"})),
        )
        .await;
    // Bob's apps are told to reload his roles.
    let told = bob_socket.wait_event("user_role_updated", WAIT).await;
    assert_eq!(told["data"]["user_id"], bob.user_id.as_str());
    assert_eq!(told["data"]["roles"], "system_user system_admin");
    // Bob's existing session now acts as an admin, on its next request.
    bob.ok("GET", &sessions_of_carol, None).await;
    assert_eq!(
        bob.ok("GET", "/users/me", None).await["roles"],
        "system_user system_admin"
    );
    admin
        .ok(
            "PUT",
            &format!("/users/{}/roles", bob.user_id),
            Some(json!({"roles": "system_user"})),
        )
        .await;
    assert_eq!(
        bob.call("GET", &sessions_of_carol, None).await.status,
        StatusCode::FORBIDDEN
    );

    // Deactivation ends carol's sessions and her socket, and she cannot log in.
    let mut socket = Socket::connect(&node.api, carol.token.as_deref().expect("token")).await;
    assert_eq!(
        bob.call(
            "PUT",
            &format!("/users/{}/active", carol.user_id),
            Some(json!({"active": false}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    admin
        .ok(
            "PUT",
            &format!("/users/{}/active", carol.user_id),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(
        carol.call("GET", "/users/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Carol hears her own `user_updated`, then the socket closes.
    let mut heard = Vec::new();
    while let Some(event) = socket.next_json(WAIT).await {
        heard.push(event["event"].clone());
        assert!(
            heard.len() < 5,
            "a deactivated user's socket closes: {heard:?}"
        );
    }
    assert_eq!(heard, [json!("user_updated")]);
    let login = Api::new(&node.api)
        .call(
            "POST",
            "/users/login",
            Some(json!({"login_id": "carol", "password": "passw0rd!"})),
        )
        .await;
    assert_refused(
        &login,
        StatusCode::UNAUTHORIZED,
        "api.user.login.inactive.app_error",
    );
    let listed = admin
        .ok("GET", &format!("/users/{}", carol.user_id), None)
        .await;
    assert!(listed["delete_at"].as_u64().unwrap_or(0) > 0, "{listed}");
    admin
        .ok(
            "PUT",
            &format!("/users/{}/active", carol.user_id),
            Some(json!({"active": true})),
        )
        .await;
    let carol = Api::login(&node.api, "carol").await;
    // DELETE /users/{id} deactivates too; an admin cannot deactivate themselves.
    admin
        .ok("DELETE", &format!("/users/{}", carol.user_id), None)
        .await;
    assert_eq!(
        carol.call("GET", "/users/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_refused(
        &admin
            .call(
                "PUT",
                &format!("/users/{}/active", admin.user_id),
                Some(json!({"active": false})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "api.user.update_active.cannot_deactivate_self.app_error",
    );
    assert_eq!(
        admin
            .call(
                "PUT",
                &format!("/users/{}/active", "x".repeat(26)),
                Some(json!({"active": true}))
            )
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_without_tokens_and_revoked_by_id() {
    let (_dir, node) = single_node().await;
    let _admin = Api::signup(&node.api, "admin").await;
    let bob = Api::signup(&node.api, "bob").await;
    // Distinct creation times, so the listing sorted by time tells the sessions apart.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let phone = Api::login(&node.api, "bob").await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    let laptop = Api::login(&node.api, "bob").await;

    let sessions = bob.ok("GET", "/users/me/sessions", None).await;
    let sessions = sessions.as_array().expect("a list").clone();
    assert_eq!(sessions.len(), 3);
    let tokens = [&bob, &phone, &laptop].map(|a| a.token.clone().expect("token"));
    for session in &sessions {
        assert_eq!(session["token"], "", "no token is ever listed");
        assert_eq!(session["user_id"], json!(bob.user_id));
        let id = session["id"].as_str().expect("id");
        assert_eq!(id.len(), 26);
        assert!(!tokens.iter().any(|t| t == id), "the id is not the token");
    }
    let ids: Vec<&str> = sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap_or(""))
        .collect();
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3);

    // Revoke the phone's session by id, from the laptop: exactly that one ends.
    let phone_id = second_oldest_session(&sessions);
    laptop
        .ok(
            "POST",
            "/users/me/sessions/revoke",
            Some(json!({"session_id": phone_id})),
        )
        .await;
    assert_eq!(
        phone.call("GET", "/users/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    laptop.ok("GET", "/users/me", None).await;
    assert_eq!(
        laptop
            .call(
                "POST",
                "/users/me/sessions/revoke",
                Some(json!({"session_id": phone_id}))
            )
            .await
            .status,
        StatusCode::BAD_REQUEST,
        "an ended session cannot be revoked twice"
    );
    assert_eq!(
        laptop
            .call("POST", "/users/me/sessions/revoke", Some(json!({})))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    laptop
        .ok("POST", "/users/me/sessions/revoke/all", None)
        .await;
    for api in [&bob, &laptop] {
        assert_eq!(
            api.call("GET", "/users/me", None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// The id of the second session created (bob signed up, then the phone, then the laptop).
fn second_oldest_session(sessions: &[Value]) -> String {
    let mut by_time: Vec<(u64, String)> = sessions
        .iter()
        .map(|s| {
            (
                s["create_at"].as_u64().unwrap_or(0),
                s["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    by_time.sort();
    by_time[1].1.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivation_ends_sessions_on_every_node() {
    let (_dir, nodes) = three_nodes().await;
    let admin = Api::signup(&nodes[0].api, "admin").await;
    let bob = Api::signup(&nodes[0].api, "bob").await;
    let on_two = bob.on(&nodes[1].api);
    let on_three = bob.on(&nodes[2].api);
    for api in [&on_two, &on_three] {
        eventually(WAIT, "bob's session on another node", || async {
            (api.call("GET", "/users/me", None).await.status == StatusCode::OK).then_some(())
        })
        .await;
    }
    admin
        .ok(
            "PUT",
            &format!("/users/{}/active", bob.user_id),
            Some(json!({"active": false})),
        )
        .await;
    for api in [&on_two, &on_three] {
        let status: Value = eventually(WAIT, "bob refused on another node", || async {
            let answer = api.call("GET", "/users/me", None).await;
            (answer.status == StatusCode::UNAUTHORIZED).then_some(json!(answer.status.as_u16()))
        })
        .await;
        assert_eq!(status, json!(401));
    }
}
