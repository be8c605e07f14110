//! The REST API v4: routing, the shared request plumbing (auth, query parameters where empty
//! means absent, JSON bodies with Mattermost-shaped errors, read-your-writes) and the handlers,
//! one module per resource.

mod accounts;
mod body_limit;
mod bots;
mod categories;
mod channel_admin;
mod channel_edits;
mod channel_stats;
mod channels;
mod client_config;
pub mod cluster;
mod commands;
mod drafts;
mod emoji;
mod files;
mod notifications;
mod posts;
mod preferences;
mod profile_images;
mod reactions;
mod roles;
mod search;
mod slash_builtins;
mod status;
mod system;
mod team_admin;
mod teams;
mod threads;
mod tokens;
mod user_channels;
mod users;
mod webhooks;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use confab_storage::{Id, Session, User};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type AppState = Arc<App>;

/// Largest request body accepted (Mattermost's default is 50 MB for files; confab has no files).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Header carrying the log index a write was applied at (and a read may wait for).
pub const APPLIED_HEADER: &str = "x-confab-applied";

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(system::routes())
        .merge(users::routes())
        .merge(accounts::routes())
        .merge(user_channels::routes())
        .merge(teams::routes())
        .merge(channels::routes())
        .merge(channel_stats::routes())
        .merge(notifications::routes())
        .merge(posts::routes())
        .merge(search::routes())
        .merge(status::routes())
        .merge(reactions::routes())
        .merge(threads::routes())
        .merge(roles::routes())
        .merge(preferences::routes())
        .merge(categories::routes())
        .merge(drafts::routes())
        .merge(cluster::routes())
        .merge(tokens::routes())
        .merge(bots::routes())
        .merge(webhooks::routes())
        .merge(commands::routes())
        .merge(files::routes())
        .merge(team_admin::routes())
        .merge(channel_admin::routes())
        .merge(profile_images::routes())
        .merge(emoji::routes());
    Router::new()
        .nest("/api/v4", api)
        .route("/metrics", axum::routing::get(system::metrics))
        .merge(webhooks::root_routes())
        .merge(commands::root_routes())
        .merge(files::public_routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(mattermost_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            read_your_writes,
        ))
        .layer(axum::middleware::from_fn(body_limit::limit_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Outside `/api/` and `/hooks/` a GET is the web client's (a bundled file or a client route);
/// anything else is Mattermost's 404.
async fn not_found(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if !uri.path().starts_with("/api/") && !uri.path().starts_with("/hooks/") {
        if let Some(page) = crate::web::serve(&method, &uri, &headers) {
            return page;
        }
    }
    api_not_found().into_response()
}

/// axum's own rejections (a path id that is not UTF-8, a query it cannot read, a wrong method)
/// answer in plain text; every API error a client reads must be Mattermost's JSON error object,
/// so those answers are rewritten here, keeping their status and their text as the message.
/// Found by the `http_api` fuzz target.
async fn mattermost_errors(request: Request, next: Next) -> Response {
    let in_api = request.uri().path().starts_with("/api/v4/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !in_api || status.as_u16() < 400 || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let id = match status {
        StatusCode::NOT_FOUND => "api.context.404.app_error",
        StatusCode::METHOD_NOT_ALLOWED => "api.context.method_not_allowed.app_error",
        StatusCode::PAYLOAD_TOO_LARGE => "api.context.request_body_too_large.app_error",
        _ if text.starts_with("Invalid URL") || text.contains("query string") => {
            "api.context.invalid_url_param.app_error"
        }
        _ => "api.context.invalid_body_param.app_error",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("Bad request")
            .to_string()
    } else {
        text
    };
    let mut answer = ApiError::new(status, id, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

fn api_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "api.context.404.app_error",
        "Sorry, we could not find the page.",
    )
}

/// A JSON answer with `Content-Type: application/json` exactly (no charset: clients compare the
/// whole string).
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes_response(status, bytes)
}

/// An answer whose JSON was serialized already (straight from its views).
pub fn json_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

pub fn ok_bytes(body: Vec<u8>) -> Response {
    json_bytes_response(StatusCode::OK, body)
}

pub fn created(body: Value) -> Response {
    json_response(StatusCode::CREATED, &body)
}

pub fn status_ok() -> Response {
    ok(serde_json::json!({"status": "OK"}))
}

/// Marks a write's answer with the index it was applied at.
pub fn with_applied(mut response: Response, index: u64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&index.to_string()) {
        response.headers_mut().insert(APPLIED_HEADER, value);
    }
    response
}

/// Parses a JSON body; anything malformed is a 400 in Mattermost's shape, never a panic.
pub fn parse_body<T: DeserializeOwned>(body: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "api.context.invalid_body_param.app_error",
            format!("Invalid or missing {what} in request body: {e}"),
        )
    })
}

/// Query parameters where an empty value means absent (Client4 sends every parameter).
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        let map = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .filter(|(name, value)| !name.is_empty() && !value.is_empty())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect::<HashMap<_, _>>();
        Params(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn u64(&self, name: &str) -> ApiResult<Option<u64>> {
        self.get(name)
            .map(|v| v.parse::<u64>().map_err(|_| ApiError::invalid_param(name)))
            .transpose()
    }

    pub fn usize_or(&self, name: &str, default: usize) -> ApiResult<usize> {
        Ok(self.u64(name)?.map(|v| v as usize).unwrap_or(default))
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true") | Some("1"))
    }

    pub fn id(&self, name: &str) -> ApiResult<Option<Id>> {
        self.get(name)
            .map(|v| Id::parse(v).map_err(|_| ApiError::invalid_param(name)))
            .transpose()
    }

    /// `page` and `per_page` (default 60, at most 200).
    pub fn paging(&self) -> ApiResult<(usize, usize)> {
        let page = self.usize_or("page", 0)?;
        let per_page = self.usize_or("per_page", 60)?.clamp(1, 200);
        Ok((page, per_page))
    }
}

/// A path id in Mattermost's form; `me` is resolved by the caller.
pub fn path_id(text: &str, name: &str) -> ApiResult<Id> {
    Id::parse(text).map_err(|_| ApiError::invalid_param(name))
}

/// The authenticated caller.
#[derive(Clone)]
pub struct Caller {
    pub session: Session,
    pub user: User,
}

impl Caller {
    pub fn id(&self) -> Id {
        self.user.id
    }

    pub fn is_admin(&self) -> bool {
        self.user
            .roles
            .split_whitespace()
            .any(|r| r == "system_admin")
    }

    /// Resolves a `{user_id}` path segment, where `me` means the caller.
    pub fn resolve(&self, text: &str) -> ApiResult<Id> {
        if text == "me" {
            Ok(self.user.id)
        } else {
            path_id(text, "user_id")
        }
    }

    /// The caller may act for `user` (themselves, or any user as an admin).
    pub fn require_self_or_admin(&self, user: Id) -> ApiResult<()> {
        if user == self.user.id || self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Caller, ApiError> {
        let (token, source) =
            crate::auth::credentials_from_parts(&parts.headers, parts.uri.query())
                .ok_or_else(ApiError::unauthorized)?;
        let (session, user) = crate::catch_up::resolve_or_catch_up(&state.hub, &token)
            .await
            .ok_or_else(ApiError::unauthorized)?;
        if source == crate::auth::TokenSource::Cookie
            && !crate::auth::csrf_ok(&parts.method, &parts.headers, session.token)
        {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "api.context.session_expired.app_error",
                "Invalid or expired session, please login again. (CSRF check failed)",
            ));
        }
        Ok(Caller { session, user })
    }
}

/// Read-your-writes: a request carrying `X-Confab-Applied: N` waits (bounded) until this
/// node's replica has applied index N.
async fn read_your_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let wanted = request
        .headers()
        .get(APPLIED_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(index) = wanted {
        if let Err(e) = state.wait_applied(index, Duration::from_secs(5)).await {
            return e.into_response();
        }
    }
    next.run(request).await
}

/// Metrics per route and status, and the headers every answer carries.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let mut response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("confab_http_requests_total", &labels).increment(1);
    metrics::histogram!("confab_http_request_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert("x-version-id", HeaderValue::from_static(crate::VERSION_ID));
    if let Ok(value) = HeaderValue::from_str(&state.settings.cluster_id) {
        headers.insert("x-cluster-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&Id::from_bytes(rand::random()).to_base32()) {
        headers.insert("x-request-id", value);
    }
    response
}
