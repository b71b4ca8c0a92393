//! Failover: 3 nodes, 10,000 generated commands, the leader killed in the
//! middle. No acknowledged write is lost, none applies twice, and every
//! replica ends with the same engine snapshot and the same event stream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use roomstate::{Command, Engine, Profile};
use roomstate_replica::cluster::{Cluster, ClusterConfig};
use roomstate_replica::{CommandResult, StateMachineStore};
use roomstate_tests::gen;

const COMMANDS: usize = 10_000;
const CLIENTS: u64 = 4;
const BATCH: usize = 25;

fn profile() -> Profile {
    // The simulator's tiny profile, without the 3-per-second request rate
    // that would reject nearly everything.
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

fn event_bytes(sm: &StateMachineStore) -> Vec<u8> {
    postcard::to_allocvec(&sm.events_since(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_loses_no_acknowledged_write_and_applies_none_twice() {
    let started = Instant::now();
    let profile = profile();
    let (cluster, leaders) =
        Cluster::start_elected(ClusterConfig::new(3, 1, profile), Duration::from_secs(10))
            .await
            .unwrap();
    let first_leader = leaders[0];

    // The simulator's setup (two rooms with members), by client 100.
    let mut setup = cluster.client(100);
    let setup_results = setup.write_batch(0, gen::setup()).await.unwrap();
    assert!(setup_results
        .iter()
        .all(|r| matches!(r, Ok(reply) if reply.outcome.is_ok())));

    let commands = generated(&profile, COMMANDS);
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mine: Vec<Command> = commands
            .iter()
            .skip(c as usize)
            .step_by(CLIENTS as usize)
            .cloned()
            .collect();
        let mut client = cluster.client(c + 1);
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut got: Vec<((u64, u64), CommandResult)> = Vec::new();
            for chunk in mine.chunks(BATCH) {
                let first = client.next_serial();
                let results = client.write_batch(0, chunk.to_vec()).await.unwrap();
                for (i, r) in results.into_iter().enumerate() {
                    got.push(((client.id(), first + i as u64), r));
                }
                acked.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            (got, client.attempts)
        }));
    }

    // Kill the leader in the middle of the run.
    while acked.load(Ordering::Relaxed) < COMMANDS / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    cluster.kill(first_leader).await;
    let killed_at = acked.load(Ordering::Relaxed);
    let second_leader = cluster
        .wait_leader(0, Some(first_leader), Duration::from_secs(10))
        .await
        .unwrap();

    let mut acknowledged = Vec::new();
    let mut attempts = 0;
    for t in tasks {
        let (got, a) = t.await.unwrap();
        acknowledged.extend(got);
        attempts += a;
    }
    assert_eq!(acknowledged.len(), COMMANDS);
    let batches = (COMMANDS as u64).div_ceil(BATCH as u64);
    assert!(
        killed_at < COMMANDS,
        "the leader died after the run ({killed_at} acknowledged)"
    );

    // The old leader comes back over its kept log and catches up.
    cluster.restart(first_leader).await.unwrap();
    let applied = cluster
        .wait_converged(0, Duration::from_secs(20))
        .await
        .unwrap();

    // Every replica: the same engine, the same event stream, and the
    // engine ran each (client, serial) exactly once.
    let sms: Vec<StateMachineStore> = (1..=3)
        .map(|n| cluster.state_machine(0, n).unwrap())
        .collect();
    let snapshot = sms[0].engine_snapshot();
    let events = event_bytes(&sms[0]);
    assert!(sms[0].events_total() > 1000, "too few events to compare");
    for sm in &sms {
        assert_eq!(sm.engine_snapshot(), snapshot);
        assert_eq!(event_bytes(sm), events);
        assert_eq!(sm.executed(), (COMMANDS + gen::setup().len()) as u64);
    }

    // The reference: the committed log replayed from scratch. Its engine is
    // the replicas'; each acknowledged reply is the one the log gives that
    // (client, serial) the first time, so none was lost.
    let replay = cluster.replay_log(0, second_leader, applied).unwrap();
    let copies = replay.commands_in_log - (COMMANDS + gen::setup().len()) as u64;
    assert_eq!(replay.engine_snapshot, snapshot);
    for (id, result) in &acknowledged {
        let reply = result
            .as_ref()
            .expect("a client's own serial is never stale");
        assert_eq!(replay.replies.get(id), Some(reply), "reply of {id:?}");
    }
    // Independently of the state machine's session table: the first
    // occurrence of each (client, serial), and the ticks, run on a bare
    // engine give the same engine. Later copies (retries) changed nothing.
    let mut bare = Engine::new(profile);
    let mut sink = Vec::new();
    for (now, command, _) in replay.first_seen {
        let _ = bare.handle(now, command);
        bare.drain_events(&mut sink);
    }
    assert_eq!(bare.snapshot(), snapshot);

    cluster.shutdown().await;
    println!(
        "failover: {COMMANDS} commands in {batches} batches, {attempts} attempts, \
         leader {first_leader} killed after {killed_at} acknowledged, new leader \
         {second_leader}, {applied} entries, {copies} retried copies in the log, {:?}",
        started.elapsed()
    );
}
