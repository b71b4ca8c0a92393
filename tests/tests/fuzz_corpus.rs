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

/// The fuzzers' strings (text.rs, `Arbitrary for Str`): seven times in eight
/// one of sixteen fixed names, so that rooms, users and keys collide, else
/// an arbitrary string. A generator that drifted (always empty, never the
/// last names, never arbitrary) would leave the fuzz targets running
/// without finding anything, and no other test would notice.
#[test]
fn fuzzed_strings_are_mostly_colliding_names() {
    use arbitrary::{Arbitrary, Unstructured};
    use roomstate::Str;
    use std::collections::BTreeMap;

    // Each first byte picks: below 224 the name `pick % 16`.
    let names: Vec<Str> = (0u8..16)
        .map(|pick| Str::arbitrary(&mut Unstructured::new(&[pick])).unwrap())
        .collect();
    for (pick, name) in names.iter().enumerate() {
        let again = Str::arbitrary(&mut Unstructured::new(&[pick as u8 + 208])).unwrap();
        assert_eq!(&again, name, "pick {pick} and {} agree", pick + 208);
    }
    let distinct: std::collections::BTreeSet<&Str> = names.iter().collect();
    assert_eq!(distinct.len(), 16, "sixteen different names: {names:?}");
    // From 224 up the rest of the input becomes the string, not a name.
    for pick in [224u8, 255] {
        let s = Str::arbitrary(&mut Unstructured::new(&[pick, b'z', b'z', 2])).unwrap();
        assert!(!names.contains(&s), "pick {pick} gave the name {s:?}");
    }

    // Over pseudo-random input: about 7/8 names, every name drawn.
    let mut rng = roomstate_tests::sim::Rng::new(7);
    let bytes: Vec<u8> = (0..64 * 1024).map(|_| rng.next_u64() as u8).collect();
    let mut u = Unstructured::new(&bytes);
    let mut seen: BTreeMap<Str, u32> = BTreeMap::new();
    let mut draws = 0u32;
    while u.len() > 64 {
        *seen.entry(Str::arbitrary(&mut u).unwrap()).or_default() += 1;
        draws += 1;
    }
    let named: u32 = names
        .iter()
        .map(|n| seen.get(n).copied().unwrap_or(0))
        .sum();
    let share = f64::from(named) / f64::from(draws);
    assert!(
        (0.8..0.95).contains(&share),
        "{named} of {draws} draws were names"
    );
    assert!(names.iter().all(|n| seen.contains_key(n)), "{seen:?}");
}
