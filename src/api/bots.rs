//! Bot accounts (`/bots`), as Mattermost has them: a bot is a user with `is_bot` plus a bot
//! record (description, owner). Bots log in only with access tokens (their users have no
//! password), which work even when `EnableUserAccessTokens` is off, and never get email.

use super::{created, ok, parse_body, path_id, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::integrations::Bot;
use confab_storage::{Command, Id, User, UserProfile};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/bots", post(create_bot).get(list_bots))
        .route("/bots/{bot_id}", get(get_bot).put(patch_bot))
        .route("/bots/{bot_id}/disable", post(disable_bot))
        .route("/bots/{bot_id}/enable", post(enable_bot))
        .route("/bots/{bot_id}/assign/{user_id}", post(assign_bot))
}

/// Mattermost's Bot JSON: names from the user, the rest from the bot record.
pub fn bot_json(bot: &Bot, user: &User) -> Value {
    json!({
        "user_id": views::id(bot.user_id),
        "username": user.username,
        "display_name": user.first_name,
        "description": bot.description,
        "owner_id": views::id(bot.owner_id),
        "last_icon_update": 0,
        "create_at": bot.create_at,
        "update_at": bot.update_at.max(user.update_at),
        "delete_at": user.delete_at,
    })
}

#[derive(Deserialize)]
struct NewBot {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
}

async fn create_bot(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let new: NewBot = parse_body(&body, "bot")?;
    if !app.integrations.enable_bot_account_creation {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "api.bot.create_disabled",
            "Bot creation has been disabled.",
        ));
    }
    // Mattermost's `create_bot` is a system admin's by default; a bot never creates bots.
    if caller.user.is_bot || !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    if new.description.chars().count() > 1024 || new.display_name.chars().count() > 64 {
        return Err(ApiError::bad_request(
            "model.bot.is_valid.description.app_error",
            "Invalid bot description or display name.",
        ));
    }
    let at = now_ms();
    let bot = Bot {
        user_id: Id::from_bytes(rand::random()),
        description: new.description,
        owner_id: caller.id(),
        create_at: at,
        update_at: at,
    };
    let (index, outcome) = app
        .write(Command::CreateBot {
            bot: bot.clone(),
            username: new.username,
            display_name: new.display_name,
        })
        .await?;
    match outcome {
        confab_storage::Outcome::UserCreated(user) => {
            Ok(with_applied(created(bot_json(&bot, &user)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// The bot and its user, if the caller may read it (its owner, or an admin); otherwise 404,
/// which hides that the user is a bot.
async fn readable_bot(app: &AppState, caller: &Caller, id: Id) -> ApiResult<(Bot, User)> {
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| {
        let (Some(bot), Some(user)) = (r.bot(id)?, r.user(id)?) else {
            return Ok(Err(ApiError::not_found("bot")));
        };
        if admin || bot.owner_id == me {
            Ok(Ok((bot, user)))
        } else {
            Ok(Err(ApiError::not_found("bot")))
        }
    })
    .await?
}

async fn list_bots(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let include_deleted = params.bool("include_deleted");
    let only_orphaned = params.bool("only_orphaned");
    let (me, admin) = (caller.id(), caller.is_admin());
    let bots = app
        .read(move |r| {
            let mut out = Vec::new();
            for bot in r.bots()? {
                if !admin && bot.owner_id != me {
                    continue;
                }
                let Some(user) = r.user(bot.user_id)? else {
                    continue;
                };
                if user.delete_at != 0 && !include_deleted {
                    continue;
                }
                if only_orphaned && r.user(bot.owner_id)?.is_some_and(|o| o.delete_at == 0) {
                    continue;
                }
                out.push(bot_json(&bot, &user));
            }
            Ok(out)
        })
        .await?;
    Ok(ok(Value::Array(
        bots.into_iter()
            .skip(page.saturating_mul(per_page))
            .take(per_page)
            .collect(),
    )))
}

async fn get_bot(
    State(app): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let id = path_id(&bot_id, "bot_user_id")?;
    let (bot, user) = readable_bot(&app, &caller, id).await?;
    if user.delete_at != 0 && !Params::parse(query.as_deref()).bool("include_deleted") {
        return Err(ApiError::not_found("bot"));
    }
    Ok(ok(bot_json(&bot, &user)))
}

#[derive(Deserialize)]
struct BotPatch {
    username: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
}

async fn patch_bot(
    State(app): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = path_id(&bot_id, "bot_user_id")?;
    let patch: BotPatch = parse_body(&body, "bot patch")?;
    let (mut bot, user) = readable_bot(&app, &caller, id).await?;
    let mut index = 0;
    if patch.username.is_some() || patch.display_name.is_some() {
        let mut profile = UserProfile::of(&user);
        if let Some(username) = patch.username {
            profile.username = username.to_lowercase();
        }
        if let Some(display_name) = patch.display_name {
            profile.first_name = display_name;
        }
        (index, _) = app
            .write(Command::UpdateUser {
                user_id: id,
                at: now_ms(),
                profile,
            })
            .await?;
    }
    if let Some(description) = patch.description {
        bot.description = description;
        bot.update_at = now_ms();
        (index, _) = app.write(Command::PutBot { bot: bot.clone() }).await?;
    }
    let user = app
        .read(move |r| r.user(id))
        .await?
        .ok_or_else(|| ApiError::not_found("bot"))?;
    Ok(with_applied(ok(bot_json(&bot, &user)), index))
}

async fn set_active(
    app: AppState,
    caller: Caller,
    bot_id: String,
    active: bool,
) -> ApiResult<Response> {
    let id = path_id(&bot_id, "bot_user_id")?;
    let (bot, _) = readable_bot(&app, &caller, id).await?;
    let (index, _) = app
        .write(Command::SetUserActive {
            user_id: id,
            at: now_ms(),
            active,
        })
        .await?;
    let user = app
        .read(move |r| r.user(id))
        .await?
        .ok_or_else(|| ApiError::not_found("bot"))?;
    Ok(with_applied(ok(bot_json(&bot, &user)), index))
}

async fn disable_bot(
    State(app): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> ApiResult<Response> {
    set_active(app, caller, bot_id, false).await
}

async fn enable_bot(
    State(app): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> ApiResult<Response> {
    set_active(app, caller, bot_id, true).await
}

/// Gives the bot to another owner (Mattermost's `assign_bot`: a system admin's).
async fn assign_bot(
    State(app): State<AppState>,
    caller: Caller,
    Path((bot_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = path_id(&bot_id, "bot_user_id")?;
    let owner = path_id(&user_id, "user_id")?;
    let (mut bot, user) = readable_bot(&app, &caller, id).await?;
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    if app.read(move |r| r.user(owner)).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    bot.owner_id = owner;
    bot.update_at = now_ms();
    let (index, _) = app.write(Command::PutBot { bot: bot.clone() }).await?;
    Ok(with_applied(ok(bot_json(&bot, &user)), index))
}
