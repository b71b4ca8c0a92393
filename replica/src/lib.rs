//! # roomstate-replica
//!
//! The roomstate engine as a replicated state machine on openraft.
//!
//! A log entry ([`types::Request`]) holds client commands stamped by the
//! leader with `now`, each with a client id and serial, or a leader-stamped
//! tick. Every replica applies the same entries with
//! [`state_machine::StateMachineStore`], so every replica holds the same
//! engine and produces the same numbered event stream.
//!
//! ## A cluster in one process
//!
//! ```
//! use std::time::Duration;
//! use roomstate::{Actor, Command, Op, Profile, Write};
//! use roomstate_replica::cluster::{Cluster, ClusterConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // 3 nodes, 1 group; wait for a leader.
//! let cfg = ClusterConfig::new(3, 1, Profile::tencent());
//! let (cluster, leaders) = Cluster::start_elected(cfg, Duration::from_secs(10)).await?;
//!
//! // A client numbers its commands and finds the leader; a retry after a
//! // lost answer reuses the serial, so the write applies once.
//! let mut client = cluster.client(1);
//! let create = Command::CreateRoom { room: "r1".into(), creator: "host".into() };
//! client.room("r1", create).await.unwrap();
//! let write = Write::new("r1", Actor::Admin).op(Op::set("title", "quiz"));
//! let reply = client.room("r1", Command::Write(write)).await.unwrap();
//! assert!(reply.outcome.is_ok());
//!
//! // Every replica applied it and can fan out its event.
//! cluster.wait_converged(0, Duration::from_secs(10)).await?;
//! for node in 1..=3 {
//!     let replica = cluster.state_machine(0, node).unwrap();
//!     let events = replica.events_since(reply.events.start);
//!     assert_eq!(events.len(), 1);
//! }
//! # let _ = leaders;
//! cluster.shutdown().await;
//! # Ok::<(), roomstate_replica::cluster::ClusterError>(())
//! # }).unwrap();
//! ```
//!
//! ## Modules
//!
//! - [`types`]: the openraft type configuration, log entries, replies.
//! - [`state_machine`]: apply, exactly once, log-driven time, the event
//!   stream, snapshots (in memory or in a directory).
//! - [`mem_log`] and [`redb_log`]: the Raft log in memory and on disk.
//! - [`router`] (in-process, with fault injection) and [`http`] (loopback
//!   HTTP): the Raft network.
//! - [`cluster`]: nodes, groups, clients and room moves in one process.
//! - [`shard`]: the stable hash from room ids to groups.

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
