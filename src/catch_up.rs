//! Sessions usable at once on every node.
//!
//! A login commits its session through Raft and answers once the node that took it has applied
//! it. The client's next request may reach another node (through a load balancer, or the
//! mobile app's WebSocket to a different address) that has not applied it yet. Refusing there
//! with 401 would log the user out: the apps treat 401 as an ended session. So a node that
//! does not know a well-formed token first catches up and then looks again. Catching up is a
//! linearizable read barrier: the leader's commit index, waited for locally, at most
//! [`CATCH_UP_LIMIT`]. The misses that arrive while one barrier runs share the next one, so a
//! flood of unknown tokens costs one barrier at a time, not one each.

use crate::clock;
use crate::ws::Hub;
use confab_raft::RaftNode;
use confab_storage::{Id, Session, User};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The longest a request waits for its node to catch up before it is refused.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

/// Read barriers for unknown tokens, one at a time, shared by the misses waiting on them.
pub struct CatchUp {
    raft: RaftNode,
    /// Serializes the barriers.
    running: tokio::sync::Mutex<()>,
    /// Barriers started so far; each is numbered by this count when it starts.
    started: AtomicU64,
    /// The number of the latest barrier that completed.
    completed: AtomicU64,
}

impl CatchUp {
    pub fn new(raft: RaftNode) -> Arc<CatchUp> {
        Arc::new(CatchUp {
            raft,
            running: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        })
    }

    /// Returns once this node has applied everything committed when it was called, or `false`
    /// if that could not be done within [`CATCH_UP_LIMIT`].
    pub async fn barrier(&self) -> bool {
        let arrived = self.started.load(Ordering::SeqCst);
        let _turn = self.running.lock().await;
        // A barrier numbered above `arrived` started after this call did: it covers it.
        if self.completed.load(Ordering::SeqCst) > arrived {
            return true;
        }
        let mine = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        ::metrics::counter!("confab_auth_catch_ups_total").increment(1);
        let done = tokio::time::timeout(CATCH_UP_LIMIT, self.raft.linearizable_read_barrier())
            .await
            .is_ok_and(|r| r.is_ok());
        if done {
            self.completed.fetch_max(mine, Ordering::SeqCst);
        }
        done
    }
}

/// The live session for `token`: from the hub's cache or the engine, and if neither knows a
/// well-formed token, again after catching up (when the hub has a [`CatchUp`]).
pub async fn resolve_or_catch_up(hub: &Arc<Hub>, token: &str) -> Option<(Session, User)> {
    if let Some(hit) = hub.sessions.cached(&hub.engine, token, clock::now_ms()) {
        return Some(hit);
    }
    let lookup = || {
        let hub = hub.clone();
        let token = token.to_string();
        move || hub.sessions.resolve(&hub.engine, &token, clock::now_ms())
    };
    if let Some(found) = blocking(lookup()).await? {
        return Some(found);
    }
    let catch_up = hub.catch_up.get()?;
    Id::parse(token).ok()?;
    if !catch_up.barrier().await {
        return None;
    }
    blocking(lookup()).await?
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}
