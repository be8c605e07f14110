//! An integration endpoint on loopback (an outgoing webhook's callback URL or a slash command's
//! URL): it records every request (method, headers, form or query fields, JSON body) and
//! answers with the reply the test set, after failing the first `fail_first` requests with a
//! 500. While held ([`HookReceiver::hold`]) it records each request at once and answers only
//! on [`HookReceiver::release`]: an endpoint as slow as the test wants. Same pattern as
//! `push_proxy.rs`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub headers: HeaderMap,
    /// Form or query fields, or the JSON body's fields, as strings.
    pub fields: Map<String, Value>,
    pub content_type: String,
}

impl Received {
    pub fn field(&self, name: &str) -> String {
        match self.fields.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

struct Reply {
    content_type: String,
    body: String,
}

struct Shared {
    recorded: Mutex<Recorded>,
    /// `true` while requests are held.
    held: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Recorded {
    requests: Vec<Received>,
    reply: Option<Reply>,
    fail_first: usize,
    failures: usize,
}

pub struct HookReceiver {
    /// `http://127.0.0.1:port`.
    pub url: String,
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(state): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut fields = Map::new();
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) {
            fields = map;
        }
    } else {
        let source: Vec<u8> = if method == Method::GET {
            query.unwrap_or_default().into_bytes()
        } else {
            body.to_vec()
        };
        for (name, value) in form_urlencoded::parse(&source) {
            fields.insert(name.into_owned(), Value::String(value.into_owned()));
        }
    }
    state.recorded.lock().requests.push(Received {
        method: method.to_string(),
        headers,
        fields,
        content_type,
    });
    let mut held = state.held.subscribe();
    let _ = held.wait_for(|held| !*held).await;
    let mut recorded = state.recorded.lock();
    if recorded.failures < recorded.fail_first {
        recorded.failures += 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response();
    }
    match &recorded.reply {
        Some(reply) => (
            StatusCode::OK,
            [("content-type", reply.content_type.clone())],
            reply.body.clone(),
        )
            .into_response(),
        None => StatusCode::OK.into_response(),
    }
}

impl HookReceiver {
    pub async fn start() -> HookReceiver {
        let state = Arc::new(Shared {
            recorded: Mutex::new(Recorded::default()),
            held: tokio::sync::watch::channel(false).0,
        });
        let app = Router::new()
            .route("/{*path}", any(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind hook receiver");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("receiver address")
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HookReceiver { url, state, task }
    }

    /// Answer every request with this JSON from now on.
    pub fn reply_json(&self, body: Value) {
        self.state.recorded.lock().reply = Some(Reply {
            content_type: "application/json".into(),
            body: body.to_string(),
        });
    }

    /// Answer every request with this plain text from now on.
    pub fn reply_text(&self, body: &str) {
        self.state.recorded.lock().reply = Some(Reply {
            content_type: "text/plain".into(),
            body: body.to_string(),
        });
    }

    /// Holds every request from now on (recorded, unanswered) until [`HookReceiver::release`].
    pub fn hold(&self) {
        self.state.held.send_replace(true);
    }

    /// Answers the held requests and every later one at once.
    pub fn release(&self) {
        self.state.held.send_replace(false);
    }

    /// Fail the next `count` requests with a 500.
    pub fn fail_first(&self, count: usize) {
        let mut recorded = self.state.recorded.lock();
        recorded.fail_first = count;
        recorded.failures = 0;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.recorded.lock().requests.clone()
    }

    /// Waits until at least `count` requests arrived (panics after `timeout`).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "hook receiver got {} requests, expected {count}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
