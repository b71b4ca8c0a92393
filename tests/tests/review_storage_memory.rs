//! Review of the storage redesign (issue 9): what the room storage gives
//! back. The bounded-memory test runs six users and three keys; these
//! tests pass thousands of distinct users and keys through one room and
//! check that what the room holds afterwards is what is left in it, not
//! what passed through.
//!
//! Live heap bytes are counted per thread (tests run in parallel).

#[path = "common/live_heap.rs"]
mod live_heap;

use std::cell::Cell;

use live_heap::{LIVE, ON};
use roomstate::{Actor, Command, Engine, Event, Millis, Notify, Op, Profile, Write};

/// Live heap bytes of this thread: counting starts at the first call,
/// and the tests read differences between calls.
fn live() -> isize {
    ON.with(|c| c.set(true));
    LIVE.with(Cell::get) as isize
}

const NOW: Millis = Millis(1_000);

fn ok(e: &mut Engine, events: &mut Vec<Event>, cmd: Command) {
    let out = e.handle(NOW, cmd);
    assert!(out.is_ok(), "{out:?}");
    e.drain_events(events);
    e.recycle(events);
}

/// An engine with room `r`. The catch-up history is off: these tests
/// measure the storage, and the history (bounded by its own limits, and
/// counted by `bounded_memory`) would hold the events of the deletes.
fn room(mut profile: Profile) -> (Engine, Vec<Event>) {
    profile.limits.history_events = 0;
    let mut e = Engine::new(profile);
    let mut events = Vec::with_capacity(64);
    ok(
        &mut e,
        &mut events,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    );
    (e, events)
}

fn netease() -> Profile {
    let mut p = Profile::netease();
    p.limits.notification_flow = None;
    p
}

/// A user record is freed when its user has left and owns nothing: 20,000
/// distinct visitors (ids over 22 bytes, so each is a heap string) who
/// join, write an auto-delete key and leave cost the room nothing once
/// they are gone.
#[test]
fn review_records_of_users_who_left_are_given_back() {
    let (mut e, mut events) = room(netease());
    let visitor = |i: usize| format!("visitor-with-a-long-id-{i:08}");
    let visit = |e: &mut Engine, events: &mut Vec<Event>, i: usize| {
        let user = visitor(i);
        ok(
            e,
            events,
            Command::Join {
                room: "r".into(),
                user: user.as_str().into(),
            },
        );
        let w = Write::new("r", Actor::user(user.as_str())).op(Op::set(
            format!("seat-{}", i % 7),
            "taken",
        )
        .auto_delete(true));
        ok(e, events, Command::Write(w));
        ok(
            e,
            events,
            Command::Leave {
                room: "r".into(),
                user: user.as_str().into(),
            },
        );
    };
    for i in 0..100 {
        visit(&mut e, &mut events, i);
    }
    let before = live();
    for i in 100..20_100 {
        visit(&mut e, &mut events, i);
    }
    let grown = live() - before;
    assert_eq!(e.room("r").unwrap().attribute_count(), 0);
    assert!(
        grown < 4_096,
        "the room grew by {grown} bytes after 20,000 visitors left"
    );
    e.check_invariants().unwrap();
}

/// An emptied attribute store gives large buffers back ("small buffers are
/// kept, large ones are given back"): 1,000 keys of at most three bytes
/// with empty values (under 4 KiB of arena, 40 KB of records) are deleted,
/// and the room is about as small as before they came.
#[test]
fn review_an_emptied_attribute_store_gives_its_records_back() {
    let (mut e, mut events) = room(netease());
    let base = live();
    for chunk in 0..50 {
        let mut w = Write::new("r", Actor::Admin);
        for i in 0..20 {
            w = w.op(Op::set(format!("{}", chunk * 20 + i), ""));
        }
        ok(&mut e, &mut events, Command::Write(w));
    }
    assert_eq!(e.room("r").unwrap().attribute_count(), 1_000);
    let full = live() - base;
    for chunk in 0..50 {
        let mut w = Write::new("r", Actor::Admin);
        for i in 0..20 {
            w = w.op(Op::delete(format!("{}", chunk * 20 + i)));
        }
        ok(&mut e, &mut events, Command::Write(w));
    }
    assert_eq!(e.room("r").unwrap().attribute_count(), 0);
    let kept = live() - base;
    assert!(
        kept <= 4_096 + 1_024,
        "an emptied room keeps {kept} bytes (it held {full} bytes full)"
    );
    e.check_invariants().unwrap();
}

/// The same for the queue: 800 elements with one-character values (under
/// 4 KiB of arena, 19 KB of records) offered, then polled to empty.
#[test]
fn review_an_emptied_queue_gives_its_records_back() {
    let (mut e, mut events) = room(netease());
    ok(
        &mut e,
        &mut events,
        Command::QueueInit {
            room: "r".into(),
            operator: Actor::Admin,
            capacity: 1_000,
        },
    );
    let base = live();
    for i in 0..800 {
        ok(
            &mut e,
            &mut events,
            Command::QueueOffer {
                room: "r".into(),
                operator: Actor::Admin,
                key: format!("{i}").into(),
                value: "v".into(),
                transient: false,
                notify: Notify::default(),
            },
        );
    }
    let full = live() - base;
    for _ in 0..800 {
        ok(
            &mut e,
            &mut events,
            Command::QueuePoll {
                room: "r".into(),
                operator: Actor::Admin,
                key: None,
                notify: Notify::default(),
            },
        );
    }
    assert_eq!(e.room("r").unwrap().queue_len(), 0);
    let kept = live() - base;
    assert!(
        kept <= 4_096 + 1_024,
        "an emptied queue keeps {kept} bytes (it held {full} bytes full)"
    );
    e.check_invariants().unwrap();
}

/// An emptied store whose arena is over 4 KiB gives it back: two values
/// of 3,000 bytes, deleted.
#[test]
fn review_an_emptied_store_with_a_large_arena_gives_it_back() {
    let (mut e, mut events) = room(netease());
    let base = live();
    let w = Write::new("r", Actor::Admin)
        .op(Op::set("a", "x".repeat(3_000)))
        .op(Op::set("b", "y".repeat(3_000)));
    ok(&mut e, &mut events, Command::Write(w));
    let full = live() - base;
    assert!(full > 6_000, "{full}");
    let w = Write::new("r", Actor::Admin)
        .op(Op::delete("a"))
        .op(Op::delete("b"));
    ok(&mut e, &mut events, Command::Write(w));
    let kept = live() - base;
    assert!(
        kept < 1_024,
        "an emptied room keeps {kept} bytes of its {full}"
    );
}
