//! Shards: 3 nodes x 4 groups. Rooms land in the group their id hashes
//! to; a leader failover in one group leaves the others serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use roomstate::{Actor, Command, Op, Profile, Write};
use roomstate_replica::cluster::{Cluster, ClusterConfig};
use roomstate_replica::shard::group_of;

const GROUPS: u32 = 4;
const ROOMS: usize = 40;

fn room(i: usize) -> String {
    format!("room-{i}")
}

fn write(room: &str, value: &str) -> Command {
    Command::Write(Write::new(room, Actor::Admin).op(Op::set("k", value)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_land_where_the_hash_says_and_one_groups_failover_leaves_the_others_serving() {
    let mut profile = Profile::tencent();
    profile.limits.request_rate = None;
    let cluster = Cluster::start(ClusterConfig::new(3, GROUPS, profile))
        .await
        .unwrap();
    let mut leaders = Vec::new();
    for g in 0..GROUPS {
        leaders.push(
            cluster
                .wait_leader(g, None, Duration::from_secs(10))
                .await
                .unwrap(),
        );
    }

    let mut client = cluster.client(1);
    client.attempt_timeout = Duration::from_millis(400);
    for i in 0..ROOMS {
        let id = room(i);
        let create = Command::CreateRoom {
            room: id.clone().into(),
            creator: "host".into(),
        };
        assert!(client.room(&id, create).await.unwrap().outcome.is_ok());
        assert!(client
            .room(&id, write(&id, "a"))
            .await
            .unwrap()
            .outcome
            .is_ok());
    }
    for g in 0..GROUPS {
        cluster
            .wait_converged(g, Duration::from_secs(10))
            .await
            .unwrap();
    }
    let mut per_group = [0usize; GROUPS as usize];
    for i in 0..ROOMS {
        let id = room(i);
        let home = group_of(&id, GROUPS);
        per_group[home as usize] += 1;
        for g in 0..GROUPS {
            for n in 1..=3 {
                let seq = cluster.state_machine(g, n).unwrap().room_seq(&id);
                if g == home {
                    assert_eq!(seq, 2, "{id} missing from its group {g} on node {n}");
                } else {
                    assert_eq!(seq, 0, "{id} found in group {g}, its group is {home}");
                }
            }
        }
    }
    assert!(
        per_group.iter().all(|c| *c > 0),
        "a group got no room: {per_group:?}"
    );

    // Group 0's leader fails; the other groups keep their leaders and
    // serve right away.
    let terms: Vec<u64> = (0..GROUPS)
        .map(|g| {
            cluster
                .raft(g, leaders[g as usize])
                .unwrap()
                .metrics()
                .borrow()
                .current_term
        })
        .collect();
    cluster.kill_member(0, leaders[0]).await;
    for i in 0..ROOMS {
        let id = room(i);
        if group_of(&id, GROUPS) != 0 {
            let reply = client.room(&id, write(&id, "b")).await.unwrap();
            assert!(reply.outcome.is_ok());
        }
    }
    for g in 1..GROUPS {
        assert_eq!(
            cluster.leader(g),
            Some(leaders[g as usize]),
            "group {g} lost its leader"
        );
        let term = cluster
            .raft(g, leaders[g as usize])
            .unwrap()
            .metrics()
            .borrow()
            .current_term;
        assert_eq!(term, terms[g as usize], "group {g} held an election");
    }
    // Group 0 elects a new leader and serves again.
    let new0 = cluster
        .wait_leader(0, Some(leaders[0]), Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(new0, leaders[0]);
    for i in 0..ROOMS {
        let id = room(i);
        if group_of(&id, GROUPS) == 0 {
            assert!(client
                .room(&id, write(&id, "c"))
                .await
                .unwrap()
                .outcome
                .is_ok());
        }
    }
    // The node that lost group 0's Raft still serves its other groups.
    for g in 1..GROUPS {
        assert!(cluster.raft(g, leaders[0]).is_some());
    }
    println!("shards: rooms per group {per_group:?}, leaders {leaders:?}, group 0 -> {new0}");
    cluster.shutdown().await;
}
