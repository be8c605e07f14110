//! Where applied outcomes go once the state machine has them: the broadcast the server
//! subscribes to (in log order), the waiters of writes this node originated, and the watch of
//! the applied index that read-your-writes waits on.

use crate::metrics::Counters;
use crate::types::RequestId;
use confab_storage::Applied;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{broadcast, oneshot, watch};

/// What the state machine published, in log order.
#[derive(Debug, Clone, PartialEq)]
pub enum AppliedEvent {
    /// Commands applied in one batch, in log order (blank and membership entries omitted).
    Batch(Vec<Applied>),
    /// The local state was replaced by a snapshot up to `index`: outcomes up to it were not
    /// published individually, so subscribers should reload what they cache.
    SnapshotInstalled { index: u64 },
}

pub(crate) struct ApplyHub {
    node_id: u64,
    waiters: Mutex<HashMap<RequestId, oneshot::Sender<Applied>>>,
    events: broadcast::Sender<Arc<AppliedEvent>>,
    applied: watch::Sender<u64>,
    pub(crate) counters: Arc<Counters>,
}

/// Removes its waiter when the write gives up, so the map never grows with abandoned writes.
pub(crate) struct WaiterGuard<'a> {
    hub: &'a ApplyHub,
    id: RequestId,
    pub(crate) rx: oneshot::Receiver<Applied>,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.hub.waiters.lock().remove(&self.id);
    }
}

impl ApplyHub {
    pub(crate) fn new(node_id: u64, applied_index: u64, capacity: usize) -> ApplyHub {
        let (events, _) = broadcast::channel(capacity.max(16));
        let (applied, _) = watch::channel(applied_index);
        ApplyHub {
            node_id,
            waiters: Mutex::new(HashMap::new()),
            events,
            applied,
            counters: Arc::new(Counters::default()),
        }
    }

    pub(crate) fn register(&self, id: RequestId) -> WaiterGuard<'_> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().insert(id, tx);
        WaiterGuard { hub: self, id, rx }
    }

    /// Hands an outcome to the write waiting for it, if this node originated it.
    pub(crate) fn complete(&self, id: &RequestId, applied: &Applied) {
        if id.node != self.node_id {
            return;
        }
        if let Some(tx) = self.waiters.lock().remove(id) {
            let _ = tx.send(applied.clone());
        }
    }

    pub(crate) fn publish(&self, event: AppliedEvent) {
        // No subscriber is fine: nothing to deliver.
        let _ = self.events.send(Arc::new(event));
    }

    pub(crate) fn set_applied(&self, index: u64) {
        self.applied.send_if_modified(|current| {
            let moved = index != *current;
            *current = index;
            moved
        });
    }

    pub(crate) fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    pub(crate) fn watch_applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<AppliedEvent>> {
        self.events.subscribe()
    }
}
