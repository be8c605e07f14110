//! openraft's storage conformance suite on confab's log store and state machine (real RocksDB).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    confab_raft::testing::run_storage_suite(dir.path())
        .await
        .expect("storage suite");
}
