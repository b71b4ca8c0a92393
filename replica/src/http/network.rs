//! openraft's `RaftNetworkFactory` and `RaftNetwork` over HTTP.

use std::future::Future;
use std::time::Duration;

use openraft::error::{
    Fatal, InstallSnapshotError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Snapshot, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::client::{HttpClient, PostError};
use super::wire::FullSnapshot;
use super::{
    PATH_APPEND, PATH_SNAPSHOT, PATH_SNAPSHOT_CHUNK, PATH_VOTE, RPC_TIMEOUT, SNAPSHOT_TIMEOUT,
};
use crate::types::{NodeId, TypeConfig};

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
