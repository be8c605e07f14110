#![no_main]
//! `[u8 kind][body]`: one node-to-node message (`confab_raft::fuzzing::WireKind`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confab_raft::fuzzing::raft_wire(data));
