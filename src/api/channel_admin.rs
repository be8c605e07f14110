//! Running a channel: its privacy (`PUT /channels/{id}/privacy`, and the older
//! `POST /channels/{id}/convert` to private) and its admins (`PUT …/members/{uid}/roles` and
//! `/schemeRoles`). As Mattermost grants `convert_*_channel_*` and `manage_channel_roles` by
//! default: the channel's admins (its creator, and whom they appoint), the team's admins and
//! system admins.

use super::team_admin::{admin_in_roles, may_manage_team, scheme_admin};
use super::{ok, parse_body, path_id, status_ok, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{post, put};
use axum::Router;
use confab_storage::{Channel, ChannelType, Command, Id, Outcome, Reader};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels/{channel_id}/privacy", put(set_privacy))
        .route("/channels/{channel_id}/convert", post(convert_to_private))
        .route(
            "/channels/{channel_id}/members/{user_id}/roles",
            put(set_member_roles),
        )
        .route(
            "/channels/{channel_id}/members/{user_id}/schemeRoles",
            put(set_member_scheme_roles),
        )
}

/// Whether the caller runs `channel`: a system admin, an admin of its team, or a member of it
/// holding `channel_admin`.
pub fn may_manage_channel(
    r: &Reader,
    channel: &Channel,
    caller: &Caller,
) -> confab_storage::Result<bool> {
    if caller.is_admin() {
        return Ok(true);
    }
    if !channel.team_id.is_none() && may_manage_team(r, channel.team_id, caller)? {
        return Ok(true);
    }
    Ok(r.channel_member_record(channel.id, caller.id())?
        .is_some_and(|m| m.roles.split_whitespace().any(|r| r == "channel_admin")))
}

/// The live team channel (404 otherwise) the caller runs (403 otherwise).
async fn managed_channel(app: &AppState, caller: &Caller, id: Id) -> ApiResult<Channel> {
    let caller = caller.clone();
    app.read(move |r| {
        let Some(channel) = r.channel(id)?.filter(|c| c.delete_at == 0) else {
            return Ok(Err(ApiError::not_found("channel")));
        };
        Ok(if may_manage_channel(r, &channel, &caller)? {
            Ok(channel)
        } else {
            Err(ApiError::forbidden())
        })
    })
    .await?
}

#[derive(Deserialize)]
struct PrivacyBody {
    privacy: String,
}

async fn set_privacy(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let body: PrivacyBody = parse_body(&body, "channel privacy")?;
    let channel_type = match body.privacy.as_str() {
        "O" => ChannelType::Open,
        "P" => ChannelType::Private,
        _ => return Err(ApiError::invalid_param("privacy")),
    };
    change_privacy(&app, &caller, id, channel_type).await
}

async fn convert_to_private(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let channel = managed_channel(&app, &caller, id).await?;
    if channel.channel_type == ChannelType::Private {
        return Err(ApiError::bad_request(
            "api.channel.convert_channel_to_private.private_channel_error",
            "The channel is already private.",
        ));
    }
    change_privacy(&app, &caller, id, ChannelType::Private).await
}

async fn change_privacy(
    app: &AppState,
    caller: &Caller,
    id: Id,
    channel_type: ChannelType,
) -> ApiResult<Response> {
    let channel = managed_channel(app, caller, id).await?;
    if channel.channel_type.is_teamless() {
        return Err(ApiError::bad_request(
            "api.channel.update_channel_privacy.direct_channel.app_error",
            "Direct and group channels have no privacy setting.",
        ));
    }
    let (index, outcome) = app
        .write(Command::SetChannelPrivacy {
            channel_id: id,
            at: now_ms(),
            channel_type,
        })
        .await?;
    match outcome {
        Outcome::ChannelPrivacyChanged(channel) => {
            Ok(with_applied(ok(views::channel(&channel)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

#[derive(Deserialize)]
struct RolesBody {
    roles: String,
}

async fn set_member_roles(
    State(app): State<AppState>,
    caller: Caller,
    Path((channel_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: RolesBody = parse_body(&body, "roles")?;
    let admin = admin_in_roles(&body.roles, "channel_user", "channel_admin")
        .ok_or_else(|| ApiError::invalid_param("channel_member_roles"))?;
    set_channel_admin(&app, &caller, &channel_id, &user_id, admin).await
}

async fn set_member_scheme_roles(
    State(app): State<AppState>,
    caller: Caller,
    Path((channel_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = scheme_admin(&body)?;
    set_channel_admin(&app, &caller, &channel_id, &user_id, admin).await
}

async fn set_channel_admin(
    app: &AppState,
    caller: &Caller,
    channel_id: &str,
    user_id: &str,
    admin: bool,
) -> ApiResult<Response> {
    let channel_id = path_id(channel_id, "channel_id")?;
    let user_id = caller.resolve(user_id)?;
    managed_channel(app, caller, channel_id).await?;
    let (index, _) = app
        .write(Command::SetChannelMemberAdmin {
            channel_id,
            user_id,
            at: now_ms(),
            admin,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}
