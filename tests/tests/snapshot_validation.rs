//! Restore's validation, rule by rule (SPEC §9: restore trusts nothing).
//! Each test decodes a real snapshot into a mirror of its layout, breaks
//! exactly one rule, encodes it again and checks that restore names that
//! rule. A rule without a test here could be dropped from the engine
//! unnoticed (one was: a notification window starting after `now`).

#[path = "common/mirror.rs"]
mod mirror;

use mirror::{decode, encode, EngineSnap, Header, LockSnap, RoomSnap, UserSnap};
use roomstate::{
    Actor, Command, Engine, Millis, Notify, Op, Profile, Role, SnapshotError, Str, Write, MAX_SEQ,
};

const NOW: u64 = 100_000;

/// A NetEase engine (it has a notification flow) with one room: three
/// members, one of them dropped in grace, attributes of two owners, and a
/// queue with a transient element.
fn engine() -> Engine {
    let mut profile = Profile::netease();
    profile.limits.request_rate = None;
    let mut e = Engine::new(profile);
    let now = Millis(NOW);
    let run = |e: &mut Engine, c: Command| e.handle(now, c).unwrap();
    run(
        &mut e,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    );
    for u in ["host", "ann", "bob"] {
        run(
            &mut e,
            Command::Join {
                room: "r".into(),
                user: u.into(),
            },
        );
    }
    run(
        &mut e,
        Command::Write(
            Write::new("r", Actor::user("ann")).op(Op::set("k1", "v1").auto_delete(true)),
        ),
    );
    run(
        &mut e,
        Command::Write(Write::new("r", Actor::Admin).op(Op::set("k2", "v2"))),
    );
    run(
        &mut e,
        Command::QueueOffer {
            room: "r".into(),
            operator: Actor::user("ann"),
            key: "mic".into(),
            value: "1".into(),
            transient: true,
            notify: Notify::default(),
        },
    );
    // Locks: "stage" held by bob (who drops below, so its TTL runs) with
    // ann waiting; "spare" free.
    for name in ["stage", "spare"] {
        run(
            &mut e,
            Command::SetLock {
                room: "r".into(),
                name: name.into(),
                ttl_ms: 60_000,
            },
        );
    }
    for u in ["bob", "ann"] {
        run(
            &mut e,
            Command::AcquireLock {
                room: "r".into(),
                name: "stage".into(),
                user: u.into(),
                retry: true,
            },
        );
    }
    run(
        &mut e,
        Command::Disconnect {
            room: "r".into(),
            user: "bob".into(),
        },
    );
    e
}

/// The engine's snapshot with one change made by `f`.
fn forged(f: impl FnOnce(&mut EngineSnap)) -> Vec<u8> {
    let (h, mut snap) = decode(&engine().snapshot());
    f(&mut snap);
    encode(&h, &snap)
}

fn refused(f: impl FnOnce(&mut EngineSnap), what: &str) {
    let bytes = forged(f);
    match Engine::restore(&bytes) {
        Err(SnapshotError::Invalid(w)) => assert_eq!(w, what),
        other => panic!("expected Invalid({what:?}), got {:?}", other.map(|_| ())),
    }
}

fn room(s: &mut EngineSnap) -> &mut RoomSnap {
    &mut s.rooms[0]
}

fn user<'a>(s: &'a mut EngineSnap, id: &str) -> &'a mut UserSnap {
    room(s).users.iter_mut().find(|u| u.id == id).unwrap()
}

#[test]
fn the_mirror_is_the_format_an_unchanged_snapshot_round_trips() {
    let original = engine().snapshot();
    let (h, snap) = decode(&original);
    assert_eq!(encode(&h, &snap), original);
    assert!(Engine::restore(&original).is_ok());
    let r = &snap.rooms[0];
    assert!(r.flow_start.is_some(), "the room has a notification window");
    assert_eq!(r.attributes.len(), 2);
    assert_eq!(r.queue.as_ref().map(|q| q.1.len()), Some(1));
    assert!(r.users.iter().any(|u| u.grace_until.is_some()));
}

#[test]
fn a_notification_window_that_starts_after_now_is_refused() {
    // The counts may be 0: a window from the future is refused all the same.
    refused(
        |s| {
            let r = room(s);
            r.flow_start = Some(Millis(NOW + 1));
            r.flow_normal = 0;
            r.flow_high = 0;
        },
        "notification window in the future or counts without a window",
    );
}

#[test]
fn notification_counts_without_a_window_are_refused() {
    // Any count, of either kind or both (equal counts too: the check is
    // "any count", not "the counts differ").
    for (normal, high) in [(1, 0), (0, 1), (1, 1)] {
        refused(
            |s| {
                let r = room(s);
                r.flow_start = None;
                r.flow_normal = normal;
                r.flow_high = high;
            },
            "notification window in the future or counts without a window",
        );
    }
}

#[test]
fn notification_counts_over_the_budget_are_refused() {
    refused(
        |s| {
            let budget = s
                .profile
                .limits
                .notification_flow
                .unwrap()
                .normal_per_second;
            room(s).flow_normal = budget + 1;
        },
        "notification counts over budget",
    );
    refused(
        |s| {
            let budget = s.profile.limits.notification_flow.unwrap().high_per_second;
            room(s).flow_high = budget + 1;
        },
        "notification counts over budget",
    );
}

#[test]
fn notification_counts_exactly_at_the_budget_restore() {
    // Each kind alone at its budget, then both: a window that used all it
    // may is a window the engine itself writes.
    for (normal, high) in [(true, false), (false, true), (true, true)] {
        let bytes = forged(|s| {
            let f = s.profile.limits.notification_flow.unwrap();
            let r = room(s);
            if normal {
                r.flow_normal = f.normal_per_second;
            }
            if high {
                r.flow_high = f.high_per_second;
            }
        });
        let restored =
            Engine::restore(&bytes).unwrap_or_else(|e| panic!("normal {normal}, high {high}: {e}"));
        // What was restored is what was written.
        let (_, again) = decode(&restored.snapshot());
        let (_, want) = decode(&bytes);
        assert_eq!(
            (again.rooms[0].flow_normal, again.rooms[0].flow_high),
            (want.rooms[0].flow_normal, want.rooms[0].flow_high)
        );
    }
}

#[test]
fn a_notification_window_under_a_profile_without_flow_is_refused() {
    refused(
        |s| s.profile.limits.notification_flow = None,
        "notification window without a flow in the profile",
    );
}

#[test]
fn room_ids_and_sequence_numbers_are_checked() {
    refused(|s| room(s).id = "".into(), "empty room or creator id");
    refused(|s| room(s).creator = "".into(), "empty room or creator id");
    refused(
        |s| room(s).seq = 0,
        "room sequence number 0 or above MAX_SEQ",
    );
    refused(
        |s| room(s).seq = MAX_SEQ + 1,
        "room sequence number 0 or above MAX_SEQ",
    );
    // MAX_SEQ itself is a room's number like any other.
    let at_max = forged(|s| room(s).seq = MAX_SEQ);
    let engine = Engine::restore(&at_max).unwrap();
    assert_eq!(engine.room("r").map(|v| v.seq()), Some(MAX_SEQ));
    refused(
        |s| {
            let copy = s.rooms[0].clone();
            s.rooms.push(copy);
        },
        "room ids unsorted or repeated",
    );
}

#[test]
fn attributes_are_checked_one_by_one() {
    refused(|s| room(s).attributes[0].key = "".into(), "attribute key");
    refused(
        |s| {
            let max = s.profile.limits.max_value_len as usize;
            room(s).attributes[0].value = "v".repeat(max + 1).into();
        },
        "attribute value too long",
    );
    refused(
        |s| room(s).attributes[0].revision = 0,
        "attribute revision or time out of range",
    );
    refused(
        |s| {
            let r = room(s);
            r.attributes[0].revision = r.seq + 1;
        },
        "attribute revision or time out of range",
    );
    refused(
        |s| room(s).attributes[0].changed_at = Millis(NOW + 1),
        "attribute revision or time out of range",
    );
    refused(
        |s| room(s).attributes[0].owner = Actor::user(""),
        "empty user id as owner",
    );
    refused(
        |s| {
            let r = room(s);
            r.attributes[1].key = r.attributes[0].key.clone();
        },
        "attribute key repeated",
    );
    refused(
        |s| s.profile.limits.max_keys_per_room = Some(1),
        "more attributes than the profile allows",
    );
    refused(
        |s| s.profile.limits.max_room_value_bytes = Some(3),
        "room values over the profile's total",
    );
    refused(
        |s| s.profile.limits.max_engine_value_bytes = Some(3),
        "engine values over the profile's total",
    );
}

#[test]
fn one_attribute_over_the_room_total_is_refused() {
    // The first attribute alone: the total is what the room holds plus
    // this value, from nothing.
    refused(
        |s| {
            room(s).attributes.truncate(1);
            s.profile.limits.max_room_value_bytes = Some(1);
        },
        "room values over the profile's total",
    );
}

/// Restore's limits are inclusive, as the engine's own are: a snapshot
/// exactly at a limit restores.
#[test]
fn a_snapshot_exactly_at_the_value_limits_restores() {
    let restores = |f: &dyn Fn(&mut EngineSnap)| {
        let bytes = forged(f);
        if let Err(e) = Engine::restore(&bytes) {
            panic!("refused at the limit: {e}");
        }
    };
    restores(&|s| {
        let max = s.profile.limits.max_value_len as usize;
        s.profile.limits.max_room_value_bytes = None;
        s.profile.limits.max_engine_value_bytes = None;
        room(s).attributes[0].value = "v".repeat(max).into();
    });
    restores(&|s| {
        let total: usize = room(s).attributes.iter().map(|a| a.value.len()).sum();
        s.profile.limits.max_room_value_bytes = Some(total as u64);
        s.profile.limits.max_engine_value_bytes = Some(total as u64);
    });
}

#[test]
fn every_refusal_reads_as_a_sentence() {
    let cases = [
        (SnapshotError::NotASnapshot, "not a roomstate snapshot"),
        (
            SnapshotError::UnsupportedVersion(9),
            "snapshot format version 9 is not one this build reads",
        ),
        (SnapshotError::Malformed, "snapshot bytes do not decode"),
        (
            SnapshotError::TrailingBytes,
            "bytes left over after the snapshot",
        ),
        (
            SnapshotError::ProfileMismatch,
            "the room snapshot's profile differs from the engine's",
        ),
        (
            SnapshotError::RoomExists,
            "the engine already has this room",
        ),
        (
            SnapshotError::Invalid("attribute key"),
            "snapshot breaks a rule: attribute key",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn an_attribute_key_outside_a_restricted_charset_is_refused() {
    refused(
        |s| {
            s.profile.limits.key_charset = roomstate::Charset::Restricted;
            room(s).attributes[0].key = "k é".into();
        },
        "attribute key charset",
    );
}

#[test]
fn the_queue_is_checked() {
    refused(
        |s| room(s).queue.as_mut().unwrap().0 = 0,
        "queue capacity out of range",
    );
    // The largest capacity a queue can have (made by init, or by a first
    // offer at the default), and one more.
    let largest = |s: &EngineSnap| {
        let q = &s.profile.limits.queue;
        q.max_capacity.max(q.default_capacity)
    };
    refused(
        |s| room(s).queue.as_mut().unwrap().0 = largest(s) + 1,
        "queue capacity out of range",
    );
    let at_largest = forged(|s| room(s).queue.as_mut().unwrap().0 = largest(s));
    assert!(Engine::restore(&at_largest).is_ok());
    refused(
        |s| room(s).queue.as_mut().unwrap().1[0].key = "".into(),
        "queue element shape",
    );
    refused(
        |s| {
            let q = room(s).queue.as_mut().unwrap();
            let copy = q.1[0].clone();
            q.1.push(copy);
        },
        "queue over capacity or key repeated",
    );
    refused(
        |s| {
            let q = room(s).queue.as_mut().unwrap();
            q.0 = 1;
            let mut other = q.1[0].clone();
            other.key = "other".into();
            q.1.push(other);
        },
        "queue over capacity or key repeated",
    );
}

#[test]
fn users_are_checked() {
    refused(
        |s| room(s).users.reverse(),
        "user ids empty, unsorted or repeated",
    );
    refused(
        |s| room(s).users[0].id = "".into(),
        "user ids empty, unsorted or repeated",
    );
    refused(
        |s| user(s, "ann").role = Role::Creator,
        "Creator role not held by exactly the creator",
    );
    refused(
        |s| {
            let u = user(s, "ann");
            u.live = u32::MAX;
            u.dropped = 1;
            u.grace_until = Some(Millis(NOW + 1));
        },
        "connection count overflows",
    );
    refused(
        |s| user(s, "ann").live = 0,
        "user record with nothing in it",
    );
    refused(
        |s| room(s).users.retain(|u| u.id != "host"),
        "creator has no record",
    );
}

#[test]
fn grace_deadlines_must_match_dropped_connections_and_lie_within_one_grace_period() {
    let what = "dropped connections and grace deadline disagree";
    refused(|s| user(s, "bob").grace_until = None, what);
    refused(|s| user(s, "bob").grace_until = Some(Millis(NOW)), what);
    refused(
        |s| {
            let grace = s.profile.limits.disconnect_grace_ms;
            user(s, "bob").grace_until = Some(Millis(NOW + grace + 1));
        },
        what,
    );
    refused(|s| user(s, "bob").dropped = 0, what);
}

#[test]
fn a_grace_deadline_of_zero_is_refused_even_in_a_single_room() {
    // A single room is checked without a clock, but a deadline always lies
    // after some `now`: zero is never one.
    let src = engine();
    let bytes = src.snapshot_room("r").unwrap();
    let (h, rest) = postcard::take_from_bytes::<Header>(&bytes).unwrap();
    let (profile, mut r): (Profile, RoomSnap) = postcard::from_bytes(rest).unwrap();
    r.users
        .iter_mut()
        .find(|u| u.id == "bob")
        .unwrap()
        .grace_until = Some(Millis(0));
    let mut forged = postcard::to_allocvec(&h).unwrap();
    forged.extend(postcard::to_allocvec(&(profile, r)).unwrap());
    let mut dst = Engine::new(profile);
    assert_eq!(
        dst.restore_room(&forged),
        Err(SnapshotError::Invalid(
            "dropped connections and grace deadline disagree"
        ))
    );
    assert_eq!(dst.room_count(), 0, "nothing restored");
}

#[test]
fn the_rate_bucket_is_checked() {
    refused(
        |s| {
            s.profile.limits.request_rate = Some(roomstate::Rate { per_second: 1 });
            s.bucket_milli_tokens = 1001;
        },
        "rate bucket out of range",
    );
    refused(
        |s| s.bucket_last = Millis(NOW + 1),
        "rate bucket out of range",
    );
}

fn lock<'a>(s: &'a mut EngineSnap, name: &str) -> &'a mut LockSnap {
    room(s).locks.iter_mut().find(|l| l.name == name).unwrap()
}

#[test]
fn the_fixture_has_a_held_lock_with_a_deadline_and_a_waiter() {
    let (_, snap) = decode(&engine().snapshot());
    let r = &snap.rooms[0];
    assert_eq!(r.locks.len(), 2);
    let stage = &r.locks[0];
    assert_eq!(stage.holder.as_deref(), Some("bob"));
    assert_eq!(stage.token, 1);
    assert_eq!(stage.deadline, Some(Millis(NOW + 60_000)));
    assert_eq!(stage.waiters, vec![Str::from("ann")]);
    assert!(r.major_revision >= r.attributes.iter().map(|a| a.revision).max().unwrap());
    let restored = Engine::restore(&engine().snapshot()).unwrap();
    restored.check_invariants().unwrap();
    assert_eq!(restored.poll_timeout(), Some(Millis(NOW + 30_000)));
    let view = restored.room("r").unwrap();
    assert_eq!(view.lock("stage").unwrap().holder, Some("bob"));
}

#[test]
fn the_major_revision_is_checked() {
    refused(
        |s| room(s).major_revision = room(s).seq + 1,
        "major revision after the seq or before an attribute's",
    );
    refused(
        |s| room(s).major_revision = 1,
        "major revision after the seq or before an attribute's",
    );
}

#[test]
fn locks_are_checked_one_by_one() {
    let name = "lock name invalid or repeated";
    refused(|s| lock(s, "spare").name = "".into(), name);
    refused(|s| lock(s, "spare").name = "l".repeat(65).into(), name);
    refused(|s| lock(s, "spare").name = "stage".into(), name);
    refused(
        |s| lock(s, "spare").ttl_ms = 1,
        "lock TTL outside the profile's range",
    );
    refused(
        |s| {
            let l = lock(s, "spare");
            l.waiters = vec!["ann".into()];
        },
        "free lock with waiters or a deadline",
    );
    refused(
        |s| lock(s, "stage").holder = Some("zed".into()),
        "lock holder not in the room",
    );
    refused(|s| lock(s, "stage").token = 0, "held lock without a token");
    let deadline = "lock deadline and holder's connections disagree";
    refused(|s| lock(s, "stage").deadline = None, deadline);
    refused(|s| lock(s, "stage").deadline = Some(Millis(NOW)), deadline);
    refused(
        |s| lock(s, "stage").deadline = Some(Millis(NOW + 60_001)),
        deadline,
    );
    refused(
        |s| lock(s, "stage").holder = Some("ann".into()),
        // ann is live, so she can hold no deadline; checked before the line.
        deadline,
    );
    refused(
        |s| lock(s, "stage").waiters.push("ann".into()),
        "lock waiter repeated or the holder",
    );
    refused(
        |s| lock(s, "stage").waiters.push("bob".into()),
        "lock waiter repeated or the holder",
    );
    refused(
        |s| lock(s, "stage").waiters.push("zed".into()),
        "lock waiter not in the room",
    );
    refused(
        |s| {
            let extra = room(s).locks[1].clone();
            for i in 0..40 {
                let mut l = extra.clone();
                l.name = format!("x{i}").into();
                room(s).locks.push(l);
            }
        },
        "more locks than the profile allows",
    );
}

#[test]
fn counters_are_checked_one_by_one() {
    let c = |k: &str, v: i64| (Str::from(k), v);
    refused(
        |s| room(s).counters = vec![c("b", 1), c("a", 2)],
        "counter keys unsorted or repeated",
    );
    refused(
        |s| room(s).counters = vec![c("a", 1), c("a", 2)],
        "counter keys unsorted or repeated",
    );
    refused(|s| room(s).counters = vec![c("", 1)], "counter key");
    refused(
        |s| room(s).counters = vec![(Str::from("k".repeat(129)), 1)],
        "counter key",
    );
    refused(
        |s| {
            let max = s.profile.limits.max_counters_per_room.unwrap();
            room(s).counters = (0..=max).map(|i| c(&format!("k{i:03}"), 0)).collect();
        },
        "more counters than the profile allows",
    );
    assert!(Engine::restore(&forged(|s| room(s).counters = vec![c("a", i64::MIN)])).is_ok());
}

#[test]
fn ttl_deadlines_are_checked_one_by_one() {
    let d = |k: &str, t: u64| (Str::from(k), Millis(t));
    refused(
        |s| room(s).expiry = vec![d("nope", NOW + 1)],
        "TTL deadline of a key that is not stored",
    );
    refused(
        |s| room(s).expiry = vec![d("k1", NOW)],
        "TTL deadline not after the snapshot's clock",
    );
    refused(
        |s| room(s).expiry = vec![d("k2", NOW + 1), d("k1", NOW + 1)],
        "TTL keys unsorted or repeated",
    );
    let ok = forged(|s| room(s).expiry = vec![d("k1", NOW + 1), d("k2", NOW + 5)]);
    let mut e = Engine::restore(&ok).unwrap();
    e.check_invariants().unwrap();
    assert_eq!(e.poll_timeout(), Some(Millis(NOW + 1)));
    let _ = e.handle(Millis(NOW + 1), Command::Tick);
    assert!(e.room("r").unwrap().attribute("k1").is_none());
}
