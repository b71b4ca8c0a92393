//! The on-disk format: log header, record frames, snapshot header. Pure
//! functions over bytes; the file handling is in the parent module.

use roomstate::{Command, Millis};

use super::error::Corruption;

/// First 8 bytes of a log file.
pub const LOG_MAGIC: [u8; 8] = *b"RSWALLOG";
/// First 8 bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RSWALSNP";
/// The format version written in both headers.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of a log file header.
pub const LOG_HEADER_LEN: usize = 24;
/// Bytes of a snapshot file header.
pub const SNAPSHOT_HEADER_LEN: usize = 36;
/// Bytes of a record frame header (length, CRC32).
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest record payload accepted, in bytes. A batch update of 200
/// queue elements at the longest key and value any profile allows encodes
/// to about 3.4 MB; 16 MiB leaves room and still refuses an absurd length
/// before allocating for it.
pub const MAX_RECORD_LEN: u32 = 16 << 20;

fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// The header of log file `generation`.
pub(crate) fn log_header(generation: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(LOG_HEADER_LEN);
    h.extend_from_slice(&LOG_MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&generation.to_le_bytes());
    let sum = crc(&h);
    h.extend_from_slice(&sum.to_le_bytes());
    h
}

/// Checks a log file's header (the error is always at offset 0).
pub(crate) fn check_log_header(file: &[u8], generation: u64) -> Result<(), Corruption> {
    let short = Corruption::ShortFileHeader {
        len: file.len() as u64,
        needed: LOG_HEADER_LEN as u64,
    };
    let head = file.get(..20).ok_or(short)?;
    let stored = u32_at(file, 20).ok_or(short)?;
    if head.get(..8) != Some(&LOG_MAGIC[..]) {
        return Err(Corruption::BadMagic);
    }
    if stored != crc(head) {
        return Err(Corruption::HeaderChecksum);
    }
    let version = u32_at(head, 8).ok_or(short)?;
    if version != FORMAT_VERSION {
        return Err(Corruption::UnsupportedVersion(version));
    }
    let found = u64_at(head, 12).ok_or(short)?;
    if found != generation {
        return Err(Corruption::GenerationMismatch {
            expected: generation,
            found,
        });
    }
    Ok(())
}

/// Appends one frame holding `(now, command)` to `buf`. On error `buf` is
/// as it was.
pub(crate) fn push_frame(
    buf: &mut Vec<u8>,
    now: Millis,
    command: &Command,
) -> Result<(), super::WalError> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    if let Err(e) = postcard::to_extend(&(now, command), Appender(buf)) {
        buf.truncate(start);
        return Err(super::WalError::Encode(e));
    }
    let payload_len = buf.len() - start - FRAME_HEADER_LEN;
    let len = match u32::try_from(payload_len) {
        Ok(len) if len <= MAX_RECORD_LEN => len,
        _ => {
            buf.truncate(start);
            return Err(super::WalError::RecordTooLarge { len: payload_len });
        }
    };
    let sum = crc(buf.get(start + FRAME_HEADER_LEN..).unwrap_or_default());
    let mut header = [0u8; FRAME_HEADER_LEN];
    for (dst, src) in header
        .iter_mut()
        .zip(len.to_le_bytes().into_iter().chain(sum.to_le_bytes()))
    {
        *dst = src;
    }
    if let Some(h) = buf.get_mut(start..start + FRAME_HEADER_LEN) {
        h.copy_from_slice(&header);
    }
    Ok(())
}

/// Lets postcard encode straight into the batch buffer, which it would
/// otherwise take by value.
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// The frame at `pos`: its payload and the offset after it.
fn read_frame(file: &[u8], pos: usize) -> Result<(&[u8], usize), Corruption> {
    let (payload, stored) = frame_at(file, pos)?;
    let computed = crc(payload);
    if computed != stored {
        return Err(Corruption::Checksum { stored, computed });
    }
    Ok((payload, pos + FRAME_HEADER_LEN + payload.len()))
}

/// The frame at `pos` without its CRC checked: payload and stored CRC.
fn frame_at(file: &[u8], pos: usize) -> Result<(&[u8], u32), Corruption> {
    let available = file.len().saturating_sub(pos);
    if available < FRAME_HEADER_LEN {
        return Err(Corruption::ShortFrameHeader {
            available: available as u64,
        });
    }
    let short = Corruption::ShortFrameHeader { available: 0 };
    let len = u32_at(file, pos).ok_or(short)?;
    let stored = u32_at(file, pos + 4).ok_or(short)?;
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(Corruption::LengthOutOfRange { len });
    }
    let start = pos + FRAME_HEADER_LEN;
    match file.get(start..start + len as usize) {
        Some(payload) => Ok((payload, stored)),
        None => Err(Corruption::ShortPayload {
            len,
            available: (available - FRAME_HEADER_LEN) as u64,
        }),
    }
}

fn decode(payload: &[u8]) -> Option<(Millis, Command)> {
    match postcard::take_from_bytes::<(Millis, Command)>(payload) {
        Ok((record, [])) => Some(record),
        _ => None,
    }
}

/// Where and why a scan stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stop {
    /// Offset of the first bad frame.
    pub offset: usize,
    /// What is wrong with it.
    pub reason: Corruption,
    /// No intact frame starts anywhere after it: what a crash mid-append
    /// leaves (a prefix of the frame, or a zero- or garbage-filled tail).
    pub torn: bool,
}

/// The records of a log file (header already checked).
pub(crate) struct Scan {
    /// Every record before `stop`.
    pub records: Vec<(Millis, Command)>,
    /// The offset after the last good record.
    pub end: usize,
    /// The first bad frame, if any.
    pub stop: Option<Stop>,
}

/// Reads every frame after the header. The first bad frame is a torn tail
/// when no intact frame (length in range, CRC matching, decoding) starts at
/// any byte after its start; otherwise the log is corrupt there. Searching
/// at every byte, rather than after the bad frame's declared length, keeps
/// a flipped bit in a length field from passing for a torn tail and
/// hiding the records after it.
pub(crate) fn scan_log(file: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut pos = LOG_HEADER_LEN;
    while pos < file.len() {
        let reason = match read_frame(file, pos) {
            Ok((payload, next)) => match decode(payload) {
                Some(record) => {
                    records.push(record);
                    pos = next;
                    continue;
                }
                // The CRC matched, so this frame was written whole: not torn.
                None => {
                    return Scan {
                        records,
                        end: pos,
                        stop: Some(Stop {
                            offset: pos,
                            reason: Corruption::Undecodable,
                            torn: false,
                        }),
                    }
                }
            },
            Err(reason) => reason,
        };
        let torn = !intact_frame_after(file, pos + 1);
        return Scan {
            records,
            end: pos,
            stop: Some(Stop {
                offset: pos,
                reason,
                torn,
            }),
        };
    }
    Scan {
        records,
        end: pos,
        stop: None,
    }
}

/// Bytes of payload the search for an intact frame after a bad one may
/// checksum. Crafted record values could put a plausible length at every
/// byte of a torn 16 MiB tail; this bounds the work (about 0.1 s of CRC32)
/// and, once spent, counts the bad frame as corruption, not a torn tail:
/// the start is refused rather than records dropped unasked.
pub(crate) const SEARCH_BUDGET_BYTES: u64 = 1 << 30;

fn intact_frame_after(file: &[u8], from: usize) -> bool {
    intact_frame_within(file, from, SEARCH_BUDGET_BYTES)
}

/// True if an intact frame starts at or after `from`, or if finding out
/// would take more than `budget` bytes of checksumming.
fn intact_frame_within(file: &[u8], from: usize, budget: u64) -> bool {
    let last = file.len().saturating_sub(FRAME_HEADER_LEN + 1);
    let mut spent = 0u64;
    for p in from..=last {
        let Ok((payload, stored)) = frame_at(file, p) else {
            continue;
        };
        spent += payload.len() as u64;
        if spent > budget {
            return true;
        }
        if crc(payload) == stored && decode(payload).is_some() {
            return true;
        }
    }
    false
}

/// The header of snapshot file `generation` for `payload`.
pub(crate) fn snapshot_header(generation: u64, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(SNAPSHOT_HEADER_LEN);
    h.extend_from_slice(&SNAPSHOT_MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&generation.to_le_bytes());
    h.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    h.extend_from_slice(&crc(payload).to_le_bytes());
    let sum = crc(&h);
    h.extend_from_slice(&sum.to_le_bytes());
    h
}

/// The payload of a snapshot file, or the offset and kind of its damage.
pub(crate) fn check_snapshot(file: &[u8], generation: u64) -> Result<&[u8], (u64, Corruption)> {
    let short = (
        0,
        Corruption::ShortFileHeader {
            len: file.len() as u64,
            needed: SNAPSHOT_HEADER_LEN as u64,
        },
    );
    let head = file.get(..32).ok_or(short)?;
    let stored = u32_at(file, 32).ok_or(short)?;
    if head.get(..8) != Some(&SNAPSHOT_MAGIC[..]) {
        return Err((0, Corruption::BadMagic));
    }
    if stored != crc(head) {
        return Err((0, Corruption::HeaderChecksum));
    }
    let version = u32_at(head, 8).ok_or(short)?;
    if version != FORMAT_VERSION {
        return Err((0, Corruption::UnsupportedVersion(version)));
    }
    let found = u64_at(head, 12).ok_or(short)?;
    if found != generation {
        return Err((
            0,
            Corruption::GenerationMismatch {
                expected: generation,
                found,
            },
        ));
    }
    let declared = u64_at(head, 20).ok_or(short)?;
    let payload_crc = u32_at(head, 28).ok_or(short)?;
    let payload = file.get(SNAPSHOT_HEADER_LEN..).unwrap_or_default();
    if declared != payload.len() as u64 {
        return Err((
            0,
            Corruption::SnapshotLength {
                declared,
                actual: payload.len() as u64,
            },
        ));
    }
    let computed = crc(payload);
    if computed != payload_crc {
        return Err((
            SNAPSHOT_HEADER_LEN as u64,
            Corruption::Checksum {
                stored: payload_crc,
                computed,
            },
        ));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use roomstate::Actor;

    fn log_with(records: &[(Millis, Command)]) -> Vec<u8> {
        let mut file = log_header(7);
        for (now, c) in records {
            push_frame(&mut file, *now, c).unwrap();
        }
        file
    }

    fn sample(n: u64) -> Vec<(Millis, Command)> {
        (0..n)
            .map(|i| {
                (
                    Millis(i * 10),
                    Command::Join {
                        room: "r".into(),
                        user: format!("user{i}").into(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn frames_round_trip() {
        let records = sample(5);
        let file = log_with(&records);
        check_log_header(&file, 7).unwrap();
        let scan = scan_log(&file);
        assert_eq!(scan.records, records);
        assert_eq!(scan.end, file.len());
        assert_eq!(scan.stop, None);
    }

    #[test]
    fn frame_layout_is_len_crc_payload() {
        let mut buf = Vec::new();
        let cmd = Command::Tick;
        push_frame(&mut buf, Millis(3), &cmd).unwrap();
        let payload = postcard::to_allocvec(&(Millis(3), &cmd)).unwrap();
        assert_eq!(u32_at(&buf, 0).unwrap() as usize, payload.len());
        assert_eq!(u32_at(&buf, 4).unwrap(), crc32fast::hash(&payload));
        assert_eq!(&buf[8..], &payload[..]);
    }

    #[test]
    fn header_faults_are_named() {
        let good = log_header(3);
        assert_eq!(
            check_log_header(&good[..10], 3),
            Err(Corruption::ShortFileHeader {
                len: 10,
                needed: 24
            })
        );
        assert_eq!(
            check_log_header(&good, 4),
            Err(Corruption::GenerationMismatch {
                expected: 4,
                found: 3
            })
        );
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert_eq!(check_log_header(&bad, 3), Err(Corruption::BadMagic));
        let mut bad = good.clone();
        bad[13] ^= 1;
        assert_eq!(check_log_header(&bad, 3), Err(Corruption::HeaderChecksum));
    }

    #[test]
    fn oversized_record_is_refused_and_buffer_kept() {
        let mut buf = vec![1, 2, 3];
        let big = "x".repeat(MAX_RECORD_LEN as usize + 1);
        let cmd = Command::Write(
            roomstate::Write::new("r", Actor::Admin).op(roomstate::Op::set("k", big.as_str())),
        );
        assert!(matches!(
            push_frame(&mut buf, Millis(0), &cmd),
            Err(super::super::WalError::RecordTooLarge { .. })
        ));
        assert_eq!(buf, vec![1, 2, 3]);
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let mut file = log_with(&sample(3));
        let end = file.len();
        file.extend_from_slice(&[0u8; 100]);
        let scan = scan_log(&file);
        assert_eq!(scan.records.len(), 3);
        let stop = scan.stop.unwrap();
        assert_eq!(stop.offset, end);
        assert!(stop.torn);
        assert_eq!(stop.reason, Corruption::LengthOutOfRange { len: 0 });
    }

    #[test]
    fn the_search_after_a_bad_frame_is_bounded() {
        // A tail where every 4th byte starts a plausible 4 KiB frame (and
        // none is intact): with a budget below the work, the bad frame
        // counts as corruption; with enough, as a torn tail.
        let mut file = log_with(&sample(2));
        let bad = file.len();
        for _ in 0..4096 {
            file.extend_from_slice(&4096u32.to_le_bytes());
        }
        let scan = scan_log(&file);
        assert_eq!(scan.stop.map(|s| (s.offset, s.torn)), Some((bad, true)));
        assert!(!intact_frame_within(&file, bad + 1, 1 << 30));
        assert!(intact_frame_within(&file, bad + 1, 64 * 1024));
    }

    #[test]
    fn a_budget_exactly_spent_is_still_searched() {
        // One plausible frame of 4 payload bytes with a wrong CRC, and no
        // other position with a length that fits: the search spends
        // exactly 4 bytes. A budget of 4 is not exceeded, so the answer is
        // the search's own (nothing intact); a budget of 3 is.
        let mut file = log_with(&[]);
        let from = file.len();
        file.extend_from_slice(&4u32.to_le_bytes());
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        file.extend_from_slice(&[0; 4]);
        assert!(!intact_frame_within(&file, from, 4));
        assert!(intact_frame_within(&file, from, 3));
    }

    /// An intact frame needs both: a matching CRC and a payload that
    /// decodes whole.
    #[test]
    fn an_intact_frame_has_its_crc_and_decodes() {
        let framed = |payload: &[u8], sum: u32| {
            let mut file = log_with(&[]);
            file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            file.extend_from_slice(&sum.to_le_bytes());
            file.extend_from_slice(payload);
            file
        };
        let garbage = [0xFF; 6];
        let undecodable = framed(&garbage, crc(&garbage));
        assert!(!intact_frame_within(&undecodable, LOG_HEADER_LEN, 1 << 30));
        let good = log_with(&sample(1));
        let payload = &good[LOG_HEADER_LEN + FRAME_HEADER_LEN..];
        let bad_sum = framed(payload, crc(payload) ^ 1);
        assert!(!intact_frame_within(&bad_sum, LOG_HEADER_LEN, 1 << 30));
        assert!(intact_frame_within(
            &framed(payload, crc(payload)),
            LOG_HEADER_LEN,
            1 << 30
        ));
    }

    #[test]
    fn a_frame_cut_short_names_the_bytes_it_has() {
        let whole = log_with(&sample(1));
        let payload_len = whole.len() - LOG_HEADER_LEN - FRAME_HEADER_LEN;
        let cut = &whole[..whole.len() - 3];
        let scan = scan_log(cut);
        assert_eq!(
            scan.stop.map(|s| s.reason),
            Some(Corruption::ShortPayload {
                len: payload_len as u32,
                available: (payload_len - 3) as u64,
            })
        );
        // Exactly a header and no payload: the payload is what is short.
        let header_only = &whole[..LOG_HEADER_LEN + FRAME_HEADER_LEN];
        assert_eq!(
            scan_log(header_only).stop.map(|s| s.reason),
            Some(Corruption::ShortPayload {
                len: payload_len as u32,
                available: 0,
            })
        );
        // Less than a header: the header is, by the bytes it has.
        let partial = &whole[..LOG_HEADER_LEN + 3];
        assert_eq!(
            scan_log(partial).stop.map(|s| s.reason),
            Some(Corruption::ShortFrameHeader { available: 3 })
        );
    }

    #[test]
    fn snapshot_header_checks() {
        let payload = b"engine bytes";
        let mut file = snapshot_header(9, payload);
        file.extend_from_slice(payload);
        assert_eq!(check_snapshot(&file, 9).unwrap(), payload);
        let mut bad = file.clone();
        bad[SNAPSHOT_HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(
            check_snapshot(&bad, 9),
            Err((36, Corruption::Checksum { .. }))
        ));
        assert!(matches!(
            check_snapshot(&file[..file.len() - 1], 9),
            Err((0, Corruption::SnapshotLength { .. }))
        ));
    }
}
