//! `wal_bench`: append + commit throughput of the write-ahead log with
//! fsync on this machine's disk. Bounded in time and records; prints
//! `name: value` lines.
//!
//! ```text
//! cargo run --release -p roomstate-server --bin wal_bench -- [--dir DIR] [--seconds S] [--batch N]
//! ```
//!
//! - `wal_commits_per_s`: one record per commit, each commit one fdatasync
//!   (a shard that receives one request at a time);
//! - `wal_records_per_s_batched`: `--batch` records per commit (group
//!   commit under load);
//! - `fsync_p50_us`, `fsync_p99_us`: fdatasync latency over both runs;
//! - `wal_records_per_s_fsync_never`: the batched run without fsync, for
//!   comparison.
//!
//! The log goes to a fresh directory inside `--dir` (default: the system
//! temporary directory), removed at the end. A tmpfs there makes fsync
//! free and the numbers meaningless: point `--dir` at the data disk.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roomstate::{Actor, Command, Millis, Op, Write};
use roomstate_server::wal::{FsyncMode, Wal, WalOptions};

/// A run stops at whichever comes first: its time or this many records.
const MAX_RECORDS_PER_RUN: u64 = 2_000_000;

struct Args {
    dir: PathBuf,
    seconds: f64,
    batch: u64,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        dir: std::env::temp_dir(),
        seconds: 1.5,
        batch: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dir" => out.dir = PathBuf::from(value),
            "--seconds" => {
                out.seconds = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 60.0)
                    .ok_or("--seconds takes a number in (0, 60]")?;
            }
            "--batch" => {
                out.batch = value
                    .parse()
                    .ok()
                    .filter(|b| (1..=100_000).contains(b))
                    .ok_or("--batch takes a number in 1..=100000")?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(out)
}

/// A typical attribute write: one key, a 48-byte value.
fn record(i: u64) -> (Millis, Command) {
    let write = Write::new("room-00042", Actor::user(format!("user-{}", i % 500))).op(Op::set(
        format!("seat-{}", i % 16),
        format!(
            "{{\"mic\":true,\"volume\":{:>5},\"pad\":\"xxxxxx\"}}",
            i % 100
        ),
    ));
    (Millis(1_700_000_000_000 + i), Command::Write(write))
}

struct Run {
    records: u64,
    elapsed: Duration,
    fsyncs: Vec<Duration>,
}

fn run(dir: &Path, fsync: FsyncMode, batch: u64, budget: Duration) -> Result<Run, Box<dyn Error>> {
    let opts = WalOptions {
        fsync,
        snapshot_every_records: 0,
        snapshot_every: Duration::ZERO,
        repair: false,
    };
    let (mut wal, _) = Wal::open(dir, opts)?;
    let batches: Vec<Vec<(Millis, Command)>> = (0..256u64)
        .map(|b| (0..batch).map(|i| record(b * batch + i)).collect())
        .collect();
    let mut fsyncs = Vec::new();
    let mut records = 0u64;
    let start = Instant::now();
    'outer: loop {
        for commands in &batches {
            for (now, command) in commands {
                wal.append(*now, command)?;
            }
            let took = wal.commit()?;
            if fsync == FsyncMode::Always {
                fsyncs.push(took);
            }
            records += batch;
            if start.elapsed() >= budget || records >= MAX_RECORDS_PER_RUN {
                break 'outer;
            }
        }
    }
    Ok(Run {
        records,
        elapsed: start.elapsed(),
        fsyncs,
    })
}

fn per_second(n: u64, d: Duration) -> u64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        (n as f64 / s) as u64
    } else {
        0
    }
}

fn percentile_us(sorted: &[Duration], p: usize) -> u128 {
    let i = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0, Duration::as_micros)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = args()?;
    let root = args
        .dir
        .join(format!("roomstate-wal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let budget = Duration::from_secs_f64(args.seconds);
    let result = (|| -> Result<(), Box<dyn Error>> {
        let single = run(&root.join("single"), FsyncMode::Always, 1, budget)?;
        let batched = run(&root.join("batched"), FsyncMode::Always, args.batch, budget)?;
        let never = run(&root.join("never"), FsyncMode::Never, args.batch, budget)?;
        let mut fsyncs: Vec<Duration> = single
            .fsyncs
            .iter()
            .chain(&batched.fsyncs)
            .copied()
            .collect();
        fsyncs.sort_unstable();
        println!("wal_dir: {}", root.display());
        println!("wal_batch: {}", args.batch);
        println!(
            "wal_commits_per_s: {}",
            per_second(single.records, single.elapsed)
        );
        println!(
            "wal_records_per_s_batched: {}",
            per_second(batched.records, batched.elapsed)
        );
        println!("fsync_p50_us: {}", percentile_us(&fsyncs, 50));
        println!("fsync_p99_us: {}", percentile_us(&fsyncs, 99));
        println!(
            "wal_records_per_s_fsync_never: {}",
            per_second(never.records, never.elapsed)
        );
        Ok(())
    })();
    let cleanup = std::fs::remove_dir_all(&root);
    result?;
    cleanup?;
    Ok(())
}
