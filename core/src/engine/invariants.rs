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
                .filter_map(|p| room.attrs.meta(p))
                .map(|m| u64::from(m.value_len()))
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
            if room.users.get(room.creator).map(|r| r.role) != Some(Role::Creator) {
                return fail("creator record missing or not Creator");
            }
            if room
                .users
                .iter()
                .any(|(n, r)| r.role == Role::Creator && n != room.creator)
            {
                return fail("Creator role held by someone else");
            }
            if let Err(what) = super::counters::consistent(room, limits) {
                return fail(what);
            }
            if let Err(what) = super::ttl::consistent(&self.ttls, room, self.now) {
                return fail(what);
            }
            ttl_count += room.expiry.len();
            if let Err(what) =
                room.history
                    .consistent(room.seq, limits.history_events, limits.history_bytes)
            {
                return fail(what);
            }
            for p in room.attrs.positions() {
                let revision = room.attrs.meta(p).map_or(0, |m| m.x.revision);
                if revision > room.seq || revision == 0 {
                    return fail("attribute revision outside 1..=seq");
                }
            }
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
                if (rec.dropped > 0) != rec.grace().is_some() {
                    return fail("dropped connections without a deadline, or the reverse");
                }
                if let Some(at) = rec.grace() {
                    timers += 1;
                    if !self.timers.contains(&(at, id.clone(), rec.name.clone())) {
                        return fail("grace deadline without a timer");
                    }
                    if at <= self.now || at == Millis::ZERO {
                        return fail("grace deadline in the past not expired");
                    }
                }
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
}
