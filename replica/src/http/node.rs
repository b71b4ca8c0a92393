//! A node: durable log, state machine, Raft, HTTP server and tick task.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{Fatal, RaftError};
use openraft::BasicNode;

use super::network::HttpNetwork;
use super::server::serve;
use super::{Clock, WRITE_TIMEOUT};
use crate::types::{NodeId, Raft, Request, TypeConfig};

/// Name of the log file inside a node's directory.
pub const LOG_FILE: &str = "log.redb";
/// Name of the snapshot directory inside a node's directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// How long a stopping node's server may finish the requests in flight.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// Longest a leader's tick task waits before it looks at the engine's
/// `poll_timeout` again.
pub const TICK_POLL: Duration = Duration::from_millis(20);

/// openraft settings for nodes on loopback HTTP: 100 ms heartbeats,
/// elections after 400–800 ms of silence, a snapshot every 5,000 entries.
pub fn raft_config() -> Result<openraft::Config, openraft::ConfigError> {
    openraft::Config {
        cluster_name: "roomstate".to_string(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(5_000),
        max_in_snapshot_log_to_keep: 1_000,
        ..Default::default()
    }
    .validate()
}

/// What a node is made of.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's Raft id.
    pub id: NodeId,
    /// Where it keeps [`LOG_FILE`] and [`SNAPSHOT_DIR`]; created if missing.
    /// A node started on the same directory again resumes from it.
    pub dir: std::path::PathBuf,
    /// The engine's vendor profile (the same on every node).
    pub profile: roomstate::Profile,
    /// openraft's settings (see [`raft_config`]).
    pub raft: openraft::Config,
}

/// Why a node did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// Its directory could not be created or read.
    Io(std::io::ErrorKind),
    /// Its log file did not open (not a redb file, or unreadable).
    Log(openraft::StorageError<NodeId>),
    /// Its snapshot file did not validate.
    Snapshot(crate::state_machine::ReplicaSnapshotError),
    /// openraft did not start.
    Raft(Fatal<NodeId>),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(kind) => write!(f, "node directory: {kind}"),
            Self::Log(e) => write!(f, "log: {e}"),
            Self::Snapshot(e) => write!(f, "snapshot: {e}"),
            Self::Raft(e) => write!(f, "raft: {e}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// One running node: its Raft over a [`crate::redb_log::RedbLogStore`] and
/// a state machine with a snapshot directory, served over HTTP, with a tick
/// task that proposes the engine's ticks while the node leads.
pub struct HttpNode {
    id: NodeId,
    addr: std::net::SocketAddr,
    raft: Raft,
    sm: crate::state_machine::StateMachineStore,
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    ticker: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for HttpNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpNode")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpNode {
    /// Opens the node's files in `cfg.dir`, starts its Raft and serves it
    /// on `listener`. `clock` stamps client writes and ticks. A new node
    /// is not a cluster member until [`HttpNode::initialize`] (or a leader
    /// adding it); a restarted one resumes its membership from its files.
    pub async fn start(
        cfg: NodeConfig,
        listener: tokio::net::TcpListener,
        clock: Clock,
    ) -> Result<HttpNode, NodeError> {
        let addr = listener.local_addr().map_err(|e| NodeError::Io(e.kind()))?;
        let snapshots = cfg.dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&snapshots).map_err(|e| NodeError::Io(e.kind()))?;
        let log = crate::redb_log::RedbLogStore::<TypeConfig>::open(cfg.dir.join(LOG_FILE))
            .map_err(NodeError::Log)?;
        let sm = crate::state_machine::StateMachineStore::open(cfg.profile, &snapshots)
            .map_err(NodeError::Snapshot)?;
        let raft = Raft::new(
            cfg.id,
            Arc::new(cfg.raft),
            HttpNetwork::new(),
            log,
            sm.clone(),
        )
        .await
        .map_err(NodeError::Raft)?;
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, raft.clone(), Arc::clone(&clock), async {
            let _ = stopped.await;
        }));
        let ticker = tokio::spawn(tick_loop(raft.clone(), sm.clone(), clock));
        Ok(HttpNode {
            id: cfg.id,
            addr,
            raft,
            sm,
            stop_server: Some(stop_server),
            server,
            ticker,
        })
    }

    /// Makes a new cluster of `members` (ids with `host:port` addresses),
    /// this node among them. Call it on one node of a new cluster.
    pub async fn initialize(
        &self,
        members: &[(NodeId, String)],
    ) -> Result<(), RaftError<NodeId, openraft::error::InitializeError<NodeId, BasicNode>>> {
        self.raft.initialize(self::members(members)).await
    }

    /// The node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address it serves on.
    #[must_use]
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Its Raft handle.
    #[must_use]
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Its state machine.
    #[must_use]
    pub fn state_machine(&self) -> &crate::state_machine::StateMachineStore {
        &self.sm
    }

    /// Stops the tick task, Raft and the server, and waits until they are
    /// gone; the node's files are closed when the last of its tasks ends.
    /// The server gets [`STOP_GRACE`] to finish the requests it is serving
    /// (a peer's idle pooled connection closes at once); then it is
    /// aborted.
    pub async fn stop(mut self) {
        self.ticker.abort();
        let _ = (&mut self.ticker).await;
        let _ = self.raft.shutdown().await;
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
            let _ = (&mut self.server).await;
        }
    }
}

/// While `raft` leads, propose a tick when the engine's `poll_timeout` has
/// come on `clock`: grace periods, TTLs and the rate bucket expire through
/// the log, never on a follower's own clock.
async fn tick_loop(raft: Raft, sm: crate::state_machine::StateMachineStore, clock: Clock) {
    loop {
        let mut wait = TICK_POLL;
        let leading = raft.metrics().borrow().state == openraft::ServerState::Leader;
        if let (true, Some(at)) = (leading, sm.poll_timeout()) {
            let now = clock();
            if now >= at {
                // Lost the lead or stopped: look again after a poll.
                let tick = raft.client_write(Request::Tick { now });
                if let Ok(Ok(_)) = tokio::time::timeout(WRITE_TIMEOUT, tick).await {
                    wait = Duration::ZERO;
                }
            } else {
                wait = wait.min(Duration::from_millis(at.0 - now.0));
            }
        }
        tokio::time::sleep(wait).await;
    }
}

/// The members map for `Raft::initialize`: node ids with their addresses.
#[must_use]
pub fn members(nodes: &[(NodeId, String)]) -> BTreeMap<NodeId, BasicNode> {
    nodes
        .iter()
        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
        .collect()
}

/// The ids of `nodes`, for membership changes.
#[must_use]
pub fn member_ids(nodes: &[(NodeId, String)]) -> BTreeSet<NodeId> {
    nodes.iter().map(|(id, _)| *id).collect()
}
