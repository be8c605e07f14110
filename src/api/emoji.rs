//! Custom emoji: `POST /emoji` (multipart `image` and `emoji` JSON), listing, by id and by
//! name, the image, deletion by its creator or an admin, search, autocomplete and lookup of many
//! names. Every user may add emoji (Mattermost's default `create_emojis`); `emoji_added` tells
//! every connected user.

use super::{created, ok, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::pictures::{self, PictureError};
use crate::views;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use confab_storage::emoji::{self as stored, Emoji, EmojiOrder, MAX_IMAGE_BYTES};
use confab_storage::{Command, Id, Outcome, Reader};
use serde::Deserialize;
use serde_json::Value;

/// Most results of a search or an autocomplete (Mattermost's `EmojiSearchDefaultLimit` and
/// autocomplete limit).
const SEARCH_LIMIT: usize = 100;
/// Most names `POST /emoji/names` looks up at once (Mattermost's `GetEmojisByNamesMax`).
const NAMES_LIMIT: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/emoji", post(create_emoji).get(list_emoji))
        .route("/emoji/{emoji_id}", get(get_emoji).delete(delete_emoji))
        .route("/emoji/{emoji_id}/image", get(emoji_image))
        .route("/emoji/name/{name}", get(emoji_by_name))
        .route("/emoji/search", post(search_emoji))
        .route("/emoji/autocomplete", get(autocomplete_emoji))
        .route("/emoji/names", post(emoji_by_names))
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "app.emoji.get.no_result",
        "We couldn't find the emoji.",
    )
}

fn bad_create(id: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(id, message)
}

#[derive(Deserialize)]
struct NewEmoji {
    name: String,
    #[serde(default)]
    creator_id: String,
}

/// The `emoji` JSON and the `image` bytes of a create request, in either order.
async fn read_form(app: &AppState, request: Request) -> ApiResult<(NewEmoji, Vec<u8>)> {
    let parse_error = |message: String| bad_create("api.emoji.create.parse.app_error", message);
    let mut form = Multipart::from_request(request, app)
        .await
        .map_err(|e| parse_error(e.body_text()))?;
    let (mut emoji, mut image) = (None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| parse_error(e.body_text()))?
    {
        match field.name() {
            Some("emoji") => {
                let text = field
                    .bytes()
                    .await
                    .map_err(|e| parse_error(e.body_text()))?;
                emoji = Some(parse_body::<NewEmoji>(&text, "emoji")?);
            }
            Some("image") => {
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| parse_error(e.body_text()))?;
                image = Some(bytes.to_vec());
            }
            _ => {}
        }
    }
    let emoji = emoji.ok_or_else(|| parse_error("No emoji JSON in the request.".into()))?;
    let image = image.filter(|bytes| !bytes.is_empty()).ok_or_else(|| {
        bad_create(
            "api.emoji.create.no_file.app_error",
            "No image in the request.",
        )
    })?;
    Ok((emoji, image))
}

async fn create_emoji(
    State(app): State<AppState>,
    caller: Caller,
    request: Request,
) -> ApiResult<Response> {
    let (new, upload) = read_form(&app, request).await?;
    if !new.creator_id.is_empty() && new.creator_id != caller.id().to_base32() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "api.emoji.create.other_user.app_error",
            "Emoji may only be created for yourself.",
        ));
    }
    let name = new.name.trim().to_lowercase();
    if !stored::valid_name(&name) {
        return Err(bad_create(
            "model.emoji.name.app_error",
            "Name must be 1 to 64 lowercase alphanumeric characters, '-', '+' or '_'.",
        ));
    }
    if emojis::get_by_shortcode(&name).is_some() {
        return Err(bad_create(
            "api.emoji.create.duplicate.app_error",
            "A standard emoji already has this name.",
        ));
    }
    if upload.len() > MAX_IMAGE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "api.emoji.create.too_large.app_error",
            format!("Emoji images must be at most {} KB.", MAX_IMAGE_BYTES >> 10),
        ));
    }
    let max_pixels = app.files.settings.max_image_resolution;
    let (image, _) =
        tokio::task::spawn_blocking(move || pictures::emoji_image(&upload, max_pixels))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| match e {
                PictureError::Encode(message) => ApiError::internal(message),
                other => bad_create(
                    "api.emoji.upload.image.app_error",
                    format!("Unable to create the emoji: {other}."),
                ),
            })?;
    let at = now_ms();
    let taken = {
        let name = name.clone();
        app.read(move |r| r.emoji_by_name(&name)).await?.is_some()
    };
    if taken {
        return Err(bad_create(
            "api.emoji.create.duplicate.app_error",
            "An emoji with this name already exists.",
        ));
    }
    let (index, outcome) = app
        .write(Command::CreateEmoji {
            emoji: Emoji {
                id: Id::from_bytes(rand::random()),
                create_at: at,
                update_at: at,
                delete_at: 0,
                creator_id: caller.id(),
                name,
            },
            image: serde_bytes::ByteBuf::from(image),
        })
        .await?;
    match outcome {
        Outcome::EmojiAdded(emoji) => Ok(with_applied(created(views::emoji(&emoji)), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

fn emoji_list(list: &[Emoji]) -> Response {
    ok(Value::Array(list.iter().map(views::emoji).collect()))
}

/// `GET /emoji?page&per_page&sort=name`: oldest first unless sorted by name.
async fn list_emoji(
    State(app): State<AppState>,
    _caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let order = match params.get("sort").unwrap_or("") {
        "" => EmojiOrder::Created,
        "name" => EmojiOrder::Name,
        _ => return Err(ApiError::invalid_param("sort")),
    };
    let list = app
        .read(move |r| r.emoji_page(order, page, per_page))
        .await?;
    Ok(emoji_list(&list))
}

async fn get_emoji(
    State(app): State<AppState>,
    _caller: Caller,
    Path(emoji_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&emoji_id, "emoji_id")?;
    let emoji = app
        .read(move |r| r.emoji(id))
        .await?
        .ok_or_else(not_found)?;
    Ok(ok(views::emoji(&emoji)))
}

async fn emoji_by_name(
    State(app): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !stored::valid_name(&name) {
        return Err(ApiError::invalid_param("name"));
    }
    let emoji = app
        .read(move |r| r.emoji_by_name(&name))
        .await?
        .ok_or_else(not_found)?;
    Ok(ok(views::emoji(&emoji)))
}

async fn emoji_image(
    State(app): State<AppState>,
    _caller: Caller,
    Path(emoji_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&emoji_id, "emoji_id")?;
    let bytes = app
        .read(move |r| r.emoji_image(id))
        .await?
        .ok_or_else(not_found)?;
    let mut response = (StatusCode::OK, bytes.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(pictures::content_type(&bytes)),
    );
    // An emoji's image never changes under its id.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=2592000"),
    );
    Ok(response)
}

/// Only its creator or a system admin deletes an emoji.
async fn delete_emoji(
    State(app): State<AppState>,
    caller: Caller,
    Path(emoji_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&emoji_id, "emoji_id")?;
    let emoji = app
        .read(move |r| r.emoji(id))
        .await?
        .ok_or_else(not_found)?;
    if emoji.creator_id != caller.id() && !caller.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "api.emoji.delete.permissions.app_error",
            "You do not have permission to delete this emoji.",
        ));
    }
    let (index, _) = app.write(Command::DeleteEmoji { id, at: now_ms() }).await?;
    Ok(with_applied(status_ok(), index))
}

#[derive(Deserialize)]
struct SearchBody {
    term: String,
    #[serde(default)]
    prefix_only: bool,
}

/// The emoji whose names contain `term` (or start with it), by name, at most `limit`.
fn matching(r: &Reader, term: &str, prefix_only: bool) -> confab_storage::Result<Vec<Emoji>> {
    if prefix_only {
        return r.emoji_with_prefix(term, SEARCH_LIMIT);
    }
    let mut found = r.emoji_with_prefix("", usize::MAX)?;
    found.retain(|e| e.name.contains(term));
    found.truncate(SEARCH_LIMIT);
    Ok(found)
}

async fn search_emoji(
    State(app): State<AppState>,
    _caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let body: SearchBody = parse_body(&body, "emoji search")?;
    let term = body.term.trim().trim_matches(':').to_lowercase();
    if term.is_empty() {
        return Err(ApiError::invalid_param("term"));
    }
    let list = app
        .read(move |r| matching(r, &term, body.prefix_only))
        .await?;
    Ok(emoji_list(&list))
}

async fn autocomplete_emoji(
    State(app): State<AppState>,
    _caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let name = params.get("name").unwrap_or("").trim().to_lowercase();
    if name.is_empty() {
        return Err(ApiError::invalid_param("name"));
    }
    let list = app.read(move |r| matching(r, &name, true)).await?;
    Ok(emoji_list(&list))
}

/// `POST /emoji/names ["a", …]`: the custom emoji among the names (unknown ones left out).
async fn emoji_by_names(
    State(app): State<AppState>,
    _caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let names: Vec<String> = parse_body(&body, "emoji names")?;
    if names.is_empty() || names.len() > NAMES_LIMIT {
        return Err(ApiError::invalid_param("names"));
    }
    let list = app
        .read(move |r| {
            let mut found = Vec::new();
            for name in names.iter().filter(|n| stored::valid_name(n)) {
                found.extend(r.emoji_by_name(name)?);
            }
            Ok::<_, confab_storage::StorageError>(found)
        })
        .await?;
    Ok(emoji_list(&list))
}
