//! What the dispatcher needs to know of presence, behind a tiny trait so that the cluster-wide
//! presence view can replace this node-local one without touching the rules.

use crate::ws::Hub;
use confab_storage::Id;
use std::sync::Arc;

/// Mattermost's statuses. This node-local source only knows online and offline; away, DND and
/// out-of-office come with the cluster presence view (the rules already honour them).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Online,
    Away,
    Dnd,
    Offline,
    Ooo,
}

/// A user's status as Mattermost's push rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStatus {
    pub status: StatusKind,
    /// Set by the user rather than derived from activity.
    pub manual: bool,
    /// Milliseconds since the epoch.
    pub last_activity_at: u64,
    /// The channel the user has open, when known.
    pub active_channel: Option<Id>,
}

/// Presence as the dispatcher consults it.
pub trait StatusSource: Send + Sync {
    fn status(&self, user: Id) -> UserStatus;
}

/// Presence from this node's sockets alone: a user with an open WebSocket here is online
/// (active now, no channel known), everyone else offline. The dispatcher runs on the leader,
/// so users connected only to other nodes count as offline until cluster presence replaces this.
pub struct LocalSockets {
    hub: Arc<Hub>,
}

impl LocalSockets {
    pub fn new(hub: Arc<Hub>) -> LocalSockets {
        LocalSockets { hub }
    }
}

impl StatusSource for LocalSockets {
    fn status(&self, user: Id) -> UserStatus {
        let online = self.hub.conns_of(user) > 0;
        UserStatus {
            status: if online {
                StatusKind::Online
            } else {
                StatusKind::Offline
            },
            manual: false,
            last_activity_at: if online { crate::clock::now_ms() } else { 0 },
            active_channel: None,
        }
    }
}
