//! The engine: many rooms, one entry point. This file holds the state and
//! the dispatch; each concept's rules live in the file named after it:
//! [`membership`] (rooms, joins, leaves, roles, exits), [`attributes`]
//! (writes and reads), [`queue`], [`expiry`] (grace periods), [`locks`]
//! (locks, their deadlines and fencing), and [`invariants`] (the
//! self-check).

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;

use crate::command::{Actor, Command, Notify};
use crate::error::Rejection;
use crate::event::{Cause, Change, Event};
use crate::flow::TokenBucket;
use crate::outcome::{BatchReport, OpFailure, Outcome, Success};
use crate::profile::Profile;
use crate::room::{Room, Rooms};
use crate::text::Str;
use crate::time::Millis;

use crate::view::RoomView;

mod attributes;
mod counters;
mod expiry;
mod history;
mod invariants;
mod locks;
mod membership;
mod queue;
mod ttl;
mod warm;

/// The room-state engine. See the [crate docs](crate) for the drive loop
/// and the rules it applies.
pub struct Engine {
    pub(crate) profile: Profile,
    pub(crate) rooms: Rooms,
    pub(crate) now: Millis,
    pub(crate) out: Output,
    pub(crate) bucket: TokenBucket,
    /// Key TTL deadlines, in firing order (see [`ttl`]).
    pub(crate) ttls: ttl::TtlTimers,
    /// Sum of all rooms' attribute value bytes.
    pub(crate) value_bytes: u64,
    /// Grace deadlines: `(deadline, room, user)`, in firing order.
    pub(crate) timers: BTreeSet<(Millis, Str, Str)>,
    /// Lock deadlines: `(deadline, room, lock name)`, in firing order.
    pub(crate) lock_timers: locks::LockTimers,
}

/// What the engine emits, and the buffers it reuses to emit it.
#[derive(Default)]
pub(crate) struct Output {
    pub(crate) events: VecDeque<Event>,
    /// Emptied change lists, handed back through [`Engine::recycle`].
    spare: Vec<Vec<Change>>,
    /// Working memory (an exit's owned entries, a compaction's order),
    /// reused.
    pub(crate) scratch: crate::store::Scratch,
    /// A write's dry-run overlay, reused.
    pub(crate) overlay: attributes::Overlay,
    /// An event's encoding on its way into the room's history, reused.
    pub(crate) encoded: Vec<u8>,
}

/// Change lists kept for reuse, at most: enough for a server that drains
/// and recycles after every few commands (more are dropped, not kept).
pub const MAX_SPARE_CHANGE_LISTS: usize = 32;
/// Capacity above which a change list is not kept (an exit of a user who
/// owned many keys should not pin that memory). The pool holds at most
/// `MAX_SPARE_CHANGE_LISTS × MAX_SPARE_CHANGES` changes' worth of memory.
pub const MAX_SPARE_CHANGES: usize = 16;
/// Events the outgoing queue keeps room for once it is empty. A burst (a
/// tick that expired many deadlines, a caller that drains rarely) grows
/// it; what is past this is given back when the burst has been drained.
/// A caller that lets more than this pile up between drains has the queue
/// grow again each time (a few reallocations); one that drains after each
/// command, or each batch of fewer events, allocates nothing for it.
pub const KEEP_EVENT_SLOTS: usize = 64;

impl Output {
    /// An empty change list, reused if one was handed back.
    pub(crate) fn changes(&mut self) -> Vec<Change> {
        self.spare.pop().unwrap_or_default()
    }

    /// A change list holding `change`.
    pub(crate) fn one(&mut self, change: Change) -> Vec<Change> {
        let mut v = self.changes();
        v.push(change);
        v
    }

    /// Called once the outgoing queue is empty: a burst's capacity past
    /// [`KEEP_EVENT_SLOTS`] is given back. The queue's front moves one
    /// slot per event, so once a burst had grown the queue, each event was
    /// written into a slot untouched for as long as the burst was long (in
    /// the benchmarks' mixed workload, set up without draining, a
    /// last-level cache miss per event); within `KEEP_EVENT_SLOTS` slots
    /// the front stays in cache.
    fn emptied(&mut self) {
        if self.events.capacity() > KEEP_EVENT_SLOTS {
            self.events.shrink_to(KEEP_EVENT_SLOTS);
        }
    }

    fn give_back(&mut self, mut changes: Vec<Change>) {
        if self.spare.len() < MAX_SPARE_CHANGE_LISTS && changes.capacity() <= MAX_SPARE_CHANGES {
            changes.clear();
            self.spare.push(changes);
        }
    }
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

impl Engine {
    /// An engine with no rooms, applying `profile`.
    #[must_use]
    pub fn new(profile: Profile) -> Engine {
        Engine {
            profile,
            rooms: Rooms::default(),
            now: Millis::ZERO,
            out: Output::default(),
            bucket: TokenBucket::full(profile.limits.request_rate),
            ttls: ttl::TtlTimers::new(),
            value_bytes: 0,
            timers: BTreeSet::new(),
            lock_timers: BTreeSet::new(),
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

    /// Every room, as borrowed views, for listings and metrics. The order
    /// is the room table's, unspecified and different between processes:
    /// sort by [`RoomView::id`] where order matters (nothing the engine
    /// itself emits depends on it).
    pub fn rooms(&self) -> impl Iterator<Item = RoomView<'_>> + '_ {
        self.rooms.iter().map(|room| RoomView { room })
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
            Command::SetLock { room, name, ttl_ms } => self.set_lock(now, &room, name, ttl_ms),
            Command::RemoveLock { room, name } => self.remove_lock(now, &room, &name),
            Command::AcquireLock {
                room,
                name,
                user,
                retry,
            } => self.acquire_lock(now, &room, &name, user, retry),
            Command::ReleaseLock { room, name, user } => self.release_lock(now, &room, &name, user),
            Command::RevokeLock {
                room,
                name,
                owner,
                operator,
            } => self.revoke_lock(now, &room, &name, &owner, operator),
            Command::GetLocks { room } => self.get_locks(&room),
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
            Command::CounterRead { room, keys } => self.counter_read(&room, keys.as_deref()),
            Command::Since { room, seq } => self.since(&room, seq),
            Command::Tick => Ok(Success::Done),
        }
    }

    // ----- output -----

    /// The oldest undelivered event.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.out.events.pop_front();
        if self.out.events.is_empty() {
            self.out.emptied();
        }
        event
    }

    /// Appends every undelivered event to `out`, oldest first.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) {
        // Most commands emit one event (or none): moved on its own.
        if self.out.events.len() <= 1 {
            if let Some(event) = self.out.events.pop_front() {
                out.push(event);
                self.out.emptied();
            }
            return;
        }
        // Otherwise in bulk rather than one event at a time: the queue becomes a
        // `Vec` in place (it is contiguous unless it wrapped), its events
        // move over in one copy, and its emptied buffer becomes the queue
        // again. Nothing is allocated once `out` has the room.
        let mut drained = Vec::from(core::mem::take(&mut self.out.events));
        out.append(&mut drained);
        self.out.events = VecDeque::from(drained);
        self.out.emptied();
    }

    /// Empties `events`, handing their change lists back to the engine for
    /// reuse. A caller that drains into a buffer, handles the events and
    /// then recycles them makes writes, deletes and exits allocate nothing
    /// in steady state; a caller that keeps its events simply doesn't
    /// recycle them.
    pub fn recycle(&mut self, events: &mut Vec<Event>) {
        // The lists are taken out and the events dropped where they lie.
        for e in events.iter_mut() {
            self.out.give_back(core::mem::take(&mut e.changes));
        }
        events.clear();
    }

    /// When the engine next needs a [`Command::Tick`] (the earliest grace,
    /// lock or key TTL deadline), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        [
            self.timers.first().map(|(at, ..)| *at),
            self.lock_timers.first().map(|(at, ..)| *at),
            self.ttls.first().map(|(at, ..)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Advances the room's sequence number and, unless `notify` says not to,
/// emits one event with the delivery class its flow budget gives.
#[allow(clippy::too_many_arguments)] // the parts of an event
fn commit(
    out: &mut Output,
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
    if changes.iter().any(|c| {
        matches!(
            c,
            Change::AttributeSet { .. } | Change::AttributeDeleted { .. }
        )
    }) {
        // The major revision: the seq of the last event that changed an
        // attribute, whatever changed it (a write, an exit, an expiry).
        room.attr_rev = room.seq;
    }
    let (high, ext) = match notify {
        Some(n) if !n.notify => {
            // Silent: no event, so no catch-up may cross this number.
            room.history.restart_at(room.seq);
            out.give_back(changes);
            return;
        }
        Some(n) => (n.high, n.ext),
        None => (None, None),
    };
    let delivery = room
        .flow
        .classify(now, profile.limits.notification_flow, high);
    let event = Event {
        room: room.id.clone(),
        seq: room.seq,
        at: now,
        operator,
        cause,
        delivery,
        ext,
        changes,
    };
    room.history.record(
        &event,
        profile.limits.history_events,
        profile.limits.history_bytes,
        &mut out.encoded,
    );
    out.events.push_back(event);
}

/// [`commit`] of an event of one change, notified by the profile's
/// defaults: the shape of most commands.
fn commit_one(
    out: &mut Output,
    profile: &Profile,
    room: &mut Room,
    now: Millis,
    operator: Actor,
    cause: Cause,
    change: Change,
) {
    let changes = out.one(change);
    commit(out, profile, room, now, operator, cause, changes, None);
}

/// Ends a queue batch of `n` elements: one event for its changes (none if
/// nothing was applied) and the per-element report.
#[allow(clippy::too_many_arguments)] // the parts of an event and a report
fn batch_done(
    out: &mut Output,
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
    if applied == 0 {
        out.give_back(changes);
    } else {
        commit(
            out,
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

#[cfg(feature = "serde")]
pub(crate) use attributes::check_key;
#[cfg(feature = "serde")]
pub(crate) use queue::check_element;

pub(crate) use history::events_since;

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests
mod tests {
    use super::{Output, KEEP_EVENT_SLOTS, MAX_SPARE_CHANGES, MAX_SPARE_CHANGE_LISTS};
    use crate::command::Command;
    use crate::event::{Change, Event};
    use crate::profile::Profile;
    use crate::time::Millis;
    use crate::Engine;
    use alloc::format;
    use alloc::vec::Vec;

    /// An engine holding `n` undelivered events: a room created, then
    /// `n - 1` joins.
    fn burst(n: usize) -> Engine {
        let mut engine = Engine::new(Profile::netease());
        let now = Millis(1);
        let created = engine.handle(
            now,
            Command::CreateRoom {
                room: "r".into(),
                creator: "c".into(),
            },
        );
        assert!(created.is_ok());
        for i in 1..n {
            let joined = engine.handle(
                now,
                Command::Join {
                    room: "r".into(),
                    user: format!("u{i}").as_str().into(),
                },
            );
            assert!(joined.is_ok());
        }
        assert_eq!(engine.out.events.len(), n);
        engine
    }

    /// A burst grows the outgoing queue past `KEEP_EVENT_SLOTS`; draining
    /// it, in bulk or one event at a time, gives the excess back, and the
    /// events still come out whole and in order.
    #[test]
    fn a_drained_burst_gives_its_queue_capacity_back() {
        let n = 4 * KEEP_EVENT_SLOTS;
        let mut engine = burst(n);
        assert!(engine.out.events.capacity() >= n);
        let mut events = Vec::new();
        engine.drain_events(&mut events);
        assert_eq!(events.len(), n);
        assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        assert_eq!(engine.out.events.capacity(), KEEP_EVENT_SLOTS);

        let mut engine = burst(n);
        let mut polled: Vec<Event> = Vec::new();
        while let Some(e) = engine.poll_event() {
            // Kept until the queue is empty.
            assert!(engine.out.events.is_empty() || engine.out.events.capacity() >= n);
            polled.push(e);
        }
        assert_eq!(polled, events);
        assert_eq!(engine.out.events.capacity(), KEEP_EVENT_SLOTS);

        // The last event of a burst, drained on its own.
        let mut engine = burst(n);
        for _ in 1..n {
            assert!(engine.poll_event().is_some());
        }
        let mut last = Vec::new();
        engine.drain_events(&mut last);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0], events[n - 1]);
        assert_eq!(engine.out.events.capacity(), KEEP_EVENT_SLOTS);

        // One event at a time after it, as a server drains.
        let left = engine.handle(
            Millis(2),
            Command::Leave {
                room: "r".into(),
                user: "u1".into(),
            },
        );
        assert!(left.is_ok());
        let mut one = Vec::new();
        engine.drain_events(&mut one);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].seq, events[n - 1].seq + 1);
        assert_eq!(engine.out.events.capacity(), KEEP_EVENT_SLOTS);
    }

    /// A queue within `KEEP_EVENT_SLOTS` is kept as it is (no shrinking
    /// and growing again on every drain).
    #[test]
    fn a_queue_within_the_kept_slots_keeps_its_capacity() {
        let mut engine = burst(KEEP_EVENT_SLOTS);
        let cap = engine.out.events.capacity();
        assert!(cap >= KEEP_EVENT_SLOTS);
        let mut events = Vec::new();
        engine.drain_events(&mut events);
        assert_eq!(engine.out.events.capacity(), cap);
    }

    /// The recycled change lists stay within what the constants promise:
    /// at most `MAX_SPARE_CHANGE_LISTS` lists, none of more than
    /// `MAX_SPARE_CHANGES` capacity, each handed out again empty.
    #[test]
    fn the_spare_change_lists_stay_bounded() {
        let mut out = Output::default();
        let big = Vec::<Change>::with_capacity(MAX_SPARE_CHANGES + 1);
        out.give_back(big);
        assert!(out.spare.is_empty(), "a list over the capacity is dropped");
        for _ in 0..MAX_SPARE_CHANGE_LISTS + 5 {
            let mut v = Vec::with_capacity(MAX_SPARE_CHANGES);
            v.push(Change::QueueDropped);
            out.give_back(v);
        }
        assert_eq!(out.spare.len(), MAX_SPARE_CHANGE_LISTS);
        let reused = out.changes();
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), MAX_SPARE_CHANGES);
    }
}
