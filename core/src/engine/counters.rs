//! Counter commands (Tencent group counters, beyond Tencent with bounds).
//! [`Engine::counter`] reads top-down: room, key shape, bounds, who may,
//! the key count, the arithmetic (overflow, then bounds), apply, event.

use alloc::vec::Vec;

use super::{commit, commit_one, Engine};
use crate::command::{Actor, CounterOp};
use crate::error::{OpError, Rejection};
use crate::event::{Cause, Change};
use crate::outcome::{CountersReport, Outcome, Success};
use crate::profile::{Limits, Unit};
use crate::room::Room;
use crate::text::Str;
use crate::time::Millis;

use super::attributes::check_key;

impl Engine {
    #[allow(clippy::too_many_arguments)] // mirrors the command's fields
    pub(super) fn counter(
        &mut self,
        now: Millis,
        id: &str,
        operator: Actor,
        key: Str,
        op: CounterOp,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Outcome {
        let limits = self.profile.limits;
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        check_key(&key, limits.max_counter_key_len, Unit::Bytes)
            .map_err(|error| Rejection::Op { index: 0, error })?;
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                return Err(Rejection::InvalidParameter);
            }
        }
        may_write(room, &operator, self.profile.rules.writer_must_be_member)?;
        let current = room.counters().get(&key);
        if current.is_none()
            && limits
                .max_counters_per_room
                .is_some_and(|m| room.counters().len() >= m as usize)
        {
            return Err(Rejection::Op {
                index: 0,
                error: OpError::KeyCountLimit,
            });
        }
        let value = next_value(current.unwrap_or(0), op, min, max)?;
        room.rare_mut().counters.set(key.clone(), value);
        commit_one(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator,
            Cause::Written,
            Change::CounterChanged { key, value },
        );
        Ok(Success::Counter {
            seq: room.seq,
            value,
        })
    }

    pub(super) fn counter_delete(
        &mut self,
        now: Millis,
        id: &str,
        operator: Actor,
        keys: Option<Vec<Str>>,
    ) -> Outcome {
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        if keys.as_ref().is_some_and(Vec::is_empty) {
            return Err(Rejection::Empty);
        }
        may_write(room, &operator, self.profile.rules.writer_must_be_member)?;
        let mut changes = self.out.changes();
        match keys {
            None => {
                let all = room.counters_mut().map(|c| c.take_all());
                room.tidy_rare();
                for (key, _) in all.unwrap_or_default() {
                    changes.push(Change::CounterDeleted { key });
                }
            }
            Some(mut keys) => {
                // Key order, each once: the order every listing uses.
                keys.sort_unstable();
                keys.dedup();
                for key in keys {
                    if room.counters_mut().is_some_and(|c| c.remove(&key)) {
                        changes.push(Change::CounterDeleted { key });
                    }
                }
                room.tidy_rare();
            }
        }
        if !changes.is_empty() {
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
        }
        Ok(Success::Done)
    }

    pub(super) fn counter_read(&self, id: &str, keys: Option<&[Str]>) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        let counters = match keys {
            Some([]) => return Err(Rejection::Empty),
            None => room
                .counters()
                .iter()
                .map(|(k, v)| (k.clone(), v))
                .collect(),
            Some(keys) => room
                .counters()
                .iter()
                .filter(|(k, _)| keys.iter().any(|x| x == *k))
                .map(|(k, v)| (k.clone(), v))
                .collect(),
        };
        Ok(Success::Counters(CountersReport {
            seq: room.seq,
            counters,
        }))
    }
}

/// A user operator must be present where the profile says writers must.
fn may_write(room: &Room, operator: &Actor, must_be_member: bool) -> Result<(), Rejection> {
    match operator {
        Actor::User(u) if must_be_member && !room.is_present(u) => Err(Rejection::NotInRoom),
        _ => Ok(()),
    }
}

/// The counter's value after `op`: overflow of `i64` first, then the
/// request's bounds (refused, not clamped).
fn next_value(
    current: i64,
    op: CounterOp,
    min: Option<i64>,
    max: Option<i64>,
) -> Result<i64, Rejection> {
    let value = match op {
        CounterOp::Set(v) => Some(v),
        CounterOp::Increase(d) => current.checked_add_unsigned(d),
        CounterOp::Decrease(d) => current.checked_sub_unsigned(d),
    }
    .ok_or(Rejection::CounterOverflow)?;
    if min.is_some_and(|lo| value < lo) || max.is_some_and(|hi| value > hi) {
        return Err(Rejection::CounterOutOfBounds);
    }
    Ok(value)
}

/// The counters' invariants: sorted by key, keys valid, within the
/// profile's count.
pub(super) fn consistent(room: &Room, limits: &Limits) -> Result<(), &'static str> {
    if !room.counters().sorted() {
        return Err("counters not sorted by key");
    }
    if room
        .counters()
        .iter()
        .any(|(k, _)| check_key(k, limits.max_counter_key_len, Unit::Bytes).is_err())
    {
        return Err("counter key empty or over the profile's length");
    }
    if limits
        .max_counters_per_room
        .is_some_and(|m| room.counters().len() > m as usize)
    {
        return Err("more counters than the profile allows");
    }
    Ok(())
}
