//! # roomstate-replica
//!
//! The roomstate engine as a replicated state machine on openraft.
//!
//! A log entry ([`types::Request`]) holds client commands stamped by the
//! leader with `now`, each with a client id and serial, or a leader-stamped
//! tick. Every replica applies the same entries with
//! [`state_machine::StateMachineStore`], so every replica holds the same
//! engine and produces the same numbered event stream.

pub mod cluster;
pub mod http;
pub mod mem_log;
pub mod redb_log;
pub mod router;
pub mod shard;
pub mod state_machine;
pub mod types;

pub use state_machine::{ReplicaSnapshotError, StateMachineStore};
pub use types::{
    ClientCommand, ClientId, CommandResult, EventSpan, GroupId, MoveDone, MoveError, MoveStep,
    NodeId, Raft, Refused, Reply, Request, Response, TypeConfig,
};
