//! A benchmark's timed loop alone, for a profiler. The timed part is the
//! function `timed_engine` (`timed_naive`, `restore`; for the reads
//! `timed_engine_reads`, and `timed_engine_cold_reads` for `cold-read`,
//! each with a `timed_naive_` twin); with callgrind, collect only inside
//! it (or use `perf record --call-graph dwarf`):
//!
//! ```text
//! cargo build -p roomstate-benches --release --bin profile
//! valgrind --tool=callgrind --toggle-collect='profile::timed_engine' \
//!     target/release/profile write-hot 20000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! The cold cases need a simulated last-level cache smaller than the
//! state (valgrind otherwise takes the host's, which may hold it all):
//!
//! ```text
//! valgrind --tool=callgrind --cache-sim=yes --LL=4194304,16,64 \
//!     --toggle-collect='profile::timed_engine_cold_reads' \
//!     target/release/profile cold-read 100000
//! ```
//!
//! Cases: `write-hot`, `write-cold`, `write10`/`write100`/`write1000`,
//! `exit10`, `exit100`, `queue`, `mixed` (reads through the view into
//! JSON, as `mixed/*/10k`), `mixed-peer` (the same over 50,000 steps, as
//! `redis_peer` runs it), `read-json` (as `read_all/*/20`),
//! `cold-write` and `cold-exit` (the first commands of the cold streams
//! over 100,000 rooms, as `*/cold_stream`; at most one pass, 100,000),
//! `cold-read` (the first reads of the cold read stream over the same
//! rooms, freshly built, as `read_all/*/cold_stream`: the JSON reply of
//! all 20 attributes per room id; any number of reads, in passes),
//! `restore` (attributes per second), `read-command`, and `naive-` before
//! any but the last two for the baseline. The second argument is the
//! number of commands (default 20,000); for the write cases a third, the
//! number of untimed writes before them (default 0): 3,000,000 brings
//! every room of `write-cold` to its history's bound, as a long criterion
//! run does. `ROOMSTATE_COLD_ROOMS` sets the number of rooms of the
//! `cold-*` cases (default 100,000), for the `scaling/rooms/*` sizes:
//!
//! ```text
//! ROOMSTATE_COLD_ROOMS=500000 target/release/profile cold-write 500000
//! ```
//!
//! It prints the time and the minor page faults per command, of the
//! timed part alone. With `ROOMSTATE_BATCH` set, the engine's commands go
//! through `Engine::handle_batch` (one batch of all of them; the timed
//! function is then `timed_engine_batch`), as `*/engine_batch/*`:
//!
//! ```text
//! ROOMSTATE_BATCH=1 target/release/profile cold-write 100000
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use roomstate::{Command, Engine, Event};
use roomstate_benches::cold::{
    engine_exit_stream, engine_write_stream, naive_exit_stream, naive_write_stream, read_stream,
    ColdRooms,
};
use roomstate_benches::naive::{Naive, NaiveCmd, NaiveEvent};
use roomstate_benches::workload::{
    engine_read_json, naive_read_json, run_engine, run_naive, ExitFixture, Grid, Mixed,
    QueueFixture, Rng, NOW, SEED,
};

/// Rooms of the `cold-*` cases: `ROOMSTATE_COLD_ROOMS`, else 100,000.
fn cold_rooms() -> usize {
    std::env::var("ROOMSTATE_COLD_ROOMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100_000)
}

#[inline(never)]
fn measured(engine: &mut Engine, cmds: Vec<Command>, events: &mut Vec<Event>) {
    let n = cmds.len();
    let start = Start::now();
    if std::env::var_os("ROOMSTATE_BATCH").is_some() {
        timed_engine_batch(engine, cmds, events);
    } else {
        timed_engine(engine, cmds, events);
    }
    report(start, n);
}

static NANOS: AtomicU64 = AtomicU64::new(0);
static COMMANDS: AtomicU64 = AtomicU64::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);

/// The start of a timed part: the clock and the process's minor page
/// faults so far.
struct Start {
    at: std::time::Instant,
    faults: u64,
}

impl Start {
    fn now() -> Start {
        let faults = minor_faults();
        Start {
            at: std::time::Instant::now(),
            faults,
        }
    }
}

/// The process's minor page faults so far (`minflt`, the tenth field of
/// `/proc/self/stat`; 0 where there is none).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name, in parentheses, may hold spaces: count after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

fn report(start: Start, n: usize) {
    let ns = u64::try_from(start.at.elapsed().as_nanos()).unwrap_or(u64::MAX);
    NANOS.fetch_add(ns, Relaxed);
    COMMANDS.fetch_add(n as u64, Relaxed);
    FAULTS.fetch_add(minor_faults().saturating_sub(start.faults), Relaxed);
}

#[inline(never)]
fn timed_engine(engine: &mut Engine, cmds: Vec<Command>, events: &mut Vec<Event>) {
    for cmd in cmds {
        let _ = black_box(engine.handle(NOW, cmd));
        engine.drain_events(events);
        engine.recycle(events);
    }
}

#[inline(never)]
fn timed_engine_batch(engine: &mut Engine, mut cmds: Vec<Command>, events: &mut Vec<Event>) {
    engine.handle_batch(NOW, &mut cmds, |engine, outcome| {
        let _ = black_box(outcome);
        engine.drain_events(events);
        engine.recycle(events);
    });
}

#[inline(never)]
fn restore(bytes: &[u8]) -> Engine {
    Engine::restore(black_box(bytes)).expect("snapshot restores")
}

#[inline(never)]
fn measured_naive(naive: &mut Naive, cmds: Vec<NaiveCmd>, events: &mut Vec<NaiveEvent>) {
    let n = cmds.len();
    let start = Start::now();
    timed_naive(naive, cmds, events);
    report(start, n);
}

#[inline(never)]
fn timed_naive(naive: &mut Naive, cmds: Vec<NaiveCmd>, events: &mut Vec<NaiveEvent>) {
    for cmd in cmds {
        let _ = black_box(naive.handle(cmd));
        naive.drain_events(events);
        events.clear();
    }
}

#[inline(never)]
fn timed_engine_mixed(
    engine: &mut Engine,
    inputs: Vec<roomstate_benches::workload::EngineInput>,
    events: &mut Vec<Event>,
    reply: &mut Vec<u8>,
) {
    black_box(run_engine(engine, inputs, events, reply));
}

#[inline(never)]
fn timed_naive_mixed(
    naive: &mut Naive,
    inputs: Vec<roomstate_benches::workload::NaiveInput>,
    events: &mut Vec<NaiveEvent>,
    reply: &mut Vec<u8>,
) {
    black_box(run_naive(naive, inputs, events, reply));
}

#[inline(never)]
fn timed_engine_reads(engine: &Engine, id: &str, n: usize, out: &mut Vec<u8>) {
    for _ in 0..n {
        out.clear();
        black_box(engine_read_json(engine, black_box(id), out));
    }
}

#[inline(never)]
fn timed_naive_reads(naive: &Naive, id: &str, n: usize, out: &mut Vec<u8>) {
    for _ in 0..n {
        out.clear();
        black_box(naive_read_json(naive, black_box(id), out));
    }
}

/// The cold reads: one read-all reply per room id, each id its own
/// `String`, dropped after its read as a decoded request is. Returns the
/// reads that found no room.
#[inline(never)]
fn timed_engine_cold_reads(engine: &Engine, ids: Vec<String>, out: &mut Vec<u8>) -> usize {
    let mut missed = 0;
    for id in ids {
        out.clear();
        missed += usize::from(!engine_read_json(engine, black_box(&id), out));
        black_box(out.len());
    }
    missed
}

/// The baseline's same cold reads.
#[inline(never)]
fn timed_naive_cold_reads(naive: &Naive, ids: Vec<String>, out: &mut Vec<u8>) -> usize {
    let mut missed = 0;
    for id in ids {
        out.clear();
        missed += usize::from(!naive_read_json(naive, black_box(&id), out));
        black_box(out.len());
    }
    missed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map_or("write-hot", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    // The write cases' untimed warm-up writes (default none).
    let warm_up: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (naive, case) = match case.strip_prefix("naive-") {
        Some(c) => (true, c),
        None => (false, case),
    };
    let mut events = Vec::new();
    let mut nevents = Vec::new();
    let mut rng = Rng::new(SEED);
    match case {
        "write-hot" | "write-cold" | "write10" | "write100" | "write1000" => {
            // `writeK`: the scaling case, the first 10 keys of 100 rooms of K keys.
            let (rooms, keys, written) = match case {
                "write-hot" => (100, 20, 20),
                "write-cold" => (10_000, 20, 20),
                _ => (100, case[5..].parse().unwrap_or(10), 10),
            };
            let grid = Grid::new(rooms, keys);
            let picks: Vec<(usize, usize)> = (0..n)
                .map(|_| (rng.below(rooms), rng.below(written)))
                .collect();
            // Untimed writes first, so that every room's history reaches
            // its bound (the steady state a long criterion run measures).
            let warm: Vec<(usize, usize)> = (0..warm_up)
                .map(|_| (rng.below(rooms), rng.below(written)))
                .collect();
            if naive {
                let mut s = grid.naive();
                for (v, &(r, k)) in warm.iter().enumerate() {
                    let _ = s.handle(grid.naive_overwrite(r, k, v));
                    s.drain_events(&mut nevents);
                    nevents.clear();
                }
                let cmds = picks
                    .iter()
                    .enumerate()
                    .map(|(v, &(r, k))| grid.naive_overwrite(r, k, v))
                    .collect();
                measured_naive(&mut s, cmds, &mut nevents);
            } else {
                let mut s = grid.engine();
                for (v, &(r, k)) in warm.iter().enumerate() {
                    let _ = s.handle(NOW, grid.engine_overwrite(r, k, v));
                    s.drain_events(&mut events);
                    s.recycle(&mut events);
                }
                let cmds = picks
                    .iter()
                    .enumerate()
                    .map(|(v, &(r, k))| grid.engine_overwrite(r, k, v))
                    .collect();
                measured(&mut s, cmds, &mut events);
            }
        }
        "exit10" | "exit100" => {
            let keys = if case == "exit10" { 10 } else { 100 };
            let fx = ExitFixture::new(64, keys);
            if naive {
                let mut s = fx.naive();
                for _ in 0..n / 64 {
                    let cmds = (0..64)
                        .map(|r| {
                            fx.naive_arm(&mut s, r, &mut nevents);
                            fx.naive_exit(r)
                        })
                        .collect();
                    measured_naive(&mut s, cmds, &mut nevents);
                }
            } else {
                let mut s = fx.engine();
                for _ in 0..n / 64 {
                    let cmds = (0..64)
                        .map(|r| {
                            fx.engine_arm(&mut s, r, &mut events);
                            fx.engine_exit(r)
                        })
                        .collect();
                    measured(&mut s, cmds, &mut events);
                }
            }
        }
        "queue" => {
            let fx = QueueFixture::new(1_000);
            if naive {
                let mut s = fx.naive();
                let cmds = (0..n)
                    .flat_map(|i| {
                        let (a, b) = fx.naive_step(i);
                        [a, b]
                    })
                    .collect();
                measured_naive(&mut s, cmds, &mut nevents);
            } else {
                let mut s = fx.engine();
                let cmds = (0..n)
                    .flat_map(|i| {
                        let (a, b) = fx.engine_step(i);
                        [a, b]
                    })
                    .collect();
                measured(&mut s, cmds, &mut events);
            }
        }
        "mixed" | "mixed-peer" => {
            let mixed = if case == "mixed" {
                Mixed::standard()
            } else {
                Mixed::generate(SEED, 1_000, 50_000)
            };
            let mut reply = Vec::with_capacity(4096);
            for _ in 0..n.div_ceil(mixed.steps.len()) {
                if naive {
                    let mut s = mixed.naive();
                    let inputs = mixed.naive_inputs();
                    let start = Start::now();
                    timed_naive_mixed(&mut s, inputs, &mut nevents, &mut reply);
                    report(start, mixed.steps.len());
                } else {
                    let mut s = mixed.engine();
                    let inputs = mixed.engine_inputs();
                    let start = Start::now();
                    timed_engine_mixed(&mut s, inputs, &mut events, &mut reply);
                    report(start, mixed.steps.len());
                }
            }
        }
        "read-json" => {
            let grid = Grid::new(1, 20);
            let id = grid.rooms[0].as_str();
            let mut out = Vec::with_capacity(4096);
            let start = Start::now();
            if naive {
                timed_naive_reads(&grid.naive(), id, n, &mut out);
            } else {
                timed_engine_reads(&grid.engine(), id, n, &mut out);
            }
            report(start, n);
        }
        "cold-write" | "cold-exit" => {
            let cold = ColdRooms::new(cold_rooms());
            let min = n.min(cold.rooms);
            if naive {
                let mut s = cold.naive();
                let mut stream = if case == "cold-write" {
                    naive_write_stream(&cold, SEED, n)
                } else {
                    naive_exit_stream(&cold, SEED + 1, min)
                };
                let cmds = (0..min).filter_map(|_| stream.take()).collect();
                measured_naive(&mut s, cmds, &mut nevents);
            } else {
                let mut s = cold.engine();
                let mut stream = if case == "cold-write" {
                    engine_write_stream(&cold, SEED, n)
                } else {
                    engine_exit_stream(&cold, SEED + 1, min)
                };
                let cmds = (0..min).filter_map(|_| stream.take()).collect();
                measured(&mut s, cmds, &mut events);
            }
        }
        "cold-read" => {
            let cold = ColdRooms::new(cold_rooms());
            let mut stream = read_stream(&cold, SEED + 2, n);
            let mut ids = Vec::with_capacity(n);
            while ids.len() < n {
                match stream.take() {
                    Some(id) => ids.push(id),
                    None => stream.next_pass(),
                }
            }
            let mut out = Vec::with_capacity(4096);
            let missed = if naive {
                let s = cold.naive();
                let start = Start::now();
                let missed = timed_naive_cold_reads(&s, ids, &mut out);
                report(start, n);
                missed
            } else {
                let s = cold.engine();
                let start = Start::now();
                let missed = timed_engine_cold_reads(&s, ids, &mut out);
                report(start, n);
                missed
            };
            assert_eq!(missed, 0, "every read finds its room");
        }
        "restore" => {
            let bytes = Grid::new(10_000, 20).engine().snapshot();
            for _ in 0..n.div_ceil(200_000) {
                let start = Start::now();
                let engine = restore(&bytes);
                report(start, 200_000);
                drop(engine);
            }
            eprintln!("snapshot of {} bytes for 200,000 attributes", bytes.len());
        }
        "read-command" => {
            let grid = Grid::new(1, 20);
            let mut s = grid.engine();
            let cmds = (0..n)
                .map(|_| Command::Read {
                    room: grid.rooms[0].as_str().into(),
                    keys: None,
                })
                .collect();
            measured(&mut s, cmds, &mut events);
        }
        other => {
            eprintln!("unknown case {other}");
            std::process::exit(2);
        }
    }
    let (ns, n) = (NANOS.load(Relaxed), COMMANDS.load(Relaxed));
    let faults = FAULTS.load(Relaxed);
    eprintln!(
        "{n} commands, {:.1} ns and {:.3} minor page faults per command (timed part only)",
        ns as f64 / n.max(1) as f64,
        faults as f64 / n.max(1) as f64
    );
}
