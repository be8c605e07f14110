//! What the official apps do besides their user's actions (`--app-calls`, on by default), so
//! that `mix`'s supported-users figure includes what a running app costs while its user idles.
//! From mattermost-mobile (`actions/remote/entry/common.ts`, `actions/websocket/index.ts`,
//! `client/websocket/index.ts`) and the web app, as summarised for confab's client work:
//!
//! - first load, and again after each reconnect of the socket: `GET /users/me/preferences` and
//!   `GET /users/me/teams/{tid}/channels/categories` (the mobile app's entry sync; the channel
//!   list is built from the categories);
//! - every 60 s (`STATUS_INTERVAL`) and at first load: `POST /users/status/ids` with the users
//!   the app shows: its direct-message partners and the authors of the channel on screen;
//! - every 30 s and at first load: `{"action":"ping","seq":N}` over the WebSocket. A pong
//!   missing by the next ping makes the app close and reopen its socket, so the tool counts it
//!   as an error and reconnects likewise;
//! - now and then (`PREFERENCE_CHANCE` per action): `PUT /users/me/preferences` with one
//!   preference (a favourite, a display setting, a channel's approximate view time) and the
//!   categories again (a favourite moves a channel between them).
//!
//! Every timer starts at a random phase within its period and each period varies by ±5 %, so
//! users started together do not fire in lockstep. Pings are timed from their write to their
//! pong's arrival and reported as `app_ws_ping`, but kept out of the requests the step's
//! thresholds judge: those are HTTP requests, as load-test-ng measures, and thousands of
//! sub-millisecond pongs would only dilute their mean and p99.

use super::{MixSpec, Outcome, User};
use rand::rngs::StdRng;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The report's names of the app's calls.
pub const GET_PREFERENCES: &str = "app_get_preferences";
pub const GET_CATEGORIES: &str = "app_get_categories";
pub const STATUS_IDS: &str = "app_status_ids";
pub const WS_PING: &str = "app_ws_ping";
/// A ping not sent, or its pong lost, because the socket was closed (count only).
pub const WS_PING_SOCKET_CLOSED: &str = "app_ws_ping_socket_closed";
pub const UPDATE_PREFERENCE: &str = "app_update_preference";

/// The mobile app's `STATUS_INTERVAL`.
const STATUS_PERIOD: Duration = Duration::from_secs(60);
/// The apps' WebSocket ping interval.
const PING_PERIOD: Duration = Duration::from_secs(30);
/// Ids per status poll: DM partners and authors on screen (the app's chunks are 200).
const MAX_STATUS_IDS: usize = 50;
/// Direct-message partners in a user's sidebar at login (the mobile app shows 20 at most by
/// default, `limit_visible_dms_gms`); more join as the user opens DMs.
const SIDEBAR_DMS: usize = 10;
const MAX_DMS: usize = 20;
/// Chance that an action is followed by a preference change. No load-test-ng weight exists
/// for it; 2 % (about one change per user every 15–20 minutes at the default idle times) is
/// an estimate of favourites and settings changes plus hidden DMs shown again.
pub const PREFERENCE_CHANCE: f64 = 0.02;

/// A timer firing every `period` (±5 %), first at a random point of its first period.
#[derive(Debug, Clone, Copy)]
pub struct Periodic {
    period: Duration,
    pub next: tokio::time::Instant,
}

impl Periodic {
    pub fn new(period: Duration, now: tokio::time::Instant, rng: &mut impl Rng) -> Periodic {
        Periodic {
            period,
            next: now + period.mul_f64(rng.random_range(0.0..1.0)),
        }
    }

    /// Schedules the next tick a period after this one; a user who fell behind (a slow action)
    /// fires once now rather than catching up with a burst.
    pub fn advance(&mut self, now: tokio::time::Instant, rng: &mut impl Rng) {
        let step = self.period.mul_f64(rng.random_range(0.95..1.05));
        self.next = (self.next + step).max(now);
    }
}

/// Which periodic call is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Status,
    Ping,
}

/// A ping written and awaiting its pong.
struct PendingPing {
    sent: Instant,
    arrival: oneshot::Receiver<Instant>,
}

/// One user's app state.
pub struct AppCalls {
    status: Periodic,
    ping: Periodic,
    pending: Option<PendingPing>,
    /// Indices into `MixSpec::dm_peers`: the DM partners in the sidebar, oldest first.
    dms: Vec<usize>,
    /// Authors of the latest page of the channel on screen.
    authors: Vec<String>,
}

impl AppCalls {
    /// At first load: a sidebar of DM partners, timers at random phases from now.
    pub fn new(spec: &MixSpec, me: &str, rng: &mut impl Rng) -> AppCalls {
        let now = tokio::time::Instant::now();
        let peers = spec.dm_peers.len();
        let mut dms: Vec<usize> =
            rand::seq::index::sample(rng, peers, SIDEBAR_DMS.min(peers)).into_vec();
        dms.retain(|&i| spec.dm_peers[i] != me);
        AppCalls {
            status: Periodic::new(STATUS_PERIOD, now, rng),
            ping: Periodic::new(PING_PERIOD, now, rng),
            pending: None,
            dms,
            authors: Vec::new(),
        }
    }

    /// The earliest periodic call and when it is due.
    pub fn next_tick(&self) -> (tokio::time::Instant, Tick) {
        if self.ping.next <= self.status.next {
            (self.ping.next, Tick::Ping)
        } else {
            (self.status.next, Tick::Status)
        }
    }

    /// The user opened a DM with `dm_peers[peer]`: it joins the sidebar (the oldest leaves).
    pub fn saw_dm(&mut self, peer: usize) {
        self.dms.retain(|&i| i != peer);
        self.dms.push(peer);
        if self.dms.len() > MAX_DMS {
            self.dms.remove(0);
        }
    }

    /// A page of the channel on screen (`{order, posts}`): its authors are shown.
    pub fn saw_page(&mut self, page: &Value, me: &str) {
        let Some(order) = page["order"].as_array() else {
            return;
        };
        self.authors.clear();
        for id in order.iter().filter_map(Value::as_str) {
            if let Some(author) = page["posts"][id]["user_id"].as_str() {
                if author != me && !self.authors.iter().any(|a| a == author) {
                    self.authors.push(author.to_string());
                }
            }
        }
    }

    /// Whom the app asks statuses for: DM partners, then authors on screen, at most
    /// `MAX_STATUS_IDS`, each once.
    pub fn status_ids(&self, dm_peers: &[String]) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        let dms = self.dms.iter().filter_map(|&i| dm_peers.get(i));
        for id in dms.chain(&self.authors) {
            if ids.len() == MAX_STATUS_IDS {
                break;
            }
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids
    }

    /// The pending ping's pong, when it arrives; never while none is pending. `Err`: the
    /// socket closed under it.
    pub async fn pong(&mut self) -> Result<Duration, oneshot::error::RecvError> {
        match self.pending.as_mut() {
            Some(p) => {
                let arrived = (&mut p.arrival).await;
                let sent = p.sent;
                self.pending = None;
                arrived.map(|at| at.saturating_duration_since(sent))
            }
            None => std::future::pending().await,
        }
    }
}

/// One preference as the apps write it, picked at random.
pub fn some_preference(me: &str, channel: &str, rng: &mut impl Rng) -> Value {
    let flag = if rng.random_bool(0.5) {
        "true"
    } else {
        "false"
    };
    let (category, name, value) = match rng.random_range(0..3) {
        0 => ("favorite_channel", channel.to_string(), flag.to_string()),
        1 => (
            "display_settings",
            "use_military_time".into(),
            flag.to_string(),
        ),
        _ => (
            "channel_approximate_view_time",
            channel.to_string(),
            (crate::proto::unix_ns() / 1_000_000).to_string(),
        ),
    };
    json!([{"user_id": me, "category": category, "name": name, "value": value}])
}

impl User {
    /// Login: the entry sync, the first status poll and the first ping.
    pub(super) async fn first_load(&mut self, rng: &mut StdRng) {
        self.app = Some(AppCalls::new(&self.spec, &self.id, rng));
        self.entry_sync().await;
        self.poll_statuses().await;
        self.send_ping().await;
    }

    /// What the app reloads at login and after a reconnect.
    pub(super) async fn entry_sync(&mut self) {
        self.call(GET_PREFERENCES, Method::GET, "/users/me/preferences", None)
            .await;
        let path = format!("/users/me/teams/{}/channels/categories", self.spec.team);
        self.call(GET_CATEGORIES, Method::GET, &path, None).await;
    }

    /// A due periodic call.
    pub(super) async fn tick(&mut self, tick: Tick, rng: &mut StdRng) {
        let now = tokio::time::Instant::now();
        match tick {
            Tick::Status => {
                self.poll_statuses().await;
                if let Some(app) = self.app.as_mut() {
                    app.status.advance(now, rng);
                }
            }
            Tick::Ping => {
                if self.check_pong().await {
                    self.send_ping().await;
                }
                if let Some(app) = self.app.as_mut() {
                    app.ping.advance(now, rng);
                }
            }
        }
    }

    async fn poll_statuses(&mut self) {
        let Some(app) = &self.app else {
            return;
        };
        let ids = app.status_ids(&self.spec.dm_peers);
        if ids.is_empty() {
            return;
        }
        self.call(
            STATUS_IDS,
            Method::POST,
            "/users/status/ids",
            Some(&json!(ids)),
        )
        .await;
    }

    /// A new ping is due: the previous one must have had its pong, else the app gives up on
    /// the socket and reconnects (and syncs again). False when the previous ping went less
    /// than half a period ago: the first load's ping, with the timer's random first phase just
    /// after it, where the app itself would wait a whole period. That ping stays awaited and no
    /// new one goes, so a pong is never judged missing after milliseconds.
    async fn check_pong(&mut self) -> bool {
        let Some(app) = self.app.as_mut() else {
            return true;
        };
        if app
            .pending
            .as_ref()
            .is_some_and(|p| p.sent.elapsed() < PING_PERIOD / 2)
        {
            return false;
        }
        let Some(pending) = app.pending.take() else {
            return true;
        };
        let mut arrival = pending.arrival;
        match arrival.try_recv() {
            Ok(at) => self.pong_arrived(Ok(at.saturating_duration_since(pending.sent))),
            Err(oneshot::error::TryRecvError::Closed) => {
                self.stats.count_only(WS_PING_SOCKET_CLOSED)
            }
            Err(oneshot::error::TryRecvError::Empty) => {
                let waited = pending.sent.elapsed().as_micros() as u64;
                self.stats.note_apart(WS_PING, waited, Outcome::Error);
                self.control.reconnect.notify_one();
                self.entry_sync().await;
            }
        }
        true
    }

    async fn send_ping(&mut self) {
        match self.control.ping().await {
            Ok((sent, arrival)) => {
                if let Some(app) = self.app.as_mut() {
                    app.pending = Some(PendingPing { sent, arrival });
                }
            }
            Err(_) => self.stats.count_only(WS_PING_SOCKET_CLOSED),
        }
    }

    /// Records a pong (round trip) or a ping whose socket closed before it came.
    pub(super) fn pong_arrived(&self, result: Result<Duration, oneshot::error::RecvError>) {
        match result {
            Ok(rtt) => self
                .stats
                .note_apart(WS_PING, rtt.as_micros() as u64, Outcome::Ok),
            Err(_) => self.stats.count_only(WS_PING_SOCKET_CLOSED),
        }
    }

    /// Now and then after an action: one preference changed, then the categories again.
    pub(super) async fn maybe_update_preference(&mut self, rng: &mut StdRng) {
        if self.app.is_none() || !rng.random_bool(PREFERENCE_CHANCE) {
            return;
        }
        let body = some_preference(&self.id, &self.channels[self.current], rng);
        self.call(
            UPDATE_PREFERENCE,
            Method::PUT,
            "/users/me/preferences",
            Some(&body),
        )
        .await;
        let path = format!(
            "/users/{}/teams/{}/channels/categories",
            self.id, self.spec.team
        );
        self.call(GET_CATEGORIES, Method::GET, &path, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Layout;
    use rand::SeedableRng;

    fn spec(peers: usize) -> MixSpec {
        MixSpec {
            nodes: vec![],
            team: "t".into(),
            channels: vec![],
            layout: Layout {
                users: 10,
                channel_size: 5,
                channels_per_user: 1,
            },
            idle_min_ms: 1000,
            idle_max_ms: 39_000,
            dm_peers: (0..peers).map(|i| format!("peer{i}")).collect(),
            usernames: vec![],
            channel_names: vec![],
            app_calls: true,
        }
    }

    #[test]
    fn timers_spread_over_their_period_and_keep_it() {
        let mut rng = StdRng::seed_from_u64(3);
        let now = tokio::time::Instant::now();
        let firsts: Vec<Duration> = (0..1000)
            .map(|_| Periodic::new(PING_PERIOD, now, &mut rng).next - now)
            .collect();
        assert!(firsts.iter().all(|d| *d < PING_PERIOD));
        // Spread: each tenth of the period gets about a tenth of the users.
        for tenth in 0..10 {
            let lo = PING_PERIOD.mul_f64(tenth as f64 / 10.0);
            let hi = PING_PERIOD.mul_f64((tenth + 1) as f64 / 10.0);
            let n = firsts.iter().filter(|d| **d >= lo && **d < hi).count();
            assert!((60..140).contains(&n), "tenth {tenth}: {n}");
        }
        let mut timer = Periodic::new(STATUS_PERIOD, now, &mut rng);
        let first = timer.next;
        timer.advance(first, &mut rng);
        let gap = timer.next - first;
        assert!(gap >= STATUS_PERIOD.mul_f64(0.95) && gap <= STATUS_PERIOD.mul_f64(1.05));
        // Fallen far behind: fires once now, no burst.
        let late = timer.next + Duration::from_secs(600);
        timer.advance(late, &mut rng);
        assert_eq!(timer.next, late);
    }

    #[test]
    fn status_ids_are_dm_partners_then_authors_once_each() {
        let mut rng = StdRng::seed_from_u64(5);
        let spec = spec(100);
        let mut app = AppCalls::new(&spec, "peer3", &mut rng);
        assert!(app.dms.len() <= SIDEBAR_DMS);
        assert!(app.dms.iter().all(|&i| spec.dm_peers[i] != "peer3"));
        let page = json!({
            "order": ["p1", "p2", "p3"],
            "posts": {
                "p1": {"user_id": "a"}, "p2": {"user_id": "peer3"}, "p3": {"user_id": "a"}
            }
        });
        app.saw_page(&page, "peer3");
        assert_eq!(app.authors, vec!["a".to_string()]);
        app.saw_dm(42);
        let ids = app.status_ids(&spec.dm_peers);
        assert!(ids.contains(&"peer42".to_string()) && ids.contains(&"a".to_string()));
        assert!(!ids.contains(&"peer3".to_string()));
        for peer in 0..100 {
            app.saw_dm(peer);
        }
        assert_eq!(app.dms.len(), MAX_DMS);
        app.authors = (0..100).map(|i| format!("author{i}")).collect();
        let ids = app.status_ids(&spec.dm_peers);
        assert_eq!(ids.len(), MAX_STATUS_IDS);
        assert_eq!(ids[0], "peer80");
    }

    #[test]
    fn next_tick_is_the_earliest() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut app = AppCalls::new(&spec(5), "me", &mut rng);
        let now = tokio::time::Instant::now();
        app.ping.next = now + Duration::from_secs(5);
        app.status.next = now + Duration::from_secs(2);
        assert_eq!(app.next_tick(), (app.status.next, Tick::Status));
        app.status.next = now + Duration::from_secs(50);
        assert_eq!(app.next_tick(), (app.ping.next, Tick::Ping));
    }

    #[test]
    fn preferences_are_valid_single_items() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut categories = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let body = some_preference("me", "c".repeat(26).as_str(), &mut rng);
            let list = body.as_array().expect("a list");
            assert_eq!(list.len(), 1);
            let p = &list[0];
            assert_eq!(p["user_id"], "me");
            let name = p["name"].as_str().expect("name");
            assert!(name.len() <= 32);
            categories.insert(p["category"].as_str().expect("category").to_string());
        }
        assert_eq!(categories.len(), 3);
    }
}
