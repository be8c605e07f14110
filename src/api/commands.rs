//! Slash commands: `/commands` management, `POST /commands/execute`, the `response_url`
//! (`POST /hooks/commands/{id}`) and autocomplete, as Mattermost has them. Built-in commands
//! are in [`super::slash_builtins`]; custom ones are called through
//! [`crate::integrations::outbound`].

use super::slash_builtins::{self, Context, BUILTINS};
use super::webhooks::may_manage_integrations;
use super::{ok, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::integrations::message::{self, Message};
use crate::integrations::post::{self, Poster};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post as post_route, put};
use axum::Router;
use confab_storage::integrations::{CommandHook, SlashCommand};
use confab_storage::{Channel, Command, Id};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/commands", post_route(create_command).get(list_commands))
        .route("/commands/execute", post_route(execute))
        .route(
            "/commands/{command_id}",
            get(get_command).put(update_command).delete(delete_command),
        )
        .route("/commands/{command_id}/regen_token", put(regen_token))
        .route("/teams/{team_id}/commands/autocomplete", get(autocomplete))
        .route(
            "/teams/{team_id}/commands/autocomplete_suggestions",
            get(suggestions),
        )
}

/// `POST /hooks/commands/{id}`, served from the site root.
pub fn root_routes() -> Router<AppState> {
    Router::new().route("/hooks/commands/{hook_id}", post_route(command_hook))
}

fn commands_disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "api.command.disabled.app_error",
        "Commands have been disabled by the system admin.",
    )
}

/// Mattermost's Command JSON; `token` only for those who manage the team's commands.
fn command_json(c: &SlashCommand, with_token: bool) -> Value {
    json!({
        "id": views::id(c.id),
        "token": if with_token { views::id(c.token) } else { String::new() },
        "create_at": c.create_at,
        "update_at": c.update_at,
        "delete_at": 0,
        "creator_id": views::id(c.creator_id),
        "team_id": views::id(c.team_id),
        "trigger": c.trigger,
        "method": c.method,
        "username": c.username,
        "icon_url": c.icon_url,
        "auto_complete": c.auto_complete,
        "auto_complete_desc": c.auto_complete_desc,
        "auto_complete_hint": c.auto_complete_hint,
        "display_name": c.display_name,
        "description": c.description,
        "url": c.url,
        "plugin_id": "",
    })
}

/// A built-in command as Mattermost lists it.
fn builtin_json(trigger: &str, hint: &str, desc: &str) -> Value {
    json!({
        "id": "", "token": "", "create_at": 0, "update_at": 0, "delete_at": 0,
        "creator_id": "", "team_id": "", "trigger": trigger, "method": "",
        "username": "", "icon_url": "", "auto_complete": true,
        "auto_complete_desc": desc, "auto_complete_hint": hint,
        "display_name": trigger, "description": desc, "url": "", "plugin_id": "",
    })
}

#[derive(Deserialize)]
struct CommandBody {
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    trigger: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    icon_url: String,
    #[serde(default)]
    auto_complete: bool,
    #[serde(default)]
    auto_complete_desc: String,
    #[serde(default)]
    auto_complete_hint: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    url: String,
}

fn invalid_command(field: &str) -> ApiError {
    ApiError::bad_request(
        "model.command.is_valid.app_error",
        format!("Invalid {field}."),
    )
}

/// Mattermost's `Command.IsValid` for the fields a body sets.
fn check_command(body: &mut CommandBody) -> ApiResult<()> {
    body.trigger = body.trigger.trim_start_matches('/').to_lowercase();
    let trigger = &body.trigger;
    if trigger.is_empty() || trigger.chars().count() > 128 || trigger.contains(char::is_whitespace)
    {
        return Err(invalid_command("trigger"));
    }
    if BUILTINS.iter().any(|b| b.0 == trigger) {
        return Err(ApiError::bad_request(
            "api.command.duplicate_trigger.app_error",
            "This trigger word is already in use. Please choose another word.",
        ));
    }
    if body.method.is_empty() {
        body.method = "P".into();
    }
    if body.method != "P" && body.method != "G" {
        return Err(invalid_command("method"));
    }
    let url_ok = reqwest::Url::parse(&body.url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        && body.url.len() <= 1024;
    if !url_ok {
        return Err(invalid_command("url"));
    }
    for (field, value, max) in [
        ("display_name", &body.display_name, 64),
        ("description", &body.description, 128),
        ("username", &body.username, 64),
        ("icon_url", &body.icon_url, 1024),
        ("auto_complete_desc", &body.auto_complete_desc, 1024),
        ("auto_complete_hint", &body.auto_complete_hint, 1024),
    ] {
        if value.chars().count() > max {
            return Err(invalid_command(field));
        }
    }
    Ok(())
}

/// The trigger conflicts another command of the team: Mattermost's 400.
fn map_put_error(e: ApiError) -> ApiError {
    if e.message.contains("is in use") {
        ApiError::bad_request(
            "api.command.duplicate_trigger.app_error",
            "This trigger word is already in use. Please choose another word.",
        )
    } else {
        e
    }
}

async fn require_manager(app: &AppState, caller: &Caller, team: Id) -> ApiResult<()> {
    let allowed = app
        .read(move |r| {
            if r.team(team)?.is_none() {
                return Ok(Err(ApiError::not_found("team")));
            }
            Ok(Ok(may_manage_integrations(r, team, caller)?))
        })
        .await??;
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

async fn create_command(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    if !app.integrations.enable_commands {
        return Err(commands_disabled());
    }
    let mut body: CommandBody = parse_body(&body, "command")?;
    let team_id = path_id(&body.team_id, "team_id")?;
    require_manager(&app, &caller, team_id).await?;
    check_command(&mut body)?;
    let at = now_ms();
    let command = SlashCommand {
        id: Id::from_bytes(rand::random()),
        token: Id::from_bytes(rand::random()),
        create_at: at,
        update_at: at,
        creator_id: caller.id(),
        team_id,
        trigger: body.trigger,
        method: body.method,
        username: body.username,
        icon_url: body.icon_url,
        auto_complete: body.auto_complete,
        auto_complete_desc: body.auto_complete_desc,
        auto_complete_hint: body.auto_complete_hint,
        display_name: body.display_name,
        description: body.description,
        url: body.url,
    };
    let (index, _) = app
        .write(Command::PutSlashCommand {
            command: command.clone(),
        })
        .await
        .map_err(map_put_error)?;
    Ok(with_applied(
        super::created(command_json(&command, true)),
        index,
    ))
}

/// `GET /commands?team_id&custom_only`: the team's custom commands (for those who manage
/// them), with the built-ins unless `custom_only`.
async fn list_commands(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let team = params
        .id("team_id")?
        .ok_or_else(|| ApiError::invalid_param("team_id"))?;
    let custom_only = params.bool("custom_only");
    let caller_ref = &caller;
    let (member, manager, custom) = app
        .read(move |r| {
            let member = caller_ref.is_admin()
                || r.team_member(team, caller_ref.id())?
                    .is_some_and(|m| m.delete_at == 0);
            let manager = may_manage_integrations(r, team, caller_ref)?;
            let custom: Vec<SlashCommand> = r
                .slash_commands()?
                .into_iter()
                .filter(|c| c.team_id == team)
                .collect();
            Ok((member, manager, custom))
        })
        .await?;
    if custom_only && !manager {
        return Err(ApiError::forbidden());
    }
    if !member {
        return Err(ApiError::forbidden());
    }
    let mut out: Vec<Value> = Vec::new();
    if !custom_only {
        out.extend(BUILTINS.iter().map(|(t, h, d)| builtin_json(t, h, d)));
    }
    if app.integrations.enable_commands {
        out.extend(
            custom
                .iter()
                .filter(|c| manager || c.auto_complete)
                .map(|c| command_json(c, manager)),
        );
    }
    Ok(ok(Value::Array(out)))
}

async fn managed_command(
    app: &AppState,
    caller: &Caller,
    command_id: &str,
) -> ApiResult<SlashCommand> {
    if !app.integrations.enable_commands {
        return Err(commands_disabled());
    }
    let id = path_id(command_id, "command_id")?;
    app.read(move |r| {
        let Some(command) = r.slash_command(id)? else {
            return Ok(Err(ApiError::not_found("command")));
        };
        if may_manage_integrations(r, command.team_id, caller)? {
            Ok(Ok(command))
        } else {
            // Mattermost hides commands from those who may not manage them.
            Ok(Err(ApiError::not_found("command")))
        }
    })
    .await?
}

async fn get_command(
    State(app): State<AppState>,
    caller: Caller,
    Path(command_id): Path<String>,
) -> ApiResult<Response> {
    let command = managed_command(&app, &caller, &command_id).await?;
    Ok(ok(command_json(&command, true)))
}

async fn update_command(
    State(app): State<AppState>,
    caller: Caller,
    Path(command_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let old = managed_command(&app, &caller, &command_id).await?;
    let mut body: CommandBody = parse_body(&body, "command")?;
    if !body.team_id.is_empty() && path_id(&body.team_id, "team_id")? != old.team_id {
        return Err(ApiError::bad_request(
            "api.command.team_mismatch.app_error",
            "Unable to update commands across teams.",
        ));
    }
    check_command(&mut body)?;
    let command = SlashCommand {
        trigger: body.trigger,
        method: body.method,
        username: body.username,
        icon_url: body.icon_url,
        auto_complete: body.auto_complete,
        auto_complete_desc: body.auto_complete_desc,
        auto_complete_hint: body.auto_complete_hint,
        display_name: body.display_name,
        description: body.description,
        url: body.url,
        update_at: now_ms().max(old.update_at),
        ..old
    };
    let (index, _) = app
        .write(Command::PutSlashCommand {
            command: command.clone(),
        })
        .await
        .map_err(map_put_error)?;
    Ok(with_applied(ok(command_json(&command, true)), index))
}

async fn delete_command(
    State(app): State<AppState>,
    caller: Caller,
    Path(command_id): Path<String>,
) -> ApiResult<Response> {
    let command = managed_command(&app, &caller, &command_id).await?;
    let (index, _) = app
        .write(Command::DeleteSlashCommand { id: command.id })
        .await?;
    Ok(with_applied(status_ok(), index))
}

async fn regen_token(
    State(app): State<AppState>,
    caller: Caller,
    Path(command_id): Path<String>,
) -> ApiResult<Response> {
    let mut command = managed_command(&app, &caller, &command_id).await?;
    command.token = Id::from_bytes(rand::random());
    command.update_at = now_ms().max(command.update_at);
    let (index, _) = app
        .write(Command::PutSlashCommand {
            command: command.clone(),
        })
        .await?;
    Ok(with_applied(
        ok(json!({"token": views::id(command.token)})),
        index,
    ))
}

// ---- execute ----

#[derive(Deserialize)]
struct ExecuteBody {
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    root_id: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    trigger_id: String,
}

fn response_json(m: &Message) -> Value {
    json!({
        "response_type": m.response_type,
        "text": m.text,
        "username": m.username,
        "channel_id": m.channel_id,
        "icon_url": m.icon_url,
        "type": m.post_type,
        "props": m.props.clone().unwrap_or_default(),
        "goto_location": m.goto_location,
        "trigger_id": "",
        "skip_slack_parsing": m.skip_slack_parsing,
        "attachments": m.attachments.clone().unwrap_or(Value::Null),
        "extra_responses": m.extra_responses.iter().map(response_json).collect::<Vec<_>>(),
    })
}

async fn execute(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body: ExecuteBody = parse_body(&body, "command")?;
    let line = body.command.trim_start();
    if line.chars().count() < 2 || !line.starts_with('/') {
        return Err(ApiError::bad_request(
            "api.command.execute_command.format.app_error",
            "Command trigger word is missing the leading slash character",
        ));
    }
    let channel_id = path_id(&body.channel_id, "channel_id")?;
    let root_id = [body.root_id.as_str(), body.parent_id.as_str()]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(|s| path_id(s, "root_id"))
        .transpose()?;
    let (me, admin) = (caller.id(), caller.is_admin());
    // `use_slash_commands` in the channel: its members.
    let channel: Channel = app
        .read(move |r| {
            let Some(channel) = r.channel(channel_id)? else {
                return Ok(Err(ApiError::not_found("channel")));
            };
            if !r.is_channel_member(channel_id, me)? && !admin {
                return Ok(Err(ApiError::forbidden()));
            }
            Ok(Ok(channel))
        })
        .await??;
    let team_id = if channel.team_id.is_none() {
        match body.team_id.as_str() {
            "" => Id::NONE,
            text => path_id(text, "team_id")?,
        }
    } else {
        channel.team_id
    };
    let (trigger, text) = match line[1..].split_once(char::is_whitespace) {
        Some((trigger, text)) => (trigger.to_lowercase(), text.trim().to_string()),
        None => (line[1..].to_lowercase(), String::new()),
    };
    let cx = Context {
        app: app.clone(),
        caller: caller.clone(),
        channel,
        team_id,
        root_id,
    };
    let (response, command) = if BUILTINS.iter().any(|b| b.0 == trigger) {
        (slash_builtins::run(&cx, &trigger, &text).await?, None)
    } else {
        let command = if app.integrations.enable_commands && !team_id.is_none() {
            let wanted = trigger.clone();
            app.read(move |r| {
                Ok(r.slash_commands()?
                    .into_iter()
                    .find(|c| c.team_id == team_id && c.trigger == wanted))
            })
            .await?
        } else {
            None
        };
        let Some(command) = command else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "api.command.execute_command.not_found.app_error",
                format!("Command with a trigger of '/{trigger}' not found."),
            ));
        };
        let base = super::client_config::site_url(&app.settings.site_url, &headers);
        let response = call_custom(&cx, &command, &text, &body.trigger_id, &base).await?;
        (response, Some(command))
    };
    let index = handle_response(&cx, command.as_ref(), &response).await?;
    Ok(with_applied(ok(response_json(&response)), index))
}

/// Calls a custom command's URL with Mattermost's fields and reads its answer.
async fn call_custom(
    cx: &Context,
    command: &SlashCommand,
    text: &str,
    trigger_id: &str,
    base: &str,
) -> ApiResult<Message> {
    let app = &cx.app;
    let hook = CommandHook {
        id: Id::from_bytes(rand::random()),
        command_id: command.id,
        user_id: cx.caller.id(),
        channel_id: cx.channel.id,
        root_id: cx.root_id.unwrap_or(Id::NONE),
        create_at: now_ms(),
        use_count: 0,
    };
    app.write(Command::CreateCommandHook { hook: hook.clone() })
        .await?;
    let (team_id, channel_id) = (cx.team_id, cx.channel.id);
    let team_domain = app
        .read(move |r| Ok(r.team(team_id)?.map(|t| t.name).unwrap_or_default()))
        .await?;
    let fields: Vec<(&str, String)> = vec![
        ("token", views::id(command.token)),
        ("team_id", views::id(team_id)),
        ("team_domain", team_domain),
        ("channel_id", views::id(channel_id)),
        ("channel_name", cx.channel.name.clone()),
        ("user_id", views::id(cx.caller.id())),
        ("user_name", cx.caller.user.username.clone()),
        ("command", format!("/{}", command.trigger)),
        ("text", text.to_string()),
        ("trigger_id", trigger_id.to_string()),
        (
            "response_url",
            format!("{base}/hooks/commands/{}", views::id(hook.id)),
        ),
    ];
    let failed = |detail: String| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api.command.execute_command.failed.app_error",
            format!(
                "Command with a trigger of '/{}' failed: {detail}",
                command.trigger
            ),
        )
    };
    let url = app
        .outbound
        .url(&command.url)
        .map_err(|e| failed(e.to_string()))?;
    let client = app.outbound.client();
    let request = if command.method == "G" {
        client.get(url).query(&fields)
    } else {
        client.post(url).form(&fields)
    }
    .header("Accept", "application/json")
    .header(
        "Authorization",
        format!("Token {}", views::id(command.token)),
    );
    let answer = app
        .outbound
        .send(request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if answer.status != 200 {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api.command.execute_command.failed_resp.app_error",
            format!(
                "Command with a trigger of '/{}' returned response {}.",
                command.trigger, answer.status
            ),
        ));
    }
    command_answer(&answer.content_type, &answer.body).map_err(|e| failed(e.to_string()))
}

/// A command's answer: JSON when its type says so, otherwise the body is the text.
fn command_answer(content_type: &str, body: &[u8]) -> Result<Message, serde_json::Error> {
    if content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Message::default());
        }
        message::parse_json(body)
    } else {
        Ok(Message {
            text: String::from_utf8_lossy(body).into_owned(),
            ..Message::default()
        })
    }
}

/// Posts a command's answer: `in_channel` as a post by the caller, otherwise (with content) an
/// ephemeral post to the caller; then its `extra_responses`. Answers the last applied index.
async fn handle_response(
    cx: &Context,
    command: Option<&SlashCommand>,
    response: &Message,
) -> ApiResult<u64> {
    let mut index = 0;
    // One level of extra responses, as Mattermost handles them.
    for msg in std::iter::once(response).chain(response.extra_responses.iter()) {
        if !msg.has_content() {
            continue;
        }
        let channel_id = response_channel(cx, msg).await?;
        if msg.response_type == "in_channel" {
            let (written, _) = post::post(
                &cx.app,
                &Poster {
                    user_id: cx.caller.id(),
                    channel_id,
                    root_id: cx.root_id,
                    from_webhook: false,
                    fallback_username: command.map(|c| c.username.as_str()).unwrap_or(""),
                    fallback_icon: command.map(|c| c.icon_url.as_str()).unwrap_or(""),
                    default_username: None,
                    webhook_display_name: None,
                },
                msg,
            )
            .await?;
            index = written;
        } else {
            let mut props: Map<String, Value> = msg.props.clone().unwrap_or_default();
            if msg.has_attachments() {
                props.insert(
                    "attachments".into(),
                    msg.attachments.clone().unwrap_or(Value::Null),
                );
            }
            let text = if msg.skip_slack_parsing {
                msg.text.clone()
            } else {
                message::slack_to_markdown(&msg.text)
            };
            post::ephemeral(
                &cx.app,
                cx.caller.id(),
                channel_id,
                cx.root_id,
                &text,
                props,
            )
            .await?;
        }
    }
    Ok(index)
}

/// The channel an answer goes to: the command's, or its `channel_id` if the caller is a
/// member there (else 403, as Mattermost).
async fn response_channel(cx: &Context, msg: &Message) -> ApiResult<Id> {
    if msg.channel_id.is_empty() {
        return Ok(cx.channel.id);
    }
    let id = path_id(&msg.channel_id, "channel_id")?;
    if id == cx.channel.id {
        return Ok(id);
    }
    let me = cx.caller.id();
    match cx.app.read(move |r| r.is_channel_member(id, me)).await? {
        true => Ok(id),
        false => Err(ApiError::forbidden()),
    }
}

/// `POST /hooks/commands/{id}`: a later answer to a command (at most five, within 30 min).
async fn command_hook(
    State(app): State<AppState>,
    Path(hook_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let invalid =
        || ApiError::bad_request("web.command_webhook.invalid.app_error", "Invalid webhook.");
    let id = Id::parse(&hook_id).map_err(|_| invalid())?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let response = command_answer(content_type, &body).map_err(|e| {
        ApiError::bad_request(
            "web.command_webhook.parse.app_error",
            format!("Unable to parse the incoming data: {e}"),
        )
    })?;
    let hook = match app
        .write(Command::UseCommandHook { id, at: now_ms() })
        .await
    {
        Ok((_, confab_storage::Outcome::CommandHookUsed(hook))) => hook,
        Ok(_) => return Err(ApiError::internal("unexpected outcome")),
        Err(_) => return Err(invalid()),
    };
    let (user_id, channel_id, command_id) = (hook.user_id, hook.channel_id, hook.command_id);
    let (user, channel, command) = app
        .read(move |r| {
            Ok((
                r.user(user_id)?,
                r.channel(channel_id)?,
                r.slash_command(command_id)?,
            ))
        })
        .await?;
    let (Some(user), Some(channel)) = (user, channel) else {
        return Err(invalid());
    };
    let session = confab_storage::Session {
        token: Id::NONE,
        user_id: user.id,
        create_at: 0,
        expires_at: 0,
        device_id: String::new(),
    };
    let cx = Context {
        app: app.clone(),
        caller: Caller { session, user },
        team_id: channel.team_id,
        channel,
        root_id: (!hook.root_id.is_none()).then_some(hook.root_id),
    };
    let index = handle_response(&cx, command.as_ref(), &response).await?;
    let mut answer = (StatusCode::OK, "ok").into_response();
    answer.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain"),
    );
    Ok(with_applied(answer, index))
}

// ---- autocomplete ----

async fn team_commands(
    app: &AppState,
    caller: &Caller,
    team_id: &str,
) -> ApiResult<Vec<(String, String, String)>> {
    let team = path_id(team_id, "team_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let custom = app
        .read(move |r| {
            if !super::teams::can_read_team(r, team, me, admin)? {
                return Ok(Err(ApiError::forbidden()));
            }
            Ok(Ok(r
                .slash_commands()?
                .into_iter()
                .filter(|c| c.team_id == team && c.auto_complete)
                .collect::<Vec<_>>()))
        })
        .await??;
    let mut all: Vec<(String, String, String)> = BUILTINS
        .iter()
        .map(|(t, h, d)| (t.to_string(), h.to_string(), d.to_string()))
        .collect();
    if app.integrations.enable_commands {
        all.extend(
            custom
                .into_iter()
                .map(|c| (c.trigger, c.auto_complete_hint, c.auto_complete_desc)),
        );
    }
    all.sort();
    Ok(all)
}

/// `GET /teams/{id}/commands/autocomplete`: the commands that autocomplete.
async fn autocomplete(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
) -> ApiResult<Response> {
    let all = team_commands(&app, &caller, &team_id).await?;
    Ok(ok(Value::Array(
        all.iter().map(|(t, h, d)| builtin_json(t, h, d)).collect(),
    )))
}

/// `GET /teams/{id}/commands/autocomplete_suggestions?user_input=/ec`: Mattermost's
/// `AutocompleteSuggestion`s (capitalised fields) for the commands the input starts.
async fn suggestions(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let input = params.get("user_input").unwrap_or("").to_lowercase();
    let Some(typed) = input.strip_prefix('/') else {
        return Ok(ok(json!([])));
    };
    let all = team_commands(&app, &caller, &team_id).await?;
    let out: Vec<Value> = all
        .iter()
        .filter(|(t, _, _)| !typed.contains(' ') && t.starts_with(typed))
        .map(|(t, h, d)| {
            json!({"Complete": t, "Suggestion": format!("/{t}"), "Hint": h, "Description": d, "IconData": ""})
        })
        .collect();
    Ok(ok(Value::Array(out)))
}
