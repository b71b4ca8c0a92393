//! What each [`FsyncMode`] makes durable, counted by the WAL's stats. With
//! `Always`: each new snapshot and log is fsynced before its rename and the
//! directory after it; removing stale files is followed by a directory
//! fsync; each commit that wrote is one `fdatasync`; a log that open cut
//! is fsynced. With `Never`: none of these. A crash test cannot see a
//! missing fsync (the page cache outlives a killed process), so these
//! counts are what pins it.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a test

mod wal_support;

use std::fs;
use std::path::Path;

use roomstate_server::wal::{FsyncMode, Wal};
use wal_support::{commands, files_named, opts};

/// `(fdatasync per commit, file fsyncs, directory fsyncs)` since open.
fn fsyncs(wal: &Wal) -> (u64, u64, u64) {
    let s = wal.stats();
    (s.fsyncs, s.file_fsyncs, s.dir_fsyncs)
}

/// Leaves a stale `.tmp` beside the log, as a crash mid-snapshot would.
fn leave_tmp(wal: &Wal) {
    let name = wal.log_path().file_name().unwrap().to_str().unwrap();
    fs::write(wal.dir().join(format!("{name}.tmp")), b"half a file").unwrap();
}

fn tmps(dir: &Path) -> usize {
    files_named(dir, "wal-", ".tmp").len() + files_named(dir, "snap-", ".tmp").len()
}

/// One life of a shard directory: open fresh, commit, commit nothing,
/// two snapshots, reopen with a stale file. Returns the counts after each
/// step.
fn life(mode: FsyncMode) -> Vec<(&'static str, (u64, u64, u64))> {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(11, 6);
    let mut seen = Vec::new();
    let (mut wal, _) = Wal::open(dir.path(), opts(mode)).unwrap();
    assert_eq!(*wal.options(), opts(mode));
    seen.push(("open fresh", fsyncs(&wal)));
    for (now, command) in &cmds[..3] {
        wal.append(*now, command).unwrap();
    }
    wal.commit().unwrap();
    seen.push(("commit", fsyncs(&wal)));
    wal.commit().unwrap();
    seen.push(("empty commit", fsyncs(&wal)));
    wal.snapshot(b"state one").unwrap();
    seen.push(("first snapshot", fsyncs(&wal)));
    for (now, command) in &cmds[3..] {
        wal.append(*now, command).unwrap();
    }
    wal.snapshot(b"state two").unwrap();
    seen.push(("second snapshot", fsyncs(&wal)));
    leave_tmp(&wal);
    drop(wal);
    assert_eq!(tmps(dir.path()), 1);
    let (wal, recovery) = Wal::open(dir.path(), opts(mode)).unwrap();
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"state two"[..]));
    assert_eq!(tmps(dir.path()), 0, "open removes the stale file");
    seen.push(("reopen with a stale file", fsyncs(&wal)));
    leave_tmp(&wal);
    drop(wal);
    fs::remove_file(&files_named(dir.path(), "wal-", ".tmp")[0]).unwrap();
    let (wal, _) = Wal::open(dir.path(), opts(mode)).unwrap();
    seen.push(("reopen clean", fsyncs(&wal)));
    seen
}

#[test]
fn always_fsyncs_each_new_file_each_rename_each_removal_and_each_commit() {
    assert_eq!(
        life(FsyncMode::Always),
        [
            // The new log: the file, then the directory after its rename.
            ("open fresh", (0, 1, 1)),
            ("commit", (1, 1, 1)),
            ("empty commit", (1, 1, 1)),
            // The snapshot and the next log, each file and rename; then
            // the old log's removal (generation 0 has no snapshot).
            ("first snapshot", (1, 3, 4)),
            // Its commit, both new files, and the removal of the old log
            // and the old snapshot (one directory fsync for both).
            ("second snapshot", (2, 5, 7)),
            ("reopen with a stale file", (0, 0, 1)),
            ("reopen clean", (0, 0, 0)),
        ]
    );
}

#[test]
fn never_fsyncs_nothing() {
    for (step, counts) in life(FsyncMode::Never) {
        assert_eq!(counts, (0, 0, 0), "{step}");
    }
}

/// A torn tail cut at open is made durable before appending after it: one
/// file fsync with `Always`, none with `Never`.
#[test]
fn a_torn_tail_cut_at_open_is_fsynced_with_always_only() {
    for (mode, expected) in [
        (FsyncMode::Always, (0, 1, 0)),
        (FsyncMode::Never, (0, 0, 0)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (_, cmds) = commands(12, 4);
        let (mut wal, _) = Wal::open(dir.path(), opts(mode)).unwrap();
        for (now, command) in &cmds {
            wal.append(*now, command).unwrap();
        }
        wal.commit().unwrap();
        let log = wal.log_path().to_path_buf();
        drop(wal);
        let mut bytes = fs::read(&log).unwrap();
        let whole = bytes.len() as u64;
        bytes.extend_from_slice(&[7, 0, 0, 0, 1]);
        fs::write(&log, bytes).unwrap();
        let (wal, recovery) = Wal::open(dir.path(), opts(mode)).unwrap();
        assert_eq!(recovery.torn_tail_cut, Some(whole), "{mode:?}");
        assert_eq!(recovery.records, cmds);
        assert_eq!(fsyncs(&wal), expected, "{mode:?}");
    }
}

/// Files of older generations, left by a crash between a snapshot and the
/// removal of what it covers, are removed at open, and the removal is
/// made durable: one directory fsync with `Always`, for an old log alone
/// and for an old snapshot alone.
#[test]
fn older_generations_removed_at_open_are_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(13, 2);
    let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap();
    wal.append(cmds[0].0, &cmds[0].1).unwrap();
    wal.commit().unwrap();
    let log0 = (
        wal.log_path().to_path_buf(),
        fs::read(wal.log_path()).unwrap(),
    );
    wal.snapshot(b"state one").unwrap();
    let snap1 = files_named(dir.path(), "snap-", "")[0].clone();
    let snap1 = (snap1.clone(), fs::read(&snap1).unwrap());
    wal.append(cmds[1].0, &cmds[1].1).unwrap();
    wal.snapshot(b"state two").unwrap();
    drop(wal);
    for (path, bytes) in [log0, snap1] {
        fs::write(&path, bytes).unwrap();
        let (wal, recovery) = Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap();
        assert_eq!(recovery.snapshot.as_deref(), Some(&b"state two"[..]));
        assert!(!path.exists(), "{} is removed", path.display());
        assert_eq!(fsyncs(&wal), (0, 0, 1), "{}", path.display());
    }
}
