//! Time-driven rules (SPEC §6): notification flow, disconnect grace, request
//! rate, and time that goes backwards. One test per rule; each cites its
//! source (a seed, a SPEC section, or the choices in `core/src/lib.rs`).

mod common;

use common::*;
use roomstate::{
    Actor, Cause, Command, Delivery, ExitKind, HighPolicy, Limits, Millis, Notify, Op, Profile,
    Rejection, Role, Success, Write, DEFAULT_DISCONNECT_GRACE_MS,
};

const GRACE: u64 = DEFAULT_DISCONNECT_GRACE_MS;

fn netease_room() -> Driver {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    d.join("r", "u1");
    // A fresh notification window for the test.
    d.advance(5_000);
    d
}

/// Offers a new element by Admin and returns the delivery of its event.
fn offer_delivery(d: &mut Driver, key: &str, notify: Notify) -> Delivery {
    let (out, evs) = d.run(offer_with("r", Actor::Admin, key, "v", false, notify));
    assert_eq!(out, Ok(Success::Done), "offer {key}");
    assert_eq!(evs.len(), 1);
    evs[0].delivery
}

// ---- notification flow (seed 003 "API 使用限制", SPEC §6) ---------------------

// Seed 003: "聊天室用户每秒至多可接收 20 条,超过部分会因为流控随机丢弃"; SPEC §6:
// over budget the event is `Overflow` (it is still emitted and the change
// still applies); lib.rs: a one-second window opened by its first event, so a
// second later the budget is back.
#[test]
fn flow_20th_normal_event_is_normal_21st_overflow_refill_after_a_second() {
    let mut d = netease_room();
    let start = d.now;
    for i in 0..20 {
        assert_eq!(
            offer_delivery(&mut d, &format!("n{i}"), Notify::default()),
            Delivery::Normal,
            "normal event #{}",
            i + 1
        );
    }
    assert_eq!(
        offer_delivery(&mut d, "n20", Notify::default()),
        Delivery::Overflow
    );
    assert_eq!(
        d.queue("r").len(),
        21,
        "an overflowing change still applies"
    );
    d.now = Millis(start.0 + 999);
    assert_eq!(
        offer_delivery(&mut d, "n21", Notify::default()),
        Delivery::Overflow
    );
    d.now = Millis(start.0 + 1_000);
    assert_eq!(
        offer_delivery(&mut d, "n22", Notify::default()),
        Delivery::Normal
    );
    d.check();
}

// Seed 003: "针对高优先级通知(消息),每秒至多接收 10 条"; SPEC §6 `High` within the
// high budget; the default policy downgrades the 11th to normal.
#[test]
fn flow_high_budget_is_10_per_second() {
    let mut d = netease_room();
    let hi = || high(HighPolicy::Downgrade);
    for i in 0..10 {
        assert_eq!(
            offer_delivery(&mut d, &format!("h{i}"), hi()),
            Delivery::High
        );
    }
    assert_eq!(offer_delivery(&mut d, "h10", hi()), Delivery::Normal);
    d.advance(1_000);
    assert_eq!(offer_delivery(&mut d, "h11", hi()), Delivery::High);
    d.check();
}

// SPEC §6: separate budgets, "High (within the high budget), Normal (within
// the normal budget)" — high events do not use up the normal budget.
#[test]
fn high_events_do_not_consume_normal_budget() {
    let mut d = netease_room();
    for i in 0..10 {
        assert_eq!(
            offer_delivery(&mut d, &format!("h{i}"), high(HighPolicy::Reject)),
            Delivery::High
        );
    }
    for i in 0..20 {
        assert_eq!(
            offer_delivery(&mut d, &format!("n{i}"), Notify::default()),
            Delivery::Normal
        );
    }
    assert_eq!(
        offer_delivery(&mut d, "n20", Notify::default()),
        Delivery::Overflow
    );
    d.check();
}

// lib.rs: "over it, `Downgrade` treats it as normal" — so a downgraded event
// over an exhausted normal budget is `Overflow`.
#[test]
fn downgraded_high_event_counts_as_normal_and_can_overflow() {
    let mut d = netease_room();
    for i in 0..20 {
        offer_delivery(&mut d, &format!("n{i}"), Notify::default());
    }
    for i in 0..10 {
        assert_eq!(
            offer_delivery(&mut d, &format!("h{i}"), high(HighPolicy::Downgrade)),
            Delivery::High
        );
    }
    assert_eq!(
        offer_delivery(&mut d, "h10", high(HighPolicy::Downgrade)),
        Delivery::Overflow
    );
    d.check();
}

// Seed 003 highPriorityPolicy=1 "超出后返回 416 错误码"; SPEC §6 "the command is
// rejected before it changes anything". A rejected command uses no budget.
#[test]
fn high_reject_policy_over_budget_is_416_and_changes_nothing() {
    let mut d = netease_room();
    for i in 0..10 {
        offer_delivery(&mut d, &format!("h{i}"), high(HighPolicy::Reject));
    }
    d.rejected(
        "r",
        offer_with(
            "r",
            Actor::Admin,
            "h10",
            "v",
            false,
            high(HighPolicy::Reject),
        ),
        Rejection::NotificationBudget,
    );
    d.rejected(
        "r",
        Command::QueuePoll {
            room: "r".into(),
            operator: Actor::Admin,
            key: None,
            notify: high(HighPolicy::Reject),
        },
        Rejection::NotificationBudget,
    );
    assert_eq!(
        d.profile.code(Rejection::NotificationBudget.class()),
        Some(416)
    );
    d.advance(1_000);
    assert_eq!(
        offer_delivery(&mut d, "h10", high(HighPolicy::Reject)),
        Delivery::High
    );
    d.check();
}

// lib.rs: "Every other event is `Normal` while the normal count is under
// `normal_per_second`": membership and attribute events count too.
#[test]
fn membership_and_attribute_events_count_against_flow() {
    let mut d = netease_room();
    for i in 0..19 {
        let evs = d.join("r", &format!("m{i}"));
        assert_eq!(evs[0].delivery, Delivery::Normal);
    }
    let ev = d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    assert_eq!(ev.delivery, Delivery::Normal, "20th event");
    let evs = d.join("r", "m19");
    assert_eq!(evs[0].delivery, Delivery::Overflow, "21st event");
    d.check();
}

// SPEC §7: only NetEase has a notification flow; lib.rs: "Without a flow,
// events are `High` or `Normal` as asked" — never `Overflow`, never refused.
#[test]
fn without_flow_events_are_high_or_normal_as_asked() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    for i in 0..30 {
        assert_eq!(
            offer_delivery(&mut d, &format!("h{i}"), high(HighPolicy::Reject)),
            Delivery::High
        );
    }
    for i in 0..30 {
        assert_eq!(
            offer_delivery(&mut d, &format!("n{i}"), Notify::default()),
            Delivery::Normal
        );
    }
    d.check();
}

// ---- disconnect grace (SPEC §6) -------------------------------------------

fn easemob_with_u1() -> Driver {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.write_all(Write::new("r", u("u1")).op(Op::set("seat", "u1")));
    d.run(offer("r", u("u1"), "mic", "u1", true)).0.unwrap();
    d.events();
    d
}

// SPEC §6 "a re-join inside it cancels the exit"; lib.rs: a disconnect inside
// its grace and the re-join that cancels it emit nothing and keep seq.
#[test]
fn disconnect_then_rejoin_inside_grace_keeps_user() {
    let mut d = easemob_with_u1();
    let before = d.snap("r");
    let t = d.now;
    let (out, evs) = d.disconnect("r", "u1");
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    assert!(d.present("r", "u1"), "a dropped connection still counts");
    assert_eq!(d.connections("r", "u1"), 1);
    assert_eq!(d.engine.poll_timeout(), Some(Millis(t.0 + GRACE)));
    d.now = Millis(t.0 + GRACE - 1);
    assert!(d.join("r", "u1").is_empty());
    assert_eq!(d.connections("r", "u1"), 1, "the re-join reclaims the drop");
    assert_eq!(d.engine.poll_timeout(), None);
    d.now = Millis(t.0 + 2 * GRACE);
    let (out, evs) = d.tick();
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    assert!(d.present("r", "u1"));
    assert_eq!(d.snap("r"), before);
    d.check();
}

// SPEC §6: a dropped connection "counts as gone only after the profile's
// grace period"; SPEC §4: then auto-deletes go exactly as on a leave, in one
// `OwnerExited` event (operator `Admin`, event.rs; kind `Disconnected`).
#[test]
fn disconnect_grace_expiry_exits_with_auto_deletes_like_leave() {
    let mut d = easemob_with_u1();
    let s0 = d.seq("r");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + GRACE - 1);
    let (_, evs) = d.tick();
    assert!(evs.is_empty(), "inside the grace");
    assert!(d.present("r", "u1"));
    assert_eq!(d.engine.poll_timeout(), Some(Millis(t.0 + GRACE)));
    d.now = Millis(t.0 + GRACE);
    let (out, evs) = d.tick();
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::OwnerExited,
            vec![
                exited_ch("u1", ExitKind::Disconnected),
                del_ch("seat"),
                qrm_ch("mic"),
            ],
        )]
    );
    assert!(!d.present("r", "u1"));
    assert!(d.attr("r", "seat").is_none());
    assert!(d.queue("r").is_empty());
    assert_eq!(d.engine.poll_timeout(), None);

    // Same shape as a leave's event, apart from who and how.
    let mut l = easemob_with_u1();
    let (_, evs) = l.leave("r", "u1");
    assert_eq!(
        evs[0].changes,
        vec![
            exited_ch("u1", ExitKind::Left),
            del_ch("seat"),
            qrm_ch("mic")
        ]
    );
    assert_eq!(evs[0].cause, Cause::OwnerExited);
    d.check();
    l.check();
}

// SPEC §6 "a re-join inside it cancels the exit": at the deadline itself the
// grace is over, so the join comes too late: the exit happens first
// (lib.rs: every command first expires what is due at `now`), then the join.
#[test]
fn rejoin_at_grace_deadline_is_too_late() {
    let mut d = easemob_with_u1();
    let s0 = d.seq("r");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + GRACE);
    let evs = d.join("r", "u1");
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0].seq, s0 + 1);
    assert_eq!(evs[0].cause, Cause::OwnerExited);
    assert_eq!(
        evs[0].changes,
        vec![
            exited_ch("u1", ExitKind::Disconnected),
            del_ch("seat"),
            qrm_ch("mic"),
        ]
    );
    assert_eq!(
        evs[1],
        event(
            "r",
            s0 + 2,
            d.now,
            u("u1"),
            Cause::Membership,
            vec![joined_ch("u1")],
        )
    );
    assert_eq!(d.connections("r", "u1"), 1);
    d.check();
}

// lib.rs: "Before any command (not only `Command::Tick`) the engine expires
// what is due at `now`" — here a write in another room.
#[test]
fn any_command_expires_due_grace_first() {
    let mut d = easemob_with_u1();
    d.create("other", "host");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + GRACE + 5);
    let (out, evs) = d.write(Write::new("other", Actor::Admin).op(Op::set("k", "v")));
    assert!(out.is_ok());
    assert_eq!(evs.len(), 2);
    assert_eq!(
        (evs[0].room.as_str(), evs[0].cause),
        ("r", Cause::OwnerExited)
    );
    assert_eq!(
        (evs[1].room.as_str(), evs[1].cause),
        ("other", Cause::Written)
    );
    assert!(!d.present("r", "u1"));
    d.check();
}

// SPEC §6 "The engine says when it next needs to be woken": the earliest
// pending deadline, then the next, then none.
#[test]
fn poll_timeout_reports_earliest_deadline() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u2");
    assert_eq!(d.engine.poll_timeout(), None);
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + 100);
    d.disconnect("r", "u2").0.unwrap();
    assert_eq!(d.engine.poll_timeout(), Some(Millis(t.0 + GRACE)));
    d.now = d.engine.poll_timeout().unwrap();
    let (_, evs) = d.tick();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].changes[0], exited_ch("u1", ExitKind::Disconnected));
    assert_eq!(d.engine.poll_timeout(), Some(Millis(t.0 + 100 + GRACE)));
    d.now = d.engine.poll_timeout().unwrap();
    let (_, evs) = d.tick();
    assert_eq!(evs[0].changes[0], exited_ch("u2", ExitKind::Disconnected));
    assert_eq!(d.engine.poll_timeout(), None);
    d.check();
}

// lib.rs: "`Disconnect` ... (re)starts the user's grace timer at `now +
// grace`; all the user's dropped connections expire together".
#[test]
fn disconnect_restarts_grace_timer_and_all_drops_expire_together() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u1");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + 10);
    d.disconnect("r", "u1").0.unwrap();
    assert_eq!(d.engine.poll_timeout(), Some(Millis(t.0 + 10 + GRACE)));
    d.now = Millis(t.0 + GRACE);
    let (_, evs) = d.tick();
    assert!(evs.is_empty());
    assert_eq!(d.connections("r", "u1"), 2);
    d.now = Millis(t.0 + 10 + GRACE);
    let (_, evs) = d.tick();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u1", ExitKind::Disconnected)]
    );
    assert_eq!(d.connections("r", "u1"), 0);
    d.check();
}

// lib.rs: only the dropped connection expires; a user with a live connection
// left stays, silently (connection counts only).
#[test]
fn disconnect_with_live_connection_left_keeps_user_after_grace() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u1");
    let s0 = d.seq("r");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + GRACE);
    let (_, evs) = d.tick();
    assert!(evs.is_empty());
    assert!(d.present("r", "u1"));
    assert_eq!(d.connections("r", "u1"), 1);
    assert_eq!(d.seq("r"), s0);
    let (_, evs) = d.leave("r", "u1");
    assert_eq!(evs[0].changes, vec![exited_ch("u1", ExitKind::Left)]);
    d.check();
}

// lib.rs: "`Leave` removes a live connection, or a dropped one if none is
// live"; the pending expiry is then moot.
#[test]
fn leave_removes_dropped_connection_when_none_is_live() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.disconnect("r", "u1").0.unwrap();
    let (out, evs) = d.leave("r", "u1");
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(evs[0].changes, vec![exited_ch("u1", ExitKind::Left)]);
    assert!(!d.present("r", "u1"));
    assert_eq!(d.engine.poll_timeout(), None);
    d.now = Millis(d.now.0 + GRACE);
    let (_, evs) = d.tick();
    assert!(evs.is_empty());
    d.check();
}

// lib.rs: "With a grace of 0 a disconnect is a leave" (immediate exit).
#[test]
fn zero_grace_disconnect_exits_at_once() {
    let base = Profile::easemob();
    let p = Profile {
        limits: Limits {
            disconnect_grace_ms: 0,
            ..base.limits
        },
        ..base
    };
    let mut d = Driver::new(p);
    d.create("r", "host");
    d.join("r", "u1");
    d.write_all(Write::new("r", u("u1")).op(Op::set("seat", "u1")));
    let s0 = d.seq("r");
    let (out, evs) = d.disconnect("r", "u1");
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].seq, s0 + 1);
    assert_eq!(evs[0].cause, Cause::OwnerExited);
    // The docs call it "a leave" without naming the exit kind; both readings
    // are accepted here (see the report).
    assert!(
        matches!(
            evs[0].changes[0],
            roomstate::Change::MemberExited {
                how: ExitKind::Left | ExitKind::Disconnected,
                ..
            }
        ),
        "{:?}",
        evs[0].changes
    );
    assert_eq!(evs[0].changes[1..], [del_ch("seat")]);
    assert!(!d.present("r", "u1"));
    assert_eq!(d.engine.poll_timeout(), None);
    d.check();
}

// ---- time going backwards (SPEC §2, time.rs) --------------------------------

// SPEC §2 "an earlier `now` is treated as the latest one seen": the event's
// time and the attribute's change time are the latest `now`, and a grace
// deadline cannot be reached early or resurrected by an earlier clock.
#[test]
fn time_going_backwards_is_treated_as_latest_now() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.advance(10_000);
    let latest = d.now;
    d.write_all(Write::new("r", u("u1")).op(Op::set("a", "1")));
    let (out, evs) = d.run_at(
        Millis(latest.0 - 5_000),
        Command::Write(Write::new("r", u("u1")).op(Op::set("b", "2"))),
    );
    assert!(out.is_ok());
    assert_eq!(evs[0].at, latest);
    assert_eq!(d.attr("r", "b").unwrap().changed_at, latest);

    // A disconnect "in the past" starts its grace at the latest now.
    d.run_at(
        Millis(latest.0 - 5_000),
        Command::Disconnect {
            room: "r".into(),
            user: "u1".into(),
        },
    )
    .0
    .unwrap();
    assert_eq!(d.engine.poll_timeout(), Some(Millis(latest.0 + GRACE)));
    let (_, evs) = d.run_at(Millis(latest.0 + GRACE - 1), Command::Tick);
    assert!(evs.is_empty());
    let (_, evs) = d.run_at(Millis(latest.0 + GRACE), Command::Tick);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].at, Millis(latest.0 + GRACE));
    // Going back again cannot bring the user back or move time.
    let (_, evs) = d.run_at(latest, join("r", "u2"));
    assert_eq!(evs[0].at, Millis(latest.0 + GRACE));
    assert!(!d.present("r", "u1"));
    d.check();
}

// time.rs: "a clock step on the server cannot ... refill a rate bucket twice".
#[test]
fn backwards_time_cannot_refill_rate_bucket() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.advance(1_000);
    for _ in 0..20 {
        d.handle(read("r", None)).unwrap();
    }
    let (out, _) = d.run_at(Millis(d.now.0 - 1_000), read("r", None));
    assert_eq!(out, Err(Rejection::RateLimited));
    let (out, _) = d.run_at(Millis(0), read("r", None));
    assert_eq!(out, Err(Rejection::RateLimited));
    d.advance(50);
    assert!(d.handle(read("r", None)).is_ok());
    d.check();
}

// ---- request rate (SPEC §6 "Request rate", §7 "request rate") ---------------

/// Spends `n` requests (reads) at the driver's `now`, each must pass.
fn spend(d: &mut Driver, n: usize) {
    for i in 0..n {
        let out = d.handle(read("r", None));
        assert!(out.is_ok(), "request #{} was refused: {out:?}", i + 1);
    }
}

// SPEC §7 ZEGO 20/s (seed 004 "调用频率限制: 20 次/秒", 660300005); lib.rs:
// token bucket of 20, refilled continuously at 20 per 1000 ms (one per 50 ms).
#[test]
fn zego_rate_limit_20_per_second_21st_in_same_ms_rejected() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    spend(&mut d, 19);
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    let w = || Command::Write(Write::new("r", Actor::Admin).op(Op::set("k2", "v")));
    d.rejected("r", w(), Rejection::RateLimited);
    assert_eq!(
        d.profile.code(Rejection::RateLimited.class()),
        Some(660_300_005)
    );
    let t = d.now;
    d.now = Millis(t.0 + 49);
    d.rejected("r", w(), Rejection::RateLimited);
    d.now = Millis(t.0 + 50);
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k2", "v")));
    d.rejected("r", w(), Rejection::RateLimited);
    d.now = Millis(t.0 + 100);
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k3", "v")));
    d.check();
}

// SPEC §6 request rate, a token bucket; flow.rs: it starts full, so a
// whole second's requests pass at time 0, before any refill could have
// added them.
#[test]
fn the_rate_bucket_starts_full_at_time_zero() {
    let mut d = Driver::new(Profile::zego());
    d.now = Millis(0);
    d.create("r", "host");
    spend(&mut d, 20);
    assert_eq!(d.handle(read("r", None)), Err(Rejection::RateLimited));
    d.check();
}

// SPEC §7 Tencent 200/s (from Tencent's public docs, per SPEC §7 note).
#[test]
fn tencent_rate_limit_200_per_second() {
    let mut d = Driver::new(Profile::tencent());
    d.create("r", "host");
    spend(&mut d, 200);
    let w = || Command::Write(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    d.rejected("r", w(), Rejection::RateLimited);
    d.advance(5);
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    d.rejected("r", w(), Rejection::RateLimited);
    d.check();
}

// Seed 001 (Easemob) "调用频率上限 100 次/秒/App Key"; SPEC §7 100/s, for the
// whole application (all rooms share the bucket).
#[test]
fn easemob_rate_limit_100_per_second_per_application() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.create("r2", "host");
    spend(&mut d, 100);
    let (out, _) = d.run(read("r2", None));
    assert_eq!(out, Err(Rejection::RateLimited));
    d.advance(10);
    assert!(d.handle(read("r2", None)).is_ok());
    assert_eq!(d.handle(read("r", None)), Err(Rejection::RateLimited));
    d.check();
}

// lib.rs: the bucket starts full and holds at most `per_second` tokens, so a
// long idle period does not allow a bigger burst.
#[test]
fn rate_bucket_never_holds_more_than_one_second() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.advance(60_000);
    spend(&mut d, 20);
    assert_eq!(d.handle(read("r", None)), Err(Rejection::RateLimited));
    d.check();
}

// lib.rs: the rate is taken "*before* anything else is checked" and "a
// request that passes the rate check spends its token even if it is rejected
// afterwards".
#[test]
fn rejected_request_still_spends_its_token_and_rate_is_checked_first() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    for _ in 0..20 {
        let (out, _) = d.write(Write::new("nope", Actor::Admin).op(Op::set("k", "v")));
        assert_eq!(out, Err(Rejection::RoomNotFound));
    }
    d.rejected(
        "r",
        Command::Write(Write::new("r", Actor::Admin).op(Op::set("k", "v"))),
        Rejection::RateLimited,
    );
    let (out, _) = d.write(Write::new("nope", Actor::Admin).op(Op::set("k", "v")));
    assert_eq!(out, Err(Rejection::RateLimited));
    d.check();
}

// command.rs `is_rate_limited`: "Membership, room lifecycle and ticks are the
// server's own bookkeeping and never rate limited".
#[test]
fn membership_lifecycle_and_ticks_are_not_rate_limited() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    spend(&mut d, 20);
    assert_eq!(d.handle(read("r", None)), Err(Rejection::RateLimited));
    for i in 0..30 {
        d.join("r", &format!("m{i}"));
    }
    d.leave("r", "m0").0.unwrap();
    d.kick("r", "m1").0.unwrap();
    d.disconnect("r", "m2").0.unwrap();
    d.set_role("r", "m3", Role::Admin).0.unwrap();
    d.tick().0.unwrap();
    d.create("r2", "host");
    d.run(Command::DestroyRoom { room: "r2".into() }).0.unwrap();
    assert!(!Command::Tick.is_rate_limited());
    assert!(read("r", None).is_rate_limited());
    d.check();
}

// SPEC §7 NetEase request rate "—": no bucket at all.
#[test]
fn netease_has_no_request_rate() {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    spend(&mut d, 1_000);
    d.check();
}

// ---- grace timers against later sessions (SPEC §6, lib.rs Membership) -----

// lib.rs: a user who exited and came back holds a new, live connection; the
// old grace deadline must not end the new session.
#[test]
fn stale_grace_timer_does_not_expire_a_new_session() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + 1);
    d.leave("r", "u1").0.unwrap();
    d.now = Millis(t.0 + 2);
    d.join("r", "u1");
    d.now = Millis(t.0 + GRACE);
    let (_, evs) = d.tick();
    assert!(evs.is_empty(), "{evs:?}");
    assert!(d.present("r", "u1"));
    assert_eq!(d.connections("r", "u1"), 1);
    d.check();
}

// lib.rs: a re-join cancels the drop; a later disconnect starts a new grace
// from its own `now`, so the first deadline passes without effect.
#[test]
fn rejoin_then_disconnect_again_uses_the_new_deadline() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.now = Millis(t.0 + 10);
    d.join("r", "u1");
    d.now = Millis(t.0 + 20);
    d.disconnect("r", "u1").0.unwrap();
    assert_eq!(d.engine.poll_timeout(), Some(Millis(t.0 + 20 + GRACE)));
    d.now = Millis(t.0 + GRACE);
    let (_, evs) = d.tick();
    assert!(evs.is_empty());
    assert!(d.present("r", "u1"));
    d.now = Millis(t.0 + 20 + GRACE);
    let (_, evs) = d.tick();
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u1", ExitKind::Disconnected)]
    );
    d.check();
}

// SPEC §2 "destroy room: drops its ... members": pending grace timers go
// with it; a room created again under the same id is not touched by them.
#[test]
fn destroy_room_cancels_pending_grace() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    d.run(Command::DestroyRoom { room: "r".into() }).0.unwrap();
    assert_eq!(d.engine.poll_timeout(), None);
    d.create("r", "host");
    d.join("r", "u1");
    d.now = Millis(t.0 + GRACE);
    let (_, evs) = d.tick();
    assert!(evs.is_empty(), "{evs:?}");
    assert!(d.present("r", "u1"));
    d.check();
}

// SPEC §2 "exit: removes all the user's connections at once", dropped ones
// included: the exit is a kick and no expiry follows.
#[test]
fn kick_during_grace_is_kicked_and_clears_timer() {
    let mut d = easemob_with_u1();
    d.join("r", "u1");
    d.disconnect("r", "u1").0.unwrap();
    let (_, evs) = d.kick("r", "u1");
    assert_eq!(
        evs[0].changes,
        vec![
            exited_ch("u1", ExitKind::Kicked),
            del_ch("seat"),
            qrm_ch("mic")
        ]
    );
    assert_eq!(d.engine.poll_timeout(), None);
    d.check();
}

// lib.rs: "`Leave` removes a live connection" first; the dropped one then
// expires at its deadline and the user exits as `Disconnected`.
#[test]
fn leave_of_live_connection_leaves_dropped_one_to_expire() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u1");
    let t = d.now;
    d.disconnect("r", "u1").0.unwrap();
    let (_, evs) = d.leave("r", "u1");
    assert!(evs.is_empty());
    assert!(d.present("r", "u1"));
    assert_eq!(d.connections("r", "u1"), 1);
    assert_eq!(d.engine.poll_timeout(), Some(Millis(t.0 + GRACE)));
    d.now = Millis(t.0 + GRACE);
    let (_, evs) = d.tick();
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u1", ExitKind::Disconnected)]
    );
    d.check();
}

// ---- more flow (SPEC §6, lib.rs Notification flow) -----------------------

// lib.rs: `notify: false` produces no event, so it uses no budget.
#[test]
fn quiet_changes_use_no_notification_budget() {
    let mut d = netease_room();
    let quiet = Notify {
        notify: false,
        ..Notify::default()
    };
    for i in 0..30 {
        let (out, evs) = d.run(offer_with(
            "r",
            Actor::Admin,
            &format!("q{i}"),
            "v",
            false,
            quiet.clone(),
        ));
        assert!(out.is_ok());
        assert!(evs.is_empty());
    }
    for i in 0..20 {
        assert_eq!(
            offer_delivery(&mut d, &format!("n{i}"), Notify::default()),
            Delivery::Normal
        );
    }
    d.check();
}

// SPEC §6 "Notification flow per room": one room's burst does not spend
// another room's budget.
#[test]
fn flow_budget_is_per_room() {
    let mut d = netease_room();
    d.create("other", "host");
    d.advance(5_000);
    for i in 0..21 {
        offer_delivery(&mut d, &format!("n{i}"), Notify::default());
    }
    let (_, evs) = d.run(offer("other", Actor::Admin, "k", "v", false));
    assert_eq!(evs[0].delivery, Delivery::Normal);
    d.check();
}

// lib.rs: "a one-second window that opens at the first event after the
// previous one closed" — windows are not aligned to whole seconds.
#[test]
fn flow_window_opens_at_first_event_after_previous_closed() {
    let mut d = netease_room();
    let t = d.now;
    for i in 0..20 {
        offer_delivery(&mut d, &format!("a{i}"), Notify::default());
    }
    // The window [t, t+1000) closed; this event opens [t+1500, t+2500).
    d.now = Millis(t.0 + 1_500);
    assert_eq!(
        offer_delivery(&mut d, "b0", Notify::default()),
        Delivery::Normal
    );
    d.now = Millis(t.0 + 2_400);
    for i in 1..20 {
        assert_eq!(
            offer_delivery(&mut d, &format!("b{i}"), Notify::default()),
            Delivery::Normal,
            "event #{} of the window",
            i + 1
        );
    }
    assert_eq!(
        offer_delivery(&mut d, "b20", Notify::default()),
        Delivery::Overflow
    );
    d.check();
}

// lib.rs: "A user is *present* while it holds at least one connection, live
// or dropped-in-grace" — so it still passes Easemob's membership check
// (seed 001, 401) and NetEase's transient-offer check (seed 003, 302).
#[test]
fn user_in_grace_still_counts_as_member() {
    let mut d = easemob_with_u1();
    d.disconnect("r", "u1").0.unwrap();
    d.advance(GRACE - 1);
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "v")));
    d.run(offer("r", u("u1"), "m2", "v", true)).0.unwrap();
    d.advance(1);
    let (_, evs) = d.tick();
    assert_eq!(
        evs[0].changes,
        vec![
            exited_ch("u1", ExitKind::Disconnected),
            del_ch("seat"),
            del_ch("k"),
            qrm_ch("mic"),
            qrm_ch("m2"),
        ]
    );
    d.rejected(
        "r",
        Command::Write(Write::new("r", u("u1")).op(Op::set("k", "v"))),
        Rejection::NotInRoom,
    );
    d.check();
}
