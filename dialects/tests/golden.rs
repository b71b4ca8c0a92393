//! Golden files, replayed through the `roomstate-replay` binary: each
//! `golden/<vendor>.in.jsonl` must give exactly `golden/<vendor>.out.jsonl`.
//! The outputs were generated once with the binary and checked line by line
//! against the vendor documents (see the crate docs for the choices made
//! where they are silent). To regenerate after a deliberate change, see
//! `golden/make_inputs.py`, and check the diff by hand.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const VENDORS: [&str; 5] = ["tencent", "easemob", "agora_chat", "netease", "zego"];

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn replay_file(input: &PathBuf) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_roomstate-replay"))
        .arg(input)
        .output()
        .expect("run roomstate-replay");
    assert!(out.status.success(), "replay failed: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn check(vendor: &str) {
    let input = golden(&format!("{vendor}.in.jsonl"));
    let expected = std::fs::read_to_string(golden(&format!("{vendor}.out.jsonl"))).unwrap();
    let actual = replay_file(&input);
    let lines_in = std::fs::read_to_string(&input).unwrap().lines().count();
    assert_eq!(
        actual.lines().count(),
        lines_in,
        "one output line per input line"
    );
    for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, e, "{vendor}: line {} differs", i + 1);
    }
    assert_eq!(actual, expected, "{vendor}: output differs");
}

#[test]
fn tencent() {
    check("tencent");
}

#[test]
fn easemob() {
    check("easemob");
}

#[test]
fn agora_chat() {
    check("agora_chat");
}

#[test]
fn netease() {
    check("netease");
}

#[test]
fn zego() {
    check("zego");
}

/// Standard input (no FILE argument, or `-`) gives the same answers as a
/// file.
#[test]
fn stdin_gives_the_same_output() {
    for (v, args) in VENDORS.iter().flat_map(|v| [(v, &[][..]), (v, &["-"][..])]) {
        let input = std::fs::read_to_string(golden(&format!("{v}.in.jsonl"))).unwrap();
        let expected = std::fs::read_to_string(golden(&format!("{v}.out.jsonl"))).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomstate-replay"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            expected,
            "{v} {args:?}"
        );
    }
}

#[test]
fn replay_is_deterministic() {
    let input = golden("netease.in.jsonl");
    assert_eq!(replay_file(&input), replay_file(&input));
}

#[test]
fn missing_file_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_roomstate-replay"))
        .arg(golden("no-such-file.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
