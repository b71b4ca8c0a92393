//! The write-ahead log: one per shard, so that a shard's engine survives a
//! crash.
//!
//! ## The shard loop's contract
//!
//! ```no_run
//! use std::time::Duration;
//! use roomstate::{Command, Millis, Profile};
//! use roomstate_server::wal::{recover_engine, FsyncMode, Wal, WalOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let opts = WalOptions {
//!     fsync: FsyncMode::Always,
//!     snapshot_every_records: 100_000,
//!     snapshot_every: Duration::from_secs(300),
//!     repair: false,
//! };
//! // At start: the latest snapshot and the records after it...
//! let (mut wal, recovery) = Wal::open("data/shard-0".as_ref(), opts)?;
//! // ...rebuild the engine. Events of the replay are dropped, not sent.
//! let mut engine = recover_engine(Profile::easemob(), recovery)?;
//!
//! # let batch: Vec<(Millis, Command)> = Vec::new();
//! // For each batch of commands taken from the shard's channel:
//! for (now, command) in &batch {
//!     wal.append(*now, command)?;          // 1. log it (buffered)...
//!     let _outcome = engine.handle(*now, command.clone()); // 2. ...apply it
//! }
//! let _fsync_latency = wal.commit()?;      // 3. one fdatasync for the batch
//! // 4. only now send the batch's replies and publish its events.
//! if wal.should_snapshot() {
//!     wal.snapshot(&engine.snapshot())?;   // 5. truncates the log
//! }
//! # Ok(()) }
//! ```
//!
//! - **What to log.** Replay must rebuild the state, so log, in order and
//!   with the same `now`, every command that may have changed it. Logging
//!   *every* command handed to [`Engine::handle`](roomstate::Engine::handle)
//!   (reads, ticks and rejected ones too) makes the replay exact to the
//!   byte, rate bucket and clock included; [`recover_engine`] and the tests
//!   assume that. A journal that keeps only the commands that succeeded
//!   must still log a `Command::Tick` at the `now` of a left-out command
//!   that emitted events: the engine expires due grace periods before
//!   *every* command, a rejected one included, and without that tick the
//!   replayed state lacks the expiry (one sequence number behind) until
//!   the next tick. Appending *before* handling lets a command that cannot
//!   be logged ([`WalError::RecordTooLarge`]) be refused unapplied.
//! - **Group commit.** [`Wal::append`] only encodes into a buffer;
//!   [`Wal::commit`] writes the batch with one `write` and makes it durable
//!   with one `fdatasync`. Nothing of a batch (replies, WebSocket events)
//!   may leave the process before its `commit` returns `Ok`: a reply sent
//!   earlier could announce a write that a crash then loses.
//! - **A failed `commit` or `snapshot` is fatal for the shard.** The engine
//!   has applied commands the disk may not hold, and after a failed fsync
//!   the kernel may have dropped the dirty pages. The WAL turns
//!   [`poisoned`](WalError::Poisoned); answer the batch with errors and
//!   restart the process, which recovers from what is on disk.
//! - **Replay sends nothing.** [`recover_engine`] drains and drops the
//!   events the replay produces; clients saw them (or not) before the
//!   crash, and a client that reconnects resumes from its `since` or gets
//!   the full state.
//!
//! ## Files of a shard directory
//!
//! - `wal-<G>.log`, log generation `G` (20 decimal digits): a 24-byte header
//!   (magic `RSWALLOG`, format version u32 LE = 1, generation u64 LE, CRC32
//!   of the previous 20 bytes u32 LE), then frames: payload length u32 LE
//!   (1..=[`MAX_RECORD_LEN`]), CRC32 (IEEE) of the payload u32 LE, and the
//!   payload, a postcard `(Millis, Command)`.
//! - `snap-<G>.snap`, the engine's state after every record of the logs
//!   before generation `G`: a 36-byte header (magic `RSWALSNP`, version u32
//!   LE, generation u64 LE, payload length u64 LE, CRC32 of the payload u32
//!   LE, CRC32 of the previous 32 bytes u32 LE), then the bytes given to
//!   [`Wal::snapshot`] (opaque to the WAL: [`Engine::snapshot`](roomstate::Engine::snapshot)'s,
//!   or a wrapper around them such as the server's shard snapshot).
//! - `*.tmp`, a file being written; removed at open.
//! - `LOCK`, empty: an exclusive `flock` on it while a [`Wal`] has the
//!   directory open, so two processes never append to one log.
//!
//! Without a snapshot the state starts empty and the log is generation 0.
//! A snapshot at generation `G` writes `snap-<G+1>` (to a `.tmp`, fsync,
//! rename, fsync the directory), then creates `wal-<G+1>.log` the same way,
//! then removes `wal-<G>.log` and `snap-<G>`. Recovery takes the newest
//! snapshot `S`, removes older logs and snapshots (a crash left them),
//! creates `wal-<S>.log` if the crash came before it, and replays it. At
//! every crash point this gives the state of the last committed record.
//!
//! ## Damage
//!
//! The first bad frame of the log (short header, payload past the end,
//! length out of range, CRC mismatch) is a **torn tail** if no intact frame
//! starts at any byte after it: that is what a crash mid-append leaves. It
//! is cut off, the file truncated there, and a `tracing::warn!` names the
//! file, the offset and the bytes dropped ([`Recovery::torn_tail_cut`]).
//! (The search is bounded to 1 GiB of checksumming; past that the frame
//! counts as corrupt.)
//! Anything else (a bad frame with a good one after it, a bad file header,
//! a frame whose CRC matches but which does not decode) is
//! [`WalError::Corrupt`] naming the file and the offset; with
//! [`WalOptions::repair`] the log is truncated there instead (a bad header:
//! the log is started afresh), with a warning. A damaged snapshot is
//! [`WalError::CorruptSnapshot`]; repair cannot help there.
//!
//! The log is read whole into memory at open; it is bounded by the
//! snapshot triggers.

mod error;
mod files;
mod format;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roomstate::{Command, Engine, Event, Millis, Profile};

pub use error::{Corruption, WalError};
pub use format::{
    FORMAT_VERSION, FRAME_HEADER_LEN, LOG_HEADER_LEN, LOG_MAGIC, MAX_RECORD_LEN,
    SNAPSHOT_HEADER_LEN, SNAPSHOT_MAGIC,
};

use error::io;
use files::Syncer;

/// Whether [`Wal::commit`] and snapshots fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncMode {
    /// `fdatasync` every commit; snapshots and new logs are fsynced with
    /// their directory. Survives power loss.
    Always,
    /// Never fsync: for tests and benchmarks. Committed records are still
    /// written to the OS before `commit` returns, so they survive the
    /// process being killed, but not a power loss or kernel crash. Logged
    /// with `tracing::warn!` at open.
    Never,
}

/// How a [`Wal`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Fsync or not.
    pub fsync: FsyncMode,
    /// [`Wal::should_snapshot`] after this many records since the last
    /// snapshot; 0 turns this trigger off.
    pub snapshot_every_records: u64,
    /// [`Wal::should_snapshot`] once this long has passed since the last
    /// snapshot (or the open) and a record was appended since; zero turns
    /// this trigger off.
    pub snapshot_every: Duration,
    /// At open, truncate a log at its first corrupt record instead of
    /// refusing to start (`--repair`). Records from there on are lost.
    pub repair: bool,
}

impl Default for WalOptions {
    /// Fsync on, a snapshot every 100 000 records or 5 minutes, no repair.
    fn default() -> WalOptions {
        WalOptions {
            fsync: FsyncMode::Always,
            snapshot_every_records: 100_000,
            snapshot_every: Duration::from_secs(300),
            repair: false,
        }
    }
}

/// What [`Wal::open`] found on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The newest snapshot's engine bytes, for
    /// [`Engine::restore`](roomstate::Engine::restore); `None`: start empty.
    pub snapshot: Option<Vec<u8>>,
    /// The records logged after it, in order, for
    /// [`Engine::handle`](roomstate::Engine::handle).
    pub records: Vec<(Millis, Command)>,
    /// Where a torn tail was cut off the log, if one was.
    pub torn_tail_cut: Option<u64>,
    /// Where `repair` truncated a corrupt log, if it did.
    pub repaired_at: Option<u64>,
    /// The log generation now open (the snapshot's, 0 without one).
    pub generation: u64,
}

/// Counters since [`Wal::open`], for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended.
    pub appended: u64,
    /// Commits that wrote at least one record.
    pub commits: u64,
    /// `fdatasync` calls on the log, one per commit with
    /// [`FsyncMode::Always`].
    pub fsyncs: u64,
    /// `fsync` calls on whole files: each new snapshot and log before its
    /// rename, and a log that open cut or repaired. Those open made are
    /// counted.
    pub file_fsyncs: u64,
    /// `fsync` calls on the shard directory: after each rename of a new
    /// file into place, and after removing stale files (at open or after a
    /// snapshot). Those open made are counted.
    pub dir_fsyncs: u64,
    /// Frame bytes written to logs.
    pub bytes: u64,
    /// Snapshots written.
    pub snapshots: u64,
}

/// One shard's write-ahead log. See the [module docs](self) for the
/// contract and the format.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    generation: u64,
    path: PathBuf,
    file: File,
    /// Bytes of the log on disk: header and committed frames.
    len: u64,
    /// Frames appended since the last commit.
    buf: Vec<u8>,
    /// Records appended since the last snapshot, committed or not.
    since_snapshot: u64,
    last_snapshot: Instant,
    poisoned: bool,
    stats: WalStats,
    /// Whether to fsync files and the directory, and the count of those
    /// fsyncs (the rest of `stats`).
    sync: Syncer,
    /// Held for the WAL's life: see [`files::lock`].
    _lock: File,
}

impl Wal {
    /// Opens (creating) the shard directory `dir`: removes leftovers of an
    /// interrupted snapshot, reads the newest snapshot and its log, cuts a
    /// torn tail off the log, and returns the WAL, positioned to append,
    /// with what to recover from.
    ///
    /// Errors: [`WalError::Io`]; [`WalError::Locked`] if another process has
    /// the directory open; [`WalError::Corrupt`] for a log corrupt
    /// before its tail (unless `opts.repair`); [`WalError::CorruptSnapshot`]
    /// for a damaged snapshot or a log without the snapshot it follows.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovery), WalError> {
        if opts.fsync == FsyncMode::Never {
            tracing::warn!(
                dir = %dir.display(),
                "fsync is off (--fsync never): the WAL survives a killed process but not a power loss or OS crash"
            );
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, "create the shard directory", e))?;
        let lock = files::lock(dir)?;
        let mut sync = Syncer::new(opts.fsync == FsyncMode::Always);
        let listing = files::list(dir)?;
        let mut removed = false;
        for tmp in &listing.tmps {
            removed |= files::remove_stale(tmp);
        }
        let newest = listing.snapshots.last_key_value();
        let generation = newest.map_or(0, |(g, _)| *g);
        let snapshot = match newest {
            Some((&g, path)) => Some(read_snapshot(path, g)?),
            None => None,
        };
        if let Some((&g, path)) = listing.logs.range(generation.saturating_add(1)..).next() {
            return Err(WalError::CorruptSnapshot {
                path: path.clone(),
                offset: 0,
                reason: Corruption::MissingSnapshot { generation: g },
            });
        }
        let opened = match listing.logs.get(&generation) {
            Some(path) => open_log(path, generation, opts.repair, &mut sync)?,
            None => {
                let name = files::log_name(generation);
                let header = format::log_header(generation);
                let file = files::create_atomic(dir, &name, &[&header], &mut sync)?;
                OpenedLog {
                    path: dir.join(name),
                    file,
                    len: header.len() as u64,
                    records: Vec::new(),
                    torn_tail_cut: None,
                    repaired_at: None,
                }
            }
        };
        // Older generations are covered by the snapshot: a crash came
        // between writing it and removing them.
        for (_, path) in listing.logs.range(..generation) {
            removed |= files::remove_stale(path);
        }
        for (_, path) in listing.snapshots.range(..generation) {
            removed |= files::remove_stale(path);
        }
        if removed {
            sync.dir(dir)?;
        }
        tracing::info!(
            dir = %dir.display(),
            generation,
            snapshot = snapshot.is_some(),
            records = opened.records.len(),
            "WAL opened"
        );
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            generation,
            path: opened.path,
            file: opened.file,
            len: opened.len,
            buf: Vec::new(),
            since_snapshot: opened.records.len() as u64,
            last_snapshot: Instant::now(),
            poisoned: false,
            stats: WalStats::default(),
            sync,
            _lock: lock,
        };
        let recovery = Recovery {
            snapshot,
            records: opened.records,
            torn_tail_cut: opened.torn_tail_cut,
            repaired_at: opened.repaired_at,
            generation,
        };
        Ok((wal, recovery))
    }

    // ----- getters -----

    /// The shard directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file being appended to.
    #[must_use]
    pub fn log_path(&self) -> &Path {
        &self.path
    }

    /// The current log generation.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The options in force.
    #[must_use]
    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    /// Bytes appended and not yet committed.
    #[must_use]
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Records appended since the last snapshot (or those replayed at open).
    #[must_use]
    pub fn records_since_snapshot(&self) -> u64 {
        self.since_snapshot
    }

    /// Counters since open.
    #[must_use]
    pub fn stats(&self) -> WalStats {
        WalStats {
            file_fsyncs: self.sync.files,
            dir_fsyncs: self.sync.dirs,
            ..self.stats
        }
    }

    /// True once a write, fsync or snapshot failed; every call then fails.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// True when a snapshot is due: [`WalOptions::snapshot_every_records`]
    /// records, or [`WalOptions::snapshot_every`] elapsed with at least one
    /// record, since the last snapshot.
    #[must_use]
    pub fn should_snapshot(&self) -> bool {
        self.should_snapshot_at(Instant::now())
    }

    /// [`Wal::should_snapshot`] as of `now`.
    #[must_use]
    pub fn should_snapshot_at(&self, now: Instant) -> bool {
        let n = self.opts.snapshot_every_records;
        let every = self.opts.snapshot_every;
        self.since_snapshot > 0
            && ((n > 0 && self.since_snapshot >= n)
                || (!every.is_zero() && now.saturating_duration_since(self.last_snapshot) >= every))
    }

    // ----- writing -----

    /// Encodes `(now, command)` as a frame into the batch buffer. Nothing
    /// reaches the file before [`Wal::commit`].
    ///
    /// Errors: [`WalError::RecordTooLarge`], [`WalError::Encode`] (nothing
    /// appended; the batch so far is kept), [`WalError::Poisoned`].
    pub fn append(&mut self, now: Millis, command: &Command) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        format::push_frame(&mut self.buf, now, command)?;
        self.since_snapshot += 1;
        self.stats.appended += 1;
        Ok(())
    }

    /// Writes every frame appended since the last commit and, with
    /// [`FsyncMode::Always`], makes them durable with one `fdatasync`.
    /// Returns how long the fsync took (zero when there was nothing to
    /// commit or fsync is off). Replies of the batch go out after this.
    ///
    /// Errors: [`WalError::Io`], after which the WAL is poisoned;
    /// [`WalError::Poisoned`].
    pub fn commit(&mut self) -> Result<Duration, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if self.buf.is_empty() {
            return Ok(Duration::ZERO);
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            self.poisoned = true;
            // Best effort: do not leave a partial frame for a later start
            // to read as damage. Recovery cuts it as a torn tail anyway.
            let _ = self.file.set_len(self.len);
            return Err(io(&self.path, "append to the log", e));
        }
        self.len += self.buf.len() as u64;
        self.stats.bytes += self.buf.len() as u64;
        self.stats.commits += 1;
        self.buf.clear();
        if self.opts.fsync == FsyncMode::Never {
            return Ok(Duration::ZERO);
        }
        let start = Instant::now();
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty
            // pages: what is on disk is unknown, so stop here.
            self.poisoned = true;
            return Err(io(&self.path, "fdatasync the log", e));
        }
        self.stats.fsyncs += 1;
        Ok(start.elapsed())
    }

    /// Commits what is pending, then writes `engine_snapshot` (the state's
    /// bytes, e.g. [`Engine::snapshot`](roomstate::Engine::snapshot), taken
    /// after every appended command was handled; the WAL does not look
    /// inside them) as the next generation's snapshot
    /// atomically, starts that generation's log, and removes the previous
    /// log and snapshot.
    ///
    /// Errors: [`WalError::Io`]. A failure before the snapshot file is in
    /// place leaves the WAL usable on its old log; one after poisons it (its
    /// old log no longer counts at recovery, so nothing may be appended
    /// there).
    pub fn snapshot(&mut self, engine_snapshot: &[u8]) -> Result<(), WalError> {
        self.commit()?;
        let next = self.generation.saturating_add(1);
        let header = format::snapshot_header(next, engine_snapshot);
        let snap_name = files::snapshot_name(next);
        match files::create_atomic(
            &self.dir,
            &snap_name,
            &[&header, engine_snapshot],
            &mut self.sync,
        ) {
            Ok(file) => drop(file),
            Err(e) => {
                // Once the new snapshot is in place (only the directory
                // fsync failed), the old log no longer counts at recovery:
                // appending to it would lose records.
                self.poisoned |= e.in_place;
                return Err(e.error);
            }
        }
        let log_name = files::log_name(next);
        let log_header = format::log_header(next);
        let file = match files::create_atomic(&self.dir, &log_name, &[&log_header], &mut self.sync)
        {
            Ok(file) => file,
            Err(e) => {
                self.poisoned = true;
                return Err(e.error);
            }
        };
        let old_log = std::mem::replace(&mut self.path, self.dir.join(log_name));
        self.file = file;
        self.len = log_header.len() as u64;
        let old_snapshot = self.dir.join(files::snapshot_name(self.generation));
        self.generation = next;
        self.since_snapshot = 0;
        self.last_snapshot = Instant::now();
        self.stats.snapshots += 1;
        let mut removed = files::remove_stale(&old_log);
        if old_snapshot.exists() {
            removed |= files::remove_stale(&old_snapshot);
        }
        if removed {
            // The removals need not be durable (recovery redoes them), so a
            // failure here is only logged.
            if let Err(e) = self.sync.dir(&self.dir) {
                tracing::warn!(error = %e, "cannot fsync the shard directory after a snapshot");
            }
        }
        tracing::info!(
            dir = %self.dir.display(),
            generation = next,
            bytes = engine_snapshot.len(),
            "WAL snapshot written, log truncated"
        );
        Ok(())
    }
}

/// The engine to resume with: `recovery`'s snapshot restored (or an empty
/// engine with `profile`), then every record replayed through
/// [`Engine::handle`](roomstate::Engine::handle). Outcomes are discarded and
/// the events of the replay are drained and dropped: they must not be sent
/// to clients again.
///
/// Errors: [`WalError::Restore`] if the snapshot does not restore,
/// [`WalError::ProfileMismatch`] if it was written under another profile.
pub fn recover_engine(profile: Profile, recovery: Recovery) -> Result<Engine, WalError> {
    let mut engine = match &recovery.snapshot {
        Some(bytes) => {
            let engine = Engine::restore(bytes).map_err(WalError::Restore)?;
            if *engine.profile() != profile {
                return Err(WalError::ProfileMismatch);
            }
            engine
        }
        None => Engine::new(profile),
    };
    let mut events: Vec<Event> = Vec::new();
    for (now, command) in recovery.records {
        let _ = engine.handle(now, command);
        engine.drain_events(&mut events);
        events.clear();
    }
    Ok(engine)
}

/// A log file opened for appending, with what it held.
struct OpenedLog {
    path: PathBuf,
    file: File,
    len: u64,
    records: Vec<(Millis, Command)>,
    torn_tail_cut: Option<u64>,
    repaired_at: Option<u64>,
}

fn read_snapshot(path: &Path, generation: u64) -> Result<Vec<u8>, WalError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, "read the snapshot", e))?;
    match format::check_snapshot(&bytes, generation) {
        Ok(payload) => Ok(payload.to_vec()),
        Err((offset, reason)) => Err(WalError::CorruptSnapshot {
            path: path.to_path_buf(),
            offset,
            reason,
        }),
    }
}

fn open_log(
    path: &Path,
    generation: u64,
    repair: bool,
    sync: &mut Syncer,
) -> Result<OpenedLog, WalError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io(path, "open the log", e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io(path, "read the log", e))?;
    let mut opened = OpenedLog {
        path: path.to_path_buf(),
        file,
        len: 0,
        records: Vec::new(),
        torn_tail_cut: None,
        repaired_at: None,
    };
    if let Err(reason) = format::check_log_header(&bytes, generation) {
        if !repair {
            return Err(WalError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason,
            });
        }
        tracing::warn!(
            path = %path.display(), %reason, dropped_bytes = bytes.len(),
            "--repair: the log's header is damaged; starting the log afresh"
        );
        let header = format::log_header(generation);
        truncate(&mut opened, 0, sync)?;
        opened
            .file
            .write_all(&header)
            .map_err(|e| io(path, "rewrite the log header", e))?;
        sync.file(&opened.file, path, "fsync the log")?;
        opened.len = header.len() as u64;
        opened.repaired_at = Some(0);
        return Ok(opened);
    }
    let scan = format::scan_log(&bytes);
    opened.records = scan.records;
    opened.len = scan.end as u64;
    if let Some(stop) = scan.stop {
        let offset = stop.offset as u64;
        let dropped = bytes.len() as u64 - offset;
        if stop.torn {
            tracing::warn!(
                path = %path.display(), offset, dropped_bytes = dropped, reason = %stop.reason,
                "torn record at the log's tail (a crash mid-write): cut off"
            );
            opened.torn_tail_cut = Some(offset);
        } else if repair {
            tracing::warn!(
                path = %path.display(), offset, dropped_bytes = dropped, reason = %stop.reason,
                "--repair: truncating the log at its first corrupt record"
            );
            opened.repaired_at = Some(offset);
        } else {
            return Err(WalError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: stop.reason,
            });
        }
        truncate(&mut opened, offset, sync)?;
    }
    opened
        .file
        .seek(SeekFrom::Start(opened.len))
        .map_err(|e| io(path, "seek to the end of the log", e))?;
    Ok(opened)
}

fn truncate(log: &mut OpenedLog, at: u64, sync: &mut Syncer) -> Result<(), WalError> {
    log.file
        .set_len(at)
        .map_err(|e| io(&log.path, "truncate the log", e))?;
    sync.file(&log.file, &log.path, "fsync the truncated log")?;
    log.file
        .seek(SeekFrom::Start(at))
        .map_err(|e| io(&log.path, "seek in the log", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn open(dir: &Path) -> Wal {
        Wal::open(dir, WalOptions::default()).unwrap().0
    }

    /// A snapshot whose file fsync fails has not replaced anything: the
    /// old log still counts, so the WAL goes on taking records. Once the
    /// new snapshot is renamed into place, a failed directory fsync leaves
    /// the old log no longer counting at recovery: the WAL is poisoned,
    /// and refuses records rather than losing them.
    #[test]
    fn only_a_snapshot_failing_after_its_rename_poisons_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path());
        wal.sync.fail_at = Some((wal.sync.files + 1, u64::MAX));
        assert!(matches!(wal.snapshot(b"state"), Err(WalError::Io { .. })));
        assert!(!wal.is_poisoned());
        wal.append(Millis(1), &Command::Tick).unwrap();
        assert!(wal.commit().is_ok());

        wal.sync.fail_at = Some((u64::MAX, wal.sync.dirs + 1));
        assert!(matches!(wal.snapshot(b"state"), Err(WalError::Io { .. })));
        assert!(wal.is_poisoned());
        assert!(matches!(
            wal.append(Millis(2), &Command::Tick),
            Err(WalError::Poisoned)
        ));

        // The snapshot in place, its new log failing: poisoned too.
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path());
        wal.sync.fail_at = Some((wal.sync.files + 2, u64::MAX));
        assert!(matches!(wal.snapshot(b"state"), Err(WalError::Io { .. })));
        assert!(wal.is_poisoned());
    }
}
