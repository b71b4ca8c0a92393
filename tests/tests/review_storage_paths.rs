//! Review of the storage redesign (issue 9): directed tests for store
//! paths that no other test reaches with a check on the result.
//!
//! - `Store::set_value` copies keys of up to 64 bytes through the stack
//!   and longer ones within the arena; no other test overwrites a key
//!   over 64 bytes with a longer value.
//! - The write's dry run keeps position hints for its first 8 lookups;
//!   only writes of more than 8 ops reach the fallback.
//! - A queue drained from its head and filled again runs the `first`
//!   cursor through compaction.

use roomstate::{
    Actor, Attribute, Command, Engine, Millis, Notify, Op, Profile, QueueElement, ReadReport,
    Success, Write,
};

const NOW: Millis = Millis(1_000);

fn engine() -> Engine {
    let mut p = Profile::netease();
    p.limits.notification_flow = None;
    let mut e = Engine::new(p);
    e.handle(
        NOW,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    )
    .unwrap();
    e
}

fn write(e: &mut Engine, w: Write) {
    let out = e.handle(NOW, Command::Write(w));
    assert!(
        matches!(&out, Ok(Success::Written(r)) if r.failed.is_empty()),
        "{out:?}"
    );
}

fn read(e: &mut Engine) -> Vec<(String, String)> {
    let Ok(Success::Read(ReadReport { attributes, .. })) = e.handle(
        NOW,
        Command::Read {
            room: "r".into(),
            keys: None,
        },
    ) else {
        panic!("read failed")
    };
    attributes
        .into_iter()
        .map(|Attribute { key, value, .. }| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn review_a_key_over_64_bytes_keeps_its_key_when_its_value_grows() {
    let mut e = engine();
    let long = format!("long-{}", "k".repeat(95));
    let wide = "é".repeat(60); // 60 chars, 120 bytes
    write(&mut e, Write::new("r", Actor::Admin).op(Op::set("a", "1")));
    write(
        &mut e,
        Write::new("r", Actor::Admin).op(Op::set(long.as_str(), "v")),
    );
    write(
        &mut e,
        Write::new("r", Actor::Admin).op(Op::set(wide.as_str(), "v")),
    );
    write(&mut e, Write::new("r", Actor::Admin).op(Op::set("b", "2")));
    // Each overwrite grows the value, so the record moves to the arena's
    // end every time; interleave them so the key is copied from a record
    // that has itself moved before.
    let mut expected_long = String::new();
    let mut expected_wide = String::new();
    for i in 1..40 {
        expected_long = "x".repeat(i * 3);
        expected_wide = "y".repeat(i * 3 + 1);
        let w = Write::new("r", Actor::Admin)
            .op(Op::set(long.as_str(), expected_long.as_str()))
            .op(Op::set(wide.as_str(), expected_wide.as_str()));
        write(&mut e, w);
        let view = e.room("r").unwrap();
        let a = view.attribute(&long).expect("long key found");
        assert_eq!((a.key, a.value), (long.as_str(), expected_long.as_str()));
        let a = view.attribute(&wide).expect("wide key found");
        assert_eq!((a.key, a.value), (wide.as_str(), expected_wide.as_str()));
        e.check_invariants().unwrap();
    }
    // Listing order is insertion order, whatever the arena did.
    let listed = read(&mut e);
    let want = vec![
        ("a".to_string(), "1".to_string()),
        (long.clone(), expected_long),
        (wide.clone(), expected_wide),
        ("b".to_string(), "2".to_string()),
    ];
    assert_eq!(listed, want);
}

#[test]
fn review_a_write_of_twenty_ops_applies_each_op_to_its_own_key() {
    let mut e = engine();
    // Keys 0..10 exist; the write deletes 0..5, overwrites 5..10 and
    // creates 10..20 (lookups 9..20 have no hint).
    let mut w = Write::new("r", Actor::Admin);
    for i in 0..10 {
        w = w.op(Op::set(format!("k{i}"), "old"));
    }
    write(&mut e, w);
    let mut w = Write::new("r", Actor::Admin);
    for i in 0..5 {
        w = w.op(Op::delete(format!("k{i}")));
    }
    for i in 5..20 {
        w = w.op(Op::set(format!("k{i}"), format!("new{i}")));
    }
    write(&mut e, w);
    let want: Vec<(String, String)> = (5..20)
        .map(|i| (format!("k{i}"), format!("new{i}")))
        .collect();
    assert_eq!(read(&mut e), want);
    e.check_invariants().unwrap();
    // The same keys once more, deletes last: each hint still names the
    // key's record although earlier ops appended and removed others.
    let mut w = Write::new("r", Actor::Admin);
    for i in 0..5 {
        w = w.op(Op::set(format!("k{i}"), "back"));
    }
    for i in 5..20 {
        w = w.op(Op::delete(format!("k{i}")));
    }
    write(&mut e, w);
    let want: Vec<(String, String)> = (0..5)
        .map(|i| (format!("k{i}"), "back".to_string()))
        .collect();
    assert_eq!(read(&mut e), want);
    e.check_invariants().unwrap();
}

fn offer(e: &mut Engine, key: &str) {
    let out = e.handle(
        NOW,
        Command::QueueOffer {
            room: "r".into(),
            operator: Actor::Admin,
            key: key.into(),
            value: key.into(),
            transient: false,
            notify: Notify::default(),
        },
    );
    assert_eq!(out, Ok(Success::Done));
}

fn poll_head(e: &mut Engine) -> String {
    match e.handle(
        NOW,
        Command::QueuePoll {
            room: "r".into(),
            operator: Actor::Admin,
            key: None,
            notify: Notify::default(),
        },
    ) {
        Ok(Success::Polled(QueueElement { key, .. })) => key.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn review_a_queue_polled_from_its_head_stays_in_order_through_compactions() {
    let mut e = engine();
    // The expected queue, front first.
    let mut model: std::collections::VecDeque<String> = Default::default();
    let mut next = 0;
    for round in 0..30 {
        // Offer a few more than are polled, so the queue grows slowly
        // while its head keeps moving (tombstones at the front).
        for _ in 0..(5 + round % 4) {
            let k = format!("e{next}");
            offer(&mut e, &k);
            model.push_back(k);
            next += 1;
        }
        for _ in 0..5 {
            assert_eq!(Some(poll_head(&mut e)), model.pop_front());
        }
        // A named poll just behind the head leaves a tombstone there.
        if round % 3 == 0 && model.len() > 2 {
            let k = model.remove(1).unwrap();
            let out = e.handle(
                NOW,
                Command::QueuePoll {
                    room: "r".into(),
                    operator: Actor::Admin,
                    key: Some(k.as_str().into()),
                    notify: Notify::default(),
                },
            );
            assert!(matches!(out, Ok(Success::Polled(_))), "{out:?}");
        }
        e.check_invariants().unwrap();
    }
    let Ok(Success::Elements(list)) = e.handle(NOW, Command::QueueList { room: "r".into() }) else {
        panic!("list failed")
    };
    let listed: Vec<String> = list.elements.iter().map(|x| x.key.to_string()).collect();
    assert_eq!(listed, Vec::from(model.clone()));
    // Polling everything returns the elements in that order.
    let polled: Vec<String> = (0..listed.len()).map(|_| poll_head(&mut e)).collect();
    assert_eq!(polled, listed);
    assert_eq!(e.room("r").unwrap().queue_len(), 0);
    e.check_invariants().unwrap();
}
