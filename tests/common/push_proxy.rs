//! A push-proxy receiver on loopback, as the Mattermost push proxy speaks: it records every
//! `POST /api/v1/send_push` and `/api/v1/ack` body and answers `{"status":"OK"}`, or
//! `{"status":"REMOVE"}` for device tokens the test marked removed. An optional delay per push
//! lets tests hold dispatch in flight (to kill a leader mid-batch). Pattern for other fake
//! servers the tests start (mail): bind 127.0.0.1:0, record, expose `wait_for`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Recorded {
    pushes: Vec<Value>,
    acks: Vec<Value>,
    removed: HashSet<String>,
    delay: Duration,
}

pub struct PushProxy {
    /// `http://127.0.0.1:port`, for `--push-notification-server`.
    pub url: String,
    state: Arc<Mutex<Recorded>>,
    task: tokio::task::JoinHandle<()>,
}

async fn send_push(
    State(state): State<Arc<Mutex<Recorded>>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let delay = state.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut recorded = state.lock();
    let device = body["device_id"].as_str().unwrap_or_default().to_string();
    recorded.pushes.push(body);
    if recorded.removed.contains(&device) {
        Json(json!({"status": "REMOVE"}))
    } else {
        Json(json!({"status": "OK"}))
    }
}

async fn ack(State(state): State<Arc<Mutex<Recorded>>>, Json(body): Json<Value>) -> Json<Value> {
    state.lock().acks.push(body);
    Json(json!({"status": "OK"}))
}

impl PushProxy {
    pub async fn start() -> PushProxy {
        let state = Arc::new(Mutex::new(Recorded::default()));
        let app = Router::new()
            .route("/api/v1/send_push", post(send_push))
            .route("/api/v1/ack", post(ack))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind push proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PushProxy { url, state, task }
    }

    /// Every push received so far, in arrival order.
    pub fn pushes(&self) -> Vec<Value> {
        self.state.lock().pushes.clone()
    }

    /// The pushes sent to one device token.
    pub fn pushes_to(&self, device_token: &str) -> Vec<Value> {
        self.pushes()
            .into_iter()
            .filter(|p| p["device_id"] == device_token)
            .collect()
    }

    pub fn acks(&self) -> Vec<Value> {
        self.state.lock().acks.clone()
    }

    /// Answer `REMOVE` for this device token from now on.
    pub fn remove_device(&self, device_token: &str) {
        self.state.lock().removed.insert(device_token.to_string());
    }

    /// Hold each push this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    /// Waits until at least `count` pushes arrived (panics after `timeout`).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let pushes = self.pushes();
            if pushes.len() >= count {
                return pushes;
            }
            assert!(
                Instant::now() < deadline,
                "push proxy got {} pushes, expected {count}",
                pushes.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PushProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
