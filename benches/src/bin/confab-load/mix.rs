//! `mix`: Mattermost's load-test-ng user behaviour. Each simulated user holds a WebSocket and,
//! after an idle time of 1–39 s, picks an action by load-test-ng's weights: switch channel (view
//! and posts around the unread mark), scroll, unread check, create a post (18% replies), open a
//! DM, view the threads list, mark a thread read, open a permalink, view a thread, reconnect
//! the socket, react, edit, save and delete drafts, search users and posts ([`finding`]). Posts
//! are 6–18 words drawn by a Zipf law, so searches find them. Every request is timed per
//! action; errors are transport failures, timeouts and 5xx, as load-test-ng counts them.
//! With `--app-calls` (the default) each user also makes the official apps' own calls — entry
//! sync, status polling, WebSocket pings, preference changes — see [`app`].

mod app;
mod finding;

use crate::api::{Api, CallError};
use crate::proto::{ActionTotals, ConnSpec, Layout};
use crate::report;
use crate::wsctl::SocketControl;
use hdrhistogram::Histogram;
use rand::Rng;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Behaviour of simulated users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixSpec {
    pub nodes: Vec<String>,
    pub team: String,
    /// Channel ids in layout order.
    pub channels: Vec<String>,
    pub layout: Layout,
    pub idle_min_ms: u64,
    pub idle_max_ms: u64,
    /// Users to open direct channels with.
    pub dm_peers: Vec<String>,
    /// Usernames searched for and typed after `from:`.
    pub usernames: Vec<String>,
    /// Channel names typed after `in:`.
    pub channel_names: Vec<String>,
    /// Also make the apps' periodic and login calls ([`app`]); off for an A/B comparison.
    pub app_calls: bool,
}

/// load-test-ng's action weights.
pub const WEIGHTS: &[(&str, f64)] = &[
    ("switch_channel", 6.52),
    ("scroll_channel", 1.99),
    ("delete_draft", 1.41),
    ("unread_check", 1.0),
    ("create_post", 1.0),
    ("open_direct", 0.98),
    ("view_global_threads", 0.60),
    ("upsert_draft", 0.50),
    ("update_thread_read", 0.32),
    ("click_permalink", 0.30),
    ("view_thread", 0.28),
    ("reconnect_websocket", 0.14),
    ("add_reaction", 0.13),
    ("edit_post", 0.04),
    ("search_users", 0.03),
    ("search_posts", 0.02),
];

fn pick_action(rng: &mut impl Rng) -> &'static str {
    let total: f64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0.0..total);
    for (name, weight) in WEIGHTS {
        if x < *weight {
            return name;
        }
        x -= weight;
    }
    WEIGHTS[0].0
}

#[derive(Default)]
struct ActionStats {
    hist: Option<Histogram<u64>>,
    count: u64,
    errors: u64,
    rejected: u64,
    /// Reported per action but not among the requests the thresholds judge (pings).
    apart: bool,
}

/// Request timings of this worker's users.
pub struct MixStats {
    per_action: Mutex<BTreeMap<&'static str, ActionStats>>,
    interval: Mutex<Histogram<u64>>,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl MixStats {
    fn new() -> MixStats {
        MixStats {
            per_action: Mutex::new(BTreeMap::new()),
            interval: Mutex::new(report::new_histogram()),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn note(&self, action: &'static str, micros: u64, outcome: Outcome) {
        let error = outcome == Outcome::Error;
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        report::record(
            &mut self.interval.lock().unwrap_or_else(|e| e.into_inner()),
            micros,
        );
        let mut per_action = self.per_action.lock().unwrap_or_else(|e| e.into_inner());
        let stats = per_action.entry(action).or_default();
        report::record(stats.hist.get_or_insert_with(report::new_histogram), micros);
        stats.count += 1;
        stats.errors += error as u64;
        stats.rejected += (outcome == Outcome::Rejected) as u64;
    }

    /// A timing reported with its action only: not in the step's requests, errors and latency
    /// (WebSocket pings, which are not HTTP requests).
    fn note_apart(&self, action: &'static str, micros: u64, outcome: Outcome) {
        let mut per_action = self.per_action.lock().unwrap_or_else(|e| e.into_inner());
        let stats = per_action.entry(action).or_default();
        stats.apart = true;
        report::record(stats.hist.get_or_insert_with(report::new_histogram), micros);
        stats.count += 1;
        stats.errors += (outcome == Outcome::Error) as u64;
        stats.rejected += (outcome == Outcome::Rejected) as u64;
    }

    fn count_only(&self, action: &'static str) {
        let mut per_action = self.per_action.lock().unwrap_or_else(|e| e.into_inner());
        per_action.entry(action).or_default().count += 1;
    }

    /// Totals per action since the previous call, and the errors of the requests the
    /// thresholds judge.
    pub fn take_totals(&self) -> (Vec<ActionTotals>, u64) {
        let per_action =
            std::mem::take(&mut *self.per_action.lock().unwrap_or_else(|e| e.into_inner()));
        let mut errors = 0;
        let totals = per_action
            .into_iter()
            .map(|(action, stats)| {
                if !stats.apart {
                    errors += stats.errors;
                }
                ActionTotals {
                    action: action.to_string(),
                    hist: report::encode(&stats.hist.unwrap_or_else(report::new_histogram)),
                    count: stats.count,
                    errors: stats.errors,
                    rejected: stats.rejected,
                }
            })
            .collect();
        (totals, errors)
    }

    /// (requests, errors) so far and the latencies since the previous progress line.
    pub fn progress(&self) -> (u64, u64, Option<String>) {
        let interval = std::mem::replace(
            &mut *self.interval.lock().unwrap_or_else(|e| e.into_inner()),
            report::new_histogram(),
        );
        (
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            Some(report::encode(&interval)),
        )
    }
}

/// How a request ended. Errors are what load-test-ng counts (no answer, timeout, 5xx);
/// refusals (4xx) are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Rejected,
    Error,
}

fn outcome_of(e: &CallError) -> Outcome {
    if e.status == 0 || e.status >= 500 {
        Outcome::Error
    } else {
        Outcome::Rejected
    }
}

/// One simulated user.
struct User {
    spec: Arc<MixSpec>,
    api: Api,
    stats: Arc<MixStats>,
    control: Arc<SocketControl>,
    node: String,
    token: String,
    id: String,
    channels: Vec<String>,
    current: usize,
    /// (post id, root id) of the current channel's latest page.
    recent: Vec<(String, String)>,
    mine: Vec<String>,
    threads: Vec<String>,
    /// (channel id, root id or "") of the drafts this user saved, oldest first.
    drafts: Vec<(String, String)>,
    /// The apps' own calls (`MixSpec::app_calls`), from first load on.
    app: Option<app::AppCalls>,
}

impl User {
    async fn call(
        &self,
        action: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<Value> {
        let started = Instant::now();
        let result = self
            .api
            .call(&self.node, method, path, Some(&self.token), body)
            .await;
        let micros = started.elapsed().as_micros() as u64;
        match result {
            Ok((value, _)) => {
                self.stats.note(action, micros, Outcome::Ok);
                Some(value)
            }
            Err(e) => {
                self.stats.note(action, micros, outcome_of(&e));
                None
            }
        }
    }

    fn remember_page(&mut self, page: &Value) {
        if let Some(app) = self.app.as_mut() {
            app.saw_page(page, &self.id);
        }
        let Some(order) = page["order"].as_array() else {
            return;
        };
        self.recent = order
            .iter()
            .filter_map(|id| id.as_str())
            .take(60)
            .map(|id| {
                let root = page["posts"][id]["root_id"].as_str().unwrap_or("");
                (id.to_string(), root.to_string())
            })
            .collect();
    }

    fn some_post(&self, rng: &mut impl Rng) -> Option<(String, String)> {
        (!self.recent.is_empty())
            .then(|| self.recent[rng.random_range(0..self.recent.len())].clone())
    }

    async fn act(&mut self, action: &'static str, rng: &mut rand::rngs::StdRng) {
        match action {
            "switch_channel" => {
                let prev = self.channels[self.current].clone();
                self.current = rng.random_range(0..self.channels.len());
                let channel = self.channels[self.current].clone();
                let body = json!({"channel_id": channel, "prev_channel_id": prev});
                self.call(
                    action,
                    Method::POST,
                    "/channels/members/me/view",
                    Some(&body),
                )
                .await;
                let path = format!(
                    "/users/me/channels/{channel}/posts/unread?limit_before=30&limit_after=30"
                );
                if let Some(page) = self.call(action, Method::GET, &path, None).await {
                    self.remember_page(&page);
                }
            }
            "scroll_channel" => {
                let channel = &self.channels[self.current];
                let before = self
                    .recent
                    .last()
                    .map(|(id, _)| id.clone())
                    .unwrap_or_default();
                let path = format!("/channels/{channel}/posts?before={before}&per_page=30");
                self.call(action, Method::GET, &path, None).await;
            }
            "unread_check" => {
                let path = format!("/users/me/teams/{}/channels/members", self.spec.team);
                self.call(action, Method::GET, &path, None).await;
            }
            "create_post" => {
                let channel = self.channels[self.current].clone();
                let mut body = json!({"channel_id": channel, "message": finding::message(rng)});
                if rng.random_bool(0.18) {
                    if let Some((id, root)) = self.some_post(rng) {
                        body["root_id"] = json!(if root.is_empty() { id } else { root });
                    }
                }
                if let Some(post) = self.call(action, Method::POST, "/posts", Some(&body)).await {
                    if let Some(id) = post["id"].as_str() {
                        self.mine.push(id.to_string());
                        if self.mine.len() > 20 {
                            self.mine.remove(0);
                        }
                    }
                }
            }
            "open_direct" => {
                if self.spec.dm_peers.is_empty() {
                    return;
                }
                let index = rng.random_range(0..self.spec.dm_peers.len());
                let peer = &self.spec.dm_peers[index];
                if *peer == self.id {
                    return;
                }
                let body = json!([self.id, peer]);
                if let Some(channel) = self
                    .call(action, Method::POST, "/channels/direct", Some(&body))
                    .await
                {
                    if let Some(app) = self.app.as_mut() {
                        app.saw_dm(index);
                    }
                    if let Some(id) = channel["id"].as_str() {
                        let path = format!("/channels/{id}/posts?page=0&per_page=30");
                        self.call(action, Method::GET, &path, None).await;
                    }
                }
            }
            "view_global_threads" => {
                let path = format!(
                    "/users/me/teams/{}/threads?per_page=25&extended=false&deleted=false",
                    self.spec.team
                );
                if let Some(list) = self.call(action, Method::GET, &path, None).await {
                    self.threads = list["threads"]
                        .as_array()
                        .map(|threads| {
                            threads
                                .iter()
                                .filter_map(|t| t["id"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                }
            }
            "update_thread_read" => {
                let thread = if self.threads.is_empty() {
                    self.some_post(rng)
                        .map(|(id, root)| if root.is_empty() { id } else { root })
                } else {
                    Some(self.threads[rng.random_range(0..self.threads.len())].clone())
                };
                if let Some(thread) = thread {
                    let path = format!(
                        "/users/me/teams/{}/threads/{thread}/read/{}",
                        self.spec.team,
                        crate::proto::unix_ns() / 1_000_000
                    );
                    self.call(action, Method::PUT, &path, None).await;
                }
            }
            "click_permalink" => {
                if let Some((id, _)) = self.some_post(rng) {
                    self.call(action, Method::GET, &format!("/posts/{id}"), None)
                        .await;
                }
            }
            "view_thread" => {
                if let Some((id, root)) = self.some_post(rng) {
                    let root = if root.is_empty() { id } else { root };
                    self.call(action, Method::GET, &format!("/posts/{root}/thread"), None)
                        .await;
                }
            }
            "reconnect_websocket" => {
                // Not a request: counted, kept out of the latency figures. The app syncs
                // again over REST without waiting for its socket.
                self.control.reconnect.notify_one();
                self.stats.count_only(action);
                if self.app.is_some() {
                    self.entry_sync().await;
                }
            }
            "add_reaction" => {
                if let Some((id, _)) = self.some_post(rng) {
                    let body = json!({"user_id": self.id, "post_id": id, "emoji_name": "thumbsup"});
                    self.call(action, Method::POST, "/reactions", Some(&body))
                        .await;
                }
            }
            "edit_post" => {
                if let Some(id) = self.mine.last().cloned() {
                    let body = json!({"id": id, "message": "edited by the mix"});
                    self.call(
                        action,
                        Method::PUT,
                        &format!("/posts/{id}/patch"),
                        Some(&body),
                    )
                    .await;
                }
            }
            "upsert_draft" => self.upsert_draft(action, rng).await,
            "delete_draft" => self.delete_draft(action, rng).await,
            "search_users" => self.search_users(action, rng).await,
            "search_posts" => self.search_posts(action, rng).await,
            _ => {}
        }
    }
}

/// Starts every user of this worker; returns the stats they fill.
pub fn start(
    spec: MixSpec,
    conns: Vec<ConnSpec>,
    controls: Vec<Arc<SocketControl>>,
    sources: Vec<IpAddr>,
) -> anyhow::Result<Arc<MixStats>> {
    let stats = Arc::new(MixStats::new());
    let spec = Arc::new(spec);
    let apis: Vec<Api> = sources
        .iter()
        .map(|&ip| Api::new(Some(ip)))
        .collect::<anyhow::Result<_>>()?;
    for (i, (conn, control)) in conns.into_iter().zip(controls).enumerate() {
        let channels: Vec<String> = spec
            .layout
            .channels_of(conn.user)
            .into_iter()
            .filter_map(|c| spec.channels.get(c as usize).cloned())
            .collect();
        if channels.is_empty() {
            continue;
        }
        let user = User {
            spec: spec.clone(),
            api: apis[i % apis.len()].clone(),
            stats: stats.clone(),
            control,
            node: conn.addr.clone(),
            token: conn.token.clone().unwrap_or_default(),
            id: conn.user_id.clone().unwrap_or_default(),
            channels,
            current: 0,
            recent: Vec::new(),
            mine: Vec::new(),
            threads: Vec::new(),
            drafts: Vec::new(),
            app: None,
        };
        tokio::spawn(async move { user.live().await });
    }
    Ok(stats)
}

impl User {
    /// The user's life: first load at a random point of the first idle period (so users
    /// started together spread out), then actions with idle times between them and, with the
    /// app's calls, its timers and pongs in between.
    async fn live(mut self) {
        let mut rng: rand::rngs::StdRng = rand::SeedableRng::from_os_rng();
        let first = rng.random_range(0..self.spec.idle_max_ms.max(1));
        tokio::time::sleep(Duration::from_millis(first)).await;
        if self.spec.app_calls {
            self.first_load(&mut rng).await;
        }
        let mut next_action = tokio::time::Instant::now();
        loop {
            let (at, tick) = match self.app.as_ref().map(app::AppCalls::next_tick) {
                Some((at, tick)) if at < next_action => (at, Some(tick)),
                _ => (next_action, None),
            };
            // A pong arriving before then is recorded at once (its time is stamped by the
            // socket's reader, so waiting here does not change it).
            let pong = tokio::select! {
                _ = tokio::time::sleep_until(at) => None,
                pong = async {
                    match self.app.as_mut() {
                        Some(app) => app.pong().await,
                        None => std::future::pending().await,
                    }
                } => Some(pong),
            };
            if let Some(pong) = pong {
                self.pong_arrived(pong);
                continue;
            }
            match tick {
                Some(tick) => self.tick(tick, &mut rng).await,
                None => {
                    let action = pick_action(&mut rng);
                    self.act(action, &mut rng).await;
                    self.maybe_update_preference(&mut rng).await;
                    let idle = rng.random_range(
                        self.spec.idle_min_ms..=self.spec.idle_max_ms.max(self.spec.idle_min_ms),
                    );
                    next_action = tokio::time::Instant::now() + Duration::from_millis(idle);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_weights() {
        let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(7);
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for _ in 0..100_000 {
            *counts.entry(pick_action(&mut rng)).or_default() += 1;
        }
        let total: f64 = WEIGHTS.iter().map(|(_, w)| w).sum();
        for (name, weight) in WEIGHTS {
            let share = counts[name] as f64 / 100_000.0;
            assert!((share - weight / total).abs() < 0.01, "{name}: {share}");
        }
    }
}
