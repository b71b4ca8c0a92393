//! Fuzz target `replay_line`: arbitrary request lines into the vendor
//! dialects; see `roomstate_dialects::check_replay`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstate_dialects::check_replay(data));
