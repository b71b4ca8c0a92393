//! Review 3 (issue 9): the one-op write path (`write_one`) against the
//! batch path. A write of one op and the same op followed by an op that
//! can only fail (an empty key) must leave the same state, the same
//! events and the same report (but for the extra failure): the policy is
//! BestEffort in both, so the extra op changes nothing.

use roomstate::{
    Actor, BatchPolicy, Command, Engine, Event, Millis, Op, Outcome, PolicyRule, Profile, Success,
    Write,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn profiles() -> Vec<Profile> {
    let mut out = Vec::new();
    for mut p in [
        Profile::tencent(),
        Profile::zego(),
        Profile::netease(),
        Profile::agora_rtm(),
    ] {
        p.rules.set_policy = PolicyRule::PerRequest(BatchPolicy::BestEffort);
        p.rules.delete_policy = PolicyRule::PerRequest(BatchPolicy::BestEffort);
        p.limits.max_ops_per_write = p.limits.max_ops_per_write.max(2);
        p.limits.max_keys_per_room = Some(6);
        out.push(p);
    }
    out
}

/// The report without the extra op's failure.
fn strip(o: Outcome) -> Outcome {
    match o {
        Ok(Success::Written(mut r)) => {
            r.failed.retain(|f| !f.key.is_empty());
            if r.failed.is_empty() {
                // nothing
            }
            Ok(Success::Written(r))
        }
        other => other,
    }
}

fn random_op(rng: &mut Rng) -> Op {
    let key = ["a", "b", "c", "d", "e", "f", "g"][rng.below(7) as usize];
    if rng.below(4) == 0 {
        return Op::delete(key);
    }
    let value = ["", "v", "value", "é€😀", "a longer value than the others"][rng.below(5) as usize];
    let mut op = Op::set(key, value);
    match rng.below(4) {
        0 => op = op.auto_delete(true),
        1 => op = op.auto_delete(false),
        _ => {}
    }
    if rng.below(5) == 0 {
        op = op.ttl(1 + rng.below(50));
    }
    op
}

#[test]
fn review3_one_op_write_equals_the_batch_path() {
    let users = ["host", "u1", "u2", "u3"];
    for (pi, profile) in profiles().into_iter().enumerate() {
        for seed in 1..100u64 {
            let mut rng = Rng(seed * 7919 + pi as u64);
            let mut a = Engine::new(profile);
            let mut b = Engine::new(profile);
            let mut now = 1u64;
            let create = Command::create_room("r", "host");
            assert_eq!(
                a.handle(Millis(now), create.clone()),
                b.handle(Millis(now), create)
            );
            for step in 0..120 {
                now += rng.below(10);
                let user = users[rng.below(4) as usize];
                let (ca, cb) = match rng.below(10) {
                    0 => {
                        let c = Command::join("r", user);
                        (c.clone(), c)
                    }
                    1 => {
                        let c = Command::leave("r", user);
                        (c.clone(), c)
                    }
                    2 => (Command::Tick, Command::Tick),
                    _ => {
                        let actor = if rng.below(6) == 0 {
                            Actor::Admin
                        } else {
                            Actor::user(user)
                        };
                        let op = random_op(&mut rng);
                        let mut w = Write::new("r", actor).policy(BatchPolicy::BestEffort);
                        if rng.below(3) == 0 {
                            w = w.forced();
                        }
                        if rng.below(5) == 0 {
                            w = w.update_owner();
                        }
                        let bad = if matches!(op, Op::Delete { .. }) {
                            Op::delete("")
                        } else {
                            Op::set("", "x")
                        };
                        let wa = w.clone().op(op.clone());
                        let wb = w.op(op).op(bad);
                        (Command::Write(wa), Command::Write(wb))
                    }
                };
                let oa = a.handle(Millis(now), ca.clone());
                let ob = strip(b.handle(Millis(now), cb));
                let mut ea: Vec<Event> = Vec::new();
                let mut eb: Vec<Event> = Vec::new();
                a.drain_events(&mut ea);
                b.drain_events(&mut eb);
                let ctx = format!("profile {pi} seed {seed} step {step}: {ca:?}");
                assert_eq!(oa, ob, "{ctx}");
                assert_eq!(ea, eb, "{ctx}");
                a.check_invariants().unwrap();
                b.check_invariants().unwrap();
                assert_eq!(a.snapshot(), b.snapshot(), "state differs: {ctx}");
            }
        }
    }
}
