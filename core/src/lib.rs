//! # roomstate
//!
//! A pure, deterministic state machine for the shared state of chat and
//! live-streaming rooms: attributes with owners, an ordered queue per room,
//! membership with connection counts and roles, auto-delete on exit, and the
//! limits and semantics of five vendors (Tencent, Easemob, Agora Chat,
//! NetEase Yunxin, ZEGO). Commands go in with the time, outcomes and events
//! come out. No I/O, no clock, no randomness, no threads.
//!
//! ## The drive loop
//!
//! ```
//! use roomstate::{Actor, Command, Engine, Event, Millis, Op, Profile, Write};
//!
//! let mut engine = Engine::new(Profile::easemob());
//! let mut events: Vec<Event> = Vec::new();
//! let now = Millis(1_000);
//!
//! // 1. Every input is a command applied at `now`; each returns an outcome.
//! engine.handle(now, Command::CreateRoom { room: "r1".into(), creator: "host".into() })?;
//! engine.handle(now, Command::Join { room: "r1".into(), user: "host".into() })?;
//! let write = Write::new("r1", Actor::user("host")).op(Op::set("title", "Friday quiz"));
//! engine.handle(now, Command::Write(write))?;
//!
//! // 2. Drain the events and hand them to your transport; then give them
//! //    back, so their buffers are reused (writes, deletes and exits then
//! //    allocate nothing). Events you keep, you simply don't give back.
//! engine.drain_events(&mut events);
//! assert_eq!(events.len(), 3); // created, joined, written
//! assert_eq!(events[2].seq, 3);
//! engine.recycle(&mut events);
//! assert!(events.is_empty());
//!
//! // 3. Ask when the engine next needs a tick, and send one then.
//! if let Some(at) = engine.poll_timeout() {
//!     let _ = engine.handle(at, Command::Tick);
//! }
//! # Ok::<(), roomstate::Rejection>(())
//! ```
//!
//! Call [`Engine::handle`] for every input, then [`Engine::drain_events`]
//! (or [`Engine::poll_event`]) and [`Engine::recycle`], then
//! [`Engine::poll_timeout`]. Reads that must not copy use [`Engine::room`],
//! which borrows ([`RoomView`], [`AttrRef`], [`ElemRef`]). Events wait in
//! the engine until drained; once drained, its queue keeps room for at
//! most [`KEEP_EVENT_SLOTS`] of them, so the memory of a burst (a tick that
//! expired many deadlines) comes back.
//!
//! ## Storage
//!
//! A room keeps each attribute (and queue element) as one fixed-size
//! record in listing order, its key and value in a per-room byte arena,
//! and a swiss table of record positions; user ids are interned per room,
//! so an owner is a `u32`, and each user's auto-delete attributes (and
//! transient elements) are a list threaded through the records, so an exit
//! costs what the user owned. A value is copied into the arena once; an
//! overwrite that fits writes in place. Overwrites, deletes and exits
//! allocate nothing in steady state when events are recycled, with one
//! exception: an event names a deleted key with a [`Str`], inline up to 22
//! bytes, so each removed key longer than that costs one allocation. `alloc_report` in `benches/`
//! measures what an attribute and a room cost.
//!
//! ## Semantics
//!
//! These are the rules of SPEC.md, plus the choices made where it and the
//! vendor documents are silent.
//!
//! **Time.** Each command carries `now`. The engine keeps the latest `now`
//! seen; an earlier one is treated as that latest one. Before any command
//! (not only [`Command::Tick`]) the engine expires what is due at `now`, so
//! the state is always that of `now`; a tick only does that.
//!
//! **Request rate.** Attribute and queue commands
//! ([`Command::is_rate_limited`]) take a token from the application's
//! bucket (`per_second` capacity, refilled continuously at `per_second`
//! tokens per 1000 ms, starting full) *before* anything else is checked; an
//! empty bucket gives [`Rejection::RateLimited`]. A request that passes the
//! rate check spends its token even if it is rejected afterwards, as a
//! vendor's gateway would.
//!
//! **Sequence numbers.** Each room has a sequence number, 0 before
//! creation. Every command that changes a room's shared state adds exactly
//! one and emits at most one event carrying the new number. Reads return
//! it. Shared state is: attributes, the queue, the set of present users, and
//! roles. A second connection of a present user, a leave that leaves
//! connections behind, a disconnect inside its grace period and a re-join
//! that cancels it change connection counts only: no event, no number. A
//! queue change with `notify: false` advances the number but emits no event.
//! A destroyed room's number is gone; a room created again starts over.
//!
//! **Events.** A room's creation emits `RoomCreated` (seq 1). A user's
//! first connection emits `MemberJoined` (cause `Membership`); a role
//! change, `RoleSet`. A write emits one event, cause `Forced` if the write
//! was forced else `Written`, with one `AttributeSet` / `AttributeDeleted`
//! per applied op in request order. An exit emits one event with cause
//! `OwnerExited`: `MemberExited`, then the user's auto-delete attributes in
//! listing order, then the user's transient queue elements in queue order.
//! Destroying a room emits one `RoomDestroyed` event (its number is the
//! room's last plus one); listeners drop everything they hold for the room.
//! Events come out in the order they happened, across rooms.
//!
//! **Membership.** A user is *present* while it holds at least one
//! connection, live or dropped-in-grace. `Join` adds a live connection; if
//! the user has dropped connections, it reclaims one of them instead (the
//! re-join cancels that drop). `Leave` removes a live connection, or a
//! dropped one if none is live. `Disconnect` turns a live connection into a
//! dropped one and (re)starts the user's grace timer at `now + grace`; all
//! the user's dropped connections expire together when it fires. With a
//! grace of 0 (or a deadline that would not lie after `now`, at the end
//! of time) a disconnect is a leave, except that an exit it causes is
//! `Disconnected` with operator `Admin`, like an expiry. Join and leave
//! events name the user as operator; kicks, expiries, role changes, room
//! creation and destruction name `Admin`. A deadline is due when `now`
//! reaches it (`now >= deadline`). `Exit` removes every connection. A
//! user whose connection count reaches zero *exits* ([`ExitKind`]). Leave,
//! disconnect and exit of a user who is not present: [`Rejection::NotInRoom`].
//! A disconnect of a present user whose connections have all dropped
//! already is a no-op (a repeated drop report). The commands that record
//! a user id (`CreateRoom`, `Join`, `SetRole`) validate ids before anything
//! else: an empty id is [`Rejection::InvalidParameter`] even for a room
//! that does not exist. A command whose operator is
//! `Actor::User("")` is `InvalidParameter` right after the rate check.
//! Every other command treats an empty id like any unknown one (a leave of
//! `""` is `NotInRoom`).
//! The creator has role `Creator` from creation but is not present until it
//! joins. `SetRole` sets `Member` or `Admin` on any user, present or not;
//! `Creator`, or any change of the creator's role, is
//! [`Rejection::InvalidParameter`]; setting the role a user has is a no-op.
//! Membership commands, room creation and destruction are the server's own
//! authority and take no operator.
//!
//! **Attribute writes.** Request-level checks, in order: rate; room exists;
//! at least one op ([`Rejection::Empty`]); at most `max_ops_per_write`
//! ([`Rejection::TooManyOps`]); a request policy where the profile's rule is
//! `Fixed` and differs from it ([`Rejection::PolicyNotAllowed`]); a user
//! operator must be present where the profile requires it
//! ([`Rejection::NotInRoom`]). The batch policy is the request's when the
//! rule is `PerRequest` and it names one, else the rule's; a batch with any
//! set uses `set_policy`, a delete-only batch `delete_policy`.
//! Then per op, in order, seeing the effects of the ops applied before it:
//! 1. key non-empty ([`OpError::KeyEmpty`]), within `max_key_len`
//!    ([`OpError::KeyTooLong`]), in the charset ([`OpError::KeyCharset`]);
//!    value within `max_value_len` ([`OpError::ValueTooLong`]);
//! 2. expectation: `Absent` needs the key absent, `Revision(n)` needs it
//!    present at revision `n`, `Present` present, else [`OpError::Conflict`];
//! 3. a delete of a missing key is [`OpError::NotFound`]; a non-forced op
//!    by a user on a key whose owner is someone else (another user, or
//!    `Admin`) is [`OpError::NotOwner`];
//! 4. for a set: a new key must fit `max_keys_per_room`
//!    ([`OpError::KeyCountLimit`]); the room's value bytes after the op must
//!    fit `max_room_value_bytes` ([`OpError::RoomSizeLimit`]) and the
//!    engine's must fit `max_engine_value_bytes`
//!    ([`OpError::EngineSizeLimit`]);
//! 5. apply: a new key is owned by the operator; an overwrite keeps its
//!    position and its owner, unless `update_owner`, or the profile's
//!    [`OwnerRule`] says the operator takes it. `auto_delete` is the op's,
//!    else the profile's default (also on overwrite). The revision becomes
//!    the event's sequence number.
//!
//! `Atomic`: the first failing op rejects the command
//! ([`Rejection::Op`]) and nothing is applied. `BestEffort`: failing ops are
//! reported, the rest applied. `StopOnError`: ops after the first failure
//! are reported [`OpError::NotAttempted`]. A delete-only batch that deleted
//! nothing is [`Rejection::NothingDeleted`] where the profile says so
//! (Tencent 100503). A batch that applied nothing emits no event.
//!
//! **Auto-delete on exit.** Each room keeps an owner index: for every user,
//! the keys of the auto-delete attributes and transient queue elements it
//! owns. An exit removes exactly those, at a cost proportional to their
//! number, not to the room's size. A key set with auto-delete by a user who
//! is not present stays until that user joins and then exits. `Admin` never
//! exits.
//!
//! **Reads** need no membership. `Read { keys: None }` lists every
//! attribute in listing order (insertion order of the key; an overwrite
//! keeps the position; delete then set appends). `Some(keys)` returns the
//! named keys that exist, each once, in listing order; `Some` of an empty
//! list is [`Rejection::Empty`], as is a multi-get of no keys.
//!
//! **Queue** (NetEase, SPEC §5). See [`Command::QueueOffer`] and its
//! siblings. A queue command's checks, in order: rate; room exists; batch
//! size ([`Rejection::Empty`], [`Rejection::TooManyOps`]); `ext` length
//! ([`Rejection::InvalidParameter`]); who may (batch update needs `Admin`,
//! or a user with role `Admin` or `Creator`: [`Rejection::NoPermission`];
//! a transient single offer by a user not present is
//! [`Rejection::NotInRoom`], NetEase 302); element shapes (key non-empty
//! and within `max_key_len`, value within `max_value_len`; no charset):
//! [`Rejection::Op`] with the element's index for a single offer and a
//! batch update, while a batch offer is best effort (SPEC §4) and a
//! malformed element fails alone, first of its checks; then per element;
//! and last the
//! high-priority budget (below). A first offer (single or batch) creates
//! the queue with `default_capacity` and its event starts with
//! `QueueInit`; a first batch offer in which every element failed creates
//! nothing. A queue batch that applied nothing emits no event and keeps the
//! sequence number. An offer of an existing key updates it in place
//! (position kept); the operator (single offer, batch update) or the
//! element's owner (batch offer) becomes its owner and the transient flag
//! is the request's (kept by batch update). A batch offer element whose
//! owner is neither present nor the creator fails with
//! [`OpError::OwnerNotInRoom`] (an `Admin` owner passes); a new key in a
//! full queue fails with [`OpError::QueueFull`]. Batch update of a missing
//! key fails with [`OpError::NotFound`]. Poll of a named key is a plain
//! lookup: a key that is not there is `Rejection::Op { index: 0, error:
//! NotFound }`; poll of the head of an empty or missing queue is
//! [`Rejection::QueueEmpty`]. `QueueInit` on an existing queue changes its
//! capacity (not below its length; the same capacity is a no-op);
//! `QueueDrop` of a missing queue is a no-op. Init and drop take no
//! notification options: their events always go out, at normal priority. List and multi-get of a
//! missing queue are empty; multi-get returns a key asked twice twice.
//! Queue values do not count toward the attribute byte totals.
//!
//! **Counters** ([`Command::Counter`], Tencent group counters). Checks,
//! in order: rate; room exists; key non-empty and within
//! `max_counter_key_len` bytes ([`Rejection::Op`] index 0); `min <= max`
//! ([`Rejection::InvalidParameter`]); a user operator present where
//! writers must be; a new key within `max_counters_per_room`; the result
//! within `i64` ([`Rejection::CounterOverflow`]) and within the bounds
//! ([`Rejection::CounterOutOfBounds`]: refused, not clamped). A missing
//! counter starts at 0. One event, cause `Written`, one `CounterChanged`.
//! Counters are listed in key order; nobody owns them, no exit removes
//! them.
//!
//! **Key TTL** ([`Op::ttl`]). A set with a TTL expires at `now + ttl`; a
//! set without one clears the key's deadline; a delete or an exit takes
//! it along. Before every command, due TTLs expire first (deadline, room,
//! key order), each in its own event (operator `Admin`, cause `Expired`,
//! one `AttributeDeleted`), then due grace periods. A TTL of 0 rejects
//! the write ([`Rejection::InvalidParameter`]).
//!
//! **Catch-up** ([`Command::Since`], [`RoomView::events_since`]). Each
//! room keeps its last `history_events` events within `history_bytes`
//! encoded bytes. `Since { seq }` returns the events after `seq`, or
//! [`Rejection::HistoryTruncated`] with the earliest number it can resume
//! from; every read returns the room's `seq`, so baseline + catch-up +
//! live events have no gap and no duplicate. Silent (`notify: false`)
//! changes have no event, so none is replayed either.
//!
//! **Notification flow.** Where the profile has a [`Flow`], each room has a
//! one-second window that opens at the first event after the previous one
//! closed. An event from a high-priority queue command is `High` while the
//! window's high count is under `high_per_second`; over it, `Downgrade`
//! treats it as normal and `Reject` rejects the command
//! ([`Rejection::NotificationBudget`]) before it changes anything. The
//! budget is judged last, and only for a command that will emit an event:
//! a `notify: false` change, or one that fails for another reason, is
//! never refused for budget; a budget of 0 refuses every such command.
//! Every other event (a downgraded one included) is `Normal` while the
//! normal count is under `normal_per_second`, else `Overflow`; a `High`
//! event spends only the high budget. Expiries, joins and writes spend the
//! budget like queue changes. Without a flow, events are `High` or
//! `Normal` as asked.
//!
//! **Locks** (Agora Signaling, plus fencing tokens). A room holds at most
//! `locks.max_per_room` locks, in creation order, each with a TTL clamped
//! into the profile's range. Checks of every lock command, in order: rate;
//! room exists; name valid ([`Rejection::InvalidLockName`]); the lock
//! exists ([`Rejection::LockNotFound`]; `SetLock`: does not,
//! [`Rejection::LockExists`], and fits the count,
//! [`Rejection::LockCountLimit`]); then who asks: an acquirer must be
//! present ([`Rejection::NotInRoom`]), a releaser must hold it and a revoke
//! must name the holder ([`Rejection::LockNotAcquired`]), a revoke is by
//! `Admin` or a user with role `Admin` or `Creator`
//! ([`Rejection::NoPermission`], checked right after the room). An
//! acquisition of a free lock takes its next fencing token (`LockAcquired`,
//! cause `Written`); of a lock the user holds, changes nothing; of a lock
//! someone else holds, is [`Rejection::LockHeld`], or with `retry` puts the
//! user at the end of the lock's line (once) with no event: the line is not
//! shared state. A release, revoke, expiry or exit of the holder hands the
//! lock to the first in line in the same event (`LockReleased` or
//! `LockExpired`, then `LockAcquired`). While the holder is present with no
//! live connection (all dropped, inside grace) its locks' TTLs run; a
//! re-join stops them; a TTL that runs out releases the lock in an event
//! of its own, cause `Expired`, operator `Admin`. An exit (leave, kick,
//! grace expiry) takes the user out of every line and releases what it
//! holds, after its attribute and queue changes, in lock order. Due lock
//! deadlines fire after the due grace deadlines, each in (deadline, room,
//! lock) order. A write may name `lock: (name, token)`
//! ([`Write::lock`]): unless its operator holds that lock with that token it
//! is [`Rejection::WriteLockNotHeld`]; and `major_revision`
//! ([`Write::major_revision`]): unless the room's attribute revision (the
//! seq of the last event that changed an attribute, 0 before any;
//! [`RoomView::major_revision`]) is that, it is
//! [`Rejection::RevisionOutdated`]. Both are checked after the membership
//! check of a write and before its ops. `Expect::Present` needs the key
//! present, at any revision.
//!
//! **Determinism.** Hash maps are used for lookup only, seeded per process
//! against collision attacks; nothing that leaves the engine (event order,
//! listing order, reports) depends on their order.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

mod command;
mod counters;
mod engine;
mod error;
mod event;
mod flow;
#[cfg(test)]
mod footprint;
mod history;
mod locks;
mod members;
mod outcome;
mod overwrite;
mod prefetch;
mod profile;
mod queue;
mod queue_builders;
mod room;
#[cfg(feature = "serde")]
mod snapshot;
#[cfg(feature = "serde")]
mod snapshot_v1;
mod stamp;
mod store;
mod text;
mod time;
mod view;

pub use command::{
    Actor, Command, CounterOp, Expect, HighPolicy, NewElement, Notify, Op, Role, Write,
};
pub use engine::{Engine, Violation, KEEP_EVENT_SLOTS, MAX_SPARE_CHANGES, MAX_SPARE_CHANGE_LISTS};
pub use error::{ErrorClass, OpError, Rejection};
pub use event::{Cause, Change, Delivery, Event, ExitKind};
pub use outcome::{
    Acquisition, Attribute, BatchReport, CountersReport, ElementsReport, EventsReport, LockInfo,
    LocksReport, OpFailure, Outcome, QueueElement, ReadReport, Success,
};
pub use profile::{
    BatchPolicy, Charset, Flow, Limits, LockLimits, OwnerRule, PolicyRule, Profile, QueueLimits,
    Rate, Rules, Unit, Vendor, VendorCode, VendorCodes, AGORA_LOCKS, DEFAULT_DISCONNECT_GRACE_MS,
    DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS, TENCENT_COUNTERS_PER_ROOM,
    TENCENT_COUNTER_KEY_BYTES,
};
pub use queue_builders::{BatchOffer, Offer, Poll};
#[cfg(feature = "serde")]
pub use snapshot::{SnapshotError, MAX_SEQ, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
pub use text::Str;
pub use time::Millis;
pub use view::{AttrRef, ElemRef, LockRef, RoomView};

/// The README's code runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
