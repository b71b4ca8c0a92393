//! Pins for the catch-up history (`core/src/history.rs`): rules of its
//! module doc that `rules_history.rs` left open, found by cargo-mutants.
//! Each test names the rule it pins.

mod common;

use common::*;
use roomstate::{
    Actor, Command, CounterOp, Event, EventsReport, Op, Profile, Rejection, Success, Write,
};

// ---- the engine API this file uses -----------------------------------------

fn since(d: &mut Driver, room: &str, seq: u64) -> Result<Vec<Event>, Rejection> {
    match d.handle(Command::Since {
        room: room.into(),
        seq,
    }) {
        Ok(Success::Events(EventsReport { events, .. })) => Ok(events),
        Ok(other) => panic!("expected events, got {other:?}"),
        Err(rej) => Err(rej),
    }
}

/// `(events, encoded bytes)` the room's history holds.
fn held(d: &Driver, room: &str) -> (usize, usize) {
    d.engine.room(room).unwrap().history_len()
}

/// Heap bytes of the room's history buffers.
fn heap(d: &Driver, room: &str) -> usize {
    d.engine.room(room).unwrap().history_heap_bytes()
}

/// A counter write whose event has the same encoded size for every `i`
/// below 64 (one-byte varint).
fn tick_counter(d: &mut Driver, room: &str, i: i64) -> Vec<Event> {
    tick_named(d, room, "n", i)
}

/// [`tick_counter`] on counter `key`.
fn tick_named(d: &mut Driver, room: &str, key: &str, i: i64) -> Vec<Event> {
    let (out, evs) = d.run(Command::counter(room, Actor::Admin, key, CounterOp::Set(i)));
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(evs.len(), 1);
    evs
}

fn driver(events: u32, bytes: u32) -> Driver {
    let mut p = Profile::tencent();
    p.limits.request_rate = None;
    p.limits.history_events = events;
    p.limits.history_bytes = bytes;
    let mut d = Driver::new(p);
    d.create("r", "host");
    d.events();
    d
}

/// The encoded size of one `tick_counter` event, measured on a history
/// large enough to hold everything.
fn one_event_bytes() -> usize {
    let mut d = driver(1_000, 1 << 20);
    tick_counter(&mut d, "r", 1);
    let (_, before) = held(&d, "r");
    tick_counter(&mut d, "r", 2);
    let (_, after) = held(&d, "r");
    after - before
}

// Module doc: "The bound is the profile's `history_events` and
// `history_bytes` (bytes of encoded events)": the oldest events are dropped
// while the bytes held are *over* the bound, so events that fill it
// exactly all stay, one more byte's worth drops the oldest.
#[test]
fn history_bytes_bound_keeps_events_that_fill_it_exactly() {
    let s = one_event_bytes();
    assert!(s > 0);
    let mut d = driver(1_000, u32::try_from(3 * s).unwrap());
    let mut live = Vec::new();
    for i in 0..6 {
        live.extend(tick_counter(&mut d, "r", i));
    }
    assert_eq!(held(&d, "r"), (3, 3 * s), "three events fill the bound");
    let seq = d.seq("r");
    assert_eq!(
        since(&mut d, "r", seq - 4),
        Err(Rejection::HistoryTruncated { oldest: seq - 3 })
    );
    assert_eq!(since(&mut d, "r", seq - 3).unwrap(), live[3..].to_vec());
    d.check();

    // One byte less: only two fit.
    let mut d = driver(1_000, u32::try_from(3 * s - 1).unwrap());
    for i in 0..6 {
        tick_counter(&mut d, "r", i);
    }
    assert_eq!(held(&d, "r"), (2, 2 * s));
    d.check();
}

// Module doc: recording "drops whole events from its front" (a start
// offset, and a lone block closed up now and then): after many drops, of
// events of many sizes, a catch-up decodes exactly the events that went
// out, not bytes of others.
#[test]
fn catch_up_after_many_drops_returns_the_events_that_went_out() {
    let mut p = Profile::easemob();
    p.limits.request_rate = None;
    p.limits.history_events = 5;
    let mut d = Driver::new(p);
    d.create("r", "host");
    d.join("r", "host");
    let mut live = Vec::new();
    for i in 0..60usize {
        let value = "v".repeat(1 + (i * 7) % 23);
        let (_, evs) =
            d.write(Write::new("r", Actor::user("host")).op(Op::set(format!("k{}", i % 4), value)));
        assert_eq!(evs.len(), 1);
        live.extend(evs);
        let seq = d.seq("r");
        let k = live.len().min(5);
        let got = since(&mut d, "r", seq - k as u64).unwrap();
        assert_eq!(got, live[live.len() - k..].to_vec(), "after event {seq}");
    }
    assert_eq!(held(&d, "r").0, 5);
    d.check();
}

// Module doc: "a history at its bound allocates nothing" (a block whose
// events were all dropped is written again): with events of one size, the
// heap held stops moving, and stays within the blocks' bound of the bytes
// held (one never reusing its blocks grows without end).
#[test]
fn history_at_its_bound_allocates_nothing_more() {
    let key = "k".repeat(100);
    let mut d = driver(16, 1 << 20);
    for i in 0..40 {
        tick_named(&mut d, "r", &key, i % 50);
    }
    let (n, bytes) = held(&d, "r");
    assert_eq!(n, 16);
    let steady = heap(&d, "r");
    assert!(
        steady >= bytes,
        "the heap holds at least the bytes: {steady} < {bytes}"
    );
    for i in 0..2_000 {
        tick_named(&mut d, "r", &key, i % 50);
    }
    assert_eq!(held(&d, "r"), (16, bytes));
    assert_eq!(heap(&d, "r"), steady, "no allocation at the bound");
    assert!(
        steady <= bytes + past_events(bytes, bytes / n),
        "heap {steady} too far above the {bytes} bytes held"
    );
    d.check();
}

// Module doc: "0 in either turns history off". Off means off: nothing is
// held and nothing is allocated, whichever of the two bounds is 0.
#[test]
fn history_of_zero_in_either_bound_holds_and_allocates_nothing() {
    for (events, bytes) in [(0, 1 << 20), (1_000, 0)] {
        let mut d = driver(events, bytes);
        for i in 0..10 {
            tick_counter(&mut d, "r", i);
        }
        assert_eq!(held(&d, "r"), (0, 0), "bounds {events}/{bytes}");
        assert_eq!(heap(&d, "r"), 0, "bounds {events}/{bytes}");
        let seq = d.seq("r");
        assert_eq!(
            since(&mut d, "r", seq - 1),
            Err(Rejection::HistoryTruncated { oldest: seq })
        );
        assert_eq!(since(&mut d, "r", seq), Ok(Vec::new()));
        d.check();
    }
}

// Module doc: a lone block "whose dropped front is a quarter of it or
// more ... moves what it holds to its start instead of growing". With a
// history of one to three events, every drop is a third or more of what
// is held: the block must still reuse its room, its heap steady, however
// many events go through.
#[test]
fn a_short_history_is_compacted_and_stays_bounded() {
    for keep in [1u32, 2, 3] {
        let mut d = driver(keep, 1 << 20);
        for i in 0..20 {
            tick_counter(&mut d, "r", i % 50);
        }
        let steady = heap(&d, "r");
        for i in 0..500 {
            tick_counter(&mut d, "r", i % 50);
        }
        let (n, bytes) = held(&d, "r");
        assert_eq!(n, keep as usize);
        assert_eq!(heap(&d, "r"), steady, "keep {keep}: no growth at the bound");
        // The heap holds the bytes (each event's `u32` length among them).
        assert!(steady >= bytes, "keep {keep}: heap {steady}, bytes {bytes}");
        d.check();
    }
}

/// A history's block (`BLOCK` in `core/src/history.rs`).
const BLOCK: usize = 1024;

/// Module doc: what a history holds past its events of `bytes` bytes, of
/// `event` bytes each (a quarter block at most, so its blocks are
/// `BLOCK`): "the dropped front of the oldest block" (under a block);
/// "each block's unused end, less than the event that did not fit there";
/// "the spares, two and more only within the cap" (the byte bounds here
/// are far above it: two); "and the block list, a pointer and two lengths
/// per block" (a list of at most twice the blocks).
fn past_events(bytes: usize, event: usize) -> usize {
    assert!(event <= BLOCK / 4);
    let blocks = bytes / (BLOCK - event) + 4;
    3 * BLOCK + blocks * event + 2 * blocks * 24
}

// Module doc: "a young history is one block that grows by a quarter (at
// least by the event) up to `BLOCK` bytes", then "each new block holds
// four of the event it is made for: `BLOCK` bytes for events up to a
// quarter of it", and a lone block closes up a dropped quarter instead of
// growing. At its bound, for any event size and count: a history of
// under a block is within 5/3 of its bytes plus two events (held plus a
// dropped quarter, grown by a quarter); a larger one within the blocks'
// bound; and each holds at least its bytes. The heap grows a quarter or a
// block at a time, not at every event.
#[test]
fn history_grows_a_quarter_then_a_block_at_a_time() {
    for keep in [4u32, 8, 16, 32, 64, 128, 256] {
        for key_len in [1usize, 20, 100] {
            let key = "k".repeat(key_len);
            let mut d = driver(keep, 1 << 20);
            let mut grown = 0;
            for i in 0..(3 * keep as i64 + 10) {
                let before = heap(&d, "r");
                tick_named(&mut d, "r", &key, i % 50);
                grown += usize::from(heap(&d, "r") != before);
            }
            let (n, bytes) = held(&d, "r");
            assert_eq!(n, keep as usize);
            let event = bytes / n;
            // log1.25 of a block over one event, a block per block held
            // (a few more as the held ones drift across blocks), and the
            // list's doublings.
            let steps = 20 + bytes / (BLOCK - event) + 4 + 8;
            assert!(
                grown <= steps,
                "keep {keep}, key {key_len}: the heap grew {grown} times"
            );
            let h = heap(&d, "r");
            let bound = if bytes + 2 * event <= BLOCK * 3 / 5 {
                bytes * 5 / 3 + 2 * event + 24
            } else {
                bytes + past_events(bytes, event)
            };
            assert!(
                h <= bound,
                "keep {keep}, key {key_len}: heap {h} for {bytes} bytes"
            );
            assert!(
                h >= bytes,
                "keep {keep}, key {key_len}: heap {h} below {bytes} bytes held"
            );
        }
    }
}
