//! `admission`: see `duplex_server::fuzzing::admission` for the input's layout and
//! what is asserted (the Origin check and the token parsing are crate-private).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_server::fuzzing::admission(data));
