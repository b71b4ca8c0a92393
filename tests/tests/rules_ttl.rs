//! Key TTL (`Op::ttl`): a key set with a time to live is deleted at
//! `now + ttl`, announced in its own event (cause `Expired`), through the
//! same `poll_timeout` as grace periods. Agora RTM's lock TTL and Redis's
//! `SET .. PX` are the models: a write without a TTL clears the deadline.

mod common;

use common::*;
use roomstate::{Actor, Cause, Command, Millis, Op, Profile, Rejection, Write};

fn driver() -> Driver {
    let mut d = Driver::new(Profile::tencent());
    d.create("r", "host");
    d.join("r", "host");
    d.events();
    d
}

fn set_ttl(key: &str, value: &str, ttl: u64) -> Write {
    Write::new("r", Actor::Admin).op(Op::set(key, value).ttl(ttl))
}

// The key is there until its deadline, gone at it (`now >= deadline`), in
// one event of its own: cause Expired, operator Admin, AttributeDeleted.
#[test]
fn key_expires_at_its_deadline_in_its_own_event() {
    let mut d = driver();
    d.write_all(set_ttl("banner", "sale", 1_000));
    let deadline = Millis(T0.0 + 1_000);
    assert_eq!(d.engine.poll_timeout(), Some(deadline));
    assert_eq!(
        d.engine.room("r").unwrap().expires_at("banner"),
        Some(deadline)
    );
    let (_, evs) = d.run_at(Millis(deadline.0 - 1), Command::Tick);
    assert!(evs.is_empty());
    assert!(d.attr("r", "banner").is_some());
    let seq = d.seq("r");
    let (_, evs) = d.run_at(deadline, Command::Tick);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].cause, Cause::Expired);
    assert_eq!(evs[0].operator, Actor::Admin);
    assert_eq!(evs[0].seq, seq + 1);
    assert_eq!(evs[0].changes, vec![del_ch("banner")]);
    assert!(d.attr("r", "banner").is_none());
    assert_eq!(d.engine.poll_timeout(), None);
    d.check();
}

// An overwrite without a TTL clears the deadline; with one, it replaces it.
#[test]
fn overwrite_without_ttl_clears_the_deadline() {
    let mut d = driver();
    d.write_all(set_ttl("k", "v", 1_000));
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "w")));
    assert_eq!(d.engine.poll_timeout(), None);
    assert_eq!(d.engine.room("r").unwrap().expires_at("k"), None);
    d.write_all(set_ttl("k", "x", 5_000));
    d.write_all(set_ttl("k", "y", 2_000));
    assert_eq!(d.engine.poll_timeout(), Some(Millis(T0.0 + 2_000)));
    let (_, evs) = d.run_at(Millis(T0.0 + 10_000), Command::Tick);
    assert_eq!(evs.len(), 1, "one deadline, one expiry: {evs:?}");
    d.check();
}

// A delete, an exit that auto-deletes, and a room's destruction take the
// key's deadline with it: nothing fires later.
#[test]
fn delete_exit_and_destroy_clear_deadlines() {
    let mut d = driver();
    d.write_all(set_ttl("a", "v", 1_000));
    d.write_all(Write::new("r", Actor::Admin).op(Op::delete("a")));
    assert_eq!(d.engine.poll_timeout(), None);
    d.write_all(Write::new("r", u("host")).op(Op::set("b", "v").auto_delete(true).ttl(1_000)));
    let _ = d.kick("r", "host");
    assert_eq!(d.engine.poll_timeout(), None);
    d.write_all(set_ttl("c", "v", 1_000));
    let _ = d.run(Command::DestroyRoom { room: "r".into() });
    assert_eq!(d.engine.poll_timeout(), None);
    d.check();
}

// A TTL of 0 (or past the end of time) is refused before anything changes.
#[test]
fn ttl_of_zero_is_invalid() {
    let mut d = driver();
    d.rejected(
        "r",
        Command::Write(set_ttl("k", "v", 0)),
        Rejection::InvalidParameter,
    );
    d.write_all(set_ttl("k", "v", u64::MAX));
    assert_eq!(d.engine.poll_timeout(), Some(Millis(u64::MAX)));
    d.check();
}

// Several keys due at once expire in deadline order, each in its own
// event, before the command that found them due.
#[test]
fn due_keys_expire_in_deadline_order_before_the_command() {
    let mut d = driver();
    d.write_all(set_ttl("late", "v", 2_000));
    d.write_all(set_ttl("early", "v", 1_000));
    d.advance(5_000);
    let (_, evs) = d.write(Write::new("r", Actor::Admin).op(Op::set("early", "again")));
    let causes: Vec<_> = evs.iter().map(|e| (e.cause, e.changes.clone())).collect();
    assert_eq!(
        causes,
        vec![
            (Cause::Expired, vec![del_ch("early")]),
            (Cause::Expired, vec![del_ch("late")]),
            (
                Cause::Written,
                vec![set_ch("early", "again", Actor::Admin, false)]
            ),
        ]
    );
    d.check();
}
