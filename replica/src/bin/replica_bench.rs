//! Replicated throughput and latency on 3 in-process nodes, and the same
//! workload on a bare engine. Prints `name: value` lines.
//!
//! `cargo run --release -p roomstate-replica --bin replica_bench`
//! (`REPLICA_BENCH_SECS` sets each timed phase's length; default 2).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomstate::{Actor, Command, Engine, Millis, Op, Profile, Write};
use roomstate_replica::cluster::{Cluster, ClusterConfig};

const ROOMS: u64 = 64;
const KEYS: u64 = 8;
const BATCH: usize = 256;
const WRITERS: u64 = 4;
const SINGLE_WRITES: usize = 2_000;

fn profile() -> Profile {
    let mut p = Profile::tencent();
    p.limits.request_rate = None;
    p
}

fn setup() -> Vec<Command> {
    (0..ROOMS)
        .map(|r| Command::CreateRoom {
            room: format!("r{r}").into(),
            creator: "host".into(),
        })
        .collect()
}

/// The `i`-th command of the workload: an attribute write by the server.
fn command(i: u64) -> Command {
    let room = format!("r{}", i % ROOMS);
    let key = format!("k{}", (i / ROOMS) % KEYS);
    Command::Write(Write::new(room, Actor::Admin).op(Op::set(key, format!("v{i}"))))
}

fn percentile(sorted: &[Duration], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).map_or(0, |d| d.as_micros())
}

fn bench_engine(phase: Duration) -> f64 {
    let mut engine = Engine::new(profile());
    let mut sink = Vec::new();
    for c in setup() {
        let _ = engine.handle(Millis(1), c);
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < phase {
        for _ in 0..1024 {
            let _ = engine.handle(Millis(1 + n / 1000), command(n));
            n += 1;
        }
        engine.drain_events(&mut sink);
        sink.clear();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn bench_replicated(phase: Duration) -> Result<(f64, u128, u128, u64), String> {
    let mut cfg = ClusterConfig::new(3, 1, profile());
    cfg.event_capacity = 65_536;
    let cluster = Cluster::start(cfg).await.map_err(|e| format!("{e:?}"))?;
    cluster
        .wait_leader(0, None, Duration::from_secs(10))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut admin = cluster.client(1_000);
    admin
        .write_batch(0, setup())
        .await
        .map_err(|e| format!("{e:?}"))?;

    // Single writes, one at a time: latency.
    let mut single = cluster.client(2_000);
    let mut latencies = Vec::with_capacity(SINGLE_WRITES);
    for i in 0..SINGLE_WRITES as u64 {
        let t = Instant::now();
        single
            .write(0, command(i))
            .await
            .map_err(|e| format!("{e:?}"))?;
        latencies.push(t.elapsed());
    }
    latencies.sort_unstable();

    // Batched proposals from concurrent writers: throughput.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for w in 0..WRITERS {
        let mut client = cluster.client(w + 1);
        let (stop, done) = (stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w * 1_000_000_000;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Command> = (0..BATCH as u64).map(|k| command(i + k)).collect();
                i += BATCH as u64;
                if client.write_batch(0, batch).await.is_err() {
                    return;
                }
                done.fetch_add(BATCH as u64, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.map_err(|e| format!("{e:?}"))?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    let converged = cluster
        .wait_converged(0, Duration::from_secs(10))
        .await
        .map_err(|e| format!("{e:?}"))?;
    cluster.shutdown().await;
    Ok((
        total as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        converged,
    ))
}

fn main() -> Result<(), String> {
    let secs: u64 = std::env::var("REPLICA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let phase = Duration::from_secs(secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (replicated, p50, p99, entries) = runtime.block_on(bench_replicated(phase))?;
    let engine = bench_engine(phase);
    println!("replicated_cmds_per_s: {replicated:.0}");
    println!("replicated_batch: {BATCH}");
    println!("replicated_log_entries: {entries}");
    println!("p50_us: {p50}");
    println!("p99_us: {p99}");
    println!("engine_cmds_per_s: {engine:.0}");
    Ok(())
}
