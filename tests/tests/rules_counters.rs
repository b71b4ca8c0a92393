//! Counters: Tencent group counters (`update_group_counter` with `Mode`
//! `Set` / `Increase` / `Decrease`, `get_group_counter`,
//! `delete_group_counter`), and the engine's bounds beyond them.
//!
//! Tencent's documented rules (Chat "Group Counter" and "Updating Group
//! Counters"): at most 20 counters per group; a key of at most 128 bytes;
//! values are signed 64-bit integers; increase and decrease change the
//! value by a delta; the REST API is called at most 200 times a second.

mod common;

use common::*;
use roomstate::{
    Actor, Cause, Change, Command, CounterOp, CountersReport, OpError, Profile, Rejection, Str,
    Success,
};

fn counter(room: &str, key: &str, op: CounterOp) -> Command {
    Command::Counter {
        room: room.into(),
        operator: Actor::Admin,
        key: key.into(),
        op,
        min: None,
        max: None,
    }
}

fn bounded(room: &str, key: &str, op: CounterOp, min: Option<i64>, max: Option<i64>) -> Command {
    Command::Counter {
        room: room.into(),
        operator: Actor::Admin,
        key: key.into(),
        op,
        min,
        max,
    }
}

fn changed(key: &str, value: i64) -> Change {
    Change::CounterChanged {
        key: key.into(),
        value,
    }
}

fn tencent() -> Driver {
    let mut d = Driver::new(Profile::tencent());
    d.create("r", "host");
    d.events();
    d
}

// Tencent: "Increase": "assuming the current value of key1 is 8, increasing
// by 2 makes it 10"; the result is returned and announced.
#[test]
fn tencent_increase_adds_and_returns_the_value() {
    let mut d = tencent();
    assert_eq!(
        d.run(counter("r", "like", CounterOp::Set(8))).0,
        Ok(Success::Counter { seq: 2, value: 8 })
    );
    let (out, evs) = d.run(counter("r", "like", CounterOp::Increase(2)));
    assert_eq!(out, Ok(Success::Counter { seq: 3, value: 10 }));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].seq, 3);
    assert_eq!(evs[0].cause, Cause::Written);
    assert_eq!(evs[0].operator, Actor::Admin);
    assert_eq!(evs[0].changes, vec![changed("like", 10)]);
    assert_eq!(d.engine.room("r").unwrap().counter("like"), Some(10));
    d.check();
}

// Tencent: a counter that does not exist is added; an increase or decrease
// of a missing counter starts from 0.
#[test]
fn tencent_missing_counter_starts_at_zero() {
    let mut d = tencent();
    let (out, evs) = d.run(counter("r", "down", CounterOp::Decrease(3)));
    assert_eq!(out, Ok(Success::Counter { seq: 2, value: -3 }));
    assert_eq!(evs[0].changes, vec![changed("down", -3)]);
    let (out, _) = d.run(counter("r", "up", CounterOp::Increase(0)));
    assert_eq!(out, Ok(Success::Counter { seq: 3, value: 0 }));
    d.check();
}

// Tencent: "a single group supports up to 20 group counters"; the 21st key
// is refused (Tencent's key-count class), an existing key still updates.
#[test]
fn tencent_twenty_counters_per_room() {
    let mut d = tencent();
    for i in 0..20 {
        assert!(d
            .run(counter("r", &format!("k{i:02}"), CounterOp::Set(i)))
            .0
            .is_ok());
    }
    let rej = Rejection::Op {
        index: 0,
        error: OpError::KeyCountLimit,
    };
    d.rejected("r", counter("r", "k20", CounterOp::Increase(1)), rej);
    assert_eq!(d.engine.profile().code(rej.class()), Some(100_500));
    assert!(d.run(counter("r", "k00", CounterOp::Increase(1))).0.is_ok());
    d.check();
}

// Tencent: "the key can contain up to 128 bytes".
#[test]
fn tencent_counter_key_of_128_bytes() {
    let mut d = tencent();
    assert!(d
        .run(counter("r", &"k".repeat(128), CounterOp::Set(1)))
        .0
        .is_ok());
    d.rejected(
        "r",
        counter("r", &"k".repeat(129), CounterOp::Set(1)),
        Rejection::Op {
            index: 0,
            error: OpError::KeyTooLong,
        },
    );
    d.rejected(
        "r",
        counter("r", "", CounterOp::Set(1)),
        Rejection::Op {
            index: 0,
            error: OpError::KeyEmpty,
        },
    );
    d.check();
}

// Tencent: values are signed 64-bit integers. Leaving that range is a
// typed error and changes nothing (no wrap, no saturation).
#[test]
fn counter_overflow_is_refused_and_changes_nothing() {
    let mut d = tencent();
    assert!(d
        .run(counter("r", "n", CounterOp::Set(i64::MAX - 1)))
        .0
        .is_ok());
    d.rejected(
        "r",
        counter("r", "n", CounterOp::Increase(2)),
        Rejection::CounterOverflow,
    );
    assert!(d.run(counter("r", "n", CounterOp::Increase(1))).0.is_ok());
    assert_eq!(d.engine.room("r").unwrap().counter("n"), Some(i64::MAX));
    assert!(d.run(counter("r", "m", CounterOp::Set(i64::MIN))).0.is_ok());
    d.rejected(
        "r",
        counter("r", "m", CounterOp::Decrease(1)),
        Rejection::CounterOverflow,
    );
    // A delta over i64::MAX is fine while the result fits.
    assert_eq!(
        d.run(counter("r", "m", CounterOp::Increase(u64::MAX))).0,
        Ok(Success::Counter {
            seq: 5,
            value: i64::MAX
        })
    );
    d.check();
}

// Beyond Tencent: a seat count never goes negative. A decrement below `min`
// is refused, not clamped; `max` likewise; `min > max` is invalid.
#[test]
fn bounds_refuse_not_clamp() {
    let mut d = tencent();
    assert!(d.run(counter("r", "seats", CounterOp::Set(1))).0.is_ok());
    let take = || bounded("r", "seats", CounterOp::Decrease(1), Some(0), None);
    assert_eq!(d.run(take()).0, Ok(Success::Counter { seq: 3, value: 0 }));
    d.rejected("r", take(), Rejection::CounterOutOfBounds);
    assert_eq!(d.engine.room("r").unwrap().counter("seats"), Some(0));
    d.rejected(
        "r",
        bounded("r", "seats", CounterOp::Set(9), None, Some(8)),
        Rejection::CounterOutOfBounds,
    );
    d.rejected(
        "r",
        bounded("r", "seats", CounterOp::Set(1), Some(2), Some(1)),
        Rejection::InvalidParameter,
    );
    // A missing counter refused by its bounds is not created.
    d.rejected(
        "r",
        bounded("r", "new", CounterOp::Decrease(1), Some(0), None),
        Rejection::CounterOutOfBounds,
    );
    assert_eq!(d.engine.room("r").unwrap().counter("new"), None);
    d.check();
}

// Tencent `get_group_counter`: named keys or all. Ours: key order, each
// once, with the room's sequence number; missing keys are left out.
#[test]
fn read_named_or_all_in_key_order() {
    let mut d = tencent();
    for (k, v) in [("b", 2), ("a", 1), ("c", 3)] {
        assert!(d.run(counter("r", k, CounterOp::Set(v))).0.is_ok());
    }
    let read = |keys: Option<Vec<&str>>| Command::CounterRead {
        room: "r".into(),
        keys: keys.map(|ks| ks.into_iter().map(Str::from).collect()),
    };
    let report = |pairs: &[(&str, i64)]| {
        Ok(Success::Counters(CountersReport {
            seq: 4,
            counters: pairs.iter().map(|(k, v)| (Str::from(*k), *v)).collect(),
        }))
    };
    assert_eq!(d.run(read(None)).0, report(&[("a", 1), ("b", 2), ("c", 3)]));
    assert_eq!(
        d.run(read(Some(vec!["c", "x", "a", "c"]))).0,
        report(&[("a", 1), ("c", 3)])
    );
    assert_eq!(d.run(read(Some(vec![]))).0, Err(Rejection::Empty));
    assert!(d.events().is_empty(), "reads emit nothing");
    d.check();
}

// Tencent `delete_group_counter`: named keys or all, one event.
#[test]
fn delete_named_or_all() {
    let mut d = tencent();
    for k in ["a", "b", "c"] {
        assert!(d.run(counter("r", k, CounterOp::Set(1))).0.is_ok());
    }
    let del = |keys: Option<Vec<&str>>| Command::CounterDelete {
        room: "r".into(),
        operator: Actor::Admin,
        keys: keys.map(|ks| ks.into_iter().map(Str::from).collect()),
    };
    let (out, evs) = d.run(del(Some(vec!["c", "x", "a"])));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs[0].changes,
        vec![
            Change::CounterDeleted { key: "a".into() },
            Change::CounterDeleted { key: "c".into() }
        ]
    );
    // Deleting nothing is a no-op: no event, no number.
    let seq = d.seq("r");
    let (out, evs) = d.run(del(Some(vec!["x"])));
    assert_eq!((out, evs.len(), d.seq("r")), (Ok(Success::Done), 0, seq));
    let (_, evs) = d.run(del(None));
    assert_eq!(
        evs[0].changes,
        vec![Change::CounterDeleted { key: "b".into() }]
    );
    assert_eq!(d.engine.room("r").unwrap().counters().count(), 0);
    d.check();
}

// Tencent: counter calls share the REST API's 200 requests a second.
#[test]
fn counters_share_the_request_rate() {
    let mut d = tencent();
    for _ in 0..200 {
        assert!(d.run(counter("r", "n", CounterOp::Increase(1))).0.is_ok());
    }
    d.rejected(
        "r",
        counter("r", "n", CounterOp::Increase(1)),
        Rejection::RateLimited,
    );
    d.advance(1000);
    assert!(d.run(counter("r", "n", CounterOp::Increase(1))).0.is_ok());
    d.check();
}

// Where the profile requires writers to be members (Easemob), a user
// operator outside the room may not change counters.
#[test]
fn writer_must_be_member_applies_to_counters() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    let cmd = Command::Counter {
        room: "r".into(),
        operator: u("guest"),
        key: "n".into(),
        op: CounterOp::Increase(1),
        min: None,
        max: None,
    };
    d.rejected("r", cmd.clone(), Rejection::NotInRoom);
    d.join("r", "guest");
    assert!(d.run(cmd).0.is_ok());
    d.check();
}
