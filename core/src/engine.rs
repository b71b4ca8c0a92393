//! The engine: many rooms, one entry point.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::command::{Actor, Command, Expect, HighPolicy, NewElement, Notify, Op, Role, Write};
use crate::error::{OpError, Rejection};
use crate::event::{Cause, Change, Event, ExitKind};
use crate::flow::TokenBucket;
use crate::outcome::{
    Attribute, BatchReport, ElementsReport, OpFailure, Outcome, QueueElement, ReadReport, Success,
};
use crate::profile::{BatchPolicy, Limits, OwnerRule, PolicyRule, Profile, QueueLimits, Unit};
use crate::queue::Queue;
use crate::room::{indexed_owner, Room};
use crate::text::Str;
use crate::time::Millis;

/// The room-state engine. See the [crate docs](crate) for the drive loop
/// and the rules it applies.
pub struct Engine {
    pub(crate) profile: Profile,
    pub(crate) rooms: HashMap<Str, Room>,
    pub(crate) now: Millis,
    pub(crate) events: VecDeque<Event>,
    pub(crate) bucket: TokenBucket,
    /// Sum of all rooms' attribute value bytes.
    pub(crate) value_bytes: u64,
    /// Grace deadlines: `(deadline, room, user)`, in firing order.
    pub(crate) timers: BTreeSet<(Millis, Str, Str)>,
}

/// A broken internal invariant, found by [`Engine::check_invariants`]. Its
/// presence is a bug in the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The room, if the violation is in one.
    pub room: Option<Str>,
    /// What does not hold.
    pub what: &'static str,
}

/// How one op of a write fared in the dry run.
struct Shadow<'a> {
    owner: &'a Actor,
    bytes: u64,
    revision: u64,
}

impl Engine {
    /// An engine with no rooms, applying `profile`.
    #[must_use]
    pub fn new(profile: Profile) -> Engine {
        Engine {
            profile,
            rooms: HashMap::new(),
            now: Millis::ZERO,
            events: VecDeque::new(),
            bucket: TokenBucket::full(profile.limits.request_rate),
            value_bytes: 0,
            timers: BTreeSet::new(),
        }
    }

    // ----- getters -----

    /// The profile in force.
    #[must_use]
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The latest `now` seen.
    #[must_use]
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Number of rooms.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Sum of all rooms' attribute value bytes.
    #[must_use]
    pub fn value_bytes(&self) -> u64 {
        self.value_bytes
    }

    /// A borrowed view of a room, for reads that must not copy.
    #[must_use]
    pub fn room(&self, id: &str) -> Option<RoomView<'_>> {
        self.rooms.get(id).map(|room| RoomView { room })
    }

    // ----- input -----

    /// Applies `command` at `now` (an earlier `now` than one already seen
    /// counts as that one). Due grace periods expire first. Returns the
    /// outcome; a rejection changed nothing.
    pub fn handle(&mut self, now: Millis, command: Command) -> Outcome {
        self.now = self.now.max(now);
        let now = self.now;
        self.expire(now);
        if command.is_rate_limited() {
            if let Some(rate) = self.profile.limits.request_rate {
                if !self.bucket.take(now, rate) {
                    return Err(Rejection::RateLimited);
                }
            }
        }
        if command
            .operator()
            .and_then(Actor::as_user)
            .is_some_and(|u| u.is_empty())
        {
            // An empty user id would become an owner no snapshot accepts.
            return Err(Rejection::InvalidParameter);
        }
        match command {
            Command::CreateRoom { room, creator } => self.create_room(now, room, creator),
            Command::DestroyRoom { room } => self.destroy_room(now, &room),
            Command::Join { room, user } => self.join(now, &room, user),
            Command::Leave { room, user } => self.leave(now, &room, &user),
            Command::Disconnect { room, user } => self.disconnect(now, &room, &user),
            Command::Exit { room, user } => self.kick(now, &room, &user),
            Command::SetRole { room, user, role } => self.set_role(now, &room, user, role),
            Command::Write(w) => self.write(now, w),
            Command::Read { room, keys } => self.read(&room, keys.as_deref()),
            Command::QueueInit {
                room,
                operator,
                capacity,
            } => self.queue_init(now, &room, operator, capacity),
            Command::QueueDrop { room, operator } => self.queue_drop(now, &room, operator),
            Command::QueueOffer {
                room,
                operator,
                key,
                value,
                transient,
                notify,
            } => self.queue_offer(now, &room, operator, key, value, transient, notify),
            Command::QueueBatchOffer {
                room,
                operator,
                elements,
                transient,
                notify,
            } => self.queue_batch_offer(now, &room, operator, elements, transient, notify),
            Command::QueueBatchUpdate {
                room,
                operator,
                elements,
                notify,
            } => self.queue_batch_update(now, &room, operator, elements, notify),
            Command::QueueList { room } => self.queue_list(&room),
            Command::QueuePoll {
                room,
                operator,
                key,
                notify,
            } => self.queue_poll(now, &room, operator, key, notify),
            Command::QueueMultiGet { room, keys } => self.queue_multi_get(&room, &keys),
            Command::Tick => Ok(Success::Done),
        }
    }

    // ----- output -----

    /// The oldest undelivered event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends every undelivered event to `out`, oldest first.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) {
        out.extend(self.events.drain(..));
    }

    /// When the engine next needs a [`Command::Tick`] (the earliest grace
    /// deadline), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.first().map(|(at, ..)| *at)
    }

    // ----- rooms and members -----

    fn create_room(&mut self, now: Millis, id: Str, creator: Str) -> Outcome {
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

    fn destroy_room(&mut self, now: Millis, id: &str) -> Outcome {
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

    fn join(&mut self, now: Millis, id: &str, user: Str) -> Outcome {
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

    fn leave(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
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

    fn disconnect(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
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

    fn kick(&mut self, now: Millis, id: &str, user: &Str) -> Outcome {
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

    /// Expires every grace deadline at or before `now`, in deadline order.
    pub(crate) fn expire(&mut self, now: Millis) {
        // Peek without cloning (this runs before every command); take the
        // entry only when it is due.
        while self.timers.first().is_some_and(|(at, ..)| *at <= now) {
            let Some((_, room_id, user)) = self.timers.pop_first() else {
                break;
            };
            let Some(room) = self.rooms.get_mut(&*room_id) else {
                continue;
            };
            let Some(rec) = room.users.get_mut(&*user) else {
                continue;
            };
            rec.dropped = 0;
            rec.grace_until = None;
            if !rec.is_present() {
                exit_user(
                    &mut self.events,
                    &self.profile,
                    &mut self.value_bytes,
                    room,
                    now,
                    &user,
                    ExitKind::Disconnected,
                    Actor::Admin,
                );
            }
        }
    }

    fn set_role(&mut self, now: Millis, id: &str, user: Str, role: Role) -> Outcome {
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

    // ----- attributes -----

    fn write(&mut self, now: Millis, w: Write) -> Outcome {
        let Profile { limits, rules, .. } = self.profile;
        let room = self
            .rooms
            .get_mut(&*w.room)
            .ok_or(Rejection::RoomNotFound)?;
        if w.ops.is_empty() {
            return Err(Rejection::Empty);
        }
        if w.ops.len() > limits.max_ops_per_write as usize {
            return Err(Rejection::TooManyOps {
                max: limits.max_ops_per_write,
            });
        }
        let has_set = w.ops.iter().any(|op| matches!(op, Op::Set { .. }));
        let rule = if has_set {
            rules.set_policy
        } else {
            rules.delete_policy
        };
        let policy = match (rule, w.policy) {
            (PolicyRule::Fixed(p), None) => p,
            (PolicyRule::Fixed(p), Some(q)) if p == q => p,
            (PolicyRule::Fixed(_), Some(_)) => return Err(Rejection::PolicyNotAllowed),
            (PolicyRule::PerRequest(d), q) => q.unwrap_or(d),
        };
        if let Actor::User(u) = &w.operator {
            if rules.writer_must_be_member && !room.is_present(u) {
                return Err(Rejection::NotInRoom);
            }
        }
        let take_owner = w.update_owner
            || match rules.owner_on_overwrite {
                OwnerRule::Keep => false,
                OwnerRule::OperatorWhenForced => w.force,
                OwnerRule::Operator => true,
            };

        // Dry run: decide every op against the state the ops before it leave.
        let new_seq = room.seq.saturating_add(1);
        let mut overlay: Vec<(&str, Option<Shadow<'_>>)> = Vec::new();
        // Slot positions seen by the dry run, for the first ops of a batch.
        let mut hints: heapless::Vec<(usize, Option<usize>), 8> = heapless::Vec::new();
        let attrs = &room.attrs;
        let mut failed: Vec<OpFailure> = Vec::new();
        let mut keys = room.attrs.len();
        let mut room_bytes = room.value_bytes;
        let mut engine_bytes = self.value_bytes;
        let last = w.ops.len() - 1;
        for (i, op) in w.ops.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            if policy == BatchPolicy::StopOnError && !failed.is_empty() {
                failed.push(OpFailure {
                    index,
                    key: op.key().clone(),
                    error: OpError::NotAttempted,
                });
                continue;
            }
            let current = match overlay.iter().rev().find(|(k, _)| *k == &**op.key()) {
                Some((_, s)) => s.as_ref().map(|s| (s.owner, s.bytes, s.revision)),
                None => {
                    let pos = attrs.position(op.key());
                    // Remember where the key was, so applying the op need
                    // not hash it again (a hint: checked before use).
                    let _ = hints.push((i, pos));
                    pos.and_then(|p| attrs.at(p))
                        .map(|s| (&s.attr.owner, s.attr.value.len() as u64, s.attr.revision))
                }
            };
            let verdict =
                check_op(op, &w.operator, w.force, current.as_ref(), &limits).and_then(|()| {
                    let Op::Set { value, .. } = op else {
                        return Ok(());
                    };
                    let old_bytes = current.as_ref().map_or(0, |c| c.1);
                    if current.is_none()
                        && limits.max_keys_per_room.is_some_and(|m| keys >= m as usize)
                    {
                        return Err(OpError::KeyCountLimit);
                    }
                    let new_room = room_bytes - old_bytes + value.len() as u64;
                    if limits.max_room_value_bytes.is_some_and(|m| new_room > m) {
                        return Err(OpError::RoomSizeLimit);
                    }
                    let new_engine = engine_bytes - old_bytes + value.len() as u64;
                    if limits
                        .max_engine_value_bytes
                        .is_some_and(|m| new_engine > m)
                    {
                        return Err(OpError::EngineSizeLimit);
                    }
                    Ok(())
                });
            match verdict {
                Err(error) if policy == BatchPolicy::Atomic => {
                    return Err(Rejection::Op { index, error });
                }
                Err(error) => failed.push(OpFailure {
                    index,
                    key: op.key().clone(),
                    error,
                }),
                Ok(()) => {
                    let old_bytes = current.as_ref().map_or(0, |c| c.1);
                    let shadow = match op {
                        Op::Set { value, .. } => {
                            if current.is_none() {
                                keys += 1;
                            }
                            let bytes = value.len() as u64;
                            room_bytes = room_bytes - old_bytes + bytes;
                            engine_bytes = engine_bytes - old_bytes + bytes;
                            let owner = match current {
                                Some((owner, ..)) if !take_owner => owner,
                                _ => &w.operator,
                            };
                            Some(Shadow {
                                owner,
                                bytes,
                                revision: new_seq,
                            })
                        }
                        Op::Delete { .. } => {
                            keys -= 1;
                            room_bytes -= old_bytes;
                            engine_bytes -= old_bytes;
                            None
                        }
                    };
                    if i < last {
                        overlay.push((op.key(), shadow));
                    }
                }
            }
        }
        drop(overlay);

        let applied = w.ops.len() - failed.len();
        if applied == 0 {
            if !has_set && rules.reject_if_nothing_deleted {
                return Err(Rejection::NothingDeleted);
            }
            return Ok(Success::Written(BatchReport {
                seq: room.seq,
                applied: 0,
                failed,
            }));
        }

        // Apply what the dry run accepted; nothing here can fail.
        let before = room.value_bytes;
        let mut changes = Vec::with_capacity(applied);
        let mut fails = failed.iter().map(|f| f.index as usize).peekable();
        for (i, op) in w.ops.into_iter().enumerate() {
            if fails.peek() == Some(&i) {
                fails.next();
                continue;
            }
            match op {
                Op::Set {
                    key,
                    value,
                    auto_delete,
                    ..
                } => {
                    let auto = auto_delete.unwrap_or(rules.default_auto_delete);
                    let hint = hints.iter().find(|(j, _)| *j == i).and_then(|(_, p)| *p);
                    changes.push(room.put_attr(
                        key,
                        value,
                        &w.operator,
                        take_owner,
                        auto,
                        new_seq,
                        now,
                        hint,
                    ));
                }
                Op::Delete { key, .. } => {
                    if room.delete_attr(&key).is_some() {
                        changes.push(Change::AttributeDeleted { key });
                    }
                }
            }
        }
        self.value_bytes = self.value_bytes - before + room.value_bytes;
        let cause = if w.force {
            Cause::Forced
        } else {
            Cause::Written
        };
        commit(
            &mut self.events,
            &self.profile,
            room,
            now,
            w.operator,
            cause,
            changes,
            None,
        );
        Ok(Success::Written(BatchReport {
            seq: room.seq,
            applied: u32::try_from(applied).unwrap_or(u32::MAX),
            failed,
        }))
    }

    fn read(&self, id: &str, keys: Option<&[Str]>) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        let attributes = match keys {
            Some([]) => return Err(Rejection::Empty),
            None => room.attrs.iter().map(|s| s.attr.clone()).collect(),
            Some(keys) => {
                let mut found: Vec<usize> =
                    keys.iter().filter_map(|k| room.attrs.position(k)).collect();
                found.sort_unstable();
                found.dedup();
                found
                    .into_iter()
                    .filter_map(|p| room.attrs.at(p).map(|s| s.attr.clone()))
                    .collect()
            }
        };
        Ok(Success::Read(ReadReport {
            seq: room.seq,
            attributes,
        }))
    }

    // ----- queue -----

    fn queue_init(&mut self, now: Millis, id: &str, operator: Actor, capacity: u32) -> Outcome {
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
            None => room.queue = Some(Queue::new(capacity)),
        }
        commit(
            &mut self.events,
            &self.profile,
            room,
            now,
            operator,
            Cause::Written,
            alloc::vec![Change::QueueInit { capacity }],
            None,
        );
        Ok(Success::Done)
    }

    fn queue_drop(&mut self, now: Millis, id: &str, operator: Actor) -> Outcome {
        let room = self.rooms.get_mut(id).ok_or(Rejection::RoomNotFound)?;
        if room.drop_queue() {
            commit(
                &mut self.events,
                &self.profile,
                room,
                now,
                operator,
                Cause::Written,
                alloc::vec![Change::QueueDropped],
                None,
            );
        }
        Ok(Success::Done)
    }

    #[allow(clippy::too_many_arguments)] // mirrors the command's fields
    fn queue_offer(
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
            .is_some_and(|q| q.elems.get(&key).is_some());
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
        let mut changes = Vec::with_capacity(1);
        if room.queue.is_none() {
            room.queue = Some(Queue::new(limits.queue.default_capacity));
            changes.push(Change::QueueInit {
                capacity: limits.queue.default_capacity,
            });
        }
        changes.push(room.put_elem(key, value, operator.clone(), transient));
        commit(
            &mut self.events,
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

    fn queue_batch_offer(
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
        check_elements(elements.iter().map(|e| (&e.key, &e.value)), &ql)?;

        // Decide every element first (owner present, room in the queue), so
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
                Some(u) => room.is_present(u) || *u == room.creator,
                None => match &operator {
                    Actor::User(u) => room.is_present(u) || *u == room.creator,
                    Actor::Admin => true,
                },
            };
            let exists = room
                .queue
                .as_ref()
                .is_some_and(|q| q.elems.get(&e.key).is_some())
                || added.contains(&&*e.key);
            let verdict = if !owner_ok {
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

        let mut changes = Vec::with_capacity(n + 1);
        let mut failed = Vec::new();
        for (i, (e, verdict)) in elements.into_iter().zip(verdicts).enumerate() {
            if let Err(error) = verdict {
                failed.push(OpFailure {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    key: e.key,
                    error,
                });
                continue;
            }
            if room.queue.is_none() {
                room.queue = Some(Queue::new(ql.default_capacity));
                changes.push(Change::QueueInit {
                    capacity: ql.default_capacity,
                });
            }
            let owner = e.owner.map_or_else(|| operator.clone(), Actor::User);
            changes.push(room.put_elem(e.key, e.value, owner, e.transient.unwrap_or(transient)));
        }
        Ok(batch_done(
            &mut self.events,
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

    fn queue_batch_update(
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
            room.queue
                .as_ref()
                .and_then(|q| q.elems.get(key))
                .map(|s| s.elem.transient)
        };
        if elements.iter().any(|(k, _)| existing(room, k).is_some()) {
            check_budget(room, now, &limits, &notify)?;
        }
        let n = elements.len();
        let mut failed = Vec::new();
        let mut changes = Vec::with_capacity(n);
        for (i, (key, value)) in elements.into_iter().enumerate() {
            match existing(room, &key) {
                Some(transient) => {
                    changes.push(room.put_elem(key, value, operator.clone(), transient))
                }
                None => failed.push(OpFailure {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    key,
                    error: OpError::NotFound,
                }),
            }
        }
        Ok(batch_done(
            &mut self.events,
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

    fn queue_list(&self, id: &str) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        let elements = room
            .queue
            .iter()
            .flat_map(|q| q.elems.iter())
            .map(|s| s.elem.clone())
            .collect();
        Ok(Success::Elements(ElementsReport {
            seq: room.seq,
            elements,
        }))
    }

    fn queue_poll(
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
                    .is_some_and(|q| q.elems.get(&k).is_some()) =>
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
                .and_then(|q| q.elems.first())
                .map(|s| s.elem.key.clone())
                .ok_or(Rejection::QueueEmpty)?,
        };
        check_budget(room, now, &limits, &notify)?;
        let elem = room.remove_elem(&key).ok_or(Rejection::QueueEmpty)?;
        commit(
            &mut self.events,
            &self.profile,
            room,
            now,
            operator,
            Cause::Written,
            alloc::vec![Change::QueueRemoved { key }],
            Some(notify),
        );
        Ok(Success::Polled(elem))
    }

    fn queue_multi_get(&self, id: &str, keys: &[Str]) -> Outcome {
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
                .filter_map(|k| q.elems.get(k).map(|s| s.elem.clone()))
                .collect(),
            None => Vec::new(),
        };
        Ok(Success::Elements(ElementsReport {
            seq: room.seq,
            elements,
        }))
    }

    // ----- invariants -----

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

/// The user has no connection left: one `OwnerExited` event with the exit
/// and everything the owner index says goes with it. Takes the room the
/// caller already holds, so an exit looks it up once.
#[allow(clippy::too_many_arguments)] // the engine's fields it touches, then the exit
fn exit_user(
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

/// Advances the room's sequence number and, unless `notify` says not to,
/// emits one event with the delivery class its flow budget gives.
#[allow(clippy::too_many_arguments)] // the parts of an event
fn commit(
    events: &mut VecDeque<Event>,
    profile: &Profile,
    room: &mut Room,
    now: Millis,
    operator: Actor,
    cause: Cause,
    changes: Vec<Change>,
    notify: Option<Notify>,
) {
    // Saturating: restore refuses numbers near the top (MAX_SEQ), so this
    // cannot be reached by 2^62 commands, but it must not panic either.
    room.seq = room.seq.saturating_add(1);
    let (high, ext) = match notify {
        Some(n) if !n.notify => return,
        Some(n) => (n.high, n.ext),
        None => (None, None),
    };
    let delivery = room
        .flow
        .classify(now, profile.limits.notification_flow, high);
    events.push_back(Event {
        room: room.id.clone(),
        seq: room.seq,
        at: now,
        operator,
        cause,
        delivery,
        ext,
        changes,
    });
}

/// Ends a queue batch of `n` elements: one event for its changes (none if
/// nothing was applied) and the per-element report.
#[allow(clippy::too_many_arguments)] // the parts of an event and a report
fn batch_done(
    events: &mut VecDeque<Event>,
    profile: &Profile,
    room: &mut Room,
    now: Millis,
    operator: Actor,
    changes: Vec<Change>,
    n: usize,
    failed: Vec<OpFailure>,
    notify: Notify,
) -> Success {
    let applied = n - failed.len();
    if applied > 0 {
        commit(
            events,
            profile,
            room,
            now,
            operator,
            Cause::Written,
            changes,
            Some(notify),
        );
    }
    Success::QueueBatch(BatchReport {
        seq: room.seq,
        applied: u32::try_from(applied).unwrap_or(u32::MAX),
        failed,
    })
}

/// The room of a single-element queue change, after its `ext` check.
fn queue_room<'a>(
    rooms: &'a mut HashMap<Str, Room>,
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
        .is_some_and(|e| Unit::Chars.len(e) > limits.queue.max_ext_chars as usize);
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

/// Steps 1–3 of SPEC §4 for one op: key and value shape, expectation,
/// existence and ownership. `current` is `(owner, value bytes, revision)`.
fn check_op(
    op: &Op,
    operator: &Actor,
    force: bool,
    current: Option<&(&Actor, u64, u64)>,
    limits: &Limits,
) -> Result<(), OpError> {
    let key = op.key();
    check_key(key, limits.max_key_len, limits.key_unit)?;
    if !limits.key_charset.allows(key) {
        return Err(OpError::KeyCharset);
    }
    let expect = match op {
        Op::Set { value, expect, .. } => {
            if limits.value_unit.len(value) > limits.max_value_len as usize {
                return Err(OpError::ValueTooLong);
            }
            expect
        }
        Op::Delete { expect, .. } => expect,
    };
    let revision = current.map(|c| c.2);
    match expect {
        Some(Expect::Absent) if revision.is_some() => {
            return Err(OpError::Conflict { current: revision })
        }
        Some(Expect::Revision(n)) if revision != Some(*n) => {
            return Err(OpError::Conflict { current: revision })
        }
        _ => {}
    }
    match current {
        None if matches!(op, Op::Delete { .. }) => Err(OpError::NotFound),
        Some((owner, ..)) if !force && matches!(operator, Actor::User(_)) && *owner != operator => {
            Err(OpError::NotOwner)
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_key(key: &str, max: u32, unit: Unit) -> Result<(), OpError> {
    if key.is_empty() {
        Err(OpError::KeyEmpty)
    } else if unit.len(key) > max as usize {
        Err(OpError::KeyTooLong)
    } else {
        Ok(())
    }
}

pub(crate) fn check_element(key: &str, value: &str, ql: &QueueLimits) -> Result<(), OpError> {
    check_key(key, ql.max_key_len, ql.key_unit)?;
    if ql.value_unit.len(value) > ql.max_value_len as usize {
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
        check_element(k, v, ql).map_err(|error| Rejection::Op {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            error,
        })?;
    }
    Ok(())
}

/// A borrowed view of one room.
#[derive(Clone, Copy)]
pub struct RoomView<'a> {
    room: &'a Room,
}

impl<'a> RoomView<'a> {
    /// Room id.
    #[must_use]
    pub fn id(&self) -> &'a Str {
        &self.room.id
    }

    /// The creator's user id.
    #[must_use]
    pub fn creator(&self) -> &'a Str {
        &self.room.creator
    }

    /// Current sequence number.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.room.seq
    }

    /// Number of attributes.
    #[must_use]
    pub fn attribute_count(&self) -> usize {
        self.room.attrs.len()
    }

    /// Sum of attribute value bytes.
    #[must_use]
    pub fn value_bytes(&self) -> u64 {
        self.room.value_bytes
    }

    /// One attribute.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&'a Attribute> {
        self.room.attrs.get(key).map(|s| &s.attr)
    }

    /// Every attribute, in listing order, borrowed.
    pub fn attributes(&self) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.room.attrs.iter().map(|s| &s.attr)
    }

    /// Whether `user` holds a connection (live or in grace).
    #[must_use]
    pub fn is_present(&self, user: &str) -> bool {
        self.room.is_present(user)
    }

    /// `user`'s connections, live and in grace.
    #[must_use]
    pub fn connections(&self, user: &str) -> u32 {
        self.room.users.get(user).map_or(0, |r| r.connections())
    }

    /// `user`'s role.
    #[must_use]
    pub fn role(&self, user: &str) -> Role {
        self.room.role(user)
    }

    /// Present users, sorted by id (allocates; for inspection, not hot paths).
    #[must_use]
    pub fn members(&self) -> Vec<&'a Str> {
        let mut v: Vec<&Str> = self
            .room
            .users
            .iter()
            .filter(|(_, r)| r.is_present())
            .map(|(u, _)| u)
            .collect();
        v.sort_unstable();
        v
    }

    /// Queue capacity, `None` without a queue.
    #[must_use]
    pub fn queue_capacity(&self) -> Option<u32> {
        self.room.queue.as_ref().map(|q| q.capacity)
    }

    /// Queue length.
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.room.queue.as_ref().map_or(0, |q| q.elems.len())
    }

    /// Queue elements in order, borrowed.
    pub fn queue(&self) -> impl Iterator<Item = &'a QueueElement> + 'a {
        self.room
            .queue
            .iter()
            .flat_map(|q| q.elems.iter())
            .map(|s| &s.elem)
    }
}
