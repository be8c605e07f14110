//! Webhooks: `POST /hooks/{id}` (incoming, no auth), and the management routes
//! `/hooks/incoming…` and `/hooks/outgoing…`, as Mattermost has them.

use super::{ok, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::integrations::message::{self, Message};
use crate::integrations::post::{self, Poster};
use crate::views;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post as post_route};
use axum::Router;
use confab_storage::integrations::{IncomingHook, OutgoingHook};
use confab_storage::{ChannelType, Command, Id, Reader};
use serde::Deserialize;
use serde_json::{json, Value};

/// The management routes (under `/api/v4`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/hooks/incoming",
            post_route(create_incoming).get(list_incoming),
        )
        .route(
            "/hooks/incoming/{hook_id}",
            get(get_incoming)
                .put(update_incoming)
                .delete(delete_incoming),
        )
        .route(
            "/hooks/outgoing",
            post_route(create_outgoing).get(list_outgoing),
        )
        .route(
            "/hooks/outgoing/{hook_id}",
            get(get_outgoing)
                .put(update_outgoing)
                .delete(delete_outgoing),
        )
        .route(
            "/hooks/outgoing/{hook_id}/regen_token",
            post_route(regen_outgoing),
        )
}

/// `POST /hooks/{id}`, served from the site root.
pub fn root_routes() -> Router<AppState> {
    Router::new().route("/hooks/{hook_id}", post_route(incoming))
}

fn incoming_disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "api.incoming_webhook.disabled.app_error",
        "Incoming webhooks have been disabled by the system admin.",
    )
}

fn outgoing_disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "api.outgoing_webhook.disabled.app_error",
        "Outgoing webhooks have been disabled by the system admin.",
    )
}

/// Mattermost's `manage_incoming_webhooks`/`manage_outgoing_webhooks`/`manage_slash_commands`
/// (and their `_others_` forms): team admins of the team and system admins, by default.
pub fn may_manage_integrations(
    r: &Reader,
    team: Id,
    caller: &Caller,
) -> confab_storage::Result<bool> {
    super::team_admin::may_manage_team(r, team, caller)
}

/// Who may list hooks: for one team, those who manage its integrations; across all teams,
/// system admins only.
fn may_list_hooks(r: &Reader, team: Option<Id>, caller: &Caller) -> confab_storage::Result<bool> {
    match team {
        Some(team) => may_manage_integrations(r, team, caller),
        None => Ok(caller.is_admin()),
    }
}

fn incoming_json(hook: &IncomingHook) -> Value {
    json!({
        "id": views::id(hook.id),
        "create_at": hook.create_at,
        "update_at": hook.update_at,
        "delete_at": 0,
        "user_id": views::id(hook.user_id),
        "channel_id": views::id(hook.channel_id),
        "team_id": views::id(hook.team_id),
        "display_name": hook.display_name,
        "description": hook.description,
        "username": hook.username,
        "icon_url": hook.icon_url,
        "channel_locked": hook.channel_locked,
    })
}

fn outgoing_json(hook: &OutgoingHook) -> Value {
    json!({
        "id": views::id(hook.id),
        "token": views::id(hook.token),
        "create_at": hook.create_at,
        "update_at": hook.update_at,
        "delete_at": 0,
        "creator_id": views::id(hook.creator_id),
        "channel_id": if hook.channel_id.is_none() { String::new() } else { views::id(hook.channel_id) },
        "team_id": views::id(hook.team_id),
        "trigger_words": hook.trigger_words,
        "trigger_when": hook.trigger_when,
        "callback_urls": hook.callback_urls,
        "display_name": hook.display_name,
        "description": hook.description,
        "content_type": hook.content_type,
        "username": hook.username,
        "icon_url": hook.icon_url,
    })
}

// ---- POST /hooks/{id} ----

fn bad_payload(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "api.webhook.incoming.decode.app_error",
        format!("Unable to parse the incoming data: {detail}"),
    )
}

/// The message of an incoming-hook request: form `payload=`, multipart fields, or JSON.
async fn read_payload(request: Request, state: &AppState) -> ApiResult<Message> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| bad_payload(e.body_text()))?;
        let payload = form_urlencoded::parse(&body)
            .find(|(name, _)| name == "payload")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        return message::parse_json(payload.as_bytes()).map_err(bad_payload);
    }
    if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|e| bad_payload(e.body_text()))?;
        let mut fields = serde_json::Map::new();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| bad_payload(e.body_text()))?
        {
            let name = field.name().unwrap_or("").to_string();
            let value = field.text().await.map_err(|e| bad_payload(e.body_text()))?;
            if name == "payload" {
                return message::parse_json(value.as_bytes()).map_err(bad_payload);
            }
            fields.insert(name, Value::String(value));
        }
        return serde_json::from_value(Value::Object(fields)).map_err(bad_payload);
    }
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|e| bad_payload(e.body_text()))?;
    message::parse_json(&body).map_err(bad_payload)
}

async fn incoming(
    State(app): State<AppState>,
    Path(hook_id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    if !app.integrations.enable_incoming_webhooks {
        return Err(incoming_disabled());
    }
    let invalid_hook =
        || ApiError::bad_request("web.incoming_webhook.invalid.app_error", "Invalid webhook.");
    let id = Id::parse(&hook_id).map_err(|_| invalid_hook())?;
    let hook = app
        .read(move |r| r.incoming_hook(id))
        .await?
        .ok_or_else(invalid_hook)?;
    let msg = read_payload(request, &app).await?;
    if !msg.has_content() {
        return Err(ApiError::bad_request(
            "web.incoming_webhook.text.app_error",
            "No text specified.",
        ));
    }
    let channel_id = hook_channel(&app, &hook, &msg.channel).await?;
    let (index, _) = post::post(
        &app,
        &Poster {
            user_id: hook.user_id,
            channel_id,
            root_id: None,
            from_webhook: true,
            fallback_username: &hook.username,
            fallback_icon: &hook.icon_url,
            default_username: Some("webhook"),
            webhook_display_name: Some(&hook.display_name),
        },
        &msg,
    )
    .await?;
    let mut response = (StatusCode::OK, "ok").into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(with_applied(response, index))
}

/// The channel an incoming post goes to: the hook's, `#name`/`name` in its team, or `@user` (a
/// direct channel between the hook's owner and that user).
async fn hook_channel(app: &AppState, hook: &IncomingHook, asked: &str) -> ApiResult<Id> {
    if asked.is_empty() {
        return Ok(hook.channel_id);
    }
    let (team, owner) = (hook.team_id, hook.user_id);
    let channel = if let Some(username) = asked.strip_prefix('@') {
        let username = username.to_lowercase();
        let user = app
            .read(move |r| r.user_by_username(&username))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "web.incoming_webhook.user.app_error",
                    "Couldn't find the user.",
                )
            })?;
        super::channels::direct_channel(app, owner, user.id).await?
    } else {
        let name = asked.trim_start_matches('#').to_lowercase();
        app.read(move |r| r.channel_by_name(team, &name))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "web.incoming_webhook.channel.app_error",
                    "Couldn't find the channel.",
                )
            })?
    };
    if channel.id == hook.channel_id {
        return Ok(channel.id);
    }
    if hook.channel_locked {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "web.incoming_webhook.channel_locked.app_error",
            "This webhook is not permitted to post to the requested channel.",
        ));
    }
    if channel.channel_type != ChannelType::Open {
        let channel_id = channel.id;
        let member = app
            .read(move |r| r.is_channel_member(channel_id, owner))
            .await?;
        if !member {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "web.incoming_webhook.permissions.app_error",
                "Inappropriate channel permissions.",
            ));
        }
    }
    Ok(channel.id)
}

// ---- incoming management ----

#[derive(Deserialize, Default)]
struct IncomingBody {
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    icon_url: String,
    #[serde(default)]
    channel_locked: bool,
}

fn check_hook_texts(
    display_name: &str,
    description: &str,
    username: &str,
    icon_url: &str,
) -> ApiResult<()> {
    let bad = |field: &str| {
        ApiError::bad_request(
            "model.incoming_hook.is_valid.app_error",
            format!("Invalid {field}."),
        )
    };
    if display_name.chars().count() > 64 {
        return Err(bad("display_name"));
    }
    if description.chars().count() > 500 {
        return Err(bad("description"));
    }
    if !username.is_empty()
        && (username.chars().count() > 64 || confab_storage::validate::username(username).is_err())
    {
        return Err(bad("username"));
    }
    if icon_url.chars().count() > 1024 {
        return Err(bad("icon_url"));
    }
    Ok(())
}

/// A channel the caller may attach a hook to: readable, in a team, and the caller manages
/// integrations there.
async fn hook_target(
    app: &AppState,
    caller: &Caller,
    channel_id: Id,
) -> ApiResult<confab_storage::Channel> {
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| {
        let channel = match super::channels::readable_channel(r, channel_id, me, admin)? {
            Ok(channel) => channel,
            Err(e) => return Ok(Err(e)),
        };
        if channel.team_id.is_none() {
            return Ok(Err(ApiError::invalid_param("channel_id")));
        }
        if channel.channel_type != ChannelType::Open
            && !admin
            && !r.is_channel_member(channel_id, me)?
        {
            return Ok(Err(ApiError::forbidden()));
        }
        if !may_manage_integrations(r, channel.team_id, caller)? {
            return Ok(Err(ApiError::forbidden()));
        }
        Ok(Ok(channel))
    })
    .await?
}

async fn create_incoming(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    if !app.integrations.enable_incoming_webhooks {
        return Err(incoming_disabled());
    }
    let body: IncomingBody = parse_body(&body, "webhook")?;
    let channel_id = path_id(&body.channel_id, "channel_id")?;
    check_hook_texts(
        &body.display_name,
        &body.description,
        &body.username,
        &body.icon_url,
    )?;
    let channel = hook_target(&app, &caller, channel_id).await?;
    // An admin may create a hook on another user's behalf (Mattermost's `user_id`).
    let user_id = match body.user_id.as_str() {
        "" => caller.id(),
        text => {
            let id = path_id(text, "user_id")?;
            if id != caller.id() {
                caller.require_admin()?;
            }
            id
        }
    };
    let at = now_ms();
    let hook = IncomingHook {
        id: Id::from_bytes(rand::random()),
        create_at: at,
        update_at: at,
        user_id,
        channel_id,
        team_id: channel.team_id,
        display_name: body.display_name,
        description: body.description,
        username: body.username,
        icon_url: body.icon_url,
        channel_locked: body.channel_locked,
    };
    let (index, _) = app
        .write(Command::PutIncomingHook { hook: hook.clone() })
        .await?;
    Ok(with_applied(super::created(incoming_json(&hook)), index))
}

/// Hooks of `team_id` (or all, for a system admin) the caller manages, paged.
async fn list_incoming(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    if !app.integrations.enable_incoming_webhooks {
        return Err(incoming_disabled());
    }
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let team = params.id("team_id")?;
    let caller_ref = &caller;
    let hooks = app
        .read(move |r| {
            if !may_list_hooks(r, team, caller_ref)? {
                return Ok(Err(ApiError::forbidden()));
            }
            Ok(Ok(r
                .incoming_hooks()?
                .into_iter()
                .filter(|h| team.is_none_or(|t| h.team_id == t))
                .skip(page.saturating_mul(per_page))
                .take(per_page)
                .map(|h| incoming_json(&h))
                .collect::<Vec<_>>()))
        })
        .await??;
    Ok(ok(Value::Array(hooks)))
}

async fn managed_incoming(
    app: &AppState,
    caller: &Caller,
    hook_id: &str,
) -> ApiResult<IncomingHook> {
    if !app.integrations.enable_incoming_webhooks {
        return Err(incoming_disabled());
    }
    let id = path_id(hook_id, "hook_id")?;
    app.read(move |r| {
        let Some(hook) = r.incoming_hook(id)? else {
            return Ok(Err(ApiError::not_found("webhook")));
        };
        if may_manage_integrations(r, hook.team_id, caller)? {
            Ok(Ok(hook))
        } else {
            Ok(Err(ApiError::forbidden()))
        }
    })
    .await?
}

async fn get_incoming(
    State(app): State<AppState>,
    caller: Caller,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let hook = managed_incoming(&app, &caller, &hook_id).await?;
    Ok(ok(incoming_json(&hook)))
}

async fn update_incoming(
    State(app): State<AppState>,
    caller: Caller,
    Path(hook_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut hook = managed_incoming(&app, &caller, &hook_id).await?;
    let body: IncomingBody = parse_body(&body, "webhook")?;
    check_hook_texts(
        &body.display_name,
        &body.description,
        &body.username,
        &body.icon_url,
    )?;
    if !body.channel_id.is_empty() {
        let channel_id = path_id(&body.channel_id, "channel_id")?;
        if channel_id != hook.channel_id {
            let channel = hook_target(&app, &caller, channel_id).await?;
            if channel.team_id != hook.team_id {
                return Err(ApiError::bad_request(
                    "api.webhooks.update_incoming.team_mismatch.app_error",
                    "The channel is not in the hook's team.",
                ));
            }
            hook.channel_id = channel_id;
        }
    }
    hook.display_name = body.display_name;
    hook.description = body.description;
    hook.username = body.username;
    hook.icon_url = body.icon_url;
    hook.channel_locked = body.channel_locked;
    hook.update_at = now_ms().max(hook.update_at);
    let (index, _) = app
        .write(Command::PutIncomingHook { hook: hook.clone() })
        .await?;
    Ok(with_applied(ok(incoming_json(&hook)), index))
}

async fn delete_incoming(
    State(app): State<AppState>,
    caller: Caller,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let hook = managed_incoming(&app, &caller, &hook_id).await?;
    let (index, _) = app
        .write(Command::DeleteIncomingHook { id: hook.id })
        .await?;
    Ok(with_applied(status_ok(), index))
}

// ---- outgoing management ----

#[derive(Deserialize, Default)]
struct OutgoingBody {
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    trigger_words: Vec<String>,
    #[serde(default)]
    trigger_when: u8,
    #[serde(default)]
    callback_urls: Vec<String>,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    icon_url: String,
}

fn invalid_outgoing(field: &str) -> ApiError {
    ApiError::bad_request(
        "model.outgoing_hook.is_valid.app_error",
        format!("Invalid {field}."),
    )
}

/// Checks a body and answers the hook's team and channel (NONE for team-wide).
async fn outgoing_target(
    app: &AppState,
    caller: &Caller,
    body: &OutgoingBody,
) -> ApiResult<(Id, Id)> {
    check_hook_texts(
        &body.display_name,
        &body.description,
        &body.username,
        &body.icon_url,
    )?;
    if body.callback_urls.is_empty()
        || body.callback_urls.len() > 16
        || body.callback_urls.iter().any(|u| {
            !reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                || u.len() > 1024
        })
    {
        return Err(invalid_outgoing("callback_urls"));
    }
    if body.trigger_when > 1 {
        return Err(invalid_outgoing("trigger_when"));
    }
    if body
        .trigger_words
        .iter()
        .any(|w| w.is_empty() || w.len() > 64)
        || body.trigger_words.len() > 64
    {
        return Err(invalid_outgoing("trigger_words"));
    }
    if !body.content_type.is_empty()
        && body.content_type != "application/json"
        && body.content_type != "application/x-www-form-urlencoded"
    {
        return Err(invalid_outgoing("content_type"));
    }
    if body.channel_id.is_empty() {
        if body.trigger_words.is_empty() {
            return Err(invalid_outgoing("trigger_words"));
        }
        let team = path_id(&body.team_id, "team_id")?;
        let caller_ref = caller;
        let allowed = app
            .read(move |r| {
                if r.team(team)?.is_none() {
                    return Ok(Err(ApiError::not_found("team")));
                }
                Ok(Ok(may_manage_integrations(r, team, caller_ref)?))
            })
            .await??;
        if !allowed {
            return Err(ApiError::forbidden());
        }
        return Ok((team, Id::NONE));
    }
    let channel_id = path_id(&body.channel_id, "channel_id")?;
    let channel = hook_target(app, caller, channel_id).await?;
    if channel.channel_type != ChannelType::Open {
        return Err(ApiError::forbidden());
    }
    if !body.team_id.is_empty() && path_id(&body.team_id, "team_id")? != channel.team_id {
        return Err(ApiError::invalid_param("team_id"));
    }
    Ok((channel.team_id, channel_id))
}

async fn create_outgoing(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    if !app.integrations.enable_outgoing_webhooks {
        return Err(outgoing_disabled());
    }
    let body: OutgoingBody = parse_body(&body, "webhook")?;
    let (team_id, channel_id) = outgoing_target(&app, &caller, &body).await?;
    let at = now_ms();
    let hook = OutgoingHook {
        id: Id::from_bytes(rand::random()),
        token: Id::from_bytes(rand::random()),
        create_at: at,
        update_at: at,
        creator_id: caller.id(),
        channel_id,
        team_id,
        trigger_words: body.trigger_words,
        trigger_when: body.trigger_when,
        callback_urls: body.callback_urls,
        display_name: body.display_name,
        description: body.description,
        content_type: if body.content_type.is_empty() {
            "application/x-www-form-urlencoded".into()
        } else {
            body.content_type
        },
        username: body.username,
        icon_url: body.icon_url,
    };
    let (index, _) = app
        .write(Command::PutOutgoingHook { hook: hook.clone() })
        .await?;
    Ok(with_applied(super::created(outgoing_json(&hook)), index))
}

async fn list_outgoing(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    if !app.integrations.enable_outgoing_webhooks {
        return Err(outgoing_disabled());
    }
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let team = params.id("team_id")?;
    let channel = params.id("channel_id")?;
    let caller_ref = &caller;
    let hooks = app
        .read(move |r| {
            let team = match (team, channel) {
                (_, Some(channel)) => match r.channel(channel)? {
                    Some(c) => Some(c.team_id),
                    None => return Ok(Err(ApiError::not_found("channel"))),
                },
                (team, None) => team,
            };
            if !may_list_hooks(r, team, caller_ref)? {
                return Ok(Err(ApiError::forbidden()));
            }
            Ok(Ok(r
                .outgoing_hooks()?
                .into_iter()
                .filter(|h| team.is_none_or(|t| h.team_id == t))
                .filter(|h| channel.is_none_or(|c| h.channel_id == c))
                .skip(page.saturating_mul(per_page))
                .take(per_page)
                .map(|h| outgoing_json(&h))
                .collect::<Vec<_>>()))
        })
        .await??;
    Ok(ok(Value::Array(hooks)))
}

async fn managed_outgoing(
    app: &AppState,
    caller: &Caller,
    hook_id: &str,
) -> ApiResult<OutgoingHook> {
    if !app.integrations.enable_outgoing_webhooks {
        return Err(outgoing_disabled());
    }
    let id = path_id(hook_id, "hook_id")?;
    app.read(move |r| {
        let Some(hook) = r.outgoing_hook(id)? else {
            return Ok(Err(ApiError::not_found("webhook")));
        };
        if may_manage_integrations(r, hook.team_id, caller)? {
            Ok(Ok(hook))
        } else {
            Ok(Err(ApiError::forbidden()))
        }
    })
    .await?
}

async fn get_outgoing(
    State(app): State<AppState>,
    caller: Caller,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let hook = managed_outgoing(&app, &caller, &hook_id).await?;
    Ok(ok(outgoing_json(&hook)))
}

async fn update_outgoing(
    State(app): State<AppState>,
    caller: Caller,
    Path(hook_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let old = managed_outgoing(&app, &caller, &hook_id).await?;
    let mut body: OutgoingBody = parse_body(&body, "webhook")?;
    if body.team_id.is_empty() {
        body.team_id = views::id(old.team_id);
    }
    let (team_id, channel_id) = outgoing_target(&app, &caller, &body).await?;
    if team_id != old.team_id {
        return Err(ApiError::bad_request(
            "api.webhooks.update_outgoing.intersect.app_error",
            "The hook cannot move to another team.",
        ));
    }
    let hook = OutgoingHook {
        channel_id,
        trigger_words: body.trigger_words,
        trigger_when: body.trigger_when,
        callback_urls: body.callback_urls,
        display_name: body.display_name,
        description: body.description,
        content_type: if body.content_type.is_empty() {
            old.content_type.clone()
        } else {
            body.content_type
        },
        username: body.username,
        icon_url: body.icon_url,
        update_at: now_ms().max(old.update_at),
        ..old
    };
    let (index, _) = app
        .write(Command::PutOutgoingHook { hook: hook.clone() })
        .await?;
    Ok(with_applied(ok(outgoing_json(&hook)), index))
}

async fn delete_outgoing(
    State(app): State<AppState>,
    caller: Caller,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let hook = managed_outgoing(&app, &caller, &hook_id).await?;
    let (index, _) = app
        .write(Command::DeleteOutgoingHook { id: hook.id })
        .await?;
    Ok(with_applied(status_ok(), index))
}

async fn regen_outgoing(
    State(app): State<AppState>,
    caller: Caller,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let mut hook = managed_outgoing(&app, &caller, &hook_id).await?;
    hook.token = Id::from_bytes(rand::random());
    hook.update_at = now_ms().max(hook.update_at);
    let (index, _) = app
        .write(Command::PutOutgoingHook { hook: hook.clone() })
        .await?;
    Ok(with_applied(ok(outgoing_json(&hook)), index))
}
