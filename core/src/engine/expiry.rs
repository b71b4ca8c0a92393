//! Time and expiry: grace deadlines fire in deadline order, before every
//! command; then lock deadlines, in theirs (`locks.rs`).

use super::membership::exit_user;
use super::Engine;
use crate::command::Actor;
use crate::event::ExitKind;
use crate::time::Millis;

impl Engine {
    /// Expires every grace deadline at or before `now`, in deadline order,
    /// then every lock deadline.
    /// Runs before every command: a check of the three earliest
    /// deadlines, inlined; the work, when one is due, out of line.
    #[inline]
    pub(crate) fn expire(&mut self, now: Millis) {
        let due = |first: Option<&(Millis, _, _)>| first.is_some_and(|(at, ..)| *at <= now);
        if due(self.ttls.first()) || due(self.timers.first()) || due(self.lock_timers.first()) {
            self.expire_due(now);
        }
    }

    /// [`Engine::expire`]'s work.
    #[cold]
    #[inline(never)]
    fn expire_due(&mut self, now: Millis) {
        self.expire_ttls(now);
        // Peek without cloning (this runs before every command); take the
        // entry only when it is due.
        while self.timers.first().is_some_and(|(at, ..)| *at <= now) {
            let Some((_, room_id, user)) = self.timers.pop_first() else {
                break;
            };
            let Some(room) = self.rooms.get_mut(&room_id) else {
                continue;
            };
            let Some(n) = room.user(&user) else {
                continue;
            };
            let Some(rec) = room.users.get_mut(n) else {
                continue;
            };
            rec.dropped = 0;
            let present = rec.is_present();
            room.clear_grace(n);
            if !present {
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
            }
        }
        self.expire_locks(now);
    }
}
