//! What the apps read when a channel opens besides its posts: `GET /channels/{id}/stats`
//! (member and pinned counts for the header) and `GET /channels/{id}/pinned` (the pinned list).

use super::channels::readable_channel;
use super::posts::page_json;
use super::{ok, ok_bytes, path_id, AppState, Caller};
use crate::error::ApiResult;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use confab_storage::{Channel, PostPage, Reader};
use serde_json::json;

/// Most pinned posts one answer lists (Mattermost lists them all; a channel rarely pins many).
const MAX_PINNED: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels/{channel_id}/stats", get(stats))
        .route("/channels/{channel_id}/pinned", get(pinned))
}

/// The channel in the path if the caller may read it (400 / 404 / 403 otherwise), then `answer`.
async fn with_readable_channel<T, F>(
    app: &AppState,
    caller: &Caller,
    channel_id: &str,
    answer: F,
) -> ApiResult<T>
where
    F: FnOnce(&Reader, Channel) -> confab_storage::Result<T>,
{
    let id = path_id(channel_id, "channel_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| match readable_channel(r, id, me, admin)? {
        Ok(channel) => answer(r, channel).map(Ok),
        Err(refused) => Ok(Err(refused)),
    })
    .await?
}

/// `{channel_id, member_count, guest_count, pinnedpost_count, files_count}`. confab has no
/// guest accounts and no file attachments yet, so those two are 0.
async fn stats(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let body = with_readable_channel(&app, &caller, &channel_id, |r, channel| {
        Ok(json!({
            "channel_id": channel.id.to_base32(),
            "member_count": r.channel_member_count(channel.id)?,
            "guest_count": 0,
            "pinnedpost_count": r.pinned_count(channel.id)?,
            "files_count": 0,
        }))
    })
    .await?;
    Ok(ok(body))
}

/// The channel's pinned posts as a PostList, newest first.
async fn pinned(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let me = caller.id();
    let body = with_readable_channel(&app, &caller, &channel_id, move |r, channel| {
        let posts = r.pinned_posts(channel.id, MAX_PINNED)?;
        let list = PostPage {
            order: posts.iter().map(|p| p.id).collect(),
            posts,
            has_next: false,
        };
        page_json(r, &list, me)
    })
    .await?;
    Ok(ok_bytes(body))
}
