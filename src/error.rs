//! The one place errors become HTTP answers, in Mattermost's shape:
//! `{"id","message","detailed_error","request_id","status_code"}` with the status repeated in
//! the body (Client4 reads `status_code` and `id` from the body) and `Content-Type:
//! application/json` exactly.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use confab_storage::search::QueryError;
use confab_storage::{CommandError, PreferenceError, StorageError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("{status}: {id}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub id: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            id,
            message: message.into(),
        }
    }
    pub fn bad_request(id: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, id, message)
    }
    pub fn invalid_param(name: &str) -> ApiError {
        ApiError::bad_request(
            "api.context.invalid_param.app_error",
            format!("Invalid or missing {name} parameter in request URL or body."),
        )
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        )
    }
    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
        )
    }
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "app.not_found.app_error",
            format!("Unable to find the {what}."),
        )
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "app.internal_error.app_error",
            message,
        )
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api.cluster.unavailable.app_error",
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "id": self.id,
            "message": self.message,
            "detailed_error": "",
            "request_id": "",
            "status_code": self.status.as_u16(),
        });
        crate::api::json_response(self.status, &body)
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> ApiError {
        let message = error.to_string();
        match error {
            CommandError::NotFound { kind, .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "app.not_found.app_error",
                format!("Unable to find the {kind}: {message}"),
            ),
            CommandError::UsernameTaken(_) => {
                ApiError::bad_request("app.user.save.username_exists.app_error", message)
            }
            CommandError::EmailTaken(_) => {
                ApiError::bad_request("app.user.save.email_exists.app_error", message)
            }
            CommandError::TeamNameTaken(_) => {
                ApiError::bad_request("app.team.save.existing.app_error", message)
            }
            CommandError::ChannelNameTaken(_) => {
                ApiError::bad_request("store.sql_channel.save_channel.exists.app_error", message)
            }
            CommandError::IdExists(_) => {
                ApiError::bad_request("app.save.existing.app_error", message)
            }
            CommandError::MessageTooLong(_) => {
                ApiError::bad_request("model.post.is_valid.message_length.app_error", message)
            }
            CommandError::Deleted(_) => {
                ApiError::bad_request("api.context.deleted.app_error", message)
            }
            CommandError::NotMember { .. } => ApiError::new(
                StatusCode::FORBIDDEN,
                "api.context.permissions.app_error",
                message,
            ),
            CommandError::Invalid(_) => {
                ApiError::bad_request("api.context.invalid_body_param.app_error", message)
            }
            CommandError::Forbidden(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "api.context.permissions.app_error",
                message,
            ),
        }
    }
}

impl From<PreferenceError> for ApiError {
    fn from(error: PreferenceError) -> ApiError {
        let message = error.to_string();
        let id = match error {
            PreferenceError::Category(_) => "model.preference.is_valid.category.app_error",
            PreferenceError::Name(_) => "model.preference.is_valid.name.app_error",
            PreferenceError::Value(_) => "model.preference.is_valid.value.app_error",
            PreferenceError::Theme => "model.preference.is_valid.theme.app_error",
            PreferenceError::LimitVisibleDmsGms(_) => {
                "model.preference.is_valid.limit_visible_dms_gms.app_error"
            }
            PreferenceError::TooMany(_) => "api.context.invalid_body_param.app_error",
        };
        ApiError::bad_request(id, message)
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> ApiError {
        ApiError::bad_request(
            "api.post.search_posts.invalid_terms.app_error",
            error.to_string(),
        )
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> ApiError {
        match error {
            StorageError::Command(e) => e.into(),
            other => {
                tracing::error!("storage: {other}");
                ApiError::internal("storage failure")
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
