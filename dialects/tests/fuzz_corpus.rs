//! Replays the committed corpus and regression inputs of the `replay_line`
//! fuzz target on the stable toolchain.

#![allow(clippy::unwrap_used)] // a test: a failed read is a failed test

use std::path::PathBuf;

#[test]
fn replay_line_corpus_replays() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus/replay_line", "regressions/replay_line"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            let ok = std::panic::catch_unwind(|| roomstate_dialects::check_replay(&bytes)).is_ok();
            assert!(ok, "{} fails", e.path().display());
            n += 1;
        }
    }
    assert!(n > 0, "no committed corpus for replay_line");
}
