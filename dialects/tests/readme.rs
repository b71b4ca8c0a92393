//! The root README's replay example is real: its input block, run through
//! `roomstate-replay`, gives exactly its output block.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a test

use std::io::Write;
use std::process::{Command, Stdio};

/// The fenced `json` blocks of the README's dialects section, in order.
fn json_blocks(readme: &str) -> Vec<String> {
    let section = readme
        .split("## Vendor dialects")
        .nth(1)
        .expect("README has a Vendor dialects section");
    section
        .split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

#[test]
fn readme_replay_example_is_what_the_binary_prints() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let blocks = json_blocks(&readme);
    assert_eq!(blocks.len(), 2, "an input and an output block");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomstate-replay"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(blocks[0].as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), blocks[1]);
}
