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

// openraft's error types (ConfigError, RaftError, ...) are large; they are
// its API, and boxing them here would only add an allocation per error.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, Request as HttpRequest, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openraft::error::{
    ClientWriteError, Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Snapshot, SnapshotMeta, Vote};
use roomstate::{Command, Millis};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::types::{ClientCommand, ClientId, CommandResult, NodeId, Raft, Request, TypeConfig};

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

// ---------------------------------------------------------------------------
// Wire types

/// A whole snapshot in one request.
#[derive(Serialize, Deserialize)]
struct FullSnapshot {
    vote: Vote<NodeId>,
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
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
    /// It did not apply within [`WRITE_TIMEOUT`] (the leader may have lost
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

// ---------------------------------------------------------------------------
// Client side: one POST

/// The pooled HTTP client every outgoing request of a process goes through.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with [`CONNECT_TIMEOUT`] and `TCP_NODELAY` (Raft messages
    /// are small and latency-bound).
    #[must_use]
    pub fn new() -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpClient { inner }
    }

    /// POSTs `body` to `http://{addr}{path}` and returns the answer's body
    /// if the status is 200, all within `timeout`.
    async fn post(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, PostError> {
        let request = HttpRequest::builder()
            .method(Method::POST)
            .uri(format!("http://{addr}{path}"))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PostError::BadAddress(e.to_string()))?;
        let exchange = async {
            let response = self.inner.request(request).await.map_err(|e| {
                if e.is_connect() {
                    PostError::Connect(e.to_string())
                } else {
                    PostError::Io(e.to_string())
                }
            })?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| PostError::Io(e.to_string()))?
                .to_bytes();
            if status == StatusCode::OK {
                Ok(bytes)
            } else {
                Err(PostError::Status(status.as_u16()))
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(PostError::Timeout(timeout)),
        }
    }

    /// POSTs a postcard-encoded `req` and decodes the answer as `Resp`.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, PostError> {
        let body = postcard::to_allocvec(req).map_err(|e| PostError::Encode(e.to_string()))?;
        let bytes = self.post(addr, path, body, timeout).await?;
        postcard::from_bytes(&bytes).map_err(|e| PostError::Decode(e.to_string()))
    }
}

/// Why a POST did not produce an answer.
#[derive(Debug)]
enum PostError {
    /// The address does not make a URI.
    BadAddress(String),
    /// No TCP connection (refused, or [`CONNECT_TIMEOUT`]).
    Connect(String),
    /// The connection failed during the exchange.
    Io(String),
    /// No answer within the timeout.
    Timeout(Duration),
    /// The peer answered with a status other than 200.
    Status(u16),
    /// The request did not encode.
    Encode(String),
    /// The answer did not decode.
    Decode(String),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadAddress(e) => write!(f, "bad peer address: {e}"),
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Io(e) => write!(f, "connection failed: {e}"),
            Self::Timeout(d) => write!(f, "no answer within {d:?}"),
            Self::Status(s) => write!(f, "peer answered HTTP {s}"),
            Self::Encode(e) => write!(f, "request does not encode: {e}"),
            Self::Decode(e) => write!(f, "answer does not decode: {e}"),
        }
    }
}

impl std::error::Error for PostError {}

impl PostError {
    /// The error as openraft's RPC error: refused connections and bad
    /// addresses are `Unreachable` (openraft backs off), the rest are
    /// network errors (openraft retries).
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, BasicNode, E> {
        match self {
            Self::BadAddress(_) | Self::Connect(_) => {
                RPCError::Unreachable(Unreachable::new(&self))
            }
            _ => RPCError::Network(NetworkError::new(&self)),
        }
    }

    fn into_streaming(self) -> StreamingError<TypeConfig, Fatal<NodeId>> {
        match self {
            Self::BadAddress(_) | Self::Connect(_) => {
                StreamingError::Unreachable(Unreachable::new(&self))
            }
            _ => StreamingError::Network(NetworkError::new(&self)),
        }
    }
}

// ---------------------------------------------------------------------------
// Client side: openraft's network

/// openraft's network factory over HTTP: one [`HttpConnection`] per peer,
/// all sharing one pooled client.
#[derive(Clone, Debug, Default)]
pub struct HttpNetwork {
    client: HttpClient,
}

impl HttpNetwork {
    /// A network with its own connection pool.
    #[must_use]
    pub fn new() -> HttpNetwork {
        HttpNetwork::default()
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> HttpConnection {
        HttpConnection {
            client: self.client.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// The RPCs to one peer at `addr` (`host:port`).
#[derive(Debug)]
pub struct HttpConnection {
    client: HttpClient,
    target: NodeId,
    addr: String,
}

impl HttpConnection {
    /// One RPC whose answer is `Result<Resp, E>` from the peer's Raft.
    async fn rpc<Req: Serialize, Resp: DeserializeOwned, E>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Resp, E> = self
            .client
            .call(&self.addr, path, req, timeout)
            .await
            .map_err(PostError::into_rpc)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for HttpConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let timeout = option.hard_ttl().min(RPC_TIMEOUT);
        self.rpc(PATH_APPEND, &rpc, timeout).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        // Only used if openraft sends a snapshot in chunks; this network
        // overrides `full_snapshot` to send it whole.
        let timeout = option.hard_ttl().min(SNAPSHOT_TIMEOUT);
        self.rpc(PATH_SNAPSHOT_CHUNK, &rpc, timeout).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let timeout = option.hard_ttl().min(RPC_TIMEOUT);
        self.rpc(PATH_VOTE, &rpc, timeout).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let body = FullSnapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot.into_inner(),
        };
        let send = self
            .client
            .call::<_, Result<SnapshotResponse<NodeId>, Fatal<NodeId>>>(
                &self.addr,
                PATH_SNAPSHOT,
                &body,
                SNAPSHOT_TIMEOUT,
            );
        tokio::select! {
            answer = send => {
                let answer = answer.map_err(PostError::into_streaming)?;
                answer.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.target, e)))
            }
            closed = cancel => Err(StreamingError::Closed(closed)),
        }
    }
}

// ---------------------------------------------------------------------------
// Server side

/// What the handlers share.
struct Node {
    raft: Raft,
    clock: Clock,
}

/// The routes of one node, over its `raft`; `clock` stamps client writes.
pub fn router(raft: Raft, clock: Clock) -> Router {
    Router::new()
        .route(PATH_APPEND, post(append))
        .route(PATH_VOTE, post(vote))
        .route(PATH_SNAPSHOT, post(snapshot))
        .route(PATH_SNAPSHOT_CHUNK, post(snapshot_chunk))
        .route(PATH_WRITE, post(write))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(Node { raft, clock }))
}

/// Serves [`router`] on `listener` until `shutdown` completes, with
/// `TCP_NODELAY` on every accepted connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    raft: Raft,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        // Without it small answers wait for Nagle; failing to set it only
        // costs latency.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(raft, clock))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `400` with the reason, for a body that does not decode.
fn bad_request(what: &str, e: &postcard::Error) -> HttpResponse {
    (StatusCode::BAD_REQUEST, format!("{what}: {e}")).into_response()
}

/// Decodes a whole body: bytes left over after the value make it
/// malformed too, so that one encoding means one request.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, postcard::Error> {
    match postcard::take_from_bytes(body)? {
        (value, []) => Ok(value),
        _ => Err(postcard::Error::DeserializeBadEncoding),
    }
}

/// `200` with `value` postcard-encoded.
fn encoded<T: Serialize>(value: &T) -> HttpResponse {
    match postcard::to_allocvec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append(State(node): State<Arc<Node>>, body: Bytes) -> HttpResponse {
    match decode::<AppendEntriesRequest<TypeConfig>>(&body) {
        Ok(rpc) => encoded(&node.raft.append_entries(rpc).await),
        Err(e) => bad_request("append-entries request", &e),
    }
}

async fn vote(State(node): State<Arc<Node>>, body: Bytes) -> HttpResponse {
    match decode::<VoteRequest<NodeId>>(&body) {
        Ok(rpc) => encoded(&node.raft.vote(rpc).await),
        Err(e) => bad_request("vote request", &e),
    }
}

async fn snapshot(State(node): State<Arc<Node>>, body: Bytes) -> HttpResponse {
    match decode::<FullSnapshot>(&body) {
        Ok(full) => {
            let snapshot = Snapshot {
                meta: full.meta,
                snapshot: Box::new(Cursor::new(full.data)),
            };
            encoded(&node.raft.install_full_snapshot(full.vote, snapshot).await)
        }
        Err(e) => bad_request("snapshot", &e),
    }
}

async fn snapshot_chunk(State(node): State<Arc<Node>>, body: Bytes) -> HttpResponse {
    match decode::<InstallSnapshotRequest<TypeConfig>>(&body) {
        Ok(rpc) => encoded(&node.raft.install_snapshot(rpc).await),
        Err(e) => bad_request("snapshot chunk", &e),
    }
}

async fn write(State(node): State<Arc<Node>>, body: Bytes) -> HttpResponse {
    let req = match decode::<WriteRequest>(&body) {
        Ok(req) => req,
        Err(e) => return bad_request("write request", &e),
    };
    encoded(&propose(&node, req).await)
}

/// Proposes a client write on this node and says how it ended.
async fn propose(node: &Node, req: WriteRequest) -> WriteReply {
    let entry = Request::Command(ClientCommand {
        client: req.client,
        serial: req.serial,
        now: (node.clock)(),
        command: req.command,
    });
    let written = match tokio::time::timeout(WRITE_TIMEOUT, node.raft.client_write(entry)).await {
        Ok(written) => written,
        Err(_) => return WriteReply::Failed(WriteFailure::Timeout),
    };
    match written {
        Ok(done) => match done.data.results.into_iter().next() {
            Some(result) => WriteReply::Applied {
                result,
                log_index: done.log_id.index,
                leader_id: node.raft.metrics().borrow().id,
            },
            None => WriteReply::Failed(WriteFailure::NoResult),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            WriteReply::ForwardToLeader {
                leader_id: f.leader_id,
                leader_addr: f.leader_node.map(|n| n.addr),
            }
        }
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(_))) => {
            WriteReply::Failed(WriteFailure::Refused)
        }
        Err(RaftError::Fatal(_)) => WriteReply::Failed(WriteFailure::ShuttingDown),
    }
}

// ---------------------------------------------------------------------------
// Client writes

/// How a client write ended without an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// No node applied it within [`WRITE_DEADLINE`]: it may still apply
    /// later (at most once); retrying the same serial is safe.
    Deadline,
    /// The client has no node address to ask.
    NoNodes,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deadline => write!(f, "no node applied the write within {WRITE_DEADLINE:?}"),
            Self::NoNodes => f.write_str("no node address to send the write to"),
        }
    }
}

impl std::error::Error for WriteError {}

/// A write that applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// The state machine's result for the command.
    pub result: CommandResult,
    /// The log index of the entry that carried it.
    pub log_index: u64,
    /// The leader that answered.
    pub leader_id: NodeId,
    /// The serial the client gave it.
    pub serial: u64,
}

/// A client that sends numbered writes to a cluster over HTTP, following
/// redirects to the leader and retrying the same serial until a node
/// answers with the outcome.
#[derive(Debug)]
pub struct WriteClient {
    http: HttpClient,
    client: ClientId,
    last_serial: u64,
    /// Every node's address, asked in turn when the leader is unknown.
    nodes: Vec<String>,
    /// The node asked first: the last one known to lead.
    target: usize,
    /// Addresses learned from redirects.
    leader_hint: Option<String>,
}

impl WriteClient {
    /// A client named `client` (unique among the cluster's clients) that
    /// knows the nodes at `nodes` (`host:port`).
    #[must_use]
    pub fn new(client: ClientId, nodes: Vec<String>) -> WriteClient {
        WriteClient {
            http: HttpClient::new(),
            client,
            last_serial: 0,
            nodes,
            target: 0,
            leader_hint: None,
        }
    }

    /// The client's id.
    #[must_use]
    pub fn id(&self) -> ClientId {
        self.client
    }

    /// Sends `command` with the next serial until a node applies it or
    /// [`WRITE_DEADLINE`] passes.
    pub async fn write(&mut self, command: Command) -> Result<Written, WriteError> {
        self.last_serial = self.last_serial.saturating_add(1);
        let req = WriteRequest {
            client: self.client,
            serial: self.last_serial,
            command,
        };
        self.send(&req).await
    }

    /// Sends `req` (a new write, or a retry of one whose outcome was
    /// lost) until a node applies it or [`WRITE_DEADLINE`] passes.
    pub async fn send(&mut self, req: &WriteRequest) -> Result<Written, WriteError> {
        if self.nodes.is_empty() {
            return Err(WriteError::NoNodes);
        }
        let deadline = tokio::time::Instant::now() + WRITE_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            let addr = match self.leader_hint.take() {
                Some(addr) => addr,
                None => match self.nodes.get(self.target) {
                    Some(addr) => addr.clone(),
                    None => {
                        self.target = 0;
                        continue;
                    }
                },
            };
            let timeout = WRITE_TIMEOUT + CONNECT_TIMEOUT;
            match self
                .http
                .call::<_, WriteReply>(&addr, PATH_WRITE, req, timeout)
                .await
            {
                Ok(WriteReply::Applied {
                    result,
                    log_index,
                    leader_id,
                }) => {
                    if let Some(i) = self.nodes.iter().position(|a| *a == addr) {
                        self.target = i;
                    }
                    return Ok(Written {
                        result,
                        log_index,
                        leader_id,
                        serial: req.serial,
                    });
                }
                Ok(WriteReply::ForwardToLeader {
                    leader_addr: Some(leader),
                    ..
                }) if leader != addr => self.leader_hint = Some(leader),
                // No leader known, the node failed, or it is unreachable:
                // ask the next node after a pause.
                Ok(_) | Err(_) => {
                    self.target = (self.target + 1) % self.nodes.len();
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        Err(WriteError::Deadline)
    }
}

/// The members map for `Raft::initialize`: node ids with their addresses.
#[must_use]
pub fn members(nodes: &[(NodeId, String)]) -> std::collections::BTreeMap<NodeId, BasicNode> {
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

// ---------------------------------------------------------------------------
// A node: durable log, state machine, Raft, HTTP server and tick task

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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;
    use roomstate::Profile;

    fn test_config(id: NodeId, dir: &std::path::Path) -> NodeConfig {
        let mut raft = raft_config().unwrap();
        // Snapshots only when a test asks; then the log they cover goes.
        raft.snapshot_policy = openraft::SnapshotPolicy::Never;
        raft.max_in_snapshot_log_to_keep = 0;
        NodeConfig {
            id,
            dir: dir.join(format!("node{id}")),
            profile: Profile::netease(),
            raft,
        }
    }

    /// Starts node `id` on a fresh port.
    async fn node(id: NodeId, dir: &std::path::Path) -> HttpNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // A stopped clock: no timer comes due, so no tick changes the
        // engine behind a test's back.
        let clock: Clock = Arc::new(|| Millis(1_000_000));
        HttpNode::start(test_config(id, dir), listener, clock)
            .await
            .unwrap()
    }

    /// Starts nodes `1..=n` on fresh ports and initializes their cluster.
    async fn cluster(n: u64, dir: &std::path::Path) -> (Vec<HttpNode>, Vec<String>) {
        let mut nodes = Vec::new();
        for id in 1..=n {
            nodes.push(node(id, dir).await);
        }
        let members: Vec<(NodeId, String)> = nodes
            .iter()
            .map(|n| (n.id(), n.addr().to_string()))
            .collect();
        nodes[0].initialize(&members).await.unwrap();
        let addrs = members.into_iter().map(|(_, a)| a).collect();
        (nodes, addrs)
    }

    fn create(room: &str) -> Command {
        Command::CreateRoom {
            room: room.into(),
            creator: "host".into(),
        }
    }

    /// A raw POST, answering the status and the body.
    async fn raw_post(addr: &str, path: &str, body: Vec<u8>) -> (u16, Bytes) {
        let client = HttpClient::new();
        match client.post(addr, path, body, Duration::from_secs(5)).await {
            Ok(bytes) => (200, bytes),
            Err(PostError::Status(s)) => (s, Bytes::new()),
            Err(e) => panic!("POST {path}: {e}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_bodies_that_do_not_decode_get_400_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (nodes, addrs) = cluster(1, dir.path()).await;
        let mut client = WriteClient::new(1, addrs.clone());
        client.write(create("lobby")).await.unwrap();
        let sm = nodes[0].state_machine();
        let (applied, engine) = (sm.last_applied(), sm.engine_snapshot());

        let garbage: [&[u8]; 3] = [b"", &[0xff; 32], b"not postcard at all"];
        for path in [
            PATH_APPEND,
            PATH_VOTE,
            PATH_SNAPSHOT,
            PATH_SNAPSHOT_CHUNK,
            PATH_WRITE,
        ] {
            for body in garbage {
                let (status, _) = raw_post(&addrs[0], path, body.to_vec()).await;
                assert_eq!(status, 400, "{path} with {body:?}");
            }
        }
        // A write request with bytes left over after it is not a write.
        let mut trailing = postcard::to_allocvec(&WriteRequest {
            client: 2,
            serial: 1,
            command: create("x"),
        })
        .unwrap();
        trailing.extend_from_slice(&[0; 4]);
        let (status, _) = raw_post(&addrs[0], PATH_WRITE, trailing).await;
        assert_eq!(status, 400);

        let (status, _) = raw_post(&addrs[0], "/nowhere", Vec::new()).await;
        assert_eq!(status, 404);
        // Nothing above reached Raft or the engine.
        assert_eq!(sm.last_applied(), applied);
        assert_eq!(sm.engine_snapshot(), engine);
        // The node still serves.
        let w = client.write(create("hall")).await.unwrap();
        assert!(w.result.is_ok());
        for n in nodes {
            n.stop().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_follower_answers_forward_to_leader_with_the_leaders_address() {
        let dir = tempfile::tempdir().unwrap();
        let (nodes, addrs) = cluster(3, dir.path()).await;
        let mut client = WriteClient::new(1, addrs.clone());
        let w = client.write(create("lobby")).await.unwrap();
        let leader = w.leader_id;
        let follower = nodes.iter().find(|n| n.id() != leader).unwrap();
        // Wait until the follower knows the leader.
        follower
            .raft()
            .wait(Some(Duration::from_secs(10)))
            .current_leader(leader, "follower knows the leader")
            .await
            .unwrap();
        let req = WriteRequest {
            client: 2,
            serial: 1,
            command: create("hall"),
        };
        let reply: WriteReply = HttpClient::new()
            .call(
                &follower.addr().to_string(),
                PATH_WRITE,
                &req,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let leader_addr = nodes.iter().find(|n| n.id() == leader).unwrap().addr();
        assert_eq!(
            reply,
            WriteReply::ForwardToLeader {
                leader_id: Some(leader),
                leader_addr: Some(leader_addr.to_string()),
            }
        );
        for n in nodes {
            n.stop().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_a_retried_serial_applies_once_and_returns_the_first_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let (nodes, addrs) = cluster(1, dir.path()).await;
        let mut client = WriteClient::new(5, addrs);
        let req = WriteRequest {
            client: 5,
            serial: 1,
            command: create("lobby"),
        };
        let first = client.send(&req).await.unwrap();
        let engine = nodes[0].state_machine().engine_snapshot();
        let again = client.send(&req).await.unwrap();
        assert_eq!(again.result, first.result);
        assert!(
            again.log_index > first.log_index,
            "the retry is a new entry"
        );
        // Creating the room twice would have been rejected and changed the
        // room's seq; the retry changed nothing.
        assert_eq!(nodes[0].state_machine().engine_snapshot(), engine);
        for n in nodes {
            n.stop().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_a_learner_joining_after_the_purge_installs_the_snapshot_over_http() {
        let dir = tempfile::tempdir().unwrap();
        let (mut nodes, addrs) = cluster(3, dir.path()).await;
        let mut client = WriteClient::new(1, addrs);
        for i in 0..20 {
            client.write(create(&format!("room{i}"))).await.unwrap();
        }
        let leader_id = client.write(create("last")).await.unwrap().leader_id;
        let leader = nodes.iter().find(|n| n.id() == leader_id).unwrap();
        leader.raft().trigger().snapshot().await.unwrap();
        let purged = leader
            .raft()
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.purged.is_some(), "leader purged its log")
            .await
            .unwrap()
            .purged
            .unwrap();
        assert!(purged.index > 20, "purged only up to {purged:?}");

        // Node 4 starts empty; the entries it lacks are gone from the
        // leader's log, so only /raft/snapshot can bring them.
        let learner = node(4, dir.path()).await;
        let addr = learner.addr().to_string();
        leader
            .raft()
            .add_learner(4, BasicNode::new(addr), true)
            .await
            .unwrap();
        let m = learner
            .raft()
            .wait(Some(Duration::from_secs(10)))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= purged.index),
                "learner installed the snapshot",
            )
            .await
            .unwrap();
        assert_eq!(m.purged.map(|p| p.index), Some(purged.index));
        let want = leader.state_machine().engine_snapshot();
        assert_eq!(learner.state_machine().engine_snapshot(), want);
        assert!(learner.state_machine().room_count() >= 21);

        nodes.push(learner);
        for n in nodes {
            n.stop().await;
        }
    }

    #[tokio::test]
    async fn http_refused_connection_is_unreachable_and_silence_is_a_timeout() {
        let vote = || VoteRequest::new(Vote::new(1, 1), None);
        // A port nobody listens on.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut net = HttpNetwork::new();
        let mut conn = net.new_client(2, &BasicNode::new(closed.to_string())).await;
        let err = conn
            .vote(vote(), RPCOption::new(Duration::from_secs(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");

        // A peer that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let mut conn = net.new_client(3, &BasicNode::new(addr.to_string())).await;
        let started = std::time::Instant::now();
        let err = conn
            .vote(vote(), RPCOption::new(Duration::from_millis(200)))
            .await
            .unwrap_err();
        assert!(matches!(err, RPCError::Network(_)), "{err:?}");
        assert!(err.to_string().contains("no answer within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        hold.abort();
    }
}
