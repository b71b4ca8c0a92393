//! Locks (Agora Signaling's, plus fencing tokens). Each command reads
//! top-down: room, name, existence, who asks, then the change and its one
//! event. The rules that other commands trigger live here too:
//!
//! - A holder whose last live connection drops (all of its connections
//!   inside their grace period) keeps the lock for the lock's TTL
//!   ([`arm`]); a re-join inside it keeps the lock ([`disarm`]); when the
//!   TTL runs out first the lock goes with a `LockExpired` change, cause
//!   `Expired` ([`Engine::expire_locks`]), to the next waiter.
//! - A holder that leaves or exits (a kick, a grace period that ran out)
//!   loses the lock at once, inside the exit's event; a waiter that exits
//!   leaves the line ([`release_user`]). So a holder keeps a lock through a
//!   disconnect for the shorter of the lock's TTL and the profile's grace.
//! - Every acquisition takes the lock's next fencing token; a write naming
//!   `lock: (name, token)` is refused unless its operator holds that lock
//!   with that token ([`check_fence`]).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::{commit, commit_one, Engine};
use crate::command::{Actor, Role};
use crate::error::Rejection;
use crate::event::{Cause, Change};
use crate::locks::Lock;
use crate::outcome::{Acquisition, LocksReport, Outcome, Success};
use crate::room::Room;
use crate::text::Str;
use crate::time::Millis;
use crate::view::LockRef;

/// Lock deadlines: `(deadline, room, lock name)`, in firing order.
pub(crate) type LockTimers = BTreeSet<(Millis, Str, Str)>;

impl Engine {
    pub(super) fn set_lock(&mut self, now: Millis, id: &str, name: Str, ttl_ms: u64) -> Outcome {
        let limits = self.profile.limits.locks;
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        if !limits.name_ok(&name) {
            return Err(Rejection::InvalidLockName);
        }
        if room.locks().get(&name).is_some() {
            return Err(Rejection::LockExists);
        }
        if room.locks().len() >= limits.max_per_room as usize {
            return Err(Rejection::LockCountLimit {
                max: limits.max_per_room,
            });
        }
        let ttl_ms = limits.clamp_ttl(ttl_ms);
        room.rare_mut().locks.push(Lock::new(name.clone(), ttl_ms));
        commit_one(
            &mut self.out,
            &self.profile,
            room,
            now,
            Actor::Admin,
            Cause::Written,
            Change::LockSet { name, ttl_ms },
        );
        Ok(Success::Done)
    }

    pub(super) fn remove_lock(&mut self, now: Millis, id: &str, name: &str) -> Outcome {
        let room = lock_room(&mut self.rooms, &self.profile, id, name)?;
        let lock = room
            .locks_mut()
            .and_then(|l| l.remove(name))
            .ok_or(Rejection::LockNotFound)?;
        room.tidy_rare();
        if let Some(at) = lock.deadline {
            self.lock_timers
                .remove(&(at, room.id.clone(), lock.name.clone()));
        }
        commit_one(
            &mut self.out,
            &self.profile,
            room,
            now,
            Actor::Admin,
            Cause::Written,
            Change::LockRemoved { name: lock.name },
        );
        Ok(Success::Done)
    }

    pub(super) fn acquire_lock(
        &mut self,
        now: Millis,
        id: &str,
        name: &str,
        user: Str,
        retry: bool,
    ) -> Outcome {
        let room = lock_room(&mut self.rooms, &self.profile, id, name)?;
        if room.locks().get(name).is_none() {
            return Err(Rejection::LockNotFound);
        }
        let live = match room.users.by_name(&room.hasher, &user) {
            Some(r) if r.is_present() => r.live,
            _ => return Err(Rejection::NotInRoom),
        };
        let room_id = &room.id;
        let lock = room
            .rare
            .as_deref_mut()
            .and_then(|r| r.locks.get_mut(name))
            .ok_or(Rejection::LockNotFound)?;
        match &lock.holder {
            Some(h) if *h == user => {
                return Ok(Success::Acquired(Acquisition::Granted {
                    token: lock.token,
                }))
            }
            Some(_) if !retry => return Err(Rejection::LockHeld),
            Some(_) => {
                let at = match lock.waiters.iter().position(|w| *w == user) {
                    Some(i) => i,
                    None => {
                        lock.waiters.push(user);
                        lock.waiters.len() - 1
                    }
                };
                let position = u32::try_from(at + 1).unwrap_or(u32::MAX);
                return Ok(Success::Acquired(Acquisition::Waiting { position }));
            }
            None => {}
        }
        let token = lock.grant(user.clone());
        if live == 0 {
            arm_one(&mut self.lock_timers, room_id, lock, now);
        }
        let granted = Change::LockAcquired {
            name: lock.name.clone(),
            holder: user.clone(),
            token,
        };
        commit_one(
            &mut self.out,
            &self.profile,
            room,
            now,
            Actor::User(user),
            Cause::Written,
            granted,
        );
        Ok(Success::Acquired(Acquisition::Granted { token }))
    }

    pub(super) fn release_lock(&mut self, now: Millis, id: &str, name: &str, user: Str) -> Outcome {
        self.take_lock(now, id, name, &user, Actor::User(user.clone()))
    }

    pub(super) fn revoke_lock(
        &mut self,
        now: Millis,
        id: &str,
        name: &str,
        owner: &Str,
        operator: Actor,
    ) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        if let Actor::User(u) = &operator {
            // Agora lets any client revoke; only the room's staff may here.
            if !matches!(room.role(u), Role::Admin | Role::Creator) {
                return Err(Rejection::NoPermission);
            }
        }
        self.take_lock(now, id, name, owner, operator)
    }

    /// Releases lock `name` from `holder` (refused unless it holds it) and
    /// passes it on: a release, or a revoke by `operator`.
    fn take_lock(
        &mut self,
        now: Millis,
        id: &str,
        name: &str,
        holder: &Str,
        operator: Actor,
    ) -> Outcome {
        let room = lock_room(&mut self.rooms, &self.profile, id, name)?;
        let lock = room.locks().get(name).ok_or(Rejection::LockNotFound)?;
        if lock.holder.as_ref() != Some(holder) {
            return Err(Rejection::LockNotAcquired);
        }
        let mut changes = self.out.changes();
        release(&mut self.lock_timers, room, name, now, false, &mut changes);
        commit(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator,
            Cause::Written,
            changes,
            None,
        );
        Ok(Success::Done)
    }

    pub(super) fn get_locks(&self, id: &str) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        Ok(Success::Locks(LocksReport {
            seq: room.seq,
            locks: room
                .locks()
                .list()
                .iter()
                .map(|l| LockRef::from(l).to_info())
                .collect(),
        }))
    }

    /// Expires every lock deadline at or before `now`, in deadline order
    /// (after the grace deadlines due at the same `now`).
    pub(crate) fn expire_locks(&mut self, now: Millis) {
        while self.lock_timers.first().is_some_and(|(at, ..)| *at <= now) {
            let Some((at, room_id, name)) = self.lock_timers.pop_first() else {
                break;
            };
            let Some(room) = self.rooms.get_mut(&room_id) else {
                continue;
            };
            if room.locks().get(&name).and_then(|l| l.deadline) != Some(at) {
                continue;
            }
            if let Some(l) = room.locks_mut().and_then(|l| l.get_mut(&name)) {
                // The timer is popped already.
                l.deadline = None;
            }
            let mut changes = self.out.changes();
            release(&mut self.lock_timers, room, &name, now, true, &mut changes);
            commit(
                &mut self.out,
                &self.profile,
                room,
                now,
                Actor::Admin,
                Cause::Expired,
                changes,
                None,
            );
        }
    }
}

/// The room, after the checks every command on an existing lock starts
/// with: the room exists, the name is valid.
fn lock_room<'r>(
    rooms: &'r mut crate::room::Rooms,
    profile: &crate::profile::Profile,
    id: &str,
    name: &str,
) -> Result<&'r mut Room, Rejection> {
    let room = rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
    if !profile.limits.locks.name_ok(name) {
        return Err(Rejection::InvalidLockName);
    }
    Ok(room)
}

/// Takes lock `name` from its holder (`LockReleased`, or `LockExpired`
/// when `expired`) and passes it to the next waiter (`LockAcquired`).
fn release(
    timers: &mut LockTimers,
    room: &mut Room,
    name: &str,
    now: Millis,
    expired: bool,
    changes: &mut Vec<Change>,
) {
    let room_id = &room.id;
    let Some(lock) = room.rare.as_deref_mut().and_then(|r| r.locks.get_mut(name)) else {
        return;
    };
    let Some(holder) = lock.holder.take() else {
        return;
    };
    if let Some(at) = lock.deadline.take() {
        timers.remove(&(at, room_id.clone(), lock.name.clone()));
    }
    let name = lock.name.clone();
    changes.push(if expired {
        Change::LockExpired { name, holder }
    } else {
        Change::LockReleased { name, holder }
    });
    if lock.waiters.is_empty() {
        return;
    }
    // Waiters are present (an exit takes them out of line).
    let next = lock.waiters.remove(0);
    let live = room
        .users
        .by_name(&room.hasher, &next)
        .map_or(0, |r| r.live);
    let token = lock.grant(next.clone());
    if live == 0 {
        arm_one(timers, room_id, lock, now);
    }
    changes.push(Change::LockAcquired {
        name: lock.name.clone(),
        holder: next,
        token,
    });
}

/// Starts the TTL of one held lock whose holder has no live connection.
fn arm_one(timers: &mut LockTimers, room_id: &Str, lock: &mut Lock, now: Millis) {
    if lock.deadline.is_some() {
        return;
    }
    // At least 1 ms, so a deadline always lies after the `now` that set it.
    let at = now.saturating_add(lock.ttl_ms.max(1));
    lock.deadline = Some(at);
    timers.insert((at, room_id.clone(), lock.name.clone()));
}

/// `user`'s last live connection dropped (it is still present): the
/// locks it holds start their TTL.
pub(super) fn arm(timers: &mut LockTimers, room: &mut Room, user: &str, now: Millis) {
    if !room.locks().holds_any(user) {
        return;
    }
    let room_id = &room.id;
    let Some(rare) = room.rare.as_deref_mut() else {
        return;
    };
    for lock in rare.locks.list_mut() {
        if lock.holder.as_deref() == Some(user) {
            arm_one(timers, room_id, lock, now);
        }
    }
}

/// `user` has a live connection again: the locks it holds stop their TTL.
pub(super) fn disarm(timers: &mut LockTimers, room: &mut Room, user: &str) {
    if !room.locks().holds_any(user) {
        return;
    }
    let room_id = &room.id;
    let Some(rare) = room.rare.as_deref_mut() else {
        return;
    };
    for lock in rare.locks.list_mut() {
        if lock.holder.as_deref() == Some(user) {
            if let Some(at) = lock.deadline.take() {
                timers.remove(&(at, room_id.clone(), lock.name.clone()));
            }
        }
    }
}

/// `user` exits: it leaves every wait list, and every lock it holds is
/// released (and passed on), with the changes pushed after `changes`'.
pub(super) fn release_user(
    timers: &mut LockTimers,
    room: &mut Room,
    user: &str,
    now: Millis,
    changes: &mut Vec<Change>,
) {
    if room.locks().is_empty() || !room.locks().involves(user) {
        return;
    }
    for lock in room.lock_list_mut() {
        lock.waiters.retain(|w| **w != *user);
    }
    for i in 0..room.locks().len() {
        let Some(lock) = room.locks().list().get(i) else {
            break;
        };
        if lock.holder.as_deref() == Some(user) {
            let name = lock.name.clone();
            release(timers, room, &name, now, false, changes);
        }
    }
}

/// Removes a destroyed room's lock deadlines.
pub(super) fn forget_room(timers: &mut LockTimers, room: &Room) {
    for lock in room.locks().list() {
        if let Some(at) = lock.deadline {
            timers.remove(&(at, room.id.clone(), lock.name.clone()));
        }
    }
}

/// A fenced write: `Ok` unless it names a lock that `operator` does not
/// hold with that token.
pub(super) fn check_fence(
    room: &Room,
    operator: &Actor,
    fence: Option<&(Str, u64)>,
) -> Result<(), Rejection> {
    let Some((name, token)) = fence else {
        return Ok(());
    };
    let holds = room.locks().get(name).is_some_and(|l| {
        l.token == *token && l.holder.is_some() && l.holder.as_ref() == operator.as_user()
    });
    if holds {
        Ok(())
    } else {
        Err(Rejection::WriteLockNotHeld)
    }
}
