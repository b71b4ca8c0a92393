//! Rooms and members: creation, destruction, joins, leaves, disconnects,
//! kicks, roles, and the exit that removes what a user owned.

use alloc::boxed::Box;

use super::locks::{self, LockTimers};
use super::ttl::{self, TtlTimers};
use super::{commit, commit_one, Engine, Output};
use crate::command::{Actor, Role};
use crate::error::Rejection;
use crate::event::{Cause, Change, ExitKind};
use crate::outcome::{Outcome, Success};
use crate::profile::Profile;
use crate::room::Room;
use crate::text::Str;
use crate::time::Millis;

impl Engine {
    pub(super) fn create_room(&mut self, now: Millis, id: Str, creator: Str) -> Outcome {
        if id.is_empty() || creator.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        if self.rooms.contains(&id) {
            return Err(Rejection::RoomExists);
        }
        let mut room = Box::new(Room::new(id, &creator).ok_or(Rejection::InvalidParameter)?);
        commit_one(
            &mut self.out,
            &self.profile,
            &mut room,
            now,
            Actor::Admin,
            Cause::RoomCreated,
            Change::RoomCreated { creator },
        );
        self.rooms.insert(room);
        Ok(Success::Done)
    }

    pub(super) fn destroy_room(&mut self, now: Millis, id: &str) -> Outcome {
        let mut room = self.rooms.remove(id).ok_or(Rejection::RoomNotFound)?;
        for (&n, &at) in room.graces() {
            if let Some(rec) = room.users.get(n) {
                self.timers.remove(&(at, room.id.clone(), rec.name.clone()));
            }
        }
        locks::forget_room(&mut self.lock_timers, &room);
        self.value_bytes -= room.value_bytes;
        ttl::clear_room(&mut self.ttls, &room);
        commit_one(
            &mut self.out,
            &self.profile,
            &mut room,
            now,
            Actor::Admin,
            Cause::RoomDestroyed,
            Change::RoomDestroyed,
        );
        Ok(Success::Done)
    }

    pub(super) fn join(&mut self, now: Millis, id: &str, user: Str) -> Outcome {
        if user.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let n = room.intern(&user).ok_or(Rejection::InvalidParameter)?;
        let Some(rec) = room.users.get_mut(n) else {
            return Err(Rejection::InvalidParameter);
        };
        if rec.dropped > 0 {
            // A re-join inside the grace period reclaims a dropped connection.
            rec.dropped -= 1;
            rec.live += 1;
            if rec.dropped == 0 {
                if let Some(at) = room.clear_grace(n) {
                    self.timers.remove(&(at, room.id.clone(), user.clone()));
                }
            }
            // Back inside the TTL: the user keeps its locks.
            locks::disarm(&mut self.lock_timers, room, &user);
            return Ok(Success::Done);
        }
        rec.live = rec.live.saturating_add(1);
        if rec.live == 1 {
            commit_one(
                &mut self.out,
                &self.profile,
                room,
                now,
                Actor::User(user.clone()),
                Cause::Membership,
                Change::MemberJoined { user },
            );
        }
        Ok(Success::Done)
    }

    pub(super) fn leave(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let n = room.user(user).ok_or(Rejection::NotInRoom)?;
        let rec = room
            .users
            .get_mut(n)
            .filter(|r| r.is_present())
            .ok_or(Rejection::NotInRoom)?;
        if rec.live > 0 {
            rec.live -= 1;
        } else {
            rec.dropped -= 1;
            if rec.dropped == 0 {
                if let Some(at) = room.clear_grace(n) {
                    self.timers.remove(&(at, room.id.clone(), user.clone()));
                }
            }
        }
        let (present, live) = room
            .users
            .get(n)
            .map_or((false, 0), |r| (r.is_present(), r.live));
        if !present {
            exit_user(
                &mut self.out,
                &self.profile,
                &mut self.value_bytes,
                &mut self.lock_timers,
                room,
                now,
                n,
                ExitKind::Left,
                Actor::User(user.clone()),
                &mut self.ttls,
            );
        } else if live == 0 {
            // Only dropped connections are left: its locks' TTLs start.
            locks::arm(&mut self.lock_timers, room, user, now);
        }
        Ok(Success::Done)
    }

    pub(super) fn disconnect(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
        let grace = self.profile.limits.disconnect_grace_ms;
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let n = room.user(user).ok_or(Rejection::NotInRoom)?;
        let rec = room
            .users
            .get_mut(n)
            .filter(|r| r.is_present())
            .ok_or(Rejection::NotInRoom)?;
        if rec.live == 0 {
            // Every connection has dropped already: a repeated drop report
            // changes nothing (and does not restart the grace period).
            return Ok(Success::Done);
        }
        let until = now.saturating_add(grace);
        rec.live -= 1;
        if until <= now {
            // Grace 0, or a deadline that cannot lie after `now` (at the
            // end of time): the connection is gone at once, like a leave.
            if !rec.is_present() {
                exit_user(
                    &mut self.out,
                    &self.profile,
                    &mut self.value_bytes,
                    &mut self.lock_timers,
                    room,
                    now,
                    n,
                    ExitKind::Disconnected,
                    Actor::Admin,
                    &mut self.ttls,
                );
            } else if rec.live == 0 {
                locks::arm(&mut self.lock_timers, room, user, now);
            }
            return Ok(Success::Done);
        }
        rec.dropped += 1;
        let last_live = rec.live == 0;
        if let Some(old) = room.set_grace(n, until) {
            self.timers.remove(&(old, room.id.clone(), user.clone()));
        }
        self.timers.insert((until, room.id.clone(), user.clone()));
        if last_live {
            // The holder's last live connection dropped: its locks' TTLs
            // start.
            locks::arm(&mut self.lock_timers, room, user, now);
        }
        Ok(Success::Done)
    }

    pub(super) fn kick(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let n = room.user(user).ok_or(Rejection::NotInRoom)?;
        if !room.users.get(n).is_some_and(|r| r.is_present()) {
            return Err(Rejection::NotInRoom);
        }
        if let Some(at) = room.grace(n) {
            self.timers.remove(&(at, room.id.clone(), user.clone()));
        }
        exit_user(
            &mut self.out,
            &self.profile,
            &mut self.value_bytes,
            &mut self.lock_timers,
            room,
            now,
            n,
            ExitKind::Kicked,
            Actor::Admin,
            &mut self.ttls,
        );
        Ok(Success::Done)
    }

    pub(super) fn set_role(&mut self, now: Millis, id: &str, user: Str, role: Role) -> Outcome {
        if user.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        if role == Role::Creator || user == *room.creator_name() {
            return Err(Rejection::InvalidParameter);
        }
        if room.role(&user) == role {
            return Ok(Success::Done);
        }
        let n = room.intern(&user).ok_or(Rejection::InvalidParameter)?;
        if let Some(rec) = room.users.get_mut(n) {
            rec.role = role;
        }
        room.gc_user(n);
        commit_one(
            &mut self.out,
            &self.profile,
            room,
            now,
            Actor::Admin,
            Cause::Membership,
            Change::RoleSet { user, role },
        );
        Ok(Success::Done)
    }
}

/// User `n` has no connection left: one `OwnerExited` event with the exit
/// and everything the owner index says goes with it. Takes the room the
/// caller already holds, so an exit looks it up once.
#[allow(clippy::too_many_arguments)] // the engine's fields it touches, then the exit
pub(super) fn exit_user(
    out: &mut Output,
    profile: &Profile,
    engine_bytes: &mut u64,
    lock_timers: &mut LockTimers,
    room: &mut Room,
    now: Millis,
    n: u32,
    how: ExitKind,
    operator: Actor,
    ttls: &mut TtlTimers,
) {
    let before = room.value_bytes;
    let user = room.owner_name(n).cloned().unwrap_or_default();
    // Cloned only where the room has locks (an exit stays allocation-free).
    let lock_user = (!room.locks().is_empty()).then(|| user.clone());
    let mut changes = out.one(Change::MemberExited { user, how });
    room.exit(n, &mut changes, &mut out.scratch);
    if !room.expiry().is_empty() {
        for change in &changes {
            if let Change::AttributeDeleted { key } = change {
                ttl::clear(ttls, room, key);
            }
        }
    }
    if let Some(user) = lock_user {
        locks::release_user(lock_timers, room, &user, now, &mut changes);
    }
    *engine_bytes = *engine_bytes - before + room.value_bytes;
    commit(
        out,
        profile,
        room,
        now,
        operator,
        Cause::OwnerExited,
        changes,
        None,
    );
}
