//! Pins for counters (`core/src/engine/counters.rs`, `core/src/counters.rs`):
//! rules that `rules_counters.rs` left open, found by cargo-mutants. Each
//! test names the rule it pins.

mod common;

use common::*;
use roomstate::{Actor, Command, CounterOp, Outcome, Profile, Rejection, Success};

// ---- the engine API this file uses -----------------------------------------

fn counter_cmd(
    operator: Actor,
    key: &str,
    op: CounterOp,
    min: Option<i64>,
    max: Option<i64>,
) -> Command {
    Command::Counter {
        room: "r".into(),
        operator,
        key: key.into(),
        op,
        min,
        max,
    }
}

fn value(d: &mut Driver, key: &str) -> Option<i64> {
    match d.handle(Command::CounterRead {
        room: "r".into(),
        keys: Some(vec![key.into()]),
    }) {
        Ok(Success::Counters(report)) => report.counters.first().map(|(_, v)| *v),
        other => panic!("expected counters, got {other:?}"),
    }
}

fn value_of(out: &Outcome) -> i64 {
    match out {
        Ok(Success::Counter { value, .. }) => *value,
        other => panic!("expected a counter, got {other:?}"),
    }
}

fn tencent() -> Driver {
    let mut d = Driver::new(Profile::tencent());
    d.create("r", "host");
    d.events();
    d
}

// Module doc of `engine/counters.rs` / `next_value`: bounds are inclusive
// ("refused, not clamped" only when the value leaves `min..=max`): a value
// equal to `max`, or to `min`, is accepted; one past either is refused.
#[test]
fn counter_bounds_are_inclusive_at_both_ends() {
    let mut d = tencent();
    let (out, evs) = d.run(counter_cmd(
        Actor::Admin,
        "seats",
        CounterOp::Increase(8),
        None,
        Some(8),
    ));
    assert_eq!(value_of(&out), 8, "a value equal to max is in bounds");
    assert_eq!(evs.len(), 1);
    d.rejected(
        "r",
        counter_cmd(Actor::Admin, "seats", CounterOp::Increase(1), None, Some(8)),
        Rejection::CounterOutOfBounds,
    );
    let (out, _) = d.run(counter_cmd(
        Actor::Admin,
        "seats",
        CounterOp::Decrease(8),
        Some(0),
        None,
    ));
    assert_eq!(value_of(&out), 0, "a value equal to min is in bounds");
    assert_eq!(value(&mut d, "seats"), Some(0));
    d.check();
}

// `engine/counters.rs`: "`min > max` is invalid" — and only that: equal
// bounds pin the counter to one value, a valid request.
#[test]
fn counter_bounds_equal_min_and_max_are_valid() {
    let mut d = tencent();
    let (out, _) = d.run(counter_cmd(
        Actor::Admin,
        "one",
        CounterOp::Set(5),
        Some(5),
        Some(5),
    ));
    assert_eq!(value_of(&out), 5);
    d.rejected(
        "r",
        counter_cmd(Actor::Admin, "one", CounterOp::Set(6), Some(5), Some(5)),
        Rejection::CounterOutOfBounds,
    );
    d.rejected(
        "r",
        counter_cmd(Actor::Admin, "one", CounterOp::Set(5), Some(6), Some(5)),
        Rejection::InvalidParameter,
    );
    assert_eq!(value(&mut d, "one"), Some(5));
    d.check();
}

// Tencent's `update_group_counter` is an app-admin REST call with no
// membership rule, and the Tencent profile does not require writers to be
// members: a user operator outside the room may change a counter there
// (only Easemob-like profiles refuse, see `rules_counters.rs`).
#[test]
fn counter_writer_need_not_be_member_where_the_profile_does_not_say_so() {
    let mut d = tencent();
    assert!(!d.profile.rules.writer_must_be_member);
    assert!(!d.present("r", "guest"));
    let (out, evs) = d.run(counter_cmd(
        u("guest"),
        "n",
        CounterOp::Increase(1),
        None,
        None,
    ));
    assert_eq!(value_of(&out), 1);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].operator, u("guest"));
    d.join("r", "guest");
    let (out, _) = d.run(counter_cmd(
        u("guest"),
        "n",
        CounterOp::Increase(1),
        None,
        None,
    ));
    assert_eq!(value_of(&out), 2);
    d.check();
}
