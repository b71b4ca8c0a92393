//! Regressions for the findings of the read-only review of the engine
//! (all confirmed by running code before they were fixed). Each test
//! names the finding; all of them concern custom profiles, forged
//! snapshots or the ends of the number ranges, never the built-in paths.

use roomstate::{
    Actor, Command, Engine, Millis, Notify, Op, OpError, Profile, Rejection, SnapshotError,
    Success, Write, MAX_SEQ,
};

fn create(e: &mut Engine, now: u64) {
    e.handle(
        Millis(now),
        Command::CreateRoom {
            room: "r".into(),
            creator: "h".into(),
        },
    )
    .unwrap();
}

/// The bytes of an unsigned LEB128 varint, as postcard writes a `u64`.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A snapshot of one room "r" (creator "h", seq 1) with its seq replaced.
fn with_seq(seq: u64) -> Vec<u8> {
    let mut e = Engine::new(Profile::zego());
    create(&mut e, 1);
    let bytes = e.snapshot();
    // The room starts with its id, its creator and then its seq.
    let at = bytes
        .windows(5)
        .position(|w| w == [1, b'r', 1, b'h', 1])
        .expect("room header in the snapshot");
    let mut forged = bytes[..at + 4].to_vec();
    forged.extend(varint(seq));
    forged.extend(&bytes[at + 5..]);
    forged
}

/// Finding 1: a restored seq of u64::MAX overflowed on the next change.
#[test]
fn review_restore_refuses_a_sequence_number_above_max_seq() {
    assert!(matches!(
        Engine::restore(&with_seq(u64::MAX)).err(),
        Some(SnapshotError::Invalid(_))
    ));
    assert!(Engine::restore(&with_seq(MAX_SEQ + 1)).is_err());
    // At the ceiling itself the room still works, without panic.
    let mut e = Engine::restore(&with_seq(MAX_SEQ)).unwrap();
    let w = Write::new("r", Actor::Admin).op(Op::set("k", "v"));
    let Ok(Success::Written(report)) = e.handle(Millis(2), Command::Write(w)) else {
        panic!("write refused")
    };
    assert_eq!(report.seq, MAX_SEQ + 1);
    e.check_invariants().unwrap();
}

/// Finding 2: op indices saturated at 65,535, so with a larger custom
/// batch a failed op could be applied and an applied one skipped.
#[test]
fn review_failures_past_op_65535_are_reported_at_their_index_and_not_applied() {
    let mut p = Profile::netease();
    p.limits.max_ops_per_write = 70_000;
    p.limits.max_room_value_bytes = Some(10);
    let mut e = Engine::new(p);
    create(&mut e, 1);
    let mut w = Write::new("r", Actor::Admin);
    for _ in 0..65_536 {
        w = w.op(Op::set("k", "v"));
    }
    w = w.op(Op::set("big", "x".repeat(100)));
    let Ok(Success::Written(report)) = e.handle(Millis(2), Command::Write(w)) else {
        panic!("write refused")
    };
    assert_eq!(report.applied, 65_536);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].index, 65_536);
    assert_eq!(report.failed[0].error, OpError::RoomSizeLimit);
    let room = e.room("r").unwrap();
    assert!(room.attribute("big").is_none());
    assert_eq!(room.value_bytes(), 1);
    e.check_invariants().unwrap();
}

fn offer(key: &str) -> Command {
    Command::QueueOffer {
        room: "r".into(),
        operator: Actor::Admin,
        key: key.into(),
        value: "v".into(),
        transient: false,
        notify: Notify::default(),
    }
}

/// Finding 3: a custom default queue capacity of 0 let a first single
/// offer create a queue of capacity 0 holding one element; a default above
/// `max_capacity` made the engine's own snapshot unrestorable.
#[test]
fn review_odd_custom_queue_capacities_stay_consistent_and_restorable() {
    let mut zero = Profile::netease();
    zero.limits.queue.default_capacity = 0;
    let mut e = Engine::new(zero);
    create(&mut e, 1);
    assert_eq!(
        e.handle(Millis(2), offer("k")),
        Err(Rejection::Op {
            index: 0,
            error: OpError::QueueFull
        })
    );
    assert_eq!(e.room("r").unwrap().queue_capacity(), None);
    e.check_invariants().unwrap();

    let mut big = Profile::netease();
    big.limits.queue.default_capacity = 2_000;
    big.limits.queue.max_capacity = 1_000;
    let mut e = Engine::new(big);
    create(&mut e, 1);
    e.handle(Millis(2), offer("k")).unwrap();
    e.check_invariants().unwrap();
    let bytes = e.snapshot();
    assert_eq!(Engine::restore(&bytes).unwrap().snapshot(), bytes);
}

/// Finding 4: a disconnect at the end of time left a deadline already due.
#[test]
fn review_a_disconnect_at_the_end_of_time_exits_at_once() {
    let mut e = Engine::new(Profile::netease());
    create(&mut e, 1);
    let end = Millis(u64::MAX);
    let user = || "u".into();
    e.handle(
        end,
        Command::Join {
            room: "r".into(),
            user: user(),
        },
    )
    .unwrap();
    e.handle(
        end,
        Command::Disconnect {
            room: "r".into(),
            user: user(),
        },
    )
    .unwrap();
    assert!(!e.room("r").unwrap().is_present("u"));
    assert_eq!(e.poll_timeout(), None);
    e.check_invariants().unwrap();
    let bytes = e.snapshot();
    assert_eq!(Engine::restore(&bytes).unwrap().snapshot(), bytes);
}

/// Finding 6: restore accepted a grace deadline further ahead than any
/// engine sets one (more than one grace period after `now`). Forged by
/// restoring a snapshot taken with a 60 s grace as one with a 30 s grace.
#[test]
fn review_restore_refuses_a_deadline_beyond_one_grace_period() {
    let mut long = Profile::netease();
    long.limits.disconnect_grace_ms = 60_000;
    let short = Profile::netease(); // 30 s
    let mut e = Engine::new(long);
    create(&mut e, 1);
    e.handle(
        Millis(1),
        Command::Join {
            room: "r".into(),
            user: "u".into(),
        },
    )
    .unwrap();
    e.handle(
        Millis(1),
        Command::Disconnect {
            room: "r".into(),
            user: "u".into(),
        },
    )
    .unwrap();
    let bytes = e.snapshot();
    let (a, b) = (Engine::new(long).snapshot(), Engine::new(short).snapshot());
    assert_eq!(a.len(), b.len(), "both graces are 3-byte varints");
    let mut forged = bytes.clone();
    for i in 0..a.len() {
        if a[i] != b[i] {
            forged[i] = b[i];
        }
    }
    assert!(matches!(
        Engine::restore(&forged).err(),
        Some(SnapshotError::Invalid(_))
    ));
    // Unforged, it restores.
    assert_eq!(Engine::restore(&bytes).unwrap().snapshot(), bytes);
}
