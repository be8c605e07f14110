//! The `raft_wire` fuzz corpus (`fuzz/corpus/raft_wire/`, `fuzz/regressions/raft_wire/`)
//! replayed through the same `confab_raft::fuzzing` entry point as the fuzz target, on the
//! stable toolchain, so `make test` keeps every seed and every past finding passing.
//!
//! `write_seed_corpus` (ignored) writes the seeds from real encodings:
//! `cargo test --release -p confab-raft --test fuzz_corpus -- --ignored`.

use confab_raft::fuzzing;
use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    confab_storage::fuzzing::package_dir(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn raft_wire_corpus() {
    confab_storage::fuzzing::replay_corpus(&fuzz_dir(), "raft_wire", fuzzing::raft_wire);
}

#[test]
fn seeds_decode() {
    for (name, bytes) in fuzzing::raft_wire_seeds() {
        fuzzing::raft_wire(&bytes);
        assert!(bytes.len() > 1, "{name}");
    }
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus"]
fn write_seed_corpus() {
    let dir = fuzz_dir().join("corpus").join("raft_wire");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes) in fuzzing::raft_wire_seeds() {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
