//! The cold regime (issue 9): the state a server holds, and the requests
//! it decodes, are far larger than the CPU's caches.
//!
//! - Rooms of [`MEMBERS`] present members (one connection each) and
//!   [`KEYS`] attributes (16-byte keys, 64-byte values); key `k` is owned
//!   by member `k % 8`, so every member owns 2 or 3 keys. The engine runs
//!   the Easemob profile with its request rate off ([`cold_profile`]):
//!   writers must be members, attributes are auto-delete, an overwrite by
//!   the owner keeps the owner. The membership check and the owner check
//!   are part of every write, on both sides (the baseline checks its
//!   member map too).
//! - Streams of at least [`STREAM_MIN`] distinct commands, all built before
//!   the timing (each its own allocations: a server's decoder produces
//!   fresh strings per request; every written value differs). Streams go
//!   in *passes*: a pass visits every room once, in a fresh pseudo-random
//!   order, so a room comes back only after (on average) every other room
//!   was visited, and neither the room nor the command is in cache.
//! - Writes: each visit is one overwrite of a pseudo-random key of the
//!   room by its owner.
//! - Exits: pass `p` makes member `p % 8` of every room leave (its only
//!   connection, so it exits and its 2–3 auto-delete keys go). Between two
//!   passes, outside the timing, that member re-joins and re-sets its keys
//!   in every room ([`ColdRooms::engine_arm`]), so every exit meets a full
//!   room of 8 members and 20 attributes.
//! - Reads: each visit reads every attribute of the room (all 20) into the
//!   read-all JSON reply ([`crate::json`]), written into a reused buffer
//!   through each side's read path ([`crate::workload::engine_read_json`],
//!   [`crate::workload::naive_read_json`]). The input of a read is the room
//!   id, its own `String` per read ([`read_stream`]); both sides take it as
//!   `&str`, so one stream serves both. A read changes nothing, so nothing
//!   is re-armed between passes, and the reads can run on the rooms the
//!   write stream has just overwritten (still 8 members, 20 attributes).

use roomstate::{Actor, Command, Engine, Event, Limits, Op, Profile, Str, Write};

use crate::naive::{Naive, NaiveCmd, NaiveEvent, NaiveOp};
use crate::workload::{drain, drain_naive, key, room_id, user_id, values, Rng, NOW, SEED};

/// Present members per room.
pub const MEMBERS: usize = 8;

/// Attributes per room.
pub const KEYS: usize = 20;

/// Fewest commands in a stream.
pub const STREAM_MIN: usize = 1_000_000;

/// Easemob with the request rate off (the benchmark sends as fast as it
/// can; a rate limit would reject most of it).
#[must_use]
pub fn cold_profile() -> Profile {
    let easemob = Profile::easemob();
    crate::workload::with_history_choice(Profile {
        limits: Limits {
            request_rate: None,
            ..easemob.limits
        },
        ..easemob
    })
}

/// `rooms` rooms of 8 members and 20 attributes.
#[derive(Clone, Debug)]
pub struct ColdRooms {
    /// Number of rooms.
    pub rooms: usize,
    keys: Vec<String>,
    values: Vec<String>,
}

/// Member (index in the room) that owns key `k`.
#[must_use]
pub fn owner_of(k: usize) -> usize {
    k % MEMBERS
}

/// Keys owned by member `m`.
fn keys_of(m: usize) -> impl Iterator<Item = usize> {
    (m..KEYS).step_by(MEMBERS)
}

impl ColdRooms {
    /// The names and values of `rooms` rooms.
    #[must_use]
    pub fn new(rooms: usize) -> ColdRooms {
        let mut rng = Rng::new(SEED ^ 0xC01D);
        ColdRooms {
            rooms,
            keys: (0..KEYS).map(key).collect(),
            values: values(&mut rng, 256),
        }
    }

    /// Room `r`'s id.
    #[must_use]
    pub fn room(&self, r: usize) -> String {
        room_id(r)
    }

    /// Member `m` of room `r`.
    #[must_use]
    pub fn member(&self, r: usize, m: usize) -> String {
        user_id(r * MEMBERS + m)
    }

    /// A 64-byte value unique to `n`: the pool's value `n % 256` with `n`
    /// written over its first 12 bytes.
    #[must_use]
    pub fn value(&self, n: usize) -> String {
        let base = &self.values[n % self.values.len()];
        let mut v = format!("{:012}", n % 1_000_000_000_000);
        v.push_str(&base[12..]);
        v
    }

    /// The write of member `m`'s keys in room `r` (value numbers from `n`).
    fn engine_set_keys(&self, r: usize, m: usize, n: usize) -> Command {
        let mut w = Write::new(self.room(r), Actor::user(self.member(r, m)));
        for k in keys_of(m) {
            w = w.op(Op::set(self.keys[k].as_str(), self.value(n + k)));
        }
        Command::Write(w)
    }

    fn naive_set_keys(&self, r: usize, m: usize, n: usize) -> NaiveCmd {
        NaiveCmd::Write {
            room: self.room(r),
            operator: self.member(r, m),
            ops: keys_of(m)
                .map(|k| NaiveOp::Set {
                    key: self.keys[k].clone(),
                    value: self.value(n + k),
                })
                .collect(),
        }
    }

    /// The engine holding every room, full.
    #[must_use]
    pub fn engine(&self) -> Engine {
        let mut engine = Engine::new(cold_profile());
        for r in 0..self.rooms {
            let room = Str::from(self.room(r));
            let _ = engine.handle(
                NOW,
                Command::CreateRoom {
                    room: room.clone(),
                    creator: self.member(r, 0).into(),
                },
            );
            for m in 0..MEMBERS {
                let _ = engine.handle(
                    NOW,
                    Command::Join {
                        room: room.clone(),
                        user: self.member(r, m).into(),
                    },
                );
                let _ = engine.handle(NOW, self.engine_set_keys(r, m, r));
            }
            drain(&mut engine);
        }
        engine
    }

    /// The baseline holding every room, full.
    #[must_use]
    pub fn naive(&self) -> Naive {
        let mut naive = Naive::new();
        naive.writers_must_be_members = true;
        for r in 0..self.rooms {
            let _ = naive.handle(NaiveCmd::CreateRoom {
                room: self.room(r),
                creator: self.member(r, 0),
            });
            for m in 0..MEMBERS {
                let _ = naive.handle(NaiveCmd::Join {
                    room: self.room(r),
                    user: self.member(r, m),
                });
                let _ = naive.handle(self.naive_set_keys(r, m, r));
            }
            drain_naive(&mut naive);
        }
        naive
    }

    /// Rooms in passes: each pass a fresh pseudo-random order of every
    /// room; as many passes as make at least `min` visits.
    #[must_use]
    pub fn passes(&self, seed: u64, min: usize) -> Vec<Vec<u32>> {
        let mut rng = Rng::new(seed);
        let count = min.div_ceil(self.rooms.max(1)).max(1);
        (0..count)
            .map(|_| {
                let mut order: Vec<u32> = (0..self.rooms)
                    .map(|r| u32::try_from(r).unwrap_or(u32::MAX))
                    .collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.below(i + 1));
                }
                order
            })
            .collect()
    }

    /// The write stream: per visit of [`ColdRooms::passes`], the owner of a
    /// pseudo-random key overwrites it with a value no other command
    /// carries. Returns `(room, key)` per command, pass after pass.
    #[must_use]
    pub fn write_picks(&self, seed: u64, min: usize) -> Vec<(u32, u8)> {
        let mut rng = Rng::new(seed ^ 0x5EED);
        self.passes(seed, min)
            .into_iter()
            .flatten()
            .map(|r| (r, rng.below(KEYS) as u8))
            .collect()
    }

    /// The engine's overwrite of key `k` in room `r` by its owner, value
    /// number `n`.
    #[must_use]
    pub fn engine_overwrite(&self, r: usize, k: usize, n: usize) -> Command {
        Command::Write(
            Write::new(self.room(r), Actor::user(self.member(r, owner_of(k))))
                .op(Op::set(self.keys[k].as_str(), self.value(n))),
        )
    }

    /// The baseline's same overwrite.
    #[must_use]
    pub fn naive_overwrite(&self, r: usize, k: usize, n: usize) -> NaiveCmd {
        NaiveCmd::Write {
            room: self.room(r),
            operator: self.member(r, owner_of(k)),
            ops: vec![NaiveOp::Set {
                key: self.keys[k].clone(),
                value: self.value(n),
            }],
        }
    }

    /// The engine's leave of member `m` of room `r` (its only connection:
    /// it exits).
    #[must_use]
    pub fn engine_leave(&self, r: usize, m: usize) -> Command {
        Command::Leave {
            room: self.room(r).into(),
            user: self.member(r, m).into(),
        }
    }

    /// The baseline's same leave.
    #[must_use]
    pub fn naive_leave(&self, r: usize, m: usize) -> NaiveCmd {
        NaiveCmd::Leave {
            room: self.room(r),
            user: self.member(r, m),
        }
    }

    /// Untimed: member `m` of room `r` re-joins and re-sets its keys.
    pub fn engine_arm(&self, engine: &mut Engine, r: usize, m: usize, events: &mut Vec<Event>) {
        let _ = engine.handle(
            NOW,
            Command::Join {
                room: self.room(r).into(),
                user: self.member(r, m).into(),
            },
        );
        let _ = engine.handle(NOW, self.engine_set_keys(r, m, r + m));
        engine.drain_events(events);
        engine.recycle(events);
    }

    /// Untimed: the baseline's same re-arm.
    pub fn naive_arm(&self, naive: &mut Naive, r: usize, m: usize, events: &mut Vec<NaiveEvent>) {
        let _ = naive.handle(NaiveCmd::Join {
            room: self.room(r),
            user: self.member(r, m),
        });
        let _ = naive.handle(self.naive_set_keys(r, m, r + m));
        naive.drain_events(events);
        events.clear();
    }
}

/// A pre-built command stream consumed in order, pass by pass. When it
/// runs out, it is built again (outside any timing).
#[derive(Debug)]
pub struct Stream<C> {
    commands: std::vec::IntoIter<C>,
    /// Commands per pass (the number of rooms).
    pub pass_len: usize,
    /// Commands taken from the current pass.
    pub taken_in_pass: usize,
    /// Index of the current pass in the stream.
    pub pass: usize,
}

impl<C> Stream<C> {
    /// A stream of `commands`, `pass_len` per pass.
    #[must_use]
    pub fn new(commands: Vec<C>, pass_len: usize) -> Stream<C> {
        Stream {
            commands: commands.into_iter(),
            pass_len: pass_len.max(1),
            taken_in_pass: 0,
            pass: 0,
        }
    }

    /// Commands left in the stream.
    #[must_use]
    pub fn left(&self) -> usize {
        self.commands.len()
    }

    /// Commands left in the current pass.
    #[must_use]
    pub fn left_in_pass(&self) -> usize {
        (self.pass_len - self.taken_in_pass).min(self.left())
    }

    /// The next command of the current pass, if any is left.
    pub fn take(&mut self) -> Option<C> {
        if self.taken_in_pass == self.pass_len {
            return None;
        }
        let c = self.commands.next()?;
        self.taken_in_pass += 1;
        Some(c)
    }

    /// Starts the next pass (the caller has done what goes between).
    pub fn next_pass(&mut self) {
        self.taken_in_pass = 0;
        self.pass += 1;
    }
}

/// The engine's write stream over `cold`: whole passes of at least `min`
/// commands in all (the benchmarks use [`STREAM_MIN`]; `seed` picks the
/// order).
#[must_use]
pub fn engine_write_stream(cold: &ColdRooms, seed: u64, min: usize) -> Stream<Command> {
    let picks = cold.write_picks(seed, min);
    let cmds = picks
        .iter()
        .enumerate()
        .map(|(n, &(r, k))| cold.engine_overwrite(r as usize, usize::from(k), n))
        .collect();
    Stream::new(cmds, cold.rooms)
}

/// The baseline's same write stream.
#[must_use]
pub fn naive_write_stream(cold: &ColdRooms, seed: u64, min: usize) -> Stream<NaiveCmd> {
    let picks = cold.write_picks(seed, min);
    let cmds = picks
        .iter()
        .enumerate()
        .map(|(n, &(r, k))| cold.naive_overwrite(r as usize, usize::from(k), n))
        .collect();
    Stream::new(cmds, cold.rooms)
}

/// Member that leaves in pass `p`.
#[must_use]
pub fn leaver(pass: usize) -> usize {
    pass % MEMBERS
}

/// The engine's exit stream over `cold`: pass `p` is a leave of member
/// [`leaver`]`(p)` in every room; whole passes of at least `min` commands.
#[must_use]
pub fn engine_exit_stream(cold: &ColdRooms, seed: u64, min: usize) -> Stream<Command> {
    let cmds = cold
        .passes(seed, min)
        .into_iter()
        .enumerate()
        .flat_map(|(p, order)| {
            order
                .into_iter()
                .map(move |r| cold.engine_leave(r as usize, leaver(p)))
        })
        .collect();
    Stream::new(cmds, cold.rooms)
}

/// The baseline's same exit stream.
#[must_use]
pub fn naive_exit_stream(cold: &ColdRooms, seed: u64, min: usize) -> Stream<NaiveCmd> {
    let cmds = cold
        .passes(seed, min)
        .into_iter()
        .enumerate()
        .flat_map(|(p, order)| {
            order
                .into_iter()
                .map(move |r| cold.naive_leave(r as usize, leaver(p)))
        })
        .collect();
    Stream::new(cmds, cold.rooms)
}

/// The read stream over `cold`: per visit of [`ColdRooms::passes`], the id
/// of the room to read, each a distinct owned `String` (as a decoder hands
/// it over); whole passes of at least `min` ids (the benchmarks use
/// [`STREAM_MIN`]; `seed` picks the order).
#[must_use]
pub fn read_stream(cold: &ColdRooms, seed: u64, min: usize) -> Stream<String> {
    let ids = cold
        .passes(seed, min)
        .into_iter()
        .flatten()
        .map(|r| cold.room(r as usize))
        .collect();
    Stream::new(ids, cold.rooms)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::workload::{engine_read_json, engine_visit_attributes, naive_read_json};

    #[test]
    fn a_stream_gives_one_pass_at_a_time_and_each_pass_has_its_leaver() {
        let mut s = Stream::new((0..7).collect::<Vec<u32>>(), 3);
        assert_eq!((s.left(), s.left_in_pass(), s.pass), (7, 3, 0));
        let pass = |s: &mut Stream<u32>| (0..4).map(|_| s.take()).collect::<Vec<_>>();
        // Part way through a pass, what is left of it.
        assert_eq!(s.take(), Some(0));
        assert_eq!((s.left(), s.left_in_pass()), (6, 2));
        assert_eq!(pass(&mut s), [Some(1), Some(2), None, None]);
        s.next_pass();
        assert_eq!((s.pass, s.left_in_pass()), (1, 3));
        assert_eq!(pass(&mut s), [Some(3), Some(4), Some(5), None]);
        s.next_pass();
        assert_eq!((s.pass, s.left(), s.left_in_pass()), (2, 1, 1));
        assert_eq!(pass(&mut s), [Some(6), None, None, None]);
        // Passes in a row send different members away, every one in turn.
        let turn: BTreeSet<usize> = (0..MEMBERS).map(leaver).collect();
        assert_eq!(turn.len(), MEMBERS);
        assert_eq!(leaver(MEMBERS + 2), leaver(2));
    }

    #[test]
    fn cold_reads_visit_every_room_once_per_pass_and_read_all_20_attributes_alike() {
        let cold = ColdRooms::new(37);
        let (engine, naive) = (cold.engine(), cold.naive());
        let mut s = read_stream(&cold, 7, 100);
        assert_eq!(s.left(), 3 * 37, "whole passes, at least 100 reads");
        let (mut out, mut naive_out) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let mut seen = Vec::new();
            while let Some(id) = s.take() {
                out.clear();
                naive_out.clear();
                assert!(engine_read_json(&engine, &id, &mut out));
                assert!(naive_read_json(&naive, &id, &mut naive_out));
                // The replies list the same attributes (the baseline in its
                // map's order): same length, and each is one attribute.
                assert_eq!(out.len(), naive_out.len(), "same reply from both sides");
                let mut attrs = BTreeSet::new();
                engine_visit_attributes(&engine, &id, |k, v, o, rev| {
                    attrs.insert((k.to_string(), v.to_string(), o.to_string(), rev));
                })
                .unwrap();
                assert_eq!(attrs.len(), KEYS, "every attribute of {id}");
                let naive_attrs: BTreeSet<_> = naive.rooms[&id]
                    .attrs
                    .iter()
                    .map(|(k, a)| (k.clone(), a.value.clone(), a.owner.clone(), a.revision))
                    .collect();
                assert_eq!(attrs, naive_attrs, "both sides hold the same room");
                let r = (0..cold.rooms).find(|&r| cold.room(r) == id).unwrap();
                for (k, v, owner, _) in &attrs {
                    let k: usize = k["key-".len()..].parse().unwrap();
                    assert_eq!(owner, &cold.member(r, owner_of(k)));
                    let needle = format!("\"key\":\"{}\",\"value\":\"{v}\"", key(k));
                    assert!(
                        out.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "the reply carries {needle}"
                    );
                }
                seen.push(r);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..37).collect::<Vec<usize>>(), "each room once");
            s.next_pass();
        }
        assert_eq!(s.left(), 0);
        let first_pass = |seed| {
            let mut s = read_stream(&cold, seed, 37);
            (0..37).filter_map(|_| s.take()).collect::<Vec<String>>()
        };
        assert_eq!(first_pass(7), first_pass(7), "deterministic");
        assert_ne!(first_pass(7), first_pass(8), "the seed picks the order");
    }
}
