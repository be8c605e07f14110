#![no_main]
//! The raw bytes a WebSocket client sends after the upgrade, through the server's connection
//! code (`confab::fuzzing::ws_stream`: frame reader, control frames, client messages).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confab::fuzzing::ws_stream(data));
