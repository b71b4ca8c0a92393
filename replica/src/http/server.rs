//! The routes of one node.

use std::future::Future;
use std::io::Cursor;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::post;
use axum::Router;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::Snapshot;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::{FullSnapshot, WriteFailure, WriteReply, WriteRequest};
use super::{
    Clock, MAX_BODY_BYTES, PATH_APPEND, PATH_SNAPSHOT, PATH_SNAPSHOT_CHUNK, PATH_VOTE, PATH_WRITE,
    WRITE_TIMEOUT,
};
use crate::types::{ClientCommand, NodeId, Raft, Request, TypeConfig};

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
