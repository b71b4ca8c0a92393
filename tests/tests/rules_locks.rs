//! Locks, fencing tokens and channel-metadata compare-and-set (issue 10),
//! against Agora Signaling (RTM 2.x) documented behaviour, with the
//! engine's choices where it goes further. One test per rule; each cites
//! its source: Agora's lock API (`setLock` with a TTL of 10–300 s,
//! `acquireLock` with `retry`, `releaseLock`, `revokeLock`, `removeLock`,
//! `getLocks`; a lock whose holder goes offline is released after its
//! TTL), Agora's storage API (`setChannelMetadata` /
//! `updateChannelMetadata` with `majorRevision` and `lockName`), Agora's
//! error codes (−12xxx storage, −14xxx locks), or `core/src/engine/locks.rs`.

mod common;

use common::*;
use roomstate::{
    Acquisition, Cause, Change, Command, Expect, Millis, Op, OpError, Profile, Rejection, Role,
    Success, Write,
};

const GRACE: u64 = roomstate::DEFAULT_DISCONNECT_GRACE_MS;

fn set_lock(name: &str, ttl_ms: u64) -> Command {
    Command::SetLock {
        room: "r".into(),
        name: name.into(),
        ttl_ms,
    }
}

fn acquire(name: &str, user: &str, retry: bool) -> Command {
    Command::AcquireLock {
        room: "r".into(),
        name: name.into(),
        user: user.into(),
        retry,
    }
}

fn release(name: &str, user: &str) -> Command {
    Command::ReleaseLock {
        room: "r".into(),
        name: name.into(),
        user: user.into(),
    }
}

/// An Agora Signaling room: host (creator), ann, bob and cat joined, no
/// request rate (the rate has its own test).
fn rtm() -> Driver {
    let mut p = Profile::agora_rtm();
    p.limits.request_rate = None;
    let mut d = Driver::new(p);
    d.create("r", "host");
    for u in ["host", "ann", "bob", "cat"] {
        d.join("r", u);
    }
    d
}

/// `rtm()` with lock "stage" of `ttl_ms`.
fn rtm_stage(ttl_ms: u64) -> Driver {
    let mut d = rtm();
    assert_eq!(d.run(set_lock("stage", ttl_ms)).0, Ok(Success::Done));
    d
}

/// Applies `cmd`, which must succeed.
fn ok(d: &mut Driver, cmd: Command) {
    let (out, _) = d.run(cmd);
    assert!(out.is_ok(), "{out:?}");
}

fn granted(token: u64) -> Result<Success, Rejection> {
    Ok(Success::Acquired(Acquisition::Granted { token }))
}

fn holder(d: &Driver, name: &str) -> Option<String> {
    let view = d.engine.room("r").unwrap();
    view.lock(name).unwrap().holder.map(String::from)
}

fn code(d: &Driver, r: Rejection) -> Option<i64> {
    d.profile.code(r.class())
}

// Agora `setLock`: "ttl: the lock's time to live, 10 to 300 seconds". The
// engine clamps instead of refusing, as the issue asks.
#[test]
fn agora_set_lock_clamps_the_ttl_to_10_to_300_seconds() {
    let mut d = rtm();
    let (out, evs) = d.run(set_lock("short", 1));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs[0].changes,
        vec![Change::LockSet {
            name: "short".into(),
            ttl_ms: 10_000
        }]
    );
    ok(&mut d, set_lock("long", u64::MAX));
    let view = d.engine.room("r").unwrap();
    assert_eq!(view.lock("long").unwrap().ttl_ms, 300_000);
    assert_eq!(view.lock("short").unwrap().token, 0);
    d.check();
}

// Agora error codes: −14004 "the lock already exists", −14005 "invalid
// lock name"; Signaling's limits: at most 32 locks per channel, names of
// at most 64 ASCII characters.
#[test]
fn agora_set_lock_refuses_an_existing_or_invalid_name_and_the_33rd_lock() {
    let mut d = rtm_stage(60_000);
    d.rejected("r", set_lock("stage", 60_000), Rejection::LockExists);
    assert_eq!(code(&d, Rejection::LockExists), Some(-14004));
    for bad in ["", "lé", "has space", &"l".repeat(65)] {
        d.rejected("r", set_lock(bad, 60_000), Rejection::InvalidLockName);
    }
    assert_eq!(code(&d, Rejection::InvalidLockName), Some(-14005));
    ok(&mut d, set_lock(&"l".repeat(64), 60_000));
    for i in 0..30 {
        assert_eq!(
            d.run(set_lock(&format!("l{i}"), 60_000)).0,
            Ok(Success::Done)
        );
    }
    d.rejected(
        "r",
        set_lock("one-too-many", 60_000),
        Rejection::LockCountLimit { max: 32 },
    );
    d.check();
}

// Agora `acquireLock`: a free lock goes to the caller; with `retry` false a
// held lock fails at once (−14007); with `retry` true the caller waits and
// gets it when it frees. Beyond Agora: the line is FIFO, and each
// acquisition carries the next fencing token.
#[test]
fn agora_acquire_grants_a_free_lock_and_queues_retries_first_in_first_out() {
    let mut d = rtm_stage(60_000);
    let (out, evs) = d.run(acquire("stage", "ann", false));
    assert_eq!(out, granted(1));
    assert_eq!(
        evs[0].changes,
        vec![Change::LockAcquired {
            name: "stage".into(),
            holder: "ann".into(),
            token: 1
        }]
    );
    assert_eq!(evs[0].operator, u("ann"));
    // Acquiring again by the holder changes nothing and keeps the token.
    assert_eq!(d.run(acquire("stage", "ann", false)), (granted(1), vec![]));
    d.rejected("r", acquire("stage", "bob", false), Rejection::LockHeld);
    assert_eq!(code(&d, Rejection::LockHeld), Some(-14007));
    let waiting = |position| Ok(Success::Acquired(Acquisition::Waiting { position }));
    assert_eq!(d.run(acquire("stage", "cat", true)), (waiting(1), vec![]));
    assert_eq!(d.run(acquire("stage", "bob", true)), (waiting(2), vec![]));
    assert_eq!(d.run(acquire("stage", "cat", true)), (waiting(1), vec![]));
    // The release and the hand-over are one event.
    let (out, evs) = d.run(release("stage", "ann"));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs[0].changes,
        vec![
            Change::LockReleased {
                name: "stage".into(),
                holder: "ann".into()
            },
            Change::LockAcquired {
                name: "stage".into(),
                holder: "cat".into(),
                token: 2
            },
        ]
    );
    ok(&mut d, release("stage", "cat"));
    assert_eq!(holder(&d, "stage").as_deref(), Some("bob"));
    assert_eq!(d.engine.room("r").unwrap().lock("stage").unwrap().token, 3);
    d.check();
}

// Agora error codes: −14006 "the lock is not acquired" (a release by a
// user who does not hold it), −14008 "the lock does not exist".
#[test]
fn agora_release_by_a_non_holder_and_any_command_on_a_missing_lock_are_refused() {
    let mut d = rtm_stage(60_000);
    ok(&mut d, acquire("stage", "ann", false));
    d.rejected("r", release("stage", "bob"), Rejection::LockNotAcquired);
    assert_eq!(code(&d, Rejection::LockNotAcquired), Some(-14006));
    d.rejected("r", release("nope", "ann"), Rejection::LockNotFound);
    d.rejected("r", acquire("nope", "ann", true), Rejection::LockNotFound);
    assert_eq!(code(&d, Rejection::LockNotFound), Some(-14008));
    // A user outside the room cannot acquire (nor wait).
    d.rejected("r", acquire("stage", "zed", true), Rejection::NotInRoom);
    assert_eq!(holder(&d, "stage").as_deref(), Some("ann"));
    d.check();
}

// Agora `revokeLock` lets any client take a lock from its owner; the
// engine lets only `Admin` or the room's admins and creator (issue 10).
#[test]
fn revoke_is_for_admin_and_room_staff_only_and_names_the_holder() {
    let mut d = rtm_stage(60_000);
    ok(&mut d, acquire("stage", "ann", false));
    ok(&mut d, acquire("stage", "bob", true));
    let revoke = |by: roomstate::Actor, owner: &str| Command::RevokeLock {
        room: "r".into(),
        name: "stage".into(),
        owner: owner.into(),
        operator: by,
    };
    d.rejected("r", revoke(u("cat"), "ann"), Rejection::NoPermission);
    d.rejected("r", revoke(u("host"), "cat"), Rejection::LockNotAcquired);
    let (out, evs) = d.run(revoke(u("host"), "ann"));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(evs[0].operator, u("host"));
    assert_eq!(holder(&d, "stage").as_deref(), Some("bob"));
    assert!(d.set_role("r", "cat", Role::Admin).0.is_ok());
    assert_eq!(d.run(revoke(u("cat"), "bob")).0, Ok(Success::Done));
    ok(&mut d, acquire("stage", "ann", false));
    assert_eq!(
        d.run(revoke(roomstate::Actor::Admin, "ann")).0,
        Ok(Success::Done)
    );
    assert_eq!(holder(&d, "stage"), None);
    d.check();
}

// Agora: a lock whose holder goes offline is kept for its TTL. The engine
// starts the TTL when the holder's last live connection drops and stops it
// when the holder re-joins inside it: the lock stays, no event.
#[test]
fn agora_a_holder_that_drops_and_rejoins_inside_the_ttl_keeps_the_lock() {
    let mut d = rtm_stage(20_000);
    ok(&mut d, acquire("stage", "ann", false));
    assert!(d.disconnect("r", "ann").0.is_ok());
    let deadline = d.now.saturating_add(20_000);
    assert_eq!(
        d.engine
            .room("r")
            .unwrap()
            .lock("stage")
            .unwrap()
            .expires_at,
        Some(deadline)
    );
    assert_eq!(d.engine.poll_timeout(), Some(deadline));
    d.advance(19_999);
    assert_eq!(d.tick(), (Ok(Success::Done), vec![]));
    let evs = d.join("r", "ann");
    assert!(evs.is_empty(), "a re-join inside grace is silent: {evs:?}");
    assert_eq!(holder(&d, "stage").as_deref(), Some("ann"));
    assert_eq!(
        d.engine
            .room("r")
            .unwrap()
            .lock("stage")
            .unwrap()
            .expires_at,
        None
    );
    assert_eq!(d.engine.poll_timeout(), None);
    d.check();
}

// Agora: past the TTL the lock is released (and a waiting client gets it).
// The engine says so with `LockExpired`, cause `Expired`, and hands the
// lock to the next waiter in the same event.
#[test]
fn agora_a_holder_offline_past_the_ttl_loses_the_lock_to_the_next_waiter() {
    let mut d = rtm_stage(10_000);
    ok(&mut d, acquire("stage", "ann", false));
    ok(&mut d, acquire("stage", "bob", true));
    assert!(d.disconnect("r", "ann").0.is_ok());
    d.advance(10_000);
    let (_, evs) = d.tick();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].cause, Cause::Expired);
    assert_eq!(evs[0].operator, roomstate::Actor::Admin);
    assert_eq!(
        evs[0].changes,
        vec![
            Change::LockExpired {
                name: "stage".into(),
                holder: "ann".into()
            },
            Change::LockAcquired {
                name: "stage".into(),
                holder: "bob".into(),
                token: 2
            },
        ]
    );
    // ann is still in her grace period (30 s) but holds nothing.
    assert!(d.present("r", "ann"));
    d.check();
}

// Issue 10: a holder that leaves or exits loses the lock at once, inside
// the exit's event; a waiter that leaves is dropped from the line. A grace
// period shorter than the TTL ends the hold with the exit.
#[test]
fn a_holder_that_leaves_releases_at_once_and_a_waiter_that_leaves_loses_its_place() {
    let mut d = rtm_stage(300_000);
    ok(&mut d, acquire("stage", "ann", false));
    ok(&mut d, acquire("stage", "bob", true));
    ok(&mut d, acquire("stage", "cat", true));
    let (_, evs) = d.leave("r", "bob");
    assert_eq!(evs.len(), 1);
    assert!(matches!(evs[0].changes[..], [Change::MemberExited { .. }]));
    let (_, evs) = d.leave("r", "ann");
    assert_eq!(evs[0].cause, Cause::OwnerExited);
    assert_eq!(
        evs[0].changes[1..],
        [
            Change::LockReleased {
                name: "stage".into(),
                holder: "ann".into()
            },
            Change::LockAcquired {
                name: "stage".into(),
                holder: "cat".into(),
                token: 2
            },
        ]
    );
    // cat drops; its grace (30 s) ends before the lock's TTL (300 s).
    assert!(d.disconnect("r", "cat").0.is_ok());
    d.advance(GRACE);
    let (_, evs) = d.tick();
    assert_eq!(evs[0].cause, Cause::OwnerExited);
    assert!(evs[0].changes.contains(&Change::LockReleased {
        name: "stage".into(),
        holder: "cat".into()
    }));
    assert_eq!(holder(&d, "stage"), None);
    assert_eq!(d.engine.poll_timeout(), None);
    d.check();
}

// Agora `removeLock`: the lock goes, whoever holds or waits for it.
#[test]
fn agora_remove_lock_drops_holder_line_and_deadline() {
    let mut d = rtm_stage(60_000);
    ok(&mut d, acquire("stage", "ann", false));
    ok(&mut d, acquire("stage", "bob", true));
    assert!(d.disconnect("r", "ann").0.is_ok());
    assert!(d.engine.poll_timeout().is_some());
    let (out, evs) = d.run(Command::RemoveLock {
        room: "r".into(),
        name: "stage".into(),
    });
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs[0].changes,
        vec![Change::LockRemoved {
            name: "stage".into()
        }]
    );
    assert!(d.engine.room("r").unwrap().lock("stage").is_none());
    // Only ann's grace deadline is left.
    assert_eq!(d.engine.poll_timeout(), Some(d.now.saturating_add(GRACE)));
    d.check();
}

// Agora `getLocks`: every lock with its owner; here in creation order, with
// token, TTL, deadline and wait list, and the room's seq to resume from.
#[test]
fn agora_get_locks_lists_every_lock_in_creation_order() {
    let mut d = rtm_stage(60_000);
    ok(&mut d, set_lock("backstage", 60_000));
    ok(&mut d, acquire("backstage", "bob", false));
    ok(&mut d, acquire("backstage", "ann", true));
    let Ok(Success::Locks(report)) = d.handle(Command::GetLocks { room: "r".into() }) else {
        panic!("no lock report");
    };
    assert_eq!(report.seq, d.seq("r"));
    let names: Vec<&str> = report.locks.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["stage", "backstage"]);
    assert_eq!(report.locks[1].holder.as_deref(), Some("bob"));
    assert_eq!(report.locks[1].waiters, vec![roomstate::Str::from("ann")]);
    let view: Vec<_> = d
        .engine
        .room("r")
        .unwrap()
        .locks()
        .map(|l| l.to_info())
        .collect();
    assert_eq!(view, report.locks);
}

// Agora `setChannelMetadata` with `lockName`: refused unless the caller
// holds the lock (−12008 "lock not acquired"). Beyond Agora, the write
// names the token too, so a holder that lost the lock and got it back
// cannot finish a write it started under the old token.
#[test]
fn a_fenced_write_needs_the_lock_and_its_current_token() {
    let mut d = rtm_stage(60_000);
    ok(&mut d, acquire("stage", "ann", false));
    let w = |user: &str, token| {
        Command::Write(
            Write::new("r", u(user))
                .op(Op::set("k", user))
                .lock("stage", token),
        )
    };
    assert!(d.run(w("ann", 1)).0.is_ok());
    d.rejected("r", w("bob", 1), Rejection::WriteLockNotHeld);
    assert_eq!(code(&d, Rejection::WriteLockNotHeld), Some(-12008));
    ok(&mut d, release("stage", "ann"));
    d.rejected("r", w("ann", 1), Rejection::WriteLockNotHeld);
    ok(&mut d, acquire("stage", "ann", false));
    d.rejected("r", w("ann", 1), Rejection::WriteLockNotHeld);
    assert!(d.run(w("ann", 2)).0.is_ok());
    d.check();
}

// Agora channel metadata `majorRevision`: a write naming the whole set's
// revision applies only if the set has not changed since (−12014 outdated
// revision). The revision is the seq of the last event that changed an
// attribute, whatever changed it: here an owner's exit.
#[test]
fn agora_major_revision_is_whole_set_compare_and_set() {
    let mut d = rtm();
    assert_eq!(d.engine.room("r").unwrap().major_revision(), 0);
    d.write_ok(Write::new("r", u("ann")).op(Op::set("a", "1").auto_delete(true)));
    let rev = d.engine.room("r").unwrap().major_revision();
    assert_eq!(rev, d.seq("r"));
    // A lock or membership event does not move it.
    ok(&mut d, set_lock("stage", 60_000));
    assert_eq!(d.engine.room("r").unwrap().major_revision(), rev);
    let guarded = |n| {
        Command::Write(
            Write::new("r", u("bob"))
                .op(Op::set("b", "2"))
                .major_revision(n),
        )
    };
    d.rejected(
        "r",
        guarded(rev - 1),
        Rejection::RevisionOutdated { current: rev },
    );
    assert_eq!(
        code(&d, Rejection::RevisionOutdated { current: rev }),
        Some(-12014)
    );
    assert!(d.run(guarded(rev)).0.is_ok());
    let rev = d.engine.room("r").unwrap().major_revision();
    assert!(d.leave("r", "ann").0.is_ok());
    assert!(
        d.engine.room("r").unwrap().major_revision() > rev,
        "the exit deleted a"
    );
    d.rejected(
        "r",
        guarded(rev),
        Rejection::RevisionOutdated {
            current: d.seq("r"),
        },
    );
    d.check();
}

// Agora `updateChannelMetadata` fails on items that do not exist;
// `Expect::Present` is that, per item (−12005 under the Agora profile's
// codes, the class of every per-item expectation).
#[test]
fn agora_update_channel_metadata_fails_on_missing_items() {
    let mut d = rtm();
    d.write_ok(Write::new("r", u("ann")).op(Op::set("a", "1")));
    let update = Write::new("r", u("ann"))
        .op(Op::set("a", "2").expect(Expect::Present))
        .op(Op::set("missing", "2").expect(Expect::Present));
    let err = Rejection::Op {
        index: 1,
        error: OpError::Conflict { current: None },
    };
    d.rejected("r", Command::Write(update), err);
    assert_eq!(code(&d, err), Some(-12005));
    d.write_ok(Write::new("r", u("ann")).op(Op::set("a", "3").expect(Expect::Present)));
    assert_eq!(d.value("r", "a"), "3");
    d.check();
}

// Agora Signaling limits: keys of at most 32 ASCII characters (−12011),
// values of at most 16 KB (−12012), the whole set at most 16 KB (−12006),
// and 10 calls per second (approximated per application); any other bad
// parameter −12004, a key count over a custom limit −12002.
#[test]
fn agora_rtm_profile_limits_and_codes() {
    let mut d = rtm();
    let set = |k: &str, v: &str| Command::Write(Write::new("r", u("ann")).op(Op::set(k, v)));
    let op_err = |error| Rejection::Op { index: 0, error };
    let too_long = op_err(OpError::KeyTooLong);
    d.rejected("r", set(&"k".repeat(33), "v"), too_long);
    assert_eq!(code(&d, too_long), Some(-12011));
    let charset = op_err(OpError::KeyCharset);
    d.rejected("r", set("ké", "v"), charset);
    // Any other invalid parameter: -12004.
    assert_eq!(code(&d, charset), Some(-12004));
    let big = op_err(OpError::ValueTooLong);
    d.rejected("r", set("k", &"v".repeat(16 * 1024 + 1)), big);
    assert_eq!(code(&d, big), Some(-12012));
    d.write_ok(Write::new("r", u("ann")).op(Op::set("k1", "v".repeat(16 * 1024 - 1))));
    let total = op_err(OpError::RoomSizeLimit);
    d.rejected("r", set("k2", "vv"), total);
    assert_eq!(code(&d, total), Some(-12006));
    // Signaling bounds the set by bytes, not items, so the profile has no
    // key limit; one set over the built-in (a custom profile) answers a key
    // count over its limit with -12002.
    let mut p = Profile::agora_rtm();
    p.limits.max_keys_per_room = Some(1);
    let mut d = Driver::new(p);
    d.create("r", "host");
    d.join("r", "ann");
    d.write_ok(Write::new("r", u("ann")).op(Op::set("k1", "v")));
    let count = op_err(OpError::KeyCountLimit);
    d.rejected("r", set("k2", "v"), count);
    assert_eq!(code(&d, count), Some(-12002));

    let mut d = Driver::new(Profile::agora_rtm());
    d.create("r", "host");
    for i in 0..10 {
        assert!(
            d.handle(Command::GetLocks { room: "r".into() }).is_ok(),
            "call {i}"
        );
    }
    d.rejected(
        "r",
        Command::GetLocks { room: "r".into() },
        Rejection::RateLimited,
    );
    d.advance(100);
    assert!(d.handle(Command::GetLocks { room: "r".into() }).is_ok());
}

// Snapshots keep locks, tokens, lines and deadlines; the restored engine
// expires and hands over exactly as the original.
#[test]
fn a_restored_engine_keeps_locks_and_their_deadlines() {
    let mut d = rtm_stage(10_000);
    ok(&mut d, acquire("stage", "ann", false));
    ok(&mut d, acquire("stage", "bob", true));
    assert!(d.disconnect("r", "ann").0.is_ok());
    let mut copy = roomstate::Engine::restore(&d.engine.snapshot()).unwrap();
    copy.check_invariants().unwrap();
    assert_eq!(copy.poll_timeout(), d.engine.poll_timeout());
    let at = Millis(d.now.0 + 10_000);
    let a = d.engine.handle(at, Command::Tick);
    let b = copy.handle(at, Command::Tick);
    assert_eq!(a, b);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    d.engine.drain_events(&mut ea);
    copy.drain_events(&mut eb);
    assert_eq!(ea, eb);
    assert!(matches!(ea[0].changes[0], Change::LockExpired { .. }));
    assert_eq!(copy.snapshot(), d.engine.snapshot());
}
