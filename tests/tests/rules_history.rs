//! Catch-up from a sequence number (no vendor has this: Agora sends a
//! SNAPSHOT, LiveKit resends the participant, RongCloud re-syncs all keys).
//! A client that saw `seq` asks for the events after it; every full read
//! returns the room's `seq`, so baseline + catch-up + live events leave no
//! gap and no duplicate.

mod common;

use common::*;
use roomstate::{
    Actor, Command, CounterOp, Engine, Event, EventsReport, Millis, Notify, Offer, Op, Profile,
    Rejection, Success, Write,
};

fn since(room: &str, seq: u64) -> Command {
    Command::Since {
        room: room.into(),
        seq,
    }
}

fn events_of(out: roomstate::Outcome) -> Vec<Event> {
    match out {
        Ok(Success::Events(EventsReport { events, .. })) => events,
        other => panic!("expected events, got {other:?}"),
    }
}

#[test]
fn since_returns_the_events_after_seq_in_order() {
    let mut d = Driver::new(Profile::tencent());
    d.create("r", "host");
    d.join("r", "host");
    let mut all = Vec::new();
    for i in 0..5 {
        let (_, evs) = d.write(Write::new("r", Actor::Admin).op(Op::set("k", format!("{i}"))));
        all.extend(evs);
    }
    let seq = d.seq("r");
    assert_eq!(seq, 7);
    let got = events_of(d.run(since("r", 4)).0);
    assert_eq!(got, all[2..].to_vec(), "events 5, 6, 7 exactly");
    assert!(events_of(d.run(since("r", seq)).0).is_empty());
    // The borrowed view gives the same, decoded lazily.
    let view: Vec<Event> = d
        .engine
        .room("r")
        .unwrap()
        .events_since(4)
        .unwrap()
        .collect();
    assert_eq!(view, all[2..].to_vec());
    // A number the room has not reached is invalid.
    d.rejected("r", since("r", seq + 1), Rejection::InvalidParameter);
    d.check();
}

#[test]
fn history_is_bounded_and_says_where_it_starts() {
    let mut p = Profile::tencent();
    p.limits.history_events = 3;
    p.limits.request_rate = None;
    let mut d = Driver::new(p);
    d.create("r", "host");
    for i in 0..10 {
        let _ = d.run(Command::counter("r", Actor::Admin, "n", CounterOp::Set(i)));
    }
    // seq 11; events 9, 10, 11 are kept; a catch-up may start from 8.
    assert_eq!(d.engine.room("r").unwrap().history_len().0, 3);
    d.rejected(
        "r",
        since("r", 7),
        Rejection::HistoryTruncated { oldest: 8 },
    );
    let got = events_of(d.run(since("r", 8)).0);
    assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [9, 10, 11]);
    d.check();
}

#[test]
fn history_of_zero_is_off() {
    let mut p = Profile::tencent();
    p.limits.history_bytes = 0;
    let mut d = Driver::new(p);
    d.create("r", "host");
    d.join("r", "host");
    assert_eq!(d.engine.room("r").unwrap().history_len(), (0, 0));
    d.rejected(
        "r",
        since("r", 1),
        Rejection::HistoryTruncated { oldest: 2 },
    );
    assert!(events_of(d.run(since("r", 2)).0).is_empty());
    d.check();
}

// NetEase queue commands may go out with notification off: the change
// happens, the number advances, and no event exists. A catch-up across it
// would skip a number, so the history restarts after it: from before, the
// client reads the full state; from it on, catch-up works again.
#[test]
fn a_silent_change_restarts_the_history_after_it() {
    let mut p = Profile::netease();
    p.limits.request_rate = None;
    p.limits.notification_flow = None;
    let mut d = Driver::new(p);
    d.create("r", "host");
    let _ = d.run(Command::QueueInit {
        room: "r".into(),
        operator: Actor::Admin,
        capacity: 10,
    });
    let _ = d.run(Offer::new("r", Actor::Admin, "a", "1").into());
    let before = d.seq("r");
    assert!(!events_of(d.run(since("r", before - 1)).0).is_empty());
    let (out, evs) = d.run(
        Offer::new("r", Actor::Admin, "b", "2")
            .notify(Notify::silent())
            .into(),
    );
    assert!(out.is_ok() && evs.is_empty(), "{out:?} {evs:?}");
    let silent = d.seq("r");
    assert_eq!(silent, before + 1);
    d.rejected(
        "r",
        since("r", before),
        Rejection::HistoryTruncated { oldest: silent },
    );
    assert_eq!(d.engine.room("r").unwrap().history_len(), (0, 0));
    let (_, live) = d.run(Offer::new("r", Actor::Admin, "c", "3").into());
    assert_eq!(events_of(d.run(since("r", silent)).0), live);
    d.check();
}

// A client reads the full state (baseline + seq), misses some events,
// catches up, then follows live events: it ends with the engine's state.
#[test]
fn baseline_plus_catch_up_plus_live_is_the_state() {
    let mut e = Engine::new(Profile::easemob());
    let t = Millis(1_000);
    let go = |e: &mut Engine, c: Command| {
        let _ = e.handle(t, c);
        let mut v = Vec::new();
        e.drain_events(&mut v);
        v
    };
    go(&mut e, Command::create_room("r", "host"));
    go(&mut e, Command::join("r", "host"));
    go(&mut e, Command::join("r", "ann"));
    go(
        &mut e,
        Write::new("r", Actor::user("ann"))
            .op(Op::set("a", "1"))
            .into(),
    );
    // Baseline.
    let Ok(Success::Read(base)) = e.handle(t, Command::read_all("r")) else {
        panic!()
    };
    let mut mine: Vec<(String, String)> = base
        .attributes
        .iter()
        .map(|a| (a.key.to_string(), a.value.to_string()))
        .collect();
    // Missed while disconnected.
    go(
        &mut e,
        Write::new("r", Actor::user("host"))
            .op(Op::set("b", "2"))
            .into(),
    );
    go(
        &mut e,
        Write::new("r", Actor::user("ann"))
            .op(Op::delete("a"))
            .into(),
    );
    go(&mut e, Command::exit("r", "host")); // auto-deletes "b"
    let caught = events_of(e.handle(t, since("r", base.seq)));
    let live = go(
        &mut e,
        Write::new("r", Actor::user("ann"))
            .op(Op::set("c", "3"))
            .into(),
    );
    let mut last = base.seq;
    for ev in caught.iter().chain(&live) {
        assert_eq!(ev.seq, last + 1, "no gap, no duplicate");
        last = ev.seq;
        for ch in &ev.changes {
            match ch {
                roomstate::Change::AttributeSet { key, value, .. } => {
                    mine.retain(|(k, _)| k != key.as_str());
                    mine.push((key.to_string(), value.to_string()));
                }
                roomstate::Change::AttributeDeleted { key } => {
                    mine.retain(|(k, _)| k != key.as_str())
                }
                _ => {}
            }
        }
    }
    let engine: Vec<(String, String)> = e
        .room("r")
        .unwrap()
        .attributes()
        .map(|a| (a.key.to_string(), a.value.to_string()))
        .collect();
    assert_eq!(mine, engine);
    assert_eq!(engine, [("c".to_string(), "3".to_string())]);
}

/// The history is not in a snapshot (it is a cache of events, not state):
/// a restored room covers catch-ups from its number at the restore, never
/// from further back than the original, and from there on both record the
/// same events and answer alike.
#[test]
fn a_restored_room_covers_catch_up_from_the_restore() {
    let mut p = Profile::tencent();
    p.limits.history_events = 3;
    p.limits.request_rate = None;
    let now = Millis(1_000);
    let mut original = Engine::new(p);
    let set = |i: i64| Command::counter("r", Actor::Admin, "n", CounterOp::Set(i));
    let create = Command::CreateRoom {
        room: "r".into(),
        creator: "host".into(),
    };
    assert!(original.handle(now, create).is_ok());
    for i in 0..10 {
        assert!(original.handle(now, set(i)).is_ok());
    }
    let mut copy = Engine::restore(&original.snapshot()).unwrap();
    // seq 11: the original keeps events 9 to 11, the copy none.
    assert_eq!(
        original.handle(now, since("r", 7)),
        Err(Rejection::HistoryTruncated { oldest: 8 })
    );
    assert_eq!(
        copy.handle(now, since("r", 7)),
        Err(Rejection::HistoryTruncated { oldest: 11 })
    );
    assert_eq!(
        copy.handle(now, since("r", 8)),
        Err(Rejection::HistoryTruncated { oldest: 11 })
    );
    assert_eq!(events_of(original.handle(now, since("r", 8))).len(), 3);
    assert!(events_of(copy.handle(now, since("r", 11))).is_empty());
    // Two more events: the copy answers from the restore on, as the
    // original does.
    for i in 10..12 {
        assert!(original.handle(now, set(i)).is_ok());
        assert!(copy.handle(now, set(i)).is_ok());
    }
    let after = events_of(copy.handle(now, since("r", 11)));
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [12, 13]);
    assert_eq!(events_of(original.handle(now, since("r", 11))), after);
    // One more: both at the bound, holding events 12 to 14 alike.
    assert!(original.handle(now, set(12)).is_ok());
    assert!(copy.handle(now, set(12)).is_ok());
    for seq in [10, 11] {
        assert_eq!(
            copy.handle(now, since("r", seq)),
            original.handle(now, since("r", seq))
        );
    }
    assert_eq!(
        copy.handle(now, since("r", 10)),
        Err(Rejection::HistoryTruncated { oldest: 11 })
    );
    assert_eq!(original.snapshot(), copy.snapshot());
}
