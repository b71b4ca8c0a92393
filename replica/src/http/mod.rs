//! Raft over HTTP on loopback, for nodes in separate processes.
//!
//! Server side ([`serve`], [`router`]): `POST` routes that take a postcard
//! body and answer with a postcard body:
//!
//! | path                 | body                          | answer                                   |
//! |----------------------|-------------------------------|------------------------------------------|
//! | [`PATH_APPEND`]      | `AppendEntriesRequest`        | `Result<AppendEntriesResponse, RaftError>` |
//! | [`PATH_VOTE`]        | `VoteRequest`                 | `Result<VoteResponse, RaftError>`         |
//! | [`PATH_SNAPSHOT`]    | a whole snapshot (vote, meta, bytes) | `Result<SnapshotResponse, Fatal>`  |
//! | [`PATH_SNAPSHOT_CHUNK`] | `InstallSnapshotRequest` (one chunk) | `Result<InstallSnapshotResponse, RaftError<_, InstallSnapshotError>>` |
//! | [`PATH_WRITE`]       | [`WriteRequest`]              | [`WriteReply`]                            |
//!
//! A body that does not decode is answered `400 Bad Request` and reaches
//! neither Raft nor the engine; a body over [`MAX_BODY_BYTES`] gets `413`.
//! Errors from Raft are data inside a `200` answer, so the sending side
//! can tell "the peer said no" from "the network failed".
//!
//! Client side ([`HttpNetwork`]): openraft's `RaftNetworkFactory`; each
//! RPC is one `POST` with a timeout (openraft's hard TTL, at most
//! [`RPC_TIMEOUT`]; [`SNAPSHOT_TIMEOUT`] for a whole snapshot). A refused
//! connection is reported as `Unreachable`, so openraft backs off.
//!
//! Client writes ([`WriteClient`]): a client numbers its commands; the node
//! it asks stamps `now` from its clock and proposes the command if it is
//! the leader, or answers [`WriteReply::ForwardToLeader`] with the
//! leader's address. The client retries the same serial after a redirect,
//! a timeout or a lost connection, and the state machine's exactly-once
//! table makes the retry apply once and return the first outcome.
//!
//! A whole node ([`HttpNode`]): its redb log and snapshot directory, its
//! `Raft`, the server, and the leader's tick task.
//!
//! Files: `client.rs` (one POST with a timeout), `network.rs` (openraft's
//! network), `server.rs` (the routes), `wire.rs` (the bodies),
//! `write_client.rs` (client writes), `node.rs` (a whole node).

// openraft's error types (ConfigError, RaftError, ...) are large; they are
// its API, and boxing them here would only add an allocation per error.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use roomstate::Millis;

mod client;
mod network;
mod node;
mod server;
mod wire;
mod write_client;

#[cfg(test)]
mod tests;

pub use client::HttpClient;
pub use network::{HttpConnection, HttpNetwork};
pub use node::{
    member_ids, members, raft_config, HttpNode, NodeConfig, NodeError, LOG_FILE, SNAPSHOT_DIR,
    STOP_GRACE, TICK_POLL,
};
pub use server::{router, serve};
pub use wire::{WriteFailure, WriteReply, WriteRequest};
pub use write_client::{WriteClient, WriteError, Written};

/// Route of openraft's append-entries RPC.
pub const PATH_APPEND: &str = "/raft/append";
/// Route of openraft's vote RPC.
pub const PATH_VOTE: &str = "/raft/vote";
/// Route of a whole snapshot, sent in one request.
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";
/// Route of one chunk of openraft's chunked snapshot RPC.
pub const PATH_SNAPSHOT_CHUNK: &str = "/raft/snapshot-chunk";
/// Route of client writes.
pub const PATH_WRITE: &str = "/write";

/// Longest wait for an append or vote answer (openraft's hard TTL is used
/// when shorter).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a whole snapshot to be sent and installed.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a TCP connection to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest a node waits for a proposed write to apply before it answers
/// [`WriteFailure::Timeout`]; also a client's wait for one answer (plus
/// [`CONNECT_TIMEOUT`]).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a [`WriteClient::write`] keeps retrying one command.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(15);
/// Pause before a client retries when no leader is known.
pub const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Largest request body a node accepts (a snapshot is the largest).
pub const MAX_BODY_BYTES: usize = 256 << 20;

/// A node's clock for stamping client commands.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// The wall clock in milliseconds since the Unix epoch (0 if the system
/// clock is before it). The state machine clamps stamps so that replicated
/// time never goes back, whatever the nodes' clocks say.
#[must_use]
pub fn wall_clock() -> Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Millis(ms)
}
