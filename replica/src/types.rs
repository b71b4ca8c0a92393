//! The openraft type configuration and the replicated log's request and
//! response types.
//!
//! A log entry ([`Request`]) carries client commands stamped by the leader
//! with `now`, or a leader-stamped [`Request::Tick`]. Applying it yields a
//! [`Response`]: one [`Reply`] (or a [`Refused`]) per command, and the span
//! of the replica's event stream the entry produced.

use std::io::Cursor;

use roomstate::{Command, Millis, Outcome, SnapshotError, Str};
use serde::{Deserialize, Serialize};

/// A client's identity for exactly-once delivery. Each client numbers its
/// commands with increasing serials.
pub type ClientId = u64;

/// Raft node id.
pub type NodeId = u64;

/// Which Raft group (shard) a `Raft` serves; 0 when there is one group.
pub type GroupId = u32;

openraft::declare_raft_types!(
    /// The openraft types of a replicated roomstate engine.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The `Raft` handle of this crate.
pub type Raft = openraft::Raft<TypeConfig>;

/// One client command, as it sits in the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientCommand {
    /// Who sent it.
    pub client: ClientId,
    /// The client's number for it: a retry repeats it, a new command
    /// takes the next one. A client has one entry in flight at a time (one
    /// command, or a batch of consecutive serials in one entry).
    pub serial: u64,
    /// The leader's clock when it proposed the command. The state machine
    /// applies `max(now, the latest now applied)`, so time never goes back,
    /// not even across a leader change.
    pub now: Millis,
    /// The engine command.
    pub command: Command,
}

/// A log entry's application data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// One client command.
    Command(ClientCommand),
    /// Several client commands proposed as one entry (batched proposals),
    /// applied in order.
    Batch(Vec<ClientCommand>),
    /// The leader's clock reached the engine's `poll_timeout`: expire what
    /// is due at `now` (grace periods, rate bucket, ...).
    Tick {
        /// The leader's clock, clamped like a command's.
        now: Millis,
    },
    /// A step of moving a room to another group (see [`MoveStep`]).
    Move(MoveStep),
}

/// The steps of moving a room from this group (the source) to another
/// (the target): `Freeze` and then `Finish` in the source, `Restore` in
/// the target between them, or `Abort` in the source instead of `Finish`.
/// Every step is idempotent, so the mover simply retries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MoveStep {
    /// Source: stop applying commands for `room` (they are refused with
    /// [`Refused::Frozen`]) and return its snapshot. Freezing a frozen
    /// room returns the same snapshot again.
    Freeze {
        /// The room.
        room: Str,
        /// The group it moves to.
        to: GroupId,
    },
    /// Target: add the room from the source's snapshot.
    Restore {
        /// The room.
        room: Str,
        /// `Engine::snapshot_room` bytes from the source's freeze.
        bytes: Vec<u8>,
    },
    /// Source: delete the frozen room (without a `RoomDestroyed` event:
    /// the room lives on in the target) and from then on refuse its
    /// commands with [`Refused::Moved`].
    Finish {
        /// The room.
        room: Str,
    },
    /// Source: give up a move that did not finish; the room is served
    /// again.
    Abort {
        /// The room.
        room: Str,
    },
}

/// What a move step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MoveDone {
    /// The room is frozen; here is its snapshot.
    Frozen(Vec<u8>),
    /// The target holds the room.
    Restored,
    /// The source deleted the room; its commands now go to the target.
    Finished,
    /// The move was given up; the source serves the room.
    Aborted,
}

/// Why a move step did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MoveError {
    /// Freeze: no such room in the source.
    NoSuchRoom,
    /// Freeze: the room is frozen for (or moved to) another group.
    OtherMove,
    /// Finish or abort: the room is not frozen here (finish), or has
    /// finished moving already (abort).
    NotFrozen,
    /// Restore: a room with that id exists in the target.
    RoomExists,
    /// Restore: the snapshot's profile is not the target's.
    ProfileMismatch,
    /// Restore: the bytes are not a valid room snapshot.
    BadSnapshot,
}

impl From<SnapshotError> for MoveError {
    fn from(e: SnapshotError) -> MoveError {
        match e {
            SnapshotError::RoomExists => MoveError::RoomExists,
            SnapshotError::ProfileMismatch => MoveError::ProfileMismatch,
            _ => MoveError::BadSnapshot,
        }
    }
}

/// A span of a replica's event stream: the events numbered
/// `start..end`. Every replica numbers its stream the same way (from 0 at
/// the cluster's first entry), so a span names the same events everywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSpan {
    /// Number of the first event.
    pub start: u64,
    /// One past the number of the last event; `start == end` for none.
    pub end: u64,
}

impl EventSpan {
    /// How many events the span holds.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span holds no event.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one applied client command returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The engine's outcome.
    pub outcome: Outcome,
    /// The events the command produced, in the replica's event stream.
    pub events: EventSpan,
}

/// Why the state machine did not apply a client command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Refused {
    /// The serial is older than the replies the state machine keeps for
    /// the client (those of its last applied entry): a late retry of a
    /// superseded write. Nothing was applied.
    StaleSerial {
        /// The client's last applied serial.
        last: u64,
    },
    /// The command's room is being moved to another group: retry later,
    /// here, with the same serial.
    Frozen,
    /// The command's room has moved to group `to`: send it there (with
    /// the same serial; this group never applies it).
    Moved {
        /// The room's group now.
        to: GroupId,
    },
}

/// One command's result: the reply (the first one, for a retried serial),
/// or why it was refused.
pub type CommandResult = Result<Reply, Refused>;

/// The state machine's answer to one log entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// One result per client command of the entry, in order; empty for a
    /// tick, a blank or a membership entry.
    pub results: Vec<CommandResult>,
    /// The events the whole entry produced.
    pub events: EventSpan,
    /// What a [`Request::Move`] step did; `None` for other entries.
    pub step: Option<Result<MoveDone, MoveError>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span counts the events from `start` up to `end`; an inverted span
    /// (never built, but a deserialized one could be) holds none.
    #[test]
    fn a_span_holds_end_minus_start_events() {
        let span = |start, end| EventSpan { start, end };
        assert_eq!((span(3, 5).len(), span(3, 5).is_empty()), (2, false));
        assert_eq!((span(3, 3).len(), span(3, 3).is_empty()), (0, true));
        assert_eq!((span(5, 3).len(), span(5, 3).is_empty()), (0, true));
        assert!(EventSpan::default().is_empty());
    }

    /// A restore refused by the engine names its reason in the move's
    /// terms: an existing room and another profile by name, anything else
    /// as bad bytes.
    #[test]
    fn snapshot_errors_become_move_errors_by_reason() {
        assert_eq!(
            MoveError::from(SnapshotError::RoomExists),
            MoveError::RoomExists
        );
        assert_eq!(
            MoveError::from(SnapshotError::ProfileMismatch),
            MoveError::ProfileMismatch
        );
        let bad = roomstate::Engine::restore(b"not a snapshot").err();
        assert_eq!(bad.map(MoveError::from), Some(MoveError::BadSnapshot));
    }
}
