//! Write failures: a child process runs with a file size limit
//! (`ulimit -f`, SIGXFSZ ignored, so a write past it fails with EFBIG
//! instead of killing the process). A failed commit poisons the WAL and
//! leaves no partial frame behind; a failed snapshot before its rename
//! leaves the WAL working on its old log.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a test

mod wal_support;

use std::path::Path;
use std::process::Command as Process;

use roomstate::{Command, Millis};
use roomstate_server::wal::{FsyncMode, Wal, WalError};
use wal_support::{commands, opts};

/// The file size limit of the child, in KiB (bash's `ulimit -f` unit).
const LIMIT_KIB: u64 = 64;

/// Runs the ignored test `name` of this binary as a child under the file
/// size limit, with `dir` in `WAL_FAULT_DIR`; panics if it fails.
fn run_limited(name: &str, dir: &Path) {
    let exe = std::env::current_exe().unwrap();
    let out = Process::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {LIMIT_KIB}; exec \"$0\" --ignored --exact {name} --test-threads=1"
        ))
        .arg(exe)
        .env("WAL_FAULT_DIR", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the child {name} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fault_dir() -> std::path::PathBuf {
    std::env::var_os("WAL_FAULT_DIR").unwrap().into()
}

#[test]
#[ignore = "child half of a_failed_commit_poisons_the_wal_and_leaves_no_partial_frame"]
fn child_commits_until_the_disk_refuses() {
    let dir = fault_dir();
    let (_, cmds) = commands(51, 2_000);
    let (mut wal, _) = Wal::open(&dir, opts(FsyncMode::Always)).unwrap();
    let mut committed = 0u64;
    let mut failed = false;
    for batch in cmds.chunks(10) {
        for (now, command) in batch {
            wal.append(*now, command).unwrap();
        }
        match wal.commit() {
            Ok(_) => committed += batch.len() as u64,
            Err(WalError::Io { action, .. }) => {
                assert_eq!(action, "append to the log");
                failed = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(failed, "the size limit was reached");
    assert!(wal.is_poisoned());
    assert!(matches!(
        wal.append(Millis(1), &Command::Tick),
        Err(WalError::Poisoned)
    ));
    assert!(matches!(wal.commit(), Err(WalError::Poisoned)));
    assert!(matches!(wal.snapshot(b"x"), Err(WalError::Poisoned)));
    std::fs::write(dir.join("committed"), committed.to_string()).unwrap();
}

#[test]
fn a_failed_commit_poisons_the_wal_and_leaves_no_partial_frame() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("shard");
    run_limited("child_commits_until_the_disk_refuses", &wal_dir);
    let committed: usize = std::fs::read_to_string(wal_dir.join("committed"))
        .unwrap()
        .parse()
        .unwrap();
    let (_, cmds) = commands(51, 2_000);
    let (_, recovery) = Wal::open(&wal_dir, opts(FsyncMode::Always)).unwrap();
    assert!(committed > 0);
    // Complete frames of the failed batch that reached the file are gone
    // too: their commit failed, so they were never acknowledged.
    assert_eq!(recovery.records.len(), committed);
    assert!(
        recovery.records == cmds[..committed],
        "the committed records"
    );
    assert_eq!(
        recovery.torn_tail_cut, None,
        "the partial frame was removed"
    );
}

#[test]
#[ignore = "child half of a_failed_snapshot_leaves_the_wal_on_its_old_log"]
fn child_snapshots_too_big_for_the_disk() {
    let dir = fault_dir();
    let (_, cmds) = commands(52, 40);
    let (mut wal, _) = Wal::open(&dir, opts(FsyncMode::Always)).unwrap();
    for (now, command) in &cmds[..20] {
        wal.append(*now, command).unwrap();
    }
    wal.commit().unwrap();
    // Bigger than the file size limit: the snapshot's tmp file fails.
    let huge = vec![7u8; (LIMIT_KIB as usize + 1) * 1024];
    match wal.snapshot(&huge) {
        Err(WalError::Io { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        !wal.is_poisoned(),
        "nothing was renamed: the old log still counts"
    );
    assert_eq!(wal.generation(), 0);
    for (now, command) in &cmds[20..] {
        wal.append(*now, command).unwrap();
    }
    wal.commit().unwrap();
}

#[test]
fn a_failed_snapshot_leaves_the_wal_on_its_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("shard");
    run_limited("child_snapshots_too_big_for_the_disk", &wal_dir);
    assert!(
        !wal_support::files_named(&wal_dir, "", ".tmp").is_empty(),
        "the failed snapshot left its tmp file"
    );
    let (_, cmds) = commands(52, 40);
    let (_, recovery) = Wal::open(&wal_dir, opts(FsyncMode::Always)).unwrap();
    assert_eq!(recovery.snapshot, None);
    assert_eq!(recovery.records, cmds);
    assert!(
        wal_support::files_named(&wal_dir, "", ".tmp").is_empty(),
        "open removes it"
    );
}
