//! Review of issue 9, round 4 (`core/src/stamp.rs`): "a time before the
//! base, which the clock rules out, would be kept wide". `restore_room`
//! does not rule it out: a room from an engine whose clock runs ahead
//! brings a base after this engine's `now`, and every write this engine
//! makes in it until its clock catches up (and the next rebase, up to
//! 49.7 days later) is kept wide, in the room's rare box. Observed from
//! outside as live heap bytes (counted per thread): the same writes in
//! the same room cost more when the room came from a clock ahead.
//! Fails on `main` at 6533ed3.

use roomstate::{Actor, Command, Engine, Event, Millis, Op, Profile, Write};

#[path = "common/live_heap.rs"]
mod live_heap;
use live_heap::{LIVE, ON};

const T0: u64 = 1_764_460_800_000;
const DAY: u64 = 86_400_000;

fn profile() -> Profile {
    let mut p = Profile::easemob();
    p.limits.request_rate = None;
    p.limits.max_keys_per_room = None;
    p.limits.notification_flow = None;
    p
}

fn run(e: &mut Engine, t: u64, c: Command, evs: &mut Vec<Event>) {
    let shown = format!("{c:?}");
    let out = e.handle(Millis(t), c);
    assert!(out.is_ok(), "{shown}: {out:?}");
    e.drain_events(evs);
    evs.clear();
}

fn set(key: &str) -> Command {
    Command::Write(Write::new("r", Actor::user("a")).op(Op::set(key, "v")))
}

/// Live heap bytes that 100 new keys written at `T0` leave in room "r",
/// restored with `restore_room` from an engine whose clock was `ahead`
/// ms ahead of ours when it wrote the room's one key. The commands are
/// built before counting and freed during it, so the total is negative;
/// the same commands run in both rooms, so the difference is the room's.
fn heap_of_writes(ahead: u64) -> i64 {
    let mut evs: Vec<Event> = Vec::with_capacity(64);
    let there = T0 + ahead;
    let mut other = Engine::new(profile());
    run(
        &mut other,
        there,
        Command::create_room("r", "host"),
        &mut evs,
    );
    run(&mut other, there, Command::join("r", "a"), &mut evs);
    run(&mut other, there, set("first"), &mut evs);
    let bytes = other.snapshot_room("r").unwrap();

    let mut ours = Engine::new(profile());
    run(&mut ours, T0, Command::Tick, &mut evs);
    ours.restore_room(&bytes).unwrap();
    let cmds: Vec<Command> = (0..100).map(|i| set(&format!("key{i:03}"))).collect();
    LIVE.with(|c| c.set(0));
    ON.with(|c| c.set(true));
    for (i, c) in cmds.into_iter().enumerate() {
        run(&mut ours, T0 + i as u64, c, &mut evs);
    }
    ON.with(|c| c.set(false));
    let live = LIVE.with(|c| c.get());
    assert_eq!(ours.check_invariants(), Ok(()));
    // Every time reads back as the engine's clock had it: the restore
    // moved ours up to the room's newest change.
    let room = ours.room("r").unwrap();
    for i in 0..100u64 {
        let a = room.attribute(&format!("key{i:03}")).unwrap();
        assert_eq!(a.changed_at, Millis((T0 + i).max(there)));
    }
    live
}

#[test]
fn review4_writes_in_a_room_from_a_clock_ahead_are_not_kept_wide() {
    let same_clock = heap_of_writes(0);
    let ahead = heap_of_writes(DAY);
    println!("heap_of_100_writes_same_clock: {same_clock}");
    println!("heap_of_100_writes_clock_ahead: {ahead}");
    assert_eq!(
        ahead,
        same_clock,
        "the same 100 writes cost {} more bytes in a room from a clock a day ahead",
        ahead - same_clock
    );
}
