//! The push-notification routes: attaching a device to the session, channel-member notify
//! props, and acks forwarded to the push proxy (`id_loaded` acks answered with the full
//! notification after a read check).

use super::channels::can_read_channel;
use super::{ok, parse_body, path_id, status_ok, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{post, put};
use axum::Router;
use confab_storage::{Command, NotifyProps};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/sessions/device", put(attach_device))
        .route(
            "/channels/{channel_id}/members/{user_id}/notify_props",
            put(update_channel_notify_props),
        )
        .route("/notifications/ack", post(ack))
}

#[derive(Deserialize)]
struct Device {
    #[serde(default)]
    device_id: String,
}

/// `PUT /users/sessions/device`: the caller's session gets the device; the user's other
/// sessions with the same device id end. As in Mattermost, the session's lifetime restarts at
/// `SessionLengthMobileInHours`, and the `MMAUTHTOKEN` cookie is set again to match.
async fn attach_device(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let device: Device = parse_body(&body, "device_id")?;
    if device.device_id.trim().is_empty() {
        return Err(ApiError::invalid_param("device_id"));
    }
    let length = app.push.session_length_mobile;
    let (index, _) = app
        .write(Command::AttachDevice {
            token: caller.session.token,
            device_id: device.device_id,
            expires_at: now_ms() + length.as_millis() as u64,
        })
        .await?;
    let mut response = with_applied(status_ok(), index);
    let cookie = crate::auth::session_cookie(&caller.session.token.to_base32(), length.as_secs());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `PUT /channels/{channel_id}/members/{user_id}/notify_props`: merges the given props.
pub async fn update_channel_notify_props(
    State(app): State<AppState>,
    caller: Caller,
    Path((channel_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut props: NotifyProps = parse_body(&body, "notify_props")?;
    // Clients send the member's ids along (Client4's `updateChannelNotifyProps`): not props.
    props.remove("channel_id");
    props.remove("user_id");
    let channel_id = path_id(&channel_id, "channel_id")?;
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    let (index, _) = app
        .write(Command::SetChannelNotifyProps {
            channel_id,
            user_id,
            at: now_ms(),
            props,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

/// `PushNotificationAck`.
#[derive(Deserialize, serde::Serialize)]
struct Ack {
    id: String,
    #[serde(default)]
    received_at: i64,
    #[serde(default)]
    platform: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    post_id: String,
    #[serde(default)]
    is_id_loaded: bool,
}

fn push_disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "api.push_notification.disabled.app_error",
        "Push notifications are disabled on this server.",
    )
}

/// `POST /notifications/ack`.
async fn ack(State(app): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    let ack: Ack = parse_body(&body, "ack")?;
    let Some(proxy) = app.push_proxy.clone().filter(|_| app.push.enabled) else {
        return Err(push_disabled());
    };
    let forwarded = serde_json::to_value(&ack).unwrap_or_default();
    let sent = proxy.ack(&forwarded).await;
    if ack.is_id_loaded && !ack.post_id.is_empty() && ack.kind == "message" {
        if let Err(e) = &sent {
            tracing::info!("push ack not forwarded: {e}");
        }
        let post_id = path_id(&ack.post_id, "post_id")?;
        let user = caller.id();
        let admin = caller.is_admin();
        let server_id = app.settings.cluster_id.clone();
        let found = app
            .read(move |r| {
                let Some(post) = r.post(post_id)? else {
                    return Ok(Err(ApiError::not_found("post")));
                };
                let Some(channel) = r.channel(post.channel_id)? else {
                    return Ok(Err(ApiError::not_found("channel")));
                };
                if !can_read_channel(r, &channel, user, admin)? {
                    return Ok(Err(ApiError::forbidden()));
                }
                let push = crate::notify::plan::full_for_ack(r, post_id, user, &server_id)?;
                Ok(push.ok_or_else(|| ApiError::not_found("post")))
            })
            .await??;
        let json = serde_json::to_value(&found).map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(ok(json));
    }
    sent.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(status_ok())
}
