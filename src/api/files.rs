//! Files over HTTP: `POST /files` in Mattermost's three shapes, the read routes (original with
//! Range, thumbnail, preview, info, public link) and a post's file infos. The work is in
//! `crate::files`; this module parses requests, checks permissions and shapes answers.

use super::channels::readable_channel;
use super::posts::readable_post;
use super::{created, json_bytes_response, ok, path_id, AppState, Caller, Params};
use crate::error::{ApiError, ApiResult};
use crate::files::ingest::{too_large, Ingest, Staged};
use crate::files::MAX_CHUNK_BYTES;
use crate::views;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use confab_storage::{Blob, FileInfo, Id, PreviewKind};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};

/// Longest `channel_id` or `client_ids` form value (Mattermost's 10 KB).
const MAX_FORM_VALUE: usize = 10 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/files",
            post(upload_files).layer(DefaultBodyLimit::disable()),
        )
        .route("/files/{file_id}", get(get_file))
        .route("/files/{file_id}/thumbnail", get(get_thumbnail))
        .route("/files/{file_id}/preview", get(get_preview))
        .route("/files/{file_id}/info", get(get_info))
        .route("/files/{file_id}/link", get(get_link))
        .route("/posts/{post_id}/files/info", get(post_files_info))
}

/// Routes outside `/api/v4`: the public link (no session).
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/files/{file_id}/public", get(get_public))
}

fn bad_upload(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("api.file.upload_file.bad_parse.app_error", message)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The caller may upload to the channel: a member of a live channel (`upload_file`).
async fn check_upload(app: &AppState, caller: &Caller, channel_id: Id) -> ApiResult<()> {
    let me = caller.id();
    app.read(move |r| {
        let Some(channel) = r.channel(channel_id)? else {
            return Ok(Err(ApiError::not_found("channel")));
        };
        if channel.delete_at != 0 || !r.is_channel_member(channel_id, me)? {
            return Ok(Err(ApiError::forbidden()));
        }
        Ok(Ok(()))
    })
    .await?
}

async fn upload_files(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    request: Request,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let max = app.files.settings.max_file_size;
    let declared = content_length(request.headers());
    if declared == Some(0) {
        return Err(bad_upload("The request body is empty."));
    }
    if declared.is_some_and(|length| length > max) {
        // Read what the client is still sending (bounded), so it sees the answer.
        let drained = super::body_limit::drain(request.into_body(), 0).await;
        let mut response = too_large(max).into_response();
        if !drained {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return Ok(response);
    }
    let wait = app.files.settings.upload_wait;
    let _slot = match tokio::time::timeout(wait, app.files.slots.acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "api.file.upload_file.too_many_uploads.app_error",
                "Too many uploads in progress on this server; try again.",
            ))
        }
    };
    let query_channel = params.id("channel_id")?;
    if let Some(channel_id) = query_channel {
        check_upload(&app, &caller, channel_id).await?;
    }
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let (channel_id, staged, client_ids) = if multipart {
        read_multipart(&app, &caller, query_channel, request).await?
    } else {
        let channel_id = query_channel.ok_or_else(|| ApiError::invalid_param("channel_id"))?;
        let filename = params
            .get("filename")
            .ok_or_else(|| ApiError::invalid_param("filename"))?
            .to_string();
        let client_ids: Vec<String> = params
            .get("client_id")
            .map(str::to_string)
            .into_iter()
            .collect();
        let mut ingest = Ingest::new(&app, &filename);
        let mut body = request.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| bad_upload(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                ingest.push(&data).await?;
            }
        }
        (channel_id, vec![ingest.finish().await?], client_ids)
    };
    let mut infos = Vec::with_capacity(staged.len());
    for file in staged {
        infos.push(file.commit(&app, caller.id(), channel_id).await?);
    }
    Ok(created(json!({
        "file_infos": infos.iter().map(views::file_info).collect::<Vec<_>>(),
        "client_ids": client_ids,
    })))
}

/// A short form value, refused past [`MAX_FORM_VALUE`].
async fn form_value(field: &mut axum::extract::multipart::Field<'_>) -> ApiResult<String> {
    let mut value = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| bad_upload(e.body_text()))? {
        value.extend_from_slice(&chunk);
        if value.len() > MAX_FORM_VALUE {
            return Err(bad_upload("A form value is longer than 10 KB."));
        }
    }
    String::from_utf8(value).map_err(|_| bad_upload("A form value is not UTF-8."))
}

/// Both multipart shapes: every part with a filename is a file, streamed as it comes (before or
/// after `channel_id`); `channel_id` and `client_ids` are the only other fields.
async fn read_multipart(
    app: &AppState,
    caller: &Caller,
    mut channel_id: Option<Id>,
    request: Request,
) -> ApiResult<(Id, Vec<Staged>, Vec<String>)> {
    let mut form = Multipart::from_request(request, app)
        .await
        .map_err(|e| bad_upload(e.body_text()))?;
    let mut staged: Vec<Staged> = Vec::new();
    let mut client_ids: Vec<String> = Vec::new();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| bad_upload(e.body_text()))?
    {
        if let Some(name) = field.file_name().map(str::to_string) {
            let mut ingest = Ingest::new(app, &name);
            while let Some(chunk) = field.chunk().await.map_err(|e| bad_upload(e.body_text()))? {
                ingest.push(&chunk).await?;
            }
            staged.push(ingest.finish().await?);
            continue;
        }
        match field.name().unwrap_or("") {
            "channel_id" => {
                let text = form_value(&mut field).await?;
                let id = path_id(text.trim(), "channel_id")?;
                match channel_id {
                    Some(known) if known != id => {
                        return Err(bad_upload("Two different channel_id values."))
                    }
                    Some(_) => {}
                    None => {
                        check_upload(app, caller, id).await?;
                        channel_id = Some(id);
                    }
                }
            }
            "client_ids" => client_ids.push(form_value(&mut field).await?),
            other => {
                return Err(bad_upload(format!("Unknown form field {other:?}.")));
            }
        }
    }
    let channel_id = channel_id.ok_or_else(|| ApiError::invalid_param("channel_id"))?;
    if staged.is_empty() {
        return Err(ApiError::bad_request(
            "api.file.upload_file.incorrect_number_of_files.app_error",
            "Unable to upload files. Incorrect number of files specified.",
        ));
    }
    if !client_ids.is_empty() && client_ids.len() != staged.len() {
        return Err(ApiError::bad_request(
            "api.file.upload_file.incorrect_number_of_client_ids.app_error",
            "Unable to upload files. Incorrect number of client ids.",
        ));
    }
    Ok((channel_id, staged, client_ids))
}

/// The file if the caller may read it: its uploader, or a reader of the channel of the post it
/// is attached to. Missing and deleted files are 404, others' files 403.
async fn readable_file(app: &AppState, caller: &Caller, file_id: &str) -> ApiResult<FileInfo> {
    let file_id = path_id(file_id, "file_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| {
        let Some(info) = r.file_info(file_id)? else {
            return Ok(Err(ApiError::not_found("file")));
        };
        if info.delete_at != 0 {
            return Ok(Err(ApiError::not_found("file")));
        }
        if info.user_id == me {
            return Ok(Ok(info));
        }
        if info.post_id.is_none() {
            return Ok(Err(ApiError::forbidden()));
        }
        Ok(readable_channel(r, info.channel_id, me, admin)?.map(|_| info))
    })
    .await?
}

async fn blob_of(app: &AppState, info: &FileInfo) -> ApiResult<Blob> {
    let sha = info.sha256.clone();
    app.read(move |r| r.blob(&sha))
        .await?
        .ok_or_else(|| ApiError::internal("the file's content is missing"))
}

/// Types a browser may show inline (Mattermost's media types); the rest are attachments.
fn inline_safe(mime: &str) -> bool {
    (mime.starts_with("image/") && mime != "image/svg+xml")
        || mime.starts_with("video/")
        || mime.starts_with("audio/")
        || mime == "application/pdf"
}

fn content_disposition(name: &str, attachment: bool) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(byte) {
            encoded.push(*byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let kind = if attachment { "attachment" } else { "inline" };
    HeaderValue::from_str(&format!(
        "{kind};filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Most ranges one request may ask for; more are answered with the whole file.
const MAX_RANGES: usize = 64;

/// What a `Range` header asks of a file of `size` bytes, as Go's `http.ServeContent` (which
/// Mattermost serves files with) reads it.
#[derive(Debug, PartialEq, Eq)]
enum Ranges {
    /// No header, one that is not `bytes=`, or ranges that together ask for more than the file:
    /// the whole file, 200.
    Whole,
    /// `[start, end]` ranges, in the order asked: one is a 206 of that range, several a 206
    /// `multipart/byteranges`.
    Parts(Vec<(u64, u64)>),
    /// Malformed, or no range overlaps the file: 416.
    Unsatisfiable,
}

fn parse_ranges(header: Option<&HeaderValue>, size: u64) -> Ranges {
    let Some(text) = header.and_then(|v| v.to_str().ok()) else {
        return Ranges::Whole;
    };
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let mut parts = Vec::new();
    for one in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((start, end)) = one.split_once('-') else {
            return Ranges::Unsatisfiable;
        };
        let (start, end) = (start.trim(), end.trim());
        let range = if start.is_empty() {
            let Ok(suffix) = end.parse::<u64>() else {
                return Ranges::Unsatisfiable;
            };
            if suffix == 0 || size == 0 {
                continue;
            }
            (size.saturating_sub(suffix), size - 1)
        } else {
            let Ok(start) = start.parse::<u64>() else {
                return Ranges::Unsatisfiable;
            };
            let end = if end.is_empty() {
                size.saturating_sub(1)
            } else {
                match end.parse::<u64>() {
                    Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return Ranges::Unsatisfiable,
                }
            };
            if start >= size {
                // Does not overlap the file; the others may.
                continue;
            }
            (start, end)
        };
        parts.push(range);
    }
    if parts.is_empty() {
        return Ranges::Unsatisfiable;
    }
    let asked: u64 = parts.iter().map(|(s, e)| e - s + 1).sum();
    if parts.len() > MAX_RANGES || (parts.len() > 1 && asked > size) {
        return Ranges::Whole;
    }
    Ranges::Parts(parts)
}

/// The bytes `[start, end]` of a blob, read chunk by chunk on the blocking pool as the client
/// takes them.
fn blob_chunks(
    app: AppState,
    blob: Blob,
    start: u64,
    end: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let chunk = MAX_CHUNK_BYTES as u64;
    let first = (start / chunk) as u32;
    futures_util::stream::unfold((first, start, end), move |(index, offset, end)| {
        let app = app.clone();
        let blob = blob.clone();
        async move {
            if offset > end || index >= blob.chunks {
                return None;
            }
            let read =
                tokio::task::spawn_blocking(move || app.engine.reader().blob_chunk(&blob, index))
                    .await;
            let bytes = match read {
                Ok(Ok(Some(bytes))) => bytes,
                Ok(Ok(None)) => {
                    return Some((Err(std::io::Error::other("missing chunk")), (index, 1, 0)))
                }
                Ok(Err(e)) => return Some((Err(std::io::Error::other(e)), (index, 1, 0))),
                Err(e) => return Some((Err(std::io::Error::other(e)), (index, 1, 0))),
            };
            let chunk_start = index as u64 * chunk;
            let from = (offset - chunk_start) as usize;
            let to = ((end - chunk_start + 1) as usize).min(bytes.len());
            if from >= to {
                return None;
            }
            let piece = Bytes::from(bytes).slice(from..to);
            let next = chunk_start + to as u64;
            Some((Ok::<_, std::io::Error>(piece), (index + 1, next, end)))
        }
    })
}

/// A `multipart/byteranges` body of the parts, laid out as Go's `mime/multipart` writes it
/// (what Mattermost sends), and its length.
fn byteranges(
    app: AppState,
    blob: Blob,
    parts: &[(u64, u64)],
    mime: &str,
    boundary: &str,
) -> (Body, u64) {
    let size = blob.size;
    let mut length = 0u64;
    let mut pieces = Vec::new();
    for (n, (start, end)) in parts.iter().enumerate() {
        let head = format!(
            "{}--{boundary}\r\nContent-Range: bytes {start}-{end}/{size}\r\nContent-Type: {mime}\r\n\r\n",
            if n == 0 { "" } else { "\r\n" }
        );
        length += head.len() as u64 + (end - start + 1);
        pieces.push((Bytes::from(head), *start, *end));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    length += tail.len() as u64;
    let stream = futures_util::stream::iter(pieces)
        .flat_map(move |(head, start, end)| {
            futures_util::stream::once(async move { Ok(head) }).chain(blob_chunks(
                app.clone(),
                blob.clone(),
                start,
                end,
            ))
        })
        .chain(futures_util::stream::once(
            async move { Ok(Bytes::from(tail)) },
        ));
    (Body::from_stream(stream.boxed()), length)
}

/// The original file: whole, one range, or several as `multipart/byteranges`.
async fn serve_file(
    app: AppState,
    info: FileInfo,
    download: bool,
    range: Option<&HeaderValue>,
) -> ApiResult<Response> {
    let blob = blob_of(&app, &info).await?;
    let size = blob.size;
    let mime = if info.mime_type.is_empty() {
        "application/octet-stream".to_string()
    } else {
        info.mime_type.clone()
    };
    let attachment = download || !inline_safe(&mime);
    let parts = match parse_ranges(range, size) {
        Ranges::Whole => Vec::new(),
        Ranges::Parts(parts) => parts,
        Ranges::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let mut content_type = mime.clone();
    let mut content_range = None;
    let (status, body, length) = match parts.as_slice() {
        [] if size == 0 => (StatusCode::OK, Body::empty(), 0),
        [] => (
            StatusCode::OK,
            Body::from_stream(blob_chunks(app, blob, 0, size - 1).boxed()),
            size,
        ),
        [(start, end)] => {
            content_range = Some(format!("bytes {start}-{end}/{size}"));
            let body = Body::from_stream(blob_chunks(app, blob, *start, *end).boxed());
            (StatusCode::PARTIAL_CONTENT, body, end - start + 1)
        }
        several => {
            let boundary = hex::encode(rand::random::<[u8; 15]>());
            content_type = format!("multipart/byteranges; boundary={boundary}");
            let (body, length) = byteranges(app, blob, several, &mime, &boundary);
            (StatusCode::PARTIAL_CONTENT, body, length)
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&info.name, attachment),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=2592000, private"),
    );
    if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

async fn get_file(
    State(app): State<AppState>,
    caller: Caller,
    Path(file_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let info = readable_file(&app, &caller, &file_id).await?;
    let download = Params::parse(query.as_deref()).bool("download");
    serve_file(app, info, download, headers.get(header::RANGE)).await
}

async fn serve_preview(app: &AppState, info: &FileInfo, kind: PreviewKind) -> ApiResult<Response> {
    let id = info.id;
    let bytes = if info.has_preview_image {
        app.read(move |r| r.file_preview(id, kind)).await?
    } else {
        None
    };
    let Some(bytes) = bytes else {
        return Err(match kind {
            PreviewKind::Thumbnail => ApiError::bad_request(
                "api.file.get_file_thumbnail.no_thumbnail.app_error",
                "File doesn't have a thumbnail image.",
            ),
            PreviewKind::Preview => ApiError::bad_request(
                "api.file.get_file_preview.no_preview.app_error",
                "File doesn't have a preview image.",
            ),
        });
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&info.name, false),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=2592000, private"),
    );
    Ok(response)
}

async fn get_thumbnail(
    State(app): State<AppState>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> ApiResult<Response> {
    let info = readable_file(&app, &caller, &file_id).await?;
    serve_preview(&app, &info, PreviewKind::Thumbnail).await
}

async fn get_preview(
    State(app): State<AppState>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> ApiResult<Response> {
    let info = readable_file(&app, &caller, &file_id).await?;
    serve_preview(&app, &info, PreviewKind::Preview).await
}

async fn get_info(
    State(app): State<AppState>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> ApiResult<Response> {
    let info = readable_file(&app, &caller, &file_id).await?;
    let mut response = ok(views::file_info(&info));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=2592000, private"),
    );
    Ok(response)
}

fn public_links_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "api.file.get_public_link.disabled.app_error",
        "Public links have been disabled.",
    )
}

/// The site URL for links: the configured one, or the address the request reached.
fn site_url(app: &AppState, headers: &HeaderMap) -> String {
    if !app.settings.site_url.is_empty() {
        return app.settings.site_url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

async fn get_link(
    State(app): State<AppState>,
    caller: Caller,
    Path(file_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !app.files.settings.enable_public_link {
        return Err(public_links_disabled());
    }
    let info = readable_file(&app, &caller, &file_id).await?;
    if info.post_id.is_none() {
        return Err(ApiError::bad_request(
            "api.file.get_public_link.no_post.app_error",
            "Unable to get public link for file. File must be attached to a post that can be read by the current user.",
        ));
    }
    let id = views::id(info.id);
    let hash = app.files.public_link_hash(&id);
    let site = site_url(&app, &headers);
    Ok(ok(
        json!({"link": format!("{site}/files/{id}/public?h={hash}")}),
    ))
}

async fn get_public(
    State(app): State<AppState>,
    Path(file_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !app.files.settings.enable_public_link {
        return Err(public_links_disabled());
    }
    let params = Params::parse(query.as_deref());
    let file = path_id(&file_id, "file_id")?;
    let expected = app.files.public_link_hash(&views::id(file));
    let given = params.get("h").unwrap_or("");
    if given.is_empty() || !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::bad_request(
            "api.file.get_file.public_invalid.app_error",
            "The public link does not appear to be valid.",
        ));
    }
    let info = app
        .read(move |r| r.file_info(file))
        .await?
        .filter(|info| info.delete_at == 0 && !info.post_id.is_none())
        .ok_or_else(|| ApiError::not_found("file"))?;
    serve_file(app, info, false, headers.get(header::RANGE)).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn post_files_info(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    let post = readable_post(&app, &caller, post_id).await?;
    let files = app.read(move |r| r.post_files(&post)).await?;
    let list: Vec<Value> = files.iter().map(views::file_info).collect();
    let bytes = serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec());
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(header: &str, size: u64) -> Ranges {
        parse_ranges(Some(&HeaderValue::from_str(header).unwrap()), size)
    }

    #[test]
    fn range_headers_read_as_go_serve_content_reads_them() {
        assert_eq!(parse_ranges(None, 10), Ranges::Whole);
        assert_eq!(ranges("items=0-1", 10), Ranges::Whole);
        assert_eq!(ranges("bytes=2-4", 10), Ranges::Parts(vec![(2, 4)]));
        assert_eq!(ranges("bytes=5-", 10), Ranges::Parts(vec![(5, 9)]));
        assert_eq!(ranges("bytes=-3", 10), Ranges::Parts(vec![(7, 9)]));
        assert_eq!(ranges("bytes=8-100", 10), Ranges::Parts(vec![(8, 9)]));
        assert_eq!(
            ranges("bytes=0-1, 4-5,-2", 10),
            Ranges::Parts(vec![(0, 1), (4, 5), (8, 9)])
        );
        // A range past the end is skipped; none left is 416.
        assert_eq!(ranges("bytes=0-1,20-30", 10), Ranges::Parts(vec![(0, 1)]));
        assert_eq!(ranges("bytes=10-", 10), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=4-2", 10), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=x-2", 10), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=5", 10), Ranges::Unsatisfiable);
        assert_eq!(ranges("bytes=", 10), Ranges::Unsatisfiable);
        // Together more than the file, or too many: the whole file.
        assert_eq!(ranges("bytes=0-,0-", 10), Ranges::Whole);
        let many: Vec<String> = (0..65).map(|i| format!("{i}-{i}")).collect();
        assert_eq!(
            ranges(&format!("bytes={}", many.join(",")), 100),
            Ranges::Whole
        );
    }
}
