//! Allocation and heap figures of issue 5, one `name: value` line each:
//!
//! ```text
//! cargo run -p roomstate-benches --release --bin alloc_report
//! ```
//!
//! A counting global allocator records allocations (`alloc`, `alloc_zeroed`
//! and `realloc` each count one) and live requested bytes. Commands are
//! built before a measured window opens, as in the criterion benchmarks, so
//! only the engine's own allocations count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use roomstate::{Command, Event};
use roomstate_benches::naive::NaiveEvent;
use roomstate_benches::workload::{drain, ExitFixture, Grid, Rng, NOW, SEED};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

fn bytes(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        LIVE.fetch_add(bytes(layout.size()), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        LIVE.fetch_add(bytes(layout.size()), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(bytes(layout.size()), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        LIVE.fetch_add(bytes(new_size) - bytes(layout.size()), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f`.
fn allocs_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.load(Relaxed);
    f();
    ALLOCS.load(Relaxed) - before
}

/// Steady-state overwrites with same-size values, events drained into a
/// reused buffer.
fn overwrite_allocs_per_cmd() -> f64 {
    const N: usize = 10_000;
    let grid = Grid::new(100, 20);
    let mut engine = grid.engine();
    let mut rng = Rng::new(SEED);
    let mut events: Vec<Event> = Vec::new();
    let mut commands = |n: usize| -> Vec<Command> {
        (0..n)
            .map(|v| grid.engine_overwrite(rng.below(100), rng.below(20), v))
            .collect()
    };
    // Warm up: every buffer reaches its steady size. The longest to fill
    // are the catch-up histories: 256 events per room (the profile's
    // bound), so 100 rooms need 25,600 events; 4 × N is well past that.
    for cmd in commands(4 * N) {
        let _ = engine.handle(NOW, cmd);
        engine.drain_events(&mut events);
        engine.recycle(&mut events);
    }
    let cmds = commands(N);
    let mut outcomes = Vec::with_capacity(N);
    let n = allocs_in(|| {
        for cmd in cmds {
            outcomes.push(engine.handle(NOW, cmd));
            engine.drain_events(&mut events);
            engine.recycle(&mut events);
        }
    });
    assert!(outcomes.iter().all(Result::is_ok), "overwrites succeed");
    n as f64 / N as f64
}

/// Reading all 20 attributes of a room through the borrowed view.
fn read_all_allocs() -> u64 {
    let grid = Grid::new(1, 20);
    let engine = grid.engine();
    let id = grid.rooms[0].as_str();
    allocs_in(|| {
        let view = engine.room(id).expect("room exists");
        let mut seen = 0;
        for a in view.attributes() {
            black_box(a);
            seen += 1;
        }
        assert_eq!(seen, 20);
    })
}

/// Exits (kicks) that each delete one key, in rooms of 100 keys.
fn exit_allocs_per_cmd() -> f64 {
    const ROUNDS: usize = 20;
    let fx = ExitFixture::new(64, 100);
    let mut engine = fx.engine();
    let mut events: Vec<Event> = Vec::new();
    let mut total = 0;
    for _ in 0..ROUNDS {
        let cmds: Vec<Command> = (0..fx.rooms())
            .map(|r| {
                fx.engine_arm(&mut engine, r, &mut events);
                fx.engine_exit(r)
            })
            .collect();
        total += allocs_in(|| {
            for cmd in cmds {
                let _ = black_box(engine.handle(NOW, cmd));
                engine.drain_events(&mut events);
                engine.recycle(&mut events);
            }
        });
    }
    total as f64 / (ROUNDS * fx.rooms()) as f64
}

/// Live heap bytes per attribute of 10,000 rooms × 20 attributes, for the
/// engine and for the baseline.
fn heap_bytes_per_attr() -> (f64, f64, f64) {
    let grid = Grid::new(10_000, 20);
    let attrs = (grid.rooms.len() * grid.keys_per_room) as f64;
    let before = LIVE.load(Relaxed);
    let mut engine = grid.engine();
    drain(&mut engine);
    let engine_bytes = LIVE.load(Relaxed) - before;
    assert_eq!(engine.room_count(), 10_000);
    // Of which the catch-up histories (the grid's events so far: each
    // room's creation and its writes), per room.
    let history: usize = grid
        .rooms
        .iter()
        .filter_map(|id| engine.room(id))
        .map(|room| room.history_heap_bytes())
        .sum();
    drop(engine);
    let before = LIVE.load(Relaxed);
    let mut naive = grid.naive();
    let mut events: Vec<NaiveEvent> = Vec::new();
    naive.drain_events(&mut events);
    drop(events);
    let naive_bytes = LIVE.load(Relaxed) - before;
    drop(naive);
    (
        engine_bytes as f64 / attrs,
        naive_bytes as f64 / attrs,
        history as f64 / grid.rooms.len() as f64,
    )
}

fn main() {
    println!(
        "overwrite_allocs_per_cmd: {:.2}",
        overwrite_allocs_per_cmd()
    );
    println!("read_all_allocs: {}", read_all_allocs());
    println!("exit_allocs_per_cmd: {:.2}", exit_allocs_per_cmd());
    let (engine, naive, history) = heap_bytes_per_attr();
    println!("heap_bytes_per_attr: {engine:.1}");
    println!("history_bytes_per_room: {history:.1}");
    println!("naive_heap_bytes_per_attr: {naive:.1}");
}
