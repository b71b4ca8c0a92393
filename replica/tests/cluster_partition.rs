//! Partition: the leader cut off in a minority. Its writes fail or time
//! out and none applies; the majority elects a leader and goes on; after
//! the heal the old leader catches up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use openraft::ServerState;
use roomstate::Command;
use roomstate_replica::cluster::ClusterConfig;

mod cluster_common;
use cluster_common::create;

fn set(key: &str) -> Command {
    cluster_common::set("r", key, "v")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_in_a_minority_applies_nothing_and_catches_up_after_the_heal() {
    let (cluster, leaders) = cluster_common::start(3, 1).await;
    let old = leaders[0];
    let mut client = cluster.client(1);
    client.attempt_timeout = Duration::from_millis(300);
    client.write(0, create("r")).await.unwrap();
    client.write(0, set("before")).await.unwrap();
    cluster
        .wait_converged(0, Duration::from_secs(5))
        .await
        .unwrap();

    let majority: Vec<u64> = (1..=3).filter(|n| *n != old).collect();
    cluster.router().partition(&[&[old], &majority]);
    let old_sm = cluster.state_machine(0, old).unwrap();
    let applied_before = old_sm.last_applied();

    // Writes sent to the cut-off leader: each fails or gets no answer.
    let mut lost = cluster.client(2);
    for i in 0..5 {
        let attempt = lost.write_once(0, old, set(&format!("lost{i}")));
        match tokio::time::timeout(Duration::from_millis(300), attempt).await {
            Err(_elapsed) => {}
            Ok(Err(_refused)) => {}
            Ok(Ok(r)) => panic!("a minority leader acknowledged a write: {r:?}"),
        }
    }
    assert_eq!(
        old_sm.last_applied(),
        applied_before,
        "the minority applied"
    );

    // The majority elects a leader and goes on.
    let new = cluster
        .wait_leader(0, Some(old), Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(new, old);
    for i in 0..5 {
        let reply = client.write(0, set(&format!("kept{i}"))).await.unwrap();
        assert!(reply.outcome.is_ok());
    }
    assert_eq!(
        old_sm.last_applied(),
        applied_before,
        "the minority applied"
    );

    // Heal: the old leader steps down and catches up.
    cluster.router().heal();
    let applied = cluster
        .wait_converged(0, Duration::from_secs(10))
        .await
        .unwrap();
    let old_raft = cluster.raft(0, old).unwrap();
    assert_ne!(old_raft.metrics().borrow().state, ServerState::Leader);
    assert_eq!(old_sm.last_applied().map(|l| l.index), Some(applied));
    let snapshot = old_sm.engine_snapshot();
    for n in &majority {
        let sm = cluster.state_machine(0, *n).unwrap();
        assert_eq!(sm.engine_snapshot(), snapshot);
    }

    // Through the log: the majority's writes are there, the minority's not.
    let report = client.read("r").await.unwrap();
    let keys: Vec<&str> = report.attributes.iter().map(|a| &*a.key).collect();
    assert_eq!(
        keys,
        ["before", "kept0", "kept1", "kept2", "kept3", "kept4"]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_slow_network_still_applies_every_write_once_and_an_isolated_follower_catches_up() {
    let mut cfg = ClusterConfig::new(3, 1, cluster_common::profile());
    cfg.seed = 7;
    let (cluster, leaders) = cluster_common::start_with(cfg).await;
    let leader = leaders[0];
    let mut client = cluster.client(1);
    client.attempt_timeout = Duration::from_millis(500);
    client.write(0, create("r")).await.unwrap();

    // One follower cut off; the other two carry on over a network that
    // drops 10% of requests and responses and delays every message.
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    cluster.router().isolate(follower);
    cluster.router().set_drop_rate(100_000);
    cluster.router().set_delay(Duration::from_millis(1));
    const WRITES: u64 = 200;
    for i in 0..WRITES {
        let reply = client.write(0, set(&format!("k{}", i % 8))).await.unwrap();
        assert!(reply.outcome.is_ok(), "{:?}", reply.outcome);
    }
    let (dropped, delivered) = cluster.router().counters();
    assert!(dropped > 0, "nothing was dropped ({delivered} delivered)");
    let isolated = cluster.state_machine(0, follower).unwrap();
    assert!(isolated.executed() <= 1, "the isolated follower applied");

    cluster.router().heal();
    cluster
        .wait_converged(0, Duration::from_secs(10))
        .await
        .unwrap();
    let snapshot = isolated.engine_snapshot();
    for n in 1..=3 {
        let sm = cluster.state_machine(0, n).unwrap();
        assert_eq!(sm.engine_snapshot(), snapshot);
        // Every write applied exactly once: the create plus WRITES, one
        // sequence number each.
        assert_eq!(sm.executed(), 1 + WRITES);
        assert_eq!(sm.room_seq("r"), 1 + WRITES);
    }
    println!("lossy: {dropped} messages dropped, {delivered} delivered");
    cluster.shutdown().await;
}
