//! Review 3 (issue 9): the store's arena at the char-encoding boundaries
//! of its lengths, values cut short or grown in place over non-ASCII text,
//! and the switch between the tag scan and the `Large` index both ways
//! (growth past 32, deletes back to a few, compaction, exits), each
//! checked against a plain map, the invariants, and a snapshot round trip.

use std::collections::BTreeMap;

use roomstate::{Actor, Command, Engine, Millis, Op, Profile, Success, Unit, Write};

const NOW: Millis = Millis(1_000);

fn profile() -> Profile {
    let mut p = Profile::netease();
    p.limits.max_value_len = 1 << 20;
    p.limits.value_unit = Unit::Bytes;
    p.limits.max_room_value_bytes = None;
    p.limits.max_engine_value_bytes = None;
    p.limits.max_keys_per_room = None;
    p.limits.max_ops_per_write = p.limits.max_ops_per_write.max(4);
    p
}

fn engine() -> Engine {
    engine_with(profile())
}

/// An engine of profile `p` with room "r", created by "host".
fn engine_with(p: Profile) -> Engine {
    let mut e = Engine::new(p);
    e.handle(NOW, Command::create_room("r", "host")).unwrap();
    e
}

fn write(e: &mut Engine, actor: Actor, op: Op) {
    let w = Write::new("r", actor).op(op);
    let out = e.handle(NOW, Command::Write(w));
    assert!(
        matches!(&out, Ok(Success::Written(r)) if r.failed.is_empty()),
        "{out:?}"
    );
    e.drain_events(&mut Vec::new());
}

fn check(e: &mut Engine, want: &BTreeMap<String, String>) {
    e.check_invariants().unwrap();
    let view = e.room("r").unwrap();
    let got: BTreeMap<String, String> = view
        .attributes()
        .map(|a| (a.key.to_string(), a.value.to_string()))
        .collect();
    assert_eq!(got.len(), view.attributes().count(), "a key listed twice");
    assert_eq!(&got, want);
    let bytes: usize = want.values().map(String::len).sum();
    assert_eq!(view.value_bytes(), bytes as u64);
    for (k, v) in want {
        let r = e.handle(
            NOW,
            Command::Read {
                room: "r".into(),
                keys: Some(vec![k.as_str().into()]),
            },
        );
        match r {
            Ok(Success::Read(rep)) => {
                assert_eq!(rep.attributes.len(), 1, "{k}");
                assert_eq!(rep.attributes[0].value.as_str(), v.as_str(), "{k}");
            }
            other => panic!("{other:?}"),
        }
    }
    let back = Engine::restore(&e.snapshot()).unwrap();
    back.check_invariants().unwrap();
    let again: BTreeMap<String, String> = back
        .room("r")
        .unwrap()
        .attributes()
        .map(|a| (a.key.to_string(), a.value.to_string()))
        .collect();
    assert_eq!(&again, want);
}

/// A text of `n` bytes made of `unit` repeated, ASCII-padded.
fn text(n: usize, unit: &str) -> String {
    let mut s = String::with_capacity(n);
    while s.len() + unit.len() <= n {
        s.push_str(unit);
    }
    while s.len() < n {
        s.push('x');
    }
    s
}

const BOUNDARIES: [usize; 16] = [
    0, 1, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xD800, 0xF7FF, 0xF800, 0xFFFF, 0x1_0000, 0x1_07FF,
    0x1_0800, 0x1_F800, 0x2_0000,
];

#[test]
fn review3_lengths_at_the_encoding_boundaries_grow_and_shrink() {
    for unit in ["a", "é", "€", "😀"] {
        let mut e = engine();
        let mut want = BTreeMap::new();
        // Neighbours on both sides of the key that changes.
        for k in ["before", "after"] {
            write(&mut e, Actor::Admin, Op::set(k, "n"));
            want.insert(k.to_string(), "n".to_string());
        }
        let mut lens: Vec<usize> = Vec::new();
        for &b in &BOUNDARIES {
            for d in [-2i64, -1, 0, 1] {
                let n = b as i64 + d;
                if n >= 0 {
                    lens.push(n as usize);
                }
            }
        }
        // Up, then down (in place), then up and down alternately.
        let mut order = lens.clone();
        order.extend(lens.iter().rev());
        for (i, &n) in lens.iter().enumerate() {
            order.push(n);
            order.push(lens[lens.len() - 1 - i]);
        }
        for n in order {
            let v = text(n, unit);
            write(&mut e, Actor::Admin, Op::set("k", v.as_str()));
            want.insert("k".to_string(), v);
            check(&mut e, &want);
        }
    }
}

#[test]
fn review3_keys_of_every_width_and_a_long_key() {
    let mut p = profile();
    p.limits.max_key_len = 1 << 16;
    let mut e = engine_with(p);
    let mut want = BTreeMap::new();
    for (i, n) in [
        1usize, 0x7F, 0x80, 0x81, 0x7FF, 0x800, 0xD7FF, 0xD800, 0xF7FF, 0xF800, 0xFFFF,
    ]
    .into_iter()
    .enumerate()
    {
        let k = text(n, ["a", "é", "€"][i % 3]);
        let v = text(i * 37, "é");
        write(&mut e, Actor::Admin, Op::set(k.as_str(), v.as_str()));
        want.insert(k, v);
    }
    check(&mut e, &want);
}

/// Grows a room well past the scan threshold with auto-delete keys of
/// several users, then deletes, exits, rewrites, in an order that makes
/// the store compact its records and arena at every size.
#[test]
fn review3_scan_and_index_both_ways() {
    for seed in 1..40u64 {
        let mut x = seed;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut e = engine();
        let users = ["u0", "u1", "u2", "u3", "u4"];
        for u in users {
            e.handle(NOW, Command::join("r", u)).unwrap();
        }
        let mut want: BTreeMap<String, String> = BTreeMap::new();
        let mut owner: BTreeMap<String, (usize, bool)> = BTreeMap::new();
        let mut present = [true; 5];
        for step in 0..600 {
            let u = rnd(5) as usize;
            let key = format!("k{}", rnd(80));
            match rnd(12) {
                0 => {
                    // Exit (a kick) and join again: the auto-delete keys go.
                    if present[u] {
                        e.handle(
                            NOW,
                            Command::Exit {
                                room: "r".into(),
                                user: users[u].into(),
                            },
                        )
                        .unwrap();
                        e.drain_events(&mut Vec::new());
                        owner.retain(|k, (o, auto)| {
                            let gone = *o == u && *auto;
                            if gone {
                                want.remove(k);
                            }
                            !gone
                        });
                        present[u] = false;
                    } else {
                        e.handle(NOW, Command::join("r", users[u])).unwrap();
                        present[u] = true;
                    }
                }
                1..=4 => {
                    if want.contains_key(&key) {
                        write(&mut e, Actor::Admin, Op::delete(key.as_str()));
                        want.remove(&key);
                        owner.remove(&key);
                    }
                }
                _ => {
                    if !present[u] {
                        continue;
                    }
                    let v = text(rnd(300) as usize, ["a", "é", "€", "😀"][rnd(4) as usize]);
                    let auto = rnd(2) == 0;
                    // Forced, the owner taken: the model stays simple.
                    let w = Write::new("r", Actor::user(users[u]))
                        .op(Op::set(key.as_str(), v.as_str()).auto_delete(auto))
                        .forced()
                        .update_owner();
                    let out = e.handle(NOW, Command::Write(w));
                    assert!(
                        matches!(&out, Ok(Success::Written(r)) if r.failed.is_empty()),
                        "{out:?}"
                    );
                    e.drain_events(&mut Vec::new());
                    want.insert(key.clone(), v);
                    owner.insert(key, (u, auto));
                }
            }
            if step % 7 == 0 {
                check(&mut e, &want);
            } else {
                e.check_invariants().unwrap();
            }
        }
        check(&mut e, &want);
    }
}

/// Tag collisions: 16-bit tags collide in about one room in 130 holding
/// 32 keys, so 3,000 rooms of 32 keys (the most a scanning store holds),
/// each with half its keys deleted and set again, meet a few dozen. Every
/// key must be found, every deleted one not, in every room.
#[test]
fn review3_tag_collisions_in_scanning_stores() {
    let mut p = profile();
    p.limits.max_keys_per_room = None;
    let mut e = Engine::new(p);
    for r in 0..3_000 {
        let room = format!("r{r}");
        e.handle(NOW, Command::create_room(room.as_str(), "host"))
            .unwrap();
        let keys: Vec<String> = (0..32).map(|i| format!("key-{r}-{i}")).collect();
        let w = |ops: Vec<Op>| {
            let mut w = Write::new(room.as_str(), Actor::Admin);
            for op in ops {
                w = w.op(op);
            }
            Command::Write(w)
        };
        for k in &keys {
            let out = e.handle(NOW, w(vec![Op::set(k.as_str(), k.as_str())]));
            assert!(out.is_ok());
        }
        for k in keys.iter().step_by(2) {
            let out = e.handle(NOW, w(vec![Op::delete(k.as_str())]));
            assert!(
                matches!(out, Ok(Success::Written(ref r)) if r.applied == 1),
                "{out:?}"
            );
        }
        let view = e.room(&room).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let got = view.attribute(k).map(|a| a.value.to_string());
            let want = (i % 2 == 1).then(|| k.clone());
            assert_eq!(got, want, "{room} {k}");
        }
        for k in keys.iter().step_by(2) {
            let out = e.handle(NOW, w(vec![Op::set(k.as_str(), "again")]));
            assert!(out.is_ok());
        }
        let view = e.room(&room).unwrap();
        assert_eq!(view.attribute_count(), 32);
        for (i, k) in keys.iter().enumerate() {
            let want = if i % 2 == 0 { "again" } else { k.as_str() };
            assert_eq!(view.attribute(k).map(|a| a.value), Some(want), "{room} {k}");
        }
        e.drain_events(&mut Vec::new());
    }
    e.check_invariants().unwrap();
}
