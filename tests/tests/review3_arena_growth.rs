//! Review 3 (issue 9): the arena's growth for one large value. The
//! arena once grew by the records' policy, "room for four more of the same
//! at least", so one 16 KB value (Agora RTM's limit, and its room total)
//! reserved 64 KB; its floor now reserves at most 1 KiB beyond the entry.
//! Counted as live heap bytes, per thread, before and after the write.

use std::cell::Cell;

use roomstate::{Actor, Command, Engine, Event, Millis, Op, Profile, Write};

#[path = "common/live_heap.rs"]
mod live_heap;
use live_heap::{LIVE, ON};

fn live_after(value_len: usize, history: bool) -> i64 {
    let mut p = Profile::agora_rtm();
    if !history {
        p.limits.history_events = 0;
    }
    let mut e = Engine::new(p);
    let now = Millis(1);
    e.handle(now, Command::create_room("r", "host")).unwrap();
    e.handle(now, Command::join("r", "host")).unwrap();
    let mut evs: Vec<Event> = Vec::with_capacity(16);
    e.drain_events(&mut evs);
    evs.clear();
    // Counted from before the command is built: its value's allocation
    // and its release cancel out, and what stays is what the engine keeps.
    LIVE.with(|c| c.set(0));
    ON.with(|c| c.set(true));
    let value = "v".repeat(value_len);
    let cmd = Command::Write(Write::new("r", Actor::Admin).op(Op::set("k", value.as_str())));
    drop(value);
    let out = e.handle(now, cmd);
    let shown = format!("{out:?}");
    e.drain_events(&mut evs);
    evs.clear();
    drop(out);
    ON.with(|c| c.set(false));
    e.check_invariants().unwrap();
    assert_eq!(
        e.room("r").unwrap().value_bytes(),
        value_len as u64,
        "{}",
        &shown[..shown.len().min(300)]
    );
    LIVE.with(Cell::get)
}

#[test]
fn review3_one_large_value_reserves_no_more_than_twice_its_size() {
    // No history, so what stays is the arena (and small records).
    let n = 16 * 1024;
    let kept = live_after(n, false);
    println!("live heap after one {n}-byte value: {kept} B");
    assert!(
        kept < 2 * n as i64,
        "one {n}-byte value keeps {kept} B of heap ({:.1}x)",
        kept as f64 / n as f64
    );
}
