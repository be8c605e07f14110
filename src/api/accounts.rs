//! Changing an account after sign-up: profile patch and update, password, system roles,
//! deactivation, and the user's sessions (list and revoke), as Mattermost's `/users/{id}/…`.

use super::users::{checked_password_hash, password_matches, user_view};
use super::{ok, parse_body, status_ok, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use confab_storage::{Command, Outcome, Session, UserProfile};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/patch", put(patch_user))
        .route("/users/{user_id}/password", put(update_password))
        .route("/users/{user_id}/roles", put(update_roles))
        .route("/users/{user_id}/active", put(update_active))
        .route("/users/{user_id}/sessions", get(list_sessions))
        .route("/users/{user_id}/sessions/revoke", post(revoke_session))
        .route(
            "/users/{user_id}/sessions/revoke/all",
            post(revoke_all_sessions),
        )
}

/// The profile fields a patch may carry; absent ones keep their value.
#[derive(Deserialize, Default)]
struct ProfilePatch {
    #[serde(default)]
    id: Option<String>,
    username: Option<String>,
    email: Option<String>,
    nickname: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    position: Option<String>,
    locale: Option<String>,
    /// Replaces the whole map, as Mattermost's patch does.
    notify_props: Option<confab_storage::NotifyProps>,
    /// Needed to change one's own email (as in Mattermost).
    password: Option<String>,
    /// Mattermost's map of strings; the keys not given keep their values.
    timezone: Option<std::collections::HashMap<String, String>>,
}

async fn patch_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: ProfilePatch = parse_body(&body, "user patch")?;
    apply_profile(app, caller, &user_id, patch).await
}

/// `PUT /users/{id}` (routed in `users.rs` with `GET` on the same path): Mattermost's full update; the body's `id` must name the user.
pub async fn update_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: ProfilePatch = parse_body(&body, "user")?;
    let target = caller.resolve(&user_id)?;
    if patch.id.as_deref() != Some(target.to_base32().as_str()) {
        return Err(ApiError::invalid_param("user"));
    }
    apply_profile(app, caller, &user_id, patch).await
}

async fn apply_profile(
    app: AppState,
    caller: Caller,
    user_id: &str,
    patch: ProfilePatch,
) -> ApiResult<Response> {
    let user_id = caller.resolve(user_id)?;
    caller.require_self_or_admin(user_id)?;
    let user = app
        .read(move |r| r.user(user_id))
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let mut profile = UserProfile::of(&user);
    let email = patch.email.map(|e| e.trim().to_lowercase());
    if let Some(email) = email.filter(|e| *e != user.email) {
        // Changing one's own email takes the password: a stolen session cannot take the account.
        if !caller.is_admin() {
            let given = patch.password.unwrap_or_default();
            if !password_matches(&given, &user.password_hash).await? {
                return Err(ApiError::bad_request(
                    "api.user.check_user_password.invalid.app_error",
                    "Login failed because of invalid password",
                ));
            }
        }
        profile.email = email;
    }
    let fields = [
        (
            &mut profile.username,
            patch.username.map(|u| u.trim().to_lowercase()),
        ),
        (&mut profile.nickname, patch.nickname),
        (&mut profile.first_name, patch.first_name),
        (&mut profile.last_name, patch.last_name),
        (&mut profile.position, patch.position),
        (&mut profile.locale, patch.locale),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            *field = value;
        }
    }
    if let Some(props) = patch.notify_props {
        profile.notify_props = props;
    }
    if let Some(zone) = patch.timezone {
        let zone_of = |key: &str| zone.get(key).map(|v| v.trim().to_string());
        if let Some(automatic) = zone_of("useAutomaticTimezone") {
            profile.timezone.use_automatic = match automatic.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(ApiError::invalid_param("timezone")),
            };
        }
        if let Some(name) = zone_of("automaticTimezone") {
            profile.timezone.automatic = name;
        }
        if let Some(name) = zone_of("manualTimezone") {
            profile.timezone.manual = name;
        }
    }
    let (index, outcome) = app
        .write(Command::UpdateUser {
            user_id,
            at: now_ms(),
            profile,
        })
        .await?;
    match outcome {
        Outcome::UserUpdated { user, .. } => Ok(with_applied(ok(user_view(&caller, &user)), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

#[derive(Deserialize)]
struct PasswordChange {
    #[serde(default)]
    current_password: String,
    new_password: String,
}

/// A user changes their own password with the current one; an admin sets another user's
/// without it. Every other session of the user ends.
async fn update_password(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let change: PasswordChange = parse_body(&body, "password")?;
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    if user_id == caller.id()
        && !password_matches(&change.current_password, &caller.user.password_hash).await?
    {
        return Err(ApiError::bad_request(
            "api.user.update_password.incorrect.app_error",
            "The \"Current Password\" you entered is incorrect. Please check that Caps Lock is off and try again.",
        ));
    }
    let password_hash = checked_password_hash(&app, &change.new_password).await?;
    let keep = (user_id == caller.id()).then_some(caller.session.token);
    let (index, _) = app
        .write(Command::SetPassword {
            user_id,
            at: now_ms(),
            password_hash,
            keep,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

#[derive(Deserialize)]
struct Roles {
    roles: String,
}

async fn update_roles(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let roles: Roles = parse_body(&body, "roles")?;
    let user_id = caller.resolve(&user_id)?;
    caller.require_admin()?;
    let (index, _) = app
        .write(Command::SetUserRoles {
            user_id,
            at: now_ms(),
            roles: roles.roles,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

#[derive(Deserialize)]
struct Active {
    active: bool,
}

/// Only an admin (de)activates users (Mattermost's `EnableUserDeactivation` is off by default),
/// and an admin cannot deactivate themselves (the server would lose its last admin).
async fn update_active(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let active: Active = parse_body(&body, "active")?;
    set_active(app, caller, &user_id, active.active).await
}

/// `DELETE /users/{id}` (routed in `users.rs`): deactivation, as in Mattermost.
pub async fn deactivate_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    set_active(app, caller, &user_id, false).await
}

async fn set_active(
    app: AppState,
    caller: Caller,
    user_id: &str,
    active: bool,
) -> ApiResult<Response> {
    let user_id = caller.resolve(user_id)?;
    caller.require_admin()?;
    if user_id == caller.id() && !active {
        return Err(ApiError::bad_request(
            "api.user.update_active.cannot_deactivate_self.app_error",
            "An admin cannot deactivate their own account.",
        ));
    }
    let (index, _) = app
        .write(Command::SetUserActive {
            user_id,
            at: now_ms(),
            active,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

fn session_json(session: &Session) -> Value {
    json!({
        "id": crate::auth::session_id(session.token),
        "token": "",
        "create_at": session.create_at,
        "expires_at": session.expires_at,
        "last_activity_at": session.create_at,
        "user_id": views::id(session.user_id),
        "device_id": session.device_id,
        "roles": "",
        "is_oauth": false,
        "props": {},
        "team_members": [],
    })
}

async fn list_sessions(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    let sessions = app.read(move |r| r.sessions_of(user_id)).await?;
    Ok(ok(Value::Array(
        sessions.iter().map(session_json).collect(),
    )))
}

#[derive(Deserialize)]
struct RevokeSession {
    session_id: String,
}

async fn revoke_session(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let revoke: RevokeSession = parse_body(&body, "session_id")?;
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    let sessions = app.read(move |r| r.sessions_of(user_id)).await?;
    let Some(session) = sessions
        .iter()
        .find(|s| crate::auth::session_id(s.token) == revoke.session_id)
    else {
        return Err(ApiError::bad_request(
            "api.session.revoke_session.app_error",
            "The session does not belong to this user or does not exist.",
        ));
    };
    let (index, _) = app
        .write(Command::RevokeSession {
            token: session.token,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

async fn revoke_all_sessions(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    let (index, _) = app.write(Command::RevokeAllSessions { user_id }).await?;
    Ok(with_applied(status_ok(), index))
}
