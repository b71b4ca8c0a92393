//! A naive reference model of the engine's semantics (the crate docs of
//! `roomstate`), written independently of the engine.
//!
//! Everything here is deliberately simple: `BTreeMap`s and `Vec`s, linear
//! scans, no indexes, no caches. Totals (value bytes, key counts, the next
//! deadline) are recomputed from scratch every time they are needed. An
//! `Atomic` batch is run against a copy of the room's attributes that is
//! thrown away on failure.
//!
//! Where the crate docs leave a detail open, the choice made here is marked
//! `// READING:`. Those are the places where engine and model may disagree.

use std::collections::BTreeMap;

use roomstate::{
    Acquisition, Actor, Attribute, BatchPolicy, BatchReport, Cause, Change, Command, CounterOp,
    CountersReport, Delivery, ElementsReport, Event, EventsReport, ExitKind, Expect, HighPolicy,
    LockInfo, LocksReport, Millis, NewElement, Notify, Op, OpError, OpFailure, Outcome, OwnerRule,
    PolicyRule, Profile, QueueElement, ReadReport, Rejection, Role, Str, Success, Write,
};

/// Connections of one present user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conns {
    /// Live connections.
    pub live: u32,
    /// Dropped connections still inside their grace period.
    pub dropped: u32,
    /// When the dropped connections expire (`Some` iff `dropped > 0`).
    pub deadline: Option<Millis>,
}

/// A room's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelQueue {
    /// Capacity.
    pub capacity: u32,
    /// Elements, in queue order.
    pub elements: Vec<QueueElement>,
}

/// One lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelLock {
    /// Name.
    pub name: Str,
    /// TTL after clamping.
    pub ttl_ms: u64,
    /// Holder.
    pub holder: Option<Str>,
    /// Token of the latest acquisition.
    pub token: u64,
    /// Deadline while the holder has no live connection.
    pub deadline: Option<Millis>,
    /// Wait list, first in line first.
    pub waiters: Vec<Str>,
}

/// The notification-flow window of one room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Window {
    start: Option<Millis>,
    normal: u32,
    high: u32,
}

/// One room.
#[derive(Clone, Debug)]
pub struct ModelRoom {
    /// The creator (role `Creator`).
    pub creator: Str,
    /// The room's sequence number.
    pub seq: u64,
    /// Attributes in listing order.
    pub attributes: Vec<Attribute>,
    /// The queue, if any.
    pub queue: Option<ModelQueue>,
    /// Present users (at least one connection, live or dropped).
    pub members: BTreeMap<Str, Conns>,
    /// Roles set with `SetRole` (the creator's is implicit).
    pub roles: BTreeMap<Str, Role>,
    /// Locks, in creation order.
    pub locks: Vec<ModelLock>,
    /// Seq of the last event with an attribute change.
    pub major: u64,
    /// Counters (their map order is key order).
    pub counters: BTreeMap<Str, i64>,
    /// TTL deadlines of the keys set with one.
    pub expiry: BTreeMap<Str, Millis>,
    /// Recent events with their encoded sizes, oldest first.
    pub history: Vec<(Event, usize)>,
    /// Every event after this number is in `history`.
    pub covered_from: u64,
    window: Window,
}

impl ModelRoom {
    /// Whether `user` holds at least one connection.
    #[must_use]
    pub fn is_present(&self, user: &str) -> bool {
        self.members
            .get(user)
            .is_some_and(|c| c.live + c.dropped > 0)
    }

    /// The role of `user`.
    #[must_use]
    pub fn role(&self, user: &str) -> Role {
        if self.creator.as_str() == user {
            Role::Creator
        } else {
            self.roles.get(user).copied().unwrap_or_default()
        }
    }

    /// Sum of the attribute values' UTF-8 bytes, recomputed.
    #[must_use]
    pub fn value_bytes(&self) -> u64 {
        bytes_of(&self.attributes)
    }
}

fn bytes_of(attrs: &[Attribute]) -> u64 {
    attrs.iter().map(|a| a.value.len() as u64).sum()
}

/// The reference model.
#[derive(Clone, Debug)]
pub struct Model {
    profile: Profile,
    /// Latest `now` seen.
    now: Millis,
    /// Rate bucket in milli-tokens.
    tokens_milli: u64,
    /// Time of the bucket's last refill.
    refilled_at: Millis,
    rooms: BTreeMap<Str, ModelRoom>,
    events: Vec<Event>,
}

/// What an op did to the working copy of a room's attributes.
type OpResult = Result<Change, OpError>;

impl Model {
    /// A model with no rooms.
    #[must_use]
    pub fn new(profile: Profile) -> Model {
        let tokens_milli = profile
            .limits
            .request_rate
            .map_or(0, |r| u64::from(r.per_second) * 1000);
        Model {
            profile,
            now: Millis::ZERO,
            tokens_milli,
            refilled_at: Millis::ZERO,
            rooms: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// The profile.
    #[must_use]
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// A room, if it exists.
    #[must_use]
    pub fn room(&self, id: &str) -> Option<&ModelRoom> {
        self.rooms.get(id)
    }

    /// Ids of all rooms, sorted.
    #[must_use]
    pub fn room_ids(&self) -> Vec<Str> {
        self.rooms.keys().cloned().collect()
    }

    /// Appends the pending events, in order.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.events);
    }

    /// The earliest grace deadline of any dropped connection, recomputed.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Millis> {
        let grace = self
            .rooms
            .values()
            .flat_map(|r| r.members.values())
            .filter_map(|c| c.deadline);
        let locks = self
            .rooms
            .values()
            .flat_map(|r| r.locks.iter())
            .filter_map(|l| l.deadline);
        let ttl = self.rooms.values().flat_map(|r| r.expiry.values().copied());
        grace.chain(locks).chain(ttl).min()
    }

    /// Applies one command at `now`.
    pub fn handle(&mut self, now: Millis, command: Command) -> Outcome {
        let now = if now > self.now { now } else { self.now };
        self.now = now;
        self.expire(now);
        if counts_against_the_rate(&command) && !self.take_token(now) {
            return Err(Rejection::RateLimited);
        }
        if let Some(Actor::User(u)) = operator(&command) {
            if u.is_empty() {
                return Err(Rejection::InvalidParameter);
            }
        }
        match command {
            Command::CreateRoom { room, creator } => self.create_room(now, room, creator),
            Command::DestroyRoom { room } => self.destroy_room(now, &room),
            Command::Join { room, user } => self.join(now, &room, user),
            Command::Leave { room, user } => self.leave(now, &room, &user),
            Command::Disconnect { room, user } => self.disconnect(now, &room, &user),
            Command::Exit { room, user } => self.exit(now, &room, &user),
            Command::SetRole { room, user, role } => self.set_role(now, &room, user, role),
            Command::Write(w) => self.write(now, w),
            Command::SetLock { room, name, ttl_ms } => self.set_lock(now, &room, name, ttl_ms),
            Command::RemoveLock { room, name } => self.remove_lock(now, &room, &name),
            Command::AcquireLock {
                room,
                name,
                user,
                retry,
            } => self.acquire_lock(now, &room, &name, user, retry),
            Command::ReleaseLock { room, name, user } => {
                self.take_lock(now, &room, &name, &user, Actor::User(user.clone()))
            }
            Command::RevokeLock {
                room,
                name,
                owner,
                operator,
            } => self.revoke_lock(now, &room, &name, &owner, operator),
            Command::GetLocks { room } => self.get_locks(&room),
            Command::Read { room, keys } => self.read(&room, keys),
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
            Command::QueueMultiGet { room, keys } => self.queue_multi_get(&room, keys),
            Command::Counter {
                room,
                operator,
                key,
                op,
                min,
                max,
            } => self.counter(now, &room, operator, key, op, min, max),
            Command::CounterDelete {
                room,
                operator,
                keys,
            } => self.counter_delete(now, &room, operator, keys),
            Command::CounterRead { room, keys } => self.counter_read(&room, keys),
            Command::Since { room, seq } => self.since(&room, seq),
            Command::Tick => Ok(Success::Done),
            // `Command` is non-exhaustive; a new variant must be modelled.
            other => unimplemented!("model does not know {other:?}"),
        }
    }

    // ----- time -----------------------------------------------------------

    /// Expires every grace deadline that is due at `now`.
    fn expire(&mut self, now: Millis) {
        // TTLs first, in (deadline, room, key) order, each its own event.
        let mut due: Vec<(Millis, Str, Str)> = Vec::new();
        for (rid, room) in &self.rooms {
            for (key, at) in &room.expiry {
                if *at <= now {
                    due.push((*at, rid.clone(), key.clone()));
                }
            }
        }
        due.sort();
        for (_, rid, key) in due {
            let r = self.rooms.get_mut(&rid).unwrap();
            r.expiry.remove(&key);
            let before = r.attributes.len();
            r.attributes.retain(|a| a.key != key);
            if r.attributes.len() < before {
                self.emit_plain(
                    now,
                    &rid,
                    Actor::Admin,
                    Cause::Expired,
                    vec![Change::AttributeDeleted { key }],
                );
            }
        }
        // READING: several due deadlines are processed in order of
        // (deadline, room id, user id); every event they cause carries the
        // command's `now` as `at` (not the deadline), and is classed by the
        // flow window at `now`.
        let mut due: Vec<(Millis, Str, Str)> = Vec::new();
        for (rid, room) in &self.rooms {
            for (uid, c) in &room.members {
                if let Some(d) = c.deadline {
                    if d <= now {
                        due.push((d, rid.clone(), uid.clone()));
                    }
                }
            }
        }
        due.sort();
        for (_, rid, uid) in due {
            let Some(room) = self.rooms.get_mut(&rid) else {
                continue;
            };
            let Some(c) = room.members.get_mut(&uid) else {
                continue;
            };
            c.dropped = 0;
            c.deadline = None;
            if c.live == 0 {
                self.exit_user(now, &rid, &uid, ExitKind::Disconnected, Actor::Admin);
            }
        }
        // READING: lock deadlines go after every due grace deadline, in
        // order of (deadline, room id, lock name).
        let mut due: Vec<(Millis, Str, Str)> = Vec::new();
        for (rid, room) in &self.rooms {
            for l in &room.locks {
                if let Some(d) = l.deadline {
                    if d <= now {
                        due.push((d, rid.clone(), l.name.clone()));
                    }
                }
            }
        }
        due.sort();
        for (_, rid, name) in due {
            let mut changes = Vec::new();
            self.release_lock_in(now, &rid, &name, true, &mut changes);
            self.emit_plain(now, &rid, Actor::Admin, Cause::Expired, changes);
        }
    }

    /// Refills the bucket and takes one token; `false` when it is empty.
    fn take_token(&mut self, now: Millis) -> bool {
        let Some(rate) = self.profile.limits.request_rate else {
            return true;
        };
        let per_second = u64::from(rate.per_second);
        let cap = per_second * 1000;
        let elapsed = now.since(self.refilled_at);
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed.saturating_mul(per_second))
            .min(cap);
        self.refilled_at = now;
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }

    // ----- events ---------------------------------------------------------

    /// The delivery class of an event in `room` at `now`, counting it.
    fn classify(&mut self, room: &str, now: Millis, high: bool) -> Delivery {
        let flow = self.profile.limits.notification_flow;
        let Some(r) = self.rooms.get_mut(room) else {
            return Delivery::Normal;
        };
        let Some(flow) = flow else {
            return if high {
                Delivery::High
            } else {
                Delivery::Normal
            };
        };
        let w = &mut r.window;
        // READING: the window covers [start, start + 1000); an event at
        // start + 1000 or later opens a new one.
        if w.start.is_none_or(|s| now.0 >= s.0.saturating_add(1000)) {
            *w = Window {
                start: Some(now),
                normal: 0,
                high: 0,
            };
        }
        // READING: a `High` event counts against the high budget only; a
        // downgraded one counts against the normal budget like any other
        // normal event. `Overflow` events are not counted (it makes no
        // difference: the count is already at the limit).
        if high && w.high < flow.high_per_second {
            w.high += 1;
            return Delivery::High;
        }
        if w.normal < flow.normal_per_second {
            w.normal += 1;
            Delivery::Normal
        } else {
            Delivery::Overflow
        }
    }

    /// Whether a high-priority event with policy `Reject` would be refused
    /// in `room` at `now`.
    fn over_high_budget(&self, room: &str, now: Millis, notify: &Notify) -> bool {
        let Some(flow) = self.profile.limits.notification_flow else {
            return false;
        };
        if notify.high != Some(HighPolicy::Reject) {
            return false;
        }
        // READING: with `notify: false` there is no event, so no budget is
        // consumed or checked.
        if !notify.notify {
            return false;
        }
        let Some(r) = self.rooms.get(room) else {
            return false;
        };
        let w = &r.window;
        let used = match w.start {
            Some(s) if now.0 < s.0.saturating_add(1000) => w.high,
            _ => 0,
        };
        used >= flow.high_per_second
    }

    /// Advances `room`'s sequence number and, when `notify`, emits one event.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        cause: Cause,
        changes: Vec<Change>,
        notify: bool,
        high: bool,
        ext: Option<Str>,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.seq += 1;
        let seq = r.seq;
        if changes.iter().any(|c| {
            matches!(
                c,
                Change::AttributeSet { .. } | Change::AttributeDeleted { .. }
            )
        }) {
            r.major = seq;
        }
        if !notify {
            // A change nobody is told of: no catch-up can cross it, so the
            // history starts again after it.
            r.history.clear();
            r.covered_from = seq;
            return;
        }
        let delivery = self.classify(room, now, high);
        let event = Event {
            room: Str::from(room),
            seq,
            at: now,
            operator,
            cause,
            delivery,
            ext,
            changes,
        };
        // Catch-up history: the event and its stored size (a 4-byte length
        // and the postcard bytes of every field but the room and the
        // number); then the oldest go while either bound is broken. A
        // bound of 0 keeps none.
        let limits = self.profile.limits;
        let r = self.rooms.get_mut(room).unwrap();
        let body = (
            event.at,
            &event.operator,
            event.cause,
            event.delivery,
            &event.ext,
            &event.changes,
        );
        let size = 4 + postcard::to_allocvec(&body).unwrap().len();
        r.history.push((event.clone(), size));
        loop {
            let bytes: usize = r.history.iter().map(|(_, n)| n).sum();
            if r.history.len() <= limits.history_events as usize
                && bytes <= limits.history_bytes as usize
            {
                break;
            }
            let (gone, _) = r.history.remove(0);
            r.covered_from = gone.seq;
        }
        self.events.push(event);
    }

    /// A plain event (not a queue command): always notified, never high.
    fn emit_plain(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        cause: Cause,
        changes: Vec<Change>,
    ) {
        self.emit(now, room, operator, cause, changes, true, false, None);
    }

    // ----- rooms and membership ------------------------------------------

    fn create_room(&mut self, now: Millis, room: Str, creator: Str) -> Outcome {
        // READING: empty ids are InvalidParameter, checked before existence.
        if room.is_empty() || creator.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        if self.rooms.contains_key(&room) {
            return Err(Rejection::RoomExists);
        }
        self.rooms.insert(
            room.clone(),
            ModelRoom {
                creator: creator.clone(),
                seq: 0,
                attributes: Vec::new(),
                queue: None,
                members: BTreeMap::new(),
                roles: BTreeMap::new(),
                locks: Vec::new(),
                major: 0,
                counters: BTreeMap::new(),
                expiry: BTreeMap::new(),
                history: Vec::new(),
                covered_from: 0,
                window: Window::default(),
            },
        );
        self.emit_plain(
            now,
            &room,
            Actor::Admin,
            Cause::RoomCreated,
            vec![Change::RoomCreated { creator }],
        );
        Ok(Success::Done)
    }

    fn destroy_room(&mut self, now: Millis, room: &str) -> Outcome {
        if !self.rooms.contains_key(room) {
            return Err(Rejection::RoomNotFound);
        }
        // READING: the destruction event is classed by the room's flow
        // window like any other event.
        self.emit_plain(
            now,
            room,
            Actor::Admin,
            Cause::RoomDestroyed,
            vec![Change::RoomDestroyed],
        );
        self.rooms.remove(room);
        Ok(Success::Done)
    }

    fn join(&mut self, now: Millis, room: &str, user: Str) -> Outcome {
        // Ids are validated before the room is looked up (crate docs).
        if user.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(Rejection::RoomNotFound);
        };
        // READING: an empty user id is InvalidParameter (after the room check).
        if user.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        let c = r.members.entry(user.clone()).or_default();
        let was_present = c.live + c.dropped > 0;
        if c.dropped > 0 {
            c.dropped -= 1;
            if c.dropped == 0 {
                c.deadline = None;
            }
        }
        c.live += 1;
        self.sync_lock_deadlines(room, &user, now);
        if !was_present {
            self.emit_plain(
                now,
                room,
                Actor::User(user.clone()),
                Cause::Membership,
                vec![Change::MemberJoined { user }],
            );
        }
        Ok(Success::Done)
    }

    fn leave(&mut self, now: Millis, room: &str, user: &str) -> Outcome {
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(Rejection::RoomNotFound);
        };
        let Some(c) = r.members.get_mut(user) else {
            return Err(Rejection::NotInRoom);
        };
        if c.live > 0 {
            c.live -= 1;
        } else if c.dropped > 0 {
            c.dropped -= 1;
            if c.dropped == 0 {
                c.deadline = None;
            }
        } else {
            return Err(Rejection::NotInRoom);
        }
        if c.live + c.dropped == 0 {
            self.exit_user(now, room, user, ExitKind::Left, Actor::user(user));
        }
        self.sync_lock_deadlines(room, user, now);
        Ok(Success::Done)
    }

    fn disconnect(&mut self, now: Millis, room: &str, user: &str) -> Outcome {
        let grace = self.profile.limits.disconnect_grace_ms;
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(Rejection::RoomNotFound);
        };
        let Some(c) = r.members.get_mut(user) else {
            return Err(Rejection::NotInRoom);
        };
        if c.live + c.dropped == 0 {
            return Err(Rejection::NotInRoom);
        }
        // READING: a disconnect of a present user with no live connection
        // (all dropped) changes nothing and does not restart the timer.
        // With a grace of 0 a disconnect is a leave, but the exit it causes
        // is `Disconnected` by `Admin`, like an expiry. So is a disconnect
        // whose deadline cannot lie after `now` (at the end of time).
        if c.live > 0 && now.saturating_add(grace) <= now {
            c.live -= 1;
            if c.live + c.dropped == 0 {
                self.exit_user(now, room, user, ExitKind::Disconnected, Actor::Admin);
            }
        } else if c.live > 0 {
            c.live -= 1;
            c.dropped += 1;
            c.deadline = Some(now.saturating_add(grace));
        }
        // Otherwise every connection has dropped already: a no-op.
        self.sync_lock_deadlines(room, user, now);
        Ok(Success::Done)
    }

    fn exit(&mut self, now: Millis, room: &str, user: &str) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if !r.is_present(user) {
            return Err(Rejection::NotInRoom);
        }
        self.exit_user(now, room, user, ExitKind::Kicked, Actor::Admin);
        Ok(Success::Done)
    }

    /// Removes `user` from `room` and everything it owns that goes with it,
    /// in one event. Scans the room (no owner index).
    fn exit_user(&mut self, now: Millis, room: &str, user: &str, how: ExitKind, operator: Actor) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.members.remove(user);
        let owner = Actor::user(user);
        let mut changes = vec![Change::MemberExited {
            user: Str::from(user),
            how,
        }];
        let mut kept = Vec::new();
        for a in r.attributes.drain(..) {
            if a.auto_delete && a.owner == owner {
                r.expiry.remove(&a.key);
                changes.push(Change::AttributeDeleted { key: a.key });
            } else {
                kept.push(a);
            }
        }
        r.attributes = kept;
        if let Some(q) = &mut r.queue {
            let mut kept = Vec::new();
            for e in q.elements.drain(..) {
                if e.transient && e.owner == owner {
                    changes.push(Change::QueueRemoved { key: e.key });
                } else {
                    kept.push(e);
                }
            }
            q.elements = kept;
        }
        // READING: the exiting user leaves every wait list first; then each
        // lock it holds, in creation order, is released and passed on.
        for l in &mut r.locks {
            l.waiters.retain(|w| w.as_str() != user);
        }
        let held: Vec<Str> = r
            .locks
            .iter()
            .filter(|l| l.holder.as_deref() == Some(user))
            .map(|l| l.name.clone())
            .collect();
        for name in held {
            self.release_lock_in(now, room, &name, false, &mut changes);
        }
        self.emit_plain(now, room, operator, Cause::OwnerExited, changes);
    }

    fn set_role(&mut self, now: Millis, room: &str, user: Str, role: Role) -> Outcome {
        // Ids are validated before the room is looked up (crate docs).
        if user.is_empty() {
            return Err(Rejection::InvalidParameter);
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if role == Role::Creator || r.creator == user {
            return Err(Rejection::InvalidParameter);
        }
        if r.role(&user) == role {
            return Ok(Success::Done);
        }
        // READING: roles are kept whether or not the user is present, and
        // survive its exit and re-join (until the room is destroyed).
        if role == Role::Member {
            r.roles.remove(&user);
        } else {
            r.roles.insert(user.clone(), role);
        }
        self.emit_plain(
            now,
            room,
            Actor::Admin,
            Cause::Membership,
            vec![Change::RoleSet { user, role }],
        );
        Ok(Success::Done)
    }

    // ----- attributes -----------------------------------------------------

    fn write(&mut self, now: Millis, w: Write) -> Outcome {
        let profile = self.profile;
        let limits = profile.limits;
        let rules = profile.rules;
        let Some(room) = self.rooms.get(&w.room) else {
            return Err(Rejection::RoomNotFound);
        };
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
        let policy = match rule {
            PolicyRule::Fixed(p) => {
                if w.policy.is_some_and(|q| q != p) {
                    return Err(Rejection::PolicyNotAllowed);
                }
                p
            }
            PolicyRule::PerRequest(p) => w.policy.unwrap_or(p),
        };
        // READING: a TTL that is 0 (or whose deadline saturates at `now`)
        // rejects the whole request, after the policy check.
        for op in &w.ops {
            if let Op::Set { ttl: Some(ms), .. } = op {
                if now.saturating_add(*ms) <= now {
                    return Err(Rejection::InvalidParameter);
                }
            }
        }
        if rules.writer_must_be_member {
            if let Actor::User(u) = &w.operator {
                if !room.is_present(u) {
                    return Err(Rejection::NotInRoom);
                }
            }
        }

        if let Some((name, token)) = &w.lock {
            let holds = room.locks.iter().any(|l| {
                l.name == *name
                    && l.token == *token
                    && l.holder.is_some()
                    && l.holder.as_ref() == w.operator.as_user()
            });
            if !holds {
                return Err(Rejection::WriteLockNotHeld);
            }
        }
        if let Some(expected) = w.major_revision {
            if expected != room.major {
                return Err(Rejection::RevisionOutdated {
                    current: room.major,
                });
            }
        }
        let new_seq = room.seq + 1;
        let other_rooms_bytes: u64 = self
            .rooms
            .iter()
            .filter(|(id, _)| id.as_str() != w.room.as_str())
            .map(|(_, r)| r.value_bytes())
            .sum();
        let mut work = room.attributes.clone();
        let mut changes = Vec::new();
        let mut failed = Vec::new();
        let mut applied: u32 = 0;
        let mut stopped = false;
        // Deadline of every applied op's key, in order (`None`: none).
        let mut deadlines: Vec<(Str, Option<Millis>)> = Vec::new();
        for (i, op) in w.ops.iter().enumerate() {
            let index = i;
            if stopped {
                failed.push(OpFailure {
                    index,
                    key: op.key().clone(),
                    error: OpError::NotAttempted,
                });
                continue;
            }
            match self.apply_op(&mut work, &w, op, now, new_seq, other_rooms_bytes) {
                Ok(change) => {
                    changes.push(change);
                    applied += 1;
                    let deadline = match op {
                        Op::Set { ttl, .. } => ttl.map(|ms| now.saturating_add(ms)),
                        Op::Delete { .. } => None,
                    };
                    deadlines.push((op.key().clone(), deadline));
                }
                Err(error) => match policy {
                    BatchPolicy::Atomic => return Err(Rejection::Op { index, error }),
                    BatchPolicy::BestEffort => failed.push(OpFailure {
                        index,
                        key: op.key().clone(),
                        error,
                    }),
                    BatchPolicy::StopOnError => {
                        failed.push(OpFailure {
                            index,
                            key: op.key().clone(),
                            error,
                        });
                        stopped = true;
                    }
                },
            }
        }
        // READING: for an `Atomic` delete-only batch the first failing op's
        // `Rejection::Op` wins over `NothingDeleted` (it comes first).
        if !has_set && applied == 0 && rules.reject_if_nothing_deleted {
            return Err(Rejection::NothingDeleted);
        }
        if applied > 0 {
            if let Some(r) = self.rooms.get_mut(&w.room) {
                r.attributes = work;
                for (key, deadline) in deadlines {
                    match deadline {
                        Some(at) => r.expiry.insert(key, at),
                        None => r.expiry.remove(&key),
                    };
                }
            }
            let cause = if w.force {
                Cause::Forced
            } else {
                Cause::Written
            };
            self.emit_plain(now, &w.room, w.operator.clone(), cause, changes);
        }
        let seq = self.rooms.get(&w.room).map_or(0, |r| r.seq);
        Ok(Success::Written(BatchReport {
            seq,
            applied,
            failed,
        }))
    }

    /// Checks one op against the working attributes and applies it there.
    fn apply_op(
        &self,
        work: &mut Vec<Attribute>,
        w: &Write,
        op: &Op,
        now: Millis,
        new_seq: u64,
        other_rooms_bytes: u64,
    ) -> OpResult {
        let limits = self.profile.limits;
        let rules = self.profile.rules;
        // 1. key and value
        let key = op.key();
        if key.is_empty() {
            return Err(OpError::KeyEmpty);
        }
        if limits.key_unit.len(key) > limits.max_key_len as usize {
            return Err(OpError::KeyTooLong);
        }
        if !limits.key_charset.allows(key) {
            return Err(OpError::KeyCharset);
        }
        if let Op::Set { value, .. } = op {
            if limits.value_unit.len(value) > limits.max_value_len as usize {
                return Err(OpError::ValueTooLong);
            }
        }
        let pos = work.iter().position(|a| a.key == *key);
        let current = pos.map(|p| work[p].revision);
        // 2. expectation
        // READING: a key written by an earlier op of the same batch has
        // the batch's new sequence number as its revision when a later
        // op's expectation is checked.
        let expect = match op {
            Op::Set { expect, .. } | Op::Delete { expect, .. } => *expect,
        };
        let holds = match expect {
            None => true,
            Some(Expect::Absent) => current.is_none(),
            Some(Expect::Revision(n)) => current == Some(n),
            Some(Expect::Present) => current.is_some(),
        };
        if !holds {
            return Err(OpError::Conflict { current });
        }
        // 3. existence and ownership
        if matches!(op, Op::Delete { .. }) && pos.is_none() {
            return Err(OpError::NotFound);
        }
        if let (false, Actor::User(_), Some(p)) = (w.force, &w.operator, pos) {
            if work[p].owner != w.operator {
                return Err(OpError::NotOwner);
            }
        }
        match op {
            Op::Delete { .. } => {
                let p = pos.unwrap();
                work.remove(p);
                Ok(Change::AttributeDeleted { key: key.clone() })
            }
            Op::Set {
                value, auto_delete, ..
            } => {
                // 4. limits
                if pos.is_none() {
                    if let Some(max) = limits.max_keys_per_room {
                        if work.len() + 1 > max as usize {
                            return Err(OpError::KeyCountLimit);
                        }
                    }
                }
                let old = pos.map_or(0, |p| work[p].value.len() as u64);
                let room_after = bytes_of(work) - old + value.len() as u64;
                if let Some(max) = limits.max_room_value_bytes {
                    if room_after > max {
                        return Err(OpError::RoomSizeLimit);
                    }
                }
                if let Some(max) = limits.max_engine_value_bytes {
                    if other_rooms_bytes + room_after > max {
                        return Err(OpError::EngineSizeLimit);
                    }
                }
                // 5. apply
                let auto_delete = auto_delete.unwrap_or(rules.default_auto_delete);
                let take_owner = w.update_owner
                    || match rules.owner_on_overwrite {
                        OwnerRule::Keep => false,
                        OwnerRule::OperatorWhenForced => w.force,
                        OwnerRule::Operator => true,
                    };
                let owner = match pos {
                    Some(p) => {
                        let a = &mut work[p];
                        if take_owner {
                            a.owner = w.operator.clone();
                        }
                        a.value = value.clone();
                        a.auto_delete = auto_delete;
                        a.revision = new_seq;
                        a.changed_at = now;
                        a.owner.clone()
                    }
                    None => {
                        work.push(Attribute {
                            key: key.clone(),
                            value: value.clone(),
                            owner: w.operator.clone(),
                            auto_delete,
                            revision: new_seq,
                            changed_at: now,
                        });
                        w.operator.clone()
                    }
                };
                Ok(Change::AttributeSet {
                    key: key.clone(),
                    value: value.clone(),
                    owner,
                    auto_delete,
                })
            }
        }
    }

    fn read(&self, room: &str, keys: Option<Vec<Str>>) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        let attributes = match keys {
            None => r.attributes.clone(),
            Some(keys) => {
                if keys.is_empty() {
                    return Err(Rejection::Empty);
                }
                // READING: read keys are not validated; an invalid key simply
                // does not exist.
                r.attributes
                    .iter()
                    .filter(|a| keys.contains(&a.key))
                    .cloned()
                    .collect()
            }
        };
        Ok(Success::Read(ReadReport {
            seq: r.seq,
            attributes,
        }))
    }

    // ----- queue ----------------------------------------------------------

    /// Key and value of a queue element, against the queue limits.
    // READING: queue keys have no charset restriction (only attribute keys
    // do); a queue key is checked for empty, then length; then the value.
    fn check_element(&self, key: &str, value: &str) -> Result<(), OpError> {
        let q = self.profile.limits.queue;
        if key.is_empty() {
            return Err(OpError::KeyEmpty);
        }
        if q.key_unit.len(key) > q.max_key_len as usize {
            return Err(OpError::KeyTooLong);
        }
        if q.value_unit.len(value) > q.max_value_len as usize {
            return Err(OpError::ValueTooLong);
        }
        Ok(())
    }

    fn check_ext(&self, notify: &Notify) -> Result<(), Rejection> {
        let max = self.profile.limits.queue.max_ext_chars as usize;
        match &notify.ext {
            Some(ext) if ext.chars().count() > max => Err(Rejection::InvalidParameter),
            _ => Ok(()),
        }
    }

    /// The queue of `room` as it is, or a new empty one with the default
    /// capacity; the flag says whether it had to be created.
    fn queue_or_new(&self, r: &ModelRoom) -> (ModelQueue, bool) {
        match &r.queue {
            Some(q) => (q.clone(), false),
            None => (
                ModelQueue {
                    capacity: self.profile.limits.queue.default_capacity,
                    elements: Vec::new(),
                },
                true,
            ),
        }
    }

    /// Commits a changed queue and announces it.
    #[allow(clippy::too_many_arguments)]
    fn commit_queue(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        queue: Option<ModelQueue>,
        changes: Vec<Change>,
        notify: &Notify,
    ) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.queue = queue;
        }
        self.emit(
            now,
            room,
            operator,
            Cause::Written,
            changes,
            notify.notify,
            notify.high.is_some(),
            notify.ext.clone(),
        );
    }

    // READING (all queue commands): checks run in the order rate, room,
    // empty batch, batch size, `ext` length, presence/permission, element
    // key/value validation (by index), per-element semantics, then the
    // high-priority budget (only when an event would be emitted), as the
    // request-level checks of a write put membership before the ops.
    // READING: queue element values do not count against the attribute
    // value-byte totals (room or engine).
    // READING: init, drop, offer (non-transient) and poll need no presence
    // or role; any operator may do them.

    fn queue_init(&mut self, now: Millis, room: &str, operator: Actor, capacity: u32) -> Outcome {
        let max = self.profile.limits.queue.max_capacity;
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if capacity == 0 || capacity > max {
            return Err(Rejection::InvalidParameter);
        }
        let queue = match &r.queue {
            Some(q) => {
                if (capacity as usize) < q.elements.len() {
                    return Err(Rejection::InvalidParameter);
                }
                // READING: init of an existing queue with its current
                // capacity changes nothing: no event, no number.
                if q.capacity == capacity {
                    return Ok(Success::Done);
                }
                ModelQueue {
                    capacity,
                    elements: q.elements.clone(),
                }
            }
            None => ModelQueue {
                capacity,
                elements: Vec::new(),
            },
        };
        self.commit_queue(
            now,
            room,
            operator,
            Some(queue),
            vec![Change::QueueInit { capacity }],
            &Notify::default(),
        );
        Ok(Success::Done)
    }

    fn queue_drop(&mut self, now: Millis, room: &str, operator: Actor) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if r.queue.is_none() {
            return Ok(Success::Done);
        }
        // READING: dropping a queue emits only `QueueDropped`, not one
        // `QueueRemoved` per element.
        self.commit_queue(
            now,
            room,
            operator,
            None,
            vec![Change::QueueDropped],
            &Notify::default(),
        );
        Ok(Success::Done)
    }

    /// The high-priority budget check, just before a change is applied.
    fn late_budget(&self, room: &str, now: Millis, notify: &Notify) -> Result<(), Rejection> {
        if self.over_high_budget(room, now, notify) {
            return Err(Rejection::NotificationBudget);
        }
        Ok(())
    }

    /// Empty and too-long batches.
    fn check_batch_len(len: usize, max: u32) -> Result<(), Rejection> {
        if len == 0 {
            return Err(Rejection::Empty);
        }
        if len > max as usize {
            return Err(Rejection::TooManyOps { max });
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn queue_offer(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        key: Str,
        value: Str,
        transient: bool,
        notify: Notify,
    ) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        self.check_ext(&notify)?;
        if transient {
            if let Actor::User(u) = &operator {
                if !r.is_present(u) {
                    return Err(Rejection::NotInRoom);
                }
            }
        }
        self.check_element(&key, &value)
            .map_err(|error| Rejection::Op { index: 0, error })?;
        let (mut q, created) = self.queue_or_new(r);
        let element = QueueElement {
            key: key.clone(),
            value: value.clone(),
            owner: operator.clone(),
            transient,
        };
        let pos = q.elements.iter().position(|e| e.key == key);
        if pos.is_none() && q.elements.len() >= q.capacity as usize {
            return Err(Rejection::Op {
                index: 0,
                error: OpError::QueueFull,
            });
        }
        self.late_budget(room, now, &notify)?;
        match pos {
            Some(p) => q.elements[p] = element,
            None => q.elements.push(element),
        }
        let mut changes = Vec::new();
        if created {
            changes.push(Change::QueueInit {
                capacity: q.capacity,
            });
        }
        changes.push(Change::QueueSet {
            key,
            value,
            owner: operator.clone(),
            transient,
        });
        self.commit_queue(now, room, operator, Some(q), changes, &notify);
        // READING: a single offer answers `Done`.
        Ok(Success::Done)
    }

    fn queue_batch_offer(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        elements: Vec<NewElement>,
        transient: bool,
        notify: Notify,
    ) -> Outcome {
        let ql = self.profile.limits.queue;
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        Self::check_batch_len(elements.len(), ql.max_batch_offer)?;
        self.check_ext(&notify)?;
        let (mut q, created) = self.queue_or_new(r);
        let mut changes = Vec::new();
        let mut failed = Vec::new();
        let mut applied = 0u32;
        for (i, e) in elements.iter().enumerate() {
            let index = i;
            // NetEase batch offer is best effort (SPEC §4): a bad key or
            // value fails alone, first of the element's checks.
            if let Err(error) = self.check_element(&e.key, &e.value) {
                failed.push(OpFailure {
                    index,
                    key: e.key.clone(),
                    error,
                });
                continue;
            }
            let owner = match &e.owner {
                Some(u) => Actor::User(u.clone()),
                None => operator.clone(),
            };
            // READING: an `Admin` owner (operator `Admin`, no owner named)
            // passes the owner check.
            if let Actor::User(u) = &owner {
                if !r.is_present(u) && r.creator != *u {
                    failed.push(OpFailure {
                        index,
                        key: e.key.clone(),
                        error: OpError::OwnerNotInRoom,
                    });
                    continue;
                }
            }
            let pos = q.elements.iter().position(|x| x.key == e.key);
            if pos.is_none() && q.elements.len() >= q.capacity as usize {
                failed.push(OpFailure {
                    index,
                    key: e.key.clone(),
                    error: OpError::QueueFull,
                });
                continue;
            }
            let t = e.transient.unwrap_or(transient);
            let element = QueueElement {
                key: e.key.clone(),
                value: e.value.clone(),
                owner: owner.clone(),
                transient: t,
            };
            match pos {
                Some(p) => q.elements[p] = element,
                None => q.elements.push(element),
            }
            changes.push(Change::QueueSet {
                key: e.key.clone(),
                value: e.value.clone(),
                owner,
                transient: t,
            });
            applied += 1;
        }
        let seq = r.seq;
        // A batch offer in which every element failed changes nothing: the
        // queue is not created, no event, no number.
        if applied == 0 {
            return Ok(Success::QueueBatch(BatchReport {
                seq,
                applied,
                failed,
            }));
        }
        self.late_budget(room, now, &notify)?;
        if created {
            changes.insert(
                0,
                Change::QueueInit {
                    capacity: q.capacity,
                },
            );
        }
        self.commit_queue(now, room, operator, Some(q), changes, &notify);
        Ok(Success::QueueBatch(BatchReport {
            seq: seq + 1,
            applied,
            failed,
        }))
    }

    fn queue_batch_update(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        elements: Vec<(Str, Str)>,
        notify: Notify,
    ) -> Outcome {
        let ql = self.profile.limits.queue;
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        let permitted = match &operator {
            Actor::Admin => true,
            Actor::User(u) => matches!(r.role(u), Role::Admin | Role::Creator),
        };
        Self::check_batch_len(elements.len(), ql.max_batch_update)?;
        self.check_ext(&notify)?;
        if !permitted {
            return Err(Rejection::NoPermission);
        }
        self.check_update_elements(&elements)?;
        let mut q = r.queue.clone();
        let mut changes = Vec::new();
        let mut failed = Vec::new();
        let mut applied = 0u32;
        for (i, (k, v)) in elements.iter().enumerate() {
            let index = i;
            let found = q
                .as_mut()
                .and_then(|q| q.elements.iter_mut().find(|e| e.key == *k));
            let Some(e) = found else {
                failed.push(OpFailure {
                    index,
                    key: k.clone(),
                    error: OpError::NotFound,
                });
                continue;
            };
            e.value = v.clone();
            e.owner = operator.clone();
            changes.push(Change::QueueSet {
                key: k.clone(),
                value: v.clone(),
                owner: operator.clone(),
                transient: e.transient,
            });
            applied += 1;
        }
        let seq = r.seq;
        if applied == 0 {
            return Ok(Success::QueueBatch(BatchReport {
                seq,
                applied,
                failed,
            }));
        }
        self.late_budget(room, now, &notify)?;
        self.commit_queue(now, room, operator, q, changes, &notify);
        Ok(Success::QueueBatch(BatchReport {
            seq: seq + 1,
            applied,
            failed,
        }))
    }

    fn check_update_elements(&self, elements: &[(Str, Str)]) -> Result<(), Rejection> {
        for (i, (k, v)) in elements.iter().enumerate() {
            self.check_element(k, v)
                .map_err(|error| Rejection::Op { index: i, error })?;
        }
        Ok(())
    }

    fn queue_list(&self, room: &str) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        Ok(Success::Elements(ElementsReport {
            seq: r.seq,
            elements: r.queue.as_ref().map_or(Vec::new(), |q| q.elements.clone()),
        }))
    }

    fn queue_poll(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        key: Option<Str>,
        notify: Notify,
    ) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        self.check_ext(&notify)?;
        let mut q = r.queue.clone();
        let elements = q.as_mut().map(|q| &mut q.elements);
        // A polled key is not validated: it is a lookup.
        let pos = match (&key, &elements) {
            (Some(k), Some(els)) => els.iter().position(|e| e.key == *k),
            (Some(_), None) => None,
            (None, Some(els)) if !els.is_empty() => Some(0),
            (None, _) => None,
        };
        let (Some(p), Some(els)) = (pos, elements) else {
            return Err(match key {
                Some(_) => Rejection::Op {
                    index: 0,
                    error: OpError::NotFound,
                },
                None => Rejection::QueueEmpty,
            });
        };
        self.late_budget(room, now, &notify)?;
        let removed = els.remove(p);
        self.commit_queue(
            now,
            room,
            operator,
            q,
            vec![Change::QueueRemoved {
                key: removed.key.clone(),
            }],
            &notify,
        );
        Ok(Success::Polled(removed))
    }

    fn queue_multi_get(&self, room: &str, keys: Vec<Str>) -> Outcome {
        let max = self.profile.limits.queue.max_multi_get;
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if keys.is_empty() {
            return Err(Rejection::Empty);
        }
        if keys.len() > max as usize {
            return Err(Rejection::TooManyOps { max });
        }
        // READING: a key asked twice is returned twice ("in the order asked").
        let elements = match &r.queue {
            None => Vec::new(),
            Some(q) => keys
                .iter()
                .filter_map(|k| q.elements.iter().find(|e| e.key == *k).cloned())
                .collect(),
        };
        Ok(Success::Elements(ElementsReport {
            seq: r.seq,
            elements,
        }))
    }

    // ----- locks ----------------------------------------------------------

    /// A valid lock name for the profile.
    fn lock_name_ok(&self, name: &str) -> bool {
        let l = self.profile.limits.locks;
        !name.is_empty()
            && name.len() <= l.max_name_len as usize
            && name.chars().all(|c| c.is_ascii_graphic())
    }

    /// Arms or clears the deadlines of the locks `user` holds in `room`:
    /// set (if not yet) while present with no live connection, else none.
    fn sync_lock_deadlines(&mut self, room: &str, user: &str, now: Millis) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let (present, live) = r
            .members
            .get(user)
            .map_or((false, 0), |c| (c.live + c.dropped > 0, c.live));
        for l in &mut r.locks {
            if l.holder.as_deref() != Some(user) {
                continue;
            }
            if present && live == 0 {
                if l.deadline.is_none() {
                    l.deadline = Some(now.saturating_add(l.ttl_ms.max(1)));
                }
            } else {
                l.deadline = None;
            }
        }
    }

    /// Takes lock `name` in `room` from its holder and gives it to the
    /// first waiter, pushing the changes.
    fn release_lock_in(
        &mut self,
        now: Millis,
        room: &str,
        name: &str,
        expired: bool,
        changes: &mut Vec<Change>,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(l) = r.locks.iter_mut().find(|l| l.name == name) else {
            return;
        };
        let Some(holder) = l.holder.take() else {
            return;
        };
        l.deadline = None;
        changes.push(if expired {
            Change::LockExpired {
                name: l.name.clone(),
                holder,
            }
        } else {
            Change::LockReleased {
                name: l.name.clone(),
                holder,
            }
        });
        if l.waiters.is_empty() {
            return;
        }
        let next = l.waiters.remove(0);
        l.token += 1;
        l.holder = Some(next.clone());
        changes.push(Change::LockAcquired {
            name: l.name.clone(),
            holder: next.clone(),
            token: l.token,
        });
        self.sync_lock_deadlines(room, &next, now);
    }

    fn set_lock(&mut self, now: Millis, room: &str, name: Str, ttl_ms: u64) -> Outcome {
        let limits = self.profile.limits.locks;
        let name_ok = self.lock_name_ok(&name);
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if !name_ok {
            return Err(Rejection::InvalidLockName);
        }
        if r.locks.iter().any(|l| l.name == name) {
            return Err(Rejection::LockExists);
        }
        if r.locks.len() >= limits.max_per_room as usize {
            return Err(Rejection::LockCountLimit {
                max: limits.max_per_room,
            });
        }
        let ttl_ms = ttl_ms.max(limits.min_ttl_ms).min(limits.max_ttl_ms);
        r.locks.push(ModelLock {
            name: name.clone(),
            ttl_ms,
            holder: None,
            token: 0,
            deadline: None,
            waiters: Vec::new(),
        });
        self.emit_plain(
            now,
            room,
            Actor::Admin,
            Cause::Written,
            vec![Change::LockSet { name, ttl_ms }],
        );
        Ok(Success::Done)
    }

    /// The common checks: room, then name.
    fn lock_room(&self, room: &str, name: &str) -> Result<&ModelRoom, Rejection> {
        let r = self.rooms.get(room).ok_or(Rejection::RoomNotFound)?;
        if !self.lock_name_ok(name) {
            return Err(Rejection::InvalidLockName);
        }
        Ok(r)
    }

    fn remove_lock(&mut self, now: Millis, room: &str, name: &str) -> Outcome {
        let r = self.lock_room(room, name)?;
        let Some(i) = r.locks.iter().position(|l| l.name == name) else {
            return Err(Rejection::LockNotFound);
        };
        let r = self.rooms.get_mut(room).unwrap();
        let l = r.locks.remove(i);
        self.emit_plain(
            now,
            room,
            Actor::Admin,
            Cause::Written,
            vec![Change::LockRemoved { name: l.name }],
        );
        Ok(Success::Done)
    }

    fn acquire_lock(
        &mut self,
        now: Millis,
        room: &str,
        name: &str,
        user: Str,
        retry: bool,
    ) -> Outcome {
        let r = self.lock_room(room, name)?;
        let Some(l) = r.locks.iter().find(|l| l.name == name) else {
            return Err(Rejection::LockNotFound);
        };
        if !r.is_present(&user) {
            return Err(Rejection::NotInRoom);
        }
        match &l.holder {
            Some(h) if *h == user => {
                return Ok(Success::Acquired(Acquisition::Granted { token: l.token }))
            }
            Some(_) if !retry => return Err(Rejection::LockHeld),
            Some(_) => {
                let r = self.rooms.get_mut(room).unwrap();
                let l = r.locks.iter_mut().find(|l| l.name == name).unwrap();
                if !l.waiters.contains(&user) {
                    l.waiters.push(user.clone());
                }
                let position = l.waiters.iter().position(|w| *w == user).unwrap() + 1;
                return Ok(Success::Acquired(Acquisition::Waiting {
                    position: u32::try_from(position).unwrap(),
                }));
            }
            None => {}
        }
        let r = self.rooms.get_mut(room).unwrap();
        let l = r.locks.iter_mut().find(|l| l.name == name).unwrap();
        l.token += 1;
        l.holder = Some(user.clone());
        let token = l.token;
        self.sync_lock_deadlines(room, &user, now);
        self.emit_plain(
            now,
            room,
            Actor::User(user.clone()),
            Cause::Written,
            vec![Change::LockAcquired {
                name: Str::from(name),
                holder: user,
                token,
            }],
        );
        Ok(Success::Acquired(Acquisition::Granted { token }))
    }

    fn revoke_lock(
        &mut self,
        now: Millis,
        room: &str,
        name: &str,
        owner: &Str,
        operator: Actor,
    ) -> Outcome {
        let r = self.rooms.get(room).ok_or(Rejection::RoomNotFound)?;
        if let Actor::User(u) = &operator {
            if !matches!(r.role(u), Role::Admin | Role::Creator) {
                return Err(Rejection::NoPermission);
            }
        }
        self.take_lock(now, room, name, owner, operator)
    }

    /// A release by the holder, or a revoke.
    fn take_lock(
        &mut self,
        now: Millis,
        room: &str,
        name: &str,
        holder: &Str,
        operator: Actor,
    ) -> Outcome {
        let r = self.lock_room(room, name)?;
        let Some(l) = r.locks.iter().find(|l| l.name == name) else {
            return Err(Rejection::LockNotFound);
        };
        if l.holder.as_ref() != Some(holder) {
            return Err(Rejection::LockNotAcquired);
        }
        let mut changes = Vec::new();
        self.release_lock_in(now, room, name, false, &mut changes);
        self.emit_plain(now, room, operator, Cause::Written, changes);
        Ok(Success::Done)
    }

    fn get_locks(&self, room: &str) -> Outcome {
        let r = self.rooms.get(room).ok_or(Rejection::RoomNotFound)?;
        Ok(Success::Locks(LocksReport {
            seq: r.seq,
            locks: r
                .locks
                .iter()
                .map(|l| LockInfo {
                    name: l.name.clone(),
                    ttl_ms: l.ttl_ms,
                    holder: l.holder.clone(),
                    token: l.token,
                    expires_at: l.deadline,
                    waiters: l.waiters.clone(),
                })
                .collect(),
        }))
    }
}

// ----- counters -----------------------------------------------------------

impl Model {
    fn writer_may(&self, r: &ModelRoom, operator: &Actor) -> Result<(), Rejection> {
        if let Actor::User(u) = operator {
            if self.profile.rules.writer_must_be_member && !r.is_present(u) {
                return Err(Rejection::NotInRoom);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn counter(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        key: Str,
        op: CounterOp,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Outcome {
        let limits = self.profile.limits;
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        let key_error = if key.is_empty() {
            Some(OpError::KeyEmpty)
        } else if key.len() > limits.max_counter_key_len as usize {
            Some(OpError::KeyTooLong)
        } else {
            None
        };
        if let Some(error) = key_error {
            return Err(Rejection::Op { index: 0, error });
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                return Err(Rejection::InvalidParameter);
            }
        }
        self.writer_may(r, &operator)?;
        let current = r.counters.get(&key).copied();
        if current.is_none() {
            if let Some(m) = limits.max_counters_per_room {
                if r.counters.len() + 1 > m as usize {
                    return Err(Rejection::Op {
                        index: 0,
                        error: OpError::KeyCountLimit,
                    });
                }
            }
        }
        // Wide arithmetic, then a range check: obviously right.
        let before = i128::from(current.unwrap_or(0));
        let after: i128 = match op {
            CounterOp::Set(v) => i128::from(v),
            CounterOp::Increase(d) => before + i128::from(d),
            CounterOp::Decrease(d) => before - i128::from(d),
        };
        let Ok(value) = i64::try_from(after) else {
            return Err(Rejection::CounterOverflow);
        };
        if min.is_some_and(|lo| value < lo) || max.is_some_and(|hi| value > hi) {
            return Err(Rejection::CounterOutOfBounds);
        }
        let r = self.rooms.get_mut(room).unwrap();
        r.counters.insert(key.clone(), value);
        self.emit_plain(
            now,
            room,
            operator,
            Cause::Written,
            vec![Change::CounterChanged { key, value }],
        );
        let seq = self.rooms[room].seq;
        Ok(Success::Counter { seq, value })
    }

    fn counter_delete(
        &mut self,
        now: Millis,
        room: &str,
        operator: Actor,
        keys: Option<Vec<Str>>,
    ) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if keys.as_ref().is_some_and(|k| k.is_empty()) {
            return Err(Rejection::Empty);
        }
        self.writer_may(r, &operator)?;
        let r = self.rooms.get_mut(room).unwrap();
        let doomed: Vec<Str> = r
            .counters
            .keys()
            .filter(|k| keys.as_ref().is_none_or(|ks| ks.contains(k)))
            .cloned()
            .collect();
        if doomed.is_empty() {
            return Ok(Success::Done);
        }
        for k in &doomed {
            r.counters.remove(k);
        }
        let changes = doomed
            .into_iter()
            .map(|key| Change::CounterDeleted { key })
            .collect();
        self.emit_plain(now, room, operator, Cause::Written, changes);
        Ok(Success::Done)
    }

    fn counter_read(&self, room: &str, keys: Option<Vec<Str>>) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if keys.as_ref().is_some_and(|k| k.is_empty()) {
            return Err(Rejection::Empty);
        }
        let counters = r
            .counters
            .iter()
            .filter(|(k, _)| keys.as_ref().is_none_or(|ks| ks.contains(k)))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        Ok(Success::Counters(CountersReport {
            seq: r.seq,
            counters,
        }))
    }
}

// ----- catch-up -------------------------------------------------------------

impl Model {
    fn since(&self, room: &str, seq: u64) -> Outcome {
        let Some(r) = self.rooms.get(room) else {
            return Err(Rejection::RoomNotFound);
        };
        if seq > r.seq {
            return Err(Rejection::InvalidParameter);
        }
        if seq < r.covered_from {
            return Err(Rejection::HistoryTruncated {
                oldest: r.covered_from,
            });
        }
        let events = r
            .history
            .iter()
            .filter(|(e, _)| e.seq > seq)
            .map(|(e, _)| e.clone())
            .collect();
        Ok(Success::Events(EventsReport { seq: r.seq, events }))
    }
}

/// Whether a command is an API request that takes a token of the request
/// rate: everything but membership, room lifecycle and ticks (crate docs,
/// `Command::is_rate_limited`; read here by exclusion, not through the
/// engine's own list).
fn counts_against_the_rate(command: &Command) -> bool {
    !matches!(
        command,
        Command::CreateRoom { .. }
            | Command::DestroyRoom { .. }
            | Command::Join { .. }
            | Command::Leave { .. }
            | Command::Disconnect { .. }
            | Command::Exit { .. }
            | Command::SetRole { .. }
            | Command::Tick
    )
}

/// The operator a command names, read from its fields (not through the
/// engine's `Command::operator`, so that a command missing there shows up
/// as a difference).
fn operator(command: &Command) -> Option<&Actor> {
    match command {
        Command::Write(w) => Some(&w.operator),
        Command::RevokeLock { operator, .. }
        | Command::QueueInit { operator, .. }
        | Command::QueueDrop { operator, .. }
        | Command::QueueOffer { operator, .. }
        | Command::QueueBatchOffer { operator, .. }
        | Command::QueueBatchUpdate { operator, .. }
        | Command::QueuePoll { operator, .. }
        | Command::Counter { operator, .. }
        | Command::CounterDelete { operator, .. } => Some(operator),
        _ => None,
    }
}
