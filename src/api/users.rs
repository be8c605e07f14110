//! Users, sign-up, login and logout.

use super::accounts;
use super::{created, ok, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::app::PasswordCost;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::{validate, Command, Id, Outcome, User};
use serde::Deserialize;
use serde_json::Value;
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", post(create_user).get(list_users))
        .route("/users/login", post(login))
        .route("/users/logout", post(logout))
        .route("/users/ids", post(users_by_ids))
        .route("/users/usernames", post(users_by_usernames))
        .route("/users/username/{username}", get(user_by_username))
        .route("/users/email/{email}", get(user_by_email))
        .route(
            "/users/{user_id}",
            get(get_user)
                .put(accounts::update_user)
                .delete(accounts::deactivate_user),
        )
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    username: String,
    password: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

/// Argon2id with the configured cost. Verification reads the cost from the stored hash, so
/// changing the setting affects new hashes only.
pub fn hash_password(password: &str, cost: PasswordCost) -> ApiResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| ApiError::internal(format!("salt: {e}")))?;
    let params = argon2::Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| ApiError::internal(format!("password hash settings: {e}")))?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::internal(format!("hashing: {e}")))
}

/// Checks a new password against the length rules and hashes it off the async runtime.
pub async fn checked_password_hash(app: &AppState, password: &str) -> ApiResult<String> {
    let password_len = password.chars().count();
    if password_len < app.settings.min_password_len || password_len > 72 {
        return Err(ApiError::bad_request(
            "model.user.is_valid.pwd_length.app_error",
            format!(
                "Your password must contain between {} and 72 characters.",
                app.settings.min_password_len
            ),
        ));
    }
    let password = password.to_string();
    let cost = app.settings.password_cost;
    tokio::task::spawn_blocking(move || hash_password(&password, cost))
        .await
        .map_err(|_| ApiError::internal("hashing task failed"))?
}

/// Whether `password` matches the stored `hash`, checked off the async runtime (argon2 is
/// deliberately slow).
pub async fn password_matches(password: &str, hash: &str) -> ApiResult<bool> {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|_| ApiError::internal("password check failed"))
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

async fn create_user(State(app): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let new: NewUser = parse_body(&body, "user")?;
    let username = new.username.trim().to_lowercase();
    let email = new.email.trim().to_lowercase();
    validate::username(&username).map_err(|_| {
        ApiError::bad_request(
            "model.user.is_valid.username.app_error",
            "Username must begin with a letter and contain between 3 and 22 lowercase characters made up of numbers, letters, and the symbols '.', '-', and '_'.",
        )
    })?;
    validate::email(&email).map_err(|_| {
        ApiError::bad_request("model.user.is_valid.email.app_error", "Invalid email.")
    })?;
    let password_hash = checked_password_hash(&app, &new.password).await?;
    let (index, outcome) = app
        .write(Command::CreateUser {
            id: Id::from_bytes(rand::random()),
            at: now_ms(),
            username,
            email,
            password_hash,
            nickname: new.nickname,
            first_name: new.first_name,
            last_name: new.last_name,
            // The first user created becomes system admin: decided by apply, in log order.
            roles: "system_user".into(),
        })
        .await?;
    match outcome {
        Outcome::UserCreated(user) => Ok(with_applied(created(views::user(&user, false)), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    device_id: String,
    #[serde(default, rename = "deviceId")]
    device_id_camel: String,
}

fn invalid_login() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "api.user.login.invalid_credentials_email_username",
        "Enter a valid email or username and/or password.",
    )
}

async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let login: Login = parse_body(&body, "login")?;
    let login_id = login.login_id.trim().to_lowercase();
    if login_id.is_empty() || login.password.is_empty() {
        return Err(ApiError::invalid_param("login_id"));
    }
    let user_key = format!("user:{login_id}");
    let limiter_keys = [user_key.clone(), format!("ip:{}", peer.ip())];
    if !app.logins.allow(&limiter_keys) {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "api.context.rate_limit.app_error",
            "Too many login attempts; try again later.",
        ));
    }
    let mut user = login_user(&app, &login_id).await?;
    // An account just created through another node may not be applied here yet: as for an
    // unknown token (`crate::catch_up`), catch up once and look again before refusing.
    if user.is_none() {
        if let Some(catch_up) = app.hub.catch_up.get() {
            if catch_up.barrier().await {
                user = login_user(&app, &login_id).await?;
            }
        }
    }
    let Some(user) = user else {
        app.logins.failed(&limiter_keys);
        return Err(invalid_login());
    };
    if user.delete_at != 0 {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "api.user.login.inactive.app_error",
            "Login failed because your account has been deactivated.",
        ));
    }
    let verified = password_matches(&login.password, &user.password_hash).await?;
    if !verified {
        app.logins.failed(&limiter_keys);
        return Err(invalid_login());
    }
    app.logins.reset(&user_key);
    let now = now_ms();
    let device_id = if login.device_id.is_empty() {
        login.device_id_camel
    } else {
        login.device_id
    };
    // A login that names a mobile device gets the mobile session length, as in Mattermost.
    let length_ms = if device_id.is_empty() {
        app.settings.session_days * 86_400_000
    } else {
        app.push.session_length_mobile.as_millis() as u64
    };
    let (index, outcome) = app
        .write(Command::CreateSession {
            token: Id::from_bytes(rand::random()),
            user_id: user.id,
            at: now,
            expires_at: now + length_ms,
            device_id,
        })
        .await?;
    let Outcome::SessionCreated(session) = outcome else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    let token = session.token.to_base32();
    let mut response = with_applied(ok(views::user(&user, false)), index);
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&token) {
        out.insert("token", value);
    }
    let max_age = length_ms / 1000;
    // Derived from the token, so every node checks it without storing it.
    let csrf = crate::auth::csrf_token(session.token);
    for cookie in [
        crate::auth::session_cookie(&token, max_age),
        format!(
            "MMUSERID={}; Path=/; Max-Age={max_age}; SameSite=Lax",
            user.id
        ),
        format!("MMCSRF={csrf}; Path=/; Max-Age={max_age}; SameSite=Lax"),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            out.append(header::SET_COOKIE, value);
        }
    }
    let _ = headers;
    Ok(response)
}

/// The account a login names, by username or email.
async fn login_user(app: &AppState, login_id: &str) -> ApiResult<Option<User>> {
    let lookup = login_id.to_string();
    app.read(move |r| match r.user_by_username(&lookup)? {
        Some(user) => Ok(Some(user)),
        None => r.user_by_email(&lookup),
    })
    .await
}

async fn logout(State(app): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let (index, _) = app
        .write(Command::RevokeSession {
            token: caller.session.token,
        })
        .await?;
    let mut response = with_applied(status_ok(), index);
    for cookie in ["MMAUTHTOKEN", "MMUSERID", "MMCSRF"] {
        if let Ok(value) = HeaderValue::from_str(&format!("{cookie}=; Path=/; Max-Age=0")) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// A user as the caller may see them (email hidden unless it is the caller or an admin).
pub fn user_view(caller: &Caller, user: &User) -> Value {
    views::user(user, user.id != caller.id() && !caller.is_admin())
}

async fn get_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let id = caller.resolve(&user_id)?;
    let user = app
        .read(move |r| r.user(id))
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(ok(user_view(&caller, &user)))
}

async fn user_by_username(
    State(app): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Response> {
    let user = app
        .read(move |r| r.user_by_username(&username))
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(ok(user_view(&caller, &user)))
}

async fn user_by_email(
    State(app): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> ApiResult<Response> {
    let user = app
        .read(move |r| r.user_by_email(&email))
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(ok(user_view(&caller, &user)))
}

async fn users_by_ids(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let texts: Vec<String> = parse_body(&body, "user ids")?;
    if texts.len() > 1000 {
        return Err(ApiError::invalid_param("user_ids"));
    }
    let ids = texts
        .iter()
        .map(|t| path_id(t, "user_ids"))
        .collect::<ApiResult<Vec<Id>>>()?;
    // `since`: only users changed after it (the mobile app's resync after reconnecting).
    let since = Params::parse(query.as_deref()).u64("since")?.unwrap_or(0);
    let users = app
        .read(move |r| {
            let mut users = Vec::new();
            for id in ids {
                users.extend(r.user(id)?.filter(|u| since == 0 || u.update_at > since));
            }
            Ok(users)
        })
        .await?;
    Ok(ok(Value::Array(
        users.iter().map(|u| user_view(&caller, u)).collect(),
    )))
}

async fn users_by_usernames(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let names: Vec<String> = parse_body(&body, "usernames")?;
    if names.len() > 1000 {
        return Err(ApiError::invalid_param("usernames"));
    }
    let users = app
        .read(move |r| {
            let mut users = Vec::new();
            for name in names {
                users.extend(r.user_by_username(&name)?);
            }
            Ok(users)
        })
        .await?;
    Ok(ok(Value::Array(
        users.iter().map(|u| user_view(&caller, u)).collect(),
    )))
}

/// GET /users?in_channel=&in_team=&page=&per_page=
async fn list_users(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let in_channel = params.id("in_channel")?;
    let in_team = params.id("in_team")?;
    let not_in_channel = params.id("not_in_channel")?;
    if not_in_channel.is_some() && in_team.is_none() {
        // Mattermost lists non-members of a channel only within a team.
        return Err(ApiError::invalid_param("in_team"));
    }
    let me = caller.id();
    let admin = caller.is_admin();
    let users = app
        .read(move |r| {
            let ids: Vec<Id> = if let (Some(team), Some(channel)) = (in_team, not_in_channel) {
                if !admin && r.team_member(team, me)?.is_none() {
                    return Ok(None);
                }
                r.team_members_not_in_channel(team, channel, page, per_page)?
            } else if let Some(channel) = in_channel {
                let Some(ch) = r.channel(channel)? else {
                    return Ok(None);
                };
                if !crate::api::channels::can_read_channel(r, &ch, me, admin)? {
                    return Ok(None);
                }
                r.channel_members(channel, page, per_page)?
                    .into_iter()
                    .map(|m| m.user_id)
                    .collect()
            } else if let Some(team) = in_team {
                if !admin && r.team_member(team, me)?.is_none() {
                    return Ok(None);
                }
                r.team_members(team, page, per_page)?
                    .into_iter()
                    .map(|m| m.user_id)
                    .collect()
            } else {
                r.users(page, per_page)?.into_iter().map(|u| u.id).collect()
            };
            let mut users = Vec::new();
            for id in ids {
                users.extend(r.user(id)?);
            }
            Ok(Some(users))
        })
        .await?
        .ok_or_else(ApiError::forbidden)?;
    Ok(ok(Value::Array(
        users.iter().map(|u| user_view(&caller, u)).collect(),
    )))
}
