//! Commands: everything the engine can be asked to do.

use alloc::vec::Vec;

use crate::profile::BatchPolicy;
use crate::text::Str;

/// Who performs a command, and who owns what it writes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Actor {
    /// The application's server authority (Tencent `identifier=admin`, an app
    /// token). Passes every membership, role and ownership check, but not the
    /// size limits. Never exits, so what it owns is never auto-deleted.
    Admin,
    /// A user, by id.
    User(Str),
}

impl Actor {
    /// `Actor::User` from anything that converts into a [`Str`].
    pub fn user(id: impl Into<Str>) -> Actor {
        Actor::User(id.into())
    }

    /// The user id, `None` for `Admin`.
    #[must_use]
    pub fn as_user(&self) -> Option<&Str> {
        match self {
            Actor::Admin => None,
            Actor::User(u) => Some(u),
        }
    }
}

/// A user's role in a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Role {
    /// An ordinary member (the default).
    #[default]
    Member,
    /// A room administrator (may batch-update the queue).
    Admin,
    /// The user who created the room; fixed at creation.
    Creator,
}

/// A compare-and-set expectation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this revision.
    Revision(u64),
    /// The key must exist, at any revision (Agora `updateChannelMetadata`,
    /// which fails on missing items).
    Present,
}

/// One operation of an attribute write.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Op {
    /// Create or overwrite `key`.
    Set {
        /// The key.
        key: Str,
        /// The new value.
        value: Str,
        /// Delete when the owner exits; `None` takes the profile's default.
        auto_delete: Option<bool>,
        /// Compare-and-set expectation.
        expect: Option<Expect>,
        /// Time to live in ms: the key expires at `now + ttl` (a TTL of 0,
        /// or a deadline past the end of time, is `InvalidParameter`).
        /// `None`: no deadline, and an overwrite clears the key's.
        ttl: Option<u64>,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: Str,
        /// Compare-and-set expectation.
        expect: Option<Expect>,
    },
}

impl Op {
    /// A set with the profile's auto-delete default and no expectation.
    pub fn set(key: impl Into<Str>, value: impl Into<Str>) -> Op {
        Op::Set {
            key: key.into(),
            value: value.into(),
            auto_delete: None,
            expect: None,
            ttl: None,
        }
    }

    /// A delete with no expectation.
    pub fn delete(key: impl Into<Str>) -> Op {
        Op::Delete {
            key: key.into(),
            expect: None,
        }
    }

    /// This op with a compare-and-set expectation.
    #[must_use]
    pub fn expect(mut self, e: Expect) -> Op {
        match &mut self {
            Op::Set { expect, .. } | Op::Delete { expect, .. } => *expect = Some(e),
        }
        self
    }

    /// This op (a set) with an explicit auto-delete flag; no effect on a delete.
    #[must_use]
    pub fn auto_delete(mut self, on: bool) -> Op {
        if let Op::Set { auto_delete, .. } = &mut self {
            *auto_delete = Some(on);
        }
        self
    }

    /// This op (a set) with a time to live in ms: the key is deleted at
    /// `now + ms` (cause `Expired`) unless overwritten or deleted first;
    /// no effect on a delete.
    #[must_use]
    pub fn ttl(mut self, ms: u64) -> Op {
        if let Op::Set { ttl, .. } = &mut self {
            *ttl = Some(ms);
        }
        self
    }

    /// The key the op names.
    #[must_use]
    pub fn key(&self) -> &Str {
        match self {
            Op::Set { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

/// A batch write of attributes (SPEC §4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Write {
    /// The room.
    pub room: Str,
    /// Who writes; becomes the owner of new keys.
    pub operator: Actor,
    /// The ops, applied in order.
    pub ops: Vec<Op>,
    /// Skip the ownership check (Easemob/Agora `/forced`).
    pub force: bool,
    /// Make the operator the owner of overwritten keys.
    pub update_owner: bool,
    /// Batch policy, where the profile lets the request choose (ZEGO).
    pub policy: Option<BatchPolicy>,
    /// Fencing: the write is refused with
    /// [`Rejection::WriteLockNotHeld`](crate::Rejection::WriteLockNotHeld)
    /// unless the operator holds the lock of this name with exactly this
    /// token (Agora `lockName`, plus the token).
    pub lock: Option<(Str, u64)>,
    /// Whole-set compare-and-set: the write is refused with
    /// [`Rejection::RevisionOutdated`](crate::Rejection::RevisionOutdated)
    /// unless the room's attribute revision
    /// ([`RoomView::major_revision`](crate::RoomView::major_revision)) is
    /// exactly this (Agora `majorRevision`).
    pub major_revision: Option<u64>,
}

impl Write {
    /// An empty, unforced write by `operator` in `room`.
    pub fn new(room: impl Into<Str>, operator: Actor) -> Write {
        Write {
            room: room.into(),
            operator,
            ops: Vec::new(),
            force: false,
            update_owner: false,
            policy: None,
            lock: None,
            major_revision: None,
        }
    }

    /// Adds an op.
    #[must_use]
    pub fn op(mut self, op: Op) -> Write {
        self.ops.push(op);
        self
    }

    /// Marks the write as forced.
    #[must_use]
    pub fn forced(mut self) -> Write {
        self.force = true;
        self
    }

    /// Makes the operator the owner of the keys it overwrites.
    #[must_use]
    pub fn update_owner(mut self) -> Write {
        self.update_owner = true;
        self
    }

    /// Chooses the batch policy (where the profile allows it).
    #[must_use]
    pub fn policy(mut self, p: BatchPolicy) -> Write {
        self.policy = Some(p);
        self
    }

    /// Fences the write with a lock: refused unless the operator holds
    /// lock `name` with fencing token `token`.
    #[must_use]
    pub fn lock(mut self, name: impl Into<Str>, token: u64) -> Write {
        self.lock = Some((name.into(), token));
        self
    }

    /// Refuses the whole write unless the room's attribute revision is
    /// `revision` (Agora channel-metadata compare-and-set).
    #[must_use]
    pub fn major_revision(mut self, revision: u64) -> Write {
        self.major_revision = Some(revision);
        self
    }
}

/// What to do with a high-priority notification over its budget (NetEase
/// `highPriorityPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum HighPolicy {
    /// Send it as a normal notification (NetEase default).
    #[default]
    Downgrade,
    /// Reject the command before it changes anything (NetEase 416).
    Reject,
}

/// Notification options of a queue change (NetEase `needNotify`,
/// `notifyExt`, `highPriority`, `highPriorityPolicy`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Notify {
    /// Emit an event. `false`: the change still advances the room's sequence
    /// number, but no event is produced.
    pub notify: bool,
    /// Extension string carried on the event (≤ `max_ext_chars`).
    pub ext: Option<Str>,
    /// `Some` for a high-priority notification, with its over-budget policy.
    pub high: Option<HighPolicy>,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify {
            notify: true,
            ext: None,
            high: None,
        }
    }
}

impl Notify {
    /// A normal-priority notification (the default).
    #[must_use]
    pub fn normal() -> Notify {
        Notify::default()
    }

    /// A high-priority notification, downgraded to normal over the room's
    /// high budget (NetEase's default policy).
    #[must_use]
    pub fn high() -> Notify {
        Notify {
            high: Some(HighPolicy::Downgrade),
            ..Notify::default()
        }
    }

    /// A high-priority notification that is refused over the room's high
    /// budget ([`Rejection::NotificationBudget`](crate::Rejection::NotificationBudget)).
    #[must_use]
    pub fn high_or_reject() -> Notify {
        Notify {
            high: Some(HighPolicy::Reject),
            ..Notify::default()
        }
    }

    /// No event: the change still advances the room's sequence number.
    #[must_use]
    pub fn silent() -> Notify {
        Notify {
            notify: false,
            ..Notify::default()
        }
    }

    /// This notification with an extension string.
    #[must_use]
    pub fn ext(mut self, ext: impl Into<Str>) -> Notify {
        self.ext = Some(ext.into());
        self
    }
}

/// One element of a queue batch offer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NewElement {
    /// Element key.
    pub key: Str,
    /// Element value.
    pub value: Str,
    /// Owning user; `None` means the operator.
    pub owner: Option<Str>,
    /// Removed when the owner exits; `None` takes the batch's flag.
    pub transient: Option<bool>,
}

impl NewElement {
    /// An element owned by the batch's operator, with the batch's
    /// `transient` flag.
    pub fn new(key: impl Into<Str>, value: impl Into<Str>) -> NewElement {
        NewElement {
            key: key.into(),
            value: value.into(),
            owner: None,
            transient: None,
        }
    }

    /// This element owned by `user`.
    #[must_use]
    pub fn owner(mut self, user: impl Into<Str>) -> NewElement {
        self.owner = Some(user.into());
        self
    }

    /// This element with its own `transient` flag.
    #[must_use]
    pub fn transient(mut self, on: bool) -> NewElement {
        self.transient = Some(on);
        self
    }
}

/// What a [`Command::Counter`] does to its counter (Tencent's `Mode`:
/// `Set`, `Increase`, `Decrease`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum CounterOp {
    /// Set the value.
    Set(i64),
    /// Add to the value (a missing counter starts at 0).
    Increase(u64),
    /// Subtract from the value (a missing counter starts at 0).
    Decrease(u64),
}

/// A command, applied with [`Engine::handle`](crate::Engine::handle).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Command {
    /// Create an empty room; `creator` gets the `Creator` role (but is not
    /// connected until it joins).
    CreateRoom {
        /// Room id (non-empty).
        room: Str,
        /// Creator's user id (non-empty).
        creator: Str,
    },
    /// Drop a room with its attributes, queue and members, in one event.
    DestroyRoom {
        /// Room id.
        room: Str,
    },
    /// Add one connection of `user`.
    Join {
        /// Room id.
        room: Str,
        /// User id (non-empty).
        user: Str,
    },
    /// Remove one connection of `user`; at zero the user exits.
    Leave {
        /// Room id.
        room: Str,
        /// User id.
        user: Str,
    },
    /// A connection of `user` dropped without a leave: it counts until the
    /// profile's grace period passes without a re-join.
    Disconnect {
        /// Room id.
        room: Str,
        /// User id.
        user: Str,
    },
    /// Remove all of `user`'s connections at once (a kick).
    Exit {
        /// Room id.
        room: Str,
        /// User id.
        user: Str,
    },
    /// Set a user's role to `Member` or `Admin`.
    SetRole {
        /// Room id.
        room: Str,
        /// User id.
        user: Str,
        /// `Member` or `Admin`; `Creator` is rejected.
        role: Role,
    },
    /// Write attributes.
    Write(Write),
    /// Create a lock (Agora `setLock`). The TTL is clamped to the profile's
    /// [`LockLimits`](crate::LockLimits) range. Rejects an invalid name
    /// (`InvalidLockName`), an existing name (`LockExists`) and a lock past
    /// the room's count (`LockCountLimit`).
    SetLock {
        /// Room id.
        room: Str,
        /// Lock name.
        name: Str,
        /// How long the lock outlives its holder's last live connection.
        ttl_ms: u64,
    },
    /// Remove a lock, whoever holds or waits for it (Agora `removeLock`).
    /// Rejects a missing lock (`LockNotFound`).
    RemoveLock {
        /// Room id.
        room: Str,
        /// Lock name.
        name: Str,
    },
    /// Acquire a lock for `user`, who must be in the room. A free lock is
    /// granted with the next fencing token; a lock the user holds is
    /// granted again with its token; a lock held by someone else is
    /// refused (`LockHeld`), or with `retry` the user joins its FIFO wait
    /// list and gets it when it frees, unless the user exits first.
    AcquireLock {
        /// Room id.
        room: Str,
        /// Lock name.
        name: Str,
        /// Who acquires.
        user: Str,
        /// Wait in line when the lock is held.
        retry: bool,
    },
    /// Release a lock `user` holds; the next waiter gets it. Rejects a
    /// user who does not hold it (`LockNotAcquired`).
    ReleaseLock {
        /// Room id.
        room: Str,
        /// Lock name.
        name: Str,
        /// The holder.
        user: Str,
    },
    /// Take a lock away from `owner` (Agora `revokeLock`). Only `Admin`
    /// or a room admin or creator may (`NoPermission`); Agora lets any
    /// client. Rejects an `owner` who does not hold it (`LockNotAcquired`).
    RevokeLock {
        /// Room id.
        room: Str,
        /// Lock name.
        name: Str,
        /// The holder to revoke.
        owner: Str,
        /// Who revokes.
        operator: Actor,
    },
    /// Every lock of the room, in creation order (Agora `getLocks`).
    GetLocks {
        /// Room id.
        room: Str,
    },
    /// Read attributes: `None` for all, else the named ones that exist, in
    /// listing order.
    Read {
        /// Room id.
        room: Str,
        /// Keys to read.
        keys: Option<Vec<Str>>,
    },
    /// Create the room's queue with a capacity, or change its capacity.
    QueueInit {
        /// Room id.
        room: Str,
        /// Who asks.
        operator: Actor,
        /// Maximum elements (1..=`max_capacity`, ≥ current length).
        capacity: u32,
    },
    /// Remove the room's queue.
    QueueDrop {
        /// Room id.
        room: Str,
        /// Who asks.
        operator: Actor,
    },
    /// Append an element, or update it in place; the operator becomes its owner.
    QueueOffer {
        /// Room id.
        room: Str,
        /// Who offers; must be in the room when `transient`.
        operator: Actor,
        /// Element key.
        key: Str,
        /// Element value.
        value: Str,
        /// Removed when the owner exits.
        transient: bool,
        /// Notification options.
        notify: Notify,
    },
    /// Offer up to `max_batch_offer` elements; each stands alone.
    QueueBatchOffer {
        /// Room id.
        room: Str,
        /// Who offers; owner of elements that name none.
        operator: Actor,
        /// The elements.
        elements: Vec<NewElement>,
        /// Default `transient` of the elements.
        transient: bool,
        /// Notification options.
        notify: Notify,
    },
    /// Update existing elements (operator must be admin or creator); the
    /// operator becomes their owner.
    QueueBatchUpdate {
        /// Room id.
        room: Str,
        /// Who updates.
        operator: Actor,
        /// `(key, value)` pairs.
        elements: Vec<(Str, Str)>,
        /// Notification options.
        notify: Notify,
    },
    /// All elements, in order.
    QueueList {
        /// Room id.
        room: Str,
    },
    /// Remove and return the named element, or the head.
    QueuePoll {
        /// Room id.
        room: Str,
        /// Who polls.
        operator: Actor,
        /// Element key; `None` for the head.
        key: Option<Str>,
        /// Notification options.
        notify: Notify,
    },
    /// The named elements that exist, in the order asked.
    QueueMultiGet {
        /// Room id.
        room: Str,
        /// Keys (≤ `max_multi_get`).
        keys: Vec<Str>,
    },
    /// Set, increase or decrease one integer counter (Tencent group
    /// counters). A missing counter is created at 0 first. The new value
    /// is returned ([`Success::Counter`](crate::Success::Counter)) and
    /// announced (`CounterChanged`). Rejected, changing nothing: a key
    /// that is empty or over `max_counter_key_len` bytes, a new key over
    /// `max_counters_per_room` ([`Rejection::Op`](crate::Rejection::Op)),
    /// `min > max` (`InvalidParameter`), a result outside `i64`
    /// (`CounterOverflow`) or outside `min..=max` (`CounterOutOfBounds`:
    /// refused, never clamped).
    Counter {
        /// Room id.
        room: Str,
        /// Who asks.
        operator: Actor,
        /// Counter key.
        key: Str,
        /// What to do.
        op: CounterOp,
        /// Lowest value the result may have (beyond Tencent).
        min: Option<i64>,
        /// Highest value the result may have (beyond Tencent).
        max: Option<i64>,
    },
    /// Delete the named counters that exist (`None`: all of them), in one
    /// event of `CounterDeleted` changes in key order. `Some` of an empty
    /// list is `Empty`; deleting nothing is a no-op.
    CounterDelete {
        /// Room id.
        room: Str,
        /// Who asks.
        operator: Actor,
        /// Keys to delete; `None` for all.
        keys: Option<Vec<Str>>,
    },
    /// Read the named counters that exist (`None`: all), in key order, with
    /// the room's sequence number. `Some` of an empty list is `Empty`.
    CounterRead {
        /// Room id.
        room: Str,
        /// Keys to read; `None` for all.
        keys: Option<Vec<Str>>,
    },
    /// The room's events after `seq`, in order, from its catch-up history
    /// ([`Success::Events`](crate::Success::Events)), so a client that
    /// saw `seq` resumes with no gap and no duplicate. Rejected: `seq`
    /// above the room's (`InvalidParameter`); history that no longer
    /// reaches back to `seq` (`HistoryTruncated { oldest }`: read the full
    /// state, whose `seq` every read returns). A change made with
    /// notification off has no event, so the history restarts after it: a
    /// catch-up never skips a number.
    Since {
        /// Room id.
        room: Str,
        /// The last sequence number the client saw.
        seq: u64,
    },
    /// Expire what is due at `now` (disconnect grace periods, lock and key
    /// TTLs).
    Tick,
}

impl Command {
    /// Creates `room` with `creator` (who is not present until it joins).
    pub fn create_room(room: impl Into<Str>, creator: impl Into<Str>) -> Command {
        Command::CreateRoom {
            room: room.into(),
            creator: creator.into(),
        }
    }

    /// One more connection of `user` in `room`.
    pub fn join(room: impl Into<Str>, user: impl Into<Str>) -> Command {
        Command::Join {
            room: room.into(),
            user: user.into(),
        }
    }

    /// One connection fewer of `user` in `room`.
    pub fn leave(room: impl Into<Str>, user: impl Into<Str>) -> Command {
        Command::Leave {
            room: room.into(),
            user: user.into(),
        }
    }

    /// Removes every connection of `user` in `room` (a kick).
    pub fn exit(room: impl Into<Str>, user: impl Into<Str>) -> Command {
        Command::Exit {
            room: room.into(),
            user: user.into(),
        }
    }

    /// A connection of `user` in `room` dropped without a leave.
    pub fn disconnect(room: impl Into<Str>, user: impl Into<Str>) -> Command {
        Command::Disconnect {
            room: room.into(),
            user: user.into(),
        }
    }

    /// Reads every attribute of `room`.
    pub fn read_all(room: impl Into<Str>) -> Command {
        Command::Read {
            room: room.into(),
            keys: None,
        }
    }

    /// Sets, increases or decreases a counter, without bounds.
    pub fn counter(
        room: impl Into<Str>,
        operator: Actor,
        key: impl Into<Str>,
        op: CounterOp,
    ) -> Command {
        Command::Counter {
            room: room.into(),
            operator,
            key: key.into(),
            op,
            min: None,
            max: None,
        }
    }

    /// A counter command with bounds: a result outside `min..=max` is
    /// refused (`CounterOutOfBounds`); no effect on other commands.
    #[must_use]
    pub fn bounds(mut self, lo: Option<i64>, hi: Option<i64>) -> Command {
        if let Command::Counter { min, max, .. } = &mut self {
            *min = lo;
            *max = hi;
        }
        self
    }

    /// The room the command is about; `None` for [`Command::Tick`]. A
    /// server routes commands to shards by it.
    #[must_use]
    pub fn room(&self) -> Option<&str> {
        let room = match self {
            Command::Tick => return None,
            Command::Write(w) => &w.room,
            Command::CreateRoom { room, .. }
            | Command::DestroyRoom { room, .. }
            | Command::Join { room, .. }
            | Command::Leave { room, .. }
            | Command::Disconnect { room, .. }
            | Command::Exit { room, .. }
            | Command::SetRole { room, .. }
            | Command::SetLock { room, .. }
            | Command::RemoveLock { room, .. }
            | Command::AcquireLock { room, .. }
            | Command::ReleaseLock { room, .. }
            | Command::RevokeLock { room, .. }
            | Command::GetLocks { room, .. }
            | Command::Read { room, .. }
            | Command::QueueInit { room, .. }
            | Command::QueueDrop { room, .. }
            | Command::QueueOffer { room, .. }
            | Command::QueueBatchOffer { room, .. }
            | Command::QueueBatchUpdate { room, .. }
            | Command::QueueList { room, .. }
            | Command::QueuePoll { room, .. }
            | Command::QueueMultiGet { room, .. }
            | Command::Counter { room, .. }
            | Command::CounterDelete { room, .. }
            | Command::CounterRead { room, .. }
            | Command::Since { room, .. } => room,
        };
        Some(room.as_str())
    }

    /// The operator the command names, if it names one.
    #[must_use]
    pub fn operator(&self) -> Option<&Actor> {
        match self {
            Command::Write(w) => Some(&w.operator),
            Command::RevokeLock { operator, .. } => Some(operator),
            Command::QueueInit { operator, .. }
            | Command::QueueDrop { operator, .. }
            | Command::QueueOffer { operator, .. }
            | Command::QueueBatchOffer { operator, .. }
            | Command::QueueBatchUpdate { operator, .. }
            | Command::QueuePoll { operator, .. } => Some(operator),
            Command::Counter { operator, .. } | Command::CounterDelete { operator, .. } => {
                Some(operator)
            }
            _ => None,
        }
    }

    /// Whether the command is an API request that counts against the
    /// profile's request rate (attribute and queue commands). Membership,
    /// room lifecycle and ticks are the server's own bookkeeping and never
    /// rate limited.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            Command::Write(_)
                | Command::SetLock { .. }
                | Command::RemoveLock { .. }
                | Command::AcquireLock { .. }
                | Command::ReleaseLock { .. }
                | Command::RevokeLock { .. }
                | Command::GetLocks { .. }
                | Command::Read { .. }
                | Command::QueueInit { .. }
                | Command::QueueDrop { .. }
                | Command::QueueOffer { .. }
                | Command::QueueBatchOffer { .. }
                | Command::QueueBatchUpdate { .. }
                | Command::QueueList { .. }
                | Command::QueuePoll { .. }
                | Command::QueueMultiGet { .. }
                | Command::Counter { .. }
                | Command::CounterDelete { .. }
                | Command::CounterRead { .. }
                | Command::Since { .. }
        )
    }
}
