//! Restart: three nodes on loopback HTTP, each with a redb log and a
//! snapshot directory, take the simulator's commands (with a snapshot and
//! a log purge in the middle), all stop, and all start again from their
//! files with the same state: the same `Engine::snapshot()` bytes on every
//! node as before the stop, the same answers to reads, and the same
//! exactly-once table (a retried serial returns its first outcome).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use roomstate::{Command, Millis, Profile};
use roomstate_replica::http::{
    raft_config, Clock, HttpNode, NodeConfig, WriteClient, WriteRequest, Written, SNAPSHOT_DIR,
};
use roomstate_replica::state_machine::SNAPSHOT_FILE;
use roomstate_replica::NodeId;
use roomstate_tests::gen;

/// Generated commands before the snapshot, and after it.
const BEFORE_SNAPSHOT: usize = 150;
const AFTER_SNAPSHOT: usize = 100;
/// Milliseconds the test clock moves per write: grace periods and TTLs of
/// the tiny profile run out during the run, through the leader's ticks.
const CLOCK_STEP_MS: u64 = 7;
/// Longest wait for the nodes to agree.
const CONVERGE: Duration = Duration::from_secs(20);

fn profile() -> Profile {
    // The simulator's tiny profile, without the request rate that would
    // reject nearly everything.
    let mut p = gen::tiny();
    p.limits.request_rate = None;
    p
}

fn generated(profile: &Profile, n: usize) -> Vec<Command> {
    let strategy = gen::command(profile);
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// A node's fixed parts: its id, directory and port.
struct Slot {
    id: NodeId,
    dir: std::path::PathBuf,
    addr: std::net::SocketAddr,
}

fn config(slot: &Slot, profile: &Profile) -> NodeConfig {
    let mut raft = raft_config().unwrap();
    // Snapshots only when the test asks, and purge everything a snapshot
    // covers, so a restart must start from the snapshot file.
    raft.snapshot_policy = openraft::SnapshotPolicy::Never;
    raft.max_in_snapshot_log_to_keep = 0;
    NodeConfig {
        id: slot.id,
        dir: slot.dir.clone(),
        profile: *profile,
        raft,
    }
}

async fn start(slots: &[Slot], profile: &Profile, clock: &Clock) -> Vec<HttpNode> {
    let mut nodes = Vec::new();
    for slot in slots {
        // The same port as before: the membership in the log names it.
        let listener = tokio::net::TcpListener::bind(slot.addr).await.unwrap();
        let node = HttpNode::start(config(slot, profile), listener, Arc::clone(clock))
            .await
            .unwrap();
        nodes.push(node);
    }
    nodes
}

/// Waits until every node has applied the same last log id, at least
/// `min_index`, with no tick due at `now`, and returns each node's engine
/// snapshot.
async fn converged(nodes: &[HttpNode], min_index: u64, now: &AtomicU64) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let applied: Vec<_> = nodes
            .iter()
            .map(|n| n.state_machine().last_applied())
            .collect();
        let same = applied.windows(2).all(|w| w[0] == w[1]);
        let far = applied[0].is_some_and(|l| l.index >= min_index);
        let t = Millis(now.load(Ordering::SeqCst));
        let idle = nodes
            .iter()
            .all(|n| n.state_machine().poll_timeout().is_none_or(|at| at > t));
        if same && far && idle {
            // Applied the same entries: the engines must agree to the byte.
            let snaps: Vec<Vec<u8>> = nodes
                .iter()
                .map(|n| n.state_machine().engine_snapshot())
                .collect();
            // Re-check: nothing was applied while taking the snapshots.
            let again: Vec<_> = nodes
                .iter()
                .map(|n| n.state_machine().last_applied())
                .collect();
            if again == applied {
                return snaps;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not converge: applied {applied:?}, want >= {min_index}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn write_all(client: &mut WriteClient, clock: &AtomicU64, commands: Vec<Command>) -> u64 {
    let mut last = 0;
    for command in commands {
        clock.fetch_add(CLOCK_STEP_MS, Ordering::SeqCst);
        let w = client.write(command).await.unwrap();
        last = w.log_index;
    }
    last
}

/// Reads every room of the generator through the log.
async fn reads(client: &mut WriteClient) -> Vec<Written> {
    let mut out = Vec::new();
    for room in ["r0", "r1", "r2"] {
        let read = Command::Read {
            room: room.into(),
            keys: None,
        };
        out.push(client.write(read).await.unwrap());
        let list = Command::QueueList { room: room.into() };
        out.push(client.write(list).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_nodes_restart_from_their_files_with_the_same_state() {
    let started = Instant::now();
    let profile = profile();
    let root = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(gen::START.0));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || Millis(now.load(Ordering::SeqCst)))
    };

    // Ports picked by the system, kept for the restart.
    let mut slots = Vec::new();
    for id in 1..=3 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        slots.push(Slot {
            id,
            dir: root.path().join(format!("node{id}")),
            addr: l.local_addr().unwrap(),
        });
    }
    let members: Vec<(NodeId, String)> = slots.iter().map(|s| (s.id, s.addr.to_string())).collect();
    let addrs: Vec<String> = members.iter().map(|(_, a)| a.clone()).collect();

    let nodes = start(&slots, &profile, &clock).await;
    nodes[0].initialize(&members).await.unwrap();
    let mut client = WriteClient::new(7, addrs.clone());

    let mut commands = gen::setup();
    commands.extend(generated(&profile, BEFORE_SNAPSHOT + AFTER_SNAPSHOT));
    let after = commands.split_off(gen::setup().len() + BEFORE_SNAPSHOT);
    let index = write_all(&mut client, &now, commands).await;

    // A snapshot on every node; the log up to it is purged.
    converged(&nodes, index, &now).await;
    for n in &nodes {
        n.raft().trigger().snapshot().await.unwrap();
    }
    for n in &nodes {
        n.raft()
            .wait(Some(CONVERGE))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= index) && m.purged.is_some(),
                "snapshot built and log purged",
            )
            .await
            .unwrap();
        let file = slots[(n.id() - 1) as usize]
            .dir
            .join(SNAPSHOT_DIR)
            .join(SNAPSHOT_FILE);
        assert!(file.exists(), "no snapshot file at {}", file.display());
    }

    let index = write_all(&mut client, &now, after).await;
    // The last write, kept to retry after the restart.
    let last_serial_req = WriteRequest {
        client: 8,
        serial: 1,
        command: Command::Join {
            room: "r0".into(),
            user: "u9".into(),
        },
    };
    let mut other = WriteClient::new(8, addrs.clone());
    let first = other.send(&last_serial_req).await.unwrap();
    assert!(first.log_index > index);

    // The clock stops; once no tick is due, the state stays put.
    let before_reads = reads(&mut client).await;
    let last_index = before_reads.last().unwrap().log_index;
    let before = converged(&nodes, last_index, &now).await;
    let applied_before = nodes[0].state_machine().last_applied().unwrap();
    assert!(before.windows(2).all(|w| w[0] == w[1]));
    let rooms_before = nodes[0].state_machine().room_count();
    assert!(rooms_before >= 2, "the run created rooms");

    for n in nodes {
        n.stop().await;
    }

    // Start again from the files: no initialize; membership, log, vote and
    // snapshot come from disk.
    let nodes = start(&slots, &profile, &clock).await;
    for n in &nodes {
        assert!(n.raft().is_initialized().await.unwrap());
    }
    let after_restart = converged(&nodes, applied_before.index, &now).await;
    for (i, (b, a)) in before.iter().zip(&after_restart).enumerate() {
        assert!(b == a, "node {} restarted with a different engine", i + 1);
    }
    assert_eq!(nodes[0].state_machine().room_count(), rooms_before);

    // Reads answer as before the stop (their seqs included).
    let mut client = WriteClient::new(9, addrs.clone());
    let after_reads = reads(&mut client).await;
    let results = |ws: &[Written]| ws.iter().map(|w| w.result.clone()).collect::<Vec<_>>();
    let outcomes = |ws: &[Written]| -> Vec<_> {
        results(ws)
            .into_iter()
            .map(|r| r.unwrap().outcome)
            .collect()
    };
    assert_eq!(outcomes(&before_reads), outcomes(&after_reads));

    // The exactly-once table came back too: the retried serial applies
    // nothing and returns the first outcome.
    let mut other = WriteClient::new(8, addrs);
    let retry = other.send(&last_serial_req).await.unwrap();
    assert_eq!(retry.result, first.result);
    let still = converged(&nodes, retry.log_index, &now).await;
    assert!(
        still.iter().all(|s| *s == before[0]),
        "a retried write or a read changed the engine"
    );

    for n in nodes {
        n.stop().await;
    }
    eprintln!("restart test took {:?}", started.elapsed());
}
