//! Compact entry storage: the attributes of a room, and its queue.
//!
//! Layout, per room and per kind of entry:
//! - `metas`: one fixed-size record per entry (arena offset, owner and
//!   flag, and what the kind adds), in listing (or queue) order. A removal
//!   leaves a tombstone; the order of the live records is the listing
//!   order, so no sort is ever needed.
//! - `arena`: one `String` holding each live entry as the key's length,
//!   the key, the value's length, the value. Lengths are written as chars
//!   (one ASCII byte below 128; see [`len_text`]), so the arena is valid
//!   UTF-8 from end to end and every key and value is a `&str` slice of
//!   it, checked at its two ends only: reads never validate text. An
//!   overwrite whose length and value fit the old ones' bytes writes in
//!   place, with a `memcpy` through [`crate::overwrite`], the crate's one
//!   `unsafe` block (the bytes left over are ASCII
//!   garbage); a longer one moves the entry to the end of the arena. The
//!   bytes no live entry uses are counted as garbage.
//! - `tags`: 16 bits of each record's key hash. Up to [`SCAN_KEYS`] live
//!   entries, a key is found by a scan of the tags (as users are in
//!   [`crate::members`]), and an exiting user's entries by a scan of the
//!   records. Keys are stored once, in the arena; the caller hashes each
//!   key once per operation and passes the hash in.
//! - past [`SCAN_KEYS`], a boxed [`Large`]: a swiss table of positions
//!   hashed by key, and the owner index: every *flagged* entry
//!   (auto-delete attribute, transient element) of a user sits in a
//!   doubly-linked list (links parallel to the records) headed by
//!   `heads[user]`. Link and unlink are O(1) and allocate nothing; an exit
//!   walks exactly what the user owns.
//!
//! Owners are interned user numbers ([`crate::members::Users`]), or
//! [`ADMIN`].
//!
//! Compaction: when tombstones outnumber live entries (and there are at
//! least [`MIN_DEAD_TO_COMPACT`]) the metas and tags are squeezed in
//! place, the index rebuilt and the owner lists relinked (in their
//! buffers); when garbage outweighs the live bytes the arena is squeezed
//! in place, its entries moved down in runs. Both are O(n), paid for by
//! the removals that made the waste, and run only at the end of an
//! operation ([`Store::settle`]), so positions of live entries held during
//! one command stay valid (a removal drops only tombstones at the end of
//! the records, where no live entry is). The removal of the arena's last
//! entry (the newest: a key set and deleted again, a user's key gone when
//! it leaves) makes no garbage: the arena is cut back at once.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// "No entry" in a link, a head or a position.
pub(crate) const NONE: u32 = u32::MAX;
/// The owner number of [`crate::command::Actor::Admin`]. User numbers stay
/// below it (the top two bits of `Meta::who` are the flag and
/// [`PLAIN`]).
pub(crate) const ADMIN: u32 = PLAIN - 1;
/// The flag bit of `Meta::who`.
const FLAG: u32 = 1 << 31;
/// The bit of `Meta::who` that says the entry's key and value are
/// [`json_plain`]; kept by the store whenever it writes their text.
const PLAIN: u32 = 1 << 30;
/// The owner bits of `Meta::who`.
const OWNER: u32 = PLAIN - 1;
/// `Meta::off` of a tombstone.
const DEAD: u32 = u32::MAX;
/// Live entries up to which a key is found by a scan of the records' tags
/// and the store keeps no index: a swiss table of 20 entries costs 176
/// bytes (8.8 a record), the tags 2 a record. Measured (callgrind, a
/// 20-key room): a write's lookup costs about the same either way.
const SCAN_KEYS: usize = 32;
/// Tombstones tolerated before a compaction is considered at all.
const MIN_DEAD_TO_COMPACT: usize = 32;
/// Heap an emptied store keeps for reuse, at most (records, arena, index).
const KEEP_WHEN_EMPTY: usize = 4096;
/// Arena garbage tolerated before a rebuild is considered at all.
const MIN_GARBAGE_TO_COMPACT: usize = 256;
/// Entries of working memory ([`Scratch::pieces`]) kept after a
/// compaction, at most (4 KiB).
const KEEP_PIECES: usize = 512;

/// One entry's fixed-size record (8 bytes, and what `X` adds). `X` is
/// what the kind adds (revision and time for attributes, nothing for
/// queue elements). The lengths live in the arena, in front of the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta<X> {
    /// Arena offset of the entry (key length, key, value length, value).
    /// `DEAD`: tombstone.
    off: u32,
    /// Interned owner (or `ADMIN`) in the low 30 bits; the top bit is the
    /// flag: auto-delete (attributes) or transient (elements); the next
    /// one is [`PLAIN`].
    who: u32,
    pub(crate) x: X,
}

impl<X> Meta<X> {
    fn live(&self) -> bool {
        self.off != DEAD
    }

    /// The interned owner, or `ADMIN`.
    pub(crate) fn owner(&self) -> u32 {
        self.who & OWNER
    }

    /// Key and value hold nothing a JSON string must escape
    /// ([`json_plain`]).
    pub(crate) fn plain(&self) -> bool {
        self.who & PLAIN != 0
    }

    /// Auto-delete (attributes) or transient (elements).
    pub(crate) fn flagged(&self) -> bool {
        self.who & FLAG != 0
    }

    /// Whether the entry is in its owner's list.
    pub(crate) fn indexed(&self) -> bool {
        self.flagged() && self.owner() != ADMIN
    }
}

/// The arena's surrogate-free numbering of chars: `n` below `0xD800` is
/// the char `n`, above it the char `n + 0x800` (past the surrogates).
fn skip_surrogates(n: u32) -> Option<char> {
    char::from_u32(if n < 0xD800 { n } else { n + 0x800 })
}

/// The inverse of [`skip_surrogates`].
fn unskip(c: char) -> u32 {
    let c = u32::from(c);
    if c < 0xD800 {
        c
    } else {
        c - 0x800
    }
}

/// Lengths below this are one char (of 1 to 3 bytes); longer ones two.
const ONE_CHAR: u32 = 0xF800;

/// A length as the arena writes it: chars, so that the arena stays one
/// valid UTF-8 string and every key and value in it is a `&str` slice
/// with no check but its two char boundaries. A length below `0x80` is
/// one ASCII byte (the common case); below [`ONE_CHAR`] one char of the
/// surrogate-free numbering; above, a char `0x10000 + (n >> 16)` (4 bytes,
/// which no one-char length uses) and then the low 16 bits as one char.
/// Returns the encoded text in `buf`.
fn len_text(buf: &mut [u8; 8], n: usize) -> &str {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let (first, second) = if n < ONE_CHAR {
        (skip_surrogates(n), None)
    } else {
        (
            char::from_u32(0x1_0000 + (n >> 16)),
            skip_surrogates(n & 0xFFFF),
        )
    };
    let Some(first) = first else {
        return "";
    };
    // A second char follows only a first past `0xFFFF`, four bytes long,
    // so the second is written right after it.
    let (a, b) = buf.split_at_mut(4);
    let a = first.encode_utf8(a).len();
    let b = second.map_or(0, |c| c.encode_utf8(b).len());
    core::str::from_utf8(buf.get(..a + b).unwrap_or_default()).unwrap_or_default()
}

/// Bytes `n` takes as a length in the arena ([`len_text`]).
fn len_width(n: usize) -> usize {
    let char_width = |n: u32| match skip_surrogates(n) {
        Some(c) => c.len_utf8(),
        None => 4,
    };
    match u32::try_from(n) {
        Ok(0..=0x7f) => 1,
        Ok(n) if n < ONE_CHAR => char_width(n),
        Ok(n) => 4 + char_width(n & 0xFFFF),
        Err(_) => 4 + 4,
    }
}

/// Appends `n` as a length.
#[inline]
fn push_len(out: &mut String, n: usize) {
    match u8::try_from(n) {
        Ok(b @ 0..=0x7f) => out.push(char::from(b)),
        _ => out.push_str(len_text(&mut [0; 8], n)),
    }
}

/// The length at `at`: its value and width.
#[inline]
fn read_len(arena: &str, at: usize) -> Option<(usize, usize)> {
    // Keys and most values are shorter than 128 bytes: one ASCII byte.
    match *arena.as_bytes().get(at)? {
        b @ 0..=0x7f => Some((usize::from(b), 1)),
        _ => read_long_len(arena, at),
    }
}

#[cold]
fn read_long_len(arena: &str, at: usize) -> Option<(usize, usize)> {
    let mut chars = arena.get(at..)?.chars();
    let first = chars.next()?;
    if u32::from(first) < 0x1_0000 {
        return Some((unskip(first) as usize, first.len_utf8()));
    }
    let second = chars.next()?;
    let high = u32::from(first) - 0x1_0000;
    let n = (high << 16) | unskip(second);
    Some((n as usize, first.len_utf8() + second.len_utf8()))
}

/// Where the parts of the entry at arena offset `off` lie.
struct Span {
    key: core::ops::Range<usize>,
    /// Where the value's length starts; the value follows it.
    value_len_at: usize,
    value: core::ops::Range<usize>,
}

impl Span {
    /// The entry's arena bytes, lengths included.
    fn size(&self, off: u32) -> usize {
        self.value.end - off as usize
    }
}

/// The key's range of the entry at `off`.
#[inline]
fn key_range(arena: &str, off: u32) -> Option<core::ops::Range<usize>> {
    let (len, width) = read_len(arena, off as usize)?;
    let start = off as usize + width;
    Some(start..start + len)
}

#[inline]
fn span(arena: &str, off: u32) -> Option<Span> {
    let key = key_range(arena, off)?;
    let (len, width) = read_len(arena, key.end)?;
    let start = key.end + width;
    Some(Span {
        value_len_at: key.end,
        value: start..start + len,
        key,
    })
}

/// ASCII filler for the arena bytes an in-place write leaves over.
const FILL: &str = "                                                                ";

/// Overwrites `range` of the arena with `with`, of the same length; a
/// no-op unless both ends are char boundaries (callers make sure). A
/// `memcpy`, through [`crate::overwrite`]'s `unsafe` block.
#[inline]
fn replace(arena: &mut String, range: core::ops::Range<usize>, with: &str) {
    crate::overwrite::overwrite(arena, range, with);
}

/// Writes `parts` one after the other from the start of `range` (a whole
/// number of chars), leaving the rest of it ASCII: where the old text was
/// not ASCII, the range is first blanked, so that every byte of it is a
/// char boundary.
fn write_over(arena: &mut String, range: core::ops::Range<usize>, parts: [&str; 2]) {
    if !arena.get(range.clone()).is_some_and(str::is_ascii) {
        let mut at = range.start;
        while at < range.end {
            let mut end = (at + FILL.len()).min(range.end);
            while end > at && !arena.is_char_boundary(end) {
                end -= 1;
            }
            if end == at {
                return;
            }
            replace(arena, at..end, FILL.get(..end - at).unwrap_or_default());
            at = end;
        }
    }
    let mut at = range.start;
    for part in parts {
        replace(arena, at..at + part.len(), part);
        at += part.len();
    }
}

/// Appends a copy of the arena's own text at `range` (whole chars), in
/// chunks through a small stack buffer (`String::extend_from_within` is
/// newer than the crate's minimum Rust).
fn push_within(arena: &mut String, range: core::ops::Range<usize>) {
    const CHUNK: usize = 32;
    let mut at = range.start;
    while at < range.end {
        let mut end = (at + CHUNK).min(range.end);
        while end > at && !arena.is_char_boundary(end) {
            end -= 1;
        }
        let mut chunk = heapless::String::<CHUNK>::new();
        match arena.get(at..end) {
            Some(src) if end > at && chunk.push_str(src).is_ok() => arena.push_str(&chunk),
            _ => return,
        }
        at = end;
    }
}

/// A key's tag: the top bits of its hash (the swiss table's control bytes
/// use the top 7; any 16 bits do, for a scan).
fn tag(hash: u64) -> u16 {
    (hash >> 48) as u16
}

/// The store's hash of a key. Every store in a room hashes with the room's
/// hasher, so a key hashed once serves every lookup of one operation.
pub(crate) fn hash_key(hasher: &DefaultHashBuilder, key: &str) -> u64 {
    hasher.hash_one(key.as_bytes())
}

/// The hash of the key at `pos` (0 for a tombstone or a bad position).
fn rehash<X>(hasher: &DefaultHashBuilder, metas: &[Meta<X>], arena: &str, pos: u32) -> u64 {
    hash_key(hasher, key_of(metas, arena, pos).unwrap_or_default())
}

/// What a store past [`SCAN_KEYS`] entries adds: at that size a scan of
/// the records (for a key, or for what an exiting user owns) would cost
/// more than these cost to keep.
struct Large {
    /// Positions of the live entries, hashed by key.
    index: HashTable<u32>,
    /// The owner lists: every *flagged* entry of a user (auto-delete
    /// attribute, transient element) sits in a doubly-linked list headed
    /// by `heads[user]`; `links[pos]` is its `[prev, next]` (parallel to
    /// the records). Link and unlink are O(1); an exit walks exactly what
    /// the user owns.
    links: Vec<[u32; 2]>,
    /// List heads by interned user number; `NONE` past the last owner. A
    /// boxed slice: its length is its capacity, grown by `link` alone.
    heads: Box<[u32]>,
}

pub(crate) struct Store<X> {
    metas: Vec<Meta<X>>,
    /// The entries' text (see [`len_text`]): one UTF-8 string, so that a
    /// key or a value is a slice of it, checked only at its two ends.
    arena: String,
    /// Each record's key tag ([`tag`]), by position; its length is the
    /// records' capacity (grown with them, a boxed slice: 8 bytes less
    /// than a `Vec`). Up to [`SCAN_KEYS`] live entries a key is found by
    /// a scan of the tags; the index is built past it.
    tags: Box<[u16]>,
    /// The key index and the owner lists, `Some` once the store has held
    /// more than [`SCAN_KEYS`] entries (until it is emptied). Boxed: most
    /// stores never have one.
    large: Option<Box<Large>>,
    /// No live meta before this position (the queue's head).
    first: u32,
    /// Arena bytes no live entry uses.
    garbage: u32,
    /// Live entries.
    live: u32,
    /// The attributes' time base, in seconds (`stamp.rs`); the queue's
    /// store does not use it. It fills what was padding.
    pub(crate) stamp_base: u32,
}

impl<X: Copy> Default for Store<X> {
    fn default() -> Self {
        Store {
            metas: Vec::new(),
            arena: String::new(),
            tags: Box::default(),
            large: None,
            first: 0,
            garbage: 0,
            live: 0,
            stamp_base: 0,
        }
    }
}

/// Below this many bytes the arena doubles; above, it grows by an eighth.
const DOUBLE_BELOW: usize = 512;
/// Below this many records the records (and their tags and links)
/// double; above, they grow by an eighth. In records, not bytes, so that
/// the growth of a store does not depend on the record's size (this is
/// the policy of the 32-byte records of round 2, 512 bytes).
const DOUBLE_BELOW_RECORDS: usize = 16;

/// Grows `v` to hold `extra` more: by doubling while small (few reallocs
/// while a room fills), then by an eighth of its length at least, which
/// is still geometric (amortized O(1): each element is copied about eight
/// times over the vector's life, and never less than four more of
/// `extra`) but leaves far less slack than doubling,
/// which matters more here, in many rooms of moderate size.
fn grow<T>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() < extra {
        v.reserve_exact(growth(v.len() < DOUBLE_BELOW_RECORDS, v.len(), extra));
    }
}

/// Bit `j` set iff `chunk[j]` is `tag` (a loop without an exit, which the
/// compiler vectorizes).
#[inline]
fn matches(chunk: &[u16], tag: u16) -> u32 {
    chunk
        .iter()
        .enumerate()
        .fold(0u32, |m, (j, &t)| m | (u32::from(t == tag) << j))
}

/// How much [`grow`] adds to a buffer of `len` that needs `extra` more,
/// doubling if it is `small`.
fn growth(small: bool, len: usize, extra: usize) -> usize {
    let step = if small { len } else { len / 8 };
    // Room for four more of the same at least, so that a vector just
    // past the doubling range does not grow one record at a time.
    step.max(extra.saturating_mul(4))
}

/// How much the arena of `len` bytes grows by when an entry of `need`
/// bytes does not fit: doubling while small, then an eighth, as [`growth`],
/// and room for four entries of the same size at least; but that floor
/// reserves at most [`ARENA_SPARE`] bytes beyond the entry itself, so
/// that one large value (Agora RTM allows 16 KiB) reserves about its own
/// size, not four times it.
fn arena_growth(len: usize, need: usize) -> usize {
    let step = if len < DOUBLE_BELOW { len } else { len / 8 };
    step.max(need.saturating_mul(4).min(need.saturating_add(ARENA_SPARE)))
}

/// The most [`arena_growth`]'s floor adds beyond the entry that needs it.
const ARENA_SPARE: usize = 1024;

/// Working memory that the engine keeps and lends to each command: an
/// exit's owned positions, a compaction's entries.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) positions: Vec<u32>,
    pub(crate) pieces: Vec<u64>,
}

/// The size of the entry at `at` of an arena given as bytes (a whole
/// `String`'s), lengths included; 0 unless it lies in `bytes` from one
/// char boundary to another, so that it is whole UTF-8 text.
fn entry_size(bytes: &[u8], at: usize) -> usize {
    let boundary = |i: usize| {
        bytes
            .get(i)
            .map_or(i == bytes.len(), |&b| (b as i8) >= -0x40)
    };
    let len_at = |i: usize| match bytes.get(i) {
        Some(&b) if b < 0x80 => Some((usize::from(b), 1)),
        // A long length: its chars decoded from the (at most 8) bytes
        // that can hold them, cut to whole chars.
        Some(_) if boundary(i) => {
            let window = bytes.get(i..bytes.len().min(i + 8))?;
            let text = match core::str::from_utf8(window) {
                Ok(t) => t,
                Err(e) => core::str::from_utf8(window.get(..e.valid_up_to())?).ok()?,
            };
            read_long_len(text, 0)
        }
        _ => None,
    };
    let Some((key, width)) = len_at(at) else {
        return 0;
    };
    let value_at = at + width + key;
    let Some((value, width)) = len_at(value_at) else {
        return 0;
    };
    let end = value_at + width + value;
    if end <= bytes.len() && boundary(at) && boundary(end) {
        end - at
    } else {
        0
    }
}

/// Copies `bytes[from]` down to `to` (`to <= from.start`), unless it is
/// already there or does not lie in `bytes`.
fn move_block(bytes: &mut [u8], from: core::ops::Range<usize>, to: usize) {
    if from.start != to && from.start <= from.end && from.end <= bytes.len() {
        bytes.copy_within(from, to);
    }
}

impl<X: Copy> Store<X> {
    pub(crate) fn len(&self) -> usize {
        self.live as usize
    }

    /// Position of `key`, whose hash is `hash`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &str) -> Option<u32> {
        let (metas, arena) = (&self.metas, &self.arena);
        if let Some(large) = self.large.as_deref() {
            return large
                .index
                .find(hash, |&i| key_bytes_are(metas, arena, i, key))
                .copied();
        }
        // The scan: eight tags at a time into a bit mask (a loop without
        // an exit, which the compiler vectorizes), then a key comparison
        // for each match (nearly always the one sought).
        let tag = tag(hash);
        let first = self.first as usize;
        let tags = self.tags.get(first..metas.len()).unwrap_or_default();
        let mut base = first;
        for chunk in tags.chunks(8) {
            let mut mask = matches(chunk, tag);
            while mask != 0 {
                let at = base + mask.trailing_zeros() as usize;
                if key_bytes_are(metas, arena, at as u32, key) {
                    return u32::try_from(at).ok();
                }
                mask &= mask - 1;
            }
            base += 8;
        }
        None
    }

    /// Prefetch hint: the tags and the records (their first lines).
    pub(crate) fn warm_index(&self) {
        use crate::prefetch::{span, LINE};
        span(self.tags.as_ptr(), self.tags.len() * 2, 2 * LINE);
        let metas = self.metas.len() * core::mem::size_of::<Meta<X>>();
        span(self.metas.as_ptr(), metas, 8 * LINE);
    }

    /// The arena's addresses, for the hints' tests.
    #[cfg(test)]
    pub(crate) fn arena_range(&self) -> core::ops::Range<usize> {
        let start = self.arena.as_ptr().addr();
        start..start + self.arena.len()
    }

    /// Prefetch hint: the arena's text, its first `most` bytes.
    pub(crate) fn warm_text(&self, most: usize) {
        crate::prefetch::span(self.arena.as_ptr(), self.arena.len(), most);
    }

    /// Prefetch hint: the text of the entry whose tag first matches
    /// `hash` (no key comparison, so possibly another entry's). Reads only
    /// the tags, the records and the index, which [`Store::warm_index`]
    /// has started loading.
    pub(crate) fn warm_entry(&self, hash: u64) {
        let pos = match self.large.as_deref() {
            Some(large) => large.index.find(hash, |_| true).copied(),
            None => {
                let tag = tag(hash);
                let first = self.first as usize;
                let tags = self.tags.get(first..self.metas.len()).unwrap_or_default();
                tags.chunks(8)
                    .enumerate()
                    .map(|(c, chunk)| (c, matches(chunk, tag)))
                    .find(|&(_, mask)| mask != 0)
                    .and_then(|(c, mask)| {
                        u32::try_from(first + c * 8 + mask.trailing_zeros() as usize).ok()
                    })
            }
        };
        if let Some(m) = pos.and_then(|p| self.meta(p)) {
            let at = self.arena.as_ptr().wrapping_add(m.off as usize);
            crate::prefetch::span(at, 2 * crate::prefetch::LINE, 2 * crate::prefetch::LINE);
        }
    }

    pub(crate) fn meta(&self, pos: u32) -> Option<&Meta<X>> {
        self.metas.get(pos as usize).filter(|m| m.live())
    }

    pub(crate) fn meta_mut(&mut self, pos: u32) -> Option<&mut Meta<X>> {
        self.metas.get_mut(pos as usize).filter(|m| m.live())
    }

    /// Whether the record at `pos` holds `key` (a byte comparison).
    pub(crate) fn key_is(&self, pos: u32, key: &str) -> bool {
        key_bytes_are(&self.metas, &self.arena, pos, key)
    }

    /// The key at `pos` ("" for a tombstone or a bad position).
    pub(crate) fn key(&self, pos: u32) -> &str {
        let range = self.meta(pos).and_then(|m| key_range(&self.arena, m.off));
        range.and_then(|r| self.arena.get(r)).unwrap_or_default()
    }

    /// The value at `pos` ("" for a tombstone or a bad position).
    pub(crate) fn value(&self, pos: u32) -> &str {
        self.span(pos)
            .and_then(|s| self.arena.get(s.value))
            .unwrap_or_default()
    }

    /// The record at `pos` and its value's length in bytes.
    #[inline]
    pub(crate) fn entry(&self, pos: u32) -> Option<(&Meta<X>, u32)> {
        let m = self.meta(pos)?;
        let s = span(&self.arena, m.off)?;
        Some((m, u32::try_from(s.value.len()).unwrap_or(u32::MAX)))
    }

    /// The value's length in bytes at `pos` (0 for a tombstone).
    pub(crate) fn value_len(&self, pos: u32) -> u32 {
        self.span(pos)
            .map_or(0, |s| u32::try_from(s.value.len()).unwrap_or(u32::MAX))
    }

    fn span(&self, pos: u32) -> Option<Span> {
        span(&self.arena, self.meta(pos)?.off)
    }

    /// The range of positions that may hold a live record (dead ones
    /// included): for a loop that changes the store as it goes, where
    /// [`Store::positions`] would borrow it.
    pub(crate) fn slots(&self) -> core::ops::Range<u32> {
        self.first..u32::try_from(self.metas.len()).unwrap_or(NONE)
    }

    /// Live positions in order, from the first live one.
    pub(crate) fn positions(&self) -> impl Iterator<Item = u32> + '_ {
        let first = self.first as usize;
        self.metas
            .get(first..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, m)| m.live())
            .map(move |(i, _)| u32::try_from(first + i).unwrap_or(NONE))
    }

    /// Live entries in order, from the first live one: the record, the
    /// key and the value (one pass over the records, one decode of each
    /// entry; the read view's path).
    pub(crate) fn entries(&self) -> Entries<'_, X> {
        Entries {
            metas: self
                .metas
                .get(self.first as usize..)
                .unwrap_or_default()
                .iter(),
            arena: self.arena.as_str(),
        }
    }

    /// The first live position (the queue's head), moving the cursor past
    /// tombstones.
    pub(crate) fn first(&mut self) -> Option<u32> {
        while self
            .metas
            .get(self.first as usize)
            .is_some_and(|m| !m.live())
        {
            self.first += 1;
        }
        self.meta(self.first).map(|_| self.first)
    }

    /// Appends a new entry (the key must be absent: callers look up
    /// first). Returns its position, or `None` if the store is full (more
    /// than `u32::MAX` bytes or entries: beyond every profile's limits).
    #[allow(clippy::too_many_arguments)] // the entry's parts, then the hasher
    pub(crate) fn push(
        &mut self,
        hash: u64,
        key: &str,
        value: &str,
        owner: u32,
        flagged: bool,
        x: X,
        hasher: &DefaultHashBuilder,
    ) -> Option<u32> {
        let pos = u32::try_from(self.metas.len())
            .ok()
            .filter(|&p| p != NONE)?;
        let off = self.append_bytes(key, value)?;
        grow(&mut self.metas, 1);
        if self.tags.len() < self.metas.capacity() {
            self.grow_tags();
        }
        if let Some(t) = self.tags.get_mut(pos as usize) {
            *t = tag(hash);
        }
        let plain = json_plain(key) && json_plain(value);
        self.metas.push(Meta {
            off,
            who: who(owner, flagged, plain),
            x,
        });
        self.live += 1;
        let (metas, arena) = (&self.metas, &self.arena);
        match self.large.as_deref_mut() {
            Some(large) => {
                grow(&mut large.links, 1);
                large.links.push([NONE; 2]);
                let index = &mut large.index;
                index.insert_unique(hash, pos, |&i| rehash(hasher, metas, arena, i));
                if flagged && owner != ADMIN {
                    large.link(pos, owner);
                }
            }
            None if self.live as usize > SCAN_KEYS => self.build_large(hasher),
            None => {}
        }
        Some(pos)
    }

    /// Makes the tags as long as the records' capacity.
    #[cold]
    fn grow_tags(&mut self) {
        let mut tags = alloc::vec![0; self.metas.capacity()].into_boxed_slice();
        if let Some(old) = tags.get_mut(..self.tags.len()) {
            old.copy_from_slice(&self.tags);
        }
        self.tags = tags;
    }

    /// Builds the index and the owner lists (the store has passed
    /// [`SCAN_KEYS`]).
    #[cold]
    fn build_large(&mut self, hasher: &DefaultHashBuilder) {
        self.large = Some(Box::new(Large {
            index: HashTable::with_capacity(self.live as usize),
            links: Vec::with_capacity(self.metas.capacity()),
            heads: Box::default(),
        }));
        self.rebuild_large(hasher);
    }

    /// Refills the index and the owner lists from the records, keeping
    /// their buffers.
    fn rebuild_large(&mut self, hasher: &DefaultHashBuilder) {
        let Some(large) = self.large.as_deref_mut() else {
            return;
        };
        let (metas, arena) = (&self.metas, &self.arena);
        large.index.clear();
        large.links.clear();
        large.links.resize(metas.len(), [NONE; 2]);
        large.heads.iter_mut().for_each(|h| *h = NONE);
        // Relink back to front, so each list ends up in position order.
        for (pos, m) in metas.iter().enumerate().rev() {
            let Ok(pos) = u32::try_from(pos) else {
                continue;
            };
            if m.live() && m.indexed() {
                large.link(pos, m.owner());
            }
        }
        for pos in 0..metas.len() {
            let Ok(pos) = u32::try_from(pos) else {
                continue;
            };
            if metas.get(pos as usize).is_some_and(Meta::live) {
                let hash = rehash(hasher, metas, arena, pos);
                large
                    .index
                    .insert_unique(hash, pos, |&i| rehash(hasher, metas, arena, i));
            }
        }
    }

    /// Writes an entry of `key` and `value` at the end of the arena;
    /// returns its offset.
    fn append_bytes(&mut self, key: &str, value: &str) -> Option<u32> {
        let off = self.reserve_entry(key.len(), value.len())?;
        push_len(&mut self.arena, key.len());
        self.arena.push_str(key);
        push_len(&mut self.arena, value.len());
        self.arena.push_str(value);
        Some(off)
    }

    /// Makes room at the end of the arena for an entry of a key and a
    /// value of these lengths; returns its offset, or `None` if the arena
    /// would pass `u32::MAX` bytes.
    fn reserve_entry(&mut self, key_len: usize, value_len: usize) -> Option<u32> {
        let need = len_width(key_len)
            .checked_add(key_len)?
            .checked_add(len_width(value_len))?
            .checked_add(value_len)?;
        let end = self.arena.len().checked_add(need)?;
        u32::try_from(end).ok().filter(|&e| e != DEAD)?;
        let off = u32::try_from(self.arena.len()).ok()?;
        if self.arena.capacity() - self.arena.len() < need {
            let len = self.arena.len();
            self.arena.reserve_exact(arena_growth(len, need));
        }
        Some(off)
    }

    /// Replaces the value at `pos`: in place when it fits the old value's
    /// bytes, else the record moves to the end of the arena. Returns the
    /// old value's length (0 for a tombstone).
    pub(crate) fn set_value(&mut self, pos: u32, value: &str) -> u32 {
        let Some((off, was_plain, s)) = self
            .meta(pos)
            .and_then(|m| Some((m.off, m.plain(), span(&self.arena, m.off)?)))
        else {
            return 0;
        };
        let old = u32::try_from(s.value.len()).unwrap_or(u32::MAX);
        // A plain entry's key is plain: only a key with escapes, or an
        // entry whose value had them, is scanned again.
        let plain = json_plain(value)
            && (was_plain || self.arena.get(s.key.clone()).is_some_and(json_plain));
        if value.len() == s.value.len() {
            // The common overwrite: same length, only the value's bytes
            // change (the old value's ends are char boundaries).
            replace(&mut self.arena, s.value, value);
            self.set_plain(pos, plain);
            return old;
        }
        let region = s.value_len_at..s.value.end;
        let size = len_width(value.len()) + value.len();
        if size <= region.len() {
            // In place: the new length and value from the same start; the
            // bytes left over, ASCII, are garbage until a compaction.
            let mut buf = [0; 8];
            let len = len_text(&mut buf, value.len());
            write_over(&mut self.arena, region.clone(), [len, value]);
            self.garbage += (region.len() - size) as u32;
            self.set_plain(pos, plain);
            return old;
        }
        // The key moves with the value: copied within the arena.
        let key_len = s.key.len();
        let Some(new_off) = self.reserve_entry(key_len, value.len()) else {
            return old;
        };
        push_len(&mut self.arena, key_len);
        push_within(&mut self.arena, s.key.clone());
        push_len(&mut self.arena, value.len());
        self.arena.push_str(value);
        self.garbage += s.size(off) as u32;
        if let Some(m) = self.meta_mut(pos) {
            m.off = new_off;
        }
        self.set_plain(pos, plain);
        old
    }

    fn set_plain(&mut self, pos: u32, plain: bool) {
        if let Some(m) = self.meta_mut(pos) {
            m.who = who(m.owner(), m.flagged(), plain);
        }
    }

    /// Sets the owner and flag at `pos`, moving it between owner lists.
    #[inline]
    pub(crate) fn set_owner(&mut self, pos: u32, owner: u32, flagged: bool) {
        let Some(m) = self.meta(pos) else {
            return;
        };
        if m.who == who(owner, flagged, m.plain()) {
            return;
        }
        let (was_listed, old_owner) = (m.indexed(), m.owner());
        if let Some(m) = self.meta_mut(pos) {
            m.who = who(owner, flagged, m.plain());
        }
        if let Some(large) = self.large.as_deref_mut() {
            if was_listed {
                large.unlink(pos, old_owner);
            }
            if flagged && owner != ADMIN {
                large.link(pos, owner);
            }
        }
    }

    /// Removes the entry at `pos`, hashing its key; see [`Store::remove`].
    pub(crate) fn remove_at(
        &mut self,
        pos: u32,
        hasher: &DefaultHashBuilder,
    ) -> Option<(Meta<X>, u32)> {
        // Only the index needs the hash.
        let hash = match self.large {
            Some(_) => rehash(hasher, &self.metas, &self.arena, pos),
            None => 0,
        };
        self.remove(hash, pos)
    }

    /// Removes the entry at `pos` (whose key hashes to `hash`), leaving a
    /// tombstone. Returns its meta and its value's length.
    pub(crate) fn remove(&mut self, hash: u64, pos: u32) -> Option<(Meta<X>, u32)> {
        let m = *self.meta(pos)?;
        let (size, value_len) = span(&self.arena, m.off).map_or((0, 0), |s| {
            let len = u32::try_from(s.value.len()).unwrap_or(u32::MAX);
            (s.size(m.off), len)
        });
        if let Some(large) = self.large.as_deref_mut() {
            if let Ok(entry) = large.index.find_entry(hash, |&i| i == pos) {
                entry.remove();
            }
            if m.indexed() {
                large.unlink(pos, m.owner());
            }
        }
        self.live -= 1;
        if let Some(slot) = self.metas.get_mut(pos as usize) {
            slot.off = DEAD;
        }
        if self.live > 0 && pos as usize + 1 == self.metas.len() {
            // The newest record: its tombstone, and any just before it, are
            // dropped now, while their line is at hand, so that a store
            // with live entries always ends in a live one and `settle`
            // need not read its last record (a cache miss per cold exit).
            // The last entry out is left to `settle`, which empties the
            // store.
            self.trim_dead_tail();
        }
        let start = m.off as usize;
        if start + size == self.arena.len() && self.arena.is_char_boundary(start) {
            // The arena's last entry (the one written most recently, as
            // when a user sets a key and then leaves): its bytes are given
            // back at once instead of waiting for a compaction.
            self.arena.truncate(start);
        } else {
            self.garbage += size as u32;
        }
        Some((m, value_len))
    }

    /// Positions of `user`'s flagged entries, in order, into `out`
    /// (cleared first): its owner list, or a scan of the records in a
    /// store without lists. `most` is what the user owns at most (its
    /// record's count of entries): a scan stops once it has found that
    /// many, and none is made for a user who owns nothing, so an exit
    /// reads the records only up to its last key.
    pub(crate) fn owned(&self, user: u32, most: u32, out: &mut Vec<u32>) {
        out.clear();
        if most == 0 {
            return;
        }
        let Some(large) = self.large.as_deref() else {
            let first = self.first as usize;
            let metas = self.metas.get(first..).unwrap_or_default();
            for (i, m) in metas.iter().enumerate() {
                if m.live() && m.indexed() && m.owner() == user {
                    out.push(u32::try_from(first + i).unwrap_or(NONE));
                    if out.len() >= most as usize {
                        break;
                    }
                }
            }
            return;
        };
        let mut at = large.heads.get(user as usize).copied().unwrap_or(NONE);
        while self.meta(at).is_some() {
            out.push(at);
            at = large.links.get(at as usize).map_or(NONE, |l| l[1]);
        }
        out.sort_unstable();
    }

    /// Compacts what the removals of the operation just ended have wasted,
    /// when the waste outweighs what is live.
    /// `scratch` is reused working memory.
    #[inline]
    pub(crate) fn settle(&mut self, hasher: &DefaultHashBuilder, scratch: &mut Scratch) {
        let live = self.len();
        if live == 0 {
            if !self.metas.is_empty() {
                self.empty();
            }
            return;
        }
        // No dead tail to trim: `remove` drops it as it forms.
        let dead = self.metas.len() - live;
        if dead >= MIN_DEAD_TO_COMPACT && dead > live {
            self.compact_metas(hasher);
        }
        let garbage = self.garbage as usize;
        if garbage >= MIN_GARBAGE_TO_COMPACT && garbage > self.arena.len() - garbage {
            self.compact_bytes(&mut scratch.pieces);
        }
    }

    /// Drops the tombstones after the last live record (the newest
    /// records, removed): no live record moves, so no compaction is owed
    /// for them. Their tags are left behind, past the records, where no
    /// scan looks, until a new record takes the position.
    fn trim_dead_tail(&mut self) {
        while self.metas.last().is_some_and(|m| !m.live()) {
            self.metas.pop();
        }
        if let Some(large) = self.large.as_deref_mut() {
            large.links.truncate(self.metas.len());
        }
    }

    /// Forgets every (dead) record. Small buffers are kept for the entries
    /// to come (a queue that empties and fills again must not allocate
    /// each time); large ones are given back.
    fn empty(&mut self) {
        if self.capacity_bytes() > KEEP_WHEN_EMPTY {
            *self = Store::default();
            return;
        }
        self.metas.clear();
        self.arena.clear();
        self.large = None;
        self.live = 0;
        self.first = 0;
        self.garbage = 0;
    }

    fn compact_metas(&mut self, hasher: &DefaultHashBuilder) {
        // The live records and their tags move down together.
        let mut to = 0usize;
        for from in 0..self.metas.len() {
            let (Some(&m), Some(&t)) = (self.metas.get(from), self.tags.get(from)) else {
                continue;
            };
            if m.live() {
                if let (Some(dm), Some(dt)) = (self.metas.get_mut(to), self.tags.get_mut(to)) {
                    *dm = m;
                    *dt = t;
                }
                to += 1;
            }
        }
        self.metas.truncate(to);
        self.first = 0;
        self.rebuild_large(hasher);
    }

    /// Squeezes the garbage out of the arena, in place: the live entries
    /// move down in arena order (each only ever towards the start), so the
    /// buffer is kept. Entries already in place are not copied, and
    /// entries that lie next to each other move as one block: after the
    /// usual removals (a few holes) a compaction is a few `memmove`s, not
    /// one per entry. `order` is working memory: each live entry's offset
    /// and position.
    #[cold]
    fn compact_bytes(&mut self, order: &mut Vec<u64>) {
        order.clear();
        order.reserve_exact(self.live as usize);
        let first = self.first as usize;
        let metas = self.metas.get(first..).unwrap_or_default();
        for (i, m) in metas.iter().enumerate() {
            if m.live() {
                order.push(u64::from(m.off) << 32 | (first + i) as u64);
            }
        }
        // Records are in listing order, and so is the arena unless values
        // grew and moved: usually sorted already.
        if !order.is_sorted() {
            order.sort_unstable();
        }
        // Moved as bytes, then given back as a string: the kept text is a
        // concatenation of whole `&str`s, so the one check of `from_utf8`
        // (fast on ASCII, O(arena) like the move) cannot fail.
        let mut bytes = core::mem::take(&mut self.arena).into_bytes();
        let mut to = 0usize;
        // The block waiting to move: its source, and where it goes.
        let mut block = 0..0;
        let mut block_to = 0usize;
        for &p in order.iter() {
            let (from, pos) = ((p >> 32) as usize, p as u32);
            // Nothing at or after `from` has been written over yet.
            let size = entry_size(&bytes, from);
            if from != block.end {
                move_block(&mut bytes, block, block_to);
                block = from..from;
                block_to = to;
            }
            block.end = from + size;
            if let Some(m) = self.metas.get_mut(pos as usize) {
                m.off = u32::try_from(to).unwrap_or(DEAD);
            }
            to += size;
        }
        move_block(&mut bytes, block, block_to);
        bytes.truncate(to);
        self.arena = String::from_utf8(bytes).unwrap_or_default();
        self.garbage = 0;
        if order.capacity() > KEEP_PIECES {
            // A large room's compaction does not pin its working memory.
            *order = Vec::new();
        }
    }

    /// Heap bytes the store holds (capacities), for the keep-or-free
    /// decision of an emptied store.
    fn capacity_bytes(&self) -> usize {
        self.metas.capacity() * core::mem::size_of::<Meta<X>>()
            + self.arena.capacity()
            + self.tags.len() * 2
            + self.large.as_deref().map_or(0, Large::heap_bytes)
    }

    /// Checks the index, the arena accounting and the owner lists against
    /// the metas (for `check_invariants`). `owner_ok` says whether an owner
    /// number names a live user.
    pub(crate) fn consistent(
        &self,
        hasher: &DefaultHashBuilder,
        owner_ok: impl Fn(u32) -> bool,
    ) -> Result<(), &'static str> {
        let live = self.metas.iter().filter(|m| m.live()).count();
        let large = self.large.as_deref();
        if self.live as usize != live || large.is_some_and(|l| l.index.len() != live) {
            return Err("store counts disagree with its records");
        }
        if large.is_none() && live > SCAN_KEYS {
            return Err("store past the scan threshold without an index");
        }
        if live > 0 && self.metas.last().is_some_and(|m| !m.live()) {
            return Err("store with live entries ends in a tombstone");
        }
        if large.is_some_and(|l| l.links.len() != self.metas.len()) {
            return Err("store owner links disagree with its records");
        }
        if self.tags.len() < self.metas.len() {
            return Err("store records without tags");
        }
        // The arena is written through `crate::overwrite`'s `unsafe` copy:
        // every check of the invariants (tests, simulator, fuzz targets)
        // validates the whole text again.
        if core::str::from_utf8(self.arena.as_bytes()).is_err() {
            return Err("store arena is not UTF-8");
        }
        if self
            .metas
            .get(..self.first as usize)
            .is_some_and(|s| s.iter().any(Meta::live))
        {
            return Err("a live record before the store's first cursor");
        }
        let mut used = 0usize;
        for m in self.metas.iter().filter(|m| m.live()) {
            let Some(s) = span(&self.arena, m.off).filter(|s| s.value.end <= self.arena.len())
            else {
                return Err("store record lies outside its arena");
            };
            used += s.size(m.off);
        }
        if used + self.garbage as usize != self.arena.len() {
            return Err("store arena bytes do not add up");
        }
        let mut linked = 0usize;
        let heads = large.map_or(&[][..], |l| &l.heads[..]);
        for (user, &head) in heads.iter().enumerate() {
            let mut prev = NONE;
            let mut at = head;
            while at != NONE {
                let Some(m) = self.meta(at) else {
                    return Err("owner list names a dead record");
                };
                let [p, next] = large
                    .and_then(|l| l.links.get(at as usize))
                    .copied()
                    .unwrap_or([NONE; 2]);
                if p != prev || !m.indexed() || m.owner() as usize != user {
                    return Err("owner list links or owners are wrong");
                }
                linked += 1;
                if linked > live {
                    return Err("owner list has a cycle");
                }
                prev = at;
                at = next;
            }
        }
        for pos in self.positions() {
            let key = self.key(pos);
            let hash = hash_key(hasher, key);
            if self.tags.get(pos as usize) != Some(&tag(hash)) {
                return Err("store record with a wrong tag");
            }
            if self.find(hash, key) != Some(pos) {
                return Err("store index does not find a record");
            }
            let Some(m) = self.meta(pos) else {
                return Err("store position without a record");
            };
            if m.owner() != ADMIN && !owner_ok(m.owner()) {
                return Err("record owned by no user");
            }
            if m.plain() != (json_plain(key) && json_plain(self.value(pos))) {
                return Err("store record's plain bit disagrees with its text");
            }
        }
        let indexed = self
            .metas
            .iter()
            .filter(|m| m.live() && m.indexed())
            .count();
        if large.is_some() && indexed != linked {
            return Err("flagged record missing from its owner's list");
        }
        Ok(())
    }

    /// Heap bytes held (capacity, not length), for memory accounting.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.metas.capacity() * core::mem::size_of::<Meta<X>>()
            + self.arena.capacity()
            + self.tags.len() * 2
            + self.large.as_deref().map_or(0, Large::heap_bytes)
    }

    /// Heap bytes by part, for the footprint accounting: records (used,
    /// slack), arena (used incl. garbage, slack), index table, owner heads.
    #[cfg(test)]
    pub(crate) fn heap_parts(&self) -> [(&'static str, usize); 6] {
        let meta = core::mem::size_of::<Meta<X>>();
        [
            ("records", self.metas.len() * meta),
            (
                "records slack",
                (self.metas.capacity() - self.metas.len()) * meta,
            ),
            ("arena", self.arena.len()),
            ("arena slack", self.arena.capacity() - self.arena.len()),
            ("tags", self.tags.len() * 2),
            (
                "index and owner lists",
                self.large.as_deref().map_or(0, Large::heap_bytes),
            ),
        ]
    }
}

impl Large {
    /// Heap bytes held: the box, the table, the links and the heads.
    fn heap_bytes(&self) -> usize {
        core::mem::size_of::<Large>()
            + self.index.allocation_size()
            + self.links.capacity() * 8
            + self.heads.len() * 4
    }

    fn link(&mut self, pos: u32, owner: u32) {
        let owner = owner as usize;
        if self.heads.len() <= owner {
            self.grow_heads(owner);
        }
        let head = self.heads.get(owner).copied().unwrap_or(NONE);
        if let Some(h) = self.links.get_mut(head as usize) {
            h[0] = pos;
        }
        if let Some(l) = self.links.get_mut(pos as usize) {
            *l = [NONE, head];
        }
        if let Some(h) = self.heads.get_mut(owner) {
            *h = pos;
        }
    }

    /// Makes `heads` long enough for `owner`, growing it as [`grow`] grows
    /// a vector (doubling while small, then by an eighth, four at least).
    #[cold]
    fn grow_heads(&mut self, owner: usize) {
        let len = self.heads.len();
        let step = if len * 4 < DOUBLE_BELOW { len } else { len / 8 };
        let new_len = (owner + 1).max(len + step.max(4));
        let mut heads = alloc::vec![NONE; new_len].into_boxed_slice();
        if let Some(old) = heads.get_mut(..len) {
            old.copy_from_slice(&self.heads);
        }
        self.heads = heads;
    }

    fn unlink(&mut self, pos: u32, owner: u32) {
        let Some(&[prev, next]) = self.links.get(pos as usize) else {
            return;
        };
        match self.links.get_mut(prev as usize) {
            Some(p) => p[1] = next,
            None => {
                if let Some(h) = self.heads.get_mut(owner as usize) {
                    *h = next;
                }
            }
        }
        if let Some(n) = self.links.get_mut(next as usize) {
            n[0] = prev;
        }
        if let Some(l) = self.links.get_mut(pos as usize) {
            *l = [NONE; 2];
        }
    }
}

/// A record's owner word: the owner number, the flag and the plain bit.
fn who(owner: u32, flagged: bool, plain: bool) -> u32 {
    (owner & OWNER) | if flagged { FLAG } else { 0 } | if plain { PLAIN } else { 0 }
}

/// Whether `s` holds no byte that a JSON string must escape: no `"`, no
/// `\` and no control character below U+0020 (RFC 8259, section 7), so a
/// writer may copy it between quotes as it is.
///
/// Eight bytes at a time (the compilers' vectorizers made slower code of
/// byte loops here: 770 instructions for 64 bytes): for a word `x`,
/// `(x - 0x20 in each byte) & !x` has some byte's high bit set exactly
/// when some byte of `x` is below `0x20`, and the same with `0x01` finds a
/// zero byte of `x ^ '"'` or `x ^ '\'` (borrows start only at such a
/// byte, so the answer "some byte" is exact even where a borrow spreads).
pub(crate) fn json_plain(s: &str) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    let escapes = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut rest = s.as_bytes();
    let mut found = 0;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        rest = tail;
        let x = u64::from_le_bytes(*word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let slash = x ^ (ONES * u64::from(b'\\'));
        found |= (x.wrapping_sub(ONES * 0x20) & !x)
            | (quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash);
    }
    found & (ONES << 7) == 0 && !rest.iter().any(|&b| escapes(b))
}

/// Whether the key at `pos` is `key`: a byte comparison, which needs no
/// char-boundary check (equal bytes are the same text).
#[inline]
fn key_bytes_are<X>(metas: &[Meta<X>], arena: &str, pos: u32, key: &str) -> bool {
    let Some(m) = metas.get(pos as usize).filter(|m| m.live()) else {
        return false;
    };
    key_range(arena, m.off).and_then(|r| arena.as_bytes().get(r)) == Some(key.as_bytes())
}

/// The iterator of [`Store::entries`]: written out rather than a chain
/// of adapters so that a read's loop compiles to one inlined step per
/// record (the closure of a `filter_map` stayed a call per attribute).
pub(crate) struct Entries<'a, X> {
    metas: core::slice::Iter<'a, Meta<X>>,
    arena: &'a str,
}

impl<'a, X> Iterator for Entries<'a, X> {
    type Item = (&'a Meta<X>, &'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let m = self.metas.next()?;
            if !m.live() {
                continue;
            }
            let Some(s) = span(self.arena, m.off) else {
                continue;
            };
            if let (Some(key), Some(value)) = (self.arena.get(s.key), self.arena.get(s.value)) {
                return Some((m, key, value));
            }
        }
    }
}

#[inline]
fn key_of<'a, X>(metas: &[Meta<X>], arena: &'a str, pos: u32) -> Option<&'a str> {
    let m = metas.get(pos as usize).filter(|m| m.live())?;
    arena.get(key_range(arena, m.off)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // a test
mod tests {
    use super::*;

    fn h() -> DefaultHashBuilder {
        DefaultHashBuilder::default()
    }

    fn put(s: &mut Store<u8>, hs: &DefaultHashBuilder, k: &str, v: &str, owner: u32) -> u32 {
        s.push(hash_key(hs, k), k, v, owner, true, 0, hs).unwrap()
    }

    /// Removing the newest record drops its tombstone at once, and the
    /// dead ones just before it; a hole elsewhere stays until a
    /// compaction; the last entry out is left for `settle`, which empties
    /// the store. The invariants hold after each step.
    #[test]
    fn removing_the_newest_record_trims_the_dead_tail_at_once() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let pos: Vec<u32> = (0..5)
            .map(|i| put(&mut s, &hs, &alloc::format!("k{i}"), "v", 0))
            .collect();
        let ok = |s: &Store<u8>| s.consistent(&hs, |_| true);
        s.remove_at(pos[2], &hs).unwrap();
        assert_eq!(s.metas.len(), 5, "a hole stays");
        s.remove_at(pos[4], &hs).unwrap();
        assert_eq!(
            s.metas.len(),
            4,
            "the newest goes, the live one before it stays"
        );
        assert_eq!(ok(&s), Ok(()));
        s.remove_at(pos[3], &hs).unwrap();
        assert_eq!(s.metas.len(), 2, "the newest goes with the hole before it");
        assert_eq!(ok(&s), Ok(()));
        s.remove_at(pos[1], &hs).unwrap();
        assert_eq!(s.metas.len(), 1);
        s.remove_at(pos[0], &hs).unwrap();
        assert_eq!(s.metas.len(), 1, "the last out is left to settle");
        assert_eq!(ok(&s), Ok(()));
        s.settle(&hs, &mut Scratch::default());
        assert!(s.metas.is_empty());
        assert_eq!((s.live, s.first, s.garbage), (0, 0, 0));
        assert_eq!(ok(&s), Ok(()));
    }

    #[test]
    fn values_overwrite_in_place_or_move_and_the_arena_adds_up() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let a = put(&mut s, &hs, "a", "12345", 0);
        let b = put(&mut s, &hs, "b", "x", 1);
        s.set_value(a, "123");
        assert_eq!(s.value(a), "123");
        s.set_value(b, "a longer value");
        assert_eq!((s.key(b), s.value(b)), ("b", "a longer value"));
        assert_eq!(s.find(hash_key(&hs, "b"), "b"), Some(b));
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// Lengths live in the arena as chars: every width reads back, with
    /// the surrogate gap skipped and the two-char form past `ONE_CHAR`.
    #[test]
    fn lengths_of_every_width_read_back_as_chars() {
        let cases = [
            (0usize, 1usize),
            (0x7f, 1),
            (0x80, 2),
            (0x7ff, 2),
            (0x800, 3),
            (0xd7ff, 3),
            (0xd800, 3),
            (0xf7ff, 3),
            (0xf800, 8),
            (0xffff, 8),
            (0x1_0000, 5),
            (0x12_3456, 7),
            (u32::MAX as usize, 8),
        ];
        for (n, width) in cases {
            let mut arena = String::from("x");
            push_len(&mut arena, n);
            arena.push('y');
            assert_eq!(len_width(n), width, "{n:#x}");
            assert_eq!(arena.len(), 2 + width, "{n:#x}");
            assert_eq!(read_len(&arena, 1), Some((n, width)), "{n:#x}");
        }
        // Past `u32::MAX` (no profile comes near: `reserve_entry` refuses
        // the entry first) a length is written as `u32::MAX`, and its
        // width says so.
        if let Ok(n) = usize::try_from(1u64 << 32) {
            let mut arena = String::new();
            push_len(&mut arena, n);
            assert_eq!((len_width(n), arena.len()), (8, 8));
            assert_eq!(read_len(&arena, 0), Some((u32::MAX as usize, 8)));
        }
    }

    /// A compaction reads each entry's size from the arena's bytes: it
    /// agrees with the text's reading for lengths of every width (a
    /// value's, and the key's of an entry at the arena's very start), and
    /// is 0 where the entry does not lie whole in the bytes.
    #[test]
    fn entry_sizes_read_from_bytes_agree_with_the_text() {
        for n in [
            0usize, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xf7ff, 0xf800, 0x1_2345,
        ] {
            let mut arena = String::from("é");
            push_len(&mut arena, 2);
            arena.push_str("kk");
            push_len(&mut arena, n);
            arena.push_str(&"v".repeat(n));
            let size = span(&arena, 2).unwrap().size(2);
            assert_eq!(size, 1 + 2 + len_width(n) + n, "{n:#x}");
            arena.push('y');
            let bytes = arena.as_bytes();
            assert_eq!(entry_size(bytes, 2), size, "{n:#x}");
            assert_eq!(entry_size(&bytes[..bytes.len() - 2], 2), 0, "cut short");
            assert_eq!(entry_size(bytes, 1), 0, "inside a char");
            assert_eq!(entry_size(bytes, bytes.len()), 0, "past the end");
            // The same length as the key's, at the arena's start.
            let mut arena = String::new();
            push_len(&mut arena, n);
            arena.push_str(&"k".repeat(n));
            push_len(&mut arena, 1);
            arena.push('v');
            assert_eq!(entry_size(arena.as_bytes(), 0), arena.len(), "{n:#x}");
        }
    }

    /// An entry whose lengths run it into the middle of a char has size 0
    /// (a compaction keeps none of it), so that what a compaction keeps is
    /// whole UTF-8 text; its lengths told right, the same bytes read whole.
    #[test]
    fn an_entry_that_ends_inside_a_char_has_no_size() {
        // Key "k", then a value length of 1 where the value is 'é' (2 bytes).
        assert_eq!(entry_size("\u{1}k\u{1}éz".as_bytes(), 0), 0);
        assert_eq!(entry_size("\u{1}k\u{2}éz".as_bytes(), 0), 5);
    }

    /// A compaction's block copy is guarded: a block that does not lie in
    /// the bytes (reversed, or running past their end) is left alone rather
    /// than copied (which would panic); one that does moves down.
    #[test]
    fn a_block_that_does_not_lie_in_the_bytes_is_not_moved() {
        let mut bytes = *b"0123456789";
        let (start, end) = (6, 4);
        move_block(&mut bytes, start..end, 0);
        move_block(&mut bytes, 4..11, 0);
        assert_eq!(&bytes, b"0123456789");
        move_block(&mut bytes, 6..10, 1);
        assert_eq!(&bytes, b"0678956789");
    }

    /// Tombstones after the last live record are dropped when the
    /// operation settles, in a scanned store and in an indexed one (whose
    /// owner links shrink with the records); no live record moves, and the
    /// next record takes the freed position.
    #[test]
    fn the_newest_records_removed_leave_no_tombstones() {
        for n in [5u32, 40] {
            let hs = h();
            let mut s = Store::<u8>::default();
            let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            for (i, k) in keys.iter().enumerate() {
                put(&mut s, &hs, k, "v", i as u32 % 3);
            }
            // The last two removed, and one in the middle.
            s.remove_at(n - 1, &hs);
            s.remove_at(n - 2, &hs);
            s.remove_at(1, &hs);
            s.settle(&hs, &mut Scratch::default());
            assert_eq!((s.metas.len(), s.len()), (n as usize - 2, n as usize - 3));
            assert!(s.consistent(&hs, |_| true).is_ok(), "{n}");
            for (i, k) in keys.iter().enumerate() {
                let live = i != 1 && i < n as usize - 2;
                let at = live.then_some(i as u32);
                assert_eq!(s.find(hash_key(&hs, k), k), at, "{n} {k}");
            }
            // The removed last key comes back at the position it left.
            let back = put(&mut s, &hs, &keys[n as usize - 2], "w", 1);
            assert_eq!(back, n - 2);
            let mut owned = Vec::new();
            s.owned(1, u32::MAX, &mut owned);
            assert!(owned.contains(&back), "{n}: {owned:?}");
            assert!(s.consistent(&hs, |_| true).is_ok(), "{n}");
        }
    }

    /// A non-ASCII value overwritten shorter in place is first blanked in
    /// chunks of `FILL`'s length; a chunk whose end falls inside a char
    /// ends at the char before it instead, so that every chunk is whole
    /// text and the whole region is blanked.
    #[test]
    fn a_non_ascii_value_is_blanked_in_whole_chars() {
        let hs = h();
        let mut s = Store::<u8>::default();
        // The value starts at byte 3 (key length, key, value length), so
        // the first 64-byte chunk from byte 2 ends inside an 'é'.
        let a = put(&mut s, &hs, "k", &"é".repeat(60), 0);
        let b = put(&mut s, &hs, "b", "after", 1);
        let len = s.arena.len();
        s.set_value(a, "short");
        assert_eq!((s.key(a), s.value(a)), ("k", "short"));
        assert_eq!((s.key(b), s.value(b)), ("b", "after"));
        assert_eq!(s.arena.len(), len, "written in place");
        assert!(s.arena.is_ascii(), "{:?}", s.arena);
        assert_eq!(s.garbage, 120 - 5);
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// A value overwritten shorter is rewritten in place (its length at
    /// its new width, the bytes left over blanked with ASCII even where
    /// the old text was not), a longer one moves with its key; keys and
    /// values of every width read back whole, before and after the arena
    /// is compacted.
    #[test]
    fn values_of_every_width_survive_overwrites_and_compaction() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let long_key = "ké".repeat(100);
        let a = put(&mut s, &hs, &long_key, &"é".repeat(200), 0);
        let b = put(&mut s, &hs, "b", "", 1);
        let c = put(&mut s, &hs, "c", "日本語", 1);
        s.set_value(a, "short");
        assert_eq!(
            (s.key(a), s.value(a), s.value_len(a)),
            (&*long_key, "short", 5)
        );
        s.set_value(c, "日本");
        assert_eq!(s.value(c), "日本");
        s.set_value(c, "語語");
        assert_eq!(s.value(c), "語語", "same length");
        s.set_value(b, &"w".repeat(20_000));
        s.set_value(a, &"x€".repeat(1_000));
        assert_eq!(s.value(a), "x€".repeat(1_000));
        assert_eq!(s.value(b), "w".repeat(20_000));
        assert!(s.consistent(&hs, |_| true).is_ok());
        assert!(s.garbage > 0, "the moves left garbage");
        s.compact_bytes(&mut Vec::new());
        assert_eq!(s.garbage, 0);
        assert_eq!(
            s.arena.len(),
            (2 + 300 + 3 + 4_000) + (1 + 1 + 3 + 20_000) + (1 + 1 + 1 + 6)
        );
        assert_eq!(s.find(hash_key(&hs, &long_key), &long_key), Some(a));
        assert_eq!((s.key(b), s.value_len(b)), ("b", 20_000));
        assert_eq!((s.key(c), s.value(c)), ("c", "語語"));
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// A compaction keeps the live entries in arena order with nothing
    /// between them: entries before the first hole stay where they are,
    /// the ones after it move down (as blocks), an entry whose value grew
    /// (moved to the end) comes last, and every key and value reads back.
    #[test]
    fn compaction_closes_every_hole_and_keeps_arena_order() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let pos: Vec<u32> = names
            .iter()
            .map(|k| put(&mut s, &hs, k, &k.repeat(3), 0))
            .collect();
        // Holes: b, then d and e together; c's value grows and moves to
        // the end; g (the last entry) stays, so nothing is given back early.
        s.remove_at(pos[1], &hs);
        s.remove_at(pos[3], &hs);
        s.remove_at(pos[4], &hs);
        s.set_value(pos[2], "cccé");
        assert_eq!(s.garbage, 3 * 6 + 6);
        s.compact_bytes(&mut Vec::new());
        assert_eq!(s.garbage, 0);
        assert_eq!(
            s.arena,
            "\u{1}a\u{3}aaa\u{1}f\u{3}fff\u{1}g\u{3}ggg\u{1}c\u{5}cccé"
        );
        for (i, k) in names.iter().enumerate() {
            let live = ![1, 3, 4].contains(&i);
            let found = s.find(hash_key(&hs, k), k);
            assert_eq!(found, live.then_some(pos[i]), "{k}");
        }
        assert_eq!(s.value(pos[2]), "cccé");
        assert_eq!(s.value(pos[6]), "ggg");
        assert!(s.consistent(&hs, |_| true).is_ok());
        // Nothing to close: the arena is left as it is.
        let before = s.arena.clone();
        s.compact_bytes(&mut Vec::new());
        assert_eq!(s.arena, before);
    }

    /// Removing the arena's last entry gives its bytes back at once; any
    /// other removal leaves garbage for a compaction.
    #[test]
    fn removing_the_newest_entry_gives_its_bytes_back() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let a = put(&mut s, &hs, "a", "xx", 0);
        let b = put(&mut s, &hs, "b", "yyy", 0);
        s.remove_at(b, &hs);
        assert_eq!((s.arena.as_str(), s.garbage), ("\u{1}a\u{2}xx", 0));
        let c = put(&mut s, &hs, "c", "z", 0);
        s.remove_at(a, &hs);
        assert_eq!((s.arena.len(), s.garbage), (5 + 4, 5));
        // c's value grows and moves to the end: its old bytes are garbage,
        // its new ones are given back when it goes.
        s.set_value(c, "zzzz");
        assert_eq!((s.arena.len(), s.garbage), (5 + 4 + 7, 5 + 4));
        s.remove_at(c, &hs);
        assert_eq!((s.arena.len(), s.garbage), (5 + 4, 5 + 4));
        assert!(s.consistent(&hs, |_| true).is_ok());
        assert_eq!(s.find(hash_key(&hs, "c"), "c"), None);
    }

    /// Settling squeezes the records once tombstones outnumber the live
    /// ones (and there are at least `MIN_DEAD_TO_COMPACT`), the last record
    /// live: the tombstones are bounded by the live records.
    #[test]
    fn tombstones_outnumbering_the_live_records_are_compacted() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        for k in &keys {
            put(&mut s, &hs, k, "v", 0);
        }
        for k in &keys[..36] {
            let pos = s.find(hash_key(&hs, k), k).unwrap();
            s.remove_at(pos, &hs).unwrap();
        }
        s.settle(&hs, &mut Scratch::default());
        assert_eq!((s.metas.len(), s.len()), (4, 4));
        for k in &keys[36..] {
            let pos = s.find(hash_key(&hs, k), k).unwrap();
            assert_eq!((s.key(pos), s.value(pos)), (k.as_str(), "v"));
        }
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// Settling squeezes the arena once its garbage outweighs the live
    /// bytes (and there are at least `MIN_GARBAGE_TO_COMPACT`): a large
    /// entry removed before a small live one leaves no bytes behind.
    #[test]
    fn garbage_outweighing_the_live_bytes_is_compacted() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let big = put(&mut s, &hs, "big", &"x".repeat(300), 0);
        let small = put(&mut s, &hs, "s", "y", 0);
        s.remove_at(big, &hs).unwrap();
        assert_eq!(s.garbage as usize + 4, s.arena.len());
        s.settle(&hs, &mut Scratch::default());
        assert_eq!((s.arena.as_str(), s.garbage), ("\u{1}s\u{1}y", 0));
        assert_eq!((s.key(small), s.value(small)), ("s", "y"));
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// The other side of the two compaction rules: waste up to the live
    /// size, or below the minimum, stays until more removals pay for the
    /// O(n) pass. Records: 32 tombstones beside 32 live records stay, the
    /// 33rd compacts; 15 beside 5 stay (under `MIN_DEAD_TO_COMPACT`).
    /// Bytes: 306 bytes of garbage beside 306 live ones stay, and so do 206
    /// beside 4 (under `MIN_GARBAGE_TO_COMPACT`).
    #[test]
    fn waste_up_to_the_live_size_is_kept_until_it_outweighs_it() {
        let hs = h();
        let mut scratch = Scratch::default();
        let remove = |s: &mut Store<u8>, k: &str| {
            let pos = s.find(hash_key(&hs, k), k).unwrap();
            s.remove_at(pos, &hs).unwrap();
        };
        for (n, removed, compacted) in [(64, 32, false), (64, 33, true), (20, 15, false)] {
            let mut s = Store::<u8>::default();
            let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            for k in &keys {
                put(&mut s, &hs, k, "v", 0);
            }
            for k in &keys[..removed] {
                remove(&mut s, k);
            }
            s.settle(&hs, &mut scratch);
            let records = if compacted { n - removed } else { n };
            assert_eq!(
                (s.metas.len(), s.len()),
                (records, n - removed),
                "{n} {removed}"
            );
            assert!(s.consistent(&hs, |_| true).is_ok());
        }
        for (gone, kept) in [(300, 300), (200, 0)] {
            let mut s = Store::<u8>::default();
            put(&mut s, &hs, "big", &"x".repeat(gone), 0);
            put(&mut s, &hs, "bog", &"y".repeat(kept), 0);
            remove(&mut s, "big");
            let len = s.arena.len();
            s.settle(&hs, &mut scratch);
            assert_eq!(
                (s.arena.len(), s.garbage as usize),
                (len, gone + 6),
                "{gone}"
            );
            assert_eq!(
                s.value(s.find(hash_key(&hs, "bog"), "bog").unwrap()),
                "y".repeat(kept)
            );
        }
    }

    /// The tags are as long as the records' capacity: a push that fits
    /// in that capacity writes its tag into the buffer already there.
    #[test]
    fn a_push_within_the_records_capacity_keeps_the_tags() {
        let hs = h();
        let mut s = Store::<u8>::default();
        put(&mut s, &hs, "a", "v", 0);
        assert_eq!((s.tags.len(), s.metas.capacity()), (4, 4));
        let tags = s.tags.as_ptr();
        put(&mut s, &hs, "b", "v", 0);
        assert_eq!(s.tags.as_ptr(), tags);
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// The growth policy of the records and the arena, as their comments
    /// give it: doubling while small, then an eighth, and room for four
    /// more of what is asked at least (the arena's floor capped at
    /// `ARENA_SPARE` past the entry).
    #[test]
    fn buffers_double_while_small_then_grow_by_an_eighth() {
        assert_eq!(growth(true, 0, 1), 4);
        assert_eq!(growth(true, 8, 1), 8);
        assert_eq!(growth(false, 16, 1), 4);
        assert_eq!(growth(false, 160, 1), 20);
        assert_eq!(growth(false, 160, 10), 40);
        assert_eq!(arena_growth(100, 10), 100);
        assert_eq!(arena_growth(DOUBLE_BELOW, 10), DOUBLE_BELOW / 8);
        assert_eq!(arena_growth(4096, 10), 512);
        assert_eq!(arena_growth(4096, 300), 1200);
        assert_eq!(arena_growth(4096, 16_384), 16_384 + ARENA_SPARE);
        // Records pushed one at a time: the capacities they pass through.
        let mut v: Vec<u64> = Vec::new();
        let mut caps = Vec::new();
        for i in 0..60 {
            grow(&mut v, 1);
            v.push(i);
            if caps.last() != Some(&v.capacity()) {
                caps.push(v.capacity());
            }
        }
        assert_eq!(caps, [4, 8, 16, 20, 24, 28, 32, 36, 40, 45, 50, 56, 63]);
    }

    /// A compaction keeps its working memory for the next one while it is
    /// small, and gives it back when a large room made it large (more than
    /// `KEEP_PIECES` entries).
    #[test]
    fn a_compaction_gives_large_working_memory_back() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let a = put(&mut s, &hs, "a", "x", 0);
        let mut order = Vec::with_capacity(16);
        s.compact_bytes(&mut order);
        assert!(order.capacity() >= 16, "kept");
        let mut order = Vec::with_capacity(KEEP_PIECES);
        s.compact_bytes(&mut order);
        assert_eq!(order.capacity(), KEEP_PIECES, "kept at the limit");
        let mut order = Vec::with_capacity(KEEP_PIECES * 8);
        s.compact_bytes(&mut order);
        assert_eq!(order.capacity(), 0, "given back");
        assert_eq!(s.value(a), "x");
    }

    #[test]
    fn owner_lists_survive_removals_and_compaction() {
        // Scanned (no lists) in a small store, listed in a large one.
        for n in [30u32, 200] {
            let hs = h();
            let mut s = Store::<u8>::default();
            let mut keys = Vec::new();
            for i in 0..n {
                let k = alloc::format!("k{i}");
                put(&mut s, &hs, &k, "v", i % 3);
                keys.push(k);
            }
            for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 4 != 0) {
                let pos = s.find(hash_key(&hs, k), k).unwrap();
                assert!(s.remove(hash_key(&hs, k), pos).is_some(), "{i}");
            }
            s.settle(&hs, &mut Scratch::default());
            assert!(s.consistent(&hs, |_| true).is_ok());
            // An owner change moves an entry between owners.
            let k8 = s.find(hash_key(&hs, "k8"), "k8").unwrap();
            s.set_owner(k8, 0, true);
            assert!(s.consistent(&hs, |_| true).is_ok());
            let mut out = Vec::new();
            s.owned(0, u32::MAX, &mut out);
            let owned: Vec<&str> = out.iter().map(|&p| s.key(p)).collect();
            // Keys k0, k12, k24, ... (i % 4 == 0 and i % 3 == 0), and k8,
            // in order.
            let expected: Vec<String> = (0..n)
                .filter(|i| i % 12 == 0 || *i == 8)
                .map(|i| alloc::format!("k{i}"))
                .collect();
            assert_eq!(owned, expected, "{n}");
        }
    }

    /// Up to `SCAN_KEYS` live entries a key is found by a scan of the
    /// tags, with no index; the entry after builds the index (kept through
    /// compactions, dropped when the store empties), and every key is
    /// found (and every absent one not) at each stage.
    #[test]
    fn keys_are_found_by_scan_then_through_the_index_built_past_the_threshold() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let keys: Vec<String> = (0..=SCAN_KEYS + 40)
            .map(|i| alloc::format!("k{i}"))
            .collect();
        let found = |s: &Store<u8>, live: &[String]| {
            for k in live {
                let pos = s.find(hash_key(&hs, k), k).unwrap();
                assert_eq!(s.key(pos), k);
            }
            assert_eq!(s.find(hash_key(&hs, "absent"), "absent"), None);
            assert!(s.consistent(&hs, |_| true).is_ok());
        };
        for (i, k) in keys.iter().enumerate() {
            put(&mut s, &hs, k, "v", 0);
            assert_eq!(s.large.is_some(), i + 1 > SCAN_KEYS, "{i}");
            found(&s, &keys[..=i]);
        }
        // Remove all but the first 10: the compaction keeps the index.
        for k in &keys[10..] {
            let pos = s.find(hash_key(&hs, k), k).unwrap();
            s.remove_at(pos, &hs).unwrap();
        }
        s.settle(&hs, &mut Scratch::default());
        assert!(s.large.is_some(), "kept through a compaction");
        found(&s, &keys[..10]);
        // Emptied, then filled again: scanning.
        for k in &keys[..10] {
            let pos = s.find(hash_key(&hs, k), k).unwrap();
            s.remove_at(pos, &hs).unwrap();
        }
        s.settle(&hs, &mut Scratch::default());
        assert!(s.large.is_none(), "dropped with the last entry");
        for k in &keys[..10] {
            put(&mut s, &hs, k, "v", 0);
        }
        found(&s, &keys[..10]);
        assert_eq!(s.find(hash_key(&hs, &keys[20]), &keys[20]), None);
        // A removal while scanning, then a key of the same tag's bucket.
        let pos = s.find(hash_key(&hs, "k3"), "k3").unwrap();
        s.remove_at(pos, &hs).unwrap();
        assert_eq!(s.find(hash_key(&hs, "k3"), "k3"), None);
        put(&mut s, &hs, "k3", "again", 1);
        let pos = s.find(hash_key(&hs, "k3"), "k3").unwrap();
        assert_eq!(s.value(pos), "again");
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// User numbers are dense per room, but the first owner a store
    /// lists may be any of them: the heads grow to a number far past
    /// their length at once, and every list is found whole.
    #[test]
    fn owner_lists_reach_users_numbered_far_apart() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let owners = [1000u32, 3, 0, 70, 1000, 3];
        for i in 0..40u32 {
            put(
                &mut s,
                &hs,
                &alloc::format!("k{i}"),
                "v",
                owners[i as usize % 6],
            );
        }
        assert!(s.large.is_some());
        let mut owned = Vec::new();
        for &user in &owners[..4] {
            s.owned(user, u32::MAX, &mut owned);
            let expected: Vec<u32> = (0..40)
                .filter(|i| owners[*i as usize % 6] == user)
                .collect();
            assert_eq!(owned, expected, "user {user}");
        }
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// A scan for what a user owns stops once it has found `most` entries
    /// (an exit passes the user's count of entries), and none is made for
    /// a user who owns nothing.
    #[test]
    fn a_scan_for_owned_entries_stops_at_most() {
        let hs = h();
        let mut s = Store::<u8>::default();
        for i in 0..6u32 {
            let k = alloc::format!("k{i}");
            s.push(hash_key(&hs, &k), &k, "v", i % 2, true, 0, &hs)
                .unwrap();
        }
        assert!(s.large.is_none(), "a store that scans");
        let mut out = Vec::new();
        s.owned(1, u32::MAX, &mut out);
        assert_eq!(out, [1, 3, 5]);
        s.owned(1, 3, &mut out);
        assert_eq!(out, [1, 3, 5]);
        s.owned(1, 2, &mut out);
        assert_eq!(out, [1, 3]);
        s.owned(1, 0, &mut out);
        assert!(out.is_empty());
    }

    /// A hasher under which none of `checked` shares the top 7 bits of its
    /// hash with another of the keys `key00..` (`n` of them). Those bits are
    /// the index's control byte and the start of a scan's tag, so a hint
    /// for a checked key can only name that key's record. The default
    /// hasher is seeded afresh each time, so a few tries find one.
    fn hasher_without_false_matches(n: u32, checked: &[u32]) -> Option<DefaultHashBuilder> {
        (0..256).map(|_| h()).find(|hs| {
            let top = |i: u32| hash_key(hs, &alloc::format!("key{i:02}")) >> 57;
            checked
                .iter()
                .all(|&c| (0..n).all(|i| i == c || top(i) != top(c)))
        })
    }

    /// The hints ask for the lines a lookup reads: the tags and records
    /// (at most 2 and 8 lines), and the text of the record whose tag
    /// matches the key, in a store that scans and in one with an index;
    /// a key with no record gets at most the text of a record whose tag
    /// matches by chance. The hasher is one under which no checked key
    /// shares its hash's top 7 bits with another key: a hint reads no key,
    /// so with those bits shared (the index's control byte, or a whole
    /// tag) it may rightly name the other record (CI once drew such a
    /// seed).
    #[test]
    fn hints_name_the_lines_a_lookup_reads() {
        use crate::prefetch::{log, LINE};
        for n in [20u32, 40] {
            let checked = [0, 7, n - 1];
            let hs = hasher_without_false_matches(n, &checked).unwrap();
            let mut s = Store::<u8>::default();
            for i in 0..n {
                let k = alloc::format!("key{i:02}");
                s.push(hash_key(&hs, &k), &k, &"v".repeat(64), 1, true, 0, &hs)
                    .unwrap();
            }
            assert_eq!(s.large.is_some(), n > SCAN_KEYS as u32);
            log::take();
            s.warm_index();
            let tag_bytes = (s.tags.len() * 2).min(2 * LINE);
            let meta_bytes = (s.metas.len() * size_of::<Meta<u8>>()).min(8 * LINE);
            let mut want = log::covering(s.tags.as_ptr().addr(), tag_bytes);
            want.extend(log::covering(s.metas.as_ptr().addr(), meta_bytes));
            assert_eq!(log::take(), want);
            for i in checked {
                let k = alloc::format!("key{i:02}");
                s.warm_entry(hash_key(&hs, &k));
                let at = s.arena.as_ptr().addr() + s.metas[i as usize].off as usize;
                // The entry: two length bytes, the key, the value.
                let entry = log::covering(at, 2 + k.len() + 64);
                let hinted = log::take();
                assert!(entry.iter().all(|a| hinted.contains(a)), "key {k} of {n}");
                assert_eq!(hinted, log::covering(at, 2 * LINE));
            }
            s.warm_entry(hash_key(&hs, "absent"));
            let hinted = log::take();
            assert!(hinted.len() <= 3, "at most a tag's false match");
        }
    }

    /// The index hint asks for the tags' and the records' lines up to its
    /// caps, 2 lines of tags and 8 of records, in stores at and past them
    /// (64 and 200 keys: 128 and 400 bytes of tags, 1,024 and 3,200 of
    /// records). A hint from a line's start names as many lines for 66
    /// bytes as for 128, so each store used is one whose tags and records
    /// do not start a line (the ones that do are kept, so the allocator
    /// hands out other addresses).
    #[test]
    fn the_index_hint_stops_at_its_caps() {
        use crate::prefetch::{log, LINE};
        let hs = h();
        let mut skipped = Vec::new();
        for n in [64u32, 200] {
            let build = || {
                let mut s = Store::<u8>::default();
                for i in 0..n {
                    let k = alloc::format!("key{i:03}");
                    s.push(hash_key(&hs, &k), &k, "v", 1, true, 0, &hs).unwrap();
                }
                s
            };
            let skewed = |s: &Store<u8>| {
                s.tags.as_ptr().addr() % LINE != 0 && s.metas.as_ptr().addr() % LINE != 0
            };
            let mut s = build();
            for _ in 0..64 {
                if skewed(&s) {
                    break;
                }
                skipped.push(core::mem::replace(&mut s, build()));
            }
            assert!(skewed(&s), "no store of {n} keys off a line's start");
            log::take();
            s.warm_index();
            let mut want = log::covering(s.tags.as_ptr().addr(), 2 * LINE);
            want.extend(log::covering(s.metas.as_ptr().addr(), 8 * LINE));
            assert_eq!(log::take(), want, "{n} keys");
            // Off a line's start, the caps' bytes take one line more.
            assert_eq!(want.len(), 3 + 9);
        }
    }

    /// Only flagged entries of users are listed: an entry that is not
    /// flagged, or is the administrator's, is in no owner list, whether
    /// the lists are built from the records (past the threshold, after a
    /// compaction), the entry is pushed into a store that has them, or
    /// its owner or flag is set.
    #[test]
    fn only_flagged_entries_of_users_are_listed() {
        let hs = h();
        let mut s = Store::<u8>::default();
        // Key i: user 1, flagged when i is even; every fifth the admin's.
        let push = |s: &mut Store<u8>, i: u32| {
            let k = alloc::format!("k{i}");
            let owner = if i % 5 == 0 { ADMIN } else { 1 };
            s.push(hash_key(&hs, &k), &k, "v", owner, i % 2 == 0, 0, &hs)
                .unwrap()
        };
        let listed = |s: &Store<u8>| {
            let mut out = Vec::new();
            s.owned(1, u32::MAX, &mut out);
            out
        };
        let expected =
            |n: u32| -> Vec<u32> { (0..n).filter(|i| i % 2 == 0 && i % 5 != 0).collect() };
        for i in 0..33 {
            push(&mut s, i);
        }
        assert!(s.large.is_some(), "built from the records");
        assert_eq!(listed(&s), expected(33));
        for i in 33..40 {
            push(&mut s, i);
        }
        assert_eq!(listed(&s), expected(40), "pushed into the lists");
        s.set_owner(2, 1, false);
        s.set_owner(4, ADMIN, true);
        s.set_owner(3, 1, true);
        let mut want: Vec<u32> = expected(40)
            .into_iter()
            .filter(|&p| p != 2 && p != 4)
            .collect();
        want.push(3);
        want.sort_unstable();
        assert_eq!(listed(&s), want, "owners and flags set");
        assert!(s.consistent(&hs, |_| true).is_ok());
        // Removals that compact the records rebuild the lists.
        for p in 5..40 {
            s.remove_at(p, &hs);
        }
        s.settle(&hs, &mut Scratch::default());
        assert_eq!(s.metas.len(), 5, "compacted");
        assert_eq!(listed(&s), [3], "rebuilt");
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// The owner lists' heads grow as the records do: doubling while
    /// small, then an eighth, and at once to a user numbered past them.
    #[test]
    fn list_heads_double_while_small_then_grow_by_an_eighth() {
        let mut large = Large {
            index: HashTable::new(),
            links: Vec::new(),
            heads: Box::default(),
        };
        let mut lens = Vec::new();
        for user in 0..200 {
            if large.heads.len() <= user {
                large.grow_heads(user);
                lens.push(large.heads.len());
            }
        }
        assert_eq!(lens, [4, 8, 16, 32, 64, 128, 144, 162, 182, 204]);
        large.grow_heads(1_000);
        assert_eq!(large.heads.len(), 1_001);
        assert!(large.heads.iter().all(|&h| h == NONE));
    }

    #[test]
    fn an_emptied_store_keeps_small_buffers_and_gives_large_ones_back() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let p = put(&mut s, &hs, "k", "v", 0);
        let small = s.heap_bytes();
        s.remove(hash_key(&hs, "k"), p);
        s.settle(&hs, &mut Scratch::default());
        assert_eq!(s.heap_bytes(), small, "kept for the next entry");
        assert!(s.consistent(&hs, |_| true).is_ok());
        // Buffers of exactly `KEEP_WHEN_EMPTY` bytes are kept too.
        let p = put(&mut s, &hs, "k", "v", 0);
        let rest = KEEP_WHEN_EMPTY - s.capacity_bytes();
        s.arena
            .reserve_exact(s.arena.capacity() - s.arena.len() + rest);
        assert_eq!(s.capacity_bytes(), KEEP_WHEN_EMPTY);
        s.remove(hash_key(&hs, "k"), p);
        s.settle(&hs, &mut Scratch::default());
        assert_eq!(s.heap_bytes(), KEEP_WHEN_EMPTY, "kept at the limit");
        let big = "x".repeat(KEEP_WHEN_EMPTY + 1);
        let p = put(&mut s, &hs, "k", &big, 0);
        s.remove(hash_key(&hs, "k"), p);
        s.settle(&hs, &mut Scratch::default());
        assert_eq!(s.heap_bytes(), 0, "large buffers go back");
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// An emptied store weighs its index and owner lists too when it
    /// decides whether to keep its buffers: 150 entries' records, tags and
    /// arena alone fit what an emptied store may keep, with the index and
    /// lists they do not, and every buffer goes back.
    #[test]
    fn an_emptied_store_counts_its_index_toward_what_it_keeps() {
        let hs = h();
        let mut s = Store::<u8>::default();
        for i in 0..150 {
            put(&mut s, &hs, &alloc::format!("k{i}"), "v", 0);
        }
        let base = s.metas.capacity() * core::mem::size_of::<Meta<u8>>()
            + s.arena.capacity()
            + s.tags.len() * 2;
        let large = s.large.as_deref().map_or(0, Large::heap_bytes);
        assert!(base <= KEEP_WHEN_EMPTY, "{base}");
        assert!(
            large >= 150 * 8 && base + large > KEEP_WHEN_EMPTY,
            "{large}"
        );
        for p in s.slots() {
            s.remove_at(p, &hs);
        }
        s.settle(&hs, &mut Scratch::default());
        assert_eq!(s.heap_bytes(), 0);
    }

    fn large_of(s: &mut Store<u8>) -> &mut Large {
        s.large.as_deref_mut().unwrap()
    }

    /// `json_plain` agrees with a byte-by-byte check for each ASCII byte
    /// alone at each place of strings of 0 to 33 bytes (whole 8-byte words,
    /// the tail, and both), among multi-byte chars whose bytes are all
    /// past `0x7f`. A word's borrow starts only at a byte that needs an
    /// escape, so no plain string is called otherwise.
    #[test]
    fn json_plain_finds_each_byte_that_needs_an_escape_wherever_it_is() {
        let needs = |s: &str| s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 0..=33 {
            for fill in ["a", "~", " ", "é", "😀", "!\u{7f}"] {
                let base: String = fill.repeat(len).chars().take(len).collect();
                assert!(json_plain(&base), "{base:?}");
                let chars: Vec<char> = base.chars().collect();
                for at in 0..=chars.len() {
                    for b in 0u8..0x80 {
                        let mut t: String = chars.get(..at).unwrap().iter().collect();
                        t.push(char::from(b));
                        t.extend(chars.get(at..).unwrap());
                        assert_eq!(json_plain(&t), !needs(&t), "{t:?}");
                    }
                }
            }
        }
    }

    /// The store keeps each entry's plain bit as it writes the text: on a
    /// push, and on each kind of overwrite (same length, shorter in place,
    /// longer moved to the end), also when the key is the part that needs
    /// an escape and the value changes; the owner and flag do not touch it.
    #[test]
    fn the_plain_bit_follows_every_write_of_the_text() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let plain = |s: &Store<u8>, pos: u32| s.meta(pos).unwrap().plain();
        let a = put(&mut s, &hs, "a", "plain", 0);
        let q = put(&mut s, &hs, "k\"", "plain", 0);
        let c = put(&mut s, &hs, "c", "tab\there", 1);
        assert_eq!(
            [plain(&s, a), plain(&s, q), plain(&s, c)],
            [true, false, false]
        );
        for (value, want) in [
            ("quote", true),
            ("quo\"e", false),
            ("quote", true),
            ("q", true),
            ("\\", false),
            (&*"long".repeat(40), true),
            (&*"long".repeat(40).replace('g', "\n"), false),
            ("", true),
        ] {
            s.set_value(a, value);
            assert_eq!((s.value(a), plain(&s, a)), (value, want));
            // The key needs an escape: never plain, whatever the value.
            s.set_value(q, value);
            assert!(!plain(&s, q), "{value:?}");
            assert!(s.consistent(&hs, |_| true).is_ok(), "{value:?}");
        }
        s.set_value(c, "fine");
        assert!(plain(&s, c));
        s.set_owner(c, 0, true);
        assert!(plain(&s, c), "a new owner keeps the bit");
        s.set_value(c, "\u{1}");
        s.set_owner(c, ADMIN, false);
        assert!(!plain(&s, c), "and keeps it unset");
        assert_eq!(
            s.meta(c).map(|m| (m.owner(), m.flagged())),
            Some((ADMIN, false))
        );
        assert!(s.consistent(&hs, |_| true).is_ok());
        s.metas.get_mut(q as usize).unwrap().who |= PLAIN;
        let wrong = Err("store record's plain bit disagrees with its text");
        assert_eq!(s.consistent(&hs, |_| true), wrong);
    }

    /// `consistent` is what `check_invariants` relies on for the stores:
    /// each kind of damage it claims to find, it finds (review, issue 9).
    #[test]
    fn consistent_reports_each_kind_of_damage() {
        let hs = h();
        // A scanning store (6 entries) and one with an index and owner
        // lists (40), owners alternating.
        let fresh = |n: u32| {
            let mut s = Store::<u8>::default();
            for i in 0..n {
                put(&mut s, &hs, &alloc::format!("k{i}"), "val", i % 2);
            }
            s
        };
        let damaged = |n: u32, f: &dyn Fn(&mut Store<u8>)| {
            let mut s = fresh(n);
            f(&mut s);
            s.consistent(&hs, |_| true)
        };
        for n in [6, 40] {
            assert!(fresh(n).consistent(&hs, |_| true).is_ok(), "{n}");
            assert_eq!(fresh(n).large.is_some(), n as usize > SCAN_KEYS);
            let dead = |s: &mut Store<u8>| s.metas.get_mut(5).unwrap().off = DEAD;
            assert!(damaged(n, &dead).is_err(), "live count {n}");
            assert!(damaged(n, &|s| s.live += 1).is_err(), "live count {n}");
            let wrong_tag = |s: &mut Store<u8>| *s.tags.get_mut(3).unwrap() ^= 1;
            assert!(damaged(n, &wrong_tag).is_err(), "a wrong tag {n}");
            assert!(damaged(n, &|s| s.garbage += 1).is_err(), "arena {n}");
            assert!(damaged(n, &|s| s.first = 1).is_err(), "first cursor {n}");
            let key_byte = |s: &mut Store<u8>| {
                let at = s.metas.get(2).unwrap().off as usize + 2;
                s.arena.replace_range(at..at + 1, "x");
            };
            assert!(damaged(n, &key_byte).is_err(), "key and index {n}");
            let long = |s: &mut Store<u8>| s.arena.replace_range(0..1, "\u{7f}");
            assert!(damaged(n, &long).is_err(), "a length past the arena {n}");
            if n == 6 {
                // The last record dead, the count agreeing: what `remove`
                // must not leave behind (it trims the tail as it forms).
                let dead_tail = |s: &mut Store<u8>| {
                    s.metas.last_mut().unwrap().off = DEAD;
                    s.live -= 1;
                };
                assert_eq!(
                    damaged(n, &dead_tail),
                    Err("store with live entries ends in a tombstone")
                );
            }
            let unplain = |s: &mut Store<u8>| s.metas.get_mut(4).unwrap().who &= !PLAIN;
            assert_eq!(
                damaged(n, &unplain),
                Err("store record's plain bit disagrees with its text"),
                "{n}"
            );
            assert!(
                fresh(n).consistent(&hs, |u| u == 0).is_err(),
                "owner without a user {n}"
            );
        }
        assert!(
            damaged(40, &|s| large_of(s).index.clear()).is_err(),
            "index count"
        );
        assert!(
            damaged(40, &|s| s.large = None).is_err(),
            "no index past the threshold"
        );
        assert!(
            damaged(40, &|s| large_of(s).links.get_mut(0).unwrap()[0] = 4).is_err(),
            "list links"
        );
        assert!(
            damaged(40, &|s| s.metas.get_mut(1).unwrap().who = 1).is_err(),
            "unflagged record in a list"
        );
        assert!(
            damaged(40, &|s| s.metas.get_mut(1).unwrap().who = FLAG).is_err(),
            "a record in another user's list"
        );
        assert!(
            damaged(40, &|s| *large_of(s).heads.get_mut(0).unwrap() = NONE).is_err(),
            "flagged record missing from its list"
        );
        assert!(
            damaged(40, &|s| {
                large_of(s).links.pop();
            })
            .is_err(),
            "links and records disagree"
        );
    }
}
