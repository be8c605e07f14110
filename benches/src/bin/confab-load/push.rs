//! The push proxy the servers under test notify: a small hyper server on loopback answering
//! Mattermost's proxy protocol (`POST /api/v1/send_push` → `{"status":"OK"}`, `POST
//! /api/v1/ack`), which notes when each push arrived and for which post and device. `fanout`
//! matches the arrivals against the posts it committed (`post_id` → the instant its POST was
//! answered) and the devices it expected for each, so every push is accounted for: received,
//! missing, duplicated or unexpected.

use crate::report;
use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

/// A push is a few KiB; anything bigger is a broken sender.
const MAX_PUSH_BODY: usize = 1 << 20;

/// The platform part of the device ids the tool gives its offline users' sessions.
pub const DEVICE_PLATFORM: &str = "android_rn-v2";

/// The token part of user `u`'s device id: stable across runs, so re-attaching is a no-op.
pub fn device_token(user: u32) -> String {
    format!("confab-load-u{user}")
}

/// The session device id of user `u` (`<platform>:<token>`, as the mobile app sends it).
pub fn device_id(user: u32) -> String {
    format!("{DEVICE_PLATFORM}:{}", device_token(user))
}

/// The user index in a push's `device_id` (the server sends the token part; a full
/// `<platform>:<token>` is read too).
pub fn user_of_device(device_id: &str) -> Option<u32> {
    let token = device_id.rsplit_once(':').map_or(device_id, |(_, t)| t);
    token.strip_prefix("confab-load-u")?.parse().ok()
}

/// The fields of Mattermost's `PushNotification` the tool reads.
#[derive(Deserialize)]
struct Push {
    #[serde(default)]
    post_id: String,
    #[serde(default)]
    device_id: String,
    #[serde(default, rename = "type")]
    kind: String,
}

/// One push as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub at: Instant,
    /// The user index of its device, `None` for a device the tool never attached.
    pub user: Option<u32>,
}

/// Everything the proxy received.
#[derive(Default)]
pub struct Sink {
    /// `message` pushes by post id.
    arrivals: Mutex<HashMap<String, Vec<Arrival>>>,
    /// `message` pushes so far.
    messages: AtomicU64,
    /// Pushes of other kinds (`clear`, `update_badge`, …) and unreadable bodies.
    other: AtomicU64,
    unreadable: AtomicU64,
    acks: AtomicU64,
}

impl Sink {
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    pub fn other(&self) -> u64 {
        self.other.load(Ordering::Relaxed)
    }

    pub fn unreadable(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }

    pub fn acks(&self) -> u64 {
        self.acks.load(Ordering::Relaxed)
    }

    fn note(&self, body: &[u8]) {
        let at = Instant::now();
        let push: Push = match serde_json::from_slice(body) {
            Ok(push) => push,
            Err(_) => {
                self.unreadable.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if push.kind != "message" || push.post_id.is_empty() {
            self.other.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let arrival = Arrival {
            at,
            user: user_of_device(&push.device_id),
        };
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(push.post_id)
            .or_default()
            .push(arrival);
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes every arrival noted so far, by post id.
    pub fn take(&self) -> HashMap<String, Vec<Arrival>> {
        std::mem::take(&mut *self.arrivals.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The running proxy: its address (what the servers are told) and what it received.
pub struct PushProxy {
    pub addr: SocketAddr,
    pub sink: Arc<Sink>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PushProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `listen` (port 0: any free port) and serves until dropped.
pub async fn start(listen: SocketAddr) -> anyhow::Result<PushProxy> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the push proxy on {listen}"))?;
    let addr = listener.local_addr()?;
    let sink = Arc::new(Sink::default());
    let task = tokio::spawn(serve(listener, sink.clone()));
    Ok(PushProxy { addr, sink, task })
}

async fn serve(listener: TcpListener, sink: Arc<Sink>) {
    crate::endpoint::serve(listener, "push proxy", move |req| {
        let sink = sink.clone();
        async move { route(req, &sink).await }
    })
    .await
}

async fn route(req: Request<Incoming>, sink: &Sink) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if req.method() != Method::POST {
        return answer(
            StatusCode::NOT_FOUND,
            r#"{"status":"FAIL","error":"not found"}"#,
        );
    }
    let body = match Limited::new(req.into_body(), MAX_PUSH_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return answer(StatusCode::BAD_REQUEST, r#"{"status":"FAIL"}"#),
    };
    match path.as_str() {
        "/api/v1/send_push" => {
            sink.note(&body);
            answer(StatusCode::OK, r#"{"status":"OK"}"#)
        }
        "/api/v1/ack" => {
            sink.acks.fetch_add(1, Ordering::Relaxed);
            answer(StatusCode::OK, r#"{"status":"OK"}"#)
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            r#"{"status":"FAIL","error":"not found"}"#,
        ),
    }
}

fn answer(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A committed post that should (or should not) cause pushes.
pub struct Expectation<'a> {
    pub post_id: &'a str,
    /// When its POST was answered.
    pub committed: Instant,
    /// The users whose devices should be pushed (empty: no push expected).
    pub devices: &'a HashSet<u32>,
}

/// The push accounting of one measured window.
pub struct PushTally {
    /// Commit → arrival of each expected push (µs).
    pub each: Histogram<u64>,
    /// Commit → arrival of the last push of each post whose pushes all arrived (µs).
    pub last: Histogram<u64>,
    pub expected: u64,
    pub received: u64,
    pub missing: u64,
    pub duplicated: u64,
    /// Pushes to a device not expected for that post (the author, a user with a socket, a
    /// post without @channel, a device the tool never attached).
    pub unexpected: u64,
    /// Pushes that arrived before their POST was answered (latency recorded as 0).
    pub before_answer: u64,
    /// Posts expecting pushes, and those of them with some push missing.
    pub posts: u64,
    pub posts_incomplete: u64,
    /// Pushes of posts from earlier windows (late), and of posts the tool never made.
    pub late: u64,
    pub unknown: u64,
}

impl PushTally {
    pub fn new() -> PushTally {
        PushTally {
            each: report::new_histogram(),
            last: report::new_histogram(),
            expected: 0,
            received: 0,
            missing: 0,
            duplicated: 0,
            unexpected: 0,
            before_answer: 0,
            posts: 0,
            posts_incomplete: 0,
            late: 0,
            unknown: 0,
        }
    }
}

/// Matches `arrivals` (all taken from the sink) against the window's posts. Arrivals of posts
/// in `earlier` (previous windows, warm-up) count as late; of posts nobody made, as unknown.
pub fn tally(
    mut arrivals: HashMap<String, Vec<Arrival>>,
    posts: &[Expectation<'_>],
    earlier: &HashSet<String>,
) -> PushTally {
    let mut t = PushTally::new();
    for post in posts {
        let got = arrivals.remove(post.post_id).unwrap_or_default();
        t.expected += post.devices.len() as u64;
        if !post.devices.is_empty() {
            t.posts += 1;
        }
        let mut seen: HashSet<u32> = HashSet::new();
        let mut last: Option<Instant> = None;
        for arrival in got {
            match arrival.user {
                Some(user) if post.devices.contains(&user) => {
                    if !seen.insert(user) {
                        t.duplicated += 1;
                        continue;
                    }
                    t.received += 1;
                    let micros = match arrival.at.checked_duration_since(post.committed) {
                        Some(d) => d.as_micros() as u64,
                        None => {
                            t.before_answer += 1;
                            0
                        }
                    };
                    report::record(&mut t.each, micros);
                    last = Some(last.map_or(arrival.at, |l| l.max(arrival.at)));
                }
                _ => t.unexpected += 1,
            }
        }
        let missing = post.devices.len() as u64 - seen.len() as u64;
        t.missing += missing;
        if missing > 0 {
            t.posts_incomplete += 1;
        } else if let Some(last) = last {
            let micros = last
                .checked_duration_since(post.committed)
                .map_or(0, |d| d.as_micros() as u64);
            report::record(&mut t.last, micros);
        }
    }
    for (post_id, got) in arrivals {
        if earlier.contains(&post_id) {
            t.late += got.len() as u64;
        } else {
            t.unknown += got.len() as u64;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn device_ids_round_trip() {
        assert_eq!(device_id(42), "android_rn-v2:confab-load-u42");
        assert_eq!(user_of_device(&device_token(42)), Some(42));
        assert_eq!(user_of_device(&device_id(7)), Some(7));
        assert_eq!(user_of_device("someone-else"), None);
    }

    #[test]
    fn tally_accounts_for_every_push() {
        let t0 = Instant::now();
        let devices: HashSet<u32> = [1, 2, 3].into_iter().collect();
        let none = HashSet::new();
        let arrive = |ms: u64, user: Option<u32>| Arrival {
            at: t0 + Duration::from_millis(ms),
            user,
        };
        let mut arrivals = HashMap::new();
        // Post a: all three, one twice, one for the author (unexpected).
        arrivals.insert(
            "a".to_string(),
            vec![
                arrive(10, Some(1)),
                arrive(20, Some(2)),
                arrive(30, Some(3)),
                arrive(40, Some(2)),
                arrive(50, Some(9)),
            ],
        );
        // Post b: one of three missing.
        arrivals.insert(
            "b".to_string(),
            vec![arrive(5, Some(1)), arrive(6, Some(3))],
        );
        // Post c expects nothing but got a push; "old" is from the warm-up; "zz" unknown.
        arrivals.insert("c".to_string(), vec![arrive(1, Some(1))]);
        arrivals.insert("old".to_string(), vec![arrive(1, Some(1))]);
        arrivals.insert("zz".to_string(), vec![arrive(1, None)]);
        let posts = [
            Expectation {
                post_id: "a",
                committed: t0,
                devices: &devices,
            },
            Expectation {
                post_id: "b",
                committed: t0,
                devices: &devices,
            },
            Expectation {
                post_id: "c",
                committed: t0,
                devices: &none,
            },
        ];
        let earlier: HashSet<String> = ["old".to_string()].into_iter().collect();
        let t = tally(arrivals, &posts, &earlier);
        assert_eq!(t.expected, 6);
        assert_eq!(t.received, 5);
        assert_eq!(t.missing, 1);
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.unexpected, 2);
        assert_eq!((t.posts, t.posts_incomplete), (2, 1));
        assert_eq!((t.late, t.unknown), (1, 1));
        assert_eq!(t.each.len(), 5);
        assert_eq!(t.last.len(), 1);
        assert!(t.last.max() >= 29_000 && t.last.max() <= 31_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn proxy_answers_ok_and_notes_pushes() {
        let proxy = start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = reqwest::Client::new();
        let base = format!("http://{}", proxy.addr);
        let push = serde_json::json!({
            "type": "message", "post_id": "p1", "device_id": device_token(3),
            "platform": DEVICE_PLATFORM, "server_id": "s", "ack_id": "a",
        });
        let answer: serde_json::Value = client
            .post(format!("{base}/api/v1/send_push"))
            .json(&push)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "OK");
        let clear = serde_json::json!({"type": "clear", "device_id": device_token(3)});
        client
            .post(format!("{base}/api/v1/send_push"))
            .json(&clear)
            .send()
            .await
            .unwrap();
        let ack = client
            .post(format!("{base}/api/v1/ack"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(ack.status(), 200);
        assert_eq!(
            (proxy.sink.messages(), proxy.sink.other(), proxy.sink.acks()),
            (1, 1, 1)
        );
        let arrivals = proxy.sink.take();
        assert_eq!(arrivals["p1"].len(), 1);
        assert_eq!(arrivals["p1"][0].user, Some(3));
        assert!(proxy.sink.take().is_empty());
    }
}
