//! Exactly once, time through the log, and snapshot validation on a
//! 3-node cluster.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Cursor;
use std::time::{Duration, Instant};

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use roomstate::{Command, Millis, Profile};
use roomstate_replica::cluster::{Cluster, ClusterConfig, ProposeError};

mod cluster_common;
use cluster_common::create;
use roomstate_replica::{ClientCommand, Refused, ReplicaSnapshotError, Request, StateMachineStore};

fn profile() -> Profile {
    let mut p = cluster_common::profile();
    p.limits.disconnect_grace_ms = 300;
    p
}

/// A write that is not idempotent: each application bumps the revision.
fn bump(room: &str) -> Command {
    cluster_common::set(room, "counter", "x")
}

fn one(client: u64, serial: u64, command: Command) -> Request {
    Request::Command(ClientCommand {
        client,
        serial,
        now: Millis(0),
        command,
    })
}

async fn start() -> (Cluster, u64) {
    let (cluster, leaders) = cluster_common::start_with(ClusterConfig::new(3, 1, profile())).await;
    (cluster, leaders[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_reply_applies_once_and_returns_the_first_outcome() {
    let (cluster, leader) = start().await;
    cluster
        .propose(0, leader, one(7, 1, create("r")))
        .await
        .unwrap();
    // Serial 2 applies; pretend its reply was lost on the way back.
    let first = cluster
        .propose(0, leader, one(7, 2, bump("r")))
        .await
        .unwrap();
    let first = first.results[0].clone().unwrap();
    let sm = cluster.state_machine(0, leader).unwrap();
    let (seq, executed) = (sm.room_seq("r"), sm.executed());

    // The client retries serial 2, through a follower first: the follower
    // forwards it, and the leader answers with the stored reply.
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    assert_eq!(
        cluster.propose(0, follower, one(7, 2, bump("r"))).await,
        Err(ProposeError::ForwardToLeader(Some(leader)))
    );
    let again = cluster
        .propose(0, leader, one(7, 2, bump("r")))
        .await
        .unwrap();
    assert_eq!(again.results[0].as_ref().unwrap(), &first);
    assert!(again.events.is_empty(), "a retry produced events");
    assert_eq!(sm.room_seq("r"), seq, "the retry was applied again");
    assert_eq!(sm.executed(), executed);

    // An older serial than the kept ones is refused, changing nothing.
    let stale = cluster
        .propose(0, leader, one(7, 1, bump("r")))
        .await
        .unwrap();
    assert_eq!(stale.results[0], Err(Refused::StaleSerial { last: 2 }));
    assert_eq!(sm.room_seq("r"), seq);

    // The next serial applies normally.
    let next = cluster
        .propose(0, leader, one(7, 3, bump("r")))
        .await
        .unwrap();
    assert!(next.results[0].as_ref().unwrap().outcome.is_ok());
    assert_eq!(sm.room_seq("r"), seq + 1);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_retried_as_a_whole_gets_every_first_reply() {
    let (cluster, leader) = start().await;
    let batch = |serial: u64| {
        Request::Batch(vec![
            ClientCommand {
                client: 9,
                serial,
                now: Millis(0),
                command: create("b"),
            },
            ClientCommand {
                client: 9,
                serial: serial + 1,
                now: Millis(0),
                command: bump("b"),
            },
            ClientCommand {
                client: 9,
                serial: serial + 2,
                now: Millis(0),
                command: bump("b"),
            },
        ])
    };
    let first = cluster.propose(0, leader, batch(1)).await.unwrap();
    let sm = cluster.state_machine(0, leader).unwrap();
    let seq = sm.room_seq("b");
    let again = cluster.propose(0, leader, batch(1)).await.unwrap();
    assert_eq!(again.results, first.results);
    assert_eq!(sm.room_seq("b"), seq);
    assert_eq!(sm.executed(), 3);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_follows_forward_to_leader_and_retries_through_a_failover() {
    let (cluster, leader) = start().await;
    let mut client = cluster.client(1);
    client.attempt_timeout = Duration::from_millis(400);
    client.write(0, create("r")).await.unwrap();
    let before = client.attempts;
    // Kill the leader; the client's next write finds the new one.
    cluster.kill(leader).await;
    let reply = client.write(0, bump("r")).await.unwrap();
    assert!(reply.outcome.is_ok());
    assert!(client.attempts - before >= 2, "no retry was needed");
    let new_leader = cluster
        .wait_leader(0, Some(leader), Duration::from_secs(5))
        .await
        .unwrap();
    let sm = cluster.state_machine(0, new_leader).unwrap();
    assert_eq!(sm.executed(), 2);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_periods_expire_through_leader_ticks_on_every_replica() {
    let (cluster, leader) = start().await;
    let mut client = cluster.client(1);
    client.write(0, create("g")).await.unwrap();
    let join = Command::Join {
        room: "g".into(),
        user: "u".into(),
    };
    client.write(0, join).await.unwrap();
    let drop = Command::Disconnect {
        room: "g".into(),
        user: "u".into(),
    };
    client.write(0, drop).await.unwrap();
    for n in 1..=3 {
        // Dropped but in grace: still present once applied everywhere.
        let sm = cluster.state_machine(0, n).unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while sm.executed() < 3 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // No client command follows: only the leader's tick can expire it.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = (1..=3).all(|n| !cluster.state_machine(0, n).unwrap().is_present("g", "u"));
        if gone {
            break;
        }
        assert!(Instant::now() < until, "the grace period never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster
        .wait_converged(0, Duration::from_secs(5))
        .await
        .unwrap();
    let log = cluster.log_store(0, leader).unwrap().entries();
    let ticks = log
        .iter()
        .filter(|e| {
            matches!(
                e.payload,
                openraft::EntryPayload::Normal(Request::Tick { .. })
            )
        })
        .count();
    assert!(ticks >= 1, "the expiry did not come through the log");
    let snapshot = cluster.state_machine(0, 1).unwrap().engine_snapshot();
    for n in 2..=3 {
        assert_eq!(
            cluster.state_machine(0, n).unwrap().engine_snapshot(),
            snapshot
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_never_goes_back_when_a_leader_with_a_slow_clock_takes_over() {
    let (cluster, leader) = start().await;
    // Every other node's clock is a minute behind the first leader's.
    for n in (1..=3).filter(|n| *n != leader) {
        cluster.set_clock_skew(n, -60_000);
    }
    let mut client = cluster.client(1);
    client.attempt_timeout = Duration::from_millis(400);
    client.write(0, create("t")).await.unwrap();
    let sm = cluster.state_machine(0, leader).unwrap();
    let before = sm.now();
    let leader_now = cluster.node_now(leader);
    assert!(
        before <= leader_now && leader_now.0 <= before.0 + 5_000,
        "the leader's clock was not used: {before:?}, now {leader_now:?}"
    );
    cluster.kill(leader).await;
    let reply = client.write(0, bump("t")).await.unwrap();
    let new_leader = cluster
        .wait_leader(0, Some(leader), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        cluster.node_now(new_leader) < before,
        "the skew did not hold"
    );
    let after = cluster.state_machine(0, new_leader).unwrap().now();
    assert!(after >= before, "time went back: {after:?} < {before:?}");
    // The write's revision time is the clamped clock, not the slow one.
    let report = client.read("t").await.unwrap();
    assert!(reply.outcome.is_ok());
    assert!(report.attributes[0].changed_at >= before);
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_bad_snapshot_is_refused_and_changes_nothing() {
    let mut sm = StateMachineStore::new(profile());
    let _ = sm.apply_direct(1, one(1, 1, create("s")));
    let good = sm.snapshot_bytes();
    let engine = sm.engine_snapshot();

    assert_eq!(
        sm.install_bytes(b"nonsense"),
        Err(ReplicaSnapshotError::NotASnapshot)
    );
    let mut version = good.clone();
    version[4] = 9;
    assert_eq!(
        sm.install_bytes(&version),
        Err(ReplicaSnapshotError::UnsupportedVersion(9))
    );
    let truncated = &good[..good.len() - 3];
    assert_eq!(
        sm.install_bytes(truncated),
        Err(ReplicaSnapshotError::Malformed)
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        sm.install_bytes(&trailing),
        Err(ReplicaSnapshotError::Malformed)
    );
    // Flip every byte of the body in turn: never a panic, and whatever is
    // refused leaves the state as it was.
    for i in 6..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x55;
        let copy = StateMachineStore::new(profile());
        copy.install_bytes(&good).unwrap();
        if copy.install_bytes(&bad).is_err() {
            assert_eq!(copy.engine_snapshot(), engine);
        }
    }
    assert_eq!(sm.engine_snapshot(), engine);

    // Through openraft's install path: an error, not a panic.
    let meta = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
        .meta;
    let refused = sm
        .install_snapshot(
            &meta,
            Box::new(Cursor::new(b"RSRP\x01\x00garbage".to_vec())),
        )
        .await;
    assert!(refused.is_err());
    assert_eq!(sm.engine_snapshot(), engine);
    // A good snapshot under another log id's metadata is refused too.
    let mut other = meta.clone();
    other.last_log_id = Some(openraft::LogId::new(
        openraft::CommittedLeaderId::new(1, 1),
        5,
    ));
    assert!(sm
        .install_snapshot(&other, Box::new(Cursor::new(good.clone())))
        .await
        .is_err());
    assert!(sm
        .install_snapshot(&meta, Box::new(Cursor::new(good)))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_state_machine_restarts_from_its_snapshot_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(profile(), dir.path()).unwrap();
    let _ = sm.apply_direct(1, one(1, 1, create("p")));
    let _ = sm.apply_direct(2, one(1, 2, bump("p")));
    let built = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let reopened = StateMachineStore::open(profile(), dir.path()).unwrap();
    assert_eq!(reopened.engine_snapshot(), sm.engine_snapshot());
    assert_eq!(reopened.last_serial(1), Some(2));
    assert_eq!(reopened.events_total(), sm.events_total());
    let mut reopened = reopened;
    let current = reopened.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id, built.meta.last_log_id);
    // A damaged file is an error, not a fresh start.
    std::fs::write(dir.path().join("snapshot.bin"), b"RSRP\x01\x00x").unwrap();
    assert!(StateMachineStore::open(profile(), dir.path()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_replica_fans_out_the_events_a_reply_names() {
    let (cluster, leader) = start().await;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    let sm = cluster.state_machine(0, follower).unwrap();
    let mut counts = sm.subscribe();
    let seen = *counts.borrow_and_update();
    let mut client = cluster.client(1);
    let created = client.write(0, create("f")).await.unwrap();
    let written = client.write(0, bump("f")).await.unwrap();
    assert_eq!(created.events.len(), 1);
    assert_eq!(written.events.len(), 1);
    // The follower's subscriber wakes up and finds both events under the
    // numbers the leader's replies gave.
    tokio::time::timeout(Duration::from_secs(5), async {
        while *counts.borrow_and_update() < written.events.end {
            counts.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    let events = sm.events_since(seen);
    let numbers: Vec<u64> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [created.events.start, written.events.start]);
    assert!(events.iter().all(|(_, e)| &*e.room == "f"));
    assert_eq!(events[0].1.seq, 1);
    assert_eq!(events[1].1.seq, 2);
    cluster.shutdown().await;
}
