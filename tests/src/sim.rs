//! A seeded, deterministic simulation: each seed picks a profile (a
//! built-in or random small limits), a command mix (some kinds switched
//! off), alphabets and a time pattern, then drives engine and model in
//! lockstep with invariants after every step. Every run is done twice; the
//! hashes of all outcomes, events and the final snapshot must match, so
//! nothing may depend on hash seeds or allocation addresses.
//!
//! A failure names the seed and step; `simulate --seed S --commands N`
//! replays it.

use roomstate::{
    Actor, BatchPolicy, Command, CounterOp, Engine, Expect, HighPolicy, NewElement, Notify, Op,
    OwnerRule, PolicyRule, Profile, Role, Str, Unit, Write,
};

use crate::follower::{FollowStats, Follower};
use crate::fuzzing::lockstep;
use crate::gen;
use crate::model::Model;

/// SplitMix64: tiny, fast, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// Command kinds the mix weighs.
const KINDS: usize = 28;

/// Everything a seed decides before its first command.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The profile in force.
    pub profile: Profile,
    /// Weight of each command kind (0: switched off).
    pub weights: [u32; KINDS],
    /// Room ids.
    pub rooms: Vec<Str>,
    /// User ids.
    pub users: Vec<Str>,
    /// Attribute and element keys (some invalid for the profile).
    pub keys: Vec<Str>,
    /// Values, of varied length and width.
    pub values: Vec<Str>,
    /// Lock names (some invalid for the profile).
    pub locks: Vec<Str>,
    /// Percent of steps that jump past grace periods and windows.
    pub jump_percent: u64,
    /// Percent of steps whose `now` goes backwards.
    pub back_percent: u64,
}

impl Scenario {
    /// The scenario of `seed`.
    #[must_use]
    pub fn from_seed(seed: u64) -> Scenario {
        let mut r = Rng::new(seed);
        let named = gen::profiles();
        let profile = if r.chance(40) {
            r.pick(&named).1
        } else {
            random_profile(&mut r)
        };
        let mut weights = [0u32; KINDS];
        for w in &mut weights {
            *w = if r.chance(15) {
                0
            } else {
                1 + r.below(10) as u32
            };
        }
        weights[7] += 10; // writes dominate, as on a real server
        weights[2] += 3; // and joins keep rooms populated
        weights[0] = 2 + weights[0] / 3; // rooms are always created,
        weights[1] = u32::from(r.chance(50)); // and destroyed rarely if at all
        let names = |r: &mut Rng, prefix: &str, lo: u64, hi: u64| -> Vec<Str> {
            (0..lo + r.below(hi - lo + 1))
                .map(|i| Str::from(format!("{prefix}{i}")))
                .collect()
        };
        let rooms = names(&mut r, "r", 1, 4);
        // A crowded seed (one in four) has rooms of more user records and
        // attributes than the engine keeps in its small layouts (users found
        // by a scan up to 8 records, and the like), so its indexed paths are
        // compared with the model too; its profile's per-room key and byte
        // limits are lifted (or raised) to let the rooms fill.
        let crowded = r.chance(25);
        let (users, mut keys) = if crowded {
            (names(&mut r, "u", 9, 40), names(&mut r, "k", 17, 60))
        } else {
            (names(&mut r, "u", 1, 6), names(&mut r, "k", 2, 8))
        };
        let mut profile = profile;
        if crowded {
            let l = &mut profile.limits;
            l.max_keys_per_room = r.chance(50).then(|| 16 + r.below(48) as u32);
            l.max_room_value_bytes = r.chance(30).then(|| 2_000 + r.below(20_000));
            l.max_engine_value_bytes = l.max_engine_value_bytes.map(|b| b.max(40_000));
            weights[2] += 6; // more joins, to fill the rooms with members
        }
        keys.extend(
            [
                "",
                "key.with.dots",
                "seventeen_bytes_k",
                "bad key!",
                "ké",
                "k\"q",
            ]
            .map(Str::from),
        );
        // A user, a key and values that a JSON reply must escape: the
        // engine's `plain` flags are checked on them.
        let mut users = users;
        users.push(Str::from("u\\q"));
        let values = [
            "",
            "v",
            "é",
            "line\nbreak",
            "tab\t\"quoted\"",
            "medium value",
            "🎤🎤🎤🎤",
            &"x".repeat(40),
            &"y".repeat(1100),
        ]
        .map(Str::from)
        .to_vec();
        let mut locks = names(&mut r, "L", 1, 3);
        locks.extend(["", "lé"].map(Str::from));
        locks.push(Str::from("l".repeat(65)));
        Scenario {
            profile,
            weights,
            rooms,
            users,
            keys,
            values,
            locks,
            jump_percent: r.below(8),
            back_percent: r.below(5),
        }
    }

    fn actor(&self, r: &mut Rng) -> Actor {
        if r.chance(10) {
            Actor::Admin
        } else {
            Actor::User(r.pick(&self.users).clone())
        }
    }

    fn notify(&self, r: &mut Rng) -> Notify {
        Notify {
            notify: !r.chance(10),
            ext: r.chance(10).then(|| r.pick(&self.values).clone()),
            high: match r.below(6) {
                0 => Some(HighPolicy::Downgrade),
                1 => Some(HighPolicy::Reject),
                _ => None,
            },
        }
    }

    fn op(&self, r: &mut Rng) -> Op {
        let key = r.pick(&self.keys).clone();
        let mut op = if r.chance(75) {
            let mut op = Op::set(key, r.pick(&self.values).clone());
            if r.chance(15) {
                op = op.ttl(*r.pick(&[0, 1, 250, 1_000, 40_000]));
            }
            match r.below(3) {
                0 => op.auto_delete(true),
                1 => op.auto_delete(false),
                _ => op,
            }
        } else {
            Op::delete(key)
        };
        if r.chance(15) {
            op = op.expect(match r.below(5) {
                0 | 1 => Expect::Absent,
                2 => Expect::Present,
                _ => Expect::Revision(r.below(30)),
            });
        }
        op
    }

    /// The next command.
    pub fn command(&self, r: &mut Rng) -> Command {
        let total: u32 = self.weights.iter().sum();
        let mut x = r.below(u64::from(total.max(1))) as u32;
        let mut kind = KINDS - 1;
        for (i, w) in self.weights.iter().enumerate() {
            if x < *w {
                kind = i;
                break;
            }
            x -= w;
        }
        let room = r.pick(&self.rooms).clone();
        let user = r.pick(&self.users).clone();
        match kind {
            0 => Command::CreateRoom {
                room,
                creator: user,
            },
            1 => Command::DestroyRoom { room },
            2 => Command::Join { room, user },
            3 => Command::Leave { room, user },
            4 => Command::Disconnect { room, user },
            5 => Command::Exit { room, user },
            6 => Command::SetRole {
                room,
                user,
                role: *r.pick(&[Role::Member, Role::Admin, Role::Admin, Role::Creator]),
            },
            7 => {
                let mut w = Write::new(room, self.actor(r));
                for _ in 0..1 + r.below(4) {
                    w = w.op(self.op(r));
                }
                w.force = r.chance(15);
                w.update_owner = r.chance(15);
                if r.chance(20) {
                    w.policy = Some(*r.pick(&[
                        BatchPolicy::Atomic,
                        BatchPolicy::BestEffort,
                        BatchPolicy::StopOnError,
                    ]));
                }
                if r.chance(10) {
                    w = w.lock(r.pick(&self.locks).clone(), r.below(4));
                }
                if r.chance(10) {
                    w = w.major_revision(r.below(40));
                }
                Command::Write(w)
            }
            8 => Command::Read {
                room,
                keys: r.chance(40).then(|| {
                    (0..r.below(3))
                        .map(|_| r.pick(&self.keys).clone())
                        .collect()
                }),
            },
            9 => Command::QueueInit {
                room,
                operator: self.actor(r),
                capacity: r.below(6) as u32,
            },
            10 => Command::QueueDrop {
                room,
                operator: self.actor(r),
            },
            11 => Command::QueueOffer {
                room,
                operator: self.actor(r),
                key: r.pick(&self.keys).clone(),
                value: r.pick(&self.values).clone(),
                transient: r.chance(50),
                notify: self.notify(r),
            },
            12 => Command::QueueBatchOffer {
                room,
                operator: self.actor(r),
                elements: (0..r.below(4))
                    .map(|_| NewElement {
                        key: r.pick(&self.keys).clone(),
                        value: r.pick(&self.values).clone(),
                        owner: r.chance(40).then(|| r.pick(&self.users).clone()),
                        transient: [None, Some(true), Some(false)][r.below(3) as usize],
                    })
                    .collect(),
                transient: r.chance(50),
                notify: self.notify(r),
            },
            13 => Command::QueueBatchUpdate {
                room,
                operator: self.actor(r),
                elements: (0..r.below(4))
                    .map(|_| (r.pick(&self.keys).clone(), r.pick(&self.values).clone()))
                    .collect(),
                notify: self.notify(r),
            },
            14 => Command::QueueList { room },
            15 => Command::QueuePoll {
                room,
                operator: self.actor(r),
                key: r.chance(50).then(|| r.pick(&self.keys).clone()),
                notify: self.notify(r),
            },
            16 => Command::QueueMultiGet {
                room,
                keys: (0..r.below(4))
                    .map(|_| r.pick(&self.keys).clone())
                    .collect(),
            },
            18 => Command::SetLock {
                room,
                name: r.pick(&self.locks).clone(),
                ttl_ms: *r.pick(&[0, 1, 200, 1_000, 5_000, 60_000, u64::MAX]),
            },
            19 => Command::AcquireLock {
                room,
                name: r.pick(&self.locks).clone(),
                user,
                retry: r.chance(60),
            },
            20 => Command::ReleaseLock {
                room,
                name: r.pick(&self.locks).clone(),
                user,
            },
            21 => Command::RevokeLock {
                room,
                name: r.pick(&self.locks).clone(),
                owner: user,
                operator: self.actor(r),
            },
            22 => Command::RemoveLock {
                room,
                name: r.pick(&self.locks).clone(),
            },
            23 => Command::GetLocks { room },
            24 => Command::Counter {
                room,
                operator: self.actor(r),
                key: r.pick(&self.keys).clone(),
                op: match r.below(10) {
                    0 => CounterOp::Set(*r.pick(&[i64::MIN, i64::MAX, 0])),
                    1 => CounterOp::Increase(u64::MAX >> r.below(2)),
                    2..=3 => CounterOp::Set(r.below(7) as i64 - 3),
                    4..=6 => CounterOp::Increase(r.below(4)),
                    _ => CounterOp::Decrease(r.below(4)),
                },
                min: r.chance(30).then(|| r.below(3) as i64 - 1),
                max: r.chance(20).then(|| r.below(8) as i64),
            },
            25 => Command::CounterDelete {
                room,
                operator: self.actor(r),
                keys: r.chance(70).then(|| {
                    (0..r.below(3))
                        .map(|_| r.pick(&self.keys).clone())
                        .collect()
                }),
            },
            26 => Command::CounterRead {
                room,
                keys: r.chance(40).then(|| {
                    (0..r.below(3))
                        .map(|_| r.pick(&self.keys).clone())
                        .collect()
                }),
            },
            27 => Command::Since {
                room,
                seq: r.below(64),
            },
            _ => Command::Tick,
        }
    }

    /// The next `now` after `now`.
    pub fn advance(&self, r: &mut Rng, now: u64) -> u64 {
        let grace = self.profile.limits.disconnect_grace_ms;
        if r.chance(self.back_percent) {
            now.saturating_sub(r.below(2_000))
        } else if r.chance(self.jump_percent) {
            now + grace + r.below(grace.max(1_000) * 2)
        } else if r.below(1_000) == 0 {
            // Weeks to months: past the 49.7-day range of an attribute's
            // stored time (core/src/stamp.rs), so stamps rebase and go wide.
            now + (1 << 31) + r.below(3 << 31)
        } else if r.chance(30) {
            now
        } else {
            now + r.below(300)
        }
    }
}

/// Small random limits and rules, so that limits are hit constantly.
fn random_profile(r: &mut Rng) -> Profile {
    let mut p = gen::tiny();
    let l = &mut p.limits;
    l.max_keys_per_room = r.chance(80).then(|| 1 + r.below(5) as u32);
    l.max_ops_per_write = 1 + r.below(4) as u32;
    l.max_key_len = 1 + r.below(16) as u32;
    l.key_unit = *r.pick(&[Unit::Bytes, Unit::Chars]);
    l.max_value_len = r.below(50) as u32;
    l.value_unit = *r.pick(&[Unit::Bytes, Unit::Chars]);
    l.key_charset = *r.pick(&[roomstate::Charset::Any, roomstate::Charset::Restricted]);
    l.max_room_value_bytes = r.chance(70).then(|| r.below(60));
    l.max_engine_value_bytes = r.chance(50).then(|| r.below(120));
    l.request_rate = r.chance(60).then(|| roomstate::Rate {
        per_second: r.below(30) as u32,
    });
    l.notification_flow = r.chance(60).then(|| roomstate::Flow {
        normal_per_second: r.below(6) as u32,
        high_per_second: r.below(4) as u32,
    });
    l.disconnect_grace_ms = *r.pick(&[0, 1, 500, 5_000, 30_000]);
    l.history_events = *r.pick(&[0, 1, 3, 8, 256]);
    l.history_bytes = *r.pick(&[0, 12, 40, 100, 400, 65_536]);
    l.locks.max_per_room = r.below(4) as u32;
    l.locks.max_name_len = 1 + r.below(8) as u32;
    l.locks.min_ttl_ms = *r.pick(&[0, 1, 100, 1_000]);
    l.locks.max_ttl_ms = *r.pick(&[1, 500, 5_000, 60_000]);
    l.queue.default_capacity = 1 + r.below(5) as u32;
    l.queue.max_capacity = 1 + r.below(8) as u32;
    l.queue.max_batch_offer = 1 + r.below(4) as u32;
    l.queue.max_batch_update = 1 + r.below(4) as u32;
    l.queue.max_multi_get = 1 + r.below(4) as u32;
    l.queue.max_key_len = 1 + r.below(16) as u32;
    l.queue.max_value_len = r.below(50) as u32;
    l.queue.max_ext_chars = r.below(8) as u32;
    let policy = |r: &mut Rng| {
        let b = *r.pick(&[
            BatchPolicy::Atomic,
            BatchPolicy::BestEffort,
            BatchPolicy::StopOnError,
        ]);
        if r.chance(50) {
            PolicyRule::Fixed(b)
        } else {
            PolicyRule::PerRequest(b)
        }
    };
    p.rules.set_policy = policy(r);
    p.rules.delete_policy = policy(r);
    p.rules.writer_must_be_member = r.chance(40);
    p.rules.default_auto_delete = r.chance(50);
    p.rules.owner_on_overwrite = *r.pick(&[
        OwnerRule::Keep,
        OwnerRule::OperatorWhenForced,
        OwnerRule::Operator,
    ]);
    p.rules.reject_if_nothing_deleted = r.chance(40);
    p
}

/// FNV-1a, for output hashes that are the same on every machine.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(pub u64);

impl Fnv {
    /// The empty hash.
    #[must_use]
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// Mixes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv::new()
    }
}

/// What one run of a seed produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunDigest {
    /// Hash of every outcome and event (postcard bytes) and the final snapshot.
    pub hash: u64,
    /// Events seen.
    pub events: u64,
    /// Commands rejected.
    pub rejected: u64,
    /// What the reconnecting clients did.
    pub follow: FollowStats,
    /// The most attributes one room held after a command.
    pub peak_attributes: u64,
    /// The most members one room had after a command.
    pub peak_members: u64,
}

/// Runs `commands` steps of `seed` against engine and model, checking
/// after every step; panics on a finding, after printing the seed, the
/// step, the command and the line that replays it.
#[must_use]
pub fn run(seed: u64, commands: usize) -> RunDigest {
    let scenario = Scenario::from_seed(seed);
    let mut r = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    let mut engine = Engine::new(scenario.profile);
    let mut model = Model::new(scenario.profile);
    let mut hash = Fnv::new();
    let mut digest = RunDigest {
        hash: 0,
        events: 0,
        rejected: 0,
        follow: FollowStats::default(),
        peak_attributes: 0,
        peak_members: 0,
    };
    // Reconnecting clients, on their own generator so the commands are
    // those of the seed alone.
    let mut fr = Rng::new(seed ^ 0x00f0_110b);
    let mut followers: Vec<Follower> = (0..3)
        .map(|_| Follower::new(fr.pick(&scenario.rooms).clone()))
        .collect();
    let mut now = 0;
    for step in 0..commands {
        now = scenario.advance(&mut r, now);
        let mut command = scenario.command(&mut r);
        guess_well(&mut r, &engine, &mut command);
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lockstep(&mut engine, &mut model, now, command.clone(), step)
        }));
        let (outcome, events) = match checked {
            Ok(x) => x,
            Err(e) => {
                eprintln!(
                    "simulation failed: seed {seed}, step {step}, command {command:?}\n\
                     replay: cargo run --release -p roomstate-tests --bin simulate -- --seed {seed} --commands {}",
                    step + 1
                );
                std::panic::resume_unwind(e)
            }
        };
        for f in &mut followers {
            f.step(&mut fr, &engine, &events, &mut digest.follow);
        }
        if let Some(view) = command.room().and_then(|id| engine.room(id)) {
            digest.peak_attributes = digest.peak_attributes.max(view.attribute_count() as u64);
            digest.peak_members = digest.peak_members.max(view.members().len() as u64);
        }
        digest.rejected += u64::from(outcome.is_err());
        digest.events += events.len() as u64;
        hash.write(&postcard::to_allocvec(&outcome).unwrap_or_default());
        hash.write(&postcard::to_allocvec(&events).unwrap_or_default());
    }
    hash.write(&engine.snapshot());
    digest.hash = hash.0;
    digest
}

/// Fenced and revision-guarded writes mostly name the lock's current
/// token, by its holder, and the room's current major revision (read from
/// the engine, as a client would have them), so the writes that pass are
/// exercised too.
fn guess_well(r: &mut Rng, engine: &Engine, command: &mut Command) {
    let Command::Write(w) = command else {
        return;
    };
    let Some(room) = engine.room(&w.room) else {
        return;
    };
    if let Some((name, token)) = &mut w.lock {
        if let Some(lock) = room.lock(name).filter(|_| r.chance(70)) {
            *token = lock.token;
            if let Some(holder) = lock.holder.filter(|_| r.chance(70)) {
                w.operator = Actor::user(holder);
            }
        }
    }
    if let Some(rev) = &mut w.major_revision {
        if r.chance(70) {
            *rev = room.major_revision();
        }
    }
}

/// Runs a seed twice and checks both runs produced the same bytes.
pub fn run_twice(seed: u64, commands: usize) -> RunDigest {
    let first = run(seed, commands);
    let second = run(seed, commands);
    assert_eq!(
        first, second,
        "seed {seed}: two runs of the same commands differ"
    );
    first
}
