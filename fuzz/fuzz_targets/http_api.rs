#![no_main]
//! One HTTP request through the server's whole router, on a single-node cluster started
//! in-process (`confab::fuzzing::http_request`: the route, method, path ids, query and JSON
//! body are read from the input).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confab::fuzzing::http_request(data));
