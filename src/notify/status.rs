//! What the dispatcher needs to know of presence, behind a tiny trait so that the rules can be
//! tested without a cluster. In the server it is the cluster-wide view (`crate::presence`): a
//! user with a socket on any node is online, away after the away timeout, offline otherwise,
//! with manual statuses and DND from the replicated state.

use crate::presence::Presence;
pub use crate::presence::{StatusKind, UserStatus};
use confab_storage::Id;

/// Presence as the dispatcher consults it.
pub trait StatusSource: Send + Sync {
    fn status(&self, user: Id) -> UserStatus;
}

impl StatusSource for Presence {
    fn status(&self, user: Id) -> UserStatus {
        Presence::status(self, user)
    }
}
