//! The self-check: every internal invariant, recomputed the slow way.

use super::{Engine, Violation};
use crate::command::Role;
use crate::room::indexed_owner;

impl Engine {
    /// Checks every internal invariant: owner index both ways, byte totals
    /// recomputed, counts within limits, revisions not ahead of sequence
    /// numbers, timers matching dropped connections, queue within capacity.
    /// An `Err` is a bug in the engine.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        let limits = &self.profile.limits;
        let mut total = 0u64;
        let mut timers = 0usize;
        for (id, room) in &self.rooms {
            let fail = |what| {
                Err(Violation {
                    room: Some(id.clone()),
                    what,
                })
            };
            if room.id != *id {
                return fail("room stored under another id");
            }
            if !room.attrs.consistent() {
                return fail("attribute map index does not match its slots");
            }
            let bytes: u64 = room.attrs.iter().map(|s| s.attr.value.len() as u64).sum();
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
            if room.users.get(&*room.creator).map(|r| r.role) != Some(Role::Creator) {
                return fail("creator record missing or not Creator");
            }
            for s in room.attrs.iter() {
                if s.attr.revision > room.seq || s.attr.revision == 0 {
                    return fail("attribute revision outside 1..=seq");
                }
                if let Some(u) = indexed_owner(&s.attr.owner, s.attr.auto_delete) {
                    let ok = room
                        .users
                        .get(&**u)
                        .and_then(|r| r.auto_attrs.get(s.owned_pos as usize))
                        .is_some_and(|k| *k == s.attr.key);
                    if !ok {
                        return fail("auto-delete attribute missing from its owner's index");
                    }
                }
            }
            if let Some(q) = &room.queue {
                if !q.elems.consistent() {
                    return fail("queue index does not match its slots");
                }
                if q.elems.len() > q.capacity as usize {
                    return fail("queue over capacity");
                }
                for s in q.elems.iter() {
                    if let Some(u) = indexed_owner(&s.elem.owner, s.elem.transient) {
                        let ok = room
                            .users
                            .get(&**u)
                            .and_then(|r| r.transient.get(s.owned_pos as usize))
                            .is_some_and(|k| *k == s.elem.key);
                        if !ok {
                            return fail("transient element missing from its owner's index");
                        }
                    }
                }
            }
            for (user, rec) in &room.users {
                if rec.is_idle() {
                    return fail("idle user record kept");
                }
                if (rec.dropped > 0) != rec.grace_until.is_some() {
                    return fail("dropped connections without a deadline, or the reverse");
                }
                if let Some(at) = rec.grace_until {
                    timers += 1;
                    if !self.timers.contains(&(at, id.clone(), user.clone())) {
                        return fail("grace deadline without a timer");
                    }
                    if at <= self.now {
                        return fail("grace deadline in the past not expired");
                    }
                }
                for k in &rec.auto_attrs {
                    let ok = room.attrs.get(k).is_some_and(|s| {
                        s.attr.auto_delete && s.attr.owner.as_user() == Some(user)
                    });
                    if !ok {
                        return fail(
                            "owner index names an attribute the user does not own with auto-delete",
                        );
                    }
                }
                for k in &rec.transient {
                    let ok = room
                        .queue
                        .as_ref()
                        .and_then(|q| q.elems.get(k))
                        .is_some_and(|s| s.elem.transient && s.elem.owner.as_user() == Some(user));
                    if !ok {
                        return fail(
                            "owner index names an element the user does not own as transient",
                        );
                    }
                }
            }
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
        if timers != self.timers.len() {
            return Err(Violation {
                room: None,
                what: "timer without a dropped connection",
            });
        }
        Ok(())
    }
}
