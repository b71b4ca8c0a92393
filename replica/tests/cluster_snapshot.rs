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
use roomstate_replica::cluster::ClusterConfig;

mod cluster_common;
use cluster_common::{create, set};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_added_after_the_log_was_purged_catches_up_from_a_snapshot() {
    let mut cfg = ClusterConfig::new(3, 1, cluster_common::profile());
    cfg.snapshot_policy = SnapshotPolicy::LogsSinceLast(50);
    cfg.keep_after_snapshot = 0;
    let (cluster, leaders) = cluster_common::start_with(cfg).await;
    let leader = leaders[0];
    let mut client = cluster.client(1);
    client.write(0, create("r")).await.unwrap();
    for i in 0..200 {
        let key = format!("k{}", i % 8);
        let r = client
            .write(0, set("r", &key, &format!("v{i}")))
            .await
            .unwrap();
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
        client
            .write(0, set("r", "after", &format!("{i}")))
            .await
            .unwrap();
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
    let learner_store = cluster.log_store(0, 4).unwrap();
    let learner_log = learner_store.entries();
    assert!(learner_log.first().is_some_and(|e| e.log_id.index > purged));
    // The ten writes after it are in its log, and the store counts them.
    assert!(learner_log.len() >= 10, "{}", learner_log.len());
    assert_eq!(learner_store.len(), learner_log.len());
    assert!(!learner_store.is_empty());
    let raft = cluster.raft(0, 4).unwrap();
    assert!(raft.metrics().borrow().snapshot.is_some());
    let events = learner.events_since(0);
    assert!(events.first().is_some_and(|(n, _)| *n > 0));
    assert_eq!(learner.events_total(), leader_sm.events_total());
    cluster.shutdown().await;
    assert_eq!(cluster.live_nodes(0), Vec::<u64>::new());
    assert!(cluster.raft(0, leader).is_none());
}
