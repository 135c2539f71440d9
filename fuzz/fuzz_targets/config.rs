//! `config`: see `duplex_server::fuzzing::config` for the input's layout and
//! what is asserted (the parser it reaches is crate-private).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duplex_server::fuzzing::config(data));
