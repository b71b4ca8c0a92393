//! Snapshot format versions: version 2 keeps counters and TTL deadlines;
//! version-1 snapshots (written before either existed) still restore.

use roomstate::{
    Actor, Command, CounterOp, Engine, Millis, Op, Profile, Success, Write, SNAPSHOT_VERSION,
};

/// Written by the engine at commit 8d14a87 (format version 1) with
/// `Profile::tencent()` at t = 1 000 000: room `r1` created by `host`,
/// `host` joined, `guest` joined then disconnected (grace until
/// 1 030 000), attributes `title` = "Friday quiz" and `seat` = "1" set by
/// `host`, a transient queue element `mic` offered by `host`; room `r2`
/// created by `other`.
const V1: &[u8] = include_bytes!("../fixtures/snapshot_v1_tencent.bin");

#[test]
fn version_1_snapshot_restores() {
    assert_eq!(SNAPSHOT_VERSION, 2);
    assert_eq!(V1[4], 1, "the fixture is a version-1 snapshot");
    let mut e = Engine::restore(V1).unwrap();
    e.check_invariants().unwrap();
    // The profile is the one written, with the built-ins' values for the
    // limits version 1 did not have. Its codes are those of 8d14a87: too
    // many keys in a request was 100002 then (100500 since).
    let mut want = Profile::tencent();
    want.codes.too_many_ops = Some(100_002);
    assert_eq!(*e.profile(), want);
    assert_eq!(e.now(), Millis(1_000_000));
    let r1 = e.room("r1").unwrap();
    assert_eq!(r1.creator().as_str(), "host");
    let attrs: Vec<(String, String)> = r1
        .attributes()
        .map(|a| (a.key.to_string(), a.value.to_string()))
        .collect();
    assert_eq!(
        attrs,
        [
            ("title".into(), "Friday quiz".into()),
            ("seat".into(), "1".into())
        ]
    );
    assert_eq!(r1.queue_element("mic").unwrap().owner, Some("host"));
    assert_eq!(r1.live_connections("host"), 1);
    assert_eq!(
        r1.dropped_connections("guest"),
        Some((1, Millis(1_030_000)))
    );
    assert_eq!(r1.counters().count(), 0);
    assert!(e.room("r2").is_some());
    // It runs on: the guest's grace expires, counters work.
    assert_eq!(e.poll_timeout(), Some(Millis(1_030_000)));
    let out = e.handle(
        Millis(1_030_000),
        Command::Counter {
            room: "r1".into(),
            operator: Actor::Admin,
            key: "likes".into(),
            op: CounterOp::Increase(1),
            min: None,
            max: None,
        },
    );
    assert!(matches!(out, Ok(Success::Counter { value: 1, .. })));
    assert!(!e.room("r1").unwrap().is_present("guest"));
    // And it is written back as version 2.
    let again = e.snapshot();
    assert_eq!(again[4], 2);
    let back = Engine::restore(&again).unwrap();
    assert_eq!(back.snapshot(), again);
}

#[test]
fn version_1_room_snapshot_restores_into_a_version_2_engine() {
    let full = Engine::restore(V1).unwrap();
    // Rewrite one room as version 1 is not possible any more; check the
    // room-only path with version 2 bytes instead, then that a version-1
    // whole snapshot's profile matches a fresh built-in (which the
    // room-only restore requires).
    let bytes = full.snapshot_room("r1").unwrap();
    let mut e = Engine::new(*full.profile());
    e.restore_room(&bytes).unwrap();
    e.check_invariants().unwrap();
    assert_eq!(e.room("r1").unwrap().attribute_count(), 2);
}

#[test]
fn version_2_keeps_counters_and_ttl_deadlines() {
    let mut e = Engine::new(Profile::tencent());
    let t = Millis(5_000);
    e.handle(
        t,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    )
    .unwrap();
    for (k, op) in [("b", CounterOp::Set(-4)), ("a", CounterOp::Increase(9))] {
        e.handle(
            t,
            Command::Counter {
                room: "r".into(),
                operator: Actor::Admin,
                key: k.into(),
                op,
                min: None,
                max: None,
            },
        )
        .unwrap();
    }
    e.handle(
        t,
        Command::Write(
            Write::new("r", Actor::Admin)
                .op(Op::set("short", "v").ttl(1_000))
                .op(Op::set("long", "v").ttl(60_000))
                .op(Op::set("plain", "v")),
        ),
    )
    .unwrap();
    let bytes = e.snapshot();
    let mut back = Engine::restore(&bytes).unwrap();
    back.check_invariants().unwrap();
    assert_eq!(back.snapshot(), bytes, "snapshot → restore → snapshot");
    let room = back.room("r").unwrap();
    assert_eq!(room.counters().collect::<Vec<_>>(), [("a", 9), ("b", -4)]);
    assert_eq!(room.expires_at("short"), Some(Millis(6_000)));
    assert_eq!(room.expires_at("long"), Some(Millis(65_000)));
    assert_eq!(room.expires_at("plain"), None);
    assert_eq!(back.poll_timeout(), Some(Millis(6_000)));
    let _ = back.handle(Millis(6_000), Command::Tick);
    assert!(back.room("r").unwrap().attribute("short").is_none());
    back.check_invariants().unwrap();

    // Room-only: a deadline already past on the new engine's clock fires
    // at once.
    let room_bytes = e.snapshot_room("r").unwrap();
    let mut other = Engine::new(Profile::tencent());
    let _ = other.handle(Millis(10_000), Command::Tick);
    other.restore_room(&room_bytes).unwrap();
    other.check_invariants().unwrap();
    let r = other.room("r").unwrap();
    assert!(r.attribute("short").is_none());
    assert_eq!(r.expires_at("long"), Some(Millis(65_000)));
    assert_eq!(r.counter("a"), Some(9));
}

#[test]
fn version_2_refuses_bad_counters_and_deadlines() {
    // A deadline at or before the snapshot's clock is invalid; so are
    // unsorted counters. Forge them by editing a valid snapshot's tail:
    // the last two sequences of the only room are counters then TTLs.
    let mut e = Engine::new(Profile::tencent());
    let t = Millis(5_000);
    e.handle(
        t,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    )
    .unwrap();
    e.handle(
        t,
        Command::Write(Write::new("r", Actor::Admin).op(Op::set("k", "v").ttl(1))),
    )
    .unwrap();
    let mut bytes = e.snapshot();
    // The tail is: counters `[]` (0), TTLs `[("k", 5001)]`: 1, 1, b'k',
    // varint 5001 (0x89 0x27).
    let n = bytes.len();
    assert_eq!(&bytes[n - 6..], &[0, 1, 1, b'k', 0x89, 0x27]);
    bytes[n - 2] = 0x88; // 5000: not after the clock
    assert!(Engine::restore(&bytes).is_err());
    bytes[n - 2] = 0x89;
    bytes[n - 3] = b'x'; // a key that is not stored
    assert!(Engine::restore(&bytes).is_err());
}

/// A version-1 profile restores with no code for the error classes added
/// since (locks, key length, conflicts): that equals its built-in's current
/// codes only while no version-1 built-in has one. A built-in that gains
/// one must map it in `snapshot_v1.rs`.
#[test]
fn version_1_built_ins_have_no_codes_for_the_classes_added_since() {
    for p in Profile::builtins() {
        let c = p.codes;
        let v1_only = roomstate::VendorCodes {
            invalid_parameter: c.invalid_parameter,
            room_exists: c.room_exists,
            room_not_found: c.room_not_found,
            no_permission: c.no_permission,
            not_in_room: c.not_in_room,
            too_many_ops: c.too_many_ops,
            key_count: c.key_count,
            value_size: c.value_size,
            total_size: c.total_size,
            nothing_deleted: c.nothing_deleted,
            rate_limited: c.rate_limited,
            ..roomstate::VendorCodes::NONE
        };
        assert_eq!(c, v1_only, "{:?}", p.vendor);
    }
}

#[test]
fn a_version_1_rate_limit_code_is_kept() {
    // Tencent has no code for rate limiting, so the fixture writes none: its
    // profile's encoding ends with that `None` (0x00), right before the
    // engine's clock (1 000 000 as a varint: c0 84 3d). Write 429 there.
    let none_then_clock = [0x00, 0xc0, 0x84, 0x3d];
    let hits: Vec<usize> = V1
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == none_then_clock)
        .map(|(i, _)| i)
        .collect();
    let [at] = hits[..] else {
        panic!("the codes end right before the clock, once: {hits:?}");
    };
    let mut forged = V1[..at].to_vec();
    forged.extend([0x01, 0xad, 0x03]); // Some(429)
    forged.extend(&V1[at + 1..]);
    let e = Engine::restore(&forged).unwrap();
    assert_eq!(
        e.profile().codes.rate_limited,
        Some(roomstate::VendorCode::from(429))
    );
    assert_eq!(
        Engine::restore(V1).unwrap().profile().codes.rate_limited,
        None
    );
}
