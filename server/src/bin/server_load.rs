//! `server_load`: a bounded load test of the room server on 127.0.0.1.
//!
//! Starts the server in process (Easemob API, request rate limit lifted,
//! a fresh data directory), opens N keep-alive HTTP/1.1 connections that
//! drive a mixed workload (60 % sets, 25 % gets, 15 % deletes) over R
//! rooms, and one WebSocket listener per room that counts the events it
//! receives and checks their sequence numbers for gaps. Runs the same
//! workload with `--fsync always` and `--fsync never` and prints, per
//! mode, `name: value` lines:
//!
//! ```text
//! fsync_always.http_req_per_s: …   fsync_always.writes_per_s: …
//! fsync_always.p50_ms: …           fsync_always.p99_ms: …
//! fsync_always.events_delivered_per_s: …   fsync_always.lost_events: 0
//! ```
//!
//! `lost_events` counts sequence gaps plus listeners that never saw their
//! room's final event; a lost event or a failed request makes the run
//! exit 1 (speeds never do). Flags: `--seconds S` (3), `--connections N` (32),
//! `--rooms R` (16), `--shards K` (cores), `--max-requests M` (2000000).

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

const ADMIN: &str = "load-admin";
const APP: &str = "load-app";
const SECRET: &str = "load-secret";

struct Args {
    seconds: u64,
    connections: usize,
    rooms: usize,
    shards: Option<usize>,
    max_requests: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seconds: 3,
        connections: 32,
        rooms: 16,
        shards: None,
        max_requests: 2_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|e| format!("{flag} {value:?}: {e}"))?;
        match flag.as_str() {
            "--seconds" => a.seconds = n.clamp(1, 600),
            "--connections" => a.connections = usize::try_from(n.clamp(1, 1024)).unwrap_or(1),
            "--rooms" => a.rooms = usize::try_from(n.clamp(1, 10_000)).unwrap_or(1),
            "--shards" => a.shards = Some(usize::try_from(n.clamp(1, 256)).unwrap_or(1)),
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

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("server_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("server_load: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for mode in ["always", "never"] {
        match runtime.block_on(run(&args, mode)) {
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
            }
            Err(e) => {
                eprintln!("server_load ({mode}): {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

async fn run(args: &Args, mode: &str) -> Result<Vec<(&'static str, String)>, String> {
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
    let config = Config::from_args(flags, |k| match k {
        "ROOMSTATE_ADMIN_TOKEN" => Some(ADMIN.to_owned()),
        "ROOMSTATE_TOKEN_SECRET" => Some(SECRET.to_owned()),
        "ROOMSTATE_APP_TOKEN" => Some(APP.to_owned()),
        _ => None,
    })?;
    let running = server::start(config).await?;
    let addr = running.addr;
    let before = fsync_totals();
    let result = drive(args, addr).await.map(|mut lines| {
        let after = fsync_totals();
        let (sum, count) = (after.0 - before.0, after.1 - before.1);
        lines.push(("fsyncs", format!("{count:.0}")));
        let mean = if count > 0.0 {
            sum / count * 1000.0
        } else {
            0.0
        };
        lines.push(("fsync_mean_ms", format!("{mean:.3}")));
        lines
    });
    running.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(&config_path);
    result
}

/// The log commits' total seconds and count so far (from /metrics' text).
fn fsync_totals() -> (f64, f64) {
    let text = roomstate_server::metrics::render();
    let find = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (
        find("roomstate_wal_fsync_seconds_sum"),
        find("roomstate_wal_fsync_seconds_count"),
    )
}

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

async fn drive(
    args: &Args,
    addr: std::net::SocketAddr,
) -> Result<Vec<(&'static str, String)>, String> {
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
    Ok(vec![
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
    ])
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
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
            continue;
        };
        let Some(seq) = v.get("seq").and_then(serde_json::Value::as_u64) else {
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
