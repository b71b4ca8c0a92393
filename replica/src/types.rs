//! The openraft type configuration and the replicated log's request and
//! response types.
//!
//! A log entry ([`Request`]) carries client commands stamped by the leader
//! with `now`, or a leader-stamped [`Request::Tick`]. Applying it yields a
//! [`Response`]: one [`Reply`] (or a [`Refused`]) per command, and the span
//! of the replica's event stream the entry produced.

use std::io::Cursor;

use roomstate::{Command, Millis, Outcome};
use serde::{Deserialize, Serialize};

/// A client's identity for exactly-once delivery. Each client numbers its
/// commands with increasing serials.
pub type ClientId = u64;

/// Raft node id.
pub type NodeId = u64;

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
}
