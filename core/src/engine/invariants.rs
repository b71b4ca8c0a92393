//! The self-check: every internal invariant, recomputed the slow way.

use super::{Engine, Violation};
use crate::command::Role;
use crate::time::Millis;

impl Engine {
    /// Checks every internal invariant: stores (index, arena, owner lists)
    /// against their records, user records against their uses, byte totals
    /// recomputed, counts within limits, revisions not ahead of sequence
    /// numbers, timers matching dropped connections, queue within
    /// capacity. An `Err` is a bug in the engine.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        let limits = &self.profile.limits;
        let mut total = 0u64;
        let mut timers = 0usize;
        let mut lock_timers = 0usize;
        let mut rooms = 0usize;
        let mut ttl_count = 0usize;
        for room in self.rooms.iter() {
            rooms += 1;
            let id = &room.id;
            let fail = |what| {
                Err(Violation {
                    room: Some(id.clone()),
                    what,
                })
            };
            if self.rooms.get(id).map(|r| core::ptr::eq(r, room)) != Some(true) {
                return fail("room not found under its own id");
            }
            if let Err(what) = room.users.consistent(&room.hasher) {
                return fail(what);
            }
            let owner_ok = |n| room.users.get(n).is_some();
            if let Err(what) = room.attrs.consistent(&room.hasher, owner_ok) {
                return fail(what);
            }
            let bytes: u64 = room
                .attrs
                .positions()
                .map(|p| u64::from(room.attrs.value_len(p)))
                .sum();
            if bytes != room.value_bytes {
                return fail("room value bytes differ from the recomputed sum");
            }
            total += bytes;
            if limits
                .max_keys_per_room
                .is_some_and(|m| room.attrs.len() > m as usize)
            {
                return fail("more keys than the profile allows");
            }
            if limits.max_room_value_bytes.is_some_and(|m| bytes > m) {
                return fail("room value bytes over the profile's limit");
            }
            if room.users.get(room.users.creator).map(|r| r.role) != Some(Role::Creator) {
                return fail("creator record missing or not Creator");
            }
            if room
                .users
                .iter()
                .any(|(n, r)| r.role == Role::Creator && n != room.users.creator)
            {
                return fail("Creator role held by someone else");
            }
            if let Err(what) = super::counters::consistent(room, limits) {
                return fail(what);
            }
            if let Err(what) = super::ttl::consistent(&self.ttls, room, self.now) {
                return fail(what);
            }
            ttl_count += room.expiry().len();
            if let Err(what) =
                room.history
                    .consistent(room.seq, limits.history_events, limits.history_bytes)
            {
                return fail(what);
            }
            if let Err(what) = room.stamps_consistent() {
                return fail(what);
            }
            for p in room.attrs.positions() {
                let revision = room
                    .attrs
                    .meta(p)
                    .map_or(0, |m| room.revision_of(room.attrs.key(p), m.x));
                if revision > room.seq || revision == 0 {
                    return fail("attribute revision outside 1..=seq");
                }
                if revision > room.attr_rev {
                    return fail("attribute revision after the room's major revision");
                }
            }
            if room.attr_rev > room.seq {
                return fail("major revision after the room's seq");
            }
            if let Err(what) = self.check_locks(room) {
                return fail(what);
            }
            lock_timers += room
                .locks()
                .list()
                .iter()
                .filter(|l| l.deadline.is_some())
                .count();
            // Every record's reference count is what the stores hold.
            let mut refs = alloc::vec![0u32; room.users.iter().map(|(n, _)| n as usize + 1).max().unwrap_or(0)];
            let mut count = |owner: u32| {
                if let Some(r) = refs.get_mut(owner as usize) {
                    *r += 1;
                }
            };
            for p in room.attrs.positions() {
                if let Some(m) = room.attrs.meta(p) {
                    count(m.owner());
                }
            }
            if let Some(q) = &room.queue {
                if let Err(what) = q.elems.consistent(&room.hasher, owner_ok) {
                    return fail(what);
                }
                if q.elems.len() > q.capacity as usize {
                    return fail("queue over capacity");
                }
                for p in q.elems.positions() {
                    if let Some(m) = q.elems.meta(p) {
                        count(m.owner());
                    }
                }
            }
            for (n, rec) in room.users.iter() {
                if refs.get(n as usize).copied() != Some(rec.refs) {
                    return fail("user record's reference count differs from its uses");
                }
                if rec.is_idle() {
                    return fail("idle user record kept");
                }
                if (rec.dropped > 0) != room.grace(n).is_some() {
                    return fail("dropped connections without a deadline, or the reverse");
                }
                if let Some(at) = room.grace(n) {
                    timers += 1;
                    if !self.timers.contains(&(at, id.clone(), rec.name.clone())) {
                        return fail("grace deadline without a timer");
                    }
                    if at <= self.now || at == Millis::ZERO {
                        return fail("grace deadline in the past not expired");
                    }
                }
            }
            if room.graces().keys().any(|&n| room.users.get(n).is_none()) {
                return fail("grace deadline of a free user number");
            }
            if room.rare.as_deref().is_some_and(|r| r.is_empty()) {
                return fail("empty rare parts kept");
            }
        }
        if rooms != self.rooms.len() {
            return Err(Violation {
                room: None,
                what: "room count differs from the rooms found",
            });
        }
        if total != self.value_bytes {
            return Err(Violation {
                room: None,
                what: "engine value bytes differ from the sum over rooms",
            });
        }
        if limits.max_engine_value_bytes.is_some_and(|m| total > m) {
            return Err(Violation {
                room: None,
                what: "engine value bytes over the profile's limit",
            });
        }
        if lock_timers != self.lock_timers.len() {
            return Err(Violation {
                room: None,
                what: "lock timer without a lock deadline",
            });
        }
        if ttl_count != self.ttls.len() {
            return Err(Violation {
                room: None,
                what: "TTL timer without a deadline in its room",
            });
        }
        if timers != self.timers.len() {
            return Err(Violation {
                room: None,
                what: "timer without a dropped connection",
            });
        }
        Ok(())
    }

    /// One room's locks: within the profile's count, valid unique names,
    /// holders and waiters present, a free lock with no line, a deadline
    /// exactly while the holder has no live connection, each deadline in
    /// the timer set and still ahead.
    fn check_locks(&self, room: &crate::room::Room) -> Result<(), &'static str> {
        let limits = self.profile.limits.locks;
        if room.locks().len() > limits.max_per_room as usize {
            return Err("more locks than the profile allows");
        }
        let live = |u: &str| {
            room.users
                .by_name(&room.hasher, u)
                .filter(|r| r.is_present())
        };
        for (i, lock) in room.locks().list().iter().enumerate() {
            if !limits.name_ok(&lock.name) {
                return Err("lock name the profile refuses");
            }
            if room
                .locks()
                .list()
                .iter()
                .skip(i + 1)
                .any(|l| l.name == lock.name)
            {
                return Err("two locks of one name");
            }
            if lock.ttl_ms != limits.clamp_ttl(lock.ttl_ms) {
                return Err("lock TTL outside the profile's range");
            }
            let Some(holder) = &lock.holder else {
                if !lock.waiters.is_empty() || lock.deadline.is_some() {
                    return Err("free lock with waiters or a deadline");
                }
                continue;
            };
            let Some(rec) = live(holder) else {
                return Err("lock held by a user not in the room");
            };
            if lock.token == 0 {
                return Err("held lock without a token");
            }
            if (rec.live == 0) != lock.deadline.is_some() {
                return Err("lock deadline without a disconnected holder, or the reverse");
            }
            if let Some(at) = lock.deadline {
                if at <= self.now {
                    return Err("lock deadline in the past not expired");
                }
                if !self
                    .lock_timers
                    .contains(&(at, room.id.clone(), lock.name.clone()))
                {
                    return Err("lock deadline without a timer");
                }
            }
            for (j, w) in lock.waiters.iter().enumerate() {
                if w == holder || lock.waiters.iter().skip(j + 1).any(|x| x == w) {
                    return Err("lock waiter twice in line, or the holder");
                }
                if live(w).is_none() {
                    return Err("lock waiter not in the room");
                }
            }
        }
        Ok(())
    }
}

/// Each check of `check_invariants`, shown to fire: a healthy engine is
/// corrupted one way at a time, through the crate's own fields, and the
/// violation it names is the one broken (a checker that cannot fail would
/// pass every other test).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::command::{Actor, Command, CounterOp, Notify, Op, Role, Write};
    use crate::engine::Engine;
    use crate::profile::Profile;
    use crate::room::Room;
    use crate::time::Millis;

    const NOW: Millis = Millis(10_000);

    /// NetEase, history off (its own check is tested in `history.rs`): room
    /// "r" of `host` with members ann (owns k1, auto-delete, and the queue
    /// element), bob (dropped, in grace) and cat (present, owns nothing);
    /// k2 is the Admin's.
    fn healthy() -> Engine {
        build(false)
    }

    /// [`healthy`], with lock "stage" (TTL 60 s) held by bob, whose
    /// deadline runs since he dropped, and ann waiting for it.
    fn with_lock() -> Engine {
        build(true)
    }

    fn build(lock: bool) -> Engine {
        let mut profile = Profile::netease();
        profile.limits.request_rate = None;
        profile.limits.history_events = 0;
        let mut e = Engine::new(profile);
        let mut run = |c: Command| assert!(e.handle(NOW, c).is_ok());
        run(Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        });
        for u in ["host", "ann", "bob", "cat"] {
            run(Command::Join {
                room: "r".into(),
                user: u.into(),
            });
        }
        run(Command::Write(
            Write::new("r", Actor::user("ann")).op(Op::set("k1", "v1").auto_delete(true)),
        ));
        run(Command::Write(
            Write::new("r", Actor::Admin).op(Op::set("k2", "v2")),
        ));
        run(Command::QueueOffer {
            room: "r".into(),
            operator: Actor::user("ann"),
            key: "mic".into(),
            value: "1".into(),
            transient: false,
            notify: Notify::default(),
        });
        if lock {
            run(Command::SetLock {
                room: "r".into(),
                name: "stage".into(),
                ttl_ms: 60_000,
            });
            for u in ["bob", "ann"] {
                run(Command::AcquireLock {
                    room: "r".into(),
                    name: "stage".into(),
                    user: u.into(),
                    retry: true,
                });
            }
        }
        run(Command::Disconnect {
            room: "r".into(),
            user: "bob".into(),
        });
        assert_eq!(e.check_invariants(), Ok(()));
        e
    }

    /// The room's lock "stage".
    fn stage(e: &mut Engine) -> &mut crate::locks::Lock {
        room(e).rare_mut().locks.get_mut("stage").unwrap()
    }

    fn room(e: &mut Engine) -> &mut Room {
        e.rooms.get_mut("r").unwrap()
    }

    /// The user number of `name` in room "r".
    fn user(e: &mut Engine, name: &str) -> u32 {
        let r = room(e);
        r.users.find(&r.hasher, name).unwrap()
    }

    /// One corruption, and the violation it must be named as.
    type Case = (&'static str, fn(&mut Engine));

    /// What `check_invariants` names after `f` corrupts engine `e`.
    fn named(mut e: Engine, f: impl FnOnce(&mut Engine)) -> &'static str {
        f(&mut e);
        e.check_invariants().unwrap_err().what
    }

    #[test]
    fn each_check_names_what_it_finds() {
        let cases: [Case; 21] = [
            ("room value bytes differ from the recomputed sum", |e| {
                room(e).value_bytes += 1;
            }),
            ("more keys than the profile allows", |e| {
                e.profile.limits.max_keys_per_room = Some(1);
            }),
            ("room value bytes over the profile's limit", |e| {
                e.profile.limits.max_room_value_bytes = Some(3);
            }),
            ("creator record missing or not Creator", |e| {
                let n = user(e, "host");
                room(e).users.get_mut(n).unwrap().role = Role::Admin;
            }),
            ("Creator role held by someone else", |e| {
                let n = user(e, "cat");
                room(e).users.get_mut(n).unwrap().role = Role::Creator;
            }),
            ("attribute revision outside 1..=seq", |e| room(e).seq = 1),
            ("attribute revision after the room's major revision", |e| {
                room(e).attr_rev = 1;
            }),
            ("major revision after the room's seq", |e| {
                let r = room(e);
                r.attr_rev = r.seq + 1;
            }),
            ("queue over capacity", |e| {
                room(e).queue.as_mut().unwrap().capacity = 0;
            }),
            ("user record's reference count differs from its uses", |e| {
                let n = user(e, "ann");
                room(e).users.get_mut(n).unwrap().refs += 1;
            }),
            ("idle user record kept", |e| {
                let n = user(e, "cat");
                room(e).users.get_mut(n).unwrap().live = 0;
            }),
            (
                "dropped connections without a deadline, or the reverse",
                |e| {
                    let n = user(e, "cat");
                    room(e).users.get_mut(n).unwrap().dropped = 1;
                },
            ),
            ("grace deadline without a timer", |e| e.timers.clear()),
            ("grace deadline in the past not expired", |e| {
                e.now = Millis(u64::MAX);
            }),
            ("grace deadline of a free user number", |e| {
                room(e).rare_mut().grace.insert(999, Millis(NOW.0 + 1));
            }),
            ("empty rare parts kept", |e| {
                let r = room(e);
                r.rare.as_mut().unwrap().grace.clear();
                let n = r.users.find(&r.hasher, "bob").unwrap();
                r.users.get_mut(n).unwrap().dropped = 0;
                r.users.get_mut(n).unwrap().live = 1;
                e.timers.clear();
            }),
            ("engine value bytes differ from the sum over rooms", |e| {
                e.value_bytes += 1;
            }),
            ("engine value bytes over the profile's limit", |e| {
                e.profile.limits.max_engine_value_bytes = Some(3);
            }),
            ("lock timer without a lock deadline", |e| {
                e.lock_timers.insert((NOW, "r".into(), "lock".into()));
            }),
            ("TTL timer without a deadline in its room", |e| {
                e.ttls.insert((NOW, "gone".into(), "k".into()));
            }),
            ("timer without a dropped connection", |e| {
                e.timers.insert((NOW, "gone".into(), "u".into()));
            }),
        ];
        for (what, corrupt) in cases {
            assert_eq!(named(healthy(), corrupt), what);
        }
    }

    /// [`healthy`], with key k3 (TTL 60 s) and counter "c".
    fn with_ttl_and_counter() -> Engine {
        let mut e = healthy();
        let w = Write::new("r", Actor::Admin).op(Op::set("k3", "v3").ttl(60_000));
        assert!(e.handle(NOW, Command::Write(w)).is_ok());
        let c = Command::counter("r", Actor::Admin, "c", CounterOp::Set(1));
        assert!(e.handle(NOW, c).is_ok());
        assert_eq!(e.check_invariants(), Ok(()));
        e
    }

    /// Moves k3's TTL deadline, and its timer, to `at`.
    fn move_ttl(e: &mut Engine, at: Millis) {
        let old = room(e).rare_mut().expiry.insert("k3".into(), at).unwrap();
        e.ttls.remove(&(old, "r".into(), "k3".into()));
        e.ttls.insert((at, "r".into(), "k3".into()));
    }

    #[test]
    fn each_ttl_and_counter_check_names_what_it_finds() {
        let cases: [Case; 6] = [
            ("TTL deadline of a key that is not stored", |e| {
                let at = Millis(NOW.0 + 1);
                room(e).rare_mut().expiry.insert("gone".into(), at);
                e.ttls.insert((at, "r".into(), "gone".into()));
            }),
            ("TTL deadline in the past not expired", |e| move_ttl(e, NOW)),
            ("TTL deadline without a timer", |e| e.ttls.clear()),
            ("counters not sorted by key", |e| {
                room(e).rare_mut().counters.push_unordered("a".into(), 2);
            }),
            ("counter key empty or over the profile's length", |e| {
                room(e).rare_mut().counters.set("".into(), 2);
            }),
            ("more counters than the profile allows", |e| {
                e.profile.limits.max_counters_per_room = Some(0);
            }),
        ];
        for (what, corrupt) in cases {
            assert_eq!(named(with_ttl_and_counter(), corrupt), what);
        }
        // A deadline one millisecond ahead is healthy, and so is a room
        // exactly at the counter limits (one counter, a one-byte key).
        let mut e = with_ttl_and_counter();
        move_ttl(&mut e, Millis(NOW.0 + 1));
        e.profile.limits.max_counters_per_room = Some(1);
        e.profile.limits.max_counter_key_len = 1;
        assert_eq!(e.check_invariants(), Ok(()));
    }

    #[test]
    fn each_lock_check_names_what_it_finds() {
        let cases: [Case; 13] = [
            ("more locks than the profile allows", |e| {
                e.profile.limits.locks.max_per_room = 0;
            }),
            ("lock name the profile refuses", |e| {
                stage(e).name = "".into()
            }),
            ("two locks of one name", |e| {
                let copy = stage(e).clone();
                room(e).rare_mut().locks.push(copy);
            }),
            ("lock TTL outside the profile's range", |e| {
                stage(e).ttl_ms = 0
            }),
            ("free lock with waiters or a deadline", |e| {
                let lock = stage(e);
                lock.holder = None;
                lock.deadline = None;
            }),
            ("free lock with waiters or a deadline", |e| {
                let lock = stage(e);
                lock.holder = None;
                lock.waiters.clear();
            }),
            ("lock held by a user not in the room", |e| {
                stage(e).holder = Some("zed".into());
            }),
            ("held lock without a token", |e| stage(e).token = 0),
            (
                "lock deadline without a disconnected holder, or the reverse",
                |e| stage(e).deadline = None,
            ),
            ("lock deadline in the past not expired", |e| {
                stage(e).deadline = Some(NOW);
            }),
            ("lock deadline without a timer", |e| e.lock_timers.clear()),
            ("lock waiter twice in line, or the holder", |e| {
                stage(e).waiters.push("bob".into());
            }),
            ("lock waiter not in the room", |e| {
                stage(e).waiters.push("zed".into());
            }),
        ];
        for (what, corrupt) in cases {
            assert_eq!(named(with_lock(), corrupt), what);
        }
        // Exactly at the count limit is healthy.
        let mut e = with_lock();
        e.profile.limits.locks.max_per_room = 1;
        assert_eq!(e.check_invariants(), Ok(()));
    }

    /// The limits are inclusive: a room exactly at each is healthy (two
    /// keys of 2-byte values, one queue element).
    #[test]
    fn a_room_exactly_at_each_limit_is_healthy() {
        let mut e = healthy();
        e.profile.limits.max_keys_per_room = Some(2);
        e.profile.limits.max_room_value_bytes = Some(4);
        e.profile.limits.max_engine_value_bytes = Some(4);
        room(&mut e).queue.as_mut().unwrap().capacity = 1;
        assert_eq!(e.check_invariants(), Ok(()));
    }
}
