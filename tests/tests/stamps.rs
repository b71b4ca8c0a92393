//! An attribute's revision and change time are held in 8 bytes (a `u32`
//! revision, a `u32` of milliseconds after a per-room base) with an exact
//! fallback for what does not fit (`core/src/stamp.rs`). Whatever the
//! layout, every revision and time the API takes must read back exactly:
//! across months of a room's life, past the `u32` revisions, at the
//! largest time, through deletes, exits and snapshots.

#[path = "common/mirror.rs"]
mod mirror;
#[path = "common/stamp_checks.rs"]
mod stamp_checks;

use mirror::{decode, encode};
use roomstate::{Actor, Attribute, Command, Engine, Expect, Millis, Op, Profile, Write};
use stamp_checks::{at_seq, round_trips, stamps};

const DAY: u64 = 86_400_000;
/// 2025-11-30, in ms: a realistic epoch time, far above `u32::MAX`.
const T0: u64 = 1_764_460_800_000;

fn ok(e: &mut Engine, t: u64, c: Command) {
    let shown = format!("{c:?}");
    let out = e.handle(Millis(t), c);
    assert!(out.is_ok(), "{shown}: {out:?}");
    assert_eq!(e.check_invariants(), Ok(()), "after {shown}");
}

fn set(e: &mut Engine, t: u64, user: &str, key: &str, auto_delete: bool) {
    let op = Op::set(key, format!("{key}@{t}").as_str()).auto_delete(auto_delete);
    ok(
        e,
        t,
        Command::Write(Write::new("r", Actor::user(user)).op(op)),
    );
}

fn engine() -> Engine {
    let mut p = Profile::easemob();
    p.limits.request_rate = None;
    p.limits.max_keys_per_room = None;
    let mut e = Engine::new(p);
    ok(&mut e, T0, Command::create_room("r", "host"));
    for u in ["host", "a", "b"] {
        ok(&mut e, T0, Command::join("r", u));
    }
    e
}

#[test]
fn times_months_apart_read_back_exactly() {
    let mut e = engine();
    // Five keys written 0, 30, 60, 120 and 400 days after T0: each write
    // past the range moves the room's base, and the older keys are kept
    // wide; every time reads back as written.
    let times = [
        T0,
        T0 + 30 * DAY,
        T0 + 60 * DAY,
        T0 + 120 * DAY,
        T0 + 400 * DAY,
    ];
    for (i, &t) in times.iter().enumerate() {
        set(&mut e, t, "a", &format!("k{i}"), i % 2 == 0);
    }
    let expected: Vec<_> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| (format!("k{i}"), 4 + i as u64 + 1, t))
        .collect();
    assert_eq!(stamps(&e), expected);
    round_trips(&e);

    // An overwrite of the oldest key, a delete of a middle one, and an
    // exit that removes the auto-delete keys of `a` (k0, k2, k4).
    let late = T0 + 401 * DAY;
    set(&mut e, late, "a", "k0", true);
    ok(
        &mut e,
        late,
        Command::Write(Write::new("r", Actor::user("a")).op(Op::delete("k1"))),
    );
    round_trips(&e);
    ok(&mut e, late + 1, Command::leave("r", "a"));
    assert_eq!(stamps(&e), vec![("k3".to_string(), 8, T0 + 120 * DAY)]);
    round_trips(&e);
}

#[test]
fn the_extreme_time_reads_back_exactly() {
    let mut e = engine();
    set(&mut e, T0, "a", "k", false);
    set(&mut e, u64::MAX, "a", "max", false);
    set(&mut e, u64::MAX, "a", "k", false);
    assert_eq!(
        stamps(&e),
        vec![
            ("k".to_string(), 7, u64::MAX),
            ("max".to_string(), 6, u64::MAX),
        ]
    );
    round_trips(&e);
}

#[test]
fn revisions_past_u32_read_back_exactly() {
    let mut e = engine();
    set(&mut e, T0, "a", "k0", false);
    set(&mut e, T0 + 1, "a", "k1", false);
    let top = u64::from(u32::MAX);
    let mut e = at_seq(&e, top - 1);
    assert_eq!(e.check_invariants(), Ok(()));
    assert_eq!(
        stamps(&e),
        vec![
            ("k0".to_string(), top - 2, T0),
            ("k1".to_string(), top - 1, T0 + 1)
        ]
    );
    // The next revisions are u32::MAX (the wide marker itself) and past it.
    set(&mut e, T0 + 2, "a", "k2", false);
    set(&mut e, T0 + 3, "a", "k0", false);
    assert_eq!(
        stamps(&e),
        vec![
            ("k0".to_string(), top + 1, T0 + 3),
            ("k1".to_string(), top - 1, T0 + 1),
            ("k2".to_string(), top, T0 + 2),
        ]
    );
    // A conditional write sees the exact revision.
    let stale =
        Write::new("r", Actor::user("a")).op(Op::set("k2", "v").expect(Expect::Revision(top - 1)));
    let _ = e.handle(Millis(T0 + 4), Command::Write(stale));
    assert_eq!(e.room("r").unwrap().attribute("k2").unwrap().revision, top);
    let fresh =
        Write::new("r", Actor::user("a")).op(Op::set("k2", "v").expect(Expect::Revision(top)));
    ok(&mut e, T0 + 4, Command::Write(fresh));
    assert_eq!(
        e.room("r").unwrap().attribute("k2").unwrap().revision,
        top + 2
    );
    round_trips(&e);
    ok(
        &mut e,
        T0 + 5,
        Command::Write(Write::new("r", Actor::user("a")).op(Op::delete("k0"))),
    );
    round_trips(&e);
}

#[test]
fn a_restored_room_spanning_a_year_keeps_every_time() {
    let mut e = engine();
    // 40 keys (past the 32 a room finds by scanning), written over a year
    // in an order that is not the times' order.
    for i in 0..40u64 {
        set(&mut e, T0 + i, "a", &format!("k{i}"), i % 3 == 0);
    }
    let (h, mut snap) = decode(&e.snapshot());
    let now = snap.now.0;
    for (i, a) in snap.rooms[0].attributes.iter_mut().enumerate() {
        let back = (i as u64 * 7_919) % 365;
        a.changed_at = Millis(now - back * DAY - i as u64);
    }
    let forged: Vec<Attribute> = snap.rooms[0].attributes.clone();
    let bytes = encode(&h, &snap);
    let restored = Engine::restore(&bytes).unwrap();
    assert_eq!(restored.check_invariants(), Ok(()));
    let got: Vec<Attribute> = restored
        .room("r")
        .unwrap()
        .attributes()
        .map(|a| a.to_attribute())
        .collect();
    assert_eq!(got, forged);
    assert_eq!(restored.snapshot(), bytes);
}
