//! Errors are data: small `Copy` enums, no strings inside.

/// Why one op of a batch (or the single element of a queue command) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum OpError {
    /// The key is empty.
    KeyEmpty,
    /// The key is longer than the profile allows (in the profile's unit).
    KeyTooLong,
    /// The key has a character outside the profile's charset.
    KeyCharset,
    /// The value is longer than the profile allows (in the profile's unit).
    ValueTooLong,
    /// The op's expectation did not hold; `current` is the key's revision,
    /// `None` when the key is absent.
    Conflict {
        /// Revision of the key now, `None` when absent.
        current: Option<u64>,
    },
    /// The key belongs to someone else and the op was not forced.
    NotOwner,
    /// The key (or queue element) does not exist.
    NotFound,
    /// The room would hold more keys than the profile allows.
    KeyCountLimit,
    /// The room's values would exceed the profile's total size.
    RoomSizeLimit,
    /// All rooms' values together would exceed the profile's engine-wide total.
    EngineSizeLimit,
    /// `StopOnError`: an earlier op failed, so this one was not tried.
    NotAttempted,
    /// Queue batch offer: the element's owner is not in the room and is not
    /// the creator (NetEase).
    OwnerNotInRoom,
    /// The queue is at capacity.
    QueueFull,
}

/// Why a whole command was rejected. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Rejection {
    /// No room with that id.
    RoomNotFound,
    /// A room with that id exists already (Tencent 100003).
    RoomExists,
    /// The user (or the user operator) has no connection in the room.
    NotInRoom,
    /// The operator's role does not allow this command.
    NoPermission,
    /// More ops or elements than the profile allows in one request.
    TooManyOps {
        /// The profile's limit.
        max: u32,
    },
    /// The request has no ops or no keys.
    Empty,
    /// A parameter other than a key or value is invalid (a capacity of zero,
    /// an over-long notification extension, the `Creator` role).
    InvalidParameter,
    /// The request names a batch policy the profile does not let it choose.
    PolicyNotAllowed,
    /// An op failed and the command is all-or-nothing: an `Atomic` batch, a
    /// single-element queue command, or a malformed element of a queue batch.
    Op {
        /// Position of the op in the request.
        index: usize,
        /// Why it failed.
        error: OpError,
    },
    /// A delete-only batch deleted nothing (Tencent 100503).
    NothingDeleted,
    /// The application's request rate is exhausted.
    RateLimited,
    /// A high-priority notification was over budget and its policy is `Reject`.
    NotificationBudget,
    /// A lock name that is empty, too long, or not printable ASCII
    /// (Agora −14005).
    InvalidLockName,
    /// A lock with that name exists already (Agora −14004).
    LockExists,
    /// No lock with that name (Agora −14008).
    LockNotFound,
    /// The room holds as many locks as the profile allows.
    LockCountLimit {
        /// The profile's limit.
        max: u32,
    },
    /// The lock is held by someone else and the acquire did not ask to
    /// wait (Agora −14007).
    LockHeld,
    /// The user named does not hold the lock (Agora −14006).
    LockNotAcquired,
    /// A write named a lock (and token) its operator does not hold
    /// (Agora −12008).
    WriteLockNotHeld,
    /// A write's expected major revision is not the room's attribute
    /// revision (Agora −12014); `current` is the room's.
    RevisionOutdated {
        /// The room's attribute revision now.
        current: u64,
    },
    /// Polling the head of an empty or missing queue.
    QueueEmpty,
    /// A counter's result would not fit in an `i64`.
    CounterOverflow,
    /// A counter's result would lie outside the request's `min..=max`.
    CounterOutOfBounds,
    /// The room's history no longer reaches back to the number asked
    /// for; the earliest number a catch-up may start from is `oldest`.
    HistoryTruncated {
        /// The earliest sequence number a catch-up may start from.
        oldest: u64,
    },
}

/// Vendor-neutral classes that profiles map to vendor codes (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ErrorClass {
    /// Malformed key, value or parameter.
    InvalidParameter,
    /// The room exists.
    RoomExists,
    /// The room does not exist.
    RoomNotFound,
    /// Ownership or role forbids it.
    NoPermission,
    /// The operator is not in the room.
    NotInRoom,
    /// Too many ops in one request.
    TooManyOps,
    /// Too many keys in the room.
    KeyCount,
    /// A value is too long.
    ValueSize,
    /// The room's (or engine's) total value size is exceeded.
    TotalSize,
    /// A delete removed nothing.
    NothingDeleted,
    /// Request or notification rate exceeded.
    RateLimited,
    /// A compare-and-set expectation failed.
    Conflict,
    /// A key is too long (classed `InvalidParameter` where the vendor has
    /// no separate code).
    KeyLength,
    /// A lock name is invalid.
    LockName,
    /// The lock exists.
    LockExists,
    /// The lock does not exist.
    LockNotFound,
    /// Too many locks in the room.
    LockCount,
    /// The lock is held by someone else.
    LockHeld,
    /// The user does not hold the lock.
    LockNotAcquired,
    /// A fenced write's operator does not hold the lock and token.
    WriteLockNotHeld,
    /// A whole-set compare-and-set found another major revision.
    RevisionOutdated,
    /// A key or element does not exist.
    NotFound,
}

impl OpError {
    /// The class a profile maps to a vendor code.
    #[must_use]
    pub const fn class(self) -> ErrorClass {
        match self {
            OpError::KeyEmpty | OpError::KeyCharset | OpError::QueueFull => {
                ErrorClass::InvalidParameter
            }
            OpError::KeyTooLong => ErrorClass::KeyLength,
            OpError::ValueTooLong => ErrorClass::ValueSize,
            OpError::Conflict { .. } => ErrorClass::Conflict,
            OpError::NotOwner => ErrorClass::NoPermission,
            OpError::NotFound | OpError::NotAttempted => ErrorClass::NotFound,
            OpError::KeyCountLimit => ErrorClass::KeyCount,
            OpError::RoomSizeLimit | OpError::EngineSizeLimit => ErrorClass::TotalSize,
            OpError::OwnerNotInRoom => ErrorClass::NotInRoom,
        }
    }
}

impl Rejection {
    /// The class a profile maps to a vendor code.
    #[must_use]
    pub const fn class(self) -> ErrorClass {
        match self {
            Rejection::RoomNotFound => ErrorClass::RoomNotFound,
            Rejection::RoomExists => ErrorClass::RoomExists,
            Rejection::NotInRoom => ErrorClass::NotInRoom,
            Rejection::NoPermission => ErrorClass::NoPermission,
            Rejection::TooManyOps { .. } => ErrorClass::TooManyOps,
            Rejection::Empty | Rejection::InvalidParameter | Rejection::PolicyNotAllowed => {
                ErrorClass::InvalidParameter
            }
            Rejection::Op { error, .. } => error.class(),
            Rejection::NothingDeleted => ErrorClass::NothingDeleted,
            Rejection::RateLimited | Rejection::NotificationBudget => ErrorClass::RateLimited,
            Rejection::InvalidLockName => ErrorClass::LockName,
            Rejection::LockExists => ErrorClass::LockExists,
            Rejection::LockNotFound => ErrorClass::LockNotFound,
            Rejection::LockCountLimit { .. } => ErrorClass::LockCount,
            Rejection::LockHeld => ErrorClass::LockHeld,
            Rejection::LockNotAcquired => ErrorClass::LockNotAcquired,
            Rejection::WriteLockNotHeld => ErrorClass::WriteLockNotHeld,
            Rejection::RevisionOutdated { .. } => ErrorClass::RevisionOutdated,
            Rejection::QueueEmpty => ErrorClass::NotFound,
            Rejection::CounterOverflow | Rejection::CounterOutOfBounds => {
                ErrorClass::InvalidParameter
            }
            Rejection::HistoryTruncated { .. } => ErrorClass::NotFound,
        }
    }
}

/// A sentence for each error, with no vendor wording: a server puts it in
/// its logs, or in an answer that has no vendor text of its own.
impl core::fmt::Display for OpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            OpError::KeyEmpty => "the key is empty",
            OpError::KeyTooLong => "the key is longer than the profile allows",
            OpError::KeyCharset => "the key has a character outside the profile's charset",
            OpError::ValueTooLong => "the value is longer than the profile allows",
            OpError::Conflict { current: Some(n) } => {
                return write!(
                    f,
                    "the expectation did not hold: the key is at revision {n}"
                )
            }
            OpError::Conflict { current: None } => {
                "the expectation did not hold: the key is absent"
            }
            OpError::NotOwner => "the key belongs to another user",
            OpError::NotFound => "no such key or element",
            OpError::KeyCountLimit => "the room would hold more keys than the profile allows",
            OpError::RoomSizeLimit => "the room's values would exceed the profile's total",
            OpError::EngineSizeLimit => {
                "all rooms' values would exceed the profile's engine-wide total"
            }
            OpError::NotAttempted => "not attempted: an earlier op failed",
            OpError::OwnerNotInRoom => "the element's owner is not in the room",
            OpError::QueueFull => "the queue is full",
        };
        f.write_str(text)
    }
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            Rejection::RoomNotFound => "no such room",
            Rejection::RoomExists => "the room exists already",
            Rejection::NotInRoom => "the user is not in the room",
            Rejection::NoPermission => "the operator's role does not allow this",
            Rejection::TooManyOps { max } => {
                return write!(f, "more than {max} ops or elements in one request")
            }
            Rejection::Empty => "the request names no op or key",
            Rejection::InvalidParameter => "a parameter is invalid",
            Rejection::PolicyNotAllowed => {
                "the profile does not let a request choose this batch policy"
            }
            Rejection::Op { index, error } => return write!(f, "op {index} failed: {error}"),
            Rejection::NothingDeleted => "nothing was deleted",
            Rejection::RateLimited => "the request rate is exhausted",
            Rejection::NotificationBudget => "the high-priority notification budget is spent",
            Rejection::InvalidLockName => "the lock name is empty, too long or not printable ASCII",
            Rejection::LockExists => "a lock of that name exists already",
            Rejection::LockNotFound => "no such lock",
            Rejection::LockCountLimit { max } => {
                return write!(f, "the room holds the most locks the profile allows ({max})")
            }
            Rejection::LockHeld => "the lock is held by another user",
            Rejection::LockNotAcquired => "the user does not hold the lock",
            Rejection::WriteLockNotHeld => "the operator does not hold the write's lock and token",
            Rejection::RevisionOutdated { current } => {
                return write!(
                    f,
                    "the room's attribute revision is {current}, not the one expected"
                )
            }
            Rejection::QueueEmpty => "the queue is empty",
            Rejection::CounterOverflow => "the counter's result would overflow",
            Rejection::CounterOutOfBounds => "the counter's result would lie outside its bounds",
            Rejection::HistoryTruncated { oldest } => {
                return write!(
                    f,
                    "the room's history does not reach back that far: a catch-up starts at {oldest} at the earliest"
                )
            }
        };
        f.write_str(text)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OpError {}
#[cfg(feature = "std")]
impl std::error::Error for Rejection {}
