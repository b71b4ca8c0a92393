//! Criterion benchmarks of issues 5 and 9: the engine and the naive
//! baseline side by side, under the same IDs (`<group>/{engine,naive}/<case>`).
//!
//! Inputs model a server that has decoded a request: each side gets its own
//! owned command (`Command` of `Str`s, `NaiveCmd` of `String`s), built
//! outside the timing. Timed: the command path, draining the events into a
//! reused buffer and dropping them. State that a command destroys (exits)
//! is rebuilt outside the timing, in chunks. Reads serialize a JSON reply
//! into a reused buffer, each side from its best read path.
//!
//! The cold regime (`write/*/cold_stream`, `read_all/*/cold_stream`,
//! `exit/*/cold_stream`, `scaling/rooms/*`) times long pre-built streams
//! over 10k to 500k full rooms; see `roomstate_benches::cold`.
//!
//! `engine_batch` (`write/engine_batch/{hot,cold_stream}`,
//! `exit/engine_batch/cold_stream`, `scaling/rooms/engine_batch/*`) is
//! the engine driven through `Engine::handle_batch`, in batches of 64
//! commands, on the same inputs: what its prefetch hints gain where rooms
//! are cold, and what they cost where they are hot. The naive map has no
//! such path; its cases are the same ones either way.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-bench cargo bench -p roomstate-benches`,
//! then `cargo run -p roomstate-benches --release --bin ratios`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use roomstate::{Command, Engine, Event};
use roomstate_benches::cold::{
    engine_exit_stream, engine_write_stream, leaver, naive_exit_stream, naive_write_stream,
    read_stream, ColdRooms, Stream, STREAM_MIN,
};
use roomstate_benches::naive::{Naive, NaiveEvent};
use roomstate_benches::workload::{
    engine_read_json, naive_read_json, run_engine, run_naive, ExitFixture, Grid, Mixed,
    QueueFixture, Rng, NOW, SEED,
};

/// Inputs built per batch: small enough to stay in cache, large enough
/// that the timer's cost vanishes.
const BATCH: BatchSize = BatchSize::NumIterations(256);

/// Rooms re-armed per timed chunk of exits.
const EXIT_ROOMS: usize = 64;

/// One overwrite per iteration: a pseudo-random room and one of its first
/// `written` keys; the key's owner writes a new 64-byte value. The scaling
/// cases write the same 10 keys of rooms of 10, 100 or 1000 keys, so the
/// working set stays the same and only the room's size changes.
fn write_case(
    c: &mut Criterion,
    group: &str,
    engine_id: BenchmarkId,
    naive_id: Option<BenchmarkId>,
    rooms: usize,
    keys: usize,
    written: usize,
) {
    let mut g = c.benchmark_group(group);
    let grid = Grid::new(rooms, keys);
    {
        let mut engine = None;
        let mut events: Vec<Event> = Vec::new();
        let mut rng = Rng::new(SEED);
        let mut v = 0usize;
        g.bench_function(engine_id, |b| {
            let engine = engine.get_or_insert_with(|| grid.engine());
            b.iter_batched(
                || {
                    v += 1;
                    grid.engine_overwrite(rng.below(rooms), rng.below(written), v)
                },
                |cmd| {
                    let out = engine.handle(NOW, cmd);
                    engine.drain_events(&mut events);
                    engine.recycle(&mut events);
                    out
                },
                BATCH,
            );
        });
    }
    if let Some(naive_id) = naive_id {
        let mut naive = None;
        let mut events: Vec<NaiveEvent> = Vec::new();
        let mut rng = Rng::new(SEED);
        let mut v = 0usize;
        g.bench_function(naive_id, |b| {
            let naive = naive.get_or_insert_with(|| grid.naive());
            b.iter_batched(
                || {
                    v += 1;
                    grid.naive_overwrite(rng.below(rooms), rng.below(written), v)
                },
                |cmd| {
                    let out = naive.handle(cmd);
                    naive.drain_events(&mut events);
                    events.clear();
                    out
                },
                BATCH,
            );
        });
    }
    g.finish();
}

fn write(c: &mut Criterion) {
    for (case, rooms) in [("hot", 100), ("cold", 10_000)] {
        write_case(
            c,
            "write",
            BenchmarkId::new("engine", case),
            Some(BenchmarkId::new("naive", case)),
            rooms,
            20,
            20,
        );
    }
    write_batched_hot(c);
}

/// `write/engine_batch/hot`: the hot case's overwrites through
/// `Engine::handle_batch`, in batches of [`BATCH_COMMANDS`] built outside
/// the timing: what the prefetch hints cost where every room is in cache.
fn write_batched_hot(c: &mut Criterion) {
    let rooms = 100;
    let grid = Grid::new(rooms, 20);
    let mut engine = None;
    let mut events: Vec<Event> = Vec::new();
    let mut batch = Vec::with_capacity(BATCH_COMMANDS);
    let mut rng = Rng::new(SEED);
    let mut v = 0usize;
    let mut g = c.benchmark_group("write");
    g.bench_function(BenchmarkId::new("engine_batch", "hot"), |b| {
        let engine = engine.get_or_insert_with(|| grid.engine());
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let n = usize::try_from(iters - done)
                    .map_or(BATCH_COMMANDS, |left| left.min(BATCH_COMMANDS));
                for _ in 0..n {
                    v += 1;
                    batch.push(grid.engine_overwrite(rng.below(rooms), rng.below(20), v));
                }
                let start = Instant::now();
                engine.handle_batch(NOW, &mut batch, |e, out| {
                    black_box(out).ok();
                    e.drain_events(&mut events);
                    e.recycle(&mut events);
                });
                total += start.elapsed();
                done += n as u64;
            }
            total
        });
    });
    g.finish();
}

/// Times exits only: every `rooms` exits, `arm` re-joins the leavers,
/// re-sets their key and builds the exit command, outside the timing.
fn time_exits<S, C>(
    iters: u64,
    rooms: usize,
    state: &mut S,
    mut arm: impl FnMut(&mut S, usize) -> C,
    mut exit: impl FnMut(&mut S, C),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    let mut cmds = Vec::with_capacity(rooms);
    while done < iters {
        let n = usize::try_from(iters - done).map_or(rooms, |left| left.min(rooms));
        cmds.clear();
        for r in 0..n {
            cmds.push(arm(state, r));
        }
        let start = Instant::now();
        for cmd in cmds.drain(..) {
            exit(state, cmd);
        }
        total += start.elapsed();
        done += n as u64;
    }
    total
}

fn exit_case(
    c: &mut Criterion,
    group: &str,
    engine_id: BenchmarkId,
    naive_id: Option<BenchmarkId>,
    keys: usize,
) {
    let mut g = c.benchmark_group(group);
    let fx = ExitFixture::new(EXIT_ROOMS, keys);
    {
        let mut state = None;
        g.bench_function(engine_id, |b| {
            let state = state.get_or_insert_with(|| (fx.engine(), Vec::<Event>::new()));
            b.iter_custom(|iters| {
                time_exits(
                    iters,
                    fx.rooms(),
                    state,
                    |(engine, events), r| {
                        fx.engine_arm(engine, r, events);
                        fx.engine_exit(r)
                    },
                    |(engine, events), cmd| {
                        black_box(engine.handle(NOW, cmd)).ok();
                        engine.drain_events(events);
                        engine.recycle(events);
                    },
                )
            });
        });
    }
    if let Some(naive_id) = naive_id {
        let mut state = None;
        g.bench_function(naive_id, |b| {
            let state = state.get_or_insert_with(|| (fx.naive(), Vec::<NaiveEvent>::new()));
            b.iter_custom(|iters| {
                time_exits(
                    iters,
                    fx.rooms(),
                    state,
                    |(naive, events), r| {
                        fx.naive_arm(naive, r, events);
                        fx.naive_exit(r)
                    },
                    |(naive, events), cmd| {
                        black_box(naive.handle(cmd)).ok();
                        naive.drain_events(events);
                        events.clear();
                    },
                )
            });
        });
    }
    g.finish();
}

fn exit(c: &mut Criterion) {
    for keys in [10, 100] {
        let case = format!("keys{keys}");
        exit_case(
            c,
            "exit",
            BenchmarkId::new("engine", &case),
            Some(BenchmarkId::new("naive", &case)),
            keys,
        );
    }
}

/// Both sides answer "read every attribute" with the same JSON reply
/// (20 attributes: key, value, owner, revision) written into a reused
/// buffer: the engine from its borrowed view, the baseline from its map.
fn read_all(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_all");
    let grid = Grid::new(1, 20);
    let id = grid.rooms[0].as_str();
    let mut engine = None;
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    g.bench_function(BenchmarkId::new("engine", 20), |b| {
        let engine = engine.get_or_insert_with(|| grid.engine());
        b.iter(|| {
            out.clear();
            assert!(engine_read_json(engine, black_box(id), &mut out));
            black_box(out.len())
        });
    });
    let mut naive = None;
    g.bench_function(BenchmarkId::new("naive", 20), |b| {
        let naive = naive.get_or_insert_with(|| grid.naive());
        b.iter(|| {
            out.clear();
            assert!(naive_read_json(naive, black_box(id), &mut out));
            black_box(out.len())
        });
    });
    g.finish();
}

fn queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    let fx = QueueFixture::new(1_000);
    {
        let mut engine = None;
        let mut events: Vec<Event> = Vec::new();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("engine", "offer_poll"), |b| {
            let engine = engine.get_or_insert_with(|| fx.engine());
            b.iter_batched(
                || {
                    i += 1;
                    fx.engine_step(i - 1)
                },
                |(offer, poll)| {
                    let a = engine.handle(NOW, offer);
                    let p = engine.handle(NOW, poll);
                    engine.drain_events(&mut events);
                    engine.recycle(&mut events);
                    (a, p)
                },
                BATCH,
            );
        });
    }
    {
        let mut naive = None;
        let mut events: Vec<NaiveEvent> = Vec::new();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("naive", "offer_poll"), |b| {
            let naive = naive.get_or_insert_with(|| fx.naive());
            b.iter_batched(
                || {
                    i += 1;
                    fx.naive_step(i - 1)
                },
                |(offer, poll)| {
                    let a = naive.handle(offer);
                    let p = naive.handle(poll);
                    naive.drain_events(&mut events);
                    events.clear();
                    (a, p)
                },
                BATCH,
            );
        });
    }
    g.finish();
}

fn mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    let mixed = Mixed::standard();
    let mut events: Vec<Event> = Vec::new();
    let mut reply: Vec<u8> = Vec::with_capacity(4096);
    g.bench_function(BenchmarkId::new("engine", "10k"), |b| {
        b.iter_batched(
            || (mixed.engine(), mixed.engine_inputs()),
            |(mut engine, inputs)| {
                black_box(run_engine(&mut engine, inputs, &mut events, &mut reply));
                engine
            },
            BatchSize::PerIteration,
        );
    });
    let mut events: Vec<NaiveEvent> = Vec::new();
    g.bench_function(BenchmarkId::new("naive", "10k"), |b| {
        b.iter_batched(
            || (mixed.naive(), mixed.naive_inputs()),
            |(mut naive, inputs)| {
                black_box(run_naive(&mut naive, inputs, &mut events, &mut reply));
                naive
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn scaling(c: &mut Criterion) {
    for keys in [10, 100, 1_000] {
        exit_case(
            c,
            "scaling",
            BenchmarkId::new("engine/exit", keys),
            None,
            keys,
        );
    }
    for keys in [10, 100, 1_000] {
        write_case(
            c,
            "scaling",
            BenchmarkId::new("engine/write", keys),
            None,
            100,
            keys,
            10,
        );
    }
}

fn snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    // Built even when filtered out: the throughput needs the size.
    let engine = Grid::new(10_000, 20).engine();
    let bytes = engine.snapshot();
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(BenchmarkId::new("engine", "encode"), |b| {
        b.iter(|| engine.snapshot());
    });
    drop(engine);
    g.bench_function(BenchmarkId::new("engine", "restore"), |b| {
        // The restored engine is dropped outside the timing.
        b.iter_batched(
            || (),
            |()| Engine::restore(black_box(&bytes)).expect("snapshot restores"),
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

// ----- the cold regime -----

/// Room counts of the `scaling/rooms` series; `cold_stream` is the 100k one.
const COLD_ROOMS: [(&str, usize); 3] = [("10k", 10_000), ("100k", 100_000), ("500k", 500_000)];

/// Rooms of the `cold_stream` cases.
const COLD_STREAM_ROOMS: usize = 100_000;

/// A group for cold cases: few samples, short measurement (each case's
/// state takes seconds and up to gigabytes to build).
fn cold_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g
}

/// Untimed work before each `iter_custom` call: finishes a completed pass
/// (`between`), and at the start of a pass replaces a stream that has less
/// than half of [`STREAM_MIN`] left by a fresh one.
///
/// Criterion's warm-up adds up the *wall* time of each `iter_custom` call,
/// untimed work included, to pick the iterations per sample; seconds of
/// stream building inside the first call would make it pick one command
/// per sample. Done here, outside the call, it is invisible to it. What
/// still runs inside (a pass ending or the stream running out in the
/// middle of a large sample) is excluded from the measured time.
fn prepare<S, C>(
    stream: &mut Option<Stream<C>>,
    build: &impl Fn() -> Stream<C>,
    state: &mut S,
    between: &mut impl FnMut(&mut S, usize),
) {
    let s = stream.get_or_insert_with(build);
    if s.taken_in_pass == s.pass_len {
        between(state, s.pass);
        s.next_pass();
    }
    if s.taken_in_pass == 0 && s.left() < STREAM_MIN / 2 {
        *stream = Some(build());
    }
}

/// Commands per `handle_batch` call in the `engine_batch` cases: what a
/// server's read loop might collect (tokio's `recv_many` with a limit of
/// 64); the hints look three commands ahead, so any batch past about
/// eight commands behaves alike.
const BATCH_COMMANDS: usize = 64;

/// What a timed stream does with each command it takes: a closure
/// handles it at once; [`EngineSink`] may collect it and handle a full
/// batch.
trait Apply<S, C> {
    fn apply(&mut self, state: &mut S, cmd: C);
    /// The end of a timed stretch: handle what `apply` left pending.
    fn finish(&mut self, _state: &mut S) {}
}

impl<S, C, F: FnMut(&mut S, C)> Apply<S, C> for F {
    fn apply(&mut self, state: &mut S, cmd: C) {
        self(state, cmd);
    }
}

/// How the engine's cold cases handle their stream: a `handle` call per
/// command, or, with `batch`, batches of [`BATCH_COMMANDS`] through
/// `Engine::handle_batch`. Either way each outcome is checked and its
/// events drained into a reused buffer and dropped.
struct EngineSink<'a> {
    batch: Option<Vec<Command>>,
    events: &'a mut Vec<Event>,
    failed: &'a mut u64,
}

impl<'a> EngineSink<'a> {
    fn new(batched: bool, events: &'a mut Vec<Event>, failed: &'a mut u64) -> Self {
        EngineSink {
            batch: batched.then(|| Vec::with_capacity(BATCH_COMMANDS)),
            events,
            failed,
        }
    }

    fn run(&mut self, engine: &mut Engine) {
        let (events, failed) = (&mut *self.events, &mut *self.failed);
        if let Some(batch) = &mut self.batch {
            engine.handle_batch(NOW, batch, |e, out| {
                *failed += u64::from(black_box(out).is_err());
                e.drain_events(events);
                events.clear();
            });
        }
    }
}

impl Apply<Engine, Command> for EngineSink<'_> {
    fn apply(&mut self, engine: &mut Engine, cmd: Command) {
        match &mut self.batch {
            None => {
                *self.failed += u64::from(black_box(engine.handle(NOW, cmd)).is_err());
                engine.drain_events(self.events);
                self.events.clear();
            }
            Some(batch) => {
                batch.push(cmd);
                if batch.len() == BATCH_COMMANDS {
                    self.run(engine);
                }
            }
        }
    }

    fn finish(&mut self, engine: &mut Engine) {
        // Nothing pending, or handling one by one: an empty batch.
        self.run(engine);
    }
}

/// Times `iters` commands of a stream, pass by pass: `between` runs
/// outside the timing after each pass (re-arming what the pass
/// destroyed), and a spent stream is built again, also outside.
fn time_stream<S, C>(
    iters: u64,
    stream: &mut Option<Stream<C>>,
    build: &impl Fn() -> Stream<C>,
    state: &mut S,
    between: &mut impl FnMut(&mut S, usize),
    apply: &mut impl Apply<S, C>,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    while done < iters {
        let s = stream.get_or_insert_with(build);
        if s.left_in_pass() == 0 {
            if s.taken_in_pass > 0 {
                between(state, s.pass);
            }
            if s.left() == 0 {
                *stream = None;
            } else {
                s.next_pass();
            }
            continue;
        }
        let n = usize::try_from(iters - done)
            .map_or(s.left_in_pass(), |left| left.min(s.left_in_pass()));
        let start = Instant::now();
        for _ in 0..n {
            if let Some(cmd) = s.take() {
                apply.apply(state, cmd);
            }
        }
        apply.finish(state);
        total += start.elapsed();
        done += n as u64;
    }
    total
}

/// The IDs one side's write (or exit) stream over `rooms` rooms is timed
/// under: the scaling point, and `<op>/<side>/cold_stream` at 100k rooms.
fn cold_ids(
    op: &'static str,
    side: &str,
    label: &str,
    rooms: usize,
) -> Vec<(&'static str, BenchmarkId)> {
    let mut ids = vec![(
        "scaling",
        BenchmarkId::new(format!("rooms/{side}/{op}"), label),
    )];
    if rooms == COLD_STREAM_ROOMS {
        ids.push((op, BenchmarkId::new(side, "cold_stream")));
    }
    ids
}

/// [`cold_ids`] for the engine, one by one and then batched
/// (`engine_batch`), each with whether it is batched.
fn engine_cold_ids(
    op: &'static str,
    label: &str,
    rooms: usize,
) -> Vec<(&'static str, BenchmarkId, bool)> {
    [("engine", false), ("engine_batch", true)]
        .into_iter()
        .flat_map(|(side, batched)| {
            cold_ids(op, side, label, rooms)
                .into_iter()
                .map(move |(group, id)| (group, id, batched))
        })
        .collect()
}

/// `read_all/<side>/cold_stream`, on the 100k rooms the side's write
/// stream has just overwritten (`state`; built here when the write case was
/// filtered out): one iteration takes the next room id of the read stream
/// (every room once per pass, each id its own `String`) and writes the
/// JSON reply of all 20 attributes into a reused buffer with `read`. The
/// id is dropped inside the timing, as a consumed command is.
fn cold_reads<S>(
    c: &mut Criterion,
    side: &str,
    cold: &ColdRooms,
    state: &mut Option<S>,
    make: impl Fn(&ColdRooms) -> S,
    read: impl Fn(&S, &str, &mut Vec<u8>) -> bool,
) {
    let mut stream = None;
    let build = || read_stream(cold, SEED + 2, STREAM_MIN);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut failed = 0u64;
    let mut g = cold_group(c, "read_all");
    g.bench_function(BenchmarkId::new(side, "cold_stream"), |b| {
        let state = state.get_or_insert_with(|| make(cold));
        prepare(&mut stream, &build, state, &mut |_, _| {});
        b.iter_custom(|iters| {
            time_stream(
                iters,
                &mut stream,
                &build,
                state,
                &mut |_, _| {},
                &mut |s: &mut S, id: String| {
                    out.clear();
                    failed += u64::from(!read(s, black_box(&id), &mut out));
                    black_box(out.len());
                },
            )
        });
    });
    g.finish();
    assert_eq!(failed, 0, "every read of a cold stream finds its room");
}

fn cold_engine(c: &mut Criterion, label: &str, rooms: usize) {
    let cold = ColdRooms::new(rooms);
    let mut engine: Option<Engine> = None;
    let mut events: Vec<Event> = Vec::new();
    let mut failed = 0u64;
    let mut stream = None;
    let build = || engine_write_stream(&cold, SEED, STREAM_MIN);
    for (group, id, batched) in engine_cold_ids("write", label, rooms) {
        let mut g = cold_group(c, group);
        g.bench_function(id, |b| {
            let engine = engine.get_or_insert_with(|| cold.engine());
            prepare(&mut stream, &build, engine, &mut |_, _| {});
            b.iter_custom(|iters| {
                time_stream(
                    iters,
                    &mut stream,
                    &build,
                    engine,
                    &mut |_, _| {},
                    &mut EngineSink::new(batched, &mut events, &mut failed),
                )
            });
        });
        g.finish();
    }
    drop(stream);
    if rooms == COLD_STREAM_ROOMS {
        cold_reads(
            c,
            "engine",
            &cold,
            &mut engine,
            ColdRooms::engine,
            engine_read_json,
        );
    }
    let mut stream = None;
    let build = || engine_exit_stream(&cold, SEED + 1, STREAM_MIN);
    for (group, id, batched) in engine_cold_ids("exit", label, rooms) {
        let mut g = cold_group(c, group);
        g.bench_function(id, |b| {
            let engine = engine.get_or_insert_with(|| cold.engine());
            let mut arm_events = Vec::new();
            let mut rearm = |e: &mut Engine, pass: usize| {
                for r in 0..cold.rooms {
                    cold.engine_arm(e, r, leaver(pass), &mut arm_events);
                }
            };
            prepare(&mut stream, &build, engine, &mut rearm);
            b.iter_custom(|iters| {
                time_stream(
                    iters,
                    &mut stream,
                    &build,
                    engine,
                    &mut rearm,
                    &mut EngineSink::new(batched, &mut events, &mut failed),
                )
            });
        });
        g.finish();
    }
    assert_eq!(failed, 0, "every command of a cold stream succeeds");
}

fn cold_naive(c: &mut Criterion, label: &str, rooms: usize) {
    let cold = ColdRooms::new(rooms);
    let mut naive = None;
    let mut events: Vec<NaiveEvent> = Vec::new();
    let mut failed = 0u64;
    let mut stream = None;
    let build = || naive_write_stream(&cold, SEED, STREAM_MIN);
    for (group, id) in cold_ids("write", "naive", label, rooms) {
        let mut g = cold_group(c, group);
        g.bench_function(id, |b| {
            let naive = naive.get_or_insert_with(|| cold.naive());
            prepare(&mut stream, &build, naive, &mut |_, _| {});
            b.iter_custom(|iters| {
                time_stream(
                    iters,
                    &mut stream,
                    &build,
                    naive,
                    &mut |_, _| {},
                    &mut |n: &mut Naive, cmd| {
                        failed += u64::from(black_box(n.handle(cmd)).is_err());
                        n.drain_events(&mut events);
                        events.clear();
                    },
                )
            });
        });
        g.finish();
    }
    drop(stream);
    if rooms == COLD_STREAM_ROOMS {
        cold_reads(
            c,
            "naive",
            &cold,
            &mut naive,
            ColdRooms::naive,
            naive_read_json,
        );
    }
    let mut stream = None;
    let build = || naive_exit_stream(&cold, SEED + 1, STREAM_MIN);
    for (group, id) in cold_ids("exit", "naive", label, rooms) {
        let mut g = cold_group(c, group);
        g.bench_function(id, |b| {
            let naive = naive.get_or_insert_with(|| cold.naive());
            let mut arm_events = Vec::new();
            let mut rearm = |n: &mut Naive, pass: usize| {
                for r in 0..cold.rooms {
                    cold.naive_arm(n, r, leaver(pass), &mut arm_events);
                }
            };
            prepare(&mut stream, &build, naive, &mut rearm);
            b.iter_custom(|iters| {
                time_stream(
                    iters,
                    &mut stream,
                    &build,
                    naive,
                    &mut rearm,
                    &mut |n: &mut Naive, cmd| {
                        failed += u64::from(black_box(n.handle(cmd)).is_err());
                        n.drain_events(&mut events);
                        events.clear();
                    },
                )
            });
        });
        g.finish();
    }
    assert_eq!(failed, 0, "every command of a cold stream succeeds");
}

/// One side at a time, its state dropped before the next is built, so the
/// 500k-room cases never hold both in memory.
fn cold(c: &mut Criterion) {
    for (label, rooms) in COLD_ROOMS {
        cold_engine(c, label, rooms);
        cold_naive(c, label, rooms);
    }
}

criterion_group!(benches, write, exit, read_all, queue, mixed, scaling, snapshot, cold);
criterion_main!(benches);
