//! Test support: runs openraft's storage conformance suite on this crate's log store and state
//! machine, so that tests outside the crate need not name openraft types.

use crate::hub::ApplyHub;
use crate::log_store::LogStore;
use crate::snapshot_store::SnapshotStore;
use crate::state_machine::StateMachine;
use crate::types::TypeConfig;
use confab_storage::Engine;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::StorageError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Builder {
    base: PathBuf,
    next: AtomicU64,
}

fn io_storage_error(e: std::io::Error) -> StorageError<TypeConfig> {
    StorageError::read(TypeConfig::err_from_error(&e))
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine> for Builder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = self.base.join(format!(
            "store-{}",
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        let db = dir.join("db");
        let engine = crate::codec::storage(move || Engine::open(&db))
            .await
            .map_err(io_storage_error)?;
        let engine = Arc::new(engine);
        let snapshots = SnapshotStore::open(&dir.join("snapshots")).map_err(io_storage_error)?;
        let hub = Arc::new(ApplyHub::new(0, 0, 16));
        let sm = StateMachine::open(engine.clone(), snapshots, hub)
            .await
            .map_err(io_storage_error)?;
        Ok(((), LogStore::new(engine, Default::default()), sm))
    }
}

/// Runs openraft's `testing::log::Suite` against fresh stores created under `base`.
pub async fn run_storage_suite(base: &Path) -> Result<(), String> {
    let builder = Builder {
        base: base.to_path_buf(),
        next: AtomicU64::new(0),
    };
    Suite::<TypeConfig, LogStore, StateMachine, Builder, ()>::test_all(builder)
        .await
        .map_err(|e| e.to_string())
}
