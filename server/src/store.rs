//! A shard's durability: its write-ahead log when the server has a data
//! directory, nothing when it keeps state in memory. The shard loop calls
//! only these functions, so the log's API is used in this file alone.

use std::path::Path;
use std::time::Duration;

use roomstate::{Command, Millis};
use roomstate_dialects::{Dialect, VendorId};

use crate::config::{Config, Fsync};
use crate::engine_api;
use crate::wal::{FsyncMode, Wal, WalError, WalOptions};

/// One shard's log, or none.
pub struct Store {
    wal: Option<Wal>,
}

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
            return Ok((Store { wal: None }, fresh()));
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
        Ok((Store { wal: Some(wal) }, dialect))
    }

    /// Logs (buffered) the commands of a batch.
    pub fn append(&mut self, journal: &[(Millis, Command)]) -> Result<(), StoreError> {
        if let Some(wal) = &mut self.wal {
            for (now, command) in journal {
                wal.append(*now, command)?;
            }
        }
        Ok(())
    }

    /// Makes the batch durable; the fsync latency, `None` without a log.
    pub fn commit(&mut self) -> Result<Option<Duration>, StoreError> {
        match &mut self.wal {
            Some(wal) => Ok(Some(wal.commit()?)),
            None => Ok(None),
        }
    }

    /// Writes a snapshot if the log says it is time (or `force`).
    pub fn maybe_snapshot(&mut self, dialect: &Dialect, force: bool) -> Result<bool, StoreError> {
        match &mut self.wal {
            Some(wal) if force || wal.should_snapshot() => {
                wal.snapshot(&engine_api::shard_snapshot(dialect))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

fn restore(vendor: VendorId, bytes: &[u8], dir: &Path) -> Result<Dialect, StoreError> {
    engine_api::restore_shard(vendor, bytes)
        .map_err(|e| StoreError(format!("{}: {e}", dir.display())))
}
