//! Fuzz target `roundtrip`: see `roomstate_tests::fuzzing::roundtrip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstate_tests::fuzzing::roundtrip(data));
