//! Tests of the HTTP transport and of a node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use openraft::{BasicNode, Vote};
use roomstate::{Command, Millis, Profile};

use super::client::{HttpClient, PostError};
use super::*;
use crate::types::NodeId;

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

#[tokio::test]
async fn http_write_client_without_nodes_or_with_none_alive_gives_up() {
    let mut nobody = WriteClient::new(1, Vec::new());
    assert_eq!(nobody.write(create("x")).await, Err(WriteError::NoNodes));

    let closed: Vec<String> = (0..2)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        })
        .collect();
    let mut client = WriteClient::new(1, closed).with_deadline(Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_eq!(client.write(create("x")).await, Err(WriteError::Deadline));
    // The deadline, plus at most one attempt's connect timeout and pause.
    assert!(started.elapsed() < Duration::from_millis(300) + CONNECT_TIMEOUT + RETRY_PAUSE);
}
