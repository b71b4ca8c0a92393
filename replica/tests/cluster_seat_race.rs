//! Linearizable seat race: clients race `Expect::Absent` writes on the same
//! seats (and release the seats they win) across a leader failover. Every
//! seat's history is checked with a register linearizability checker
//! (Wing & Gong's search, with memoization as in Lowe's variant).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomstate::{Actor, Command, Expect, Op, Outcome, Success, Write};
use roomstate_replica::cluster::{Client, ClientError};

mod cluster_common;

/// What an operation on one seat did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Set the seat to the client if it is absent.
    Take(u8),
    /// Delete the seat as the client (only its owner can).
    Release(u8),
    /// Read the seat's holder.
    Read(Option<u8>),
}

/// One operation: when it was invoked, when it returned (`None`: the
/// client never learned the outcome), and whether it succeeded.
#[derive(Clone, Copy, Debug)]
struct OpRecord {
    invoke: u64,
    ret: Option<u64>,
    kind: Kind,
    ok: bool,
}

/// The register's sequential specification: (success, next value).
fn step(value: Option<u8>, kind: Kind) -> (bool, Option<u8>) {
    match kind {
        Kind::Take(c) if value.is_none() => (true, Some(c)),
        Kind::Release(c) if value == Some(c) => (true, None),
        Kind::Read(v) => (v == value, value),
        Kind::Take(_) | Kind::Release(_) => (false, value),
    }
}

/// Whether some order of the operations, consistent with real time
/// (an operation that returned before another was invoked comes first),
/// explains every result, starting from an absent seat. An operation with
/// an unknown outcome may take effect at any point after its invocation,
/// or never.
fn linearizable(ops: &[OpRecord]) -> bool {
    assert!(ops.len() <= 128, "history too long for the bitset");
    let mut seen = HashSet::new();
    search(ops, 0, None, &mut seen)
}

fn search(
    ops: &[OpRecord],
    done: u128,
    value: Option<u8>,
    seen: &mut HashSet<(u128, Option<u8>)>,
) -> bool {
    let pending = |i: usize| done & (1u128 << i) == 0;
    if (0..ops.len()).all(|i| !pending(i) || ops[i].ret.is_none()) {
        return true;
    }
    if !seen.insert((done, value)) {
        return false;
    }
    // Nothing invoked after the earliest pending return can go next.
    let horizon = (0..ops.len())
        .filter(|i| pending(*i))
        .filter_map(|i| ops[i].ret)
        .min()
        .unwrap_or(u64::MAX);
    for (i, op) in ops.iter().enumerate() {
        if !pending(i) || op.invoke > horizon {
            continue;
        }
        let (ok, next) = step(value, op.kind);
        if op.ret.is_some() && ok != op.ok {
            continue;
        }
        if search(ops, done | (1u128 << i), next, seen) {
            return true;
        }
    }
    false
}

/// A completed operation, for the checker's own tests.
fn op(invoke: u64, ret: u64, kind: Kind, ok: bool) -> OpRecord {
    OpRecord {
        invoke,
        ret: Some(ret),
        kind,
        ok,
    }
}

#[test]
fn checker_accepts_a_sequential_history() {
    let h = [
        op(0, 1, Kind::Take(1), true),
        op(2, 3, Kind::Take(2), false),
        op(4, 5, Kind::Release(1), true),
        op(6, 7, Kind::Take(2), true),
        op(8, 9, Kind::Read(Some(2)), true),
    ];
    assert!(linearizable(&h));
}

#[test]
fn checker_rejects_two_winners_at_once() {
    assert!(!linearizable(&[
        op(0, 10, Kind::Take(1), true),
        op(5, 15, Kind::Take(2), true),
    ]));
}

#[test]
fn checker_rejects_a_stale_read_and_a_lost_winner() {
    assert!(!linearizable(&[
        op(0, 1, Kind::Take(1), true),
        op(2, 3, Kind::Read(None), true),
    ]));
    // The acknowledged winner is not the final holder, and nothing
    // acknowledged replaced it.
    assert!(!linearizable(&[
        op(0, 1, Kind::Take(1), true),
        op(2, 3, Kind::Read(Some(2)), true),
    ]));
}

#[test]
fn checker_lets_an_unknown_outcome_take_effect_or_not() {
    let unknown = OpRecord {
        invoke: 0,
        ret: None,
        kind: Kind::Take(1),
        ok: false,
    };
    assert!(linearizable(&[
        unknown,
        op(5, 6, Kind::Take(2), false),
        op(7, 8, Kind::Read(Some(1)), true)
    ]));
    assert!(linearizable(&[
        unknown,
        op(5, 6, Kind::Take(2), true),
        op(7, 8, Kind::Read(Some(2)), true)
    ]));
    // But it cannot take effect before it was invoked.
    let late = OpRecord {
        invoke: 10,
        ret: None,
        kind: Kind::Take(1),
        ok: false,
    };
    assert!(!linearizable(&[op(0, 1, Kind::Take(2), false), late]));
}

const SEATS: usize = 4;
const CLIENTS: u8 = 6;
const ROUNDS: usize = 14;

fn user(c: u8) -> String {
    format!("c{c}")
}

fn seat(s: usize) -> String {
    format!("seat{s}")
}

fn applied_one(outcome: &Outcome) -> bool {
    matches!(outcome, Ok(Success::Written(r)) if r.applied == 1 && r.failed.is_empty())
}

async fn run_client(
    mut client: Client,
    c: u8,
    start: Instant,
    done: Arc<AtomicUsize>,
) -> Vec<(usize, OpRecord)> {
    let now = |start: Instant| start.elapsed().as_nanos() as u64;
    let mut history = Vec::new();
    let mut holding: Option<usize> = None;
    for round in 0..ROUNDS {
        let (s, kind, write) = match holding {
            Some(s) => (
                s,
                Kind::Release(c),
                Write::new("stage", Actor::user(user(c))).op(Op::delete(seat(s))),
            ),
            None => {
                let s = (usize::from(c) + round) % SEATS;
                let op = Op::set(seat(s), user(c)).expect(Expect::Absent);
                (
                    s,
                    Kind::Take(c),
                    Write::new("stage", Actor::user(user(c))).op(op),
                )
            }
        };
        let invoke = now(start);
        let result = client.write(0, Command::Write(write)).await;
        let ret = now(start);
        let record = match result {
            Ok(reply) => {
                let ok = applied_one(&reply.outcome);
                match (kind, ok) {
                    (Kind::Take(_), true) => holding = Some(s),
                    (Kind::Release(_), true) => holding = None,
                    _ => {}
                }
                OpRecord {
                    invoke,
                    ret: Some(ret),
                    kind,
                    ok,
                }
            }
            Err(ClientError::Timeout { .. }) => {
                // Unknown: this client does not know whether it holds it.
                holding = None;
                OpRecord {
                    invoke,
                    ret: None,
                    kind,
                    ok: false,
                }
            }
            Err(e) => panic!("client {c}: {e:?}"),
        };
        history.push((s, record));
        done.fetch_add(1, Ordering::Relaxed);
    }
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_race_histories_are_linearizable_across_a_failover() {
    let (cluster, leaders) = cluster_common::start(3, 1).await;
    let leader = leaders[0];
    let mut admin = cluster.client(100);
    let mut setup = vec![cluster_common::create("stage")];
    setup.extend((0..CLIENTS).map(|c| Command::Join {
        room: "stage".into(),
        user: user(c).into(),
    }));
    for r in admin.write_batch(0, setup).await.unwrap() {
        assert!(r.unwrap().outcome.is_ok());
    }

    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = cluster.client(u64::from(c) + 1);
        client.attempt_timeout = Duration::from_millis(400);
        tasks.push(tokio::spawn(run_client(client, c, start, done.clone())));
    }
    // Fail the leader over a third of the way in.
    let total = usize::from(CLIENTS) * ROUNDS;
    while done.load(Ordering::Relaxed) < total / 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cluster.kill(leader).await;
    let mut histories: Vec<Vec<OpRecord>> = vec![Vec::new(); SEATS];
    for t in tasks {
        for (s, record) in t.await.unwrap() {
            histories[s].push(record);
        }
    }
    let new_leader = cluster
        .wait_leader(0, Some(leader), Duration::from_secs(10))
        .await
        .unwrap();

    // A final read of every seat, through the log.
    let invoke = start.elapsed().as_nanos() as u64;
    let report = admin.read("stage").await.unwrap();
    let ret = start.elapsed().as_nanos() as u64;
    let mut takes = 0;
    let mut unknown = 0;
    for (s, history) in histories.iter_mut().enumerate() {
        let holder = report
            .attributes
            .iter()
            .find(|a| *a.key == *seat(s))
            .map(|a| a.value[1..].parse::<u8>().unwrap());
        history.push(OpRecord {
            invoke,
            ret: Some(ret),
            kind: Kind::Read(holder),
            ok: true,
        });
        takes += history
            .iter()
            .filter(|o| matches!(o.kind, Kind::Take(_)) && o.ok)
            .count();
        unknown += history.iter().filter(|o| o.ret.is_none()).count();
        assert!(
            linearizable(history),
            "seat {s} is not linearizable: {history:#?}"
        );
        // Without unknown outcomes, wins and releases alternate on the
        // seat: one more win than releases exactly when someone holds it.
        if history.iter().all(|o| o.ret.is_some()) {
            let count =
                |f: fn(&Kind) -> bool| history.iter().filter(|o| o.ok && f(&o.kind)).count();
            let wins = count(|k| matches!(k, Kind::Take(_)));
            let releases = count(|k| matches!(k, Kind::Release(_)));
            assert_eq!(wins, releases + usize::from(holder.is_some()), "seat {s}");
        }
    }
    assert!(takes >= SEATS, "too little contention: {takes} wins");
    println!(
        "seat race: {total} ops on {SEATS} seats, {takes} wins, {unknown} unknown outcomes, \
         leader {leader} -> {new_leader}"
    );
    cluster.shutdown().await;
}
