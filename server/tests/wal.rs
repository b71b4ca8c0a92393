//! The write-ahead log on real files: round trip, group commit, snapshots,
//! recovery to the pre-crash state.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a test: a failure is a failed test

mod wal_support;

use std::fs;
use std::time::{Duration, Instant};

use roomstate::{Command, Millis, Profile};
use roomstate_server::wal::{
    recover_engine, FsyncMode, Wal, WalError, WalOptions, LOG_HEADER_LEN, LOG_MAGIC, SNAPSHOT_MAGIC,
};
use wal_support::{commands, drive, engine, files_named, log_file, opts, recovered, state};

#[test]
fn records_come_back_in_order_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(1, 400);
    {
        let (mut wal, recovery) = Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap();
        assert_eq!(recovery.snapshot, None);
        assert!(recovery.records.is_empty());
        assert_eq!(recovery.generation, 0);
        for batch in cmds.chunks(37) {
            for (now, command) in batch {
                wal.append(*now, command).unwrap();
            }
            wal.commit().unwrap();
        }
    }
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap();
    assert_eq!(recovery.records, cmds);
    assert_eq!(recovery.torn_tail_cut, None);
    assert_eq!(recovery.repaired_at, None);
}

#[test]
fn a_reopened_log_appends_after_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(2, 60);
    let (first, second) = cmds.split_at(25);
    for part in [first, second] {
        let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        for (now, command) in part {
            wal.append(*now, command).unwrap();
        }
        wal.commit().unwrap();
    }
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds);
}

#[test]
fn group_commit_writes_and_fsyncs_once_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(3, 100);
    let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap();
    let log = wal.log_path().to_path_buf();
    let header_only = fs::metadata(&log).unwrap().len();
    assert_eq!(header_only, LOG_HEADER_LEN as u64);

    for (now, command) in &cmds[..50] {
        wal.append(*now, command).unwrap();
    }
    // Appended records are buffered: nothing reached the file yet.
    assert_eq!(fs::metadata(&log).unwrap().len(), header_only);
    assert!(wal.pending_bytes() > 0);
    wal.commit().unwrap();
    assert_eq!(wal.pending_bytes(), 0);
    let after_one = fs::metadata(&log).unwrap().len();
    assert!(after_one > header_only);
    assert_eq!(wal.stats().fsyncs, 1, "one fdatasync for 50 records");
    assert_eq!(wal.stats().commits, 1);

    // A commit with nothing appended neither writes nor fsyncs.
    assert_eq!(wal.commit().unwrap(), Duration::ZERO);
    assert_eq!(wal.stats().fsyncs, 1);

    for (now, command) in &cmds[50..] {
        wal.append(*now, command).unwrap();
    }
    wal.commit().unwrap();
    let stats = wal.stats();
    assert_eq!((stats.appended, stats.commits, stats.fsyncs), (100, 2, 2));
    assert_eq!(
        stats.bytes,
        fs::metadata(&log).unwrap().len() - header_only,
        "every committed byte is in the file"
    );
}

#[test]
fn fsync_never_writes_at_commit_but_does_not_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(4, 20);
    let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    for (now, command) in &cmds {
        wal.append(*now, command).unwrap();
    }
    assert_eq!(wal.commit().unwrap(), Duration::ZERO);
    assert_eq!(wal.stats().fsyncs, 0);
    assert_eq!(wal.stats().commits, 1);
    // Written to the OS at commit, so a restarted process sees it.
    assert_eq!(
        fs::metadata(wal.log_path()).unwrap().len(),
        LOG_HEADER_LEN as u64 + wal.stats().bytes
    );
    drop(wal);
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds);
}

#[test]
fn uncommitted_records_are_lost_with_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(5, 30);
    {
        let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        for (now, command) in &cmds[..10] {
            wal.append(*now, command).unwrap();
        }
        wal.commit().unwrap();
        for (now, command) in &cmds[10..] {
            wal.append(*now, command).unwrap();
        }
        // Dropped without commit: these replies were never sent.
    }
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds[..10]);
}

#[test]
fn a_snapshot_truncates_the_log_and_recovery_starts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (profile, cmds) = commands(6, 300);
    let mut live = engine(profile);
    let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap();
    drive(&mut wal, &mut live, &cmds[..200], 10, 6);
    let log_before = wal.log_path().to_path_buf();
    assert!(fs::metadata(&log_before).unwrap().len() > LOG_HEADER_LEN as u64);

    wal.snapshot(&state(&mut live)).unwrap();
    assert_eq!(wal.generation(), 1);
    assert_eq!(wal.records_since_snapshot(), 0);
    assert!(!log_before.exists(), "the old log is removed");
    let log = log_file(dir.path());
    assert_ne!(log, log_before);
    assert_eq!(fs::metadata(&log).unwrap().len(), LOG_HEADER_LEN as u64);
    let snaps = files_named(dir.path(), "snap-", ".snap");
    assert_eq!(snaps.len(), 1);
    assert!(fs::read(&log).unwrap().starts_with(&LOG_MAGIC));
    assert!(fs::read(&snaps[0]).unwrap().starts_with(&SNAPSHOT_MAGIC));

    drive(&mut wal, &mut live, &cmds[200..], 10, 7);
    drop(wal);

    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap();
    assert_eq!(recovery.generation, 1);
    assert!(recovery.snapshot.is_some());
    assert_eq!(recovery.records, cmds[200..], "only the records after it");
    let mut back = recovered(profile, recovery);
    assert_eq!(state(&mut back), state(&mut live));
}

#[test]
fn a_second_snapshot_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (profile, cmds) = commands(8, 90);
    let mut live = engine(profile);
    let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    for part in cmds.chunks(30) {
        drive(&mut wal, &mut live, part, 5, 8);
        wal.snapshot(&state(&mut live)).unwrap();
    }
    assert_eq!(wal.generation(), 3);
    drop(wal);
    assert_eq!(files_named(dir.path(), "snap-", ".snap").len(), 1);
    assert_eq!(files_named(dir.path(), "wal-", ".log").len(), 1);
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert!(recovery.records.is_empty());
    let mut back = recovered(profile, recovery);
    assert_eq!(state(&mut back), state(&mut live));
}

#[test]
fn recovery_equals_the_pre_crash_state_across_scenarios() {
    // Snapshots every few hundred records, batches of 1..=16: the crash
    // (dropping the WAL mid-run) lands at a different point of the
    // snapshot cycle for each seed.
    for seed in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let (profile, cmds) = commands(seed, 1_500);
        let options = WalOptions {
            snapshot_every_records: 200 + seed * 37,
            ..opts(FsyncMode::Never)
        };
        let mut live = engine(profile);
        {
            let (mut wal, _) = Wal::open(dir.path(), options).unwrap();
            drive(&mut wal, &mut live, &cmds, 16, seed);
            assert!(
                wal.stats().snapshots >= 1,
                "seed {seed}: snapshots were taken"
            );
        }
        let (_, recovery) = Wal::open(dir.path(), options).unwrap();
        let mut back = recovered(profile, recovery);
        assert_eq!(
            state(&mut back),
            state(&mut live),
            "seed {seed}: the recovered engine is the one before the crash"
        );
    }
}

#[test]
fn recovery_with_fsync_equals_the_pre_crash_state() {
    let dir = tempfile::tempdir().unwrap();
    let (profile, cmds) = commands(99, 400);
    let options = WalOptions {
        snapshot_every_records: 150,
        ..opts(FsyncMode::Always)
    };
    let mut live = engine(profile);
    {
        let (mut wal, _) = Wal::open(dir.path(), options).unwrap();
        drive(&mut wal, &mut live, &cmds, 8, 99);
        assert_eq!(wal.stats().fsyncs, wal.stats().commits);
    }
    let (_, recovery) = Wal::open(dir.path(), options).unwrap();
    let mut back = recovered(profile, recovery);
    assert_eq!(state(&mut back), state(&mut live));
}

#[test]
fn should_snapshot_counts_records_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(10, 10);
    let options = WalOptions {
        snapshot_every_records: 5,
        snapshot_every: Duration::from_secs(60),
        ..opts(FsyncMode::Never)
    };
    let (mut wal, _) = Wal::open(dir.path(), options).unwrap();
    let now = Instant::now();
    let later = now + Duration::from_secs(61);
    assert!(
        !wal.should_snapshot_at(later),
        "nothing logged: no snapshot"
    );
    for (now, command) in &cmds[..4] {
        wal.append(*now, command).unwrap();
    }
    assert!(!wal.should_snapshot_at(now));
    assert!(wal.should_snapshot_at(later), "time trigger");
    wal.append(cmds[4].0, &cmds[4].1).unwrap();
    assert!(wal.should_snapshot_at(now), "count trigger");
    wal.snapshot(b"not checked by the WAL").unwrap();
    assert!(!wal.should_snapshot_at(Instant::now() + Duration::from_secs(61)));

    // Both triggers off.
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    for (now, command) in &cmds {
        wal.append(*now, command).unwrap();
    }
    assert!(!wal.should_snapshot_at(Instant::now() + Duration::from_secs(1 << 20)));
}

#[test]
fn records_replayed_at_open_count_toward_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cmds) = commands(11, 8);
    let options = WalOptions {
        snapshot_every_records: 10,
        ..opts(FsyncMode::Never)
    };
    {
        let (mut wal, _) = Wal::open(dir.path(), options).unwrap();
        for (now, command) in &cmds {
            wal.append(*now, command).unwrap();
        }
        wal.commit().unwrap();
    }
    let (mut wal, _) = Wal::open(dir.path(), options).unwrap();
    assert_eq!(wal.records_since_snapshot(), 8);
    wal.append(Millis(1), &Command::Tick).unwrap();
    wal.append(Millis(2), &Command::Tick).unwrap();
    assert!(wal.should_snapshot());
}

#[test]
fn a_snapshot_of_another_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut live = engine(Profile::easemob());
    {
        let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        wal.snapshot(&state(&mut live)).unwrap();
    }
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert!(matches!(
        recover_engine(Profile::netease(), recovery.clone()),
        Err(WalError::ProfileMismatch)
    ));
    assert!(recover_engine(Profile::easemob(), recovery).is_ok());
}

#[test]
fn a_snapshot_that_does_not_restore_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        wal.snapshot(b"intact file, but not engine bytes").unwrap();
    }
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert!(matches!(
        recover_engine(Profile::easemob(), recovery),
        Err(WalError::Restore(_))
    ));
}

#[test]
fn files_that_are_not_the_wal_s_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("README"), "mine").unwrap();
    fs::write(dir.path().join("wal-1.log"), "not a generation name").unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    wal.snapshot(b"x").unwrap();
    drop(wal);
    let _ = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert_eq!(fs::read(dir.path().join("README")).unwrap(), b"mine");
    assert!(dir.path().join("wal-1.log").exists());
}

#[test]
fn a_second_wal_on_the_same_directory_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    match Wal::open(dir.path(), opts(FsyncMode::Never)) {
        Err(err @ WalError::Locked { .. }) => {
            assert!(err.to_string().contains("another process"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    drop(wal);
    assert!(Wal::open(dir.path(), opts(FsyncMode::Never)).is_ok());
}
