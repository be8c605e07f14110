//! The browser client (`web/`), embedded in the binary and served at `/`.
//!
//! `make build`/`make test` bundle `web/` into `web/dist` before compiling, and `rust-embed`
//! puts every file of it into the release binary, so one file is the whole deployment. A
//! `cargo build` without the bundle still works (`allow_missing`) and serves a page saying the
//! web client was not built.
//!
//! Routing, after `/api/*` and `/hooks/*` (which the API router owns): a path naming a bundled
//! file serves that file; any other GET is a client route (`/{team}/channels/{name}`,
//! `/{team}/pl/{post_id}`, `/login`…) and gets `index.html`, whose script then reads the path.
//! Assets under `/static/` carry a content hash in their names, so they are cached for a year;
//! `index.html` is revalidated every time (by its ETag) so a new release is picked up at once.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/dist"]
#[allow_missing = true]
struct Bundle;

const NOT_BUILT: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>confab</title>\
<link rel=\"icon\" href=\"data:,\"></head><body><h1>confab</h1><p>The web client was not built \
into this binary (run <code>make build</code>). Mattermost mobile and desktop apps connect \
with this address.</p></body></html>";

/// Serves a bundled file or, for any other path, `index.html`. `None` for methods other than
/// GET/HEAD, which the caller answers as the API's 404.
pub fn serve(method: &Method, uri: &Uri, request_headers: &HeaderMap) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = uri.path().trim_start_matches('/');
    let (name, file) = match Bundle::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (path, file),
        None => match Bundle::get("index.html") {
            Some(file) => ("index.html", file),
            None => return Some(not_built()),
        },
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let cache = if name.starts_with("static/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

fn not_built() -> Response {
    let mut response = NOT_BUILT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
