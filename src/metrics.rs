//! Prometheus metrics: the `metrics` facade everywhere, rendered at `GET /metrics` together with
//! Raft and RocksDB figures read at scrape time.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once; later calls reuse it.
pub fn install() -> Option<&'static PrometheusHandle> {
    if HANDLE.get().is_none() {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets(&buckets)
            .ok()?
            .install_recorder()
            .ok()?;
        let _ = HANDLE.set(recorder);
    }
    HANDLE.get()
}

pub fn render() -> String {
    HANDLE.get().map(|h| h.render()).unwrap_or_default()
}
