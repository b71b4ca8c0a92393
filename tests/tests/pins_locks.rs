//! Pins for locks (`core/src/engine/locks.rs`, `core/src/locks.rs`): rules
//! that `rules_locks.rs` left open, found by mutation testing. Each test
//! names the rule it pins.

mod common;

use common::*;
use roomstate::{Acquisition, Command, Profile, Rejection, Role, Success};

// ---- the engine API this file uses -----------------------------------------

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

/// The holder of lock `name`, read through `GetLocks`.
fn holder(d: &mut Driver, name: &str) -> Option<String> {
    match d.handle(Command::GetLocks { room: "r".into() }) {
        Ok(Success::Locks(report)) => report
            .locks
            .into_iter()
            .find(|l| l.name.as_str() == name)
            .and_then(|l| l.holder.map(|h| h.to_string())),
        other => panic!("expected locks, got {other:?}"),
    }
}

/// An Agora Signaling room with lock "stage": host (creator) and ann
/// joined, no request rate.
fn rtm_stage() -> Driver {
    let mut p = Profile::agora_rtm();
    p.limits.request_rate = None;
    let mut d = Driver::new(p);
    d.create("r", "host");
    d.join("r", "host");
    d.join("r", "ann");
    let (out, _) = d.run(set_lock("stage", 60_000));
    assert_eq!(out, Ok(Success::Done));
    d
}

// Agora `acquireLock` is a call of a user in the channel; `locks.rs`: "A
// holder that leaves or exits loses the lock at once". A user who left is
// not in the room even while the room still remembers it (here: its admin
// role), so it may neither take the lock nor wait for it.
#[test]
fn a_user_who_left_cannot_acquire_even_if_the_room_remembers_it() {
    let mut d = rtm_stage();
    let (out, _) = d.set_role("r", "ann", Role::Admin);
    assert!(out.is_ok(), "{out:?}");
    let (out, _) = d.leave("r", "ann");
    assert!(out.is_ok(), "{out:?}");
    assert!(!d.present("r", "ann"));
    assert_eq!(d.role("r", "ann"), Role::Admin, "the room remembers ann");
    d.rejected("r", acquire("stage", "ann", false), Rejection::NotInRoom);
    d.rejected("r", acquire("stage", "ann", true), Rejection::NotInRoom);
    assert_eq!(holder(&mut d, "stage"), None);
    // Back in the room, ann may.
    d.join("r", "ann");
    let (out, _) = d.run(acquire("stage", "ann", false));
    assert!(
        matches!(out, Ok(Success::Acquired(Acquisition::Granted { .. }))),
        "{out:?}"
    );
    assert_eq!(holder(&mut d, "stage").as_deref(), Some("ann"));
    d.check();
}

// `locks.rs`: a held lock whose holder has no live connection runs its TTL
// on the engine's timers, which `poll_timeout` reports. Destroying the room
// takes those deadlines with it: nothing is left to wake the engine for.
#[test]
fn destroying_a_room_forgets_its_lock_deadlines() {
    let mut d = rtm_stage();
    let (out, _) = d.run(acquire("stage", "ann", false));
    assert!(out.is_ok(), "{out:?}");
    let (out, _) = d.disconnect("r", "ann");
    assert!(out.is_ok(), "{out:?}");
    assert!(
        d.engine.poll_timeout().is_some(),
        "grace and lock TTL armed"
    );
    let (out, _) = d.run(Command::DestroyRoom { room: "r".into() });
    assert!(out.is_ok(), "{out:?}");
    assert!(!d.exists("r"));
    assert_eq!(
        d.engine.poll_timeout(),
        None,
        "a destroyed room's deadlines"
    );
    d.check();
}

// `locks.rs`: "a waiter that exits leaves the line" — also when it is the
// only one waiting and holds nothing: the next release frees the lock
// instead of handing it to a user who is gone.
#[test]
fn a_sole_waiter_that_leaves_is_out_of_line() {
    let mut d = rtm_stage();
    d.join("r", "bob");
    let (out, _) = d.run(acquire("stage", "ann", false));
    assert!(out.is_ok(), "{out:?}");
    let (out, _) = d.run(acquire("stage", "bob", true));
    assert_eq!(
        out,
        Ok(Success::Acquired(Acquisition::Waiting { position: 1 }))
    );
    let (out, _) = d.leave("r", "bob");
    assert!(out.is_ok(), "{out:?}");
    let (out, evs) = d.run(Command::ReleaseLock {
        room: "r".into(),
        name: "stage".into(),
        user: "ann".into(),
    });
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0].changes.len(),
        1,
        "released, passed to nobody: {evs:?}"
    );
    assert_eq!(holder(&mut d, "stage"), None);
    d.check();
}
