//! Outcomes: what a command returns.

use alloc::vec::Vec;

use crate::command::Actor;
use crate::error::{OpError, Rejection};
use crate::event::Event;
use crate::text::Str;
use crate::time::Millis;

/// The result of every command: a success, or a rejection with nothing changed.
pub type Outcome = Result<Success, Rejection>;

/// A successful command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Success {
    /// Applied (or nothing needed changing); no data to return.
    Done,
    /// A write's per-op report.
    Written(BatchReport),
    /// A queue batch's per-element report.
    QueueBatch(BatchReport),
    /// Attributes read.
    Read(ReadReport),
    /// Queue elements listed or fetched.
    Elements(ElementsReport),
    /// The room's locks, read.
    Locks(LocksReport),
    /// What an acquire got: the lock, or a place in line.
    Acquired(Acquisition),
    /// The element a poll removed.
    Polled(QueueElement),
    /// A counter's value after a [`Command::Counter`](crate::Command::Counter).
    Counter {
        /// The room's sequence number after the command.
        seq: u64,
        /// The counter's new value.
        value: i64,
    },
    /// Counters read, in key order.
    Counters(CountersReport),
    /// Events for catch-up, after the number asked for.
    Events(EventsReport),
}

/// One failed op of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OpFailure {
    /// Position of the op in the request.
    pub index: usize,
    /// The op's key.
    pub key: Str,
    /// Why it failed.
    pub error: OpError,
}

/// What a batch did: the ops not listed in `failed` were applied.
///
/// The applied keys (Easemob's `successKeys`) are not stored: they are the
/// request's keys at [`BatchReport::applied_indices`]. A report copies no
/// key it does not have to, so a write that fails nothing allocates no
/// report at all (the overwrite path stays allocation-free).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BatchReport {
    /// The room's sequence number after the command.
    pub seq: u64,
    /// Number of ops applied.
    pub applied: u32,
    /// Failed (or not attempted) ops, in request order.
    pub failed: Vec<OpFailure>,
}

/// A stored attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Attribute {
    /// Key.
    pub key: Str,
    /// Value.
    pub value: Str,
    /// Owner.
    pub owner: Actor,
    /// Deleted when its (user) owner exits.
    pub auto_delete: bool,
    /// Room sequence number of its last change.
    pub revision: u64,
    /// Time of its last change.
    pub changed_at: Millis,
}

/// Attributes read, in listing order, with the room's sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReadReport {
    /// The room's sequence number: apply events after it to stay current.
    pub seq: u64,
    /// The attributes.
    pub attributes: Vec<Attribute>,
}

/// A queue element.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QueueElement {
    /// Key.
    pub key: Str,
    /// Value.
    pub value: Str,
    /// Owner.
    pub owner: Actor,
    /// Removed when its (user) owner exits.
    pub transient: bool,
}

/// Queue elements, with the room's sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ElementsReport {
    /// The room's sequence number.
    pub seq: u64,
    /// The elements.
    pub elements: Vec<QueueElement>,
}

/// A lock, copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LockInfo {
    /// Lock name.
    pub name: Str,
    /// How long the lock outlives its holder's last live connection.
    pub ttl_ms: u64,
    /// The holder, if any.
    pub holder: Option<Str>,
    /// The fencing token of the latest acquisition (0: never acquired).
    pub token: u64,
    /// When the lock expires, set while the holder has no live connection.
    pub expires_at: Option<Millis>,
    /// Users waiting for it, first in line first.
    pub waiters: Vec<Str>,
}

/// The room's locks in creation order, with its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LocksReport {
    /// The room's sequence number.
    pub seq: u64,
    /// The locks.
    pub locks: Vec<LockInfo>,
}

/// What an acquire got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Acquisition {
    /// The user holds the lock, with this fencing token.
    Granted {
        /// The token a fenced write must name.
        token: u64,
    },
    /// The user waits in line, at this position (1: next).
    Waiting {
        /// Position in the wait list, from 1.
        position: u32,
    },
}

/// A room's events after a sequence number, with the room's own.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EventsReport {
    /// The room's sequence number now.
    pub seq: u64,
    /// The events, oldest first.
    pub events: Vec<Event>,
}

/// Counters, in key order, with the room's sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CountersReport {
    /// The room's sequence number: apply events after it to stay current.
    pub seq: u64,
    /// `(key, value)` pairs, in key order.
    pub counters: Vec<(Str, i64)>,
}

impl Success {
    /// The report of a write, if this is one.
    #[must_use]
    pub fn into_written(self) -> Option<BatchReport> {
        match self {
            Success::Written(r) => Some(r),
            _ => None,
        }
    }

    /// The report of a queue batch, if this is one.
    #[must_use]
    pub fn into_batch(self) -> Option<BatchReport> {
        match self {
            Success::QueueBatch(r) => Some(r),
            _ => None,
        }
    }

    /// The attributes read, if this is a read.
    #[must_use]
    pub fn into_read(self) -> Option<ReadReport> {
        match self {
            Success::Read(r) => Some(r),
            _ => None,
        }
    }

    /// The queue elements listed or fetched, if this is a list or multi-get.
    #[must_use]
    pub fn into_elements(self) -> Option<ElementsReport> {
        match self {
            Success::Elements(r) => Some(r),
            _ => None,
        }
    }

    /// The element a poll removed, if this is a poll.
    #[must_use]
    pub fn into_polled(self) -> Option<QueueElement> {
        match self {
            Success::Polled(e) => Some(e),
            _ => None,
        }
    }

    /// A counter's new value, if this is a counter command's answer.
    #[must_use]
    pub fn into_counter(self) -> Option<i64> {
        match self {
            Success::Counter { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The counters read, if this is a counter read.
    #[must_use]
    pub fn into_counters(self) -> Option<CountersReport> {
        match self {
            Success::Counters(r) => Some(r),
            _ => None,
        }
    }
}

impl BatchReport {
    /// Positions, in a request of `ops` ops or elements, of those that
    /// were applied (every one not in `failed`), ascending.
    pub fn applied_indices(&self, ops: usize) -> impl Iterator<Item = usize> + '_ {
        let mut failed = self.failed.iter().map(|f| f.index).peekable();
        (0..ops).filter(move |i| {
            while failed.next_if(|f| f < i).is_some() {}
            failed.next_if_eq(i).is_none()
        })
    }

    /// The applied keys, from the request's `keys` in request order
    /// (Easemob `successKeys`).
    pub fn applied_keys<'k, K: ?Sized + 'k>(
        &'k self,
        keys: &'k [&'k K],
    ) -> impl Iterator<Item = &'k K> + 'k {
        self.applied_indices(keys.len())
            .filter_map(move |i| keys.get(i).copied())
    }
}
