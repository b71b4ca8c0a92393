//! The API as a user writes it: constructors, builders and accessors make
//! the common path short, and build exactly the commands spelled out.

use roomstate::{
    Actor, BatchOffer, Command, CounterOp, Engine, HighPolicy, Millis, NewElement, Notify, Offer,
    Op, Poll, Profile, Write,
};

#[test]
fn builders_build_the_commands_spelled_out() {
    assert_eq!(
        Command::create_room("r", "host"),
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into()
        }
    );
    assert_eq!(
        Command::exit("r", "u"),
        Command::Exit {
            room: "r".into(),
            user: "u".into()
        }
    );
    assert_eq!(Notify::high().high, Some(HighPolicy::Downgrade));
    assert_eq!(Notify::high_or_reject().high, Some(HighPolicy::Reject));
    assert!(!Notify::silent().notify);
    assert_eq!(
        Command::from(
            Offer::new("r", Actor::user("u"), "k", "v")
                .transient()
                .notify(Notify::high())
        ),
        Command::QueueOffer {
            room: "r".into(),
            operator: Actor::user("u"),
            key: "k".into(),
            value: "v".into(),
            transient: true,
            notify: Notify::high(),
        }
    );
    assert_eq!(
        NewElement::new("k", "v").owner("u").transient(true),
        NewElement {
            key: "k".into(),
            value: "v".into(),
            owner: Some("u".into()),
            transient: Some(true)
        }
    );
    assert_eq!(
        Command::counter("r", Actor::Admin, "n", CounterOp::Decrease(1)).bounds(Some(0), None),
        Command::Counter {
            room: "r".into(),
            operator: Actor::Admin,
            key: "n".into(),
            op: CounterOp::Decrease(1),
            min: Some(0),
            max: None
        }
    );
}

#[test]
fn the_common_path_is_short() {
    let mut e = Engine::new(Profile::netease());
    let t = Millis(1_000);
    e.handle(t, Command::create_room("r", "host")).unwrap();
    e.handle(t, Command::join("r", "host")).unwrap();
    let written = e
        .handle(
            t,
            Write::new("r", Actor::user("host"))
                .op(Op::set("title", "quiz"))
                .into(),
        )
        .unwrap()
        .into_written()
        .unwrap();
    assert_eq!((written.applied, written.seq), (1, 3));
    let batch = e
        .handle(
            t,
            BatchOffer::new("r", Actor::user("host"))
                .element(NewElement::new("a", "1"))
                .element(NewElement::new("b", "2"))
                .into(),
        )
        .unwrap()
        .into_batch()
        .unwrap();
    assert_eq!(batch.applied, 2);
    let polled = e
        .handle(t, Poll::head("r", Actor::Admin).into())
        .unwrap()
        .into_polled()
        .unwrap();
    assert_eq!(polled.key.as_str(), "a");
    let read = e
        .handle(t, Command::read_all("r"))
        .unwrap()
        .into_read()
        .unwrap();
    assert_eq!(read.attributes.len(), 1);
    let n = e
        .handle(
            t,
            Command::counter("r", Actor::Admin, "likes", CounterOp::Increase(3)),
        )
        .unwrap()
        .into_counter();
    assert_eq!(n, Some(3));
    let listed = e
        .handle(t, Command::QueueList { room: "r".into() })
        .unwrap()
        .into_elements()
        .unwrap();
    let keys: Vec<&str> = listed.elements.iter().map(|el| el.key.as_str()).collect();
    assert_eq!(keys, ["b"]);
    let counters = e
        .handle(
            t,
            Command::CounterRead {
                room: "r".into(),
                keys: None,
            },
        )
        .unwrap()
        .into_counters()
        .unwrap();
    assert_eq!(counters.counters, [("likes".into(), 3)]);
    // The view: one element by key; live and dropped connections apart.
    e.handle(t, Command::disconnect("r", "host")).unwrap();
    let view = e.room("r").unwrap();
    assert_eq!(view.queue_element("b").unwrap().value, "2");
    assert_eq!(view.live_connections("host"), 0);
    assert!(view.dropped_connections("host").is_some());
    // A wrong accessor says so.
    assert!(e
        .handle(t, Command::read_all("r"))
        .unwrap()
        .into_batch()
        .is_none());
}

// Easemob `successKeys`: the applied keys are the request's keys that did
// not fail, in request order.
#[test]
fn batch_report_gives_the_applied_keys() {
    let mut e = Engine::new(Profile::easemob());
    let t = Millis(1_000);
    e.handle(t, Command::create_room("r", "host")).unwrap();
    e.handle(t, Command::join("r", "host")).unwrap();
    let keys = ["a", "bad key!", "b", "", "c"];
    let mut w = Write::new("r", Actor::user("host"));
    for k in keys {
        w = w.op(Op::set(k, "v"));
    }
    let report = e.handle(t, w.into()).unwrap().into_written().unwrap();
    assert_eq!(
        report.applied_indices(keys.len()).collect::<Vec<_>>(),
        [0, 2, 4]
    );
    assert_eq!(
        report.applied_keys(&keys).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

/// `Command::room` names the room of every command that has one (a server
/// routes by it), and `Engine::rooms` lists every room.
#[test]
fn every_command_names_its_room_and_the_engine_lists_its_rooms() {
    let r = |i: usize| roomstate::Str::from(format!("room{i}"));
    let u = || roomstate::Str::from("u");
    let commands = vec![
        Command::CreateRoom {
            room: r(0),
            creator: u(),
        },
        Command::DestroyRoom { room: r(1) },
        Command::Join {
            room: r(2),
            user: u(),
        },
        Command::Leave {
            room: r(3),
            user: u(),
        },
        Command::Disconnect {
            room: r(4),
            user: u(),
        },
        Command::Exit {
            room: r(5),
            user: u(),
        },
        Command::SetRole {
            room: r(6),
            user: u(),
            role: roomstate::Role::Admin,
        },
        Command::Write(Write::new(r(7), Actor::Admin)),
        Command::SetLock {
            room: r(8),
            name: u(),
            ttl_ms: 1,
        },
        Command::RemoveLock {
            room: r(9),
            name: u(),
        },
        Command::AcquireLock {
            room: r(10),
            name: u(),
            user: u(),
            retry: false,
        },
        Command::ReleaseLock {
            room: r(11),
            name: u(),
            user: u(),
        },
        Command::RevokeLock {
            room: r(12),
            name: u(),
            owner: u(),
            operator: Actor::Admin,
        },
        Command::GetLocks { room: r(13) },
        Command::Read {
            room: r(14),
            keys: None,
        },
        Command::QueueInit {
            room: r(15),
            operator: Actor::Admin,
            capacity: 1,
        },
        Command::QueueDrop {
            room: r(16),
            operator: Actor::Admin,
        },
        Offer::new(r(17), Actor::Admin, "k", "v").into(),
        BatchOffer::new(r(18), Actor::Admin).into(),
        Command::QueueBatchUpdate {
            room: r(19),
            operator: Actor::Admin,
            elements: vec![],
            notify: Notify::default(),
        },
        Command::QueueList { room: r(20) },
        Poll::head(r(21), Actor::Admin).into(),
        Command::QueueMultiGet {
            room: r(22),
            keys: vec![],
        },
        Command::counter(r(23), Actor::Admin, "c", CounterOp::Increase(1)),
        Command::CounterDelete {
            room: r(24),
            operator: Actor::Admin,
            keys: None,
        },
        Command::CounterRead {
            room: r(25),
            keys: None,
        },
        Command::Since {
            room: r(26),
            seq: 0,
        },
    ];
    for (i, c) in commands.iter().enumerate() {
        assert_eq!(c.room(), Some(r(i).as_str()), "{c:?}");
    }
    assert_eq!(Command::Tick.room(), None);

    let mut e = Engine::new(Profile::tencent());
    for i in [3, 1, 2] {
        e.handle(Millis(1), Command::create_room(r(i), "host"))
            .unwrap();
    }
    let mut ids: Vec<&str> = e.rooms().map(|v| v.id().as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["room1", "room2", "room3"]);
    assert_eq!(e.rooms().count(), e.room_count());
}

/// `drain_events` appends to what the buffer holds, oldest first, whether
/// one event or several wait (one is moved on its own, several in bulk),
/// and leaves the buffer alone when none wait; `recycle` empties it and
/// the engine keeps going.
#[test]
fn drain_appends_oldest_first_and_recycle_empties_the_buffer() {
    let mut e = Engine::new(Profile::tencent());
    let now = Millis(1_000);
    let set = |k: &str| Command::Write(Write::new("r", Actor::Admin).op(Op::set(k, "v")));
    let seqs = |events: &[roomstate::Event]| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    let mut out = Vec::new();
    e.handle(now, Command::create_room("r", "host")).unwrap();
    e.drain_events(&mut out);
    assert_eq!(seqs(&out), [1]);
    e.drain_events(&mut out);
    assert_eq!(seqs(&out), [1], "nothing waiting: nothing added");
    e.handle(now, set("a")).unwrap();
    e.drain_events(&mut out);
    assert_eq!(seqs(&out), [1, 2], "one event appended");
    for k in ["b", "c", "d"] {
        e.handle(now, set(k)).unwrap();
    }
    e.drain_events(&mut out);
    assert_eq!(seqs(&out), [1, 2, 3, 4, 5], "several appended in order");
    e.recycle(&mut out);
    assert!(out.is_empty());
    e.handle(now, set("e")).unwrap();
    e.drain_events(&mut out);
    assert_eq!(seqs(&out), [6]);
    assert!(e.poll_event().is_none());
}

/// `Str` stands in for the text it holds wherever a server uses it: as a
/// map key found by a `&str` (its hash is the text's), compared with a
/// `str`, passed as `AsRef<str>`, printed, and sent through serde.
#[test]
fn a_str_behaves_like_the_text_it_holds() {
    use roomstate::Str;
    use std::collections::{BTreeSet, HashMap};

    let long = "v".repeat(40); // stored shared, not inline
    let mut by_key: HashMap<Str, u32> = HashMap::new();
    by_key.insert(Str::from("seat.1"), 1);
    by_key.insert(Str::from(long.as_str()), 2);
    assert_eq!(by_key.get("seat.1"), Some(&1));
    assert_eq!(by_key.get(long.as_str()), Some(&2));
    assert_eq!(by_key.get("seat.2"), None);

    let s = Str::from("ké");
    assert!(s == *"ké");
    assert!(s != *"ke");
    assert!(s == "ké");
    assert!(s != "k");
    fn len_of(text: impl AsRef<str>) -> usize {
        text.as_ref().len()
    }
    assert_eq!(len_of(&s), 3);
    assert_eq!(len_of(Str::from(long.as_str())), 40);
    assert_eq!(format!("{s} {s:?}"), "ké \"ké\"");

    // Order is the text's, whichever way each is stored.
    let set: BTreeSet<Str> = ["b", long.as_str(), "a"]
        .into_iter()
        .map(Str::from)
        .collect();
    let order: Vec<&str> = set.iter().map(Str::as_str).collect();
    assert_eq!(order, ["a", "b", long.as_str()]);

    for text in ["", "ké", long.as_str()] {
        let bytes = postcard::to_allocvec(&Str::from(text)).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(text).unwrap());
        assert_eq!(postcard::from_bytes::<Str>(&bytes).unwrap(), text);
    }
}

/// An error prints as a sentence a server can log or answer with, not as
/// its `Debug` form.
#[test]
fn every_error_reads_as_a_sentence() {
    use roomstate::{OpError, Rejection};
    let ops = [
        (OpError::KeyEmpty, "the key is empty"),
        (
            OpError::KeyTooLong,
            "the key is longer than the profile allows",
        ),
        (
            OpError::KeyCharset,
            "the key has a character outside the profile's charset",
        ),
        (
            OpError::ValueTooLong,
            "the value is longer than the profile allows",
        ),
        (
            OpError::Conflict { current: Some(7) },
            "the expectation did not hold: the key is at revision 7",
        ),
        (
            OpError::Conflict { current: None },
            "the expectation did not hold: the key is absent",
        ),
        (OpError::NotOwner, "the key belongs to another user"),
        (OpError::NotFound, "no such key or element"),
        (
            OpError::KeyCountLimit,
            "the room would hold more keys than the profile allows",
        ),
        (
            OpError::RoomSizeLimit,
            "the room's values would exceed the profile's total",
        ),
        (
            OpError::EngineSizeLimit,
            "all rooms' values would exceed the profile's engine-wide total",
        ),
        (OpError::NotAttempted, "not attempted: an earlier op failed"),
        (
            OpError::OwnerNotInRoom,
            "the element's owner is not in the room",
        ),
        (OpError::QueueFull, "the queue is full"),
    ];
    for (e, text) in ops {
        assert_eq!(e.to_string(), text);
    }
    let rejections = [
        (Rejection::RoomNotFound, "no such room"),
        (Rejection::RoomExists, "the room exists already"),
        (Rejection::NotInRoom, "the user is not in the room"),
        (Rejection::NoPermission, "the operator's role does not allow this"),
        (
            Rejection::TooManyOps { max: 10 },
            "more than 10 ops or elements in one request",
        ),
        (Rejection::Empty, "the request names no op or key"),
        (Rejection::InvalidParameter, "a parameter is invalid"),
        (
            Rejection::PolicyNotAllowed,
            "the profile does not let a request choose this batch policy",
        ),
        (
            Rejection::Op {
                index: 2,
                error: OpError::NotOwner,
            },
            "op 2 failed: the key belongs to another user",
        ),
        (Rejection::NothingDeleted, "nothing was deleted"),
        (Rejection::RateLimited, "the request rate is exhausted"),
        (
            Rejection::NotificationBudget,
            "the high-priority notification budget is spent",
        ),
        (
            Rejection::InvalidLockName,
            "the lock name is empty, too long or not printable ASCII",
        ),
        (Rejection::LockExists, "a lock of that name exists already"),
        (Rejection::LockNotFound, "no such lock"),
        (
            Rejection::LockCountLimit { max: 3 },
            "the room holds the most locks the profile allows (3)",
        ),
        (Rejection::LockHeld, "the lock is held by another user"),
        (Rejection::LockNotAcquired, "the user does not hold the lock"),
        (
            Rejection::WriteLockNotHeld,
            "the operator does not hold the write's lock and token",
        ),
        (
            Rejection::RevisionOutdated { current: 41 },
            "the room's attribute revision is 41, not the one expected",
        ),
        (Rejection::QueueEmpty, "the queue is empty"),
        (Rejection::CounterOverflow, "the counter's result would overflow"),
        (
            Rejection::CounterOutOfBounds,
            "the counter's result would lie outside its bounds",
        ),
        (
            Rejection::HistoryTruncated { oldest: 90 },
            "the room's history does not reach back that far: a catch-up starts at 90 at the earliest",
        ),
    ];
    for (r, text) in rejections {
        assert_eq!(r.to_string(), text);
    }
}
