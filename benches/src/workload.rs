//! Deterministic workloads, generated once and replayed on both the engine
//! and the baseline.
//!
//! Sizes are the issue's: keys of 16 bytes, values of 64 bytes, user ids of
//! 8 bytes (room ids are 10 bytes). Every random choice comes from
//! [`Rng`] (splitmix64) seeded with [`SEED`], so every run benchmarks the
//! same commands.

use roomstate::{
    Actor, BatchPolicy, Command, Engine, Event, Limits, Millis, Notify, Op, PolicyRule, Profile,
    QueueLimits, Rules, Str, Write,
};

use crate::json::Reply;
use crate::naive::{Naive, NaiveCmd, NaiveEvent, NaiveOp};

/// The seed of every workload.
pub const SEED: u64 = 0x0005_EED0_F00D_CAFE;

/// The time every benchmark command carries (no timers are involved).
pub const NOW: Millis = Millis(1_000);

/// Owners per room in the attribute fixtures.
pub const OWNERS_PER_ROOM: usize = 8;

/// splitmix64: small, fast, good enough to pick rooms and keys.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `true` with probability `percent / 100`.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// Room id `n`: 10 bytes.
#[must_use]
pub fn room_id(n: usize) -> String {
    format!("room-{n:05}")
}

/// User id `n`: 8 bytes.
#[must_use]
pub fn user_id(n: usize) -> String {
    format!("u{n:07}")
}

/// Key `n`: 16 bytes.
#[must_use]
pub fn key(n: usize) -> String {
    format!("key-{n:012}")
}

/// A random 64-byte value of printable ASCII.
#[must_use]
pub fn value(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..64)
        .map(|_| char::from(ALPHABET[rng.below(ALPHABET.len())]))
        .collect()
}

/// `n` random 64-byte values.
#[must_use]
pub fn values(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n).map(|_| value(rng)).collect()
}

/// The engine's profile for every benchmark: ZEGO's semantics (owner kept on
/// overwrite, writers need not be members, `BestEffort` batches) with the
/// limits opened so they never interfere, no request rate, every attribute
/// auto-delete (so an exit's deletions match the baseline's), and a queue
/// large enough for the queue benchmark.
#[must_use]
pub fn bench_profile() -> Profile {
    with_history_choice(zego_bench_profile())
}

/// `profile`, with the catch-up history off when the environment says
/// `ROOMSTATE_BENCH_HISTORY=off`: the naive baseline keeps no history, so
/// that run compares the state machines like for like, and the default run
/// shows what the engine's default history costs on top.
#[must_use]
pub fn with_history_choice(profile: Profile) -> Profile {
    let var = std::env::var("ROOMSTATE_BENCH_HISTORY").ok();
    with_history(profile, history_wanted(var.as_deref()))
}

/// Whether a run keeps the history, given `ROOMSTATE_BENCH_HISTORY`'s
/// value: unless it is `off`.
#[must_use]
pub fn history_wanted(var: Option<&str>) -> bool {
    var != Some("off")
}

/// [`bench_profile`] with the catch-up history chosen here, whatever the
/// environment says: off (`false`), or the profile's default (`true`).
/// For `redis_peer`, which measures both in one run.
#[must_use]
pub fn bench_profile_with_history(history: bool) -> Profile {
    with_history(zego_bench_profile(), history)
}

/// `profile` with its history kept (`true`) or turned off.
fn with_history(mut profile: Profile, history: bool) -> Profile {
    if !history {
        profile.limits.history_events = 0;
    }
    profile
}

fn zego_bench_profile() -> Profile {
    let zego = Profile::zego();
    Profile {
        limits: Limits {
            max_keys_per_room: None,
            max_ops_per_write: 1000,
            max_key_len: 128,
            max_value_len: 4096,
            max_room_value_bytes: None,
            max_engine_value_bytes: None,
            request_rate: None,
            notification_flow: None,
            queue: QueueLimits {
                default_capacity: 100_000,
                ..zego.limits.queue
            },
            ..zego.limits
        },
        rules: Rules {
            writer_must_be_member: false,
            default_auto_delete: true,
            set_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            ..zego.rules
        },
        ..zego
    }
}

// ----- the attribute grid: rooms × keys, 8 owners per room -----

/// `rooms` rooms of `keys` attributes; key `k` of room `r` is owned by
/// [`Grid::owner`]`(r, k)`, one of 8 users of the room.
#[derive(Clone, Debug)]
pub struct Grid {
    /// Room ids.
    pub rooms: Vec<String>,
    /// Keys per room.
    pub keys_per_room: usize,
    /// Key names (the same in every room).
    pub keys: Vec<String>,
    /// User ids, `OWNERS_PER_ROOM` per room.
    pub users: Vec<String>,
    /// 64-byte values to write.
    pub values: Vec<String>,
}

impl Grid {
    /// The grid's names and values.
    #[must_use]
    pub fn new(rooms: usize, keys_per_room: usize) -> Grid {
        let mut rng = Rng::new(SEED);
        Grid {
            rooms: (0..rooms).map(room_id).collect(),
            keys_per_room,
            keys: (0..keys_per_room).map(key).collect(),
            users: (0..rooms * OWNERS_PER_ROOM).map(user_id).collect(),
            values: values(&mut rng, 256),
        }
    }

    /// Index into `users` of key `k`'s owner in room `r`.
    #[must_use]
    pub fn owner(&self, r: usize, k: usize) -> usize {
        r * OWNERS_PER_ROOM + k % OWNERS_PER_ROOM
    }

    /// Index into `users` of the `i`-th user of room `r`.
    #[must_use]
    pub fn user(&self, r: usize, i: usize) -> usize {
        r * OWNERS_PER_ROOM + i
    }

    /// An engine holding the grid. User ids are shared per room, as a
    /// server holding one `Str` per session would pass them; keys and values
    /// are each their own string.
    #[must_use]
    pub fn engine(&self) -> Engine {
        self.engine_with(bench_profile())
    }

    /// [`Grid::engine`] under `profile`.
    #[must_use]
    pub fn engine_with(&self, profile: Profile) -> Engine {
        let mut engine = Engine::new(profile);
        for r in 0..self.rooms.len() {
            let room = Str::from(self.rooms[r].as_str());
            let users: Vec<Str> = (0..OWNERS_PER_ROOM)
                .map(|i| Str::from(self.users[self.user(r, i)].as_str()))
                .collect();
            let _ = engine.handle(
                NOW,
                Command::CreateRoom {
                    room: room.clone(),
                    creator: users[0].clone(),
                },
            );
            for (o, user) in users.iter().enumerate() {
                let mut w = Write::new(room.clone(), Actor::User(user.clone()));
                for k in (o..self.keys_per_room).step_by(OWNERS_PER_ROOM) {
                    let v = &self.values[(r + k) % self.values.len()];
                    w = w.op(Op::set(self.keys[k].as_str(), v.as_str()));
                }
                if !w.ops.is_empty() {
                    let _ = engine.handle(NOW, Command::Write(w));
                }
            }
            drain(&mut engine);
        }
        engine
    }

    /// The baseline holding the same grid.
    #[must_use]
    pub fn naive(&self) -> Naive {
        let mut naive = Naive::new();
        for r in 0..self.rooms.len() {
            let _ = naive.handle(NaiveCmd::CreateRoom {
                room: self.rooms[r].clone(),
                creator: self.users[self.user(r, 0)].clone(),
            });
            for o in 0..OWNERS_PER_ROOM {
                let ops: Vec<NaiveOp> = (o..self.keys_per_room)
                    .step_by(OWNERS_PER_ROOM)
                    .map(|k| NaiveOp::Set {
                        key: self.keys[k].clone(),
                        value: self.values[(r + k) % self.values.len()].clone(),
                    })
                    .collect();
                if !ops.is_empty() {
                    let _ = naive.handle(NaiveCmd::Write {
                        room: self.rooms[r].clone(),
                        operator: self.users[self.user(r, o)].clone(),
                        ops,
                    });
                }
            }
            drain_naive(&mut naive);
        }
        naive
    }

    /// The engine's command for: the owner of key `k` in room `r`
    /// overwrites it with value `v`. Every string is built here, as a
    /// server decoding the request would.
    #[must_use]
    pub fn engine_overwrite(&self, r: usize, k: usize, v: usize) -> Command {
        Command::Write(
            Write::new(
                self.rooms[r].as_str(),
                Actor::user(self.users[self.owner(r, k)].as_str()),
            )
            .op(Op::set(
                self.keys[k].as_str(),
                self.values[v % self.values.len()].as_str(),
            )),
        )
    }

    /// The baseline's command for the same overwrite.
    #[must_use]
    pub fn naive_overwrite(&self, r: usize, k: usize, v: usize) -> NaiveCmd {
        NaiveCmd::Write {
            room: self.rooms[r].clone(),
            operator: self.users[self.owner(r, k)].clone(),
            ops: vec![NaiveOp::Set {
                key: self.keys[k].clone(),
                value: self.values[v % self.values.len()].clone(),
            }],
        }
    }
}

// ----- the read path: each side's best, serialized the same way -----

/// The owner name of attributes owned by `Actor::Admin`.
pub const ADMIN: &str = "admin";

/// Visits every attribute of room `id` as `(key, value, owner, revision)`,
/// in listing order, through the engine's borrowed view
/// ([`Engine::room`]), and returns the room's sequence number (`None`: no
/// such room). The only place the benchmarks read attributes through the
/// view ([`roomstate::AttrRef`]s, borrowed from the room's arena).
pub fn engine_visit_attributes(
    engine: &Engine,
    id: &str,
    mut visit: impl FnMut(&str, &str, &str, u64),
) -> Option<u64> {
    let view = engine.room(id)?;
    for a in view.attributes() {
        visit(a.key, a.value, a.owner.unwrap_or(ADMIN), a.revision);
    }
    Some(view.seq())
}

/// The engine's answer to "read every attribute of room `id`": the JSON
/// reply ([`crate::json`]) appended to `out`. `false`: no such room. An
/// attribute the engine knows to need no escape ([`roomstate::AttrRef::plain`])
/// is written without scanning its strings.
pub fn engine_read_json(engine: &Engine, id: &str, out: &mut Vec<u8>) -> bool {
    let Some(view) = engine.room(id) else {
        return false;
    };
    let mut reply = Reply::begin(out);
    for a in view.attributes() {
        let owner = a.owner.unwrap_or(ADMIN);
        if a.plain {
            reply.attr_plain(a.key, a.value, owner, a.revision);
        } else {
            reply.attr(a.key, a.value, owner, a.revision);
        }
    }
    reply.end(view.seq());
    true
}

/// The baseline's answer to the same read: the same JSON, written from its
/// own map, borrowed (no lock, no copy).
pub fn naive_read_json(naive: &Naive, id: &str, out: &mut Vec<u8>) -> bool {
    let Some(room) = naive.rooms.get(id) else {
        return false;
    };
    let mut reply = Reply::begin(out);
    for (key, a) in &room.attrs {
        reply.attr(key, &a.value, &a.owner, a.revision);
    }
    reply.end(room.seq);
    true
}

/// Drops the engine's pending events.
pub fn drain(engine: &mut Engine) {
    let mut events: Vec<Event> = Vec::new();
    engine.drain_events(&mut events);
}

/// Drops the baseline's pending events.
pub fn drain_naive(naive: &mut Naive) {
    let mut events: Vec<NaiveEvent> = Vec::new();
    naive.drain_events(&mut events);
}

// ----- the exit fixture -----

/// Rooms of `keys` attributes in which user [`ExitFixture::leaver`] owns
/// one auto-delete key (key 0) and the other keys belong to 7 other users.
/// [`ExitFixture::engine_arm`] re-joins the leaver and re-sets its key, so
/// the exits can be measured over and over with the set-up outside the
/// timing.
#[derive(Clone, Debug)]
pub struct ExitFixture {
    /// The underlying grid (key `k` is owned by user `k % 8` of the room).
    pub grid: Grid,
}

impl ExitFixture {
    /// `rooms` rooms of `keys` keys.
    #[must_use]
    pub fn new(rooms: usize, keys: usize) -> ExitFixture {
        ExitFixture {
            grid: Grid::new(rooms, keys),
        }
    }

    /// Number of rooms.
    #[must_use]
    pub fn rooms(&self) -> usize {
        self.grid.rooms.len()
    }

    /// Index into `grid.users` of the leaver of room `r`.
    #[must_use]
    pub fn leaver(&self, r: usize) -> usize {
        self.grid.user(r, 0)
    }

    /// Owner of key `k > 0` (key 0, the leaver's only key, is written by
    /// the arming): keys are spread over users 1..8 of the room, the
    /// multiples of 8 going to user 1.
    fn owner(&self, r: usize, k: usize) -> usize {
        match k % OWNERS_PER_ROOM {
            0 => self.grid.user(r, 1),
            o => self.grid.user(r, o),
        }
    }

    /// The engine with every room filled; leavers not yet joined.
    #[must_use]
    pub fn engine(&self) -> Engine {
        let g = &self.grid;
        let mut engine = Engine::new(bench_profile());
        for r in 0..g.rooms.len() {
            let room = Str::from(g.rooms[r].as_str());
            let _ = engine.handle(
                NOW,
                Command::CreateRoom {
                    room: room.clone(),
                    creator: Str::from(g.users[g.user(r, 7)].as_str()),
                },
            );
            for k in 1..g.keys_per_room {
                let w = Write::new(
                    room.clone(),
                    Actor::user(g.users[self.owner(r, k)].as_str()),
                )
                .op(Op::set(
                    g.keys[k].as_str(),
                    g.values[k % g.values.len()].as_str(),
                ));
                let _ = engine.handle(NOW, Command::Write(w));
            }
        }
        drain(&mut engine);
        engine
    }

    /// The baseline with every room filled; leavers not yet joined.
    #[must_use]
    pub fn naive(&self) -> Naive {
        let g = &self.grid;
        let mut naive = Naive::new();
        for r in 0..g.rooms.len() {
            let _ = naive.handle(NaiveCmd::CreateRoom {
                room: g.rooms[r].clone(),
                creator: g.users[g.user(r, 7)].clone(),
            });
            for k in 1..g.keys_per_room {
                let _ = naive.handle(NaiveCmd::Write {
                    room: g.rooms[r].clone(),
                    operator: g.users[self.owner(r, k)].clone(),
                    ops: vec![NaiveOp::Set {
                        key: g.keys[k].clone(),
                        value: g.values[k % g.values.len()].clone(),
                    }],
                });
            }
        }
        drain_naive(&mut naive);
        naive
    }

    /// Untimed set-up: the leaver of room `r` joins and sets key 0.
    pub fn engine_arm(&self, engine: &mut Engine, r: usize, events: &mut Vec<Event>) {
        let g = &self.grid;
        let user = g.users[self.leaver(r)].as_str();
        let _ = engine.handle(
            NOW,
            Command::Join {
                room: g.rooms[r].as_str().into(),
                user: user.into(),
            },
        );
        let w = Write::new(g.rooms[r].as_str(), Actor::user(user))
            .op(Op::set(g.keys[0].as_str(), g.values[0].as_str()));
        let _ = engine.handle(NOW, Command::Write(w));
        engine.drain_events(events);
        engine.recycle(events);
    }

    /// Untimed set-up of the baseline, as [`ExitFixture::engine_arm`].
    pub fn naive_arm(&self, naive: &mut Naive, r: usize, events: &mut Vec<NaiveEvent>) {
        let g = &self.grid;
        let user = &g.users[self.leaver(r)];
        let _ = naive.handle(NaiveCmd::Join {
            room: g.rooms[r].clone(),
            user: user.clone(),
        });
        let _ = naive.handle(NaiveCmd::Write {
            room: g.rooms[r].clone(),
            operator: user.clone(),
            ops: vec![NaiveOp::Set {
                key: g.keys[0].clone(),
                value: g.values[0].clone(),
            }],
        });
        naive.drain_events(events);
        events.clear();
    }

    /// The engine's exit (kick) of room `r`'s leaver.
    #[must_use]
    pub fn engine_exit(&self, r: usize) -> Command {
        Command::Exit {
            room: self.grid.rooms[r].as_str().into(),
            user: self.grid.users[self.leaver(r)].as_str().into(),
        }
    }

    /// The baseline's exit of room `r`'s leaver.
    #[must_use]
    pub fn naive_exit(&self, r: usize) -> NaiveCmd {
        NaiveCmd::Exit {
            room: self.grid.rooms[r].clone(),
            user: self.grid.users[self.leaver(r)].clone(),
        }
    }
}

// ----- the queue fixture -----

/// One room whose queue holds `len` elements, keys `0..len`. Step `i`
/// offers key `len + i` at the tail and polls key `len / 2 + i`, which is
/// then exactly in the middle (the first half never moves; the second half
/// is a FIFO).
#[derive(Clone, Debug)]
pub struct QueueFixture {
    /// Elements initially.
    pub len: usize,
    /// The room.
    pub room: String,
    /// The offering and polling user.
    pub user: String,
    /// Values to offer.
    pub values: Vec<String>,
}

impl QueueFixture {
    /// A queue of `len` elements.
    #[must_use]
    pub fn new(len: usize) -> QueueFixture {
        let mut rng = Rng::new(SEED);
        QueueFixture {
            len,
            room: room_id(0),
            user: user_id(0),
            values: values(&mut rng, 256),
        }
    }

    /// The engine with the full queue.
    #[must_use]
    pub fn engine(&self) -> Engine {
        let mut engine = Engine::new(bench_profile());
        let _ = engine.handle(
            NOW,
            Command::CreateRoom {
                room: self.room.as_str().into(),
                creator: self.user.as_str().into(),
            },
        );
        for i in 0..self.len {
            let _ = engine.handle(NOW, self.engine_offer_of(i));
        }
        drain(&mut engine);
        engine
    }

    /// The baseline with the full queue.
    #[must_use]
    pub fn naive(&self) -> Naive {
        let mut naive = Naive::new();
        let _ = naive.handle(NaiveCmd::CreateRoom {
            room: self.room.clone(),
            creator: self.user.clone(),
        });
        for i in 0..self.len {
            let _ = naive.handle(self.naive_offer_of(i));
        }
        drain_naive(&mut naive);
        naive
    }

    fn engine_offer_of(&self, n: usize) -> Command {
        Command::QueueOffer {
            room: self.room.as_str().into(),
            operator: Actor::user(self.user.as_str()),
            key: key(n).into(),
            value: self.values[n % self.values.len()].as_str().into(),
            transient: false,
            notify: Notify::default(),
        }
    }

    fn naive_offer_of(&self, n: usize) -> NaiveCmd {
        NaiveCmd::QueueOffer {
            room: self.room.clone(),
            operator: self.user.clone(),
            key: key(n),
            value: self.values[n % self.values.len()].clone(),
        }
    }

    /// Step `i` for the engine: the offer and the poll.
    #[must_use]
    pub fn engine_step(&self, i: usize) -> (Command, Command) {
        let poll = Command::QueuePoll {
            room: self.room.as_str().into(),
            operator: Actor::user(self.user.as_str()),
            key: Some(key(self.len / 2 + i).into()),
            notify: Notify::default(),
        };
        (self.engine_offer_of(self.len + i), poll)
    }

    /// Step `i` for the baseline.
    #[must_use]
    pub fn naive_step(&self, i: usize) -> (NaiveCmd, NaiveCmd) {
        let poll = NaiveCmd::QueuePoll {
            room: self.room.clone(),
            operator: self.user.clone(),
            key: Some(key(self.len / 2 + i)),
        };
        (self.naive_offer_of(self.len + i), poll)
    }
}

// ----- the mixed workload -----

/// One abstract step of the mixed workload; indexes name rooms, users of
/// the room, keys and values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create room `room`, creator its user 0.
    Create {
        /// Room.
        room: usize,
    },
    /// A connection of user `user` of the room.
    Join {
        /// Room.
        room: usize,
        /// User of the room.
        user: usize,
    },
    /// One connection of the user goes.
    Leave {
        /// Room.
        room: usize,
        /// User of the room.
        user: usize,
    },
    /// A write of 1–3 ops: `(key, Some(value))` sets, `(key, None)` deletes.
    Write {
        /// Room.
        room: usize,
        /// Operator, a user of the room.
        user: usize,
        /// Ops.
        ops: Vec<(usize, Option<usize>)>,
    },
    /// Read every attribute.
    Read {
        /// Room.
        room: usize,
    },
    /// Offer queue key `key` (a new one, or one already queued).
    Offer {
        /// Room.
        room: usize,
        /// Operator.
        user: usize,
        /// Queue key number.
        key: usize,
        /// Value.
        value: usize,
    },
    /// Poll queue key `key`, or the head.
    Poll {
        /// Room.
        room: usize,
        /// Operator.
        user: usize,
        /// Queue key number; `None` for the head.
        key: Option<usize>,
    },
}

/// The mixed workload: a set-up (rooms, a few members, some attributes)
/// and 10,000 steps over 1,000 rooms: 70% writes of 1–3 keys, 15% reads
/// of every attribute, 5% joins and leaves, 10% queue offers and polls.
#[derive(Clone, Debug)]
pub struct Mixed {
    /// Room ids.
    pub rooms: Vec<String>,
    /// User ids, `USERS` per room.
    pub users: Vec<String>,
    /// Attribute key names (the same in every room).
    pub keys: Vec<String>,
    /// 64-byte values.
    pub values: Vec<String>,
    /// Run before the timing.
    pub setup: Vec<Step>,
    /// Timed.
    pub steps: Vec<Step>,
}

impl Mixed {
    /// Users per room.
    pub const USERS: usize = 8;
    /// Attribute keys per room.
    pub const KEYS: usize = 32;

    /// The standard mixed workload: 1,000 rooms, 10,000 steps.
    #[must_use]
    pub fn standard() -> Mixed {
        Mixed::generate(SEED, 1_000, 10_000)
    }

    /// A workload of `steps` steps over `rooms` rooms.
    #[must_use]
    pub fn generate(seed: u64, rooms: usize, steps: usize) -> Mixed {
        let mut rng = Rng::new(seed);
        let values = values(&mut rng, 512);
        // Model just good enough to pick meaningful steps.
        let mut conns = vec![0u32; rooms * Self::USERS];
        let mut queues: Vec<Vec<usize>> = vec![Vec::new(); rooms];
        let mut next_qkey = vec![0usize; rooms];
        let mut setup = Vec::new();
        for room in 0..rooms {
            setup.push(Step::Create { room });
            for user in 0..4 {
                setup.push(Step::Join { room, user });
                conns[room * Self::USERS + user] += 1;
            }
            for k in 0..10 {
                setup.push(Step::Write {
                    room,
                    user: k % 4,
                    ops: vec![(k, Some(rng.below(values.len())))],
                });
            }
        }
        let mut out = Vec::with_capacity(steps);
        for _ in 0..steps {
            let room = rng.below(rooms);
            let user = rng.below(Self::USERS);
            let roll = rng.below(100);
            let step = if roll < 70 {
                let n = 1 + rng.below(3);
                let ops = (0..n)
                    .map(|_| {
                        let k = rng.below(Self::KEYS);
                        if rng.percent(10) {
                            (k, None)
                        } else {
                            (k, Some(rng.below(values.len())))
                        }
                    })
                    .collect();
                Step::Write { room, user, ops }
            } else if roll < 85 {
                Step::Read { room }
            } else if roll < 90 {
                let c = &mut conns[room * Self::USERS + user];
                if *c > 0 && rng.percent(50) {
                    *c -= 1;
                    Step::Leave { room, user }
                } else {
                    *c += 1;
                    Step::Join { room, user }
                }
            } else {
                let q = &mut queues[room];
                if !q.is_empty() && rng.percent(40) {
                    if rng.percent(50) {
                        let key = q.remove(rng.below(q.len()));
                        Step::Poll {
                            room,
                            user,
                            key: Some(key),
                        }
                    } else {
                        q.remove(0);
                        Step::Poll {
                            room,
                            user,
                            key: None,
                        }
                    }
                } else if !q.is_empty() && rng.percent(20) {
                    let key = q[rng.below(q.len())];
                    Step::Offer {
                        room,
                        user,
                        key,
                        value: rng.below(values.len()),
                    }
                } else {
                    let key = next_qkey[room];
                    next_qkey[room] += 1;
                    q.push(key);
                    Step::Offer {
                        room,
                        user,
                        key,
                        value: rng.below(values.len()),
                    }
                }
            };
            out.push(step);
        }
        Mixed {
            rooms: (0..rooms).map(room_id).collect(),
            users: (0..rooms * Self::USERS).map(user_id).collect(),
            keys: (0..Self::KEYS).map(key).collect(),
            values,
            setup,
            steps: out,
        }
    }

    fn user(&self, room: usize, user: usize) -> &str {
        &self.users[room * Self::USERS + user]
    }

    /// The key of queue element `n` of `room`.
    #[must_use]
    pub fn queue_key(room: usize, n: usize) -> String {
        key(1_000_000 + room * 10_000 + n)
    }

    /// A step as an engine command.
    #[must_use]
    pub fn engine_command(&self, step: &Step) -> Command {
        let id = |room: usize| Str::from(self.rooms[room].as_str());
        match *step {
            Step::Create { room } => Command::CreateRoom {
                room: id(room),
                creator: self.user(room, 0).into(),
            },
            Step::Join { room, user } => Command::Join {
                room: id(room),
                user: self.user(room, user).into(),
            },
            Step::Leave { room, user } => Command::Leave {
                room: id(room),
                user: self.user(room, user).into(),
            },
            Step::Write {
                room,
                user,
                ref ops,
            } => Command::Write(Write {
                ops: ops
                    .iter()
                    .map(|&(k, v)| match v {
                        Some(v) => Op::set(self.keys[k].as_str(), self.values[v].as_str()),
                        None => Op::delete(self.keys[k].as_str()),
                    })
                    .collect(),
                ..Write::new(id(room), Actor::user(self.user(room, user)))
            }),
            Step::Read { room } => Command::Read {
                room: id(room),
                keys: None,
            },
            Step::Offer {
                room,
                user,
                key,
                value,
            } => Command::QueueOffer {
                room: id(room),
                operator: Actor::user(self.user(room, user)),
                key: Self::queue_key(room, key).into(),
                value: self.values[value].as_str().into(),
                transient: false,
                notify: Notify::default(),
            },
            Step::Poll { room, user, key } => Command::QueuePoll {
                room: id(room),
                operator: Actor::user(self.user(room, user)),
                key: key.map(|k| Self::queue_key(room, k).into()),
                notify: Notify::default(),
            },
        }
    }

    /// A step as a baseline command.
    #[must_use]
    pub fn naive_command(&self, step: &Step) -> NaiveCmd {
        let id = |room: usize| self.rooms[room].clone();
        match *step {
            Step::Create { room } => NaiveCmd::CreateRoom {
                room: id(room),
                creator: self.user(room, 0).to_string(),
            },
            Step::Join { room, user } => NaiveCmd::Join {
                room: id(room),
                user: self.user(room, user).to_string(),
            },
            Step::Leave { room, user } => NaiveCmd::Leave {
                room: id(room),
                user: self.user(room, user).to_string(),
            },
            Step::Write {
                room,
                user,
                ref ops,
            } => NaiveCmd::Write {
                room: id(room),
                operator: self.user(room, user).to_string(),
                ops: ops
                    .iter()
                    .map(|&(k, v)| match v {
                        Some(v) => NaiveOp::Set {
                            key: self.keys[k].clone(),
                            value: self.values[v].clone(),
                        },
                        None => NaiveOp::Delete {
                            key: self.keys[k].clone(),
                        },
                    })
                    .collect(),
            },
            Step::Read { room } => NaiveCmd::ReadAll { room: id(room) },
            Step::Offer {
                room,
                user,
                key,
                value,
            } => NaiveCmd::QueueOffer {
                room: id(room),
                operator: self.user(room, user).to_string(),
                key: Self::queue_key(room, key),
                value: self.values[value].clone(),
            },
            Step::Poll { room, user, key } => NaiveCmd::QueuePoll {
                room: id(room),
                operator: self.user(room, user).to_string(),
                key: key.map(|k| Self::queue_key(room, k)),
            },
        }
    }

    /// The engine after the set-up steps.
    #[must_use]
    pub fn engine(&self) -> Engine {
        self.engine_with(bench_profile())
    }

    /// The engine with `profile`, after the set-up steps.
    #[must_use]
    pub fn engine_with(&self, profile: Profile) -> Engine {
        let mut engine = Engine::new(profile);
        for step in &self.setup {
            let _ = engine.handle(NOW, self.engine_command(step));
        }
        drain(&mut engine);
        engine
    }

    /// The baseline after the set-up steps.
    #[must_use]
    pub fn naive(&self) -> Naive {
        let mut naive = Naive::new();
        for step in &self.setup {
            let _ = naive.handle(self.naive_command(step));
        }
        drain_naive(&mut naive);
        naive
    }

    /// The timed steps as engine commands (reads as `Command::Read`).
    #[must_use]
    pub fn engine_commands(&self) -> Vec<Command> {
        self.steps.iter().map(|s| self.engine_command(s)).collect()
    }

    /// The timed steps as baseline commands (reads as `NaiveCmd::ReadAll`).
    #[must_use]
    pub fn naive_commands(&self) -> Vec<NaiveCmd> {
        self.steps.iter().map(|s| self.naive_command(s)).collect()
    }

    /// The timed steps as engine inputs: reads go through the borrowed view
    /// ([`engine_read_json`]), everything else is a command.
    #[must_use]
    pub fn engine_inputs(&self) -> Vec<EngineInput> {
        self.steps
            .iter()
            .map(|s| match *s {
                Step::Read { room } => EngineInput::Read(self.rooms[room].as_str().into()),
                _ => EngineInput::Command(self.engine_command(s)),
            })
            .collect()
    }

    /// The timed steps as baseline inputs: reads serialize from the
    /// baseline's map ([`naive_read_json`]).
    #[must_use]
    pub fn naive_inputs(&self) -> Vec<NaiveInput> {
        self.steps
            .iter()
            .map(|s| match *s {
                Step::Read { room } => NaiveInput::Read(self.rooms[room].clone()),
                _ => NaiveInput::Command(self.naive_command(s)),
            })
            .collect()
    }
}

/// A decoded request to the engine: a command, or a read of every
/// attribute of a room answered from the borrowed view.
#[derive(Clone, Debug)]
pub enum EngineInput {
    /// Applied with [`Engine::handle`].
    Command(Command),
    /// Answered with [`engine_read_json`].
    Read(Str),
}

/// A decoded request to the baseline, as [`EngineInput`].
#[derive(Clone, Debug)]
pub enum NaiveInput {
    /// Applied with [`Naive::handle`].
    Command(NaiveCmd),
    /// Answered with [`naive_read_json`].
    Read(String),
}

/// Runs engine inputs: commands (draining events after each into `events`
/// and dropping them) and reads (each reply written into `reply`, cleared
/// first, as a server reusing its buffer). Returns how many commands
/// succeeded and reads found their room.
pub fn run_engine(
    engine: &mut Engine,
    inputs: Vec<EngineInput>,
    events: &mut Vec<Event>,
    reply: &mut Vec<u8>,
) -> usize {
    let mut ok = 0;
    for input in inputs {
        ok += usize::from(match input {
            EngineInput::Command(c) => {
                let done = engine.handle(NOW, c).is_ok();
                engine.drain_events(events);
                engine.recycle(events);
                done
            }
            EngineInput::Read(room) => {
                reply.clear();
                engine_read_json(engine, &room, reply)
            }
        });
    }
    ok
}

/// Runs baseline inputs as [`run_engine`] does.
pub fn run_naive(
    naive: &mut Naive,
    inputs: Vec<NaiveInput>,
    events: &mut Vec<NaiveEvent>,
    reply: &mut Vec<u8>,
) -> usize {
    let mut ok = 0;
    for input in inputs {
        ok += usize::from(match input {
            NaiveInput::Command(c) => {
                let done = naive.handle(c).is_ok();
                naive.drain_events(events);
                events.clear();
                done
            }
            NaiveInput::Read(room) => {
                reply.clear();
                naive_read_json(naive, &room, reply)
            }
        });
    }
    ok
}
