//! A shard's durability: its write-ahead log when the server has a data
//! directory, nothing when it keeps state in memory. The shard loop calls
//! only these functions, so the log's API is used in this file alone.

use std::path::Path;

use roomstate::{Command, Millis};
use roomstate_dialects::{Dialect, VendorId};

use crate::config::{Config, Fsync};
use crate::engine_api;
use crate::wal::{FsyncMode, Wal, WalError, WalOptions};

/// One shard's log, or none.
pub struct Store {
    wal: Option<Wal>,
    /// Where the open WebSocket connections are listed (see
    /// [`read_ledger`]); `None` without a data directory.
    ledger: Option<std::path::PathBuf>,
    /// Whether the ledger is synced as the log's files are (fsync
    /// always); see [`write_ledger`].
    ledger_synced: bool,
}

/// The file, in a shard's directory, listing the WebSocket connections
/// open at the last commit: one `room\tuser` per line, percent-encoded.
/// After a crash, each is recorded as dropped so its grace runs; the log
/// cannot tell them from connections the management API made.
const LEDGER: &str = "ws-connections";

/// Why a shard's store failed; fatal for the shard (the process must
/// restart and recover from what is on disk).
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<WalError> for StoreError {
    fn from(e: WalError) -> StoreError {
        StoreError(e.to_string())
    }
}

impl Store {
    /// Opens shard `index`'s log under the data directory (creating it)
    /// and rebuilds the shard's dialect from its snapshot and records; or,
    /// without a data directory, a fresh dialect.
    pub fn open(config: &Config, index: usize) -> Result<(Store, Dialect), StoreError> {
        let fresh = || {
            engine_api::new_dialect(
                config.vendor,
                config.requests_per_second,
                config.disconnect_grace_ms,
            )
        };
        let Some(data) = &config.data else {
            return Ok((
                Store {
                    wal: None,
                    ledger: None,
                    ledger_synced: false,
                },
                fresh(),
            ));
        };
        let dir = data.join(format!("shard-{index}"));
        let opts = WalOptions {
            fsync: match config.fsync {
                Fsync::Always => FsyncMode::Always,
                Fsync::Never => FsyncMode::Never,
            },
            snapshot_every_records: config.snapshot_every_records,
            snapshot_every: config.snapshot_every,
            repair: config.repair,
        };
        let ledger_synced = opts.fsync == FsyncMode::Always;
        let (wal, recovery) = Wal::open(&dir, opts)?;
        if let Some(at) = recovery.torn_tail_cut {
            tracing::warn!(
                shard = index,
                offset = at,
                "cut a torn record off the log's tail"
            );
        }
        if let Some(at) = recovery.repaired_at {
            tracing::warn!(shard = index, offset = at, "repair truncated a corrupt log");
        }
        let mut dialect = match &recovery.snapshot {
            Some(bytes) => restore(config.vendor, bytes, &dir)?,
            None => fresh(),
        };
        let records = recovery.records.len();
        for (now, command) in recovery.records {
            engine_api::replay(&mut dialect, now, command);
        }
        tracing::info!(
            shard = index,
            snapshot = recovery.snapshot.is_some(),
            records,
            "recovered"
        );
        Ok((
            Store {
                wal: Some(wal),
                ledger: Some(dir.join(LEDGER)),
                ledger_synced,
            },
            dialect,
        ))
    }

    /// The WebSocket connections the ledger lists (left by a crash: a clean
    /// stop leaves it empty), as (room, user) pairs, one per connection.
    #[must_use]
    pub fn read_ledger(&self) -> Vec<(String, String)> {
        let Some(path) = &self.ledger else {
            return Vec::new();
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| {
                let (room, user) = line.split_once('\t')?;
                Some((
                    roomstate_dialects::percent_decode(room, false)?,
                    roomstate_dialects::percent_decode(user, false)?,
                ))
            })
            .collect()
    }

    /// Whether there is a log (else state lives in memory only).
    #[must_use]
    pub fn is_logged(&self) -> bool {
        self.wal.is_some()
    }
}

fn restore(vendor: VendorId, bytes: &[u8], dir: &Path) -> Result<Dialect, StoreError> {
    engine_api::restore_shard(vendor, bytes)
        .map_err(|e| StoreError(format!("{}: {e}", dir.display())))
}

/// What a shard asks of its syncer.
pub enum SyncMsg {
    /// Log a batch's journal; report it durable as `batch`.
    Append {
        /// The shard's batch number (increasing).
        batch: u64,
        /// The batch's state changes.
        journal: Vec<(Millis, Command)>,
    },
    /// Write this snapshot after committing everything sent before it.
    Snapshot(Vec<u8>),
    /// The open WebSocket connections, to list in the ledger once what
    /// was sent before is committed.
    Connections(Vec<(String, String)>),
    /// Commit, write this snapshot, report [`Durable::Finished`] and stop.
    Finish(Vec<u8>),
}

/// What a syncer reports back.
pub enum Durable {
    /// Every batch up to this number is on disk.
    UpTo(u64),
    /// The final snapshot is written; the syncer has stopped.
    Finished,
    /// The log failed; the syncer has stopped (fatal for the shard).
    Failed(String),
}

/// The sending end of a shard's syncer.
pub struct Syncer {
    tx: std::sync::mpsc::Sender<SyncMsg>,
    /// Set by the syncer when the log wants a snapshot.
    pub snapshot_due: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Syncer {
    /// Hands a message to the syncer; `false` if it has stopped.
    pub fn send(&self, msg: SyncMsg) -> bool {
        self.tx.send(msg).is_ok()
    }
}

/// Starts the thread that owns a shard's log: it appends what the shard
/// sends, commits everything that queued up while the previous sync ran
/// with one sync (group commit across batches, so the shard keeps applying
/// while the disk works), and reports which batches are durable.
pub fn spawn_syncer(
    mut store: Store,
    index: usize,
    durable: tokio::sync::mpsc::UnboundedSender<Durable>,
) -> Result<Syncer, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel::<SyncMsg>();
    let due = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&due);
    std::thread::Builder::new()
        .name(format!("shard-{index}-log"))
        .spawn(move || {
            let report = match sync_loop(&mut store, &rx, &flag, &durable) {
                Ok(()) => Durable::Finished,
                Err(e) => Durable::Failed(e.0),
            };
            let _ = durable.send(report);
        })
        .map_err(|e| StoreError(format!("cannot start the log thread: {e}")))?;
    Ok(Syncer {
        tx,
        snapshot_due: due,
    })
}

fn sync_loop(
    store: &mut Store,
    rx: &std::sync::mpsc::Receiver<SyncMsg>,
    due: &std::sync::atomic::AtomicBool,
    durable: &tokio::sync::mpsc::UnboundedSender<Durable>,
) -> Result<(), StoreError> {
    use std::sync::atomic::Ordering;
    let (ledger, synced_ledger) = (store.ledger.clone(), store.ledger_synced);
    let Some(wal) = store.wal.as_mut() else {
        // No log: everything is "durable" at once.
        for msg in rx {
            match msg {
                SyncMsg::Append { batch, .. } => {
                    let _ = durable.send(Durable::UpTo(batch));
                }
                SyncMsg::Snapshot(_) | SyncMsg::Connections(_) => {}
                SyncMsg::Finish(_) => return Ok(()),
            }
        }
        return Ok(());
    };
    // Every sender gone without a Finish: the shard ended abruptly.
    while let Ok(first) = rx.recv() {
        let mut last_batch = None;
        let mut pending = false;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                SyncMsg::Append { batch, journal } => {
                    for (now, command) in &journal {
                        wal.append(*now, command)?;
                    }
                    pending |= !journal.is_empty();
                    last_batch = Some(batch);
                }
                SyncMsg::Snapshot(bytes) => {
                    commit(wal, &mut pending)?;
                    wal.snapshot(&bytes)?;
                    tracing::info!("snapshot written");
                }
                SyncMsg::Connections(list) => {
                    commit(wal, &mut pending)?;
                    if let Some(path) = &ledger {
                        write_ledger(path, &list, synced_ledger)?;
                    }
                }
                SyncMsg::Finish(bytes) => {
                    commit(wal, &mut pending)?;
                    if let Some(b) = last_batch {
                        let _ = durable.send(Durable::UpTo(b));
                    }
                    wal.snapshot(&bytes)?;
                    return Ok(());
                }
            }
            next = rx.try_recv().ok();
        }
        commit(wal, &mut pending)?;
        if let Some(b) = last_batch {
            let _ = durable.send(Durable::UpTo(b));
        }
        if wal.should_snapshot() {
            due.store(true, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Replaces the ledger: writes a new file, renames it over the old one
/// and, with `durable` (fsync always), syncs the file before the rename
/// and the directory after it, as the log's own files are. Unsynced, a
/// power loss could leave a ledger older than the log, missing
/// connections the log holds as open: their users would stay present
/// for ever after the restart. Runs once per batch that opened or closed
/// WebSocket connections, after that batch's commit.
fn write_ledger(
    path: &std::path::Path,
    list: &[(String, String)],
    durable: bool,
) -> Result<(), StoreError> {
    use std::io::Write;
    let mut text = String::new();
    for (room, user) in list {
        text.push_str(&encode(room));
        text.push('\t');
        text.push_str(&encode(user));
        text.push('\n');
    }
    let tmp = path.with_extension("new");
    let fail = |e: std::io::Error| StoreError(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::create(&tmp).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    if durable {
        file.sync_data().map_err(fail)?;
    }
    drop(file);
    std::fs::rename(&tmp, path).map_err(fail)?;
    if durable {
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// Percent-encodes what would break a `room\tuser` line.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' | '\t' | '\n' | '\r' => out.push_str(&format!("%{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn commit(wal: &mut Wal, pending: &mut bool) -> Result<(), StoreError> {
    if *pending {
        let latency = wal.commit()?;
        crate::metrics::fsync_latency(latency);
        *pending = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The ledger of open connections is synced exactly when the log is:
    /// under fsync always a power loss must not leave it older than the
    /// log, under never nothing is synced.
    #[test]
    fn the_ledger_is_synced_when_the_log_is() {
        for (fsync, synced) in [(Fsync::Always, true), (Fsync::Never, false)] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config::for_tests(VendorId::Easemob);
            config.data = Some(dir.path().to_path_buf());
            config.fsync = fsync;
            let (store, _) = Store::open(&config, 0).unwrap();
            assert!(store.is_logged());
            assert_eq!(store.ledger_synced, synced, "{fsync:?}");
        }
        let memory = Config::for_tests(VendorId::Easemob);
        let (store, _) = Store::open(&memory, 0).unwrap();
        assert!(!store.is_logged());
        assert!(!store.ledger_synced);
    }
}
