//! Events: the changes others in a room must hear.

use alloc::vec::Vec;

use crate::command::{Actor, Role};
use crate::text::Str;
use crate::time::Millis;

/// How the transport should treat an event (NetEase notification flow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Delivery {
    /// High priority, within the room's high budget.
    High,
    /// Normal, within the room's normal budget (or no budget applies).
    Normal,
    /// Over budget: the transport may drop it.
    Overflow,
}

/// Why the changes of an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Cause {
    /// The room was created.
    RoomCreated,
    /// A write or queue command.
    Written,
    /// A forced write.
    Forced,
    /// A join or a role change.
    Membership,
    /// A user exited; what they owned with auto-delete (or transient) went.
    OwnerExited,
    /// A deadline ran out: a key's TTL, or a lock held through a disconnect.
    Expired,
    /// The room was destroyed.
    RoomDestroyed,
}

/// How a user's presence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ExitKind {
    /// The last connection left.
    Left,
    /// Removed by an exit command.
    Kicked,
    /// The last connection dropped and its grace period ran out.
    Disconnected,
}

/// One change inside an event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Change {
    /// The room was created.
    RoomCreated {
        /// Its creator.
        creator: Str,
    },
    /// The room and everything in it is gone.
    RoomDestroyed,
    /// A user's first connection arrived.
    MemberJoined {
        /// User id.
        user: Str,
    },
    /// A user's presence ended.
    MemberExited {
        /// User id.
        user: Str,
        /// How.
        how: ExitKind,
    },
    /// A user's role changed.
    RoleSet {
        /// User id.
        user: Str,
        /// New role.
        role: Role,
    },
    /// An attribute was created or overwritten.
    AttributeSet {
        /// Key.
        key: Str,
        /// New value.
        value: Str,
        /// Owner after the change.
        owner: Actor,
        /// Auto-delete flag after the change.
        auto_delete: bool,
    },
    /// An attribute was deleted.
    AttributeDeleted {
        /// Key.
        key: Str,
    },
    /// A lock was created.
    LockSet {
        /// Lock name.
        name: Str,
        /// How long the lock outlives its holder's last live connection,
        /// after clamping to the profile's range.
        ttl_ms: u64,
    },
    /// A lock was removed; whoever held or waited for it lost it.
    LockRemoved {
        /// Lock name.
        name: Str,
    },
    /// A user acquired a lock (directly, or as the next waiter in line).
    LockAcquired {
        /// Lock name.
        name: Str,
        /// The new holder.
        holder: Str,
        /// The lock's fencing token for this acquisition: one more than the
        /// last one.
        token: u64,
    },
    /// A holder released a lock, was revoked, left or exited.
    LockReleased {
        /// Lock name.
        name: Str,
        /// The holder that lost it.
        holder: Str,
    },
    /// A holder stayed disconnected for the lock's TTL and lost it (cause
    /// `Expired`).
    LockExpired {
        /// Lock name.
        name: Str,
        /// The holder that lost it.
        holder: Str,
    },
    /// The queue was created, or its capacity changed.
    QueueInit {
        /// Capacity.
        capacity: u32,
    },
    /// A queue element was appended or updated in place.
    QueueSet {
        /// Key.
        key: Str,
        /// Value.
        value: Str,
        /// Owner after the change.
        owner: Actor,
        /// Transient flag after the change.
        transient: bool,
    },
    /// A queue element was removed (polled, or its owner exited).
    QueueRemoved {
        /// Key.
        key: Str,
    },
    /// The queue was dropped.
    QueueDropped,
    /// A counter was set, increased or decreased (or created at 0 first).
    CounterChanged {
        /// Key.
        key: Str,
        /// Value after the change.
        value: i64,
    },
    /// A counter was deleted.
    CounterDeleted {
        /// Key.
        key: Str,
    },
}

/// A state change in one room, announced to its members.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event {
    /// The room.
    pub room: Str,
    /// The room's sequence number after this change; one more than the last.
    pub seq: u64,
    /// When it happened (the engine's `now`).
    pub at: Millis,
    /// Who caused it (`Admin` for kicks, expiries and destruction).
    pub operator: Actor,
    /// Why.
    pub cause: Cause,
    /// Notification class.
    pub delivery: Delivery,
    /// Notification extension string (queue commands).
    pub ext: Option<Str>,
    /// The changes, in request order.
    pub changes: Vec<Change>,
}
