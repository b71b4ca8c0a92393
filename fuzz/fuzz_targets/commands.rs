//! Fuzz target `commands`: see `roomstate_tests::fuzzing::commands`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomstate_tests::fuzzing::commands(data));
