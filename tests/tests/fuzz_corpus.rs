//! Replays every committed fuzz corpus and regression file through the
//! fuzz targets' bodies on the stable toolchain, so an input that once
//! crashed a target is checked on every `cargo test`.

use std::fs;
use std::path::PathBuf;

use roomstate_tests::fuzzing;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut found = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() {
                let bytes = fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no committed corpus for fuzz target {target}"
    );
    for (path, bytes) in &files {
        let result = std::panic::catch_unwind(|| run(bytes));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
    println!("{target}: {} inputs replayed", files.len());
}

#[test]
fn commands_corpus_replays() {
    replay("commands", fuzzing::commands);
}

#[test]
fn snapshot_decode_corpus_replays() {
    replay("snapshot_decode", fuzzing::snapshot_decode);
}

#[test]
fn roundtrip_corpus_replays() {
    replay("roundtrip", fuzzing::roundtrip);
}
