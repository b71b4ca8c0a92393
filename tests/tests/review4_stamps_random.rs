//! Review of issue 9, round 4: random writes, deletes, exits and restores
//! at times that cross every edge of the 8-byte stamps (a range of
//! 2^32 ms, the base's last second `u32::MAX` in 2106, `u64::MAX`), with
//! revisions from a restored sequence number just below `u32::MAX`,
//! against a plain map of what was written. Seeded, bounded.

#[path = "common/mirror.rs"]
mod mirror;

use std::collections::BTreeMap;

use mirror::{decode, encode};
use roomstate::{Actor, Command, Engine, Millis, Op, Outcome, Profile, Success, Write};

const T0: u64 = 1_764_460_800_000;
const DAY: u64 = 86_400_000;
/// The first time no base can hold (the base's last second plus a range).
const EDGE: u64 = u32::MAX as u64 * 1000 + u32::MAX as u64 + 1;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// key -> (revision, changed_at, auto_delete)
type Model = BTreeMap<String, (u64, u64, bool)>;

fn check(e: &Engine, model: &Model, step: usize) {
    assert_eq!(e.check_invariants(), Ok(()), "step {step}");
    let got: Model = e
        .room("r")
        .unwrap()
        .attributes()
        .map(|a| {
            (
                a.key.to_string(),
                (a.revision, a.changed_at.0, a.auto_delete),
            )
        })
        .collect();
    assert_eq!(&got, model, "step {step}");
}

fn seq_of(out: &Outcome) -> u64 {
    match out {
        Ok(Success::Written(r)) => r.seq,
        other => panic!("{other:?}"),
    }
}

fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut p = Profile::easemob();
    p.limits.request_rate = None;
    p.limits.max_keys_per_room = None;
    p.limits.max_room_value_bytes = None;
    p.limits.max_engine_value_bytes = None;
    p.limits.notification_flow = None;
    let mut e = Engine::new(p);
    let mut now = T0;
    for c in [
        Command::create_room("r", "host"),
        Command::join("r", "host"),
        Command::join("r", "a"),
    ] {
        assert!(e.handle(Millis(now), c).is_ok());
    }
    // Revisions start just below u32::MAX on odd seeds.
    if seed % 2 == 1 {
        let (h, mut snap) = decode(&e.snapshot());
        snap.rooms[0].seq = u64::from(u32::MAX) - 20;
        e = Engine::restore(&encode(&h, &snap)).unwrap();
    }
    let mut model = Model::new();
    for step in 0..steps {
        // Months apart in the first two thirds, then the edge of 2106,
        // then the end of time.
        let late = step >= steps * 2 / 3;
        now = match rng.below(40) {
            0 => now.saturating_add(25 * DAY + rng.below(75 * DAY)),
            1 if late => now.max(EDGE - 1 - rng.below(2)),
            2 if late && rng.below(4) == 0 => now.max(EDGE + rng.below(3)),
            3 if step >= steps * 9 / 10 && rng.below(4) == 0 => u64::MAX,
            4..=20 => now.saturating_add(rng.below(1000)),
            _ => now,
        };
        let key = |rng: &mut Rng| format!("k{}", rng.below(24));
        match rng.below(20) {
            0 => {
                e = Engine::restore(&e.snapshot()).unwrap();
            }
            1 => {
                assert!(e.handle(Millis(now), Command::leave("r", "a")).is_ok());
                model.retain(|_, v| !v.2);
                assert!(e.handle(Millis(now), Command::join("r", "a")).is_ok());
            }
            2..=5 => {
                // A delete of a key that is there.
                let k = key(&mut rng);
                if !model.contains_key(&k) {
                    continue;
                }
                let w = Write::new("r", Actor::user("a")).op(Op::delete(k.as_str()));
                let _ = seq_of(&e.handle(Millis(now), Command::Write(w)));
                model.remove(&k);
            }
            _ => {
                // One to four ops, keys may repeat; a delete only of a key
                // there at that point of the batch, so every op applies.
                let n = 1 + rng.below(4);
                let mut w = Write::new("r", Actor::user("a"));
                let mut ops = Vec::new();
                let mut live: Vec<String> = model.keys().cloned().collect();
                for _ in 0..n {
                    let k = key(&mut rng);
                    let del = rng.below(3) == 0 && live.contains(&k);
                    let ad = rng.below(2) == 0;
                    if del {
                        live.retain(|x| *x != k);
                        w = w.op(Op::delete(k.as_str()));
                    } else {
                        live.push(k.clone());
                        w = w.op(Op::set(k.as_str(), "v").auto_delete(ad));
                    }
                    ops.push((k, del, ad));
                }
                let seq = seq_of(&e.handle(Millis(now), Command::Write(w)));
                let at = e.now().0;
                for (k, del, ad) in ops {
                    if del {
                        model.remove(&k);
                    } else {
                        model.insert(k, (seq, at, ad));
                    }
                }
            }
        }
        check(&e, &model, step);
    }
}

#[test]
fn review4_random_stamps_read_back_as_written() {
    for seed in 0..24 {
        run(seed, 400);
    }
}
