//! Review of issue 9, round 4 (`core/src/stamp.rs`, `RoomHistory`): the
//! 8-byte stamps must read back exactly on every path that removes,
//! overwrites or moves an attribute, and the optional history must answer
//! catch-ups as the inline one did. `check_invariants` pairs every wide
//! record with its exact stamp (`stamps_consistent`), so each step checks
//! it; the readback is compared with what was written.
//!
//! The first test is a finding (it fails on `main` at 6533ed3); the rest
//! pin paths the round's own tests did not drive.

#[path = "common/mirror.rs"]
mod mirror;
#[path = "common/stamp_checks.rs"]
mod stamp_checks;

use mirror::{decode, encode};
use roomstate::{
    Actor, Command, Engine, Expect, Millis, Notify, Op, Outcome, Profile, Rejection, Success, Write,
};
use stamp_checks::{at_seq, round_trips, stamps};

const DAY: u64 = 86_400_000;
/// 2025-11-30, in ms.
const T0: u64 = 1_764_460_800_000;

fn ok(e: &mut Engine, t: u64, c: Command) -> Outcome {
    let shown = format!("{c:?}");
    let out = e.handle(Millis(t), c);
    assert!(out.is_ok(), "{shown}: {out:?}");
    assert_eq!(e.check_invariants(), Ok(()), "after {shown}");
    out
}

fn write(e: &mut Engine, t: u64, w: Write) {
    let _ = ok(e, t, Command::Write(w));
}

fn set_as(user: &str, key: &str, value: &str, auto_delete: bool) -> Write {
    Write::new("r", Actor::user(user)).op(Op::set(key, value).auto_delete(auto_delete))
}

fn profile() -> Profile {
    let mut p = Profile::easemob();
    p.limits.request_rate = None;
    p.limits.max_keys_per_room = None;
    p.limits.max_room_value_bytes = None;
    p.limits.max_engine_value_bytes = None;
    p.limits.max_ops_per_write = 40;
    p
}

/// An engine at `t` with room "r" (creator "host") where "host" and "a"
/// are present.
fn engine_at(p: Profile, t: u64) -> Engine {
    let mut e = Engine::new(p);
    let _ = ok(&mut e, t, Command::create_room("r", "host"));
    for u in ["host", "a"] {
        let _ = ok(&mut e, t, Command::join("r", u));
    }
    e
}

// ---------------------------------------------------------------------
// Finding: a room restored with `restore_room` from an engine whose clock
// runs ahead keeps its attribute times, which lie after this engine's
// `now`; this engine's own snapshot then carries them, and
// `Engine::restore` refuses it ("attribute revision or time out of
// range": a whole-engine restore requires `changed_at <= now`). The
// restore_room docs say the room's times are taken to be on this
// engine's clock, and it resets the notification window for that very
// reason, but not the attributes' times. It is also the one way for a
// write's time to fall before a room's stamp base (stamp.rs says the
// clock rules it out): the room's later writes are kept wide until this
// clock passes the other one's.
// ---------------------------------------------------------------------

/// An engine at `T0` with another room, into which the room `bytes` is
/// restored with `restore_room`.
fn restored_at_t0(bytes: &[u8]) -> Engine {
    let mut ours = Engine::new(profile());
    let _ = ok(&mut ours, T0, Command::create_room("elsewhere", "x"));
    ours.restore_room(bytes).unwrap();
    assert_eq!(ours.check_invariants(), Ok(()));
    ours
}

/// The engine's own snapshot restores.
fn own_snapshot_restores(e: &Engine) {
    let restored = Engine::restore(&e.snapshot());
    assert!(
        restored.is_ok(),
        "an engine's own snapshot is refused after restore_room: {:?}",
        restored.err()
    );
}

#[test]
fn review4_restore_room_from_a_clock_ahead_leaves_a_restorable_engine() {
    // The other engine's clock is 10 days ahead of ours.
    let ahead = T0 + 10 * DAY;
    let mut other = engine_at(profile(), ahead);
    write(&mut other, ahead, set_as("a", "k", "v", false));
    let bytes = other.snapshot_room("r").unwrap();

    let mut ours = restored_at_t0(&bytes);
    // Ours keeps serving the room. The restore moved our clock up to the
    // room's newest change, so a write sent at our old time happens then.
    write(&mut ours, T0 + 1, set_as("a", "k2", "v", false));
    assert_eq!(
        stamps(&ours),
        vec![("k".into(), 4, ahead), ("k2".into(), 5, ahead)]
    );
    own_snapshot_restores(&ours);
}

/// The same with no attribute time at all: a grace deadline from the
/// clock ahead lies more than one grace period after our `now`, which a
/// whole-engine restore refuses too.
#[test]
fn review4_restore_room_with_a_grace_from_a_clock_ahead_leaves_a_restorable_engine() {
    let ahead = T0 + 10 * DAY;
    let mut other = engine_at(profile(), ahead);
    let _ = ok(&mut other, ahead, Command::disconnect("r", "a"));
    let bytes = other.snapshot_room("r").unwrap();

    let ours = restored_at_t0(&bytes);
    own_snapshot_restores(&ours);
}

// ---------------------------------------------------------------------
// Coverage: every path that removes or rewrites a wide record drops or
// updates its pair (the invariants check the pairing after each step).
// ---------------------------------------------------------------------

/// A key whose TTL expires after the base has moved past its time (so it
/// is wide) goes with its pair; a wide key rewritten with a TTL too.
#[test]
fn review4_ttl_expiry_of_a_wide_key_drops_its_pair() {
    let mut e = engine_at(profile(), T0);
    let ttl = Write::new("r", Actor::Admin).op(Op::set("old", "v").ttl(61 * DAY));
    write(&mut e, T0, ttl);
    write(&mut e, T0, set_as("a", "keep", "v", false));
    // 60 days later: the base moves, "old" and "keep" are kept wide.
    write(&mut e, T0 + 60 * DAY, set_as("a", "new", "v", false));
    assert_eq!(
        stamps(&e),
        vec![
            ("old".into(), 4, T0),
            ("keep".into(), 5, T0),
            ("new".into(), 6, T0 + 60 * DAY)
        ]
    );
    round_trips(&e);
    // The TTL deletes "old" at day 61.
    let _ = ok(&mut e, T0 + 61 * DAY, Command::Tick);
    assert_eq!(
        stamps(&e),
        vec![("keep".into(), 5, T0), ("new".into(), 6, T0 + 60 * DAY)]
    );
    round_trips(&e);
    // A wide key overwritten with a TTL, which then expires.
    let ttl = Write::new("r", Actor::Admin)
        .forced()
        .op(Op::set("keep", "w").ttl(DAY));
    write(&mut e, T0 + 62 * DAY, ttl);
    let _ = ok(&mut e, T0 + 63 * DAY, Command::Tick);
    assert_eq!(stamps(&e), vec![("new".into(), 6, T0 + 60 * DAY)]);
    round_trips(&e);
}

/// An exit auto-deletes 40 wide keys (a store past the 32 it scans, so
/// the owner lists find them) and every pair goes; the room's remaining
/// keys read back.
#[test]
fn review4_an_exit_removes_wide_keys_and_their_pairs() {
    let mut e = engine_at(profile(), T0);
    for i in 0..40u64 {
        write(
            &mut e,
            T0 + i,
            set_as("a", &format!("a{i}"), "v", i % 4 != 0),
        );
    }
    write(&mut e, T0 + 70 * DAY, set_as("host", "h", "v", false));
    round_trips(&e);
    let _ = ok(&mut e, T0 + 70 * DAY, Command::leave("r", "a"));
    let mut expected: Vec<(String, u64, u64)> = (0..40u64)
        .filter(|i| i % 4 == 0)
        .map(|i| (format!("a{i}"), 4 + i, T0 + i))
        .collect();
    expected.push(("h".into(), 44, T0 + 70 * DAY));
    assert_eq!(stamps(&e), expected);
    round_trips(&e);
}

/// A store emptied with large buffers is reset (`Store::default()`, base
/// 0): the next writes place a base afresh, months apart, and read back.
#[test]
fn review4_an_emptied_store_places_its_base_again() {
    let mut e = engine_at(profile(), T0);
    let big = "x".repeat(1_000);
    for i in 0..40u64 {
        write(&mut e, T0, set_as("a", &format!("k{i}"), &big, false));
    }
    // Day 60: half the keys rewritten (the other half go wide), then all
    // deleted in one batch, then written again months apart.
    for i in 0..20u64 {
        write(
            &mut e,
            T0 + 60 * DAY,
            set_as("a", &format!("k{i}"), "y", false),
        );
    }
    let mut del = Write::new("r", Actor::user("a"));
    for i in 0..40u64 {
        del = del.op(Op::delete(format!("k{i}")));
    }
    write(&mut e, T0 + 60 * DAY, del);
    assert!(stamps(&e).is_empty());
    let seq = e.room("r").unwrap().seq();
    write(&mut e, T0 + 61 * DAY, set_as("a", "p", "v", false));
    write(&mut e, T0 + 200 * DAY, set_as("a", "q", "v", false));
    write(&mut e, T0 + 201 * DAY, set_as("a", "p", "w", false));
    assert_eq!(
        stamps(&e),
        vec![
            ("p".into(), seq + 3, T0 + 201 * DAY),
            ("q".into(), seq + 2, T0 + 200 * DAY)
        ]
    );
    round_trips(&e);
}

/// A batch that names one key twice, with revisions past `u32::MAX` (every
/// stamp it writes is wide): set then set, set then delete, delete then
/// set, and a new key set then deleted.
#[test]
fn review4_a_batch_naming_a_key_twice_keeps_its_pair_right() {
    let mut e = engine_at(profile(), T0);
    write(&mut e, T0, set_as("a", "k", "v", false));
    write(&mut e, T0, set_as("a", "d", "v", false));
    let top = u64::from(u32::MAX);
    let mut e = at_seq(&e, top - 1);
    let w = Write::new("r", Actor::user("a"))
        .op(Op::set("k", "1"))
        .op(Op::set("k", "2").expect(Expect::Revision(top)))
        .op(Op::delete("d"))
        .op(Op::set("d", "3"))
        .op(Op::set("n", "4"))
        .op(Op::delete("n"));
    write(&mut e, T0 + 1, w);
    assert_eq!(
        stamps(&e),
        vec![("k".into(), top, T0 + 1), ("d".into(), top, T0 + 1)]
    );
    round_trips(&e);
    // The exact revision is what a conditional write is checked against.
    let before = stamps(&e);
    let stale = Write::new("r", Actor::user("a")).op(Op::delete("k").expect(Expect::Revision(0)));
    let _ = e.handle(Millis(T0 + 2), Command::Write(stale));
    assert_eq!(stamps(&e), before);
    let w = Write::new("r", Actor::user("a"))
        .op(Op::delete("k").expect(Expect::Revision(top)))
        .op(Op::set("k", "5"))
        .op(Op::delete("k"));
    write(&mut e, T0 + 2, w);
    assert_eq!(stamps(&e), vec![("d".into(), top, T0 + 1)]);
    assert_eq!(e.room("r").unwrap().major_revision(), top + 1);
    round_trips(&e);
}

/// `snapshot_room` / `restore_room` of a room with wide keys (times
/// months apart, a revision past `u32::MAX`), into an engine on the same
/// clock, and a destroy then re-create of the same id.
#[test]
fn review4_room_snapshots_and_destroy_keep_stamps() {
    let mut e = engine_at(profile(), T0);
    write(&mut e, T0, set_as("a", "k0", "v", false));
    write(&mut e, T0 + 30 * DAY, set_as("a", "k1", "v", false));
    write(&mut e, T0 + 90 * DAY, set_as("a", "k2", "v", false));
    let top = u64::from(u32::MAX);
    let mut e = at_seq(&e, top + 5);
    write(&mut e, T0 + 91 * DAY, set_as("a", "k3", "v", false));
    let before = stamps(&e);
    let bytes = e.snapshot_room("r").unwrap();

    let mut other = Engine::new(profile());
    let _ = ok(&mut other, T0 + 91 * DAY, Command::Tick);
    other.restore_room(&bytes).unwrap();
    assert_eq!(other.check_invariants(), Ok(()));
    assert_eq!(stamps(&other), before);
    write(&mut other, T0 + 200 * DAY, set_as("a", "k0", "w", false));
    round_trips(&other);

    let _ = ok(
        &mut other,
        T0 + 200 * DAY,
        Command::DestroyRoom { room: "r".into() },
    );
    let _ = ok(
        &mut other,
        T0 + 200 * DAY,
        Command::create_room("r", "host"),
    );
    let _ = ok(&mut other, T0 + 200 * DAY, Command::join("r", "a"));
    write(&mut other, T0 + 200 * DAY, set_as("a", "k0", "v", false));
    assert_eq!(stamps(&other), vec![("k0".into(), 3, T0 + 200 * DAY)]);
    round_trips(&other);
}

// ---------------------------------------------------------------------
// RoomHistory: absent means "empty, covers from the room's seq".
// ---------------------------------------------------------------------

fn since(e: &mut Engine, t: u64, seq: u64) -> Result<Vec<u64>, Rejection> {
    match e.handle(
        Millis(t),
        Command::Since {
            room: "r".into(),
            seq,
        },
    ) {
        Ok(Success::Events(r)) => Ok(r.events.iter().map(|ev| ev.seq).collect()),
        Ok(other) => panic!("{other:?}"),
        Err(r) => Err(r),
    }
}

/// Right after a restore, after a silent change and with history off, a
/// catch-up from the room's number is empty and one from before it is
/// truncated at the room's number; the next events are caught up.
#[test]
fn review4_absent_history_covers_from_the_room_number() {
    let mut p = Profile::netease();
    p.limits.notification_flow = None;
    let mut e = engine_at(p, T0);
    let _ = ok(
        &mut e,
        T0,
        Command::QueueInit {
            room: "r".into(),
            operator: Actor::Admin,
            capacity: 10,
        },
    );
    write(&mut e, T0, set_as("a", "k", "v", false));
    let s = e.room("r").unwrap().seq();
    assert_eq!(since(&mut e, T0, s - 1), Ok(vec![s]));

    // Restored: nothing held, covers from s.
    let mut r = Engine::restore(&e.snapshot()).unwrap();
    assert_eq!(since(&mut r, T0, s), Ok(vec![]));
    assert_eq!(
        since(&mut r, T0, s - 1),
        Err(Rejection::HistoryTruncated { oldest: s })
    );
    // A silent change first: covers from s + 1, then the next event.
    let silent = Command::QueueOffer {
        room: "r".into(),
        operator: Actor::Admin,
        key: "q".into(),
        value: "v".into(),
        transient: false,
        notify: Notify::silent(),
    };
    let _ = ok(&mut r, T0 + 1, silent);
    assert_eq!(
        since(&mut r, T0 + 1, s),
        Err(Rejection::HistoryTruncated { oldest: s + 1 })
    );
    write(&mut r, T0 + 2, set_as("a", "k", "w", false));
    assert_eq!(since(&mut r, T0 + 2, s + 1), Ok(vec![s + 2]));
    assert_eq!(
        since(&mut r, T0 + 2, s),
        Err(Rejection::HistoryTruncated { oldest: s + 1 })
    );

    // History off: every catch-up but the empty one is truncated at the
    // room's number, which moves with each event.
    let (h, mut snap) = decode(&e.snapshot());
    snap.profile.limits.history_events = 0;
    let mut off = Engine::restore(&encode(&h, &snap)).unwrap();
    write(&mut off, T0 + 1, set_as("a", "k", "x", false));
    assert_eq!(since(&mut off, T0 + 1, s + 1), Ok(vec![]));
    assert_eq!(
        since(&mut off, T0 + 1, s),
        Err(Rejection::HistoryTruncated { oldest: s + 1 })
    );
}

/// A version-1 snapshot (times near 1 000 000 ms, base 0) runs on into
/// today: the first write moves the base, the old keys are kept wide and
/// read back as restored.
#[test]
fn review4_a_version_1_room_runs_on_with_wide_keys() {
    let v1: &[u8] = include_bytes!("../fixtures/snapshot_v1_tencent.bin");
    let mut e = Engine::restore(v1).unwrap();
    let old: Vec<(String, u64, u64)> = e
        .room("r1")
        .unwrap()
        .attributes()
        .map(|a| (a.key.to_string(), a.revision, a.changed_at.0))
        .collect();
    assert_eq!(old.len(), 2);
    let w = Write::new("r1", Actor::Admin)
        .forced()
        .op(Op::set("new", "v"));
    let _ = ok(&mut e, T0, Command::Write(w));
    let seq = e.room("r1").unwrap().seq();
    let mut want = old;
    want.push(("new".into(), seq, T0));
    let got: Vec<(String, u64, u64)> = e
        .room("r1")
        .unwrap()
        .attributes()
        .map(|a| (a.key.to_string(), a.revision, a.changed_at.0))
        .collect();
    assert_eq!(got, want);
    let bytes = e.snapshot();
    let back = Engine::restore(&bytes).unwrap();
    assert_eq!(back.check_invariants(), Ok(()));
    assert_eq!(back.snapshot(), bytes);
    // Deleting the old keys leaves the new one only.
    let w = Write::new("r1", Actor::Admin)
        .forced()
        .op(Op::delete("title"))
        .op(Op::delete("seat"));
    let _ = ok(&mut e, T0 + 1, Command::Write(w));
    assert_eq!(e.room("r1").unwrap().attribute_count(), 1);
}
