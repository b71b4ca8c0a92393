//! The snapshot + truncate sequence at every crash point: write the new
//! snapshot (tmp, fsync, rename), start the new log (likewise), remove the
//! old log and snapshot. Each crash point's directory is built from the
//! files before and after a real snapshot; recovery must give the same
//! engine at each.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a test: a failure is a failed test

mod wal_support;

use std::fs;
use std::path::{Path, PathBuf};

use roomstate::{Command, Millis, Profile};
use roomstate_server::wal::{Corruption, FsyncMode, Wal, WalError};
use wal_support::{commands, copy_dir, drive, engine, files_named, opts, recovered, state};

struct Run {
    profile: Profile,
    cmds: Vec<(Millis, Command)>,
    /// The shard directory just before the second snapshot.
    before: tempfile::TempDir,
    /// Just after it.
    after: tempfile::TempDir,
    /// The engine's state at the snapshot.
    at_snapshot: Vec<u8>,
    /// The engine's state after every command.
    at_end: Vec<u8>,
}

const SPLIT: [usize; 2] = [150, 300];

/// Drives 450 commands with a snapshot after 150 and 300, keeping copies
/// of the directory just before and just after the second one.
fn run() -> Run {
    let (profile, cmds) = commands(41, 450);
    let work = tempfile::tempdir().unwrap();
    let before = tempfile::tempdir().unwrap();
    let after = tempfile::tempdir().unwrap();
    let mut live = engine(profile);
    let (mut wal, _) = Wal::open(work.path(), opts(FsyncMode::Always)).unwrap();
    drive(&mut wal, &mut live, &cmds[..SPLIT[0]], 7, 1);
    wal.snapshot(&state(&mut live)).unwrap();
    drive(&mut wal, &mut live, &cmds[SPLIT[0]..SPLIT[1]], 7, 2);
    copy_dir(work.path(), before.path());
    let at_snapshot = state(&mut live);
    wal.snapshot(&at_snapshot).unwrap();
    copy_dir(work.path(), after.path());
    drive(&mut wal, &mut live, &cmds[SPLIT[1]..], 7, 3);
    Run {
        profile,
        cmds,
        before,
        after,
        at_snapshot,
        at_end: state(&mut live),
    }
}

fn one(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let found = files_named(dir, prefix, suffix);
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// Recovers `dir`, checks the state is the snapshot's, then runs the rest
/// of the commands and checks the end state, and that only the current
/// snapshot and log are left.
fn check(run: &Run, dir: &Path, point: &str) {
    let (mut wal, recovery) =
        Wal::open(dir, opts(FsyncMode::Always)).unwrap_or_else(|e| panic!("{point}: {e}"));
    let mut back = recovered(run.profile, recovery);
    assert_eq!(
        state(&mut back),
        run.at_snapshot,
        "{point}: state at the crash"
    );
    drive(&mut wal, &mut back, &run.cmds[SPLIT[1]..], 7, 3);
    drop(wal);
    assert_eq!(
        files_named(dir, "", ".tmp"),
        Vec::<PathBuf>::new(),
        "{point}"
    );
    assert_eq!(files_named(dir, "snap-", ".snap").len(), 1, "{point}");
    assert_eq!(files_named(dir, "wal-", ".log").len(), 1, "{point}");
    let (_, recovery) = Wal::open(dir, opts(FsyncMode::Always)).unwrap();
    let mut again = recovered(run.profile, recovery);
    assert_eq!(state(&mut again), run.at_end, "{point}: state at the end");
    assert_eq!(
        state(&mut back),
        run.at_end,
        "{point}: live state at the end"
    );
}

fn add(dir: &Path, from: &Path, name_suffix: &str, bytes: &[u8]) {
    let name = format!(
        "{}{name_suffix}",
        from.file_name().unwrap().to_str().unwrap()
    );
    fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn every_crash_point_of_a_snapshot_recovers_the_same_state() {
    let run = run();
    let new_snap = one(run.after.path(), "snap-", ".snap");
    let new_log = one(run.after.path(), "wal-", ".log");
    let old_log = one(run.before.path(), "wal-", ".log");
    let old_snap = one(run.before.path(), "snap-", ".snap");
    assert_ne!(new_snap.file_name(), old_snap.file_name());
    let snap_bytes = fs::read(&new_snap).unwrap();
    let log_bytes = fs::read(&new_log).unwrap();

    let mut points: Vec<(&str, tempfile::TempDir)> = Vec::new();
    let mut point = |name, build: &dyn Fn(&Path)| {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(run.before.path(), dir.path());
        build(dir.path());
        points.push((name, dir));
    };
    point("nothing of the snapshot written", &|_| {});
    point("snapshot tmp half written", &|d| {
        add(d, &new_snap, ".tmp", &snap_bytes[..snap_bytes.len() / 2]);
    });
    point("snapshot tmp written, not renamed", &|d| {
        add(d, &new_snap, ".tmp", &snap_bytes);
    });
    point("snapshot renamed, no new log", &|d| {
        add(d, &new_snap, "", &snap_bytes)
    });
    point("snapshot renamed, new log tmp empty", &|d| {
        add(d, &new_snap, "", &snap_bytes);
        add(d, &new_log, ".tmp", &[]);
    });
    point("snapshot renamed, new log tmp written", &|d| {
        add(d, &new_snap, "", &snap_bytes);
        add(d, &new_log, ".tmp", &log_bytes);
    });
    point("new log renamed, old files not removed", &|d| {
        add(d, &new_snap, "", &snap_bytes);
        add(d, &new_log, "", &log_bytes);
    });
    point("old log removed, old snapshot not", &|d| {
        add(d, &new_snap, "", &snap_bytes);
        add(d, &new_log, "", &log_bytes);
        fs::remove_file(d.join(old_log.file_name().unwrap())).unwrap();
    });
    point("old snapshot removed, old log not", &|d| {
        add(d, &new_snap, "", &snap_bytes);
        add(d, &new_log, "", &log_bytes);
        fs::remove_file(d.join(old_snap.file_name().unwrap())).unwrap();
    });
    for (name, dir) in &points {
        check(&run, dir.path(), name);
    }
    // And the finished sequence.
    let done = tempfile::tempdir().unwrap();
    copy_dir(run.after.path(), done.path());
    check(&run, done.path(), "snapshot complete");
}

#[test]
fn a_damaged_snapshot_stops_the_start_and_repair_does_not_pretend() {
    let run = run();
    let snap = one(run.after.path(), "snap-", ".snap");
    let bytes = fs::read(&snap).unwrap();
    for at in [0, 13, 40, bytes.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(run.after.path(), dir.path());
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x02;
        let path = dir.path().join(snap.file_name().unwrap());
        fs::write(&path, &damaged).unwrap();
        for options in [
            opts(FsyncMode::Never),
            wal_support::repairing(FsyncMode::Never),
        ] {
            match Wal::open(dir.path(), options) {
                Err(err @ WalError::CorruptSnapshot { .. }) => {
                    let text = err.to_string();
                    assert!(text.contains(&path.display().to_string()), "{text}");
                    assert!(text.contains("backup"), "{text}");
                }
                other => panic!("flip at {at}: {other:?}"),
            }
        }
    }
    // A truncated snapshot too.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(run.after.path(), dir.path());
    fs::write(
        dir.path().join(snap.file_name().unwrap()),
        &bytes[..bytes.len() - 3],
    )
    .unwrap();
    assert!(matches!(
        Wal::open(dir.path(), opts(FsyncMode::Never)),
        Err(WalError::CorruptSnapshot {
            reason: Corruption::SnapshotLength { .. },
            ..
        })
    ));
}

#[test]
fn a_log_without_its_snapshot_stops_the_start() {
    let run = run();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(run.after.path(), dir.path());
    let snap = one(dir.path(), "snap-", ".snap");
    let log = one(dir.path(), "wal-", ".log");
    fs::remove_file(&snap).unwrap();
    // The previous snapshot's state plus this log's records would be a
    // state that never existed: refuse.
    let older = one(run.before.path(), "snap-", ".snap");
    fs::copy(&older, dir.path().join(older.file_name().unwrap())).unwrap();
    match Wal::open(dir.path(), opts(FsyncMode::Never)) {
        Err(WalError::CorruptSnapshot {
            path,
            reason: Corruption::MissingSnapshot { .. },
            ..
        }) => assert_eq!(path, log),
        other => panic!("{other:?}"),
    }
}
