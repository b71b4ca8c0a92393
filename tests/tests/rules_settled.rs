//! Rules settled when the reference model's independent reading of the
//! crate docs met the engine's (see the crate docs, "Queue", "Notification
//! flow" and "Membership"), and the regression test for the one engine bug
//! that reading found.

use roomstate::{
    Actor, Command, Delivery, Engine, HighPolicy, Millis, Notify, OpError, Profile, Rejection,
    Role, Success,
};

fn room(profile: Profile) -> Engine {
    let mut e = Engine::new(profile);
    let now = Millis(1_000);
    e.handle(
        now,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    )
    .unwrap();
    for u in ["host", "ann"] {
        e.handle(
            now,
            Command::Join {
                room: "r".into(),
                user: u.into(),
            },
        )
        .unwrap();
    }
    let mut sink = Vec::new();
    e.drain_events(&mut sink);
    e
}

fn offer(key: &str, notify: Notify) -> Command {
    Command::QueueOffer {
        room: "r".into(),
        operator: Actor::user("ann"),
        key: key.into(),
        value: "v".into(),
        transient: false,
        notify,
    }
}

fn reject_high() -> Notify {
    Notify {
        high: Some(HighPolicy::Reject),
        ..Notify::default()
    }
}

/// Regression (found by the differential test on `tiny_best_effort`): with a
/// high budget of 0 and no window open, a `Reject` command was accepted
/// and sent as `Normal`. 0 is never under 0: it must be refused.
#[test]
fn regression_high_budget_of_zero_refuses_reject_even_with_no_window_open() {
    let mut p = Profile::netease();
    p.limits.notification_flow = Some(roomstate::Flow {
        normal_per_second: 20,
        high_per_second: 0,
    });
    let mut e = room(p);
    // 5 s later: the window the joins opened has closed.
    let out = e.handle(Millis(6_000), offer("k", reject_high()));
    assert_eq!(out, Err(Rejection::NotificationBudget));
    assert!(e.poll_event().is_none());
    assert_eq!(e.room("r").unwrap().queue_len(), 0);
    // Downgrade goes out as Normal instead.
    let notify = Notify {
        high: Some(HighPolicy::Downgrade),
        ..Notify::default()
    };
    e.handle(Millis(6_000), offer("k", notify)).unwrap();
    assert_eq!(e.poll_event().unwrap().delivery, Delivery::Normal);
    e.check_invariants().unwrap();
}

/// NetEase flow control (seed 003) and the crate docs: the budget is judged
/// only for a command that will emit a notification. `notify: false` emits
/// none, so it is never refused; a poll of a missing key fails as missing.
#[test]
fn spent_high_budget_refuses_only_commands_that_would_notify() {
    let mut e = room(Profile::netease());
    let now = Millis(2_000);
    for i in 0..10 {
        e.handle(now, offer(&format!("k{i}"), reject_high()))
            .unwrap();
    }
    assert_eq!(
        e.handle(now, offer("k10", reject_high())),
        Err(Rejection::NotificationBudget)
    );
    let silent = Notify {
        notify: false,
        ..reject_high()
    };
    let seq = e.room("r").unwrap().seq();
    e.handle(now, offer("k10", silent)).unwrap();
    assert_eq!(
        e.room("r").unwrap().seq(),
        seq + 1,
        "a silent change still counts"
    );
    let poll_missing = Command::QueuePoll {
        room: "r".into(),
        operator: Actor::Admin,
        key: Some("nope".into()),
        notify: reject_high(),
    };
    assert_eq!(
        e.handle(now, poll_missing),
        Err(Rejection::Op {
            index: 0,
            error: OpError::NotFound
        })
    );
    e.check_invariants().unwrap();
}

/// Crate docs "Queue": a polled key is a plain lookup, so even a malformed
/// key is simply not found.
#[test]
fn poll_of_a_malformed_key_is_not_found() {
    let mut e = room(Profile::netease());
    e.handle(Millis(2_000), offer("k", Notify::default()))
        .unwrap();
    for key in ["", &"x".repeat(200)] {
        let poll = Command::QueuePoll {
            room: "r".into(),
            operator: Actor::Admin,
            key: Some(key.into()),
            notify: Notify::default(),
        };
        assert_eq!(
            e.handle(Millis(2_000), poll),
            Err(Rejection::Op {
                index: 0,
                error: OpError::NotFound
            })
        );
    }
}

/// Crate docs "Queue": request shape before permission, as a write checks
/// its size before membership. A member's empty batch update is `Empty`,
/// its well-formed one `NoPermission`; an absent user's transient offer of
/// an empty key is `NotInRoom` (presence before element shape).
#[test]
fn queue_checks_shape_then_permission_then_elements() {
    let mut e = room(Profile::netease());
    let update = |elements: Vec<(&str, &str)>| Command::QueueBatchUpdate {
        room: "r".into(),
        operator: Actor::user("ann"),
        elements: elements
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        notify: Notify::default(),
    };
    assert_eq!(
        e.handle(Millis(2_000), update(vec![])),
        Err(Rejection::Empty)
    );
    assert_eq!(
        e.handle(Millis(2_000), update(vec![("", "v")])),
        Err(Rejection::NoPermission)
    );
    e.handle(
        Millis(2_000),
        Command::SetRole {
            room: "r".into(),
            user: "ann".into(),
            role: Role::Admin,
        },
    )
    .unwrap();
    assert_eq!(
        e.handle(Millis(2_000), update(vec![("", "v")])),
        Err(Rejection::Op {
            index: 0,
            error: OpError::KeyEmpty
        })
    );
    let absent = Command::QueueOffer {
        room: "r".into(),
        operator: Actor::user("zed"),
        key: "".into(),
        value: "v".into(),
        transient: true,
        notify: Notify::default(),
    };
    assert_eq!(e.handle(Millis(2_000), absent), Err(Rejection::NotInRoom));
}

/// Crate docs "Membership": a repeated drop report for a user whose
/// connections have all dropped already changes nothing, and in particular
/// does not push the grace deadline back.
#[test]
fn a_repeated_disconnect_is_a_no_op_and_keeps_the_deadline() {
    let mut e = room(Profile::netease());
    let drop_ann = || Command::Disconnect {
        room: "r".into(),
        user: "ann".into(),
    };
    e.handle(Millis(2_000), drop_ann()).unwrap();
    let deadline = e.poll_timeout().unwrap();
    assert_eq!(e.handle(Millis(9_000), drop_ann()), Ok(Success::Done));
    assert_eq!(e.poll_timeout(), Some(deadline));
    assert!(e.poll_event().is_none());
    e.handle(deadline, Command::Tick).unwrap();
    assert!(!e.room("r").unwrap().is_present("ann"));
    e.check_invariants().unwrap();
}

/// Regression (found by `cargo fuzz run commands`; input kept in
/// `fuzz/regressions/commands/set_role_empty_user_same_role`): `SetRole` of
/// an empty user id to the role it already "has" (`Member`) was a no-op in
/// the model and `InvalidParameter` in the engine. The crate docs now say:
/// commands that record a user id validate it before anything else.
#[test]
fn regression_set_role_of_an_empty_user_id_is_invalid_even_if_unchanged() {
    let mut e = room(Profile::zego());
    for role in [Role::Member, Role::Admin] {
        let cmd = Command::SetRole {
            room: "r".into(),
            user: "".into(),
            role,
        };
        assert_eq!(
            e.handle(Millis(2_000), cmd),
            Err(Rejection::InvalidParameter)
        );
        let missing_room = Command::SetRole {
            room: "nope".into(),
            user: "".into(),
            role,
        };
        assert_eq!(
            e.handle(Millis(2_000), missing_room),
            Err(Rejection::InvalidParameter)
        );
    }
    assert!(e.poll_event().is_none());
}

/// Regression (found by `cargo fuzz run roundtrip`; input kept in
/// `fuzz/regressions/roundtrip/write_by_empty_user_id`): a write by
/// `Actor::User("")` in a profile that does not require membership stored
/// an attribute owned by the empty id, and the engine's own snapshot was
/// then refused on restore. An empty operator is now `InvalidParameter`.
#[test]
fn regression_an_empty_user_operator_is_invalid_and_changes_nothing() {
    let mut e = room(Profile::zego());
    let write = roomstate::Write::new("r", Actor::user("")).op(roomstate::Op::set("k", "v"));
    assert_eq!(
        e.handle(Millis(2_000), Command::Write(write)),
        Err(Rejection::InvalidParameter)
    );
    assert_eq!(
        e.handle(Millis(2_000), offer("k", Notify::default())),
        Ok(Success::Done)
    );
    let by_nobody = Command::QueuePoll {
        room: "r".into(),
        operator: Actor::user(""),
        key: None,
        notify: Notify::default(),
    };
    assert_eq!(
        e.handle(Millis(2_000), by_nobody),
        Err(Rejection::InvalidParameter)
    );
    assert_eq!(e.room("r").unwrap().attribute_count(), 0);
    assert_eq!(e.room("r").unwrap().queue_len(), 1);
    let bytes = e.snapshot();
    assert_eq!(Engine::restore(&bytes).unwrap().snapshot(), bytes);
}

/// Every command that names an operator, with `who` as that operator.
fn commands_with_operator(room: &str, who: &Actor) -> Vec<Command> {
    let op = || who.clone();
    vec![
        Command::Write(roomstate::Write::new(room, op()).op(roomstate::Op::set("k", "v"))),
        Command::RevokeLock {
            room: room.into(),
            name: "L".into(),
            owner: "ann".into(),
            operator: op(),
        },
        Command::QueueInit {
            room: room.into(),
            operator: op(),
            capacity: 10,
        },
        Command::QueueDrop {
            room: room.into(),
            operator: op(),
        },
        Command::QueueOffer {
            room: room.into(),
            operator: op(),
            key: "q".into(),
            value: "v".into(),
            transient: false,
            notify: Notify::default(),
        },
        Command::QueueBatchOffer {
            room: room.into(),
            operator: op(),
            elements: vec![roomstate::NewElement::new("q2", "v")],
            transient: false,
            notify: Notify::default(),
        },
        Command::QueueBatchUpdate {
            room: room.into(),
            operator: op(),
            elements: vec![("q".into(), "w".into())],
            notify: Notify::default(),
        },
        Command::QueuePoll {
            room: room.into(),
            operator: op(),
            key: None,
            notify: Notify::default(),
        },
        Command::counter(room, op(), "c", roomstate::CounterOp::Increase(1)),
        Command::CounterDelete {
            room: room.into(),
            operator: op(),
            keys: None,
        },
    ]
}

/// lib.rs: "A command whose operator is `Actor::User("")` is
/// `InvalidParameter` right after the rate check", for each of the ten
/// commands that name an operator: in a room where the same command by
/// `Admin` is not refused as invalid, and in a room that does not exist
/// (the check comes before the room is looked up). Nothing changes.
#[test]
fn every_command_with_an_empty_operator_is_invalid_and_changes_nothing() {
    // Without a request rate: a refused request still takes its token
    // (the rate check comes first), and this test looks at the rest.
    let mut p = Profile::easemob();
    p.limits.request_rate = None;
    let mut e = room(p);
    // The clock is part of the snapshot: move it first.
    e.handle(Millis(2_000), Command::Tick).unwrap();
    while e.poll_event().is_some() {}
    let before = e.snapshot();
    for room in ["r", "nope"] {
        for cmd in commands_with_operator(room, &Actor::user("")) {
            let what = format!("{cmd:?}");
            assert_eq!(
                e.handle(Millis(2_000), cmd),
                Err(Rejection::InvalidParameter),
                "{what}"
            );
        }
    }
    assert!(e.poll_event().is_none());
    assert_eq!(e.snapshot(), before);
    // The same commands by Admin, in order, are not invalid: the empty id
    // is what was refused.
    let mut control = room(p);
    for cmd in commands_with_operator("r", &Actor::Admin) {
        let what = format!("{cmd:?}");
        let out = control.handle(Millis(2_000), cmd);
        assert_ne!(out, Err(Rejection::InvalidParameter), "{what}");
    }
}
