//! Rooms and members: creation, destruction, joins, leaves, disconnects,
//! kicks, roles, and the exit that removes what a user owned.

use alloc::collections::VecDeque;

use super::Engine;
use crate::command::{Actor, Role};
use crate::error::Rejection;
use crate::event::{Cause, Change, Event, ExitKind};
use crate::outcome::{Outcome, Success};
use crate::profile::Profile;
use crate::room::Room;
use crate::text::Str;
use crate::time::Millis;

use super::commit;

impl Engine {
    pub(super) fn create_room(&mut self, now: Millis, id: Str, creator: Str) -> Outcome {
        if id.is_empty() || creator.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        if self.rooms.contains_key(&*id) {
            return Err(Rejection::RoomExists);
        }
        let mut room = Room::new(id.clone(), creator.clone());
        let change = Change::RoomCreated { creator };
        commit(
            &mut self.events,
            &self.profile,
            &mut room,
            now,
            Actor::Admin,
            Cause::RoomCreated,
            alloc::vec![change],
            None,
        );
        self.rooms.insert(id, room);
        Ok(Success::Done)
    }

    pub(super) fn destroy_room(&mut self, now: Millis, id: &str) -> Outcome {
        let mut room = self.rooms.remove(id).ok_or(Rejection::RoomNotFound)?;
        for (user, rec) in &room.users {
            if let Some(at) = rec.grace_until {
                self.timers.remove(&(at, room.id.clone(), user.clone()));
            }
        }
        self.value_bytes -= room.value_bytes;
        commit(
            &mut self.events,
            &self.profile,
            &mut room,
            now,
            Actor::Admin,
            Cause::RoomDestroyed,
            alloc::vec![Change::RoomDestroyed],
            None,
        );
        Ok(Success::Done)
    }

    pub(super) fn join(&mut self, now: Millis, id: &str, user: Str) -> Outcome {
        if user.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let rec = room.user_mut(&user);
        if rec.dropped > 0 {
            // A re-join inside the grace period reclaims a dropped connection.
            rec.dropped -= 1;
            rec.live += 1;
            if rec.dropped == 0 {
                if let Some(at) = rec.grace_until.take() {
                    self.timers.remove(&(at, room.id.clone(), user));
                }
            }
            return Ok(Success::Done);
        }
        rec.live = rec.live.saturating_add(1);
        if rec.live == 1 {
            let change = Change::MemberJoined { user: user.clone() };
            commit(
                &mut self.events,
                &self.profile,
                room,
                now,
                Actor::User(user),
                Cause::Membership,
                alloc::vec![change],
                None,
            );
        }
        Ok(Success::Done)
    }

    pub(super) fn leave(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let rec = room
            .users
            .get_mut(&**user)
            .filter(|r| r.is_present())
            .ok_or(Rejection::NotInRoom)?;
        if rec.live > 0 {
            rec.live -= 1;
        } else {
            rec.dropped -= 1;
            if rec.dropped == 0 {
                if let Some(at) = rec.grace_until.take() {
                    self.timers.remove(&(at, room.id.clone(), user.clone()));
                }
            }
        }
        if !rec.is_present() {
            exit_user(
                &mut self.events,
                &self.profile,
                &mut self.value_bytes,
                room,
                now,
                user,
                ExitKind::Left,
                Actor::User(user.clone()),
            );
        }
        Ok(Success::Done)
    }

    pub(super) fn disconnect(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
        let grace = self.profile.limits.disconnect_grace_ms;
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let rec = room
            .users
            .get_mut(&**user)
            .filter(|r| r.is_present())
            .ok_or(Rejection::NotInRoom)?;
        if rec.live == 0 {
            // Every connection has dropped already: a repeated drop report
            // changes nothing (and does not restart the grace period).
            return Ok(Success::Done);
        }
        let until = now.saturating_add(grace);
        if until <= now {
            // Grace 0, or a deadline that cannot lie after `now` (at the
            // end of time): the connection is gone at once, like a leave.
            rec.live -= 1;
            if !rec.is_present() {
                exit_user(
                    &mut self.events,
                    &self.profile,
                    &mut self.value_bytes,
                    room,
                    now,
                    user,
                    ExitKind::Disconnected,
                    Actor::Admin,
                );
            }
            return Ok(Success::Done);
        }
        rec.live -= 1;
        rec.dropped += 1;
        if let Some(old) = rec.grace_until.replace(until) {
            self.timers.remove(&(old, room.id.clone(), user.clone()));
        }
        self.timers.insert((until, room.id.clone(), user.clone()));
        Ok(Success::Done)
    }

    pub(super) fn kick(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        let rec = room
            .users
            .get(&**user)
            .filter(|r| r.is_present())
            .ok_or(Rejection::NotInRoom)?;
        if let Some(at) = rec.grace_until {
            self.timers.remove(&(at, room.id.clone(), user.clone()));
        }
        exit_user(
            &mut self.events,
            &self.profile,
            &mut self.value_bytes,
            room,
            now,
            user,
            ExitKind::Kicked,
            Actor::Admin,
        );
        Ok(Success::Done)
    }

    pub(super) fn set_role(&mut self, now: Millis, id: &str, user: Str, role: Role) -> Outcome {
        if user.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        if role == Role::Creator || user == room.creator {
            return Err(Rejection::InvalidParameter);
        }
        if room.role(&user) == role {
            return Ok(Success::Done);
        }
        room.user_mut(&user).role = role;
        room.gc_user(&user);
        let change = Change::RoleSet {
            user: user.clone(),
            role,
        };
        commit(
            &mut self.events,
            &self.profile,
            room,
            now,
            Actor::Admin,
            Cause::Membership,
            alloc::vec![change],
            None,
        );
        Ok(Success::Done)
    }
}

/// The user has no connection left: one `OwnerExited` event with the exit
/// and everything the owner index says goes with it. Takes the room the
/// caller already holds, so an exit looks it up once.
#[allow(clippy::too_many_arguments)] // the engine's fields it touches, then the exit
pub(super) fn exit_user(
    events: &mut VecDeque<Event>,
    profile: &Profile,
    engine_bytes: &mut u64,
    room: &mut Room,
    now: Millis,
    user: &Str,
    how: ExitKind,
    operator: Actor,
) {
    let before = room.value_bytes;
    let first = Change::MemberExited {
        user: user.clone(),
        how,
    };
    let changes = room.exit(user, first);
    *engine_bytes = *engine_bytes - before + room.value_bytes;
    commit(
        events,
        profile,
        room,
        now,
        operator,
        Cause::OwnerExited,
        changes,
        None,
    );
}
