//! Allocation and heap figures of issues 5 and 9, one `name: value` line
//! each:
//!
//! ```text
//! cargo run -p roomstate-benches --release --bin alloc_report
//! ```
//!
//! A counting global allocator records allocations (`alloc`, `alloc_zeroed`
//! and `realloc` each count one), live requested bytes, and the peak of
//! live bytes since the last reset. Commands are built before a measured
//! window opens, as in the criterion benchmarks, so only the engine's own
//! allocations count. Heap figures are requested bytes: the allocator's
//! own rounding and headers (about 8-16 bytes per block with glibc) are
//! not included, on either side.
//!
//! - `overwrite_allocs_per_cmd`, `read_all_allocs`, `exit_allocs_per_cmd`:
//!   the engine's allocations in steady state, per command;
//!   `naive_overwrite_allocs_per_cmd` and `naive_exit_allocs_per_cmd`: the
//!   baseline's, per overwrite and per exit, measured by the same code.
//! - `heap_bytes_per_attr`: live heap bytes per attribute of 10,000 rooms
//!   × 20 attributes (16 B keys, 64 B values, 8 owners per room), with the
//!   catch-up history off: the state alone, as `naive_heap_bytes_per_attr`
//!   (the baseline) and Redis hold it. `heap_bytes_per_attr_with_history`:
//!   the same with the default history (256 events / 64 KiB per room, the
//!   grid's writes in it); `history_bytes_per_room`: the history's share.
//! - `room_bytes_8_members` (history off, as the baseline) and
//!   `room_bytes_8_members_with_history`: live heap bytes that one room adds to an
//!   engine (Easemob profile, rate off) when it is created and 8 distinct
//!   users join it with one connection each, no attributes and no queue,
//!   events drained; measured as the growth of the heap over 10,000 such
//!   rooms, divided by 10,000 (so the room's share of the engine's room
//!   table is included). `naive_room_bytes_8_members`: the same for the
//!   baseline.
//! - `restore_peak_over_input`: the peak of live heap bytes during
//!   `Engine::restore`, above what was live before the call (the input
//!   buffer itself is not counted), divided by the snapshot's length. Printed
//!   per input as `restore_peak_over_input_<input>`, and the worst of them
//!   as `restore_peak_over_input`. Inputs: valid snapshots, built through
//!   the public API, that are cheap to encode and costly to hold (forged,
//!   as an attacker or a corrupted backup would send), and a realistic one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use roomstate::{Actor, Command, Engine, Event, Limits, Op, Profile, Role, Write};
use roomstate_benches::cold::{cold_profile, ColdRooms, MEMBERS};
use roomstate_benches::naive::{Naive, NaiveCmd, NaiveEvent};
use roomstate_benches::workload::{
    bench_profile, drain, engine_read_json, ExitFixture, Grid, Rng, NOW, SEED,
};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

fn bytes(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Adds `delta` to the live bytes and raises the peak.
fn grow(delta: i64) {
    let live = LIVE.fetch_add(delta, Relaxed) + delta;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        grow(bytes(layout.size()));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        grow(bytes(layout.size()));
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
        grow(bytes(new_size) - bytes(layout.size()));
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

/// Allocations per command in steady state, one code for every side
/// and command, so that the baseline's figures (never 0) check the
/// counting and the arithmetic that report the engine's 0: `warm` rounds
/// uncounted, then `measured` rounds counted, each round's commands
/// made by `round` (which may also re-arm the state) before its count
/// opens, and each run by `run`.
fn steady_allocs_per_cmd<S, C>(
    state: &mut S,
    warm: usize,
    measured: usize,
    mut round: impl FnMut(&mut S) -> Vec<C>,
    mut run: impl FnMut(&mut S, C),
) -> f64 {
    let (mut allocs, mut counted) = (0, 0);
    for i in 0..warm + measured {
        let cmds = round(state);
        let n = cmds.len();
        let made = allocs_in(|| {
            for cmd in cmds {
                run(state, cmd);
            }
        });
        if i >= warm {
            allocs += made;
            counted += n;
        }
    }
    allocs as f64 / counted.max(1) as f64
}

/// Overwrites per round of the overwrite figures.
const OVERWRITES: usize = 10_000;

/// One measured command of the engine's: handled, its events drained into
/// the reused buffer and given back. Whether it succeeded.
fn engine_step((engine, events): &mut (Engine, Vec<Event>), cmd: Command) -> bool {
    let ok = engine.handle(NOW, cmd).is_ok();
    engine.drain_events(events);
    engine.recycle(events);
    ok
}

/// [`engine_step`] for the baseline: its events are owned, so the buffer
/// is cleared.
fn naive_step((naive, events): &mut (Naive, Vec<NaiveEvent>), cmd: NaiveCmd) -> bool {
    let ok = naive.handle(cmd).is_ok();
    naive.drain_events(events);
    events.clear();
    ok
}

/// Steady-state overwrites with same-size values, events drained into a
/// reused buffer. Warm-up: every buffer reaches its steady size. The
/// longest to fill are the catch-up histories: 256 events per room (the
/// profile's bound), so 100 rooms need 25,600 events; four rounds of
/// 10,000 are well past that.
fn overwrite_allocs_per_cmd() -> f64 {
    let grid = Grid::new(100, 20);
    let mut rng = Rng::new(SEED);
    let state = &mut (grid.engine(), Vec::<Event>::new());
    steady_allocs_per_cmd(
        state,
        4,
        1,
        |_| {
            (0..OVERWRITES)
                .map(|v| grid.engine_overwrite(rng.below(100), rng.below(20), v))
                .collect()
        },
        |state, cmd| assert!(engine_step(state, cmd), "overwrites succeed"),
    )
}

/// The baseline's allocations per overwrite, measured as the engine's
/// are (the same grid and picks, warmed up, events drained into a reused
/// buffer): what the engine's 0 saves. It also shows that the counting
/// works, where every engine figure is 0.
fn naive_overwrite_allocs_per_cmd() -> f64 {
    let grid = Grid::new(100, 20);
    let mut rng = Rng::new(SEED);
    let state = &mut (grid.naive(), Vec::<NaiveEvent>::new());
    steady_allocs_per_cmd(
        state,
        1,
        1,
        |_| {
            (0..OVERWRITES)
                .map(|v| grid.naive_overwrite(rng.below(100), rng.below(20), v))
                .collect::<Vec<NaiveCmd>>()
        },
        |state, cmd| assert!(naive_step(state, cmd), "overwrites succeed"),
    )
}

/// Reading all 20 attributes of a room through the borrowed view into a
/// JSON reply, in a buffer already grown to the reply's size (the read path
/// of `read_all/engine/20`).
fn read_all_allocs() -> u64 {
    let grid = Grid::new(1, 20);
    let engine = grid.engine();
    let id = grid.rooms[0].as_str();
    let mut out = Vec::new();
    assert!(engine_read_json(&engine, id, &mut out));
    let len = out.len();
    let n = allocs_in(|| {
        out.clear();
        assert!(engine_read_json(&engine, id, &mut out));
    });
    assert_eq!(out.len(), len);
    assert!(len > 20 * 80, "20 keys and values: {len} bytes");
    n
}

/// Rounds of exits of each exit figure, after as many rounds of warm-up.
const EXIT_ROUNDS: usize = 20;

/// Exits (kicks) that each delete one key (the leaver's only one), in
/// rooms of 100 keys, each room re-armed before its exit, outside the
/// count: the leaver joins again and writes its key.
fn exit_allocs_per_cmd() -> f64 {
    let fx = ExitFixture::new(64, 100);
    let state = &mut (fx.engine(), Vec::<Event>::new());
    steady_allocs_per_cmd(
        state,
        EXIT_ROUNDS,
        EXIT_ROUNDS,
        |(engine, events)| {
            (0..fx.rooms())
                .map(|r| {
                    fx.engine_arm(engine, r, events);
                    fx.engine_exit(r)
                })
                .collect()
        },
        |state, cmd| {
            black_box(engine_step(state, cmd));
        },
    )
}

/// The baseline's allocations per exit, measured as the engine's are.
fn naive_exit_allocs_per_cmd() -> f64 {
    let fx = ExitFixture::new(64, 100);
    let state = &mut (fx.naive(), Vec::<NaiveEvent>::new());
    steady_allocs_per_cmd(
        state,
        EXIT_ROUNDS,
        EXIT_ROUNDS,
        |(naive, events)| {
            (0..fx.rooms())
                .map(|r| {
                    fx.naive_arm(naive, r, events);
                    fx.naive_exit(r)
                })
                .collect::<Vec<NaiveCmd>>()
        },
        |state, cmd| {
            black_box(naive_step(state, cmd));
        },
    )
}

/// `profile` with the catch-up history off: the state alone, as the naive
/// map and Redis hold it (the history is a bounded cache of recent events
/// that neither keeps; it is reported on its own lines).
fn without_history(mut profile: Profile) -> Profile {
    profile.limits.history_events = 0;
    profile
}

/// Live heap bytes per attribute of 10,000 rooms × 20 attributes, for the
/// engine (under `profile`) and for the baseline, and the engine's history
/// bytes per room.
fn heap_bytes_per_attr(profile: Profile) -> (f64, f64, f64) {
    let grid = Grid::new(10_000, 20);
    let attrs = (grid.rooms.len() * grid.keys_per_room) as f64;
    let before = LIVE.load(Relaxed);
    let mut engine = grid.engine_with(profile);
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

/// Live heap bytes per room of `ROOMS` rooms with 8 present members and
/// nothing else, for the engine (under `profile`) and for the baseline.
fn room_bytes_8_members(profile: Profile) -> (f64, f64) {
    const ROOMS: usize = 10_000;
    let cold = ColdRooms::new(ROOMS);
    // Ids are built before the window: only the stores' own copies count.
    let ids: Vec<(String, Vec<String>)> = (0..ROOMS)
        .map(|r| {
            (
                cold.room(r),
                (0..MEMBERS).map(|m| cold.member(r, m)).collect(),
            )
        })
        .collect();
    let mut events: Vec<Event> = Vec::new();
    let before = LIVE.load(Relaxed);
    let mut engine = Engine::new(profile);
    for (room, users) in &ids {
        let _ = engine.handle(
            NOW,
            Command::CreateRoom {
                room: room.as_str().into(),
                creator: users[0].as_str().into(),
            },
        );
        for user in users {
            let _ = engine.handle(
                NOW,
                Command::Join {
                    room: room.as_str().into(),
                    user: user.as_str().into(),
                },
            );
        }
        engine.drain_events(&mut events);
        engine.recycle(&mut events);
    }
    let engine_bytes = LIVE.load(Relaxed) - before;
    let probe = engine.room(&ids[ROOMS - 1].0).expect("room exists");
    assert_eq!(probe.members().len(), MEMBERS);
    assert_eq!(probe.attribute_count(), 0);
    drop(engine);

    let mut nevents: Vec<NaiveEvent> = Vec::new();
    let before = LIVE.load(Relaxed);
    let mut naive = Naive::new();
    for (room, users) in &ids {
        let _ = naive.handle(NaiveCmd::CreateRoom {
            room: room.clone(),
            creator: users[0].clone(),
        });
        for user in users {
            let _ = naive.handle(NaiveCmd::Join {
                room: room.clone(),
                user: user.clone(),
            });
        }
        naive.drain_events(&mut nevents);
        nevents.clear();
    }
    let naive_bytes = LIVE.load(Relaxed) - before;
    assert_eq!(naive.rooms[&ids[0].0].members.len(), MEMBERS);
    drop(naive);
    (
        engine_bytes as f64 / ROOMS as f64,
        naive_bytes as f64 / ROOMS as f64,
    )
}

/// Peak live heap during `Engine::restore(bytes)`, above what was live
/// before, divided by the input's length.
fn restore_peak(bytes: &[u8]) -> f64 {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let engine = Engine::restore(black_box(bytes)).expect("a valid snapshot restores");
    let peak = PEAK.load(Relaxed) - before;
    drop(engine);
    peak as f64 / bytes.len() as f64
}

/// Tencent's semantics with the key count, batch size and room size
/// limits opened, as an application may configure them, so that one
/// room can hold thousands of attributes.
fn open_tencent() -> Profile {
    let t = Profile::tencent();
    Profile {
        limits: Limits {
            max_keys_per_room: None,
            max_ops_per_write: 1_000,
            max_room_value_bytes: None,
            request_rate: None,
            ..t.limits
        },
        ..t
    }
}

/// Short distinct ids: `n` in base 62.
fn tiny_id(mut n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::new();
    loop {
        s.push(char::from(DIGITS[n % DIGITS.len()]));
        n /= DIGITS.len();
        if n == 0 {
            return s;
        }
    }
}

/// Forged: one room of 20,000 attributes with 1-3 byte keys, empty values,
/// owned by `Admin` (a few bytes each in the snapshot).
fn forged_tiny_attributes() -> Vec<u8> {
    let mut engine = Engine::new(open_tencent());
    let _ = engine.handle(
        NOW,
        Command::CreateRoom {
            room: "r".into(),
            creator: "c".into(),
        },
    );
    for batch in 0..20 {
        let mut w = Write::new("r", Actor::Admin);
        for k in batch * 1_000..(batch + 1) * 1_000 {
            w = w.op(Op::set(tiny_id(k), ""));
        }
        assert!(engine.handle(NOW, Command::Write(w)).is_ok());
    }
    drain(&mut engine);
    assert_eq!(engine.room("r").map(|v| v.attribute_count()), Some(20_000));
    engine.snapshot()
}

/// Forged: 20,000 empty rooms with 1-3 byte ids and a 1-byte creator.
fn forged_empty_rooms() -> Vec<u8> {
    let mut engine = Engine::new(open_tencent());
    for r in 0..20_000 {
        let cmd = Command::CreateRoom {
            room: tiny_id(r).into(),
            creator: "c".into(),
        };
        assert!(engine.handle(NOW, cmd).is_ok());
    }
    drain(&mut engine);
    engine.snapshot()
}

/// Forged: one room whose 20,000 users (1-3 byte ids) each have a role
/// and are not present.
fn forged_roles() -> Vec<u8> {
    let mut engine = Engine::new(open_tencent());
    let _ = engine.handle(
        NOW,
        Command::CreateRoom {
            room: "r".into(),
            creator: "c".into(),
        },
    );
    for u in 0..20_000 {
        let cmd = Command::SetRole {
            room: "r".into(),
            user: format!("_{}", tiny_id(u)).into(),
            role: Role::Admin,
        };
        assert!(engine.handle(NOW, cmd).is_ok());
    }
    drain(&mut engine);
    engine.snapshot()
}

/// Realistic: 10,000 Easemob rooms of 8 members and 20 attributes (16 B
/// keys, 64 B values), as in the cold benchmarks.
fn realistic() -> Vec<u8> {
    ColdRooms::new(10_000).engine().snapshot()
}

fn main() {
    println!(
        "overwrite_allocs_per_cmd: {:.2}",
        overwrite_allocs_per_cmd()
    );
    println!(
        "naive_overwrite_allocs_per_cmd: {:.2}",
        naive_overwrite_allocs_per_cmd()
    );
    println!("read_all_allocs: {}", read_all_allocs());
    println!("exit_allocs_per_cmd: {:.2}", exit_allocs_per_cmd());
    println!(
        "naive_exit_allocs_per_cmd: {:.2}",
        naive_exit_allocs_per_cmd()
    );
    // The state, like for like with the naive map and Redis (history off),
    // then the same with the default catch-up history (256 events / 64 KiB).
    let (engine, naive, _) = heap_bytes_per_attr(without_history(bench_profile()));
    println!("heap_bytes_per_attr: {engine:.1}");
    println!("naive_heap_bytes_per_attr: {naive:.1}");
    let (engine, _, history) = heap_bytes_per_attr(bench_profile());
    println!("heap_bytes_per_attr_with_history: {engine:.1}");
    println!("history_bytes_per_room: {history:.1}");
    let (engine, naive) = room_bytes_8_members(without_history(cold_profile()));
    println!("room_bytes_8_members: {engine:.0}");
    println!("naive_room_bytes_8_members: {naive:.0}");
    let (engine, _) = room_bytes_8_members(cold_profile());
    println!("room_bytes_8_members_with_history: {engine:.0}");
    type Forge = fn() -> Vec<u8>;
    let inputs: [(&str, Forge); 4] = [
        ("forged_tiny_attributes", forged_tiny_attributes),
        ("forged_empty_rooms", forged_empty_rooms),
        ("forged_roles", forged_roles),
        ("realistic", realistic),
    ];
    let mut worst = 0f64;
    for (name, build) in inputs {
        let bytes = build();
        let ratio = restore_peak(&bytes);
        println!("restore_input_bytes_{name}: {}", bytes.len());
        println!("restore_peak_over_input_{name}: {ratio:.2}");
        worst = worst.max(ratio);
    }
    println!("restore_peak_over_input: {worst:.2}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counting allocator: a block raises the peak of live bytes by
    /// its size at least while it lives, and each allocation counts. (Other
    /// threads of the test harness may allocate too: lower bounds only.)
    #[test]
    fn a_block_raises_the_peak_by_its_size_and_an_allocation_counts() {
        const SIZE: usize = 1 << 20;
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let block = vec![0u8; SIZE];
        let peak = PEAK.load(Relaxed) - before;
        drop(black_box(block));
        assert!(peak >= bytes(SIZE), "{peak}");
        assert!(allocs_in(|| drop(black_box(vec![1u8; 10]))) >= 1);
    }
}
