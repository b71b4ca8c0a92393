//! Review 3 (issue 9): a room with every rare part (locks held and
//! waited for, counters, TTL deadlines, grace deadlines), an indexed
//! attribute store (past 32 keys, with auto-delete owner lists and
//! non-ASCII values of several length widths) and an indexed queue, saved
//! with `snapshot_room` and `snapshot`, restored into fresh engines: the
//! same bytes again, the invariants, and the same behaviour afterwards
//! (the owners' exits, the TTLs and the grace deadlines fire alike).

use roomstate::{Actor, Command, CounterOp, Engine, Event, Millis, Notify, Op, Profile, Write};

fn ok(e: &mut Engine, t: u64, c: Command) {
    let shown = format!("{c:?}");
    let out = e.handle(Millis(t), c);
    assert!(out.is_ok(), "{}: {out:?}", &shown[..shown.len().min(200)]);
}

fn build() -> Engine {
    let mut p = Profile::netease();
    p.limits.max_keys_per_room = None;
    p.limits.max_room_value_bytes = None;
    p.limits.max_engine_value_bytes = None;
    p.limits.max_value_len = 70_000;
    p.limits.max_counters_per_room = Some(100);
    let mut e = Engine::new(p);
    let r = || "r".into();
    ok(
        &mut e,
        1,
        Command::CreateRoom {
            room: r(),
            creator: "host".into(),
        },
    );
    for u in ["host", "a", "b", "c", "d"] {
        ok(
            &mut e,
            1,
            Command::Join {
                room: r(),
                user: u.into(),
            },
        );
    }
    for i in 0..40 {
        let who = ["a", "b", "c", "d"][i % 4];
        let v = match i % 5 {
            0 => "é".repeat(70),
            1 => "€".repeat(i * 30),
            2 => "x".repeat(0x7F),
            3 => "😀".repeat(i),
            _ => String::new(),
        };
        let mut op = Op::set(format!("k{i}").as_str(), v.as_str()).auto_delete(i % 3 != 0);
        if i % 7 == 0 {
            op = op.ttl(10_000 + i as u64);
        }
        ok(
            &mut e,
            2,
            Command::Write(Write::new("r", Actor::user(who)).op(op)),
        );
    }
    ok(
        &mut e,
        2,
        Command::Write(
            Write::new("r", Actor::Admin).op(Op::set("big", "y".repeat(0x1_0001).as_str())),
        ),
    );
    for i in 0..3 {
        ok(
            &mut e,
            3,
            Command::Counter {
                room: r(),
                operator: Actor::Admin,
                key: format!("c{i}").as_str().into(),
                op: CounterOp::Set(i - 1),
                min: None,
                max: None,
            },
        );
    }
    ok(
        &mut e,
        3,
        Command::QueueInit {
            room: r(),
            operator: Actor::Admin,
            capacity: 100,
        },
    );
    for i in 0..40 {
        let who = ["a", "b", "c", "d"][i % 4];
        ok(
            &mut e,
            3,
            Command::QueueOffer {
                room: r(),
                operator: Actor::user(who),
                key: format!("q{i}").as_str().into(),
                value: "€".repeat(i).as_str().into(),
                transient: i % 2 == 0,
                notify: Notify::default(),
            },
        );
    }
    ok(
        &mut e,
        4,
        Command::Disconnect {
            room: r(),
            user: "c".into(),
        },
    );
    ok(
        &mut e,
        4,
        Command::Disconnect {
            room: r(),
            user: "d".into(),
        },
    );
    e.drain_events(&mut Vec::new());
    e.check_invariants().unwrap();
    e
}

/// Drives an engine on: exits, a rejoin, the deadlines; returns the events.
fn drive(e: &mut Engine) -> Vec<Event> {
    let r = || "r".into();
    let mut evs = Vec::new();
    ok(
        e,
        5,
        Command::Leave {
            room: r(),
            user: "a".into(),
        },
    );
    ok(
        e,
        5,
        Command::Exit {
            room: r(),
            user: "b".into(),
        },
    );
    ok(
        e,
        6,
        Command::Join {
            room: r(),
            user: "c".into(),
        },
    );
    ok(e, 1_000_000, Command::Tick);
    e.drain_events(&mut evs);
    e.check_invariants().unwrap();
    evs
}

#[test]
fn review3_a_room_with_every_part_survives_snapshot_and_restore() {
    let mut e = build();
    let whole = e.snapshot();
    let room = e.snapshot_room("r").unwrap();
    let mut back = Engine::restore(&whole).unwrap();
    back.check_invariants().unwrap();
    assert_eq!(back.snapshot(), whole);
    let mut p = *e.profile();
    p.limits.max_keys_per_room = None;
    let mut one = Engine::new(p);
    one.handle(Millis(4), Command::Tick).unwrap();
    one.restore_room(&room).unwrap();
    one.check_invariants().unwrap();
    assert_eq!(one.snapshot_room("r").unwrap(), room);
    let want = drive(&mut e);
    assert!(want.len() >= 3, "{}", want.len());
    let got = drive(&mut back);
    assert_eq!(got, want);
    let got = drive(&mut one);
    assert_eq!(got, want);
    assert_eq!(back.snapshot_room("r"), e.snapshot_room("r"));
    assert_eq!(one.snapshot_room("r"), e.snapshot_room("r"));
}
