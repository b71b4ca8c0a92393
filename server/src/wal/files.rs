//! File names, directory listing and atomic file creation in a shard
//! directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{io, WalError};

const LOG_PREFIX: &str = "wal-";
const LOG_SUFFIX: &str = ".log";
const SNAPSHOT_PREFIX: &str = "snap-";
const SNAPSHOT_SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".tmp";
/// The file whose lock says a process has the shard directory open.
pub(crate) const LOCK_NAME: &str = "LOCK";

/// `wal-<generation, 20 digits>.log`: names sort as numbers do.
pub(crate) fn log_name(generation: u64) -> String {
    format!("{LOG_PREFIX}{generation:020}{LOG_SUFFIX}")
}

/// `snap-<generation, 20 digits>.snap`.
pub(crate) fn snapshot_name(generation: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{generation:020}{SNAPSHOT_SUFFIX}")
}

fn generation_of(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a shard directory holds.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Log files by generation.
    pub logs: BTreeMap<u64, PathBuf>,
    /// Snapshot files by generation.
    pub snapshots: BTreeMap<u64, PathBuf>,
    /// Leftovers of interrupted atomic writes.
    pub tmps: Vec<PathBuf>,
}

/// Lists the WAL's files in `dir`; other files are left alone.
pub(crate) fn list(dir: &Path) -> Result<Listing, WalError> {
    let mut listing = Listing::default();
    let entries = fs::read_dir(dir).map_err(|e| io(dir, "list the shard directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, "list the shard directory", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if let Some(g) = generation_of(name, LOG_PREFIX, LOG_SUFFIX) {
            listing.logs.insert(g, path);
        } else if let Some(g) = generation_of(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX) {
            listing.snapshots.insert(g, path);
        } else if name.ends_with(TMP_SUFFIX)
            && (name.starts_with(LOG_PREFIX) || name.starts_with(SNAPSHOT_PREFIX))
        {
            listing.tmps.push(path);
        }
    }
    Ok(listing)
}

/// Takes the shard directory's lock: an exclusive `flock` on `dir/LOCK`,
/// held while the returned file is open and released by the kernel when
/// the process dies (so a restart after kill -9 finds it free). A second
/// process (or a second [`Wal`](super::Wal) in this one) gets
/// [`WalError::Locked`] instead of interleaving its appends with ours.
pub(crate) fn lock(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io(&path, "open the lock file", e))?;
    #[cfg(unix)]
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Err(WalError::Locked { path }),
        Err(e) => return Err(io(&path, "lock the shard directory", e.into())),
    }
    Ok(file)
}

/// Whether the WAL fsyncs whole files and its directory, and how many
/// such fsyncs it made (reported in [`WalStats`](super::WalStats)). Every
/// fsync the WAL makes, other than a commit's `fdatasync`, goes through
/// here, so that the counts show what [`FsyncMode`](super::FsyncMode)
/// made durable.
#[derive(Debug, Default)]
pub(crate) struct Syncer {
    /// Fsync (`FsyncMode::Always`) or not.
    pub on: bool,
    /// Files fsynced.
    pub files: u64,
    /// Directory fsyncs.
    pub dirs: u64,
    /// Unit tests only: fail the fsync that would make `files` (or `dirs`)
    /// this count, as a full disk or a failing device would.
    #[cfg(test)]
    pub fail_at: Option<(u64, u64)>,
}

impl Syncer {
    pub(crate) fn new(on: bool) -> Syncer {
        Syncer {
            on,
            ..Syncer::default()
        }
    }

    /// Fsyncs `file` (at `path`, for the error) when on.
    pub(crate) fn file(
        &mut self,
        file: &File,
        path: &Path,
        action: &'static str,
    ) -> Result<(), WalError> {
        if self.on {
            #[cfg(test)]
            if self
                .fail_at
                .is_some_and(|(files, _)| files == self.files + 1)
            {
                return Err(io(path, action, std::io::Error::other("injected")));
            }
            file.sync_all().map_err(|e| io(path, action, e))?;
            self.files += 1;
        }
        Ok(())
    }

    /// Makes the directory's entries (creations, renames, removals)
    /// durable, when on.
    pub(crate) fn dir(&mut self, dir: &Path) -> Result<(), WalError> {
        if self.on {
            #[cfg(test)]
            if self.fail_at.is_some_and(|(_, dirs)| dirs == self.dirs + 1) {
                let e = std::io::Error::other("injected");
                return Err(io(dir, "fsync the shard directory", e));
            }
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(dir, "fsync the shard directory", e))?;
            self.dirs += 1;
        }
        Ok(())
    }
}

/// A failed [`create_atomic`], and whether the new file is in place
/// (the rename happened, only the directory fsync failed).
#[derive(Debug)]
pub(crate) struct AtomicError {
    pub error: WalError,
    pub in_place: bool,
}

impl From<AtomicError> for WalError {
    fn from(e: AtomicError) -> WalError {
        e.error
    }
}

/// Writes `parts` to `dir/name` atomically: a `.tmp` file is written and
/// (when `sync` is on) fsynced, renamed over `name`, and the directory fsynced.
/// A crash leaves either no `name` or the whole of it, plus perhaps a
/// `.tmp` that [`list`] reports for removal. Returns the file, open for
/// appending, positioned at its end.
pub(crate) fn create_atomic(
    dir: &Path,
    name: &str,
    parts: &[&[u8]],
    sync: &mut Syncer,
) -> Result<File, AtomicError> {
    let before = |error| AtomicError {
        error,
        in_place: false,
    };
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| before(io(&tmp, "create", e)))?;
    for part in parts {
        file.write_all(part)
            .map_err(|e| before(io(&tmp, "write", e)))?;
    }
    sync.file(&file, &tmp, "fsync").map_err(before)?;
    fs::rename(&tmp, &path).map_err(|e| before(io(&path, "rename the new file into place", e)))?;
    sync.dir(dir).map_err(|error| AtomicError {
        error,
        in_place: true,
    })?;
    Ok(file)
}

/// Removes a file that is no longer needed. A failure is only logged: a
/// stale file is harmless and removed again at the next open.
pub(crate) fn remove_stale(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale WAL file");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_parse_back() {
        assert_eq!(log_name(12), "wal-00000000000000000012.log");
        assert_eq!(
            generation_of(&log_name(u64::MAX), LOG_PREFIX, LOG_SUFFIX),
            Some(u64::MAX)
        );
        assert_eq!(
            generation_of(&snapshot_name(5), SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX),
            Some(5)
        );
        assert_eq!(generation_of("wal-12.log", LOG_PREFIX, LOG_SUFFIX), None);
        assert_eq!(
            generation_of("wal-0000000000000000001x.log", LOG_PREFIX, LOG_SUFFIX),
            None
        );
    }
}
