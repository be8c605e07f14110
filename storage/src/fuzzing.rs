//! Entry points for the fuzz targets (`fuzz/`, `cargo +nightly fuzz run <target>`) and the corpus
//! replay tests (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes and returns nothing; each
//! must never panic on any input: a decoder answers garbage with an error. The assertions here
//! are properties of successful decodes (a decoded value re-encodes to what was read).

use crate::Command;
use std::path::{Path, PathBuf};

/// The package dir a test runs in: cargo's run-time `CARGO_MANIFEST_DIR`, else `compiled` (the
/// caller's `env!("CARGO_MANIFEST_DIR")`). Run time first: the compile-time value names wherever
/// the shared target dir was first built, which need not be this checkout, and cargo reuses a
/// test binary built from another clone of the same sources.
pub fn package_dir(compiled: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(compiled))
}

/// Replays a fuzz target's inputs without fuzzing, for `make test` on stable: every file of
/// `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` under `fuzz_dir`, in name order,
/// through `run` (the target's entry point). Panics when there is no input, or naming every
/// input that panicked; returns how many inputs ran. Shared by the corpus tests of the storage, Raft and server crates.
pub fn replay_corpus(fuzz_dir: &Path, target: &str, run: fn(&[u8])) -> usize {
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    assert!(
        !files.is_empty(),
        "no {target} corpus in {}",
        fuzz_dir.display()
    );
    files.sort();
    let mut failed = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read corpus file");
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: panicked on {failed:?}");
    files.len()
}

/// The Raft log entry decoder (`raft_log` values, [`crate::log`]): `[u64 index][stored value]`,
/// the value being `crc32 · payload`. The crc is checked as stored, then once more with the crc
/// recomputed, so that mutations reach past it.
pub fn log_entry(data: &[u8]) {
    let Some((index, value)) = data.split_first_chunk::<8>() else {
        return;
    };
    let index = u64::from_be_bytes(*index);
    if let Ok(payload) = crate::log::decode_entry(index, value) {
        assert_eq!(crate::log::encode_entry(index, &payload), value);
    }
    if let Some(payload) = value.get(4..) {
        let fixed = crate::log::encode_entry(index, payload);
        let decoded = crate::log::decode_entry(index, &fixed).expect("a fresh crc is accepted");
        assert_eq!(decoded, payload);
        // Any other index fails the crc (it covers the index).
        assert!(crate::log::decode_entry(index ^ 1, &fixed).is_err());
    }
}

/// [`Command::decode`]; a command that decodes re-encodes to one that decodes equal.
pub fn command(data: &[u8]) {
    if let Ok(command) = Command::decode(data) {
        let bytes = command.encode();
        let again = Command::decode(&bytes).expect("a re-encoded command decodes");
        assert_eq!(again, command);
        assert_eq!(again.encode(), bytes);
        let _ = command.payload_bytes();
        let _ = command.ends_or_changes_sessions();
    }
}

/// The snapshot stream reader and verifier ([`crate::snapshot::verify_snapshot`]: frames, crc
/// per chunk, sequence, header, end marker) and the entry decoder of a data chunk. The stream
/// is verified as given, then with every frame's crc recomputed so that mutations reach the
/// chunk parser.
pub fn snapshot_stream(data: &[u8]) {
    if let Ok(summary) = crate::snapshot::verify_snapshot(data) {
        assert_eq!(summary.bytes, data.len() as u64);
    }
    let fixed = with_fresh_crcs(data);
    if let Ok(summary) = crate::snapshot::verify_snapshot(fixed.as_slice()) {
        assert_eq!(summary.bytes, fixed.len() as u64);
    }
    if let Ok(entries) = crate::snapshot::decode_entries(data) {
        let mut encoded = Vec::with_capacity(data.len());
        for (key, value) in &entries {
            encoded.extend_from_slice(&(key.len() as u32).to_be_bytes());
            encoded.extend_from_slice(key);
            encoded.extend_from_slice(&(value.len() as u32).to_be_bytes());
            encoded.extend_from_slice(value);
        }
        assert_eq!(encoded, data);
    }
}

/// `data` with the crc32 of each whole frame (`[u32 len][u32 crc][payload]`) recomputed.
fn with_fresh_crcs(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0usize;
    while let Some(head) = out.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(payload) = out.get(at + 8..at + 8 + len) else {
            break;
        };
        let crc = crc32fast::hash(payload);
        out[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
        at += 8 + len;
    }
    out
}

/// A snapshot stream imported into a real engine ([`crate::Engine::import_snapshot`], RocksDB
/// in a temp dir opened once per fuzzing process), as given and with fresh frame crcs. A stream
/// that is refused leaves the live state exactly as it was (equal [`crate::Engine::state_digest`]);
/// one that is taken becomes the state, which exports and imports again to the same digest,
/// and the whole data dir still reads back with good checksums.
pub fn snapshot_import(data: &[u8]) {
    static ENGINE: std::sync::OnceLock<crate::Engine> = std::sync::OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("confab-fuzz-import-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let engine = crate::Engine::open(&dir).expect("fuzz: open an engine in a temp dir");
        // libFuzzer ends with exit(): stop RocksDB's jobs before its statics are destroyed,
        // and remove the data dir (on tmpfs, memory) so a replay leaves nothing behind.
        extern "C" fn stop_at_exit() {
            if let Some(engine) = ENGINE.get() {
                engine.stop_background_work();
                let _ = std::fs::remove_dir_all(engine.path());
            }
        }
        // SAFETY: registers a plain function with no arguments, as atexit requires.
        unsafe { libc::atexit(stop_at_exit) };
        engine
    });
    for stream in [data.to_vec(), with_fresh_crcs(data)] {
        let before = engine
            .state_digest()
            .expect("fuzz: digest before the import");
        match engine.import_snapshot(std::io::Cursor::new(&stream)) {
            Err(_) => assert_eq!(
                engine.state_digest().expect("fuzz: digest after a refusal"),
                before,
                "a refused snapshot changed the state"
            ),
            Ok(summary) => {
                assert_eq!(summary.bytes, stream.len() as u64);
                let imported = engine
                    .state_digest()
                    .expect("fuzz: digest after the import");
                let mut exported = Vec::new();
                engine
                    .export_snapshot(&mut exported)
                    .expect("fuzz: an imported state exports");
                engine
                    .import_snapshot(std::io::Cursor::new(&exported))
                    .expect("fuzz: an engine's own export imports");
                assert_eq!(
                    engine
                        .state_digest()
                        .expect("fuzz: digest after the round trip"),
                    imported,
                    "export then import changed the state"
                );
                engine
                    .verify_all()
                    .expect("fuzz: the data dir reads back after an import");
            }
        }
    }
}
