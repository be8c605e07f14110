//! The slow outgoing-webhook endpoint of `hooks` (issue 19): a small hyper server on loopback
//! that takes Mattermost's outgoing-webhook call (`POST`, JSON or form body), notes it, and
//! answers `200` with an empty body (so no reply post is made) only after `--slow-ms`.
//!
//! It counts every call, the calls in flight and their peak, calls for a post already called
//! (a retry or a second leader calling a batch again), and, for `fanout` posts (whose text
//! carries the scheduled send time), the time from the post's scheduled send to the call.

use crate::report;
use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// An outgoing-webhook call is a few hundred bytes; anything bigger is a broken sender.
const MAX_CALL_BODY: usize = 1 << 20;

/// What the endpoint saw since the last [`Sink::window`].
#[derive(Debug, Clone)]
pub struct Window {
    /// Calls received (counted on arrival, before the wait).
    pub calls: u64,
    /// Calls for a post id this endpoint had already been called for (ever).
    pub repeated: u64,
    /// Bodies without a readable `post_id`.
    pub unreadable: u64,
    /// Most calls in flight at once.
    pub peak_in_flight: u64,
    /// A `fanout` post's scheduled send → its call's arrival (µs).
    pub lag: Histogram<u64>,
}

/// Everything the endpoint received.
pub struct Sink {
    calls: AtomicU64,
    repeated: AtomicU64,
    unreadable: AtomicU64,
    in_flight: AtomicU64,
    peak: AtomicU64,
    answered: AtomicU64,
    seen: Mutex<HashSet<String>>,
    lag: Mutex<Histogram<u64>>,
}

impl Sink {
    fn new() -> Sink {
        Sink {
            calls: AtomicU64::new(0),
            repeated: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            seen: Mutex::new(HashSet::new()),
            lag: Mutex::new(report::new_histogram()),
        }
    }

    /// Calls being held right now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Calls answered so far (all windows).
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Takes the window's figures and starts a new one (the peak restarts from the calls in
    /// flight now).
    pub fn window(&self) -> Window {
        let now = self.in_flight();
        Window {
            calls: self.calls.swap(0, Ordering::Relaxed),
            repeated: self.repeated.swap(0, Ordering::Relaxed),
            unreadable: self.unreadable.swap(0, Ordering::Relaxed),
            peak_in_flight: self.peak.swap(now, Ordering::Relaxed),
            lag: std::mem::replace(
                &mut *self.lag.lock().unwrap_or_else(|e| e.into_inner()),
                report::new_histogram(),
            ),
        }
    }

    /// Notes a call that just arrived (body read); the caller then holds it.
    fn arrive(&self, body: &[u8]) {
        let arrived_ns = crate::proto::unix_ns();
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let Some((post_id, text)) = read_call(body) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(post_id)
        {
            self.repeated.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(scheduled_ns) = scheduled_ns(&text) {
            report::record(
                &mut self.lag.lock().unwrap_or_else(|e| e.into_inner()),
                arrived_ns.saturating_sub(scheduled_ns) / 1000,
            );
        }
    }

    fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `post_id` and `text` of a call: a JSON body (`content_type: application/json`) or a
/// form (Mattermost's default).
pub fn read_call(body: &[u8]) -> Option<(String, String)> {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let post_id = value["post_id"].as_str()?.to_string();
        let text = value["text"].as_str().unwrap_or("").to_string();
        return Some((post_id, text));
    }
    let (mut post_id, mut text) = (None, String::new());
    for (name, value) in reqwest::Url::parse("http://x/")
        .ok()?
        .join(&format!("?{}", std::str::from_utf8(body).ok()?))
        .ok()?
        .query_pairs()
    {
        match name.as_ref() {
            "post_id" => post_id = Some(value.into_owned()),
            "text" => text = value.into_owned(),
            _ => {}
        }
    }
    Some((post_id.filter(|p| !p.is_empty())?, text))
}

/// The scheduled send time in a `fanout` post's text (`[@channel ]cl1 <run> <post_no> <ns> …`).
pub fn scheduled_ns(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    if first != "cl1" && (first != "@channel" || words.next()? != "cl1") {
        return None;
    }
    words.nth(2)?.parse().ok()
}

/// The running endpoint: its address (the hook's callback) and what it received.
pub struct SlowHook {
    pub addr: SocketAddr,
    pub sink: Arc<Sink>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlowHook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlowHook {
    /// Waits until no call is held, at most `limit`; whether none is.
    pub async fn idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.sink.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.sink.in_flight() == 0
    }
}

/// Binds `listen` (port 0: any free port) and answers every call after `delay`, until dropped.
pub async fn start(listen: SocketAddr, delay: Duration) -> anyhow::Result<SlowHook> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the slow webhook endpoint on {listen}"))?;
    let addr = listener.local_addr()?;
    let sink = Arc::new(Sink::new());
    let task = tokio::spawn(serve(listener, sink.clone(), delay));
    Ok(SlowHook { addr, sink, task })
}

async fn serve(listener: TcpListener, sink: Arc<Sink>, delay: Duration) {
    crate::endpoint::serve(listener, "slow webhook endpoint", move |req| {
        let sink = sink.clone();
        async move { route(req, &sink, delay).await }
    })
    .await
}

async fn route(req: Request<Incoming>, sink: &Sink, delay: Duration) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return answer(StatusCode::NOT_FOUND);
    }
    let body = match Limited::new(req.into_body(), MAX_CALL_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return answer(StatusCode::BAD_REQUEST),
    };
    sink.arrive(&body);
    tokio::time::sleep(delay).await;
    sink.leave();
    answer(StatusCode::OK)
}

/// An empty answer: the dispatcher posts no reply for it.
fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn reads_json_and_form_calls() {
        let json =
            br#"{"post_id":"p1","text":"cl1 0000abcd 7 1700000000000000000 xx","token":"t"}"#;
        assert_eq!(
            read_call(json),
            Some(("p1".into(), "cl1 0000abcd 7 1700000000000000000 xx".into()))
        );
        let form = b"token=t&post_id=p2&text=cl1+0000abcd+8+42+xx&trigger_word=cl1";
        let (id, text) = read_call(form).unwrap();
        assert_eq!((id.as_str(), scheduled_ns(&text)), ("p2", Some(42)));
        assert_eq!(read_call(b"token=t&text=x"), None);
        assert_eq!(read_call(br#"{"text":"x"}"#), None);
        assert_eq!(scheduled_ns("hello 1 2 3"), None);
        assert_eq!(scheduled_ns("cl1 run 3"), None);
        assert_eq!(scheduled_ns("@channel cl1 0000abcd 9 77 xx"), Some(77));
        assert_eq!(scheduled_ns("@channel hello 0000abcd 9 77"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_each_call_and_counts_the_peak() {
        let hook = start("127.0.0.1:0".parse().unwrap(), Duration::from_millis(300))
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let url = format!("http://{}/hook", hook.addr);
        let began = Instant::now();
        let calls = (0..3).map(|i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let post = if i == 2 {
                    "p0".to_string()
                } else {
                    format!("p{i}")
                };
                let body = serde_json::json!({"post_id": post, "text": "cl1 00000001 1 1 x"});
                let r = client.post(&url).json(&body).send().await.unwrap();
                (r.status(), r.bytes().await.unwrap().len())
            }
        });
        for (status, len) in futures_util::future::join_all(calls).await {
            assert_eq!((status.as_u16(), len), (200, 0));
        }
        assert!(began.elapsed() >= Duration::from_millis(300));
        assert!(hook.idle(Duration::from_secs(1)).await);
        let w = hook.sink.window();
        assert_eq!((w.calls, w.repeated, w.unreadable), (3, 1, 0));
        assert_eq!(w.peak_in_flight, 3);
        assert_eq!(w.lag.len(), 3);
        assert_eq!(hook.sink.answered(), 3);
        let again = hook.sink.window();
        assert_eq!((again.calls, again.peak_in_flight), (0, 0));
    }
}
