//! Review of the storage redesign (issue 9): the engine against the
//! reference model on stores far larger than the simulator's (which never
//! holds more than a dozen keys per room, never a key over 64 bytes and
//! never more than four ops per write).
//!
//! Here a room holds hundreds of attributes and elements, so the store's
//! growth policy, meta compaction (tombstones > live, >= 32), arena
//! rebuilds, the index rebuild, the owner lists through the records, the
//! long-key path of `set_value` (keys over 64 bytes), the dry run's hints
//! (writes of up to 20 ops, more than the 8 hints it keeps) and the user
//! free list (40 users) all run. Every step is checked against the model
//! (`lockstep`: outcomes, events, deadlines, invariants); every few
//! hundred steps the engine is replaced by its own restored snapshot, so
//! the streaming restore's rebuild of the owner index is driven too.

use roomstate::{
    Actor, BatchPolicy, Command, Engine, Expect, NewElement, Notify, Op, Profile, Role, Str, Write,
};
use roomstate_tests::fuzzing::lockstep;
use roomstate_tests::model::Model;
use roomstate_tests::sim::Rng;

/// Large limits: no key count, a room total that is reached now and then,
/// a queue of up to 400 elements.
fn profile() -> Profile {
    let mut p = Profile::netease();
    p.limits.notification_flow = None;
    p.limits.max_room_value_bytes = Some(120_000);
    p.limits.max_engine_value_bytes = Some(300_000);
    p.limits.disconnect_grace_ms = 2_000;
    p.limits.queue.default_capacity = 400;
    p.limits.queue.max_capacity = 600;
    p.rules.default_auto_delete = true;
    p
}

struct Alphabet {
    rooms: Vec<Str>,
    users: Vec<Str>,
    keys: Vec<Str>,
    values: Vec<Str>,
}

fn alphabet() -> Alphabet {
    let mut keys: Vec<Str> = (0..160).map(|i| Str::from(format!("k{i}"))).collect();
    // Keys over the 64 bytes `set_value` copies on the stack: the arena
    // path. Some in two-byte characters (100 chars, 200 bytes).
    keys.extend((0..24).map(|i| Str::from(format!("long{i}-{}", "x".repeat(70 + i)))));
    keys.extend((0..6).map(|i| Str::from(format!("{i}{}", "é".repeat(100)))));
    let values = [
        "".to_string(),
        "v".into(),
        "abc".into(),
        "y".repeat(10),
        "z".repeat(63),
        "w".repeat(200),
        "é".repeat(300),
        "q".repeat(1500),
        "r".repeat(4000),
    ]
    .map(Str::from)
    .to_vec();
    Alphabet {
        rooms: ["a", "b"].map(Str::from).to_vec(),
        users: (0..40).map(|i| Str::from(format!("user{i}"))).collect(),
        keys,
        values,
    }
}

fn command(a: &Alphabet, r: &mut Rng) -> Command {
    let room = r.pick(&a.rooms).clone();
    let user = r.pick(&a.users).clone();
    let actor = |r: &mut Rng| {
        if r.chance(10) {
            Actor::Admin
        } else {
            Actor::User(r.pick(&a.users).clone())
        }
    };
    let value = |r: &mut Rng| {
        // Mostly short values, so rooms fill with many records.
        if r.chance(70) {
            a.values[r.below(4) as usize].clone()
        } else {
            r.pick(&a.values).clone()
        }
    };
    match r.below(100) {
        0 => Command::CreateRoom {
            room,
            creator: user,
        },
        1..=14 => Command::Join { room, user },
        15..=18 => Command::Leave { room, user },
        19..=21 => Command::Disconnect { room, user },
        22..=23 => Command::Exit { room, user },
        24 => Command::SetRole {
            room,
            user,
            role: *r.pick(&[Role::Member, Role::Admin]),
        },
        25..=59 => {
            let mut w = Write::new(room, actor(r));
            for _ in 0..1 + r.below(20) {
                let key = r.pick(&a.keys).clone();
                let mut op = if r.chance(70) {
                    let op = Op::set(key, value(r));
                    match r.below(3) {
                        0 => op.auto_delete(true),
                        1 => op.auto_delete(false),
                        _ => op,
                    }
                } else {
                    Op::delete(key)
                };
                if r.chance(5) {
                    op = op.expect(Expect::Absent);
                }
                w = w.op(op);
            }
            w.force = r.chance(30);
            w.update_owner = r.chance(10);
            if r.chance(20) {
                w.policy = Some(BatchPolicy::BestEffort);
            }
            Command::Write(w)
        }
        60..=62 => Command::Read { room, keys: None },
        63..=72 => Command::QueueOffer {
            room,
            operator: actor(r),
            key: r.pick(&a.keys).clone(),
            value: value(r),
            transient: r.chance(50),
            notify: Notify::default(),
        },
        73..=78 => Command::QueueBatchOffer {
            room,
            operator: actor(r),
            elements: (0..1 + r.below(20))
                .map(|_| NewElement {
                    key: r.pick(&a.keys).clone(),
                    value: value(r),
                    owner: r.chance(40).then(|| r.pick(&a.users).clone()),
                    transient: [None, Some(true), Some(false)][r.below(3) as usize],
                })
                .collect(),
            transient: r.chance(50),
            notify: Notify::default(),
        },
        79..=81 => Command::QueueBatchUpdate {
            room,
            operator: Actor::Admin,
            elements: (0..1 + r.below(10))
                .map(|_| (r.pick(&a.keys).clone(), value(r)))
                .collect(),
            notify: Notify::default(),
        },
        82..=94 => Command::QueuePoll {
            room,
            operator: actor(r),
            key: r.chance(50).then(|| r.pick(&a.keys).clone()),
            notify: Notify::default(),
        },
        95 => Command::QueueList { room },
        96 => Command::QueueDrop {
            room,
            operator: Actor::Admin,
        },
        97 => Command::QueueInit {
            room,
            operator: Actor::Admin,
            capacity: 400 + r.below(200) as u32,
        },
        _ => Command::Tick,
    }
}

fn run(seed: u64, steps: usize) {
    let a = alphabet();
    let p = profile();
    let mut engine = Engine::new(p);
    let mut model = Model::new(p);
    let mut r = Rng::new(seed);
    let mut now = 1_000u64;
    for room in &a.rooms {
        let create = Command::CreateRoom {
            room: room.clone(),
            creator: "host".into(),
        };
        let _ = lockstep(&mut engine, &mut model, now, create, 0);
    }
    for step in 1..steps {
        now += if r.chance(3) { 3_000 } else { r.below(50) };
        let cmd = command(&a, &mut r);
        let _ = lockstep(&mut engine, &mut model, now, cmd, step);
        if step % 400 == 0 {
            let bytes = engine.snapshot();
            let restored = Engine::restore(&bytes).expect("own snapshot restores");
            assert_eq!(restored.snapshot(), bytes, "seed {seed} step {step}");
            restored.check_invariants().expect("restored invariants");
            engine = restored;
        }
    }
    // The stores really were large: otherwise this test checks nothing new.
    let total: usize = a
        .rooms
        .iter()
        .filter_map(|id| engine.room(id))
        .map(|v| v.attribute_count() + v.queue_len())
        .sum();
    assert!(total > 100, "seed {seed}: only {total} records at the end");
}

#[test]
fn review_large_rooms_with_long_keys_and_wide_writes_match_the_model() {
    for seed in 1..=3 {
        run(seed, 2_500);
    }
}
