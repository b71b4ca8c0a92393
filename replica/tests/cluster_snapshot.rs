//! Snapshot install: a node joins as a learner after the log was purged
//! and catches up by installing a snapshot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use openraft::SnapshotPolicy;
use roomstate::{Actor, Command, Op, Profile, Write};
use roomstate_replica::cluster::{Cluster, ClusterConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_added_after_the_log_was_purged_catches_up_from_a_snapshot() {
    let mut profile = Profile::tencent();
    profile.limits.request_rate = None;
    let mut cfg = ClusterConfig::new(3, 1, profile);
    cfg.snapshot_policy = SnapshotPolicy::LogsSinceLast(50);
    cfg.keep_after_snapshot = 0;
    let cluster = Cluster::start(cfg).await.unwrap();
    let leader = cluster
        .wait_leader(0, None, Duration::from_secs(10))
        .await
        .unwrap();
    let mut client = cluster.client(1);
    let create = Command::CreateRoom {
        room: "r".into(),
        creator: "host".into(),
    };
    client.write(0, create).await.unwrap();
    for i in 0..200 {
        let key = format!("k{}", i % 8);
        let w = Write::new("r", Actor::Admin).op(Op::set(key, format!("v{i}")));
        let r = client.write(0, Command::Write(w)).await.unwrap();
        assert!(r.outcome.is_ok(), "write {i}: {:?}", r.outcome);
    }
    // Wait for the leader to snapshot and purge its log.
    let log = cluster.log_store(0, leader).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while log.last_purged().is_none_or(|p| p.index < 100) {
        assert!(Instant::now() < until, "the log was never purged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let purged = log.last_purged().unwrap().index;

    cluster.add_node(0, 4).await.unwrap();
    cluster
        .add_learner(0, 4, Duration::from_secs(10))
        .await
        .unwrap();
    for i in 0..10 {
        let w = Write::new("r", Actor::Admin).op(Op::set("after", format!("{i}")));
        client.write(0, Command::Write(w)).await.unwrap();
    }
    let applied = cluster
        .wait_converged(0, Duration::from_secs(10))
        .await
        .unwrap();

    let learner = cluster.state_machine(0, 4).unwrap();
    let leader_sm = cluster.state_machine(0, leader).unwrap();
    assert_eq!(learner.last_applied().map(|l| l.index), Some(applied));
    assert_eq!(learner.engine_snapshot(), leader_sm.engine_snapshot());
    assert_eq!(learner.last_serial(1), leader_sm.last_serial(1));
    // It never saw the purged entries: its log starts after them, it holds
    // a snapshot, and its event buffer starts at the snapshot's number.
    let learner_log = cluster.log_store(0, 4).unwrap().entries();
    assert!(learner_log.first().is_some_and(|e| e.log_id.index > purged));
    let raft = cluster.raft(0, 4).unwrap();
    assert!(raft.metrics().borrow().snapshot.is_some());
    let events = learner.events_since(0);
    assert!(events.first().is_some_and(|(n, _)| *n > 0));
    assert_eq!(learner.events_total(), leader_sm.events_total());
    cluster.shutdown().await;
}
