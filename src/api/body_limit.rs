//! Request bodies are read whole before routing, at most [`MAX_BODY_BYTES`] of them kept (more
//! for a profile picture upload).
//!
//! Why read an oversized body at all: answering 413 while the client is still writing and then
//! closing the connection resets it mid-write, and an HTTP client that is still sending never
//! reads the answer: it sees a broken pipe instead of Mattermost's error. So the excess is read
//! and thrown away, up to [`DRAIN_LIMIT_BYTES`] and [`DRAIN_DEADLINE`], then the 413 goes out on a
//! connection that stays usable. Bodies larger than that are refused at once and the connection
//! is closed, since reading them would cost more than a client's confusion.

use super::MAX_BODY_BYTES;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt;
use std::time::Duration;

/// The route whose bodies are not read here: uploads stream.
const UPLOAD_PATH: &str = "/api/v4/files";

/// The most an oversized body is read (and discarded) to answer it cleanly.
pub const DRAIN_LIMIT_BYTES: u64 = 64 << 20;
/// How long reading an oversized body's excess may take.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "api.context.request_body_too_large.app_error",
        format!("The request body is larger than {limit} bytes."),
    )
}

/// The most of a request's body kept: [`MAX_BODY_BYTES`], except for a profile picture upload
/// (`POST /users/{id}/image`), which may be a whole photo.
fn limit_of(method: &axum::http::Method, path: &str) -> usize {
    let picture = method == axum::http::Method::POST
        && path
            .strip_prefix("/api/v4/users/")
            .and_then(|rest| rest.strip_suffix("/image"))
            .is_some_and(|user| !user.is_empty() && !user.contains('/'));
    if picture {
        super::profile_images::MAX_UPLOAD_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// What reading a body came to.
enum Read {
    Whole(bytes::Bytes),
    /// Longer than the limit; the excess was read and discarded (or the drain gave up).
    TooLarge {
        drained: bool,
    },
    Broken(String),
}

async fn read(body: Body, limit: usize) -> Read {
    let mut body = body;
    let mut kept = BytesMut::new();
    let mut seen: u64 = 0;
    loop {
        match body.frame().await {
            None => return Read::Whole(kept.freeze()),
            Some(Err(error)) => return Read::Broken(error.to_string()),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                seen += data.len() as u64;
                if seen > limit as u64 {
                    return Read::TooLarge {
                        drained: drain(body, seen).await,
                    };
                }
                kept.extend_from_slice(&data);
            }
        }
    }
}

/// Reads and drops the rest of a body; true when it ended within the limits.
pub(crate) async fn drain(mut body: Body, mut seen: u64) -> bool {
    let discard = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                if seen > DRAIN_LIMIT_BYTES {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_DEADLINE, discard)
        .await
        .unwrap_or(false)
}

pub async fn limit_body(request: Request, next: Next) -> Response {
    // File uploads stream their bodies under their own limit (`MaxFileSize`, `files`).
    if request.method() == axum::http::Method::POST && request.uri().path() == UPLOAD_PATH {
        return next.run(request).await;
    }
    let declared = declared_length(&request);
    if declared == Some(0) {
        return next.run(request).await;
    }
    let limit = limit_of(request.method(), request.uri().path());
    if declared.is_some_and(|length| length > DRAIN_LIMIT_BYTES) {
        return closing(too_large(limit));
    }
    let (parts, body) = request.into_parts();
    match read(body, limit).await {
        Read::Whole(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Read::TooLarge { drained: true } => too_large(limit).into_response(),
        Read::TooLarge { drained: false } => closing(too_large(limit)),
        Read::Broken(message) => closing(ApiError::bad_request(
            "api.context.invalid_body_param.app_error",
            format!("The request body could not be read: {message}"),
        )),
    }
}
