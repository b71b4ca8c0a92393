//! Fuzz target `snapshot_decode`: see `roomstate_tests::fuzzing::snapshot_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstate_tests::fuzzing::snapshot_decode(data));
