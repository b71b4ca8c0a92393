//! kill -9 of a process that appends and commits to a WAL, at random
//! moments, snapshots included; after each kill the recovered engine must
//! be the state after some number of commands no smaller than the last
//! acknowledged one.
//!
//! The child is this test binary run again with `CRASH_WAL_DIR` set (the
//! ignored test `child_appends_until_killed`): it recovers, then applies
//! and logs a deterministic command stream in batches, committing each
//! batch with fdatasync and only then printing `ack N` on stdout, as a
//! server sends its replies. The parent reads the acks, kills the child
//! with SIGKILL, and checks the recovered state.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a test

mod wal_support;

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use roomstate::{Actor, Command, Engine, Millis, Op, Profile, Write};
use roomstate_server::wal::{recover_engine, FsyncMode, Wal, WalOptions};
use roomstate_tests::sim::Rng;
use wal_support::state;

const ROOMS: u64 = 4;
/// Largest batch the child commits at once.
const MAX_BATCH: u64 = 8;
/// The child stops by itself after this long if nobody kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

fn profile() -> Profile {
    let mut p = Profile::easemob();
    p.limits.request_rate = None;
    p
}

fn options() -> WalOptions {
    WalOptions {
        fsync: FsyncMode::Always,
        // Small, so that kills land before, during and after snapshots.
        snapshot_every_records: 97,
        snapshot_every: Duration::ZERO,
        repair: false,
    }
}

/// Command `i` of the stream: rooms are created first, then writes of
/// unique values to a few keys per room.
fn command(i: u64) -> (Millis, Command) {
    let now = Millis(1_000 + i * 3);
    if i < ROOMS {
        return (
            now,
            Command::CreateRoom {
                room: format!("r{i}").into(),
                creator: "host".into(),
            },
        );
    }
    let room = format!("r{}", i % ROOMS);
    let write = Write::new(room.as_str(), Actor::Admin).op(Op::set(
        format!("k{}", (i / ROOMS) % 40),
        format!("value {i} {}", "x".repeat((i % 300) as usize)),
    ));
    (now, Command::Write(write))
}

/// Guard: a child still running when the test ends (or panics) is killed.
struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
#[ignore = "the child half of kill_9_mid_append_loses_no_acknowledged_command"]
fn child_appends_until_killed() {
    let dir = std::env::var("CRASH_WAL_DIR").unwrap();
    let start: u64 = std::env::var("CRASH_WAL_START").unwrap().parse().unwrap();
    let seed: u64 = std::env::var("CRASH_WAL_SEED").unwrap().parse().unwrap();
    let (mut wal, recovery) = Wal::open(Path::new(&dir), options()).unwrap();
    let mut engine = recover_engine(profile(), recovery).unwrap();
    let mut r = Rng::new(seed);
    let mut out = std::io::stdout().lock();
    let mut i = start;
    let began = Instant::now();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    while began.elapsed() < CHILD_LIFETIME {
        let n = 1 + r.below(MAX_BATCH);
        for _ in 0..n {
            let (now, cmd) = command(i);
            wal.append(now, &cmd).unwrap();
            let _ = engine.handle(now, cmd);
            i += 1;
        }
        wal.commit().unwrap();
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
        if wal.should_snapshot() {
            wal.snapshot(&state(&mut engine)).unwrap();
        }
    }
}

/// Spawns the child on `dir`, from command `start`; kills it after
/// `acks` acknowledgements (plus a random pause); returns the highest
/// acknowledged command count.
fn run_child(dir: &Path, start: u64, seed: u64, acks: u64) -> u64 {
    let mut child = Killed(Some(
        Process::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_appends_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CRASH_WAL_DIR", dir)
            .env("CRASH_WAL_START", start.to_string())
            .env("CRASH_WAL_SEED", seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let stdout = child.0.as_mut().unwrap().stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = start;
    let mut seen = 0;
    let mut pause = Rng::new(seed ^ 0x5eed);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse().unwrap();
            seen += 1;
            if seen == acks {
                break;
            }
        }
    }
    assert_eq!(seen, acks, "the child stopped early");
    // Let it run on a little, so the kill lands anywhere in its loop.
    std::thread::sleep(Duration::from_micros(pause.below(3_000)));
    let mut c = child.0.take().unwrap();
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    // Acks printed before the kill are acks too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse().unwrap();
        }
    }
    acked
}

#[test]
fn kill_9_mid_append_loses_no_acknowledged_command() {
    let dir = tempfile::tempdir().unwrap();
    // The reference: states after each prefix of the stream.
    let mut reference = Engine::new(profile());
    let mut applied = 0u64;
    let mut start = 0u64;
    let mut snapshots_seen = 0;
    for round in 0..8u64 {
        let acks = 20 + round * 17;
        let acked = run_child(dir.path(), start, round, acks);
        assert!(acked > start, "round {round}: progress");

        let (_, recovery) = Wal::open(dir.path(), options()).unwrap();
        snapshots_seen += u64::from(recovery.snapshot.is_some());
        let mut back = recover_engine(profile(), recovery).unwrap();
        let got = state(&mut back);
        // The state must be that after exactly m commands, with m at least
        // the acknowledged count and at most one batch beyond it.
        while applied < acked {
            let (now, cmd) = command(applied);
            let _ = reference.handle(now, cmd);
            applied += 1;
        }
        let mut m = None;
        let mut probe = Engine::restore(&state(&mut reference)).unwrap();
        let mut at = applied;
        loop {
            if state(&mut probe) == got {
                m = Some(at);
                break;
            }
            if at >= acked + MAX_BATCH {
                break;
            }
            let (now, cmd) = command(at);
            let _ = probe.handle(now, cmd);
            at += 1;
        }
        let m = m.unwrap_or_else(|| {
            panic!(
                "round {round}: recovered state is not the state after {acked}..={} commands",
                acked + MAX_BATCH
            )
        });
        // Catch the reference up to what survived, and go on from there.
        while applied < m {
            let (now, cmd) = command(applied);
            let _ = reference.handle(now, cmd);
            applied += 1;
        }
        start = m;
    }
    assert!(snapshots_seen > 0, "kills landed after snapshots too");
}
