//! System endpoints: ping and Prometheus metrics.

use super::{ok, AppState};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/system/ping", get(ping))
}

async fn ping() -> Response {
    ok(json!({"status": "OK", "ActiveSearchBackend": "none"}))
}

/// Prometheus text: request counts and latency per route and status (recorded by the HTTP
/// layer), WebSocket and Raft figures, and RocksDB's own statistics.
pub async fn metrics(State(app): State<AppState>) -> Response {
    let mut text = crate::metrics::render();
    let gauges = app.gauges();
    for (name, help, value) in gauges {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
