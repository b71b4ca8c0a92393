//! Key TTL: attributes set with [`Op::ttl`](crate::Op::ttl) are deleted
//! at their deadline, in their own event (cause `Expired`, operator
//! `Admin`, one `AttributeDeleted`).
//!
//! Deadlines live in two places, both ordered, O(log n) per key: the
//! room's side map `Room::expiry` (in its rare parts) (key → deadline; only keys with a TTL
//! pay for it, a record pays nothing), and the engine's `ttls` set in
//! firing order, which `poll_timeout` reads. Every set, delete, exit and
//! destruction that removes a key removes its deadline from both; an exit
//! does it only for the keys it removes, so it stays O(owned).

use alloc::collections::BTreeSet;

use super::{commit_one, Engine};
use crate::command::{Actor, Op, Write};
use crate::error::Rejection;
use crate::event::{Cause, Change};
use crate::room::Room;
use crate::text::Str;
use crate::time::Millis;

/// TTL deadlines of every room: `(deadline, room, key)`, in firing order.
pub(crate) type TtlTimers = BTreeSet<(Millis, Str, Str)>;

/// The request-level TTL check of a write: a TTL of 0, or one whose
/// deadline would not lie after `now` (at the end of time), is invalid.
pub(super) fn check_ttls(w: &Write, now: Millis) -> Result<(), Rejection> {
    let bad = w.ops.iter().any(|op| match op {
        Op::Set { ttl: Some(ms), .. } => now.saturating_add(*ms) <= now,
        _ => false,
    });
    if bad {
        Err(Rejection::InvalidParameter)
    } else {
        Ok(())
    }
}

/// After a set of `key`: its old deadline goes (an overwrite without a
/// TTL clears it), the new one, if any, is recorded.
pub(super) fn after_set(
    ttls: &mut TtlTimers,
    room: &mut Room,
    key: &Str,
    deadline: Option<Millis>,
) {
    clear(ttls, room, key);
    if let Some(at) = deadline {
        room.rare_mut().expiry.insert(key.clone(), at);
        ttls.insert((at, room.id.clone(), key.clone()));
    }
}

/// After `key` left the room (delete, exit): its deadline goes too.
/// Nothing to do, and nothing allocated, in a room without TTLs.
pub(super) fn clear(ttls: &mut TtlTimers, room: &mut Room, key: &str) {
    if room.expiry().is_empty() {
        return;
    }
    if let Some((key, at)) = room.take_expiry(key) {
        ttls.remove(&(at, room.id.clone(), key));
    }
}

/// A destroyed room's deadlines.
pub(super) fn clear_room(ttls: &mut TtlTimers, room: &Room) {
    for (key, at) in room.expiry() {
        ttls.remove(&(*at, room.id.clone(), key.clone()));
    }
}

impl Engine {
    /// Deletes every key whose TTL is due at `now`, in deadline order (then
    /// room, then key), each in its own event. Runs before the grace
    /// periods of the same `expire`.
    pub(super) fn expire_ttls(&mut self, now: Millis) {
        while self.ttls.first().is_some_and(|(at, ..)| *at <= now) {
            let Some((_, room_id, key)) = self.ttls.pop_first() else {
                break;
            };
            let Some(room) = self.rooms.get_mut(&room_id) else {
                continue;
            };
            room.take_expiry(&key);
            let hash = room.hash(&key);
            let Some(pos) = room.attrs.find(hash, &key) else {
                continue;
            };
            let before = room.value_bytes;
            if !room.delete_attr(hash, pos) {
                continue;
            }
            room.settle(&mut self.out.scratch);
            self.value_bytes = self.value_bytes - before + room.value_bytes;
            commit_one(
                &mut self.out,
                &self.profile,
                room,
                now,
                Actor::Admin,
                Cause::Expired,
                Change::AttributeDeleted { key },
            );
        }
    }
}

/// The TTL invariants of one room: every deadline belongs to a stored
/// key, lies after `now`, and has its timer.
pub(super) fn consistent(ttls: &TtlTimers, room: &Room, now: Millis) -> Result<(), &'static str> {
    for (key, at) in room.expiry() {
        if room.attrs.find(room.hash(key), key).is_none() {
            return Err("TTL deadline of a key that is not stored");
        }
        if *at <= now {
            return Err("TTL deadline in the past not expired");
        }
        if !ttls.contains(&(*at, room.id.clone(), key.clone())) {
            return Err("TTL deadline without a timer");
        }
    }
    Ok(())
}
