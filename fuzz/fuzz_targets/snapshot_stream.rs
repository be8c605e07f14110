#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confab_storage::fuzzing::snapshot_stream(data));
