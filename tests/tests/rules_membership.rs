//! Membership, roles, room lifecycle and auto-delete on exit, one test per
//! rule. Each test cites its source: a seed, a SPEC section, or the choices
//! written down in the crate docs (`core/src/lib.rs`).

mod common;

use common::*;
use roomstate::{
    Actor, Cause, Change, Command, Delivery, ExitKind, Op, Profile, Rejection, Role, Success, Write,
};

fn create(room: &str, creator: &str) -> Command {
    Command::CreateRoom {
        room: room.into(),
        creator: creator.into(),
    }
}

fn destroy(room: &str) -> Command {
    Command::DestroyRoom { room: room.into() }
}

// SPEC §2 "create room: new empty room"; lib.rs: creation emits `RoomCreated`
// with seq 1; the creator has role `Creator` but is not present until it joins.
#[test]
fn create_room_emits_room_created_seq_1_creator_role_not_present() {
    let mut d = Driver::new(Profile::easemob());
    let (out, evs) = d.run(create("r", "host"));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e.room, "r");
    assert_eq!(e.seq, 1);
    assert_eq!(e.at, d.now);
    assert_eq!(e.cause, Cause::RoomCreated);
    assert_eq!(e.delivery, Delivery::Normal);
    assert_eq!(
        e.changes,
        vec![Change::RoomCreated {
            creator: "host".into()
        }]
    );
    assert_eq!(d.seq("r"), 1);
    assert_eq!(d.role("r", "host"), Role::Creator);
    assert!(!d.present("r", "host"));
    assert_eq!(d.connections("r", "host"), 0);
    assert!(d.attrs("r").is_empty());
    assert!(d.queue("r").is_empty());
    // Not present, so an Easemob write by the creator is not allowed yet.
    let cmd = Command::Write(Write::new("r", u("host")).op(Op::set("k", "v")));
    d.rejected("r", cmd, Rejection::NotInRoom);
    d.check();
}

// SPEC §2 "error if it exists (Tencent 100003)".
#[test]
fn create_existing_room_is_room_exists_100003() {
    let mut d = Driver::new(Profile::tencent());
    d.create("r", "host");
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    d.rejected("r", create("r", "other"), Rejection::RoomExists);
    assert_eq!(d.role("r", "host"), Role::Creator);
    assert_eq!(d.role("r", "other"), Role::Member);
    assert_eq!(d.profile.code(Rejection::RoomExists.class()), Some(100_003));
    d.check();
}

// lib.rs: "Room id (non-empty)", "Creator's user id (non-empty)", "User id
// (non-empty)" — an empty id is an invalid parameter.
#[test]
fn empty_room_or_user_id_is_invalid_parameter() {
    let mut d = Driver::new(Profile::zego());
    let (out, evs) = d.run(create("", "host"));
    assert_eq!(out, Err(Rejection::InvalidParameter));
    assert!(evs.is_empty());
    let (out, _) = d.run(create("r", ""));
    assert_eq!(out, Err(Rejection::InvalidParameter));
    assert!(!d.exists("r") && !d.exists(""));
    d.create("r", "host");
    d.rejected("r", join("r", ""), Rejection::InvalidParameter);
    d.check();
}

// SPEC §2 "join: adds a connection"; lib.rs: a first connection emits
// `MemberJoined` (cause `Membership`) and advances seq; a second connection
// changes connection counts only (no event, no number).
#[test]
fn first_join_emits_member_joined_second_connection_is_silent() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    let evs = d.join("r", "u1");
    assert_eq!(
        evs,
        vec![event(
            "r",
            2,
            d.now,
            u("u1"),
            Cause::Membership,
            vec![joined_ch("u1")],
        )]
    );
    assert_eq!(d.seq("r"), 2);
    assert!(d.join("r", "u1").is_empty());
    assert_eq!(d.seq("r"), 2);
    assert_eq!(d.connections("r", "u1"), 2);
    d.check();
}

// SPEC §2 "leave: removes one connection; at zero the user exits"; lib.rs: a
// leave that leaves connections behind is silent.
#[test]
fn second_connection_keeps_user_present() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u1");
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "v")));
    let s0 = d.seq("r");
    let (out, evs) = d.leave("r", "u1");
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    assert!(d.present("r", "u1"));
    assert_eq!(d.connections("r", "u1"), 1);
    assert_eq!(d.seq("r"), s0);
    assert!(d.attr("r", "k").is_some(), "auto-delete waits for the exit");
    let (out, evs) = d.leave("r", "u1");
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::OwnerExited,
            vec![exited_ch("u1", ExitKind::Left), del_ch("k")],
        )]
    );
    assert!(!d.present("r", "u1"));
    assert_eq!(d.connections("r", "u1"), 0);
    d.check();
}

// SPEC §4 "Auto-delete on exit": every auto-delete attribute and transient
// queue element the user owns goes in one event with reason "owner exited";
// lib.rs: `MemberExited`, then the attributes in listing order, then the
// queue elements in queue order. Key "x" became u1's last but is listed first.
#[test]
fn last_leave_removes_auto_delete_keys_in_one_owner_exited_event() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u2");
    d.write_all(Write::new("r", u("u2")).op(Op::set("x", "u2")));
    d.write_all(
        Write::new("r", u("u1"))
            .op(Op::set("a", "1"))
            .op(Op::set("b", "2").auto_delete(false))
            .op(Op::set("c", "3")),
    );
    d.write_all(Write::new("r", u("u2")).op(Op::set("d", "4")));
    // Easemob: a forced overwrite makes the operator the owner.
    d.write_all(Write::new("r", u("u1")).op(Op::set("x", "u1")).forced());
    for (key, owner, transient) in [("q1", "u1", true), ("q2", "u1", false), ("q3", "u2", true)] {
        let (out, _) = d.run(offer("r", u(owner), key, "v", transient));
        assert!(out.is_ok(), "{out:?}");
    }
    d.run(offer("r", u("u1"), "q0", "v", true)).0.unwrap();
    assert_eq!(d.queue_keys("r"), ["q1", "q2", "q3", "q0"]);
    let s0 = d.seq("r");

    let (out, evs) = d.leave("r", "u1");
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::OwnerExited,
            vec![
                exited_ch("u1", ExitKind::Left),
                del_ch("x"),
                del_ch("a"),
                del_ch("c"),
                qrm_ch("q1"),
                qrm_ch("q0"),
            ],
        )]
    );
    assert_eq!(d.keys("r"), ["b", "d"]);
    assert_eq!(d.queue_keys("r"), ["q2", "q3"]);
    assert_eq!(d.seq("r"), s0 + 1);
    d.check();
}

// SPEC §2 "exit: removes all the user's connections at once (kick)"; event.rs:
// the operator of a kick is `Admin`, the exit kind `Kicked`.
#[test]
fn kick_removes_all_connections_in_one_exit_event() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    for _ in 0..3 {
        d.join("r", "u1");
    }
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "v")));
    let s0 = d.seq("r");
    let (out, evs) = d.kick("r", "u1");
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::OwnerExited,
            vec![exited_ch("u1", ExitKind::Kicked), del_ch("k")],
        )]
    );
    assert!(!d.present("r", "u1"));
    assert_eq!(d.connections("r", "u1"), 0);
    d.check();
}

// lib.rs: "Leave, disconnect and exit of a user who is not present:
// `Rejection::NotInRoom`."
#[test]
fn leave_disconnect_exit_of_absent_user_is_not_in_room() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.leave("r", "u1").0.unwrap();
    for cmd in [
        Command::Leave {
            room: "r".into(),
            user: "u1".into(),
        },
        Command::Disconnect {
            room: "r".into(),
            user: "u1".into(),
        },
        Command::Exit {
            room: "r".into(),
            user: "u1".into(),
        },
        Command::Leave {
            room: "r".into(),
            user: "host".into(),
        },
    ] {
        d.rejected("r", cmd, Rejection::NotInRoom);
    }
    d.check();
}

// SPEC §2: membership commands on an unknown room.
#[test]
fn membership_commands_on_unknown_room_are_room_not_found() {
    let mut d = Driver::new(Profile::zego());
    for cmd in [
        join("nope", "u1"),
        Command::Leave {
            room: "nope".into(),
            user: "u1".into(),
        },
        Command::Exit {
            room: "nope".into(),
            user: "u1".into(),
        },
        Command::SetRole {
            room: "nope".into(),
            user: "u1".into(),
            role: Role::Admin,
        },
        destroy("nope"),
    ] {
        let (out, evs) = d.run(cmd);
        assert_eq!(out, Err(Rejection::RoomNotFound));
        assert!(evs.is_empty());
    }
    assert!(!d.exists("nope"));
    d.check();
}

// Seed 004 (ZEGO AutoDelete): "如果 FromUserId 不在房间内,则会在其先进入房间后,
// 然后再退出时触发删除操作"; SPEC §4 last sentence.
#[test]
fn auto_delete_key_by_non_member_goes_on_next_exit() {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.write_all(Write::new("r", u("u9")).op(Op::set("k", "v").auto_delete(true)));
    assert!(d.attr("r", "k").unwrap().auto_delete);
    // Someone else's exit does not touch it.
    d.leave("r", "u1").0.unwrap();
    assert!(d.attr("r", "k").is_some());
    // u9 joins: still there.
    d.join("r", "u9");
    assert!(d.attr("r", "k").is_some());
    let s0 = d.seq("r");
    let (_, evs) = d.leave("r", "u9");
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u9"),
            Cause::OwnerExited,
            vec![exited_ch("u9", ExitKind::Left), del_ch("k")],
        )]
    );
    assert!(d.attr("r", "k").is_none());
    d.check();
}

// SPEC §2 / command.rs: `Admin` "never exits, so what it owns is never
// auto-deleted".
#[test]
fn admin_owned_auto_delete_keys_are_never_removed() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "host");
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    assert!(d.attr("r", "k").unwrap().auto_delete);
    d.leave("r", "u1").0.unwrap();
    d.kick("r", "host").0.unwrap();
    assert!(d.attr("r", "k").is_some());
    d.check();
}

// SPEC §4: auto-delete removes what the user *owns*: after a forced
// overwrite (Easemob: the operator becomes the owner) the key follows its
// new owner, not its creator.
#[test]
fn ownership_transfer_moves_auto_delete_to_new_owner() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u2");
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    d.write_all(Write::new("r", u("u2")).op(Op::set("k", "b")).forced());
    let s0 = d.seq("r");
    let (_, evs) = d.leave("r", "u1");
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].changes, vec![exited_ch("u1", ExitKind::Left)]);
    assert_eq!(d.value("r", "k"), "b");
    let (_, evs) = d.leave("r", "u2");
    assert_eq!(evs[0].seq, s0 + 2);
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u2", ExitKind::Left), del_ch("k")]
    );
    d.check();
}

// SPEC §4: only keys the user owns *with auto-delete set* go; a key deleted
// and re-created by someone else, or whose flag was cleared, stays.
#[test]
fn exit_skips_keys_no_longer_owned_or_no_longer_auto_delete() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.write_all(
        Write::new("r", u("u1"))
            .op(Op::set("gone", "1"))
            .op(Op::set("cleared", "1")),
    );
    d.write_all(Write::new("r", Actor::Admin).op(Op::delete("gone")));
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("gone", "admin's")));
    d.write_all(Write::new("r", u("u1")).op(Op::set("cleared", "2").auto_delete(false)));
    let (_, evs) = d.leave("r", "u1");
    assert_eq!(evs[0].changes, vec![exited_ch("u1", ExitKind::Left)]);
    assert_eq!(d.keys("r"), ["cleared", "gone"]);
    d.check();
}

// SPEC §1: membership is per room: an exit from one room leaves the user's
// keys in another room alone.
#[test]
fn exit_in_one_room_keeps_keys_in_other_rooms() {
    let mut d = Driver::new(Profile::easemob());
    for r in ["a", "b"] {
        d.create(r, "host");
        d.join(r, "u1");
        d.write_all(Write::new(r, u("u1")).op(Op::set("k", r)));
    }
    let sb = d.seq("b");
    let (_, evs) = d.leave("a", "u1");
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].room, "a");
    assert!(d.attr("a", "k").is_none());
    assert_eq!(d.value("b", "k"), "b");
    assert!(d.present("b", "u1"));
    assert_eq!(d.seq("b"), sb);
    d.check();
}

// SPEC §2 "set role: Member / Admin"; lib.rs: a role change emits `RoleSet`
// (cause `Membership`) and advances seq; any user, present or not.
#[test]
fn set_role_admin_emits_role_set() {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    let s0 = d.seq("r");
    let (out, evs) = d.set_role("r", "u1", Role::Admin);
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].seq, s0 + 1);
    assert_eq!(evs[0].cause, Cause::Membership);
    assert_eq!(
        evs[0].changes,
        vec![Change::RoleSet {
            user: "u1".into(),
            role: Role::Admin
        }]
    );
    assert_eq!(d.role("r", "u1"), Role::Admin);
    assert!(!d.present("r", "u1"));
    let (_, evs) = d.set_role("r", "u1", Role::Member);
    assert_eq!(evs[0].seq, s0 + 2);
    assert_eq!(d.role("r", "u1"), Role::Member);
    d.check();
}

// lib.rs: "`Creator`, or any change of the creator's role, is
// `Rejection::InvalidParameter`".
#[test]
fn creator_role_cannot_be_given_or_changed() {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    d.join("r", "u1");
    for (user, role) in [
        ("u1", Role::Creator),
        ("host", Role::Admin),
        ("host", Role::Member),
        ("host", Role::Creator),
    ] {
        let cmd = Command::SetRole {
            room: "r".into(),
            user: user.into(),
            role,
        };
        d.rejected("r", cmd, Rejection::InvalidParameter);
    }
    assert_eq!(d.role("r", "host"), Role::Creator);
    assert_eq!(d.role("r", "u1"), Role::Member);
    d.check();
}

// lib.rs: "setting the role a user has is a no-op" (SPEC §3: no event, no
// sequence number).
#[test]
fn set_same_role_is_a_no_op() {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    d.set_role("r", "u1", Role::Admin).0.unwrap();
    let s0 = d.seq("r");
    let (out, evs) = d.set_role("r", "u1", Role::Admin);
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    let (out, evs) = d.set_role("r", "u2", Role::Member);
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    assert_eq!(d.seq("r"), s0);
    d.check();
}

// SPEC §2 "destroy room: drops its attributes, queue and members; one event";
// lib.rs: `RoomDestroyed` numbered last + 1; the room's number is gone and a
// room created again starts over.
#[test]
fn destroy_room_emits_one_room_destroyed_event_and_drops_everything() {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "v")));
    d.run(offer("r", u("u1"), "q", "v", true)).0.unwrap();
    d.events();
    let s0 = d.seq("r");
    let (out, evs) = d.run(destroy("r"));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::RoomDestroyed,
            vec![Change::RoomDestroyed],
        )]
    );
    assert!(!d.exists("r"));
    let (out, _) = d.write(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    assert_eq!(out, Err(Rejection::RoomNotFound));
    let (out, _) = d.run(read("r", None));
    assert_eq!(out, Err(Rejection::RoomNotFound));

    d.create("r", "other");
    assert_eq!(d.seq("r"), 1);
    assert!(d.attrs("r").is_empty());
    assert!(d.queue("r").is_empty());
    assert!(!d.present("r", "u1"));
    assert_eq!(d.role("r", "host"), Role::Member);
    assert_eq!(d.role("r", "other"), Role::Creator);
    d.check();
}

// lib.rs: "Events come out in the order they happened, across rooms", each
// with its own room's sequence numbers.
#[test]
fn events_across_rooms_come_out_in_order() {
    let mut d = Driver::new(Profile::zego());
    d.handle(create("a", "h")).unwrap();
    d.handle(create("b", "h")).unwrap();
    d.handle(join("b", "u1")).unwrap();
    d.handle(join("a", "u1")).unwrap();
    d.handle(Command::Write(
        Write::new("b", u("u1")).op(Op::set("k", "v")),
    ))
    .unwrap();
    let got: Vec<(String, u64)> = d
        .events()
        .into_iter()
        .map(|e| (e.room.to_string(), e.seq))
        .collect();
    assert_eq!(
        got,
        [
            ("a".to_string(), 1),
            ("b".to_string(), 1),
            ("b".to_string(), 2),
            ("a".to_string(), 2),
            ("b".to_string(), 3),
        ]
    );
    d.check();
}

// engine.rs surface: `poll_event` yields the same events one at a time.
#[test]
fn poll_event_yields_events_one_by_one() {
    let mut d = Driver::new(Profile::zego());
    d.handle(create("a", "h")).unwrap();
    d.handle(join("a", "u1")).unwrap();
    let e1 = d.engine.poll_event().unwrap();
    let e2 = d.engine.poll_event().unwrap();
    assert_eq!((e1.seq, e2.seq), (1, 2));
    assert!(d.engine.poll_event().is_none());
    assert!(d.events().is_empty());
    d.check();
}
