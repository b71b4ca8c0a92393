//! The bodies of the routes that are ours (openraft's RPCs travel as
//! openraft defines them).

use openraft::{BasicNode, SnapshotMeta, Vote};
use roomstate::Command;
use serde::{Deserialize, Serialize};

use crate::types::{ClientId, CommandResult, NodeId};

/// A whole snapshot in one request.
#[derive(Serialize, Deserialize)]
pub(super) struct FullSnapshot {
    pub(super) vote: Vote<NodeId>,
    pub(super) meta: SnapshotMeta<NodeId, BasicNode>,
    pub(super) data: Vec<u8>,
}

/// A client's write: one engine command, numbered by the client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteRequest {
    /// Who sends it.
    pub client: ClientId,
    /// The client's number for it; a retry repeats it.
    pub serial: u64,
    /// The engine command.
    pub command: Command,
}

/// A node's answer to a [`WriteRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WriteReply {
    /// The command is committed and applied (or was already: a retry gets
    /// the first outcome).
    Applied {
        /// The state machine's result for it.
        result: CommandResult,
        /// The log index of the entry that carried it.
        log_index: u64,
        /// The node that answered: the leader.
        leader_id: NodeId,
    },
    /// This node is not the leader; ask the one named, if any.
    ForwardToLeader {
        /// The leader's id, if this node knows it.
        leader_id: Option<NodeId>,
        /// The leader's address, if this node knows it.
        leader_addr: Option<String>,
    },
    /// The write may or may not apply; retry it with the same serial.
    Failed(WriteFailure),
}

/// Why a node could not say how a write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WriteFailure {
    /// It did not apply within [`WRITE_TIMEOUT`](super::WRITE_TIMEOUT) (the leader may have lost
    /// its quorum).
    Timeout,
    /// The node's Raft stopped.
    ShuttingDown,
    /// The entry applied without a result for the command (a state machine
    /// bug; never expected).
    NoResult,
    /// Raft refused the proposal for another reason.
    Refused,
}
