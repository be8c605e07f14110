//! Editing a channel: `PUT /channels/{id}/patch`, `PUT /channels/{id}` and
//! `POST /channels/{id}/restore`, with Mattermost's rules on who may do what.

use super::channels::readable_channel;
use super::{ok, parse_body, path_id, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use confab_storage::{Channel, ChannelPatch, Command, Id, Outcome};
use serde::Deserialize;

#[derive(Deserialize)]
struct PatchBody {
    #[serde(default)]
    id: Option<String>,
    name: Option<String>,
    display_name: Option<String>,
    header: Option<String>,
    purpose: Option<String>,
}

impl PatchBody {
    fn into_patch(self) -> ChannelPatch {
        ChannelPatch {
            name: self.name,
            display_name: self.display_name,
            header: self.header,
            purpose: self.purpose,
        }
    }
}

pub async fn patch_channel(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: PatchBody = parse_body(&body, "channel patch")?;
    let id = path_id(&channel_id, "channel_id")?;
    apply(app, caller, id, body.into_patch()).await
}

/// `PUT /channels/{id}`: Mattermost's full update; the body's `id` must name the channel.
pub async fn update_channel(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: PatchBody = parse_body(&body, "channel")?;
    let id = path_id(&channel_id, "channel_id")?;
    if body.id.as_deref() != Some(id.to_base32().as_str()) {
        return Err(ApiError::invalid_param("channel_id"));
    }
    apply(app, caller, id, body.into_patch()).await
}

/// Members edit their channels' properties (Mattermost's `manage_*_channel_properties`, held
/// by every channel member by default); a system admin edits any.
async fn editable_channel(app: &AppState, caller: &Caller, id: Id) -> ApiResult<Channel> {
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| {
        let channel = match readable_channel(r, id, me, admin)? {
            Ok(channel) => channel,
            Err(e) => return Ok(Err(e)),
        };
        if admin || r.is_channel_member(id, me)? {
            Ok(Ok(channel))
        } else {
            Ok(Err(ApiError::forbidden()))
        }
    })
    .await?
}

async fn apply(app: AppState, caller: Caller, id: Id, patch: ChannelPatch) -> ApiResult<Response> {
    editable_channel(&app, &caller, id).await?;
    let (index, outcome) = app
        .write(Command::PatchChannel {
            channel_id: id,
            at: now_ms(),
            patch,
        })
        .await?;
    match outcome {
        Outcome::ChannelUpdated(channel) => Ok(with_applied(ok(views::channel(&channel)), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// Restoring takes what archiving took: the channel's creator or a system admin.
pub async fn restore_channel(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let channel = app
        .read(move |r| r.channel(id))
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let me = caller.id();
    let member = app.read(move |r| r.is_channel_member(id, me)).await?;
    let may_restore = caller.is_admin() || (channel.creator_id == me && member);
    if !may_restore {
        return Err(ApiError::forbidden());
    }
    let (index, outcome) = app
        .write(Command::RestoreChannel {
            channel_id: id,
            at: now_ms(),
        })
        .await?;
    match outcome {
        Outcome::ChannelRestored(channel) => Ok(with_applied(ok(views::channel(&channel)), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}
