//! Queue commands (NetEase chatroom queue, SPEC §5).

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::Engine;
use crate::command::{Actor, HighPolicy, NewElement, Notify, Role};
use crate::error::{OpError, Rejection};
use crate::event::{Cause, Change};
use crate::outcome::{ElementsReport, OpFailure, Outcome, Success};
use crate::profile::{Limits, QueueLimits, Unit};
use crate::queue::Queue;
use crate::room::{Room, Rooms};
use crate::text::Str;
use crate::time::Millis;

use super::attributes::check_key;
use super::{batch_done, commit, commit_one};

impl Engine {
    pub(super) fn queue_init(
        &mut self,
        now: Millis,
        id: &str,
        operator: Actor,
        capacity: u32,
    ) -> Outcome {
        let ql = self.profile.limits.queue;
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        if capacity == 0 || capacity > ql.max_capacity {
            return Err(Rejection::InvalidParameter);
        }
        match room.queue.as_mut() {
            Some(q) if q.capacity == capacity => return Ok(Success::Done),
            Some(q) if q.elems.len() > capacity as usize => {
                return Err(Rejection::InvalidParameter)
            }
            Some(q) => q.capacity = capacity,
            None => room.queue = Some(Box::new(Queue::new(capacity))),
        }
        commit_one(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator,
            Cause::Written,
            Change::QueueInit { capacity },
        );
        Ok(Success::Done)
    }

    pub(super) fn queue_drop(&mut self, now: Millis, id: &str, operator: Actor) -> Outcome {
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        if room.drop_queue() {
            commit_one(
                &mut self.out,
                &self.profile,
                room,
                now,
                operator,
                Cause::Written,
                Change::QueueDropped,
            );
        }
        Ok(Success::Done)
    }

    #[allow(clippy::too_many_arguments)] // mirrors the command's fields
    pub(super) fn queue_offer(
        &mut self,
        now: Millis,
        id: &str,
        operator: Actor,
        key: Str,
        value: Str,
        transient: bool,
        notify: Notify,
    ) -> Outcome {
        let limits = self.profile.limits;
        let room = queue_room(&mut self.rooms, &limits, id, &notify)?;
        if let Actor::User(u) = &operator {
            if transient && !room.is_present(u) {
                return Err(Rejection::NotInRoom);
            }
        }
        check_element(&key, &value, &limits.queue)
            .map_err(|error| Rejection::Op { index: 0, error })?;
        let exists = room
            .queue
            .as_ref()
            .is_some_and(|q| q.elems.find(room.hash(&key), &key).is_some());
        // A missing queue would be created with `default_capacity`, which
        // may be 0 in a custom profile: full from the start.
        let full = match &room.queue {
            Some(q) => !q.has_room(),
            None => limits.queue.default_capacity == 0,
        };
        if !exists && full {
            return Err(Rejection::Op {
                index: 0,
                error: OpError::QueueFull,
            });
        }
        check_budget(room, now, &limits, &notify)?;
        let owner = room
            .owner_of(&operator)
            .ok_or(Rejection::InvalidParameter)?;
        let mut changes = self.out.changes();
        if room.queue.is_none() {
            room.queue = Some(Box::new(Queue::new(limits.queue.default_capacity)));
            changes.push(Change::QueueInit {
                capacity: limits.queue.default_capacity,
            });
        }
        changes.push(room.put_elem(key, value, owner, transient));
        commit(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator,
            Cause::Written,
            changes,
            Some(notify),
        );
        Ok(Success::Done)
    }

    pub(super) fn queue_batch_offer(
        &mut self,
        now: Millis,
        id: &str,
        operator: Actor,
        elements: Vec<NewElement>,
        transient: bool,
        notify: Notify,
    ) -> Outcome {
        let limits = self.profile.limits;
        let ql = limits.queue;
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        check_batch_size(elements.len(), ql.max_batch_offer)?;
        check_ext(&limits, &notify)?;

        // Decide every element first (its shape: best effort, SPEC §4, a bad
        // key or value fails alone, reported in `failedKeys`) (owner present, room in the queue), so
        // the notification budget is only judged for a batch that changes
        // something, and is judged before anything changes.
        let (len, capacity) = room
            .queue
            .as_ref()
            .map_or((0, ql.default_capacity as usize), |q| {
                (q.elems.len(), q.capacity as usize)
            });
        let mut added: Vec<&str> = Vec::new();
        let mut verdicts = Vec::with_capacity(elements.len());
        for e in &elements {
            let owner_ok = match &e.owner {
                Some(u) => room.is_present(u) || *u == *room.creator_name(),
                None => match &operator {
                    Actor::User(u) => room.is_present(u) || *u == *room.creator_name(),
                    Actor::Admin => true,
                },
            };
            let exists = room
                .queue
                .as_ref()
                .is_some_and(|q| q.elems.find(room.hash(&e.key), &e.key).is_some())
                || added.contains(&&*e.key);
            let verdict = if let Err(error) = check_element(&e.key, &e.value, &ql) {
                Err(error)
            } else if !owner_ok {
                Err(OpError::OwnerNotInRoom)
            } else if !exists && len + added.len() >= capacity {
                Err(OpError::QueueFull)
            } else {
                if !exists {
                    added.push(&e.key);
                }
                Ok(())
            };
            verdicts.push(verdict);
        }
        drop(added);
        let n = elements.len();
        if verdicts.iter().any(Result::is_ok) {
            check_budget(room, now, &limits, &notify)?;
        }

        let mut changes = self.out.changes();
        let mut failed = Vec::new();
        for (i, (e, verdict)) in elements.into_iter().zip(verdicts).enumerate() {
            if let Err(error) = verdict {
                failed.push(OpFailure {
                    index: i,
                    key: e.key,
                    error,
                });
                continue;
            }
            let owner = match &e.owner {
                Some(u) => room.intern(u),
                None => room.owner_of(&operator),
            };
            // Owners were checked present (or the creator, or Admin), so
            // they have records; numbers cannot run out here.
            let Some(owner) = owner else {
                continue;
            };
            if room.queue.is_none() {
                room.queue = Some(Box::new(Queue::new(ql.default_capacity)));
                changes.push(Change::QueueInit {
                    capacity: ql.default_capacity,
                });
            }
            changes.push(room.put_elem(e.key, e.value, owner, e.transient.unwrap_or(transient)));
        }
        Ok(batch_done(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator,
            changes,
            n,
            failed,
            notify,
        ))
    }

    pub(super) fn queue_batch_update(
        &mut self,
        now: Millis,
        id: &str,
        operator: Actor,
        elements: Vec<(Str, Str)>,
        notify: Notify,
    ) -> Outcome {
        let limits = self.profile.limits;
        let ql = limits.queue;
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        check_batch_size(elements.len(), ql.max_batch_update)?;
        check_ext(&limits, &notify)?;
        if let Actor::User(u) = &operator {
            if room.role(u) == Role::Member {
                return Err(Rejection::NoPermission);
            }
        }
        check_elements(elements.iter().map(|(k, v)| (k, v)), &ql)?;
        let existing = |room: &Room, key: &str| {
            let q = room.queue.as_ref()?;
            let pos = q.elems.find(room.hash(key), key)?;
            q.elems.meta(pos).map(|m| m.flagged())
        };
        if elements.iter().any(|(k, _)| existing(room, k).is_some()) {
            check_budget(room, now, &limits, &notify)?;
        }
        let n = elements.len();
        let mut failed = Vec::new();
        let mut changes = self.out.changes();
        let owner = room
            .owner_of(&operator)
            .ok_or(Rejection::InvalidParameter)?;
        room.add_ref(owner, true);
        for (i, (key, value)) in elements.into_iter().enumerate() {
            match existing(room, &key) {
                Some(transient) => changes.push(room.put_elem(key, value, owner, transient)),
                None => failed.push(OpFailure {
                    index: i,
                    key,
                    error: OpError::NotFound,
                }),
            }
        }
        room.add_ref(owner, false);
        Ok(batch_done(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator,
            changes,
            n,
            failed,
            notify,
        ))
    }

    pub(super) fn queue_list(&self, id: &str) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        let elements = room
            .queue
            .iter()
            .flat_map(|q| q.elems.positions())
            .filter_map(|p| room.element(p))
            .collect();
        Ok(Success::Elements(ElementsReport {
            seq: room.seq,
            elements,
        }))
    }

    pub(super) fn queue_poll(
        &mut self,
        now: Millis,
        id: &str,
        operator: Actor,
        key: Option<Str>,
        notify: Notify,
    ) -> Outcome {
        let limits = self.profile.limits;
        let room = queue_room(&mut self.rooms, &limits, id, &notify)?;
        let key = match key {
            // A named key is a plain lookup: any key that is not there,
            // well-formed or not, is not found.
            Some(k)
                if room
                    .queue
                    .as_ref()
                    .is_some_and(|q| q.elems.find(room.hash(&k), &k).is_some()) =>
            {
                k
            }
            Some(_) => {
                return Err(Rejection::Op {
                    index: 0,
                    error: OpError::NotFound,
                })
            }
            None => room
                .queue
                .as_mut()
                .and_then(|q| q.elems.first().map(|p| Str::from(q.elems.key(p))))
                .ok_or(Rejection::QueueEmpty)?,
        };
        check_budget(room, now, &limits, &notify)?;
        let elem = room.remove_elem(&key).ok_or(Rejection::QueueEmpty)?;
        room.settle(&mut self.out.scratch);
        let changes = self.out.one(Change::QueueRemoved { key });
        commit(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator,
            Cause::Written,
            changes,
            Some(notify),
        );
        Ok(Success::Polled(elem))
    }

    pub(super) fn queue_multi_get(&self, id: &str, keys: &[Str]) -> Outcome {
        let ql = self.profile.limits.queue;
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        if keys.is_empty() {
            return Err(Rejection::Empty);
        }
        if keys.len() > ql.max_multi_get as usize {
            return Err(Rejection::TooManyOps {
                max: ql.max_multi_get,
            });
        }
        let elements = match &room.queue {
            Some(q) => keys
                .iter()
                .filter_map(|k| q.elems.find(room.hash(k), k))
                .filter_map(|p| room.element(p))
                .collect(),
            None => Vec::new(),
        };
        Ok(Success::Elements(ElementsReport {
            seq: room.seq,
            elements,
        }))
    }
}

/// The room of a single-element queue change, after its `ext` check.
fn queue_room<'a>(
    rooms: &'a mut Rooms,
    limits: &Limits,
    id: &str,
    notify: &Notify,
) -> Result<&'a mut Room, Rejection> {
    let room = rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
    check_ext(limits, notify)?;
    Ok(room)
}

/// The notification extension fits `max_ext_chars`.
fn check_ext(limits: &Limits, notify: &Notify) -> Result<(), Rejection> {
    let too_long = notify
        .ext
        .as_ref()
        .is_some_and(|e| Unit::Chars.exceeds(e, limits.queue.max_ext_chars as usize));
    if too_long {
        Err(Rejection::InvalidParameter)
    } else {
        Ok(())
    }
}

/// A command about to emit a high-priority notification with the `Reject`
/// policy is refused when the room's high budget is spent. Called last,
/// and only when the command will change something; a `notify: false`
/// command emits nothing and is never refused.
fn check_budget(
    room: &Room,
    now: Millis,
    limits: &Limits,
    notify: &Notify,
) -> Result<(), Rejection> {
    let reject = notify.notify && notify.high == Some(HighPolicy::Reject);
    if reject && room.flow.high_exhausted(now, limits.notification_flow) {
        Err(Rejection::NotificationBudget)
    } else {
        Ok(())
    }
}

pub(crate) fn check_element(key: &str, value: &str, ql: &QueueLimits) -> Result<(), OpError> {
    check_key(key, ql.max_key_len, ql.key_unit)?;
    if ql.value_unit.exceeds(value, ql.max_value_len as usize) {
        return Err(OpError::ValueTooLong);
    }
    Ok(())
}

/// A queue batch has at least one and at most `max` elements.
fn check_batch_size(n: usize, max: u32) -> Result<(), Rejection> {
    if n == 0 {
        Err(Rejection::Empty)
    } else if n > max as usize {
        Err(Rejection::TooManyOps { max })
    } else {
        Ok(())
    }
}

/// Every element of a queue batch is well-formed; the first that is not
/// rejects the request.
fn check_elements<'a>(
    elements: impl Iterator<Item = (&'a Str, &'a Str)>,
    ql: &QueueLimits,
) -> Result<(), Rejection> {
    for (i, (k, v)) in elements.enumerate() {
        check_element(k, v, ql).map_err(|error| Rejection::Op { index: i, error })?;
    }
    Ok(())
}
