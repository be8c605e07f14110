//! Presence: who is online, away, in do-not-disturb or offline, cluster-wide, as Mattermost's
//! statuses (`GET /users/{id}/status`, `POST /users/status/ids`, `status_change`).
//!
//! # What is replicated, what is gossiped
//! - **Replicated** (Raft log, `confab_storage::status`, survives restarts, the same on every
//!   node): what a user chose by hand — away, offline, dnd (with its end time and the status
//!   before it) — and custom statuses (in the user record, as Mattermost's
//!   `props.customStatus`, with the recent list as a preference). These change when a person
//!   clicks, so a commit each is nothing.
//! - **Gossiped** (peer messages on the `presence` topic, [`wire`], never the log): which users
//!   have a socket on which node and when each was last active. Every node keeps its own users
//!   ([`table`]: socket count, last activity, channel viewed) and what each peer last said about
//!   its own. Every `flush_interval` (250 ms) a node sends a **delta** of its users whose
//!   connection state or viewed channel changed, or whose activity moved by at least a tenth of
//!   the away timeout (≤ 10 s); every `summary_interval` (5 s) a **summary** of all of them. A
//!   peer's word about a user lasts `peer_timeout` (20 s: three summaries and slack) from the
//!   last message that mentioned it, so a node killed with -9 takes its users offline on the
//!   others within 20 s + a flush, and a lost `gone` heals the same way. A message carries the
//!   sender's boot id: a restarted peer's old word is dropped at once, and a node seeing a new
//!   boot answers with its summary right away, so a restarted or rejoined node rebuilds its view
//!   from its peers within a flush interval (at most a summary interval when that message is
//!   lost).
//! - **Derived on read** ([`Presence::status`]): a manual status in force wins (a timed DND
//!   past its end no longer counts, even before its end is committed); else online when a socket
//!   is open on any node and the newest activity is within `away_timeout` (300 s), away when it
//!   is older, offline with no socket anywhere. A user whose last socket closes stays online for
//!   `offline_grace` (5 s) on the node that had it, so a reconnect to another node does not
//!   flap. Activity is a socket connecting, `user_update_active_status` with `user_is_active`,
//!   a channel view and a post.
//!
//! # Events
//! `status_change` goes to the user's own connections (as in Mattermost). Every event a socket
//! sees derives from the Raft log, so that sequence numbers are the same on every node and a
//! stream resumes anywhere (`crate::ws` documents why); a node-local event would consume a seq
//! on one node only and break that numbering. So a change is announced through the log: a
//! manual change is its own command, a timed DND's end is committed by the leader when due
//! ([`Command::ExpireDnd`]), and a derived change of a connected user (online ↔ away) is a
//! state-free [`Command::StatusNotice`] the leader proposes, like typing notices. That is at
//! most two entries per user per away period — never one per heartbeat or socket; connects and
//! offline need none (the connecting client reads its status; an offline user has no socket).
//!
//! # Bounds
//! Memory: a record per local user and per user each peer reported (≈ 100 bytes). Traffic: a
//! summary is 25–41 bytes per local user per `summary_interval` per peer, split into messages
//! of at most 8,192 records (≈ 336 KB); deltas only for changes. The peer outbox is bounded
//! (`confab_raft`), so a slow peer drops messages and heals at the next summary.

mod config;
mod table;
pub mod wire;

pub use config::PresenceArgs;

pub use table::Live;

use crate::clock::now_ms;
use confab_raft::RaftNode;
use confab_storage::{Command, Engine, Id, ManualStatus};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use table::{Table, Timing};

/// Settings of presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Mattermost's `UserStatusAwayTimeout`.
    pub away_timeout: Duration,
    /// How long a user whose last socket closed stays online (reconnects elsewhere do not flap).
    pub offline_grace: Duration,
    /// How often deltas go out.
    pub flush_interval: Duration,
    /// How often a full summary goes out.
    pub summary_interval: Duration,
    /// How long a peer's word about a user lasts without being repeated.
    pub peer_timeout: Duration,
    /// Mattermost's `ServiceSettings.EnableUserStatuses`. Off, clients see no statuses (the
    /// routes and socket actions answer nothing, `status_change` is never sent) and cannot set
    /// one; the presence view is still kept, for deciding notifications.
    pub user_statuses: bool,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            away_timeout: Duration::from_secs(300),
            offline_grace: Duration::from_secs(5),
            flush_interval: Duration::from_millis(250),
            summary_interval: Duration::from_secs(5),
            peer_timeout: Duration::from_secs(20),
            user_statuses: true,
        }
    }
}

/// A Mattermost status value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Online,
    Away,
    Dnd,
    Offline,
    Ooo,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Online => "online",
            StatusKind::Away => "away",
            StatusKind::Dnd => "dnd",
            StatusKind::Offline => "offline",
            StatusKind::Ooo => "ooo",
        }
    }

    pub fn parse(text: &str) -> Option<StatusKind> {
        Some(match text {
            "online" => StatusKind::Online,
            "away" => StatusKind::Away,
            "dnd" => StatusKind::Dnd,
            "offline" => StatusKind::Offline,
            "ooo" => StatusKind::Ooo,
            _ => return None,
        })
    }
}

/// A user's status as Mattermost's `Status` JSON carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStatus {
    pub user_id: Id,
    pub status: StatusKind,
    pub manual: bool,
    /// ms; 0 when no node saw activity since it started.
    pub last_activity_at: u64,
    /// Seconds; 0 unless a timed DND is in force.
    pub dnd_end_time: u64,
    pub active_channel: Option<Id>,
}

impl UserStatus {
    /// `{"user_id","status","manual","last_activity_at","dnd_end_time","active_channel"?}`.
    pub fn to_json(self) -> Value {
        let mut value = json!({
            "user_id": self.user_id.to_base32(),
            "status": self.status.as_str(),
            "manual": self.manual,
            "last_activity_at": self.last_activity_at,
            "dnd_end_time": self.dnd_end_time,
        });
        if let Some(channel) = self.active_channel {
            value["active_channel"] = Value::String(channel.to_base32());
        }
        value
    }
}

/// Combines the replicated manual status with the live view at `now` (ms).
pub fn derive(
    user_id: Id,
    manual: Option<&ManualStatus>,
    live: Live,
    away: Duration,
    now: u64,
) -> UserStatus {
    let base = UserStatus {
        user_id,
        status: StatusKind::Offline,
        manual: false,
        last_activity_at: live.last_activity,
        dnd_end_time: 0,
        active_channel: live.active_channel,
    };
    if let Some(manual) = manual.filter(|m| m.in_force(now)) {
        if let Some(kind) = StatusKind::parse(&manual.status) {
            return UserStatus {
                status: kind,
                manual: true,
                dnd_end_time: if kind == StatusKind::Dnd {
                    manual.dnd_end_time
                } else {
                    0
                },
                ..base
            };
        }
    }
    if !live.connected {
        return base;
    }
    let idle = now.saturating_sub(live.last_activity) >= away.as_millis() as u64;
    UserStatus {
        status: if idle {
            StatusKind::Away
        } else {
            StatusKind::Online
        },
        ..base
    }
}

/// Traffic counters (also exported through the `metrics` facade as they move).
#[derive(Debug, Default)]
pub struct PresenceStats {
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub messages_refused: AtomicU64,
}

/// The cluster-wide presence view of this node, shared by the WebSocket hub, the HTTP API and
/// (through `App`) the notification dispatcher.
pub struct Presence {
    engine: Arc<Engine>,
    config: PresenceConfig,
    table: Mutex<Table>,
    /// This run's id in peer messages.
    boot: u64,
    /// Set when a peer restarted: send the summary now.
    summary_wake: tokio::sync::Notify,
    pub stats: PresenceStats,
}

impl Presence {
    pub fn new(engine: Arc<Engine>, config: PresenceConfig) -> Arc<Presence> {
        let ms = |d: Duration| d.as_millis() as u64;
        let timing = Timing {
            away_ms: ms(config.away_timeout).max(1),
            grace_ms: ms(config.offline_grace),
            peer_timeout_ms: ms(config.peer_timeout).max(1),
            activity_resolution_ms: (ms(config.away_timeout) / 10).clamp(1, 10_000),
        };
        Arc::new(Presence {
            engine,
            config,
            table: Mutex::new(Table::new(timing)),
            boot: rand::random::<u64>() | 1,
            summary_wake: tokio::sync::Notify::new(),
            stats: PresenceStats::default(),
        })
    }

    /// A socket of `user` opened on this node.
    pub fn connected(&self, user: Id) {
        self.table.lock().connect(user, now_ms());
    }

    /// A socket of `user` closed on this node.
    pub fn disconnected(&self, user: Id) {
        self.table.lock().disconnect(user, now_ms());
    }

    /// `user` did something through this node; `channel` when they viewed one.
    pub fn activity(&self, user: Id, channel: Option<Id>) {
        self.table.lock().activity(user, now_ms(), channel);
    }

    /// The cluster's live view of `user` (no storage read).
    pub fn live(&self, user: Id) -> Live {
        self.table.lock().live(user)
    }

    /// `user`'s status now: the live view combined with the replicated manual status (one
    /// point lookup). Cheap and synchronous, for request handlers and the notification
    /// dispatcher. A storage failure reads as "no manual status" (logged).
    /// Whether clients see and set statuses (`EnableUserStatuses`).
    pub fn user_statuses_enabled(&self) -> bool {
        self.config.user_statuses
    }

    pub fn status(&self, user: Id) -> UserStatus {
        let manual = match self.engine.reader().manual_status(user) {
            Ok(manual) => manual,
            Err(error) => {
                tracing::warn!(%user, %error, "manual status not read");
                None
            }
        };
        derive(
            user,
            manual.as_ref(),
            self.live(user),
            self.config.away_timeout,
            now_ms(),
        )
    }

    /// Users connected anywhere in the cluster.
    pub fn online_count(&self) -> usize {
        self.table.lock().connected_users().len()
    }

    /// user → status of everyone the node knows a status for: connected users and manual
    /// statuses, at most `limit` (the WebSocket `get_statuses`).
    pub fn known_statuses(&self, limit: usize) -> HashMap<Id, StatusKind> {
        let now = now_ms();
        let connected = self.table.lock().connected_users();
        let mut out = HashMap::new();
        let manual = self
            .engine
            .reader()
            .manual_statuses(limit)
            .unwrap_or_default();
        for (user, status) in &manual {
            if status.in_force(now) {
                if let Some(kind) = StatusKind::parse(&status.status) {
                    out.insert(*user, kind);
                }
            }
        }
        let away = self.config.away_timeout.as_millis() as u64;
        for (user, activity) in connected {
            if out.len() >= limit {
                break;
            }
            out.entry(user)
                .or_insert(if now.saturating_sub(activity) >= away {
                    StatusKind::Away
                } else {
                    StatusKind::Online
                });
        }
        out
    }

    /// Takes a peer's message; a malformed one is refused whole (counted).
    pub fn receive(&self, from: u64, body: &[u8]) -> Result<usize, wire::DecodeError> {
        self.stats.messages_received.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_received
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        ::metrics::counter!("confab_presence_messages_received_total").increment(1);
        ::metrics::counter!("confab_presence_bytes_received_total").increment(body.len() as u64);
        let message = match wire::decode(body) {
            Ok(message) => message,
            Err(error) => {
                self.stats.messages_refused.fetch_add(1, Ordering::Relaxed);
                ::metrics::counter!("confab_presence_messages_refused_total").increment(1);
                return Err(error);
            }
        };
        let mut table = self.table.lock();
        let restarted = table.is_new_boot(from, message.boot);
        table.receive(from, message.boot, &message.records, now_ms());
        drop(table);
        if restarted {
            // A peer that (re)started knows nothing of this node's users yet.
            self.summary_wake.notify_one();
        }
        Ok(message.records.len())
    }
}

impl Presence {
    /// Sends encoded messages to every peer, counting them.
    fn send_messages(&self, raft: &RaftNode, messages: Vec<Vec<u8>>) {
        for body in messages {
            let len = body.len() as u64;
            match raft.send_to_peers(wire::TOPIC, body.into()) {
                Ok(peers) if peers > 0 => {
                    self.stats
                        .messages_sent
                        .fetch_add(peers as u64, Ordering::Relaxed);
                    self.stats
                        .bytes_sent
                        .fetch_add(len * peers as u64, Ordering::Relaxed);
                    ::metrics::counter!("confab_presence_messages_sent_total")
                        .increment(peers as u64);
                    ::metrics::counter!("confab_presence_bytes_sent_total")
                        .increment(len * peers as u64);
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "presence message not sent"),
            }
        }
    }

    /// One flush: the delta (grace expiries included) and peers' stale word dropped.
    fn flush(&self, raft: &RaftNode) {
        let now = now_ms();
        let delta = {
            let mut table = self.table.lock();
            table.expire(now);
            table.flush(now)
        };
        self.send_messages(raft, wire::encode(wire::Kind::Delta, self.boot, &delta));
    }

    /// One summary of this node's users.
    fn summarize(&self, raft: &RaftNode) {
        let summary = self.table.lock().summary();
        self.send_messages(raft, wire::encode(wire::Kind::Summary, self.boot, &summary));
    }
}

/// Wires presence to the cluster: peers' messages in, deltas and summaries out, and on the
/// leader the sweep that ends due DNDs and announces derived changes.
pub fn start(presence: &Arc<Presence>, raft: &RaftNode) -> Result<(), confab_raft::RaftNodeError> {
    let receiving = presence.clone();
    raft.on_message(
        wire::TOPIC,
        Arc::new(move |message: confab_raft::PeerMessage| {
            if let Err(error) = receiving.receive(message.from, &message.body) {
                tracing::warn!(from = message.from, %error, "bad presence message from a peer");
            }
        }),
    )?;
    let gossip = presence.clone();
    let node = raft.clone();
    tokio::spawn(async move {
        let mut flush = tokio::time::interval(gossip.config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut summary = tokio::time::interval(gossip.config.summary_interval);
        summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = flush.tick() => gossip.flush(&node),
                _ = summary.tick() => gossip.summarize(&node),
                _ = gossip.summary_wake.notified() => gossip.summarize(&node),
            }
        }
    });
    let sweeping = presence.clone();
    let node = raft.clone();
    tokio::spawn(async move {
        let mut sweeper = Sweeper::default();
        let mut tick = tokio::time::interval(
            Duration::from_secs(1)
                .min(sweeping.config.away_timeout / 4 + Duration::from_millis(100)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sweeper.sweep(&sweeping, &node);
        }
    });
    Ok(())
}

/// The leader's periodic work: commit the end of due timed DNDs, and announce derived status
/// changes (online ↔ away) of connected users without a manual status.
#[derive(Default)]
struct Sweeper {
    /// The derived status last announced (or first seen) per connected user.
    announced: HashMap<Id, StatusKind>,
}

impl Sweeper {
    fn sweep(&mut self, presence: &Presence, raft: &RaftNode) {
        if !raft.is_leader() {
            self.announced.clear();
            return;
        }
        let now = now_ms();
        match presence
            .engine
            .reader()
            .due_dnd(now / 1000, confab_storage::status::DUE_DND_LIMIT)
        {
            Ok(due) => {
                for user_id in due {
                    let live = presence.live(user_id);
                    let derived = derive(user_id, None, live, presence.config.away_timeout, now);
                    propose(
                        raft,
                        Command::ExpireDnd {
                            user_id,
                            at: now,
                            derived: derived.status.as_str().to_string(),
                        },
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "due DND not read"),
        }
        match presence
            .engine
            .reader()
            .due_custom_statuses(now, confab_storage::status::DUE_DND_LIMIT)
        {
            Ok(due) => {
                for user_id in due {
                    propose(raft, Command::ExpireCustomStatus { user_id, at: now });
                }
            }
            Err(error) => tracing::warn!(%error, "due custom statuses not read"),
        }
        let connected = presence.table.lock().connected_users();
        let away = presence.config.away_timeout.as_millis() as u64;
        self.announced
            .retain(|user, _| connected.contains_key(user));
        for (user, activity) in connected {
            let derived = if now.saturating_sub(activity) >= away {
                StatusKind::Away
            } else {
                StatusKind::Online
            };
            match self.announced.insert(user, derived) {
                None => {}
                Some(before) if before == derived => {}
                Some(_) => {
                    // Rare (at most twice per user per away period): now the manual check.
                    let manual = presence
                        .engine
                        .reader()
                        .manual_status(user)
                        .ok()
                        .flatten()
                        .filter(|m| m.in_force(now));
                    if manual.is_none() && presence.config.user_statuses {
                        propose(
                            raft,
                            Command::StatusNotice {
                                user_id: user,
                                status: derived.as_str().to_string(),
                            },
                        );
                    }
                }
            }
        }
    }
}

fn propose(raft: &RaftNode, command: Command) {
    let raft = raft.clone();
    tokio::spawn(async move {
        if let Err(error) = raft.write(command).await {
            tracing::debug!(%error, "presence command not committed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    #[test]
    fn manual_wins_then_sockets_and_activity_decide() {
        let away = Duration::from_secs(300);
        let live = Live {
            connected: true,
            last_activity: 1_000_000,
            active_channel: Some(id(4)),
        };
        let online = derive(id(1), None, live, away, 1_000_500);
        assert_eq!((online.status, online.manual), (StatusKind::Online, false));
        assert_eq!(online.active_channel, Some(id(4)));
        let idle = derive(id(1), None, live, away, 1_300_000);
        assert_eq!(idle.status, StatusKind::Away);
        let gone = derive(id(1), None, Live::default(), away, 5);
        assert_eq!(gone.status, StatusKind::Offline);
        let dnd = ManualStatus {
            status: "dnd".into(),
            dnd_end_time: 2_000,
            prev_status: "online".into(),
            set_at: 0,
        };
        let during = derive(id(1), Some(&dnd), Live::default(), away, 1_999_999);
        assert_eq!(
            (during.status, during.manual, during.dnd_end_time),
            (StatusKind::Dnd, true, 2_000)
        );
        // Past its end, before the leader committed it: derived again.
        let after = derive(id(1), Some(&dnd), live, away, 2_000_000);
        assert_eq!((after.status, after.manual), (StatusKind::Away, false));
        let json = during.to_json();
        assert_eq!(json["status"], "dnd");
        assert_eq!(json["dnd_end_time"], 2_000);
        assert!(json.get("active_channel").is_none());
    }
}
