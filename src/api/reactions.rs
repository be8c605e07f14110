//! Reactions on posts, and acknowledgements of posts that ask for them (`metadata.priority.
//! requested_ack`): `POST`/`DELETE /users/{id}/posts/{post_id}/ack`, by the user themselves, in
//! a channel they can read; taking one back works for 5 minutes, as in Mattermost.

use super::channels::readable_channel;
use super::{created, ok, parse_body, path_id, status_ok, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use confab_storage::{validate, Command, Id, Outcome};
use serde::Deserialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reactions", post(add_reaction))
        .route("/posts/{post_id}/reactions", get(list_reactions))
        .route(
            "/users/{user_id}/posts/{post_id}/reactions/{emoji_name}",
            delete(remove_reaction),
        )
        .route(
            "/users/{user_id}/posts/{post_id}/ack",
            post(acknowledge).delete(unacknowledge),
        )
}

/// The user and post of an ack route; only the user themselves acknowledges.
async fn ack_target(
    app: &AppState,
    caller: &Caller,
    user_id: &str,
    post_id: &str,
) -> ApiResult<(Id, Id)> {
    let user_id = caller.resolve(user_id)?;
    let post_id = path_id(post_id, "post_id")?;
    if user_id != caller.id() {
        return Err(ApiError::forbidden());
    }
    check_post_readable(app, caller, post_id).await?;
    Ok((user_id, post_id))
}

async fn acknowledge(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, post_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (user_id, post_id) = ack_target(&app, &caller, &user_id, &post_id).await?;
    let (index, outcome) = app
        .write(Command::AckPost {
            post_id,
            user_id,
            at: now_ms(),
        })
        .await?;
    match outcome {
        Outcome::AckChanged { ack, .. } => {
            Ok(with_applied(ok(views::acknowledgement(&ack)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

async fn unacknowledge(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, post_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (user_id, post_id) = ack_target(&app, &caller, &user_id, &post_id).await?;
    let (index, _) = app
        .write(Command::UnackPost {
            post_id,
            user_id,
            at: now_ms(),
        })
        .await
        .map_err(|e| {
            if e.status == axum::http::StatusCode::FORBIDDEN {
                ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "api.acknowledgement.delete.deadline.app_error",
                    "An acknowledgement can be removed only within 5 minutes.",
                )
            } else {
                e
            }
        })?;
    Ok(with_applied(status_ok(), index))
}

#[derive(Deserialize)]
struct NewReaction {
    user_id: String,
    post_id: String,
    emoji_name: String,
}

/// The caller may react in (read) the post's channel.
async fn check_post_readable(app: &AppState, caller: &Caller, post_id: Id) -> ApiResult<()> {
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| {
        let Some(post) = r.post(post_id)? else {
            return Ok(Err(ApiError::not_found("post")));
        };
        Ok(readable_channel(r, post.channel_id, me, admin)?.map(|_| ()))
    })
    .await?
}

async fn add_reaction(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let new: NewReaction = parse_body(&body, "reaction")?;
    let user_id = path_id(&new.user_id, "user_id")?;
    let post_id = path_id(&new.post_id, "post_id")?;
    if user_id != caller.id() {
        return Err(ApiError::forbidden());
    }
    validate::emoji(&new.emoji_name).map_err(|_| ApiError::invalid_param("emoji_name"))?;
    check_post_readable(&app, &caller, post_id).await?;
    // Reacting needs to be able to post in the channel: a member.
    let (index, outcome) = app
        .write(Command::AddReaction {
            post_id,
            user_id,
            emoji_name: new.emoji_name,
            at: now_ms(),
        })
        .await?;
    match outcome {
        Outcome::ReactionAdded { reaction, .. } => {
            Ok(with_applied(created(views::reaction(&reaction)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

async fn list_reactions(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    check_post_readable(&app, &caller, post_id).await?;
    let reactions = app.read(move |r| r.reactions(post_id)).await?;
    Ok(ok(Value::Array(
        reactions.iter().map(views::reaction).collect(),
    )))
}

async fn remove_reaction(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, post_id, emoji_name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    let post_id = path_id(&post_id, "post_id")?;
    check_post_readable(&app, &caller, post_id).await?;
    let (index, _) = app
        .write(Command::RemoveReaction {
            post_id,
            user_id,
            emoji_name,
            at: now_ms(),
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}
