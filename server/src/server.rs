//! Starting and stopping: open the shards (recovering their logs), accept
//! HTTP/1.1 connections with a header-read timeout, and on shutdown stop
//! accepting, drain connections, then have every shard commit its log and
//! write a snapshot.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use roomstate_dialects::Dialect;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::{Config, Fsync};
use crate::conn;
use crate::http::{router, App};
use crate::limits;
use crate::metrics;
use crate::shard::{Job, Shard, ShardHandle};

/// A server that is listening.
pub struct Running {
    /// The address it listens on (the port picked when asked for port 0).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    /// Asks the server to stop (as SIGTERM does) and waits until it has
    /// flushed and snapshotted every shard.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Waits until the server stops (a fatal error, or [`Running::stopper`]).
    pub async fn wait(self) -> Result<(), String> {
        self.done.await.map_err(|e| e.to_string())?
    }

    /// A handle that asks the server to stop.
    #[must_use]
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// The runtime that serves HTTP and WebSocket connections:
/// [`Config::threads`] workers named `srv-http` (the shards run on threads
/// of their own, named `shard-N` and `shard-N-log`).
pub fn runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.max(1))
        .thread_name("srv-http")
        .enable_all()
        .build()
}

/// The file of a data directory that records its shard count.
const SHARD_COUNT_FILE: &str = "shards";

/// Settles the shard count with the data directory: rooms are placed by a
/// hash over the count, so a directory made with N shards must be opened
/// with N (another count would look for each room in the wrong log and
/// start it afresh). The count is recorded in `DATA/shards` at the first
/// start (synced); a directory from before the file counts its
/// `shard-N` directories. A count from the core-count default gives way
/// to the recorded one; an asked-for count that differs is refused.
pub fn settle_shard_count(config: &mut Config) -> Result<(), String> {
    let Some(data) = config.data.clone() else {
        return Ok(());
    };
    let path = data.join(SHARD_COUNT_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            text.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=limits::MAX_SHARDS).contains(n))
                .ok_or_else(|| format!("{}: not a shard count: {text:?}", path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => shard_dirs(&data),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    match recorded {
        Some(n) if n != config.shards && config.shards_given => {
            return Err(format!(
                "{} was made with {n} shards; start it with --shards {n} (rooms are \
                 placed by a hash over the shard count)",
                data.display()
            ));
        }
        Some(n) if n != config.shards => {
            tracing::warn!(
                shards = n,
                default = config.shards,
                "the data directory's shard count wins over the core count"
            );
            config.shards = n;
        }
        _ => {}
    }
    if !path.exists() {
        write_synced(&data, &path, &format!("{}\n", config.shards))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The shard count of a data directory made before the count was
/// recorded: one past the highest `shard-N` directory.
fn shard_dirs(data: &std::path::Path) -> Option<usize> {
    let entries = std::fs::read_dir(data).ok()?;
    entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("shard-")?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map(|i| i + 1)
}

/// Writes a small file atomically and durably (temporary file, sync,
/// rename, sync of the directory).
fn write_synced(dir: &std::path::Path, path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Opens the shards, binds the listener and starts serving.
pub async fn start(mut config: Config) -> Result<Running, String> {
    metrics::install();
    settle_shard_count(&mut config)?;
    if config.fsync == Fsync::Never {
        tracing::warn!("--fsync never: acknowledged writes may be lost on a power failure or OS crash (tests only)");
    }
    if config.data.is_none() {
        tracing::warn!("no --data directory: state is kept in memory only");
    }
    let mut shards = Vec::with_capacity(config.shards);
    let mut tasks: JoinSet<(usize, Result<(), String>)> = JoinSet::new();
    for index in 0..config.shards {
        let cfg = config.clone();
        let shard = tokio::task::spawn_blocking(move || Shard::open(&cfg, index))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("shard {index}: {e}"))?;
        let (tx, rx) = mpsc::channel(limits::SHARD_QUEUE);
        shards.push(ShardHandle { tx });
        tasks.spawn(run_on_own_thread(index, shard, rx));
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut front = Dialect::new(config.vendor);
    front.set_request_id_salt(crate::shard::request_id_salt(255));
    let app = Arc::new(App {
        front: Mutex::new(front),
        config,
        shards,
        next_conn: AtomicU64::new(1),
    });
    tracing::info!(%addr, vendor = app.config.vendor.name(), shards = app.shards.len(), "listening");
    let (stop, stop_rx) = watch::channel(false);
    let done = tokio::spawn(serve(listener, app, tasks, stop_rx));
    Ok(Running { addr, stop, done })
}

/// Runs a shard on a thread of its own (with a single-threaded runtime
/// for its channel and timer): its log syncs block that thread only, never
/// the workers that serve HTTP.
async fn run_on_own_thread(
    index: usize,
    shard: Shard,
    rx: mpsc::Receiver<Job>,
) -> (usize, Result<(), String>) {
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("shard-{index}"))
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt.block_on(shard.run(rx)).map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot start the shard's runtime: {e}")),
            };
            let _ = done_tx.send(result);
        });
    if let Err(e) = spawned {
        return (index, Err(format!("cannot start the shard's thread: {e}")));
    }
    match done_rx.await {
        Ok(result) => (index, result),
        Err(_) => (index, Err("the shard's thread ended abruptly".into())),
    }
}

/// A connection's service that tells its [`conn::Watch`] when each
/// request's head is complete and when the request is answered.
fn watched(
    svc: TowerToHyperService<axum::Router>,
    watch: Arc<conn::Watch>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send,
> {
    use hyper::service::Service as _;
    hyper::service::service_fn(move |req| {
        watch.request_started();
        let answer = svc.call(req);
        let watch = Arc::clone(&watch);
        async move {
            let response = answer.await;
            watch.request_finished(response.as_ref().map_or(500, |r| r.status().as_u16()));
            response
        }
    })
}

async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    mut shard_tasks: JoinSet<(usize, Result<(), String>)>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let service = router(Arc::clone(&app));
    let keep_alive_idle = app.config.keep_alive_idle;
    let permits = Arc::new(Semaphore::new(limits::MAX_CONNECTIONS));
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut conns: JoinSet<()> = JoinSet::new();
    let mut fatal: Option<String> = None;
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let watch = Arc::new(conn::Watch::default());
                let io = conn::HeadDeadline::new(stream, Arc::clone(&watch), limits::HEADER_READ_TIMEOUT);
                let svc = watched(TowerToHyperService::new(service.clone()), watch);
                let mut drain = drain_rx.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    // hyper's header timer also runs while a connection
                    // idles between requests: it is the idle limit, and
                    // HeadDeadline times a begun head.
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(keep_alive_idle)
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(io), svc)
                        .with_upgrades();
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = drain.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(limits::SHUTDOWN_GRACE, conn).await;
                        }
                    }
                });
            }
            _ = stop.changed() => break,
            Some(ended) = shard_tasks.join_next() => {
                let why = match ended {
                    Ok((i, Err(e))) => format!("shard {i} failed: {e}"),
                    Ok((i, Ok(()))) => format!("shard {i} stopped"),
                    Err(e) => format!("a shard task failed: {e}"),
                };
                tracing::error!("{why}; stopping");
                fatal = Some(why);
                break;
            }
            // Reap finished connections so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!("stopped accepting; draining connections");
    let _ = drain_tx.send(true);
    let _ = tokio::time::timeout(limits::SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    let mut errors = Vec::new();
    for (i, shard) in app.shards.iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        if shard.tx.send(Job::Shutdown { reply: tx }).await.is_ok() {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(format!("shard {i}: {e}")),
                Err(_) => errors.push(format!("shard {i} stopped without an answer")),
            }
        }
    }
    while let Some(ended) = shard_tasks.join_next().await {
        if let Ok((i, Err(e))) = ended {
            errors.push(format!("shard {i}: {e}"));
        }
    }
    if let Some(f) = fatal {
        errors.insert(0, f);
    }
    if errors.is_empty() {
        tracing::info!("stopped cleanly");
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn config(data: &std::path::Path, shards: Option<usize>) -> Config {
        let mut args = vec![
            "--vendor".to_owned(),
            "easemob".to_owned(),
            "--data".to_owned(),
            data.display().to_string(),
        ];
        if let Some(n) = shards {
            args.extend(["--shards".to_owned(), n.to_string()]);
        }
        Config::from_args(args, |k| Some(format!("{k}-secret"))).unwrap()
    }

    #[test]
    fn a_data_directory_keeps_the_shard_count_it_was_made_with() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut c = config(&data, Some(3));
        settle_shard_count(&mut c).unwrap();
        assert_eq!(std::fs::read_to_string(data.join("shards")).unwrap(), "3\n");
        // Asked for another count: refused, naming the one to use.
        let mut c = config(&data, Some(2));
        let err = settle_shard_count(&mut c).unwrap_err();
        assert!(
            err.ends_with(
                "was made with 3 shards; start it with --shards 3 (rooms are placed by a \
                 hash over the shard count)"
            ),
            "{err}"
        );
        // The core-count default gives way.
        let mut c = config(&data, None);
        assert!(!c.shards_given);
        settle_shard_count(&mut c).unwrap();
        assert_eq!(c.shards, 3);
    }

    #[test]
    fn a_directory_from_before_the_record_counts_its_shard_directories() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        for i in 0..4 {
            std::fs::create_dir_all(data.join(format!("shard-{i}"))).unwrap();
        }
        let mut c = config(&data, Some(1));
        assert!(settle_shard_count(&mut c)
            .unwrap_err()
            .contains("--shards 4"));
        assert!(!data.join("shards").exists(), "nothing recorded on refusal");
        let mut c = config(&data, None);
        settle_shard_count(&mut c).unwrap();
        assert_eq!(c.shards, 4);
        assert_eq!(std::fs::read_to_string(data.join("shards")).unwrap(), "4\n");
    }

    fn snapshots(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".snap"))
            .collect();
        names.sort();
        names
    }

    // `stop` is what an embedding program calls instead of SIGTERM: when
    // it returns, the listener is closed and every shard has written its
    // final snapshot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_returns_once_the_listener_is_closed_and_the_shards_snapshotted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), Some(1));
        c.listen = "127.0.0.1:0".parse().unwrap();
        let running = start(c).await.unwrap();
        let addr = running.addr;
        let shard = dir.path().join("shard-0");
        let before = snapshots(&shard);
        assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
        running.stop().await.unwrap();
        let after = snapshots(&shard);
        assert_eq!(after.len(), 1, "{after:?}");
        assert_ne!(after, before, "no snapshot at the stop");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still listening on {addr}"
        );
    }

    #[test]
    fn a_damaged_record_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shards"), "many\n").unwrap();
        let mut c = config(dir.path(), Some(1));
        let err = settle_shard_count(&mut c).unwrap_err();
        assert!(err.ends_with("not a shard count: \"many\\n\""), "{err}");
        // A record that cannot be read (here a directory) stops it too,
        // rather than counting as no record.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("shards")).unwrap();
        let mut c = config(dir.path(), Some(1));
        let err = settle_shard_count(&mut c).unwrap_err();
        assert!(
            err.starts_with(&dir.path().join("shards").display().to_string()),
            "{err}"
        );
    }
}
