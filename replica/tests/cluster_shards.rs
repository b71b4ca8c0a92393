//! Shards: 3 nodes x 4 groups. Rooms land in the group their id hashes
//! to; a leader failover in one group leaves the others serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use roomstate::{Actor, Command, Op, Write};
use roomstate_replica::shard::group_of;

mod cluster_common;
use cluster_common::create;

const GROUPS: u32 = 4;
const ROOMS: usize = 40;

fn room(i: usize) -> String {
    format!("room-{i}")
}

fn write(room: &str, value: &str) -> Command {
    cluster_common::set(room, "k", value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_land_where_the_hash_says_and_one_groups_failover_leaves_the_others_serving() {
    let (cluster, leaders) = cluster_common::start(3, GROUPS).await;
    // Group g is started from node 1 + g % 3, so that the first leaders
    // spread over the nodes: a group still in its first term is led by
    // that node.
    let mut first_terms = 0;
    for (g, leader) in (0..GROUPS).zip(&leaders) {
        let term = cluster
            .raft(g, *leader)
            .unwrap()
            .metrics()
            .borrow()
            .current_term;
        if term == 1 {
            first_terms += 1;
            assert_eq!(*leader, 1 + u64::from(g) % 3, "group {g}");
        }
    }
    eprintln!("groups still in their first term: {first_terms} of {GROUPS}");

    let mut client = cluster.client(1);
    client.attempt_timeout = Duration::from_millis(400);
    for i in 0..ROOMS {
        let id = room(i);
        let reply = client.room(&id, create(&id)).await.unwrap();
        assert!(reply.outcome.is_ok());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_moves_between_groups_under_writes_without_losing_or_repeating_one() {
    let (cluster, _) = cluster_common::start(3, GROUPS).await;
    let id = "moving";
    let from = group_of(id, GROUPS);
    let to = (from + 1) % GROUPS;
    let mut admin = cluster.client(100);
    admin.room(id, create(id)).await.unwrap();

    // Writers keep writing while the room moves.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..3u64 {
        let mut client = cluster.client(w + 1);
        client.attempt_timeout = Duration::from_millis(400);
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = 0u64;
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 20 {
                let cmd = Command::Write(
                    Write::new(id, Actor::Admin).op(Op::set(format!("w{w}"), format!("{i}"))),
                );
                let reply = client.room(id, cmd).await.unwrap();
                assert!(reply.outcome.is_ok(), "{:?}", reply.outcome);
                acked += 1;
                i += 1;
                if i >= 200 {
                    break;
                }
            }
            (w, acked, i - 1, client.frozen)
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    cluster.move_room(id, to).await.unwrap();
    assert_eq!(cluster.route(id), to);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut last = Vec::new();
    let mut frozen = 0;
    for t in tasks {
        let (w, acked, last_i, f) = t.await.unwrap();
        total += acked;
        last.push((w, last_i));
        frozen += f;
    }
    cluster
        .wait_converged(from, Duration::from_secs(10))
        .await
        .unwrap();
    cluster
        .wait_converged(to, Duration::from_secs(10))
        .await
        .unwrap();

    // The room is gone from the source everywhere and whole in the target:
    // one sequence number per acknowledged write, after the creation.
    for n in 1..=3 {
        assert_eq!(cluster.state_machine(from, n).unwrap().room_seq(id), 0);
        assert_eq!(
            cluster.state_machine(to, n).unwrap().room_seq(id),
            1 + total
        );
    }
    let target = cluster
        .state_machine(to, 1)
        .unwrap()
        .room_snapshot(id)
        .unwrap();
    for n in 2..=3 {
        assert_eq!(
            cluster
                .state_machine(to, n)
                .unwrap()
                .room_snapshot(id)
                .unwrap(),
            target
        );
    }
    // Each writer's last acknowledged value is the one the room holds.
    let report = admin.read(id).await.unwrap();
    for (w, last_i) in last {
        let a = report
            .attributes
            .iter()
            .find(|a| *a.key == *format!("w{w}"))
            .unwrap();
        assert_eq!(*a.value, *format!("{last_i}"));
    }
    // The source's listeners never saw the room destroyed.
    let events = cluster.state_machine(from, 1).unwrap().events_since(0);
    assert!(events.iter().all(|(_, e)| !e
        .changes
        .iter()
        .any(|c| matches!(c, roomstate::Change::RoomDestroyed))));
    // The source refuses the room's commands with where it went, even a
    // create of the same id.
    let leader = cluster
        .wait_leader(from, None, Duration::from_secs(5))
        .await
        .unwrap();
    let again = roomstate_replica::Request::Command(roomstate_replica::ClientCommand {
        client: 500,
        serial: 1,
        now: roomstate::Millis(0),
        command: Command::CreateRoom {
            room: id.into(),
            creator: "x".into(),
        },
    });
    let refused = cluster.propose(from, leader, again).await.unwrap();
    assert_eq!(
        refused.results[0],
        Err(roomstate_replica::Refused::Moved { to })
    );
    // So do the command kinds added after the move code was written (a
    // lock, a counter, a catch-up): the room is found by Command::room.
    let later = [
        Command::SetLock {
            room: id.into(),
            name: "stage".into(),
            ttl_ms: 10_000,
        },
        Command::counter(
            id,
            roomstate::Actor::Admin,
            "seats",
            roomstate::CounterOp::Set(1),
        ),
        Command::Since {
            room: id.into(),
            seq: 0,
        },
    ];
    for (serial, command) in (2..).zip(later) {
        let request = roomstate_replica::Request::Command(roomstate_replica::ClientCommand {
            client: 500,
            serial,
            now: roomstate::Millis(0),
            command,
        });
        let refused = cluster.propose(from, leader, request).await.unwrap();
        assert_eq!(
            refused.results[0],
            Err(roomstate_replica::Refused::Moved { to })
        );
    }
    println!("move: {total} writes acknowledged around the move, {frozen} frozen answers");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_the_target_refuses_is_aborted_and_the_source_serves_again() {
    let (cluster, _) = cluster_common::start(3, GROUPS).await;
    let id = "twice";
    let from = group_of(id, GROUPS);
    let to = (from + 1) % GROUPS;
    let mut client = cluster.client(1);
    let create = |creator: &str| Command::CreateRoom {
        room: id.into(),
        creator: creator.into(),
    };
    client.room(id, create("a")).await.unwrap();
    // The target already holds a room with that id (created behind the
    // router's back).
    client.write(to, create("b")).await.unwrap();
    let failed = cluster.move_room(id, to).await;
    assert_eq!(
        failed,
        Err(roomstate_replica::cluster::MoveFailed::Refused(
            roomstate_replica::MoveError::RoomExists
        ))
    );
    assert_eq!(cluster.route(id), from);
    let reply = client.room(id, write(id, "after")).await.unwrap();
    assert!(reply.outcome.is_ok());
    let leader = cluster
        .wait_leader(from, None, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(cluster.state_machine(from, leader).unwrap().room_seq(id), 2);
    cluster.shutdown().await;
}
