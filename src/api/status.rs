//! User statuses (Mattermost's `api4/status.go`): read a status or many, set one by hand, and
//! custom statuses with their recent list. Statuses come from `app.presence` (live view +
//! replicated manual status); writes go through the log.

use super::{ok, parse_body, status_ok, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::presence::StatusKind;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use confab_storage::status::MAX_CUSTOM_TEXT_CHARS;
use confab_storage::{Command, CustomStatus, Id};
use serde::Deserialize;
use serde_json::Value;

/// Ids `POST /users/status/ids` takes at most.
const MAX_IDS: usize = 1_000;
/// Mattermost's custom status durations.
const DURATIONS: [&str; 6] = [
    "thirty_minutes",
    "one_hour",
    "four_hours",
    "today",
    "this_week",
    "date_and_time",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/status/ids", post(statuses_by_ids))
        .route(
            "/users/{user_id}/status",
            get(get_status).put(update_status),
        )
        .route(
            "/users/{user_id}/status/custom",
            put(set_custom).delete(clear_custom),
        )
        .route(
            "/users/{user_id}/status/custom/recent",
            axum::routing::delete(remove_recent),
        )
        .route(
            "/users/{user_id}/status/custom/recent/delete",
            post(remove_recent),
        )
}

/// What `GET /users/{id}/status` answers with statuses off (`EnableUserStatuses`): Mattermost
/// finds no status to return.
fn no_status() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "api.status.user_not_found.app_error",
        "We couldn't find the user.",
    )
}

/// `GET /users/{id}/status`: anyone signed in may read anyone's status.
async fn get_status(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    if !app.presence.user_statuses_enabled() {
        return Err(no_status());
    }
    Ok(ok(app.presence.status(user).to_json()))
}

/// `POST /users/status/ids`: a JSON array of 26-character ids; unknown users are offline.
async fn statuses_by_ids(
    State(app): State<AppState>,
    _caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let ids: Vec<String> = parse_body(&body, "user ids")?;
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::invalid_param("user_ids"));
    }
    let mut users = Vec::with_capacity(ids.len());
    for text in &ids {
        users.push(Id::parse(text).map_err(|_| ApiError::invalid_param("user_ids"))?);
    }
    if !app.presence.user_statuses_enabled() {
        return Ok(ok(Value::Array(Vec::new())));
    }
    Ok(ok(Value::Array(
        users
            .into_iter()
            .map(|user| app.presence.status(user).to_json())
            .collect(),
    )))
}

#[derive(Deserialize)]
struct StatusBody {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    dnd_end_time: i64,
}

/// `PUT /users/{id}/status`: online, away, offline or dnd (with `dnd_end_time` in seconds,
/// 0 = until changed). Editing another user needs a system admin.
pub async fn update_status(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    let wanted: StatusBody = parse_body(&body, "status")?;
    if wanted.user_id != user.to_base32() {
        return Err(ApiError::invalid_param("user_id"));
    }
    caller.require_self_or_admin(user)?;
    let kind = match StatusKind::parse(&wanted.status) {
        Some(kind @ (StatusKind::Online | StatusKind::Away | StatusKind::Offline)) => kind,
        Some(StatusKind::Dnd) => StatusKind::Dnd,
        _ => return Err(ApiError::invalid_param("status")),
    };
    let now = now_ms();
    let dnd_end_time = if kind == StatusKind::Dnd {
        match u64::try_from(wanted.dnd_end_time) {
            Ok(0) => 0,
            Ok(end) if end > now / 1000 => end,
            _ => return Err(ApiError::invalid_param("dnd_end_time")),
        }
    } else {
        0
    };
    if !app.presence.user_statuses_enabled() {
        // Mattermost's setters do nothing, and the status it then reads back is not found.
        return Err(no_status());
    }
    let (index, _) = app
        .write(Command::SetStatus {
            user_id: user,
            at: now,
            status: kind.as_str().to_string(),
            dnd_end_time,
        })
        .await?;
    Ok(with_applied(ok(app.presence.status(user).to_json()), index))
}

/// Mattermost's `CustomStatus` body; `expires_at` is RFC 3339.
#[derive(Deserialize)]
struct CustomBody {
    #[serde(default)]
    emoji: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    expires_at: String,
}

impl CustomBody {
    /// Mattermost's `AreDurationAndExpirationTimeValid`: no duration and no expiry (or one in
    /// the future), or a known duration with an expiry in the future. Answers the expiry in
    /// ms (0: never), which the leader's sweep enforces.
    fn check(&self, now: u64) -> ApiResult<u64> {
        let expires = match self.expires_at.as_str() {
            "" => None,
            text => match parse_rfc3339_ms(text) {
                Some(ms) => ms,
                None => return Err(ApiError::invalid_param("custom_status")),
            },
        };
        let future = expires.is_some_and(|ms| ms >= now);
        let valid = if self.duration.is_empty() {
            expires.is_none() || future
        } else {
            DURATIONS.contains(&self.duration.as_str()) && future
        };
        if valid && self.emoji.len() <= 64 {
            Ok(expires.unwrap_or(0))
        } else {
            Err(ApiError::invalid_param("custom_status"))
        }
    }

    /// Mattermost's `PreSave`: the text cut to 100 characters.
    fn into_status(self) -> CustomStatus {
        CustomStatus {
            emoji: self.emoji,
            text: self.text.chars().take(MAX_CUSTOM_TEXT_CHARS).collect(),
            duration: self.duration,
            expires_at: self.expires_at,
        }
    }
}

/// `PUT /users/{id}/status/custom`.
async fn set_custom(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let custom: CustomBody = parse_body(&body, "custom_status")?;
    let expires_at_ms = custom.check(now_ms())?;
    if custom.emoji.is_empty() && custom.text.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "api.custom_status.set_custom_statuses.update.app_error",
            "Failed to update the custom status: it has neither emoji nor text.",
        ));
    }
    let (index, _) = app
        .write(Command::SetCustomStatus {
            user_id: user,
            at: now_ms(),
            custom_status: Some(custom.into_status()),
            expires_at_ms,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

/// `DELETE /users/{id}/status/custom`.
async fn clear_custom(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let (index, _) = app
        .write(Command::SetCustomStatus {
            user_id: user,
            at: now_ms(),
            custom_status: None,
            expires_at_ms: 0,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

/// `DELETE /users/{id}/status/custom/recent` and `POST …/recent/delete`, the status in the
/// body: 400 when it is not among the recent ones.
async fn remove_recent(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let custom: CustomBody = parse_body(&body, "custom_status")?;
    if !custom.duration.is_empty() && !DURATIONS.contains(&custom.duration.as_str()) {
        return Err(ApiError::invalid_param("custom_status"));
    }
    let (index, _) = app
        .write(Command::RemoveRecentCustomStatus {
            user_id: user,
            custom_status: custom.into_status(),
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-12-01T20:30:00Z`, fractions and
/// `±hh:mm` offsets allowed). Go's zero time (year 1) is "no time": `Some(None)`.
fn parse_rfc3339_ms(text: &str) -> Option<Option<u64>> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    if at.year() == 1 {
        return Some(None);
    }
    Some(u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_epoch_ms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(Some(0)));
        assert_eq!(
            parse_rfc3339_ms("2026-12-01T20:30:00.25Z"),
            Some(Some(1_796_157_000_250))
        );
        assert_eq!(
            parse_rfc3339_ms("2026-12-01T22:30:00+02:00"),
            Some(Some(1_796_157_000_000))
        );
        assert_eq!(parse_rfc3339_ms("0001-01-01T00:00:00Z"), Some(None));
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-12-01T00:00:00",
            "2026-12-01T00:00:00+0200",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_and_expiry_follow_mattermost() {
        let body = |duration: &str, expires_at: &str| CustomBody {
            emoji: "calendar".into(),
            text: "x".into(),
            duration: duration.into(),
            expires_at: expires_at.into(),
        };
        let now = 1_796_157_000_000;
        assert!(body("", "").check(now).is_ok());
        assert_eq!(
            body("one_hour", "2026-12-01T21:30:00Z").check(now).ok(),
            Some(1_796_160_600_000),
            "the expiry in ms"
        );
        assert!(
            body("one_hour", "").check(now).is_err(),
            "a duration needs an expiry"
        );
        assert!(
            body("one_hour", "2026-12-01T19:30:00Z").check(now).is_err(),
            "in the past"
        );
        assert!(body("fortnight", "2026-12-01T21:30:00Z")
            .check(now)
            .is_err());
        let long = CustomBody {
            text: "é".repeat(150),
            ..body("", "")
        };
        assert_eq!(long.into_status().text.chars().count(), 100);
    }
}
