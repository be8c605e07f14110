//! Slow fsync for a node process: `slow_fsync.c`, built once per test binary with the C
//! compiler every Rust toolchain here has, loaded with `LD_PRELOAD`. Each node gets its own
//! delay file, so a test slows one node's disk and heals it while the node runs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The shared library, built on first use.
pub fn library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let source = super::repo_root().join("tests/common/slow_fsync.c");
        let out = std::env::temp_dir().join(format!("confab-slow-fsync-{}.so", std::process::id()));
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("run cc (slow fsync library)");
        assert!(status.success(), "building {} failed", source.display());
        out
    })
}

/// The environment that loads the library into a node, with `delay_file` as its delay.
pub fn env(delay_file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".to_string(), library().display().to_string()),
        (
            "CONFAB_SLOW_FSYNC_FILE".to_string(),
            delay_file.display().to_string(),
        ),
    ]
}

/// Sets the node's fsync delay (0 heals it).
pub fn set_delay(delay_file: &Path, ms: u64) {
    std::fs::write(delay_file, ms.to_string()).expect("write the fsync delay");
}
