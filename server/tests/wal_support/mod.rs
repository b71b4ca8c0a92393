//! Helpers shared by the WAL tests: generated command streams, a driver
//! that runs them through an engine and a WAL, and file surgery.
//!
//! Every use of the engine API in the WAL tests is here.

#![allow(dead_code)] // each test file uses a part
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test code: a failure is a failed test

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomstate::{Command, Engine, Event, Millis, Profile};
use roomstate_server::wal::{
    recover_engine, FsyncMode, Recovery, Wal, WalOptions, FRAME_HEADER_LEN, LOG_HEADER_LEN,
};
use roomstate_tests::sim::{Rng, Scenario};

/// Options with both snapshot triggers off and no repair.
pub fn opts(fsync: FsyncMode) -> WalOptions {
    WalOptions {
        fsync,
        snapshot_every_records: 0,
        snapshot_every: Duration::ZERO,
        repair: false,
    }
}

/// The same options with `repair` on.
pub fn repairing(fsync: FsyncMode) -> WalOptions {
    WalOptions {
        repair: true,
        ..opts(fsync)
    }
}

/// `n` commands of the simulator's scenario `seed`, with their times, and
/// the scenario's profile.
pub fn commands(seed: u64, n: usize) -> (Profile, Vec<(Millis, Command)>) {
    let scenario = Scenario::from_seed(seed);
    let mut r = Rng::new(seed);
    let mut now = 1_000;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        now = scenario.advance(&mut r, now);
        out.push((Millis(now), scenario.command(&mut r)));
    }
    (scenario.profile, out)
}

/// A fresh engine for `profile`.
pub fn engine(profile: Profile) -> Engine {
    Engine::new(profile)
}

/// The engine's state as snapshot bytes (events drained first).
pub fn state(engine: &mut Engine) -> Vec<u8> {
    let mut events: Vec<Event> = Vec::new();
    engine.drain_events(&mut events);
    engine.snapshot()
}

/// The engine `recovery` rebuilds.
pub fn recovered(profile: Profile, recovery: Recovery) -> Engine {
    recover_engine(profile, recovery).unwrap()
}

/// Runs `cmds` through `wal` then `engine` as the shard loop does, in
/// batches of `1..=max_batch` commands (chosen by `seed`), committing each
/// batch, and snapshotting when the WAL says so.
pub fn drive(
    wal: &mut Wal,
    engine: &mut Engine,
    cmds: &[(Millis, Command)],
    max_batch: usize,
    seed: u64,
) {
    let mut r = Rng::new(seed);
    let mut events: Vec<Event> = Vec::new();
    for batch in chunks(cmds, max_batch, &mut r) {
        for (now, command) in batch {
            wal.append(*now, command).unwrap();
            let _ = engine.handle(*now, command.clone());
        }
        wal.commit().unwrap();
        engine.drain_events(&mut events);
        events.clear();
        if wal.should_snapshot() {
            wal.snapshot(&engine.snapshot()).unwrap();
        }
    }
}

fn chunks<'a, T>(xs: &'a [T], max: usize, r: &mut Rng) -> Vec<&'a [T]> {
    let mut out = Vec::new();
    let mut rest = xs;
    while !rest.is_empty() {
        let n = (1 + r.below(max as u64) as usize).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// The one log file in `dir`.
pub fn log_file(dir: &Path) -> PathBuf {
    let logs = files_named(dir, "wal-", ".log");
    assert_eq!(
        logs.len(),
        1,
        "exactly one log in {}: {logs:?}",
        dir.display()
    );
    logs.into_iter().next().unwrap()
}

/// The files of `dir` named `prefix*suffix`, sorted.
pub fn files_named(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    out.sort();
    out
}

/// Start offsets of the frames of a well-formed log file, and its length.
pub fn frame_offsets(log: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = LOG_HEADER_LEN;
    while pos < log.len() {
        out.push(pos);
        let len = u32::from_le_bytes(log[pos..pos + 4].try_into().unwrap()) as usize;
        pos += FRAME_HEADER_LEN + len;
    }
    assert_eq!(pos, log.len(), "the log is well formed");
    out
}

/// Copies every file of `src` into the (existing) directory `dst`.
pub fn copy_dir(src: &Path, dst: &Path) {
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dst.join(path.file_name().unwrap())).unwrap();
    }
}

/// A shard directory holding one log of `n` committed records of scenario
/// `seed` (no snapshot), and those records.
pub fn log_of(dir: &Path, seed: u64, n: usize) -> (Profile, Vec<(Millis, Command)>) {
    let (profile, cmds) = commands(seed, n);
    let (mut wal, recovery) = Wal::open(dir, opts(FsyncMode::Never)).unwrap();
    assert!(recovery.records.is_empty());
    for (now, command) in &cmds {
        wal.append(*now, command).unwrap();
    }
    wal.commit().unwrap();
    (profile, cmds)
}
