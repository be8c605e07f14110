//! Personal access tokens (`/users/{id}/tokens`, `/users/tokens…`), as Mattermost has them.
//!
//! A token IS a session token: creating one also creates the session it authenticates with
//! (no expiry), so it is accepted wherever a session token is (header, cookie,
//! `access_token`) with no extra lookup. Revoking or disabling it ends that session in the same
//! replicated write, so every node refuses it from the index that write was applied at.

use super::{ok, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::integrations::AccessToken;
use confab_storage::{Command, Id, Reader, User};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/users/{user_id}/tokens",
            post(create_token).get(tokens_of_user),
        )
        .route("/users/tokens", get(all_tokens))
        .route("/users/tokens/{token_id}", get(get_token))
        .route("/users/tokens/search", post(search_tokens))
        .route("/users/tokens/revoke", post(revoke_token))
        .route("/users/tokens/disable", post(disable_token))
        .route("/users/tokens/enable", post(enable_token))
}

/// A token as Mattermost answers it; the secret only at creation.
fn token_json(token: &AccessToken, with_secret: bool) -> Value {
    let mut value = json!({
        "id": views::id(token.id),
        "user_id": views::id(token.user_id),
        "description": token.description,
        "is_active": token.is_active,
        "expires_at": 0,
    });
    if with_secret {
        value["token"] = json!(views::id(token.token));
    }
    value
}

fn tokens_disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "api.user.create_user_access_token.disabled",
        "Personal access tokens are disabled on this server.",
    )
}

/// Mattermost's `create_user_access_token`: system admins, and users given the
/// `system_user_access_token` role.
fn may_hold_tokens(caller: &Caller) -> bool {
    caller.is_admin()
        || caller
            .user
            .roles
            .split_whitespace()
            .any(|r| r == "system_user_access_token")
}

/// Whether the caller may manage `target`'s tokens: their own, a bot they own, or anyone's as
/// an admin (Mattermost's "rights over that user or bot").
fn may_manage(r: &Reader, caller: &Caller, target: &User) -> confab_storage::Result<bool> {
    if caller.is_admin() || target.id == caller.id() {
        return Ok(true);
    }
    if target.is_bot {
        return Ok(r.bot(target.id)?.is_some_and(|b| b.owner_id == caller.id()));
    }
    Ok(false)
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    description: String,
}

async fn create_token(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let target_id = caller.resolve(&user_id)?;
    let new: NewToken = parse_body(&body, "token")?;
    if new.description.is_empty() || new.description.chars().count() > 255 {
        return Err(ApiError::bad_request(
            "model.user_access_token.is_valid.description.app_error",
            "Invalid description, must be 255 or less characters",
        ));
    }
    if caller.user.is_bot {
        return Err(ApiError::forbidden());
    }
    let (allowed, target) = {
        let caller_ref = &caller;
        app.read(move |r| {
            let Some(target) = r.user(target_id)? else {
                return Ok(Err(ApiError::not_found("user")));
            };
            Ok(Ok((may_manage(r, caller_ref, &target)?, target)))
        })
        .await??
    };
    if !target.is_bot && !app.integrations.enable_user_access_tokens {
        return Err(tokens_disabled());
    }
    if !allowed || !may_hold_tokens(&caller) {
        return Err(ApiError::forbidden());
    }
    let token = AccessToken {
        id: Id::from_bytes(rand::random()),
        token: Id::from_bytes(rand::random()),
        user_id: target.id,
        description: new.description,
        is_active: true,
    };
    let (index, _) = app
        .write(Command::CreateAccessToken {
            token: token.clone(),
            at: now_ms(),
        })
        .await?;
    Ok(with_applied(ok(token_json(&token, true)), index))
}

async fn tokens_of_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let target_id = caller.resolve(&user_id)?;
    let (page, per_page) = Params::parse(query.as_deref()).paging()?;
    let caller_ref = &caller;
    let tokens = app
        .read(move |r| {
            let Some(target) = r.user(target_id)? else {
                return Ok(Err(ApiError::not_found("user")));
            };
            if !may_manage(r, caller_ref, &target)? {
                return Ok(Err(ApiError::forbidden()));
            }
            Ok(Ok(r
                .access_tokens()?
                .into_iter()
                .filter(|t| t.user_id == target_id)
                .collect::<Vec<_>>()))
        })
        .await??;
    Ok(ok(page_of(&tokens, page, per_page)))
}

fn page_of(tokens: &[AccessToken], page: usize, per_page: usize) -> Value {
    Value::Array(
        tokens
            .iter()
            .skip(page.saturating_mul(per_page))
            .take(per_page)
            .map(|t| token_json(t, false))
            .collect(),
    )
}

async fn all_tokens(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let (page, per_page) = Params::parse(query.as_deref()).paging()?;
    let tokens = app.read(|r| r.access_tokens()).await?;
    Ok(ok(page_of(&tokens, page, per_page)))
}

/// A token the caller may manage; unknown ones are 404 as Mattermost answers.
async fn managed_token(app: &AppState, caller: &Caller, id: Id) -> ApiResult<AccessToken> {
    app.read(move |r| {
        let Some(token) = r.access_token(id)? else {
            return Ok(Err(ApiError::not_found("token")));
        };
        let Some(owner) = r.user(token.user_id)? else {
            return Ok(Err(ApiError::not_found("token")));
        };
        if may_manage(r, caller, &owner)? {
            Ok(Ok(token))
        } else {
            Ok(Err(ApiError::forbidden()))
        }
    })
    .await?
}

async fn get_token(
    State(app): State<AppState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&token_id, "token_id")?;
    let token = managed_token(&app, &caller, id).await?;
    Ok(ok(token_json(&token, false)))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    term: String,
}

/// `POST /users/tokens/search` (admins): by token id, user id, username or description.
async fn search_tokens(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let search: Search = parse_body(&body, "search")?;
    let term = search.term.to_lowercase();
    let found = app
        .read(move |r| {
            let mut found = Vec::new();
            for token in r.access_tokens()? {
                let username = r
                    .user(token.user_id)?
                    .map(|u| u.username)
                    .unwrap_or_default();
                if views::id(token.id) == term
                    || views::id(token.user_id) == term
                    || username.starts_with(&term)
                    || token.description.to_lowercase().contains(&term)
                {
                    found.push(token_json(&token, false));
                }
            }
            Ok(found)
        })
        .await?;
    Ok(ok(Value::Array(found)))
}

#[derive(Deserialize)]
struct TokenId {
    #[serde(default)]
    token_id: String,
}

async fn change(
    app: AppState,
    caller: Caller,
    body: Bytes,
    make: fn(Id) -> Command,
) -> ApiResult<Response> {
    let body: TokenId = parse_body(&body, "token_id")?;
    let id = path_id(&body.token_id, "token_id")?;
    managed_token(&app, &caller, id).await?;
    let (index, _) = app.write(make(id)).await?;
    Ok(with_applied(status_ok(), index))
}

async fn revoke_token(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    change(app, caller, body, |id| Command::RevokeAccessToken { id }).await
}

async fn disable_token(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    change(app, caller, body, |id| Command::SetAccessTokenActive {
        id,
        active: false,
        at: now_ms(),
    })
    .await
}

async fn enable_token(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    change(app, caller, body, |id| Command::SetAccessTokenActive {
        id,
        active: true,
        at: now_ms(),
    })
    .await
}
