//! Damaged logs: a torn tail is cut, corruption before the tail stops the
//! start with the file and the offset, `repair` truncates only when asked.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a test: a failure is a failed test

mod wal_support;

use std::fs;
use std::path::Path;
use std::sync::Mutex;

use roomstate::{Command, Millis};
use roomstate_server::wal::{Corruption, FsyncMode, Wal, WalError, LOG_HEADER_LEN, MAX_RECORD_LEN};
use wal_support::{copy_dir, frame_offsets, log_file, log_of, opts, repairing};

/// A scratch copy of the shard directory `src` whose log is `log`.
fn with_log(src: &Path, log: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(src, dir.path());
    fs::write(log_file(dir.path()), log).unwrap();
    dir
}

fn expect_corrupt(dir: &Path, offset: u64) -> Corruption {
    let log = log_file(dir);
    match Wal::open(dir, opts(FsyncMode::Never)) {
        Err(WalError::Corrupt {
            path,
            offset: at,
            reason,
        }) => {
            assert_eq!(path, log);
            assert_eq!(at, offset);
            reason
        }
        Err(e) => panic!("expected Corrupt at {offset}, got {e}"),
        Ok((_, r)) => panic!(
            "expected Corrupt at {offset}, opened with {} records, torn {:?}",
            r.records.len(),
            r.torn_tail_cut
        ),
    }
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_of_the_last_record() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 21, 12);
    let full = fs::read(log_file(src.path())).unwrap();
    let last = *frame_offsets(&full).last().unwrap();
    // Every prefix that ends inside the last frame: short header (1..8
    // bytes), short payload, everything but the last byte.
    for cut in last + 1..full.len() {
        let dir = with_log(src.path(), &full[..cut]);
        let (mut wal, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        assert_eq!(recovery.records, cmds[..11], "cut at {cut}");
        assert_eq!(recovery.torn_tail_cut, Some(last as u64), "cut at {cut}");
        assert_eq!(
            fs::metadata(log_file(dir.path())).unwrap().len(),
            last as u64,
            "the file is truncated where the record began"
        );
        // The log goes on from there.
        wal.append(Millis(9), &Command::Tick).unwrap();
        wal.commit().unwrap();
        drop(wal);
        let (_, again) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        assert_eq!(again.records.len(), 12);
        assert_eq!(again.records[11], (Millis(9), Command::Tick));
        assert_eq!(again.torn_tail_cut, None);
    }
    // Cut exactly between records: nothing is torn.
    let dir = with_log(src.path(), &full[..last]);
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds[..11]);
    assert_eq!(recovery.torn_tail_cut, None);
}

#[test]
fn a_bad_checksum_in_the_last_record_is_a_torn_tail() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 22, 6);
    let full = fs::read(log_file(src.path())).unwrap();
    let last = *frame_offsets(&full).last().unwrap();
    // A flipped bit anywhere in the last frame (length, CRC or payload),
    // with nothing after it.
    for at in last..full.len() {
        let mut bytes = full.clone();
        bytes[at] ^= 0x04;
        let dir = with_log(src.path(), &bytes);
        let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        assert_eq!(recovery.records, cmds[..5], "flip at {at}");
        assert_eq!(recovery.torn_tail_cut, Some(last as u64), "flip at {at}");
    }
}

#[test]
fn a_zero_filled_or_garbage_tail_is_cut() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 23, 5);
    let full = fs::read(log_file(src.path())).unwrap();
    for tail in [
        vec![0u8; 4096],
        vec![0xa5; 37],
        b"garbage after a crash".to_vec(),
    ] {
        let mut bytes = full.clone();
        bytes.extend_from_slice(&tail);
        let dir = with_log(src.path(), &bytes);
        let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        assert_eq!(recovery.records, cmds);
        assert_eq!(recovery.torn_tail_cut, Some(full.len() as u64));
    }
}

#[test]
fn a_flipped_bit_in_the_middle_stops_the_start_naming_file_and_offset() {
    let src = tempfile::tempdir().unwrap();
    let _ = log_of(src.path(), 24, 9);
    let full = fs::read(log_file(src.path())).unwrap();
    let frames = frame_offsets(&full);
    let (start, end) = (frames[4], frames[5]);
    // Every byte of a middle record, length and CRC fields included, and
    // a high and a low bit of each.
    for at in start..end {
        for bit in [0x01u8, 0x80] {
            let mut bytes = full.clone();
            bytes[at] ^= bit;
            let dir = with_log(src.path(), &bytes);
            let _ = expect_corrupt(dir.path(), start as u64);
        }
    }
}

#[test]
fn the_corruption_message_names_the_file_the_offset_and_repair() {
    let src = tempfile::tempdir().unwrap();
    let _ = log_of(src.path(), 25, 5);
    let mut bytes = fs::read(log_file(src.path())).unwrap();
    let frames = frame_offsets(&bytes);
    // A bit of the third record's CRC (bytes 4..8 of its frame): corrupt
    // at that record whatever its length (a payload byte at a fixed offset
    // was once past the end of a short record, in the next one's header).
    bytes[frames[2] + 5] ^= 0x10;
    let dir = with_log(src.path(), &bytes);
    let err = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap_err();
    let text = err.to_string();
    let log = log_file(dir.path());
    assert!(text.contains(&log.display().to_string()), "{text}");
    assert!(
        text.contains(&format!("byte offset {}", frames[2])),
        "{text}"
    );
    assert!(text.contains("--repair"), "{text}");
    assert!(text.contains("CRC32"), "{text}");
    // Nothing was changed by the refusal.
    assert_eq!(fs::read(&log).unwrap(), bytes);
}

#[test]
fn repair_truncates_at_the_corrupt_record_only_when_asked() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 26, 10);
    let mut bytes = fs::read(log_file(src.path())).unwrap();
    let frames = frame_offsets(&bytes);
    bytes[frames[6] + 9] ^= 0x01;
    let dir = with_log(src.path(), &bytes);
    let _ = expect_corrupt(dir.path(), frames[6] as u64);

    let (mut wal, recovery) = Wal::open(dir.path(), repairing(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds[..6]);
    assert_eq!(recovery.repaired_at, Some(frames[6] as u64));
    assert_eq!(recovery.torn_tail_cut, None);
    let log = log_file(dir.path());
    assert_eq!(fs::metadata(&log).unwrap().len(), frames[6] as u64);
    wal.append(Millis(5), &Command::Tick).unwrap();
    wal.commit().unwrap();
    drop(wal);

    // Repaired for good: a plain start now works and keeps the new record.
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records.len(), 7);
    assert_eq!(recovery.repaired_at, None);
}

#[test]
fn repair_changes_nothing_in_a_sound_log() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 27, 10);
    let before = fs::read(log_file(src.path())).unwrap();
    let (_, recovery) = Wal::open(src.path(), repairing(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds);
    assert_eq!(recovery.repaired_at, None);
    assert_eq!(fs::read(log_file(src.path())).unwrap(), before);
}

fn with_length(bytes: &mut [u8], at: usize, len: u32) {
    bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

#[test]
fn an_absurd_length_before_the_tail_is_corruption() {
    let src = tempfile::tempdir().unwrap();
    let _ = log_of(src.path(), 28, 6);
    let full = fs::read(log_file(src.path())).unwrap();
    let frames = frame_offsets(&full);
    for len in [u32::MAX, MAX_RECORD_LEN + 1, 0] {
        let mut bytes = full.clone();
        with_length(&mut bytes, frames[2], len);
        let dir = with_log(src.path(), &bytes);
        assert_eq!(
            expect_corrupt(dir.path(), frames[2] as u64),
            Corruption::LengthOutOfRange { len }
        );
    }
    // In range but past the end of the file, with records after it.
    let mut bytes = full.clone();
    with_length(&mut bytes, frames[2], MAX_RECORD_LEN);
    let dir = with_log(src.path(), &bytes);
    assert!(matches!(
        expect_corrupt(dir.path(), frames[2] as u64),
        Corruption::ShortPayload { .. }
    ));
}

#[test]
fn an_absurd_length_at_the_tail_is_cut() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 29, 4);
    let mut bytes = fs::read(log_file(src.path())).unwrap();
    let end = bytes.len();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0x11; 20]);
    let dir = with_log(src.path(), &bytes);
    let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds);
    assert_eq!(recovery.torn_tail_cut, Some(end as u64));
}

#[test]
fn an_empty_or_garbage_header_stops_the_start() {
    let src = tempfile::tempdir().unwrap();
    let _ = log_of(src.path(), 30, 3);
    let full = fs::read(log_file(src.path())).unwrap();
    let mut flipped_magic = full.clone();
    flipped_magic[0] ^= 0x20;
    let mut flipped_generation = full.clone();
    flipped_generation[13] ^= 0x01;
    let mut other_version = full.clone();
    other_version[8] = 2;
    let sum = crc32fast::hash(&other_version[..20]);
    other_version[20..24].copy_from_slice(&sum.to_le_bytes());
    let cases: Vec<(Vec<u8>, Corruption)> = vec![
        (
            Vec::new(),
            Corruption::ShortFileHeader {
                len: 0,
                needed: LOG_HEADER_LEN as u64,
            },
        ),
        (
            full[..LOG_HEADER_LEN - 1].to_vec(),
            Corruption::ShortFileHeader {
                len: LOG_HEADER_LEN as u64 - 1,
                needed: LOG_HEADER_LEN as u64,
            },
        ),
        (
            b"{\"not\": \"a log\"} and more garbage".to_vec(),
            Corruption::BadMagic,
        ),
        (flipped_magic, Corruption::BadMagic),
        (flipped_generation, Corruption::HeaderChecksum),
        (other_version, Corruption::UnsupportedVersion(2)),
    ];
    for (bytes, reason) in cases {
        let dir = with_log(src.path(), &bytes);
        assert_eq!(expect_corrupt(dir.path(), 0), reason);
        let err = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap_err();
        assert!(err.to_string().contains("byte offset 0"), "{err}");

        // --repair starts the log afresh.
        let (mut wal, recovery) = Wal::open(dir.path(), repairing(FsyncMode::Never)).unwrap();
        assert!(recovery.records.is_empty());
        assert_eq!(recovery.repaired_at, Some(0));
        wal.append(Millis(1), &Command::Tick).unwrap();
        wal.commit().unwrap();
        drop(wal);
        let (_, recovery) = Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap();
        assert_eq!(recovery.records, vec![(Millis(1), Command::Tick)]);
    }
}

#[test]
fn a_checksummed_record_that_does_not_decode_is_corruption_even_at_the_tail() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 31, 3);
    let mut bytes = fs::read(log_file(src.path())).unwrap();
    let end = bytes.len();
    let payload = [0xffu8; 5]; // not a postcard (Millis, Command)
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let dir = with_log(src.path(), &bytes);
    assert_eq!(
        expect_corrupt(dir.path(), end as u64),
        Corruption::Undecodable
    );
    let (_, recovery) = Wal::open(dir.path(), repairing(FsyncMode::Never)).unwrap();
    assert_eq!(recovery.records, cmds);
}

/// What each test thread has logged since its last [`logged`] call.
static LOGS: Mutex<Vec<(std::thread::ThreadId, Vec<u8>)>> = Mutex::new(Vec::new());

/// Writes a log line into the calling thread's buffer in [`LOGS`].
struct ThreadBuf;

impl std::io::Write for ThreadBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let me = std::thread::current().id();
        let mut logs = LOGS.lock().unwrap();
        match logs.iter_mut().find(|(t, _)| *t == me) {
            Some((_, buf)) => buf.extend_from_slice(b),
            None => logs.push((me, b.to_vec())),
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures what `tracing` logs on this thread while `f` runs. One global
/// subscriber serves every test thread, each writing into its own buffer:
/// scoped subscribers raced on tracing's callsite interest cache when
/// tests ran in parallel, and a warning went missing now and then.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadBuf)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    let me = std::thread::current().id();
    let take = || {
        let mut logs = LOGS.lock().unwrap();
        logs.iter_mut()
            .find(|(t, _)| *t == me)
            .map(|(_, buf)| std::mem::take(buf))
            .unwrap_or_default()
    };
    take();
    let out = f();
    let text = String::from_utf8(take()).unwrap();
    (out, text)
}

#[test]
fn a_cut_tail_and_fsync_never_are_logged_as_warnings() {
    let src = tempfile::tempdir().unwrap();
    let _ = log_of(src.path(), 32, 4);
    let mut bytes = fs::read(log_file(src.path())).unwrap();
    let end = bytes.len();
    bytes.extend_from_slice(&[7, 0, 0]);
    let dir = with_log(src.path(), &bytes);
    let (_, text) = logged(|| Wal::open(dir.path(), opts(FsyncMode::Never)).unwrap());
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("torn record"), "{text}");
    assert!(text.contains(&format!("offset={end}")), "{text}");
    assert!(text.contains("fsync is off"), "{text}");

    let (_, text) = logged(|| Wal::open(dir.path(), opts(FsyncMode::Always)).unwrap());
    assert!(
        !text.contains("WARN"),
        "a sound log with fsync on warns of nothing: {text}"
    );
}

#[test]
fn random_damage_never_invents_records_and_repair_always_starts() {
    let src = tempfile::tempdir().unwrap();
    let (_, cmds) = log_of(src.path(), 33, 30);
    let full = fs::read(log_file(src.path())).unwrap();
    let frames = frame_offsets(&full);
    let mut r = roomstate_tests::sim::Rng::new(33);
    for round in 0..400 {
        let mut bytes = full.clone();
        // The first byte changed (or the cut), whatever the damage.
        let first = match r.below(5) {
            0 => {
                let at = r.below(full.len() as u64) as usize;
                bytes[at] ^= 1 << r.below(8);
                at
            }
            1 => {
                let at = r.below(full.len() as u64) as usize;
                bytes.truncate(at);
                at
            }
            2 => {
                let n = 1 + r.below(64) as usize;
                bytes.extend((0..n).map(|_| r.below(256) as u8));
                full.len()
            }
            3 => {
                let at = r.below(full.len() as u64) as usize;
                let end = (at + 1 + r.below(40) as usize).min(full.len());
                for b in &mut bytes[at..end] {
                    *b = r.below(256) as u8;
                }
                at
            }
            _ => {
                let at = r.below(full.len() as u64) as usize;
                let end = (at + 1 + r.below(200) as usize).min(full.len());
                bytes[at..end].fill(0);
                at
            }
        };
        // Random bytes may rewrite a byte with its own value: the damage
        // starts at the first byte that differs (or the cut).
        let first = bytes
            .iter()
            .zip(&full)
            .position(|(a, b)| a != b)
            .unwrap_or(bytes.len().min(full.len()))
            .max(first);
        // Records wholly before the damage must survive.
        let intact = frames
            .iter()
            .zip(frames.iter().skip(1).chain([&full.len()]))
            .filter(|(_, end)| **end <= first)
            .count();
        let dir = with_log(src.path(), &bytes);
        match Wal::open(dir.path(), opts(FsyncMode::Never)) {
            Ok((_, recovery)) => {
                let n = recovery.records.len();
                assert!(n >= intact, "round {round}: {n} < {intact} records");
                assert!(recovery.records == cmds[..n], "round {round}: a prefix");
            }
            Err(WalError::Corrupt { offset, .. }) => {
                assert!(
                    offset as usize <= first.max(LOG_HEADER_LEN),
                    "round {round}: corrupt at {offset}, damage at {first}"
                );
            }
            Err(e) => panic!("round {round}: {e}"),
        }
        let (_, repaired) = Wal::open(dir.path(), repairing(FsyncMode::Never)).unwrap();
        let n = repaired.records.len();
        if first >= LOG_HEADER_LEN {
            assert!(n >= intact, "round {round}: repair kept {n} < {intact}");
        }
        assert!(
            repaired.records == cmds[..n],
            "round {round}: repair keeps a prefix"
        );
    }
}
