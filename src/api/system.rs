//! System endpoints: ping, the client configuration and license (in
//! [`super::client_config`]), the plugin list, and Prometheus metrics.

use super::{ok, AppState, Params};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/system/ping", get(ping))
        .route(
            "/config/client",
            get(super::client_config::get_client_config),
        )
        .route(
            "/license/client",
            get(super::client_config::get_client_license),
        )
        .route("/plugins/webapp", get(webapp_plugins))
}

/// `GET /system/ping`: `{"status":"OK"}`. With `get_server_status=true` also the replica's
/// health and the mobile version fields; with a `device_id`, `CanReceiveNotifications` is
/// "false" because confab sends no push notifications.
async fn ping(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    let mut body = json!({"status": "OK", "ActiveSearchBackend": "none"});
    if params.bool("get_server_status") {
        let database = match app.engine.applied_index() {
            Ok(_) => "OK",
            Err(_) => "UNHEALTHY",
        };
        body["database_status"] = Value::from(database);
        for field in [
            "AndroidLatestVersion",
            "AndroidMinVersion",
            "IosLatestVersion",
            "IosMinVersion",
        ] {
            body[field] = Value::from("");
        }
    }
    if params.get("device_id").is_some() {
        body["CanReceiveNotifications"] = Value::from("false");
    }
    ok(body)
}

/// `GET /plugins/webapp`: confab runs no plugins, so the list of web-app plugins is empty.
async fn webapp_plugins() -> Response {
    ok(Value::Array(Vec::new()))
}

/// Prometheus text: request counts and latency per route and status (recorded by the HTTP
/// layer), WebSocket and Raft figures, and RocksDB's properties (data size, compactions).
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
