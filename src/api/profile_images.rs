//! Profile pictures: `GET /users/{id}/image` (the one set, else the generated one),
//! `GET /users/{id}/image/default`, `POST /users/{id}/image` (multipart `image`, made a 128 px
//! square PNG before it is replicated) and `DELETE /users/{id}/image` (back to the generated
//! one). Every change stamps the user's `last_picture_update` and sends `user_updated`, so the
//! apps, which put that stamp in the image URL, reload the picture at once.

use super::{status_ok, with_applied, AppState, Caller};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::pictures::{self, PictureError};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use confab_storage::{Command, Id};

/// Largest upload of a profile picture (phones send whole photos; only 128 px are kept).
pub const MAX_UPLOAD_BYTES: usize = 20 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/users/{user_id}/image",
            get(get_image)
                .post(set_image)
                .delete(reset_image)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route("/users/{user_id}/image/default", get(get_default_image))
}

/// A PNG (or the stored type) answer. With the apps' `?_=<last_picture_update>` the URL changes
/// whenever the picture does, so such an answer may be cached; without it, it may not.
fn image_response(bytes: Vec<u8>, cacheable: bool) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if cacheable {
            "private, max-age=86400"
        } else {
            "no-cache"
        }),
    );
    response
}

fn picture_error(error: PictureError) -> ApiError {
    match error {
        PictureError::Encode(message) => ApiError::internal(message),
        other => ApiError::bad_request(
            "api.user.upload_profile_user.decode.app_error",
            format!("Unable to read the profile image: {other}."),
        ),
    }
}

/// The user's name and whether they exist (any signed-in user may see anyone's picture, as
/// Mattermost's apps show authors of posts in channels they share).
async fn username(app: &AppState, user: Id) -> ApiResult<String> {
    app.read(move |r| r.user(user))
        .await?
        .map(|u| u.username)
        .ok_or_else(|| ApiError::not_found("user"))
}

async fn get_image(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    let name = username(&app, user).await?;
    let cacheable = query.as_deref().is_some_and(|q| q.contains("_="));
    if let Some(bytes) = app.read(move |r| r.profile_image(user)).await? {
        return Ok(image_response(bytes, cacheable));
    }
    Ok(image_response(generated(name, user).await?, cacheable))
}

/// The generated picture, drawn off the async runtime.
async fn generated(username: String, user: Id) -> ApiResult<Vec<u8>> {
    tokio::task::spawn_blocking(move || pictures::default_profile(&username, user.as_bytes()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(picture_error)
}

async fn get_default_image(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    let name = username(&app, user).await?;
    Ok(image_response(generated(name, user).await?, true))
}

fn no_image() -> ApiError {
    ApiError::bad_request(
        "api.user.upload_profile_user.no_file.app_error",
        "No file under 'image' in request.",
    )
}

/// Reads the multipart `image` part whole (the route's body limit bounds it).
async fn image_part(app: &AppState, request: Request) -> ApiResult<Vec<u8>> {
    let mut form = Multipart::from_request(request, app).await.map_err(|e| {
        ApiError::bad_request(
            "api.user.upload_profile_user.parse.app_error",
            e.body_text(),
        )
    })?;
    while let Some(field) = form.next_field().await.map_err(|e| {
        ApiError::bad_request(
            "api.user.upload_profile_user.parse.app_error",
            e.body_text(),
        )
    })? {
        if field.name() == Some("image") {
            let bytes = field.bytes().await.map_err(|e| {
                ApiError::bad_request(
                    "api.user.upload_profile_user.parse.app_error",
                    e.body_text(),
                )
            })?;
            if bytes.is_empty() {
                return Err(no_image());
            }
            return Ok(bytes.to_vec());
        }
    }
    Err(no_image())
}

async fn set_image(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    username(&app, user).await?;
    let upload = image_part(&app, request).await?;
    let max_pixels = app.files.settings.max_image_resolution;
    let png =
        tokio::task::spawn_blocking(move || pictures::profile_from_upload(&upload, max_pixels))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(picture_error)?;
    write_picture(&app, user, Some(png)).await
}

/// Replicates a new picture (`None`: back to the generated one).
async fn write_picture(app: &AppState, user: Id, png: Option<Vec<u8>>) -> ApiResult<Response> {
    let (index, _) = app
        .write(Command::SetProfileImage {
            user_id: user,
            at: now_ms(),
            png: png.map(serde_bytes::ByteBuf::from),
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

async fn reset_image(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    write_picture(&app, user, None).await
}
