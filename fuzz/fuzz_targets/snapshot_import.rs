#![no_main]
//! A snapshot stream imported into a real engine (`confab_storage::fuzzing::snapshot_import`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confab_storage::fuzzing::snapshot_import(data));
