//! A client that writes numbered commands, following the leader.

use std::time::Duration;

use roomstate::Command;

use super::client::HttpClient;
use super::wire::{WriteReply, WriteRequest};
use super::{CONNECT_TIMEOUT, PATH_WRITE, RETRY_PAUSE, WRITE_DEADLINE, WRITE_TIMEOUT};
use crate::types::{ClientId, CommandResult, NodeId};

/// How a client write ended without an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// No node applied it within the client's deadline: it may still apply
    /// later (at most once); retrying the same serial is safe.
    Deadline,
    /// The client has no node address to ask.
    NoNodes,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deadline => f.write_str("no node applied the write before the deadline"),
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
    /// How long one write is retried.
    deadline: Duration,
    /// POSTs sent, over every write.
    attempts: u64,
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
            deadline: WRITE_DEADLINE,
            attempts: 0,
        }
    }

    /// The same client retrying each write for `deadline` instead of
    /// [`WRITE_DEADLINE`].
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> WriteClient {
        self.deadline = deadline;
        self
    }

    /// The client's id.
    #[must_use]
    pub fn id(&self) -> ClientId {
        self.client
    }

    /// How many requests the client has sent, over all its writes: one per
    /// write that its first node applies, more for each redirect and retry
    /// (a figure to watch for a client that keeps asking the wrong node).
    #[must_use]
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Sends `command` with the next serial until a node applies it or the
    /// deadline ([`WRITE_DEADLINE`] unless set) passes.
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
    /// lost) until a node applies it or the deadline passes.
    pub async fn send(&mut self, req: &WriteRequest) -> Result<Written, WriteError> {
        if self.nodes.is_empty() {
            return Err(WriteError::NoNodes);
        }
        let deadline = tokio::time::Instant::now() + self.deadline;
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
            self.attempts += 1;
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
