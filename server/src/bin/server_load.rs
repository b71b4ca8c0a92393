//! `server_load`: a bounded load test of the room server on 127.0.0.1.
//!
//! Starts the server in process (Easemob API, request rate limit lifted,
//! a fresh data directory) on its own runtime (`srv-http` threads, plus
//! the shards' `shard-N` and `shard-N-log` threads), and drives it from a
//! second runtime (`load-gen` threads): N keep-alive HTTP/1.1 connections
//! run a mixed workload (60 % sets, 25 % gets, 15 % deletes) over R rooms,
//! and one WebSocket listener per room counts the events it receives and
//! checks their sequence numbers for gaps. Runs the same workload with
//! `--fsync always` (one `fdatasync` per group commit) and `--fsync never`
//! and prints, per mode, `name: value` lines:
//!
//! ```text
//! fsync_always.http_req_per_s: …   fsync_always.writes_per_s: …
//! fsync_always.p50_ms: …           fsync_always.p99_ms: …
//! fsync_always.events_delivered_per_s: …   fsync_always.lost_events: 0
//! fsync_always.server_cpu_us_per_req: …    fsync_always.load_cpu_us_per_req: …
//! always_vs_never.writes_ratio: …
//! ```
//!
//! The load generator shares the machine with the server, so the CPU each
//! side used in the timed window is read per thread from
//! `/proc/self/task/*/schedstat` and printed per request
//! (`server_cpu_us_per_req`, `load_cpu_us_per_req`), with the share of the
//! machine's cores other processes took meanwhile (`others_cpu_cores`):
//! counts that stay meaningful when the timings are noisy.
//!
//! `lost_events` counts sequence gaps plus listeners that never saw their
//! room's final event; a lost event or a failed request makes the run
//! exit 1 (speeds never do). Flags: `--seconds S` (3), `--connections N`
//! (32), `--rooms R` (16), `--shards K` (cores), `--threads T` (the
//! server's HTTP threads; its default), `--client-threads C` (2),
//! `--max-requests M` (2000000), `--fsync always|never|both` (both).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use roomstate_server::{config::Config, server};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The server's allocator (as in `roomstate-server`'s `main`), so the
/// bench measures what the server binary runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ADMIN: &str = "load-admin";
const APP: &str = "load-app";
const SECRET: &str = "load-secret";

struct Args {
    seconds: u64,
    connections: usize,
    rooms: usize,
    shards: Option<usize>,
    threads: Option<usize>,
    client_threads: usize,
    max_requests: u64,
    modes: Vec<&'static str>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seconds: 3,
        connections: 32,
        rooms: 16,
        shards: None,
        threads: None,
        client_threads: 2,
        max_requests: 2_000_000,
        modes: vec!["always", "never"],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--fsync" {
            a.modes = match value.as_str() {
                "always" => vec!["always"],
                "never" => vec!["never"],
                "both" => vec!["always", "never"],
                other => return Err(format!("--fsync always|never|both, not {other:?}")),
            };
            continue;
        }
        let n: u64 = value
            .parse()
            .map_err(|e| format!("{flag} {value:?}: {e}"))?;
        let small = |max: u64| usize::try_from(n.clamp(1, max)).unwrap_or(1);
        match flag.as_str() {
            "--seconds" => a.seconds = n.clamp(1, 600),
            "--connections" => a.connections = small(1024),
            "--rooms" => a.rooms = small(10_000),
            "--shards" => a.shards = Some(small(256)),
            "--threads" => a.threads = Some(small(64)),
            "--client-threads" => a.client_threads = small(64),
            "--max-requests" => a.max_requests = n.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    writes: AtomicU64,
    failures: AtomicU64,
    events: AtomicU64,
}

type Lines = Vec<(&'static str, String)>;

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("server_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut failed = false;
    let mut results: Vec<(&str, Lines)> = Vec::new();
    for &mode in &args.modes {
        match run(&args, mode) {
            Ok(lines) => {
                for (name, value) in &lines {
                    println!("fsync_{mode}.{name}: {value}");
                }
                // Correctness, not speed: a lost event or a failed request
                // fails the run (CI runs it); the speeds only get printed.
                for (name, value) in &lines {
                    if matches!(*name, "lost_events" | "failed_requests") && value != "0" {
                        eprintln!("server_load ({mode}): {name} = {value}");
                        failed = true;
                    }
                }
                results.push((mode, lines));
            }
            Err(e) => {
                eprintln!("server_load ({mode}): {e}");
                failed = true;
            }
        }
    }
    if let [(_, always), (_, never)] = results.as_slice() {
        let get = |lines: &Lines, name: &str| -> f64 {
            lines
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0.0)
        };
        for (name, key) in [
            ("writes_ratio", "writes_per_s"),
            ("p99_ratio", "p99_ms"),
            ("server_cpu_ratio", "server_cpu_us_per_req"),
        ] {
            let (a, n) = (get(always, key), get(never, key));
            let ratio = if n > 0.0 { a / n } else { 0.0 };
            println!("always_vs_never.{name}: {ratio:.3}");
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// One mode: the server on its runtime, the load on another, then a
/// clean stop (flush and snapshot) and the data directory removed.
fn run(args: &Args, mode: &str) -> Result<Lines, String> {
    let data = std::env::temp_dir().join(format!("roomstate-load-{}-{mode}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let config_path = data.with_extension("toml");
    std::fs::write(
        &config_path,
        "requests_per_second = 0\nsnapshot_every_records = 200000\n",
    )
    .map_err(|e| e.to_string())?;
    let mut flags = vec![
        "--vendor".to_owned(),
        "easemob".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--fsync".to_owned(),
        mode.to_owned(),
        "--data".to_owned(),
        data.display().to_string(),
        "--config".to_owned(),
        config_path.display().to_string(),
    ];
    if let Some(k) = args.shards {
        flags.extend(["--shards".to_owned(), k.to_string()]);
    }
    if let Some(t) = args.threads {
        flags.extend(["--threads".to_owned(), t.to_string()]);
    }
    let config = Config::from_args(flags, |k| match k {
        "ROOMSTATE_ADMIN_TOKEN" => Some(ADMIN.to_owned()),
        "ROOMSTATE_TOKEN_SECRET" => Some(SECRET.to_owned()),
        "ROOMSTATE_APP_TOKEN" => Some(APP.to_owned()),
        _ => None,
    })?;
    let server_rt = server::runtime(&config).map_err(|e| e.to_string())?;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("load-gen")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let running = server_rt.block_on(server::start(config))?;
    let result = load_rt.block_on(drive(args, running.addr));
    let stopped = server_rt.block_on(running.stop());
    drop(load_rt);
    drop(server_rt);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(&config_path);
    stopped?;
    result
}

/// What the timed window is measured by: the log's commits (from the
/// metrics), CPU time per thread group, and the whole machine's.
#[derive(Clone, Copy, Default)]
struct Probe {
    fsync_seconds: f64,
    commits: f64,
    server_ns: u64,
    load_ns: u64,
    server_switches: u64,
    /// All cores' busy time (from `/proc/stat`), in clock ticks.
    machine_busy_ticks: u64,
}

impl Probe {
    fn now() -> Probe {
        let text = roomstate_server::metrics::render();
        let find = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let (server_ns, load_ns, server_switches) = thread_cpu_ns();
        Probe {
            fsync_seconds: find("roomstate_wal_fsync_seconds_sum"),
            commits: find("roomstate_wal_fsync_seconds_count"),
            server_ns,
            load_ns,
            server_switches,
            machine_busy_ticks: machine_busy_ticks(),
        }
    }
}

/// CPU time of this process's live threads in nanoseconds: the server's
/// (`srv-*`, `shard-*`) and everything else (the load generator); and the
/// server threads' context switches (each a thread that slept and was
/// woken, or was preempted).
fn thread_cpu_ns() -> (u64, u64, u64) {
    let (mut server, mut load, mut switches) = (0u64, 0u64, 0u64);
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0, 0);
    };
    for task in dir.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        if comm.starts_with("srv-") || comm.starts_with("shard-") {
            server += ns;
            let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
            switches += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
                .sum::<u64>();
        } else {
            load += ns;
        }
    }
    (server, load, switches)
}

/// Busy ticks of all cores (user, nice, system, irq, softirq, steal).
fn machine_busy_ticks() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| v.get(i))
        .sum()
}

/// Clock ticks per second of `/proc/stat` (USER_HZ: 100 on Linux).
const USER_HZ: f64 = 100.0;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connection(addr: std::net::SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn call(
    sender: &mut Sender,
    method: &str,
    path: &str,
    auth: &str,
    body: String,
) -> Result<(u16, Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {auth}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

fn user_path(room: usize) -> String {
    format!("/org/app/metadata/chatroom/room{room}/user/writer{room}")
}

async fn drive(args: &Args, addr: std::net::SocketAddr) -> Result<Lines, String> {
    // Rooms, each with its writer present.
    let mut admin = connection(addr).await?;
    for r in 0..args.rooms {
        let body = format!(r#"{{"room":"room{r}","creator":"host"}}"#);
        let (s, b) = call(&mut admin, "POST", "/admin/rooms", ADMIN, body).await?;
        if s != 200 {
            return Err(format!("create room: {s} {b:?}"));
        }
        let path = format!("/admin/rooms/room{r}/members/writer{r}");
        let (s, b) = call(&mut admin, "POST", &path, ADMIN, String::new()).await?;
        if s != 200 {
            return Err(format!("join: {s} {b:?}"));
        }
    }
    let counters = Arc::new(Counters::default());
    // One listener per room; each reports (events, gaps, saw_end).
    let mut listeners = Vec::new();
    for r in 0..args.rooms {
        let body = format!(r#"{{"room":"room{r}","user":"listener{r}"}}"#);
        let (s, b) = call(&mut admin, "POST", "/admin/tokens", ADMIN, body).await?;
        if s != 200 {
            return Err(format!("token: {s}"));
        }
        let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
        let token = v
            .get("token")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(16 << 10);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(
            format!("ws://{addr}/ws?token={token}"),
            Some(config),
            true,
        )
        .await
        .map_err(|e| e.to_string())?;
        let counters = Arc::clone(&counters);
        listeners.push(tokio::spawn(listen(ws, counters)));
    }
    // Give the listeners' joins time to land before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    let budget = args.max_requests / args.connections as u64 + 1;
    for c in 0..args.connections {
        let mut sender = connection(addr).await?;
        let stop = Arc::clone(&stop);
        let counters = Arc::clone(&counters);
        let rooms = args.rooms;
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) && i < budget {
                let room = (c + i as usize * 7) % rooms;
                let key = format!("k{}", i % 50);
                let pick = i % 20;
                let (method, path, body) = if pick < 12 {
                    (
                        "PUT",
                        user_path(room),
                        format!(r#"{{"metaData":{{"{key}":"v{i}"}},"autoDelete":"NO_DELETE"}}"#),
                    )
                } else if pick < 17 {
                    (
                        "POST",
                        format!("/org/app/metadata/chatroom/room{room}"),
                        format!(r#"{{"keys":["{key}"]}}"#),
                    )
                } else {
                    (
                        "DELETE",
                        user_path(room),
                        format!(r#"{{"keys":["{key}"]}}"#),
                    )
                };
                let start = Instant::now();
                match call(&mut sender, method, &path, APP, body).await {
                    Ok((200, _)) => {
                        if method != "POST" {
                            counters.writes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(_) | Err(_) => {
                        counters.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                latencies.push(micros);
                counters.requests.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            latencies
        }));
    }
    let started = Instant::now();
    let before = Probe::now();
    let events_at_start = counters.events.load(Ordering::Relaxed);
    let deadline = started + Duration::from_secs(args.seconds);
    while Instant::now() < deadline && workers.iter().any(|w| !w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<u32> = Vec::new();
    for w in workers {
        latencies.extend(w.await.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = Probe::now();
    // A final marker write per room: each listener must see it.
    for r in 0..args.rooms {
        let body = r#"{"metaData":{"end":"1"},"autoDelete":"NO_DELETE"}"#.to_owned();
        let (s, _) = call(&mut admin, "PUT", &user_path(r), APP, body).await?;
        if s != 200 {
            return Err(format!("final write: {s}"));
        }
    }
    let mut lost: u64 = 0;
    for l in listeners {
        match tokio::time::timeout(Duration::from_secs(10), l).await {
            Ok(Ok((gaps, saw_end))) => lost += gaps + u64::from(!saw_end),
            _ => lost += 1,
        }
    }
    let events = counters.events.load(Ordering::Relaxed) - events_at_start;
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() - 1) as f64 * p).round() as usize;
        f64::from(latencies.get(idx).copied().unwrap_or(0)) / 1000.0
    };
    let requests = counters.requests.load(Ordering::Relaxed);
    let writes = counters.writes.load(Ordering::Relaxed);
    let mut lines = vec![
        (
            "http_req_per_s",
            format!("{:.0}", requests as f64 / elapsed),
        ),
        ("writes_per_s", format!("{:.0}", writes as f64 / elapsed)),
        ("p50_ms", format!("{:.3}", pct(0.50))),
        ("p99_ms", format!("{:.3}", pct(0.99))),
        (
            "events_delivered_per_s",
            format!("{:.0}", events as f64 / elapsed),
        ),
        ("lost_events", lost.to_string()),
        (
            "failed_requests",
            counters.failures.load(Ordering::Relaxed).to_string(),
        ),
        ("requests", requests.to_string()),
        ("seconds", format!("{elapsed:.2}")),
    ];
    // Log commits: each one fdatasync with fsync always, none with never.
    let commits = after.commits - before.commits;
    let per = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    let server_us = (after.server_ns - before.server_ns) as f64 / 1000.0;
    let load_us = (after.load_ns - before.load_ns) as f64 / 1000.0;
    let machine_cores =
        (after.machine_busy_ticks - before.machine_busy_ticks) as f64 / USER_HZ / elapsed;
    let ours_cores = (server_us + load_us) / 1e6 / elapsed;
    lines.extend([
        ("commits", format!("{commits:.0}")),
        (
            "writes_per_commit",
            format!("{:.1}", per(writes as f64, commits)),
        ),
        (
            "fsync_mean_ms",
            format!(
                "{:.3}",
                per(after.fsync_seconds - before.fsync_seconds, commits) * 1000.0
            ),
        ),
        (
            "server_cpu_us_per_req",
            format!("{:.1}", per(server_us, requests as f64)),
        ),
        (
            "load_cpu_us_per_req",
            format!("{:.1}", per(load_us, requests as f64)),
        ),
        (
            "server_switches_per_req",
            format!(
                "{:.2}",
                per(
                    (after.server_switches - before.server_switches) as f64,
                    requests as f64
                )
            ),
        ),
        (
            "server_cpu_cores",
            format!("{:.2}", server_us / 1e6 / elapsed),
        ),
        ("load_cpu_cores", format!("{:.2}", load_us / 1e6 / elapsed)),
        (
            "others_cpu_cores",
            format!("{:.2}", (machine_cores - ours_cores).max(0.0)),
        ),
    ]);
    Ok(lines)
}

/// The one field of an event the listeners check.
#[derive(serde::Deserialize)]
struct SeqOnly {
    seq: Option<u64>,
}

/// Counts events; returns (sequence gaps, whether the final marker came).
async fn listen(
    mut ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    counters: Arc<Counters>,
) -> (u64, bool) {
    let mut last: Option<u64> = None;
    let mut gaps = 0u64;
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        // Only the sequence number: no JSON tree per event (the listeners
        // share the machine with the server they measure).
        let Ok(SeqOnly { seq: Some(seq) }) = serde_json::from_str::<SeqOnly>(text.as_str()) else {
            continue;
        };
        counters.events.fetch_add(1, Ordering::Relaxed);
        if let Some(prev) = last {
            if seq != prev + 1 {
                gaps += seq.saturating_sub(prev + 1).max(1);
            }
        }
        last = Some(seq);
        if text.as_str().contains("\"end\"") {
            return (gaps, true);
        }
    }
    (gaps, false)
}
