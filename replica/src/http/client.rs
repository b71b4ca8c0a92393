//! One POST with a timeout, over a pooled HTTP/1 client.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, Request as HttpRequest, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openraft::error::{Fatal, NetworkError, RPCError, StreamingError, Unreachable};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::CONNECT_TIMEOUT;
use crate::types::{NodeId, TypeConfig};

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
    pub(super) async fn post(
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
    pub(super) async fn call<Req: Serialize, Resp: DeserializeOwned>(
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
pub(super) enum PostError {
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
    pub(super) fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, BasicNode, E> {
        match self {
            Self::BadAddress(_) | Self::Connect(_) => {
                RPCError::Unreachable(Unreachable::new(&self))
            }
            _ => RPCError::Network(NetworkError::new(&self)),
        }
    }

    pub(super) fn into_streaming(self) -> StreamingError<TypeConfig, Fatal<NodeId>> {
        match self {
            Self::BadAddress(_) | Self::Connect(_) => {
                StreamingError::Unreachable(Unreachable::new(&self))
            }
            _ => StreamingError::Network(NetworkError::new(&self)),
        }
    }
}
