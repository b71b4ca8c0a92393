//! The WAL's errors: what failed, in which file, at which byte.

use std::fmt;
use std::io;
use std::path::PathBuf;

use roomstate::SnapshotError;

/// What is wrong with the bytes of a log or snapshot file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The file is shorter than its fixed header.
    ShortFileHeader {
        /// Bytes in the file.
        len: u64,
        /// Bytes the header needs.
        needed: u64,
    },
    /// The file does not start with the magic bytes of its kind.
    BadMagic,
    /// The header's own checksum does not match.
    HeaderChecksum,
    /// A format version this build does not read.
    UnsupportedVersion(u32),
    /// The generation in the header is not the one in the file name.
    GenerationMismatch {
        /// From the file name.
        expected: u64,
        /// From the header.
        found: u64,
    },
    /// Fewer than the 8 bytes of a frame header are left in the file.
    ShortFrameHeader {
        /// Bytes left.
        available: u64,
    },
    /// A frame's length is zero or over [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN).
    LengthOutOfRange {
        /// The length read.
        len: u32,
    },
    /// A frame's payload runs past the end of the file.
    ShortPayload {
        /// The length the frame declares.
        len: u32,
        /// Bytes left after the frame header.
        available: u64,
    },
    /// A frame's payload does not match its CRC32.
    Checksum {
        /// The CRC32 stored in the frame.
        stored: u32,
        /// The CRC32 of the bytes found.
        computed: u32,
    },
    /// A frame's checksum matches but its payload is not a postcard
    /// `(Millis, Command)` (written by an incompatible build?).
    Undecodable,
    /// A snapshot's declared payload length is not the file's.
    SnapshotLength {
        /// Declared in the header.
        declared: u64,
        /// Bytes after the header.
        actual: u64,
    },
    /// A log file of this generation exists but no snapshot of it does: the
    /// state its records start from is gone.
    MissingSnapshot {
        /// The log's generation.
        generation: u64,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::ShortFileHeader { len, needed } => write!(
                f,
                "the file is {len} bytes long, shorter than its {needed}-byte header"
            ),
            Corruption::BadMagic => f.write_str("the header does not start with the magic bytes"),
            Corruption::HeaderChecksum => f.write_str("the header's CRC32 does not match"),
            Corruption::UnsupportedVersion(v) => {
                write!(f, "format version {v} is not one this build reads")
            }
            Corruption::GenerationMismatch { expected, found } => write!(
                f,
                "the header says generation {found}, the file name {expected}"
            ),
            Corruption::ShortFrameHeader { available } => write!(
                f,
                "only {available} bytes left where an 8-byte frame header starts"
            ),
            Corruption::LengthOutOfRange { len } => write!(
                f,
                "record length {len} is outside 1..={}",
                super::MAX_RECORD_LEN
            ),
            Corruption::ShortPayload { len, available } => write!(
                f,
                "record of {len} bytes but only {available} bytes left in the file"
            ),
            Corruption::Checksum { stored, computed } => write!(
                f,
                "record CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Corruption::Undecodable => {
                f.write_str("record checksum matches but it does not decode as a command")
            }
            Corruption::SnapshotLength { declared, actual } => write!(
                f,
                "snapshot header declares {declared} payload bytes, the file holds {actual}"
            ),
            Corruption::MissingSnapshot { generation } => write!(
                f,
                "log generation {generation} has no snapshot of generation {generation} to start from"
            ),
        }
    }
}

/// An error of the write-ahead log.
#[derive(Debug)]
#[non_exhaustive]
pub enum WalError {
    /// A file system call failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. "fdatasync the log".
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A log file is corrupt before its tail. Opening with
    /// [`WalOptions::repair`](super::WalOptions::repair) truncates it at `offset`.
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Byte offset of the first bad record (0: the file header).
        offset: u64,
        /// What is wrong there.
        reason: Corruption,
    },
    /// A snapshot file is corrupt, or the snapshot a log starts from is
    /// missing. Repair cannot help: the state before the log is lost.
    CorruptSnapshot {
        /// The snapshot file (or the log that has none).
        path: PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong there.
        reason: Corruption,
    },
    /// A command encodes to more than [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN)
    /// bytes; nothing was appended.
    RecordTooLarge {
        /// Its encoded length.
        len: usize,
    },
    /// A command did not encode; nothing was appended.
    Encode(postcard::Error),
    /// An earlier write, fsync or rotation failed, so what is on disk is no
    /// longer known to match what was appended; the WAL refuses further work.
    /// Restart the process to recover from what is on disk.
    Poisoned,
    /// Another process (or another `Wal` here) has the shard directory open.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The recovered snapshot does not restore.
    Restore(SnapshotError),
    /// The recovered snapshot was written under another profile than the one
    /// asked for (another `--vendor` on the same data directory?).
    ProfileMismatch,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io {
                path,
                action,
                source,
            } => write!(f, "{}: cannot {action}: {source}", path.display()),
            WalError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "corrupt write-ahead log {} at byte offset {offset}: {reason}. \
                 Refusing to start rather than lose or invent records. \
                 Restart with --repair to truncate the log at byte {offset}; \
                 every record from there on is lost",
                path.display()
            ),
            WalError::CorruptSnapshot {
                path,
                offset,
                reason,
            } => write!(
                f,
                "corrupt snapshot {} at byte offset {offset}: {reason}. \
                 --repair cannot fix this: restore the shard directory from a backup",
                path.display()
            ),
            WalError::RecordTooLarge { len } => write!(
                f,
                "a record of {len} bytes is over the limit of {} bytes",
                super::MAX_RECORD_LEN
            ),
            WalError::Encode(e) => write!(f, "a command does not encode: {e}"),
            WalError::Poisoned => f.write_str(
                "the write-ahead log failed earlier and refuses further writes; restart to recover",
            ),
            WalError::Locked { path } => write!(
                f,
                "{}: another process has this shard directory open \
                 (is a server already running on this data directory?)",
                path.display()
            ),
            WalError::Restore(e) => write!(f, "the snapshot does not restore: {e}"),
            WalError::ProfileMismatch => f.write_str(
                "the data directory's snapshot was written under another vendor profile",
            ),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { source, .. } => Some(source),
            WalError::Encode(e) => Some(e),
            WalError::Restore(e) => Some(e),
            _ => None,
        }
    }
}

/// [`WalError::Io`] for `path`.
pub(crate) fn io(path: &std::path::Path, action: &'static str, source: io::Error) -> WalError {
    WalError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::error::Error as _;

    use super::*;

    /// The errors that wrap another hand it on as their `source`, so that a
    /// reporter walking the chain reaches the OS error, the encoder's or the
    /// snapshot's; the rest have none.
    #[test]
    fn wrapped_errors_are_their_source() {
        let os = io(
            std::path::Path::new("/shard"),
            "read the log",
            io::Error::other("disk on fire"),
        );
        assert_eq!(os.source().unwrap().to_string(), "disk on fire");
        let encode = WalError::Encode(postcard::Error::SerializeBufferFull);
        assert_eq!(
            encode.source().unwrap().to_string(),
            postcard::Error::SerializeBufferFull.to_string()
        );
        let bad = roomstate::Engine::restore(b"not a snapshot").err().unwrap();
        let restore = WalError::Restore(bad);
        assert_eq!(restore.source().unwrap().to_string(), bad.to_string());
        for none in [
            WalError::Poisoned,
            WalError::ProfileMismatch,
            WalError::RecordTooLarge { len: 1 },
        ] {
            assert!(none.source().is_none(), "{none:?}");
        }
    }
}
