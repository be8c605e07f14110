//! The live view: this node's users (sockets, activity, grace) and what each peer last said
//! about its own. Pure bookkeeping over times in milliseconds, so it is tested without a
//! cluster; the [`Presence`](super::Presence) object locks it and runs the clocks.

use super::wire::Record;
use confab_storage::Id;
use std::collections::{HashMap, HashSet};

/// The durations the table works with, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub away_ms: u64,
    pub grace_ms: u64,
    pub peer_timeout_ms: u64,
    /// A change of `last_activity_at` smaller than this is not worth a delta by itself.
    pub activity_resolution_ms: u64,
}

/// A user as this node knows them.
#[derive(Debug, Clone, Default)]
struct Local {
    sockets: u32,
    last_activity: u64,
    active_channel: Option<Id>,
    /// When the last socket closed (0 while a socket is open).
    closed_at: u64,
    /// What the last delta said (peers know this much already).
    sent_activity: u64,
    sent_connected: bool,
    sent_channel: Option<Id>,
}

impl Local {
    fn connected(&self) -> bool {
        // A closed user stays "connected" through the grace period (see `flush`).
        self.sockets > 0 || self.closed_at > 0
    }

    fn record(&self, user: Id) -> Record {
        Record {
            user,
            connected: self.connected(),
            gone: false,
            last_activity: self.last_activity,
            active_channel: self.active_channel,
        }
    }
}

/// A user as a peer described them.
#[derive(Debug, Clone, Copy)]
struct Remote {
    connected: bool,
    last_activity: u64,
    active_channel: Option<Id>,
    /// When a delta or summary last mentioned the user.
    seen_at: u64,
}

#[derive(Debug, Default)]
struct Peer {
    boot: u64,
    users: HashMap<Id, Remote>,
}

/// What the cluster knows live about one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    /// A socket on some node (or within its offline grace).
    pub connected: bool,
    /// The newest activity any node reported (ms, 0 = none known).
    pub last_activity: u64,
    /// The channel last viewed, from the node with the newest activity.
    pub active_channel: Option<Id>,
}

#[derive(Debug)]
pub struct Table {
    timing: Timing,
    local: HashMap<Id, Local>,
    /// Local users whose state peers have not heard yet.
    dirty: HashSet<Id>,
    peers: HashMap<u64, Peer>,
}

impl Table {
    pub fn new(timing: Timing) -> Table {
        Table {
            timing,
            local: HashMap::new(),
            dirty: HashSet::new(),
            peers: HashMap::new(),
        }
    }

    /// A socket of `user` opened here: that is activity too.
    pub fn connect(&mut self, user: Id, now: u64) {
        let local = self.local.entry(user).or_default();
        local.sockets += 1;
        local.closed_at = 0;
        local.last_activity = local.last_activity.max(now);
        self.dirty.insert(user);
    }

    /// A socket of `user` closed here; the last one starts the grace period.
    pub fn disconnect(&mut self, user: Id, now: u64) {
        if let Some(local) = self.local.get_mut(&user) {
            local.sockets = local.sockets.saturating_sub(1);
            if local.sockets == 0 {
                local.closed_at = now.max(1);
            }
        }
    }

    /// Activity of `user` through this node (a WebSocket action, a channel view, a post);
    /// `channel` is the channel viewed, if the activity was a view.
    pub fn activity(&mut self, user: Id, now: u64, channel: Option<Id>) {
        let local = self.local.entry(user).or_default();
        local.last_activity = local.last_activity.max(now);
        if channel.is_some() {
            local.active_channel = channel;
        }
        self.dirty.insert(user);
    }

    /// The delta to send now: users whose connection state or channel changed, or whose
    /// activity moved by at least the resolution; plus `gone` for users whose grace ran out
    /// (removed here) and activity-only users older than the away timeout (removed quietly:
    /// peers forget them after `peer_timeout` since no summary names them).
    pub fn flush(&mut self, now: u64) -> Vec<Record> {
        let timing = self.timing;
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for (user, local) in &self.local {
            if local.sockets == 0 && local.closed_at > 0 {
                if now.saturating_sub(local.closed_at) >= timing.grace_ms {
                    expired.push((*user, true));
                }
            } else if local.sockets == 0
                && now.saturating_sub(local.last_activity) >= timing.away_ms
            {
                expired.push((*user, false));
            }
        }
        for (user, announce) in expired {
            self.local.remove(&user);
            self.dirty.remove(&user);
            if announce {
                out.push(Record {
                    user,
                    connected: false,
                    gone: true,
                    last_activity: 0,
                    active_channel: None,
                });
            }
        }
        for user in std::mem::take(&mut self.dirty) {
            let Some(local) = self.local.get_mut(&user) else {
                continue;
            };
            let changed = local.connected() != local.sent_connected
                || local.active_channel != local.sent_channel
                || local.last_activity >= local.sent_activity + timing.activity_resolution_ms;
            if changed {
                local.sent_connected = local.connected();
                local.sent_channel = local.active_channel;
                local.sent_activity = local.last_activity;
                out.push(local.record(user));
            }
        }
        out
    }

    /// Everything this node says about its own users (the periodic summary).
    pub fn summary(&self) -> Vec<Record> {
        self.local
            .iter()
            .map(|(user, local)| local.record(*user))
            .collect()
    }

    /// Takes a peer's message. A new `boot` means the peer restarted: what it said before is
    /// dropped. Activity newer than this node's for a user connected here is adopted, so
    /// `last_activity_at` does not go back when the peer's record expires.
    pub fn receive(&mut self, peer: u64, boot: u64, records: &[Record], now: u64) {
        let entry = self.peers.entry(peer).or_default();
        if entry.boot != boot {
            entry.boot = boot;
            entry.users.clear();
        }
        for r in records {
            if r.gone {
                entry.users.remove(&r.user);
                continue;
            }
            entry.users.insert(
                r.user,
                Remote {
                    connected: r.connected,
                    last_activity: r.last_activity,
                    active_channel: r.active_channel,
                    seen_at: now,
                },
            );
            if let Some(local) = self.local.get_mut(&r.user) {
                if r.last_activity > local.last_activity {
                    local.last_activity = r.last_activity;
                    // Peers know it already: no delta for the adopted value.
                    local.sent_activity = local.sent_activity.max(r.last_activity);
                }
            }
        }
    }

    /// Whether this peer's boot is new to this node (it restarted or was never heard).
    pub fn is_new_boot(&self, peer: u64, boot: u64) -> bool {
        self.peers.get(&peer).map(|p| p.boot) != Some(boot)
    }

    /// Forgets what peers said about users no message mentioned for `peer_timeout`: a peer
    /// that died (or lost its connection to this node) takes its users with it.
    pub fn expire(&mut self, now: u64) {
        let timeout = self.timing.peer_timeout_ms;
        for peer in self.peers.values_mut() {
            peer.users
                .retain(|_, remote| now.saturating_sub(remote.seen_at) < timeout);
        }
        self.peers.retain(|_, peer| !peer.users.is_empty());
    }

    /// The cluster's live view of `user`.
    pub fn live(&self, user: Id) -> Live {
        let mut live = Live::default();
        let mut newest = 0;
        let mut take = |connected: bool, activity: u64, channel: Option<Id>| {
            live.connected |= connected;
            if activity >= newest {
                newest = activity;
                live.last_activity = activity;
                if channel.is_some() {
                    live.active_channel = channel;
                }
            }
        };
        if let Some(local) = self.local.get(&user) {
            take(local.connected(), local.last_activity, local.active_channel);
        }
        for peer in self.peers.values() {
            if let Some(remote) = peer.users.get(&user) {
                take(
                    remote.connected,
                    remote.last_activity,
                    remote.active_channel,
                );
            }
        }
        live
    }

    /// Users connected anywhere, with their newest activity (the leader's sweep, `/metrics`,
    /// `get_statuses`). O(users known).
    pub fn connected_users(&self) -> HashMap<Id, u64> {
        let mut out: HashMap<Id, u64> = HashMap::new();
        let mut add = |user: Id, connected: bool, activity: u64| {
            if connected {
                let slot = out.entry(user).or_default();
                *slot = (*slot).max(activity);
            }
        };
        for (user, local) in &self.local {
            add(*user, local.connected(), local.last_activity);
        }
        for peer in self.peers.values() {
            for (user, remote) in &peer.users {
                add(*user, remote.connected, remote.last_activity);
            }
        }
        // Activity reported for a user connected elsewhere counts too.
        for peer in self.peers.values() {
            for (user, remote) in &peer.users {
                if let Some(slot) = out.get_mut(user) {
                    *slot = (*slot).max(remote.last_activity);
                }
            }
        }
        for (user, local) in &self.local {
            if let Some(slot) = out.get_mut(user) {
                *slot = (*slot).max(local.last_activity);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        away_ms: 10_000,
        grace_ms: 2_000,
        peer_timeout_ms: 15_000,
        activity_resolution_ms: 1_000,
    };

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    #[test]
    fn a_closed_socket_stays_online_through_the_grace_then_goes() {
        let mut t = Table::new(TIMING);
        t.connect(id(1), 1_000);
        let delta = t.flush(1_000);
        assert_eq!(delta.len(), 1);
        assert!(delta[0].connected && !delta[0].gone);
        t.disconnect(id(1), 5_000);
        assert!(t.live(id(1)).connected, "within the grace");
        assert!(t.flush(6_000).is_empty());
        let delta = t.flush(7_000);
        assert_eq!(delta.len(), 1);
        assert!(delta[0].gone);
        assert!(!t.live(id(1)).connected);
        // A reconnect within the grace never produces `gone`.
        t.connect(id(2), 1_000);
        t.flush(1_000);
        t.disconnect(id(2), 2_000);
        t.connect(id(2), 3_000);
        assert!(t.flush(10_000).iter().all(|r| !r.gone));
        assert!(t.live(id(2)).connected);
    }

    #[test]
    fn deltas_carry_only_what_peers_do_not_know() {
        let mut t = Table::new(TIMING);
        t.connect(id(1), 1_000);
        t.flush(1_000);
        t.activity(id(1), 1_500, None);
        assert!(t.flush(1_500).is_empty(), "below the resolution");
        t.activity(id(1), 2_100, None);
        assert_eq!(t.flush(2_100).len(), 1);
        t.activity(id(1), 2_200, Some(id(9)));
        let delta = t.flush(2_200);
        assert_eq!(delta[0].active_channel, Some(id(9)));
        assert_eq!(t.summary().len(), 1);
    }

    #[test]
    fn peers_views_merge_expire_and_reset_on_restart() {
        let mut t = Table::new(TIMING);
        let online = |user, activity| Record {
            user,
            connected: true,
            gone: false,
            last_activity: activity,
            active_channel: None,
        };
        t.receive(2, 77, &[online(id(1), 4_000)], 5_000);
        assert!(t.is_new_boot(2, 78));
        assert!(!t.is_new_boot(2, 77));
        assert_eq!(
            t.live(id(1)),
            Live {
                connected: true,
                last_activity: 4_000,
                active_channel: None
            }
        );
        // Activity elsewhere for a user connected here is adopted.
        t.connect(id(3), 1_000);
        t.receive(3, 5, &[online(id(3), 9_000)], 9_000);
        assert_eq!(t.connected_users().get(&id(3)), Some(&9_000));
        // Not mentioned for the peer timeout: forgotten.
        t.expire(19_999);
        assert!(t.live(id(1)).connected);
        t.expire(20_000);
        assert!(!t.live(id(1)).connected);
        // A restarted peer's old word is dropped at once.
        t.receive(2, 77, &[online(id(4), 1)], 30_000);
        t.receive(2, 78, &[], 30_001);
        assert!(!t.live(id(4)).connected);
        // `gone` removes at once.
        t.receive(2, 78, &[online(id(5), 1)], 30_002);
        let gone = Record {
            gone: true,
            connected: false,
            ..online(id(5), 0)
        };
        t.receive(2, 78, &[gone], 30_003);
        assert!(!t.live(id(5)).connected);
        assert_eq!(t.live(id(3)).last_activity, 9_000);
    }
}
