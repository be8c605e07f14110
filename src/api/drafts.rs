//! Synced drafts (`AllowSyncedDrafts`): `POST /drafts` saves what a user has typed in a channel
//! or thread, `GET /users/{user_id}/teams/{team_id}/drafts` lists their drafts in the team's
//! channels (and their direct and group channels), `DELETE
//! /users/{user_id}/channels/{channel_id}/drafts[/{thread_id}]` removes one. The user's sockets
//! get `draft_created`, `draft_updated` and `draft_deleted`, so a draft follows them to their
//! other devices. As in Mattermost, saving an empty draft deletes it, and deleting a draft that
//! is not there is no error.

use super::{created, ok, parse_body, path_id, status_ok, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use confab_storage::drafts::Draft;
use confab_storage::{Command, Id, Outcome};
use serde::Deserialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/drafts", post(upsert_draft))
        .route("/users/{user_id}/teams/{team_id}/drafts", get(list_drafts))
        .route(
            "/users/{user_id}/channels/{channel_id}/drafts",
            delete(delete_channel_draft),
        )
        .route(
            "/users/{user_id}/channels/{channel_id}/drafts/{thread_id}",
            delete(delete_thread_draft),
        )
}

/// A draft as the apps send it; the user is always the caller.
#[derive(Deserialize)]
struct DraftBody {
    channel_id: String,
    #[serde(default)]
    root_id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    props: Option<Value>,
    #[serde(default)]
    file_ids: Vec<String>,
    #[serde(default)]
    priority: Option<Value>,
}

/// The path's user must be the caller: drafts are nobody else's business, admins included.
fn own(caller: &Caller, user_id: &str) -> ApiResult<Id> {
    let user = caller.resolve(user_id)?;
    if user != caller.id() {
        return Err(ApiError::forbidden());
    }
    Ok(user)
}

/// POST /drafts `{channel_id, root_id, message, props, file_ids, priority}` → 201 with the
/// draft as saved (`null` when an empty draft deleted the stored one).
async fn upsert_draft(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let body: DraftBody = parse_body(&body, "draft")?;
    let channel_id =
        Id::parse(&body.channel_id).map_err(|_| ApiError::invalid_param("channel_id"))?;
    let root_id = if body.root_id.is_empty() {
        None
    } else {
        Some(Id::parse(&body.root_id).map_err(|_| ApiError::invalid_param("root_id"))?)
    };
    let props = match body.props {
        Some(Value::Object(map)) => Value::Object(map).to_string(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(_) => return Err(ApiError::invalid_param("props")),
    };
    let priority = match body.priority {
        Some(Value::Object(map)) if !map.is_empty() => Value::Object(map).to_string(),
        None | Some(Value::Null) | Some(Value::Object(_)) => String::new(),
        Some(_) => return Err(ApiError::invalid_param("priority")),
    };
    let at = now_ms();
    let (index, outcome) = app
        .write(Command::UpsertDraft {
            draft: Draft {
                user_id: caller.id(),
                channel_id,
                root_id,
                create_at: at,
                update_at: at,
                message: body.message,
                props,
                file_ids: body.file_ids,
                priority,
            },
        })
        .await?;
    match outcome {
        Outcome::DraftSaved { draft, .. } => Ok(with_applied(created(views::draft(&draft)), index)),
        Outcome::DraftDeleted(_) => Ok(with_applied(created(Value::Null), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// GET /users/{user_id}/teams/{team_id}/drafts → the caller's drafts in the team's channels and
/// their direct and group channels, most recently saved first.
async fn list_drafts(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = own(&caller, &user_id)?;
    let team = path_id(&team_id, "team_id")?;
    let drafts = app
        .read(move |r| {
            if r.team_member(team, user)?.is_none_or(|m| m.delete_at != 0) {
                return Ok(Err(ApiError::forbidden()));
            }
            let mut listed = Vec::new();
            for draft in r.drafts(user)? {
                let Some(channel) = r.channel(draft.channel_id)? else {
                    continue;
                };
                let in_team = channel.team_id == team || channel.channel_type.is_teamless();
                if in_team && channel.delete_at == 0 && r.is_channel_member(channel.id, user)? {
                    listed.push(draft);
                }
            }
            Ok(Ok(listed))
        })
        .await??;
    let mut drafts = drafts;
    drafts.sort_by_key(|d| std::cmp::Reverse(d.update_at));
    Ok(ok(Value::Array(drafts.iter().map(views::draft).collect())))
}

async fn remove(
    app: AppState,
    user: Id,
    channel_id: &str,
    root: Option<&str>,
) -> ApiResult<Response> {
    let channel_id = path_id(channel_id, "channel_id")?;
    let root_id = root.map(|r| path_id(r, "thread_id")).transpose()?;
    let (index, _) = app
        .write(Command::DeleteDraft {
            user_id: user,
            channel_id,
            root_id,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

/// DELETE /users/{user_id}/channels/{channel_id}/drafts: the channel box's draft.
async fn delete_channel_draft(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, channel_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = own(&caller, &user_id)?;
    remove(app, user, &channel_id, None).await
}

/// DELETE /users/{user_id}/channels/{channel_id}/drafts/{thread_id}: a reply's draft.
async fn delete_thread_draft(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, channel_id, thread_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let user = own(&caller, &user_id)?;
    remove(app, user, &channel_id, Some(&thread_id)).await
}
