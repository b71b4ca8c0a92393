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
    // A stopped clock: no timer comes due, so no tick changes the
    // engine behind a test's back.
    node_on_clock(id, dir, Arc::new(|| Millis(1_000_000))).await
}

/// Starts node `id` on a fresh port with `clock`.
async fn node_on_clock(id: NodeId, dir: &std::path::Path, clock: Clock) -> HttpNode {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    HttpNode::start(test_config(id, dir), listener, clock)
        .await
        .unwrap()
}

/// Starts nodes `1..=n` on fresh ports and initializes their cluster.
async fn cluster(n: u64, dir: &std::path::Path) -> (Vec<HttpNode>, Vec<String>) {
    let clock: Clock = Arc::new(|| Millis(1_000_000));
    cluster_on_clock(n, dir, &clock).await
}

/// [`cluster`], every node on `clock`.
async fn cluster_on_clock(
    n: u64,
    dir: &std::path::Path,
    clock: &Clock,
) -> (Vec<HttpNode>, Vec<String>) {
    let mut nodes = Vec::new();
    for id in 1..=n {
        nodes.push(node_on_clock(id, dir, Arc::clone(clock)).await);
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
    let closed = closed_ports(1).remove(0);
    let mut net = HttpNetwork::new();
    let mut conn = net.new_client(2, &BasicNode::new(closed.clone())).await;
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

    // A whole snapshot to the closed port: unreachable too, so openraft
    // backs off instead of resending it at once.
    let mut conn = net.new_client(2, &BasicNode::new(closed.clone())).await;
    let snapshot = openraft::Snapshot::<crate::types::TypeConfig> {
        meta: openraft::SnapshotMeta::default(),
        snapshot: Box::new(std::io::Cursor::new(vec![1, 2, 3])),
    };
    let err = conn
        .full_snapshot(
            Vote::new(1, 1),
            snapshot,
            std::future::pending(),
            RPCOption::new(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, openraft::error::StreamingError::Unreachable(_)),
        "{err:?}"
    );
}

/// `n` loopback addresses nobody listens on.
fn closed_ports(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn http_write_client_without_nodes_or_with_none_alive_gives_up() {
    let mut nobody = WriteClient::new(1, Vec::new());
    assert_eq!(nobody.write(create("x")).await, Err(WriteError::NoNodes));
    assert_eq!(
        WriteError::NoNodes.to_string(),
        "no node address to send the write to"
    );
    assert_eq!(
        WriteError::Deadline.to_string(),
        "no node applied the write before the deadline"
    );

    let closed = closed_ports(2);
    let mut client = WriteClient::new(1, closed).with_deadline(Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_eq!(client.write(create("x")).await, Err(WriteError::Deadline));
    // The deadline, plus at most one attempt's connect timeout and pause.
    assert!(started.elapsed() < Duration::from_millis(300) + CONNECT_TIMEOUT + RETRY_PAUSE);
}

/// Waits until every node has applied the entry at `index`.
async fn applied_everywhere(nodes: &[HttpNode], index: u64) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !nodes.iter().all(|n| {
        n.state_machine()
            .last_applied()
            .is_some_and(|l| l.index >= index)
    }) {
        assert!(
            std::time::Instant::now() < until,
            "entry {index} never applied everywhere"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A grace period runs out on the leader's clock and reaches every node
/// through the log. No client command follows the disconnect, so only the
/// leader's tick task can expire it; until the clock reaches the
/// deadline, the user stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_the_leaders_tick_expires_a_grace_period_on_every_node() {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    const START: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(START));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || Millis(now.load(SeqCst)))
    };
    let (nodes, addrs) = cluster_on_clock(3, dir.path(), &clock).await;
    let mut client = WriteClient::new(1, addrs);
    client.write(create("g")).await.unwrap();
    let join = Command::Join {
        room: "g".into(),
        user: "u".into(),
    };
    client.write(join).await.unwrap();
    let disconnect = Command::Disconnect {
        room: "g".into(),
        user: "u".into(),
    };
    let dropped = client.write(disconnect).await.unwrap();
    assert!(dropped.result.is_ok(), "{:?}", dropped.result);
    applied_everywhere(&nodes, dropped.log_index).await;
    let grace = test_config(1, dir.path())
        .profile
        .limits
        .disconnect_grace_ms;
    let deadline = START + grace;
    for n in &nodes {
        let sm = n.state_machine();
        assert!(
            sm.is_present("g", "u"),
            "node {} lost the user at once",
            n.id()
        );
        assert_eq!(sm.poll_timeout(), Some(Millis(deadline)), "node {}", n.id());
    }

    // A millisecond short: ten of the tick task's polls change nothing.
    now.store(deadline - 1, SeqCst);
    tokio::time::sleep(TICK_POLL * 10).await;
    assert!(nodes.iter().all(|n| n.state_machine().is_present("g", "u")));

    now.store(deadline, SeqCst);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while nodes.iter().any(|n| n.state_machine().is_present("g", "u")) {
        assert!(
            std::time::Instant::now() < until,
            "the grace period never expired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every node took the expiry at the same log entry, at the same time.
    let leader = nodes.iter().find(|n| n.id() == dropped.leader_id).unwrap();
    let last = leader.raft().metrics().borrow().last_log_index.unwrap();
    applied_everywhere(&nodes, last).await;
    let engine = nodes[0].state_machine().engine_snapshot();
    for n in &nodes {
        assert_eq!(n.state_machine().now(), Millis(deadline), "node {}", n.id());
        assert_eq!(
            n.state_machine().engine_snapshot(),
            engine,
            "node {}",
            n.id()
        );
    }
    for n in nodes {
        n.stop().await;
    }
}

/// The settings [`raft_config`] documents: 100 ms heartbeats, elections
/// after 400–800 ms of silence, a snapshot every 5,000 entries with 1,000
/// kept after it.
#[test]
fn http_raft_config_is_the_one_documented() {
    let cfg = raft_config().unwrap();
    assert_eq!(cfg.cluster_name, "roomstate");
    assert_eq!(
        (
            cfg.heartbeat_interval,
            cfg.election_timeout_min,
            cfg.election_timeout_max
        ),
        (100, 400, 800)
    );
    assert_eq!(
        cfg.snapshot_policy,
        openraft::SnapshotPolicy::LogsSinceLast(5_000)
    );
    assert_eq!(cfg.max_in_snapshot_log_to_keep, 1_000);
}

#[test]
fn http_members_and_member_ids_keep_every_node() {
    let nodes = [(3, "127.0.0.1:9003".to_string()), (1, "h:1".to_string())];
    let map = members(&nodes);
    assert_eq!(
        map.into_iter().collect::<Vec<_>>(),
        [
            (1, BasicNode::new("h:1")),
            (3, BasicNode::new("127.0.0.1:9003"))
        ]
    );
    assert_eq!(member_ids(&nodes).into_iter().collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn http_wall_clock_is_milliseconds_since_the_epoch() {
    let ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let before = ms();
    let now = wall_clock();
    let after = ms();
    assert!(
        (before..=after).contains(&now.0),
        "{before} {now:?} {after}"
    );
}

/// A node whose files cannot be opened does not start, and its error
/// names the part that failed.
#[tokio::test]
async fn http_a_node_whose_files_do_not_open_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let start = |cfg: NodeConfig| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clock: Clock = Arc::new(|| Millis(1));
        HttpNode::start(cfg, listener, clock).await.map(|_| ())
    };
    let words = |r: Result<(), NodeError>| r.map_err(|e| e.to_string()).unwrap_err();

    // Its directory is a file.
    std::fs::write(dir.path().join("node1"), b"a file").unwrap();
    let err = words(start(test_config(1, dir.path())).await);
    assert!(err.starts_with("node directory: "), "{err}");

    // Its log is not a redb file.
    let cfg = test_config(2, dir.path());
    std::fs::create_dir_all(&cfg.dir).unwrap();
    std::fs::write(cfg.dir.join(LOG_FILE), vec![7u8; 4096]).unwrap();
    let err = words(start(cfg).await);
    assert!(err.starts_with("log: "), "{err}");

    // Its snapshot is not a replica snapshot.
    let cfg = test_config(3, dir.path());
    std::fs::create_dir_all(cfg.dir.join(SNAPSHOT_DIR)).unwrap();
    let file = cfg
        .dir
        .join(SNAPSHOT_DIR)
        .join(crate::state_machine::SNAPSHOT_FILE);
    std::fs::write(file, b"not a snapshot").unwrap();
    let err = words(start(cfg).await);
    assert_eq!(err, "snapshot: not a replica snapshot");

    // A running node shows its id and address in its debug form.
    let node = node(4, dir.path()).await;
    let shown = format!("{node:?}");
    assert!(
        shown.starts_with("HttpNode { id: 4, addr: ") && shown.contains(&node.addr().to_string()),
        "{shown}"
    );
    node.stop().await;
}

/// A client asks its nodes in turn, one attempt each, when they do not
/// answer; it follows a follower's redirect to the leader at once; and it
/// asks the node that applied its last write first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_write_client_goes_round_its_nodes_follows_redirects_and_keeps_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, addrs) = cluster(3, dir.path()).await;
    let first = WriteClient::new(1, addrs).write(create("lobby")).await;
    let leader = first.unwrap().leader_id;
    let addr = |id: NodeId| {
        let n = nodes.iter().find(|n| n.id() == id).unwrap();
        n.addr().to_string()
    };
    let followers: Vec<NodeId> = (1..=3).filter(|&id| id != leader).collect();
    for n in nodes.iter().filter(|n| n.id() != leader) {
        n.raft()
            .wait(Some(Duration::from_secs(10)))
            .current_leader(leader, "the follower knows the leader")
            .await
            .unwrap();
    }

    // Two ports that refuse, then the leader.
    let mut ports = closed_ports(2);
    ports.push(addr(leader));
    let mut client = WriteClient::new(2, ports).with_deadline(Duration::from_secs(5));
    assert_eq!(client.id(), 2);
    let w = client.write(create("a")).await.unwrap();
    assert_eq!((w.leader_id, w.serial, client.attempts()), (leader, 1, 3));
    let w = client.write(create("b")).await.unwrap();
    assert_eq!((w.serial, client.attempts()), (2, 4), "the leader first");

    // Two followers, then the leader: the first follower names the leader.
    let order = vec![addr(followers[0]), addr(followers[1]), addr(leader)];
    let mut client = WriteClient::new(3, order);
    client.write(create("c")).await.unwrap();
    assert_eq!(client.attempts(), 2, "one redirect");
    client.write(create("d")).await.unwrap();
    assert_eq!(client.attempts(), 3, "the leader first");
    for n in nodes {
        n.stop().await;
    }
}

/// A node may take up to [`WRITE_TIMEOUT`] to say how a write ended, so a
/// client waits longer than that for one answer: a node that applies a
/// write after the whole timeout answers the first attempt, not a retry.
#[tokio::test]
async fn http_a_write_client_waits_out_a_node_that_answers_at_its_timeout() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let asked = Arc::new(AtomicUsize::new(0));
    let slow = {
        let asked = Arc::clone(&asked);
        axum::Router::new().route(
            PATH_WRITE,
            axum::routing::post(move |body: Bytes| async move {
                asked.fetch_add(1, SeqCst);
                let req: WriteRequest = postcard::from_bytes(&body).unwrap();
                tokio::time::sleep(WRITE_TIMEOUT).await;
                let reply = WriteReply::Applied {
                    result: Err(crate::types::Refused::StaleSerial { last: req.serial }),
                    log_index: 9,
                    leader_id: 1,
                };
                postcard::to_allocvec(&reply).unwrap()
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, slow).await });
    let mut client = WriteClient::new(1, vec![addr]).with_deadline(WRITE_TIMEOUT);
    let w = client.write(create("x")).await.unwrap();
    assert_eq!((w.log_index, w.serial), (9, 1));
    assert_eq!((client.attempts(), asked.load(SeqCst)), (1, 1));
    server.abort();
}
