//! Compact entry storage: the attributes of a room, and its queue.
//!
//! Layout, per room and per kind of entry:
//! - `metas`: one fixed-size record per entry, in listing (or queue)
//!   order. A removal leaves a tombstone; the order of the live records is
//!   the listing order, so no sort is ever needed.
//! - `bytes`: an arena holding each live entry as the key's length, the
//!   key, the value's length, the value; lengths are LEB128 varints (one
//!   byte below 128), so a record costs its text plus two bytes where two
//!   `u32` lengths in every meta would cost eight. An overwrite whose value
//!   fits the old one's bytes writes in place (its length padded to the
//!   old length's width); a longer one moves the entry to the end of the
//!   arena. The bytes no live entry uses are counted as garbage.
//! - `index`: a swiss table of meta positions, hashed by key. Keys are
//!   stored once, in the arena; the caller hashes each key once per
//!   operation and passes the hash in.
//! - the owner index: every *flagged* entry (auto-delete attribute,
//!   transient element) of a user sits in a doubly-linked list through the
//!   metas (`prev`/`next`), headed by `heads[user]`. Link and unlink are
//!   O(1) and allocate nothing; an exit walks exactly what the user owns.
//!
//! Owners are interned user numbers ([`crate::members::Users`]), or
//! [`ADMIN`].
//!
//! Compaction: when tombstones outnumber live entries (and there are at
//! least [`MIN_DEAD_TO_COMPACT`]) the metas are squeezed in place, the
//! index rebuilt and the owner lists relinked; when garbage outweighs the
//! live bytes the arena is rebuilt. Both are O(n), paid for by the removals
//! that made the waste, and run only at the end of an operation
//! ([`Store::settle`]), so positions held during one command stay valid.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// "No entry" in a link, a head or a position.
pub(crate) const NONE: u32 = u32::MAX;
/// The owner number of [`crate::command::Actor::Admin`]. User numbers stay
/// below it (the top bit of `Meta::who` is the flag).
pub(crate) const ADMIN: u32 = FLAG - 1;
/// The flag bit of `Meta::who`.
const FLAG: u32 = 1 << 31;
/// `Meta::off` of a tombstone.
const DEAD: u32 = u32::MAX;
/// Tombstones tolerated before a compaction is considered at all.
const MIN_DEAD_TO_COMPACT: usize = 32;
/// Heap an emptied store keeps for reuse, at most (records, arena, index).
const KEEP_WHEN_EMPTY: usize = 4096;
/// Arena garbage tolerated before a rebuild is considered at all.
const MIN_GARBAGE_TO_COMPACT: usize = 256;

/// One entry's fixed-size record (16 bytes, and what `X` adds). `X` is
/// what the kind adds (revision and time for attributes, nothing for
/// queue elements). The lengths live in the arena, in front of the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta<X> {
    /// Arena offset of the entry (key length, key, value length, value).
    /// `DEAD`: tombstone.
    off: u32,
    /// Interned owner (or `ADMIN`) in the low bits; the top bit is the
    /// flag: auto-delete (attributes) or transient (elements).
    who: u32,
    prev: u32,
    next: u32,
    pub(crate) x: X,
}

impl<X> Meta<X> {
    fn live(&self) -> bool {
        self.off != DEAD
    }

    /// The interned owner, or `ADMIN`.
    pub(crate) fn owner(&self) -> u32 {
        self.who & !FLAG
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

/// Bytes of `n` as a varint.
fn varint_len(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// Writes `n` as a varint filling `dst` exactly: the low groups first,
/// every byte but the last with its continuation bit, padded with empty
/// groups when `dst` is wider than `n` needs (callers never make it
/// narrower).
#[inline]
fn write_varint(dst: &mut [u8], n: u32) {
    if let [b] = dst {
        // The common case: one byte, no continuation.
        *b = n as u8 & 0x7f;
        return;
    }
    let last = dst.len().saturating_sub(1);
    for (i, b) in dst.iter_mut().enumerate() {
        let group = n.checked_shr(7 * i as u32).unwrap_or(0) & 0x7f;
        *b = group as u8 | if i < last { 0x80 } else { 0 };
    }
}

/// Appends `n` as a varint of `width` bytes.
#[inline]
fn push_varint(out: &mut Vec<u8>, n: usize, width: usize) {
    if width == 1 {
        out.push(n as u8 & 0x7f);
        return;
    }
    let at = out.len();
    out.resize(at + width, 0);
    if let Some(dst) = out.get_mut(at..) {
        write_varint(dst, u32::try_from(n).unwrap_or(u32::MAX));
    }
}

/// The varint at `at`: its value and width.
#[inline]
fn read_varint(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    // Keys and most values are shorter than 128 bytes: one byte.
    match *bytes.get(at)? {
        b @ 0..=0x7f => Some((usize::from(b), 1)),
        _ => read_long_varint(bytes, at),
    }
}

#[cold]
fn read_long_varint(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut n = 0usize;
    for i in 0..5 {
        let b = *bytes.get(at + i)?;
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
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
fn key_range(bytes: &[u8], off: u32) -> Option<core::ops::Range<usize>> {
    let (len, width) = read_varint(bytes, off as usize)?;
    let start = off as usize + width;
    Some(start..start + len)
}

#[inline]
fn span(bytes: &[u8], off: u32) -> Option<Span> {
    let key = key_range(bytes, off)?;
    let (len, width) = read_varint(bytes, key.end)?;
    let start = key.end + width;
    Some(Span {
        value_len_at: key.end,
        value: start..start + len,
        key,
    })
}

/// The store's hash of a key. Every store in a room hashes with the room's
/// hasher, so a key hashed once serves every lookup of one operation.
pub(crate) fn hash_key(hasher: &DefaultHashBuilder, key: &str) -> u64 {
    hash_bytes(hasher, key.as_bytes())
}

/// [`hash_key`] of a key as the arena holds it: the store hashes and
/// compares its own keys as bytes, so only a key that leaves the store
/// pays the UTF-8 check of [`text`].
fn hash_bytes(hasher: &DefaultHashBuilder, key: &[u8]) -> u64 {
    hasher.hash_one(key)
}

/// The hash of the key at `pos` (0 for a tombstone or a bad position).
fn rehash<X>(hasher: &DefaultHashBuilder, metas: &[Meta<X>], bytes: &[u8], pos: u32) -> u64 {
    hash_bytes(hasher, key_of(metas, bytes, pos).unwrap_or_default())
}

pub(crate) struct Store<X> {
    metas: Vec<Meta<X>>,
    bytes: Vec<u8>,
    /// Positions of the live entries (so its length is the live count).
    index: HashTable<u32>,
    /// Owner index heads, by interned user number; `NONE` past the last
    /// owner. A boxed slice, 8 bytes less than a `Vec` in every store: its
    /// length is its capacity, grown by [`Store::link`] alone.
    heads: Box<[u32]>,
    /// No live meta before this position (the queue's head).
    first: u32,
    /// Arena bytes no live entry uses.
    garbage: u32,
}

impl<X: Copy> Default for Store<X> {
    fn default() -> Self {
        Store {
            metas: Vec::new(),
            bytes: Vec::new(),
            index: HashTable::new(),
            heads: Box::default(),
            first: 0,
            garbage: 0,
        }
    }
}

/// Below this many bytes a vector doubles; above, it grows by an eighth.
const DOUBLE_BELOW: usize = 512;

/// Grows `v` to hold `extra` more: by doubling while small (few reallocs
/// while a room fills), then by an eighth of its length at least, which
/// is still geometric (amortized O(1): each element is copied about eight
/// times over the vector's life, and never less than four more of
/// `extra`) but leaves far less slack than doubling,
/// which matters more here, in many rooms of moderate size.
fn grow<T>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() < extra {
        let len = v.len();
        let step = if len * core::mem::size_of::<T>() < DOUBLE_BELOW {
            len
        } else {
            len / 8
        };
        // Room for four more of the same at least, so that a vector just
        // past the doubling range does not grow one record at a time.
        v.reserve_exact(step.max(extra.saturating_mul(4)));
    }
}

impl<X: Copy> Store<X> {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Position of `key`, whose hash is `hash`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &str) -> Option<u32> {
        let (metas, bytes) = (&self.metas, &self.bytes);
        self.index
            .find(hash, |&i| key_of(metas, bytes, i) == Some(key.as_bytes()))
            .copied()
    }

    pub(crate) fn meta(&self, pos: u32) -> Option<&Meta<X>> {
        self.metas.get(pos as usize).filter(|m| m.live())
    }

    pub(crate) fn meta_mut(&mut self, pos: u32) -> Option<&mut Meta<X>> {
        self.metas.get_mut(pos as usize).filter(|m| m.live())
    }

    /// Whether the record at `pos` holds `key` (a byte comparison).
    pub(crate) fn key_is(&self, pos: u32, key: &str) -> bool {
        key_of(&self.metas, &self.bytes, pos) == Some(key.as_bytes())
    }

    /// The key at `pos` ("" for a tombstone or a bad position).
    pub(crate) fn key(&self, pos: u32) -> &str {
        let range = self.meta(pos).and_then(|m| key_range(&self.bytes, m.off));
        range.map_or("", |r| text_in(&self.bytes, r))
    }

    /// The value at `pos` ("" for a tombstone or a bad position).
    pub(crate) fn value(&self, pos: u32) -> &str {
        self.span(pos).map_or("", |s| text_in(&self.bytes, s.value))
    }

    /// The record at `pos` and its value's length in bytes.
    #[inline]
    pub(crate) fn entry(&self, pos: u32) -> Option<(&Meta<X>, u32)> {
        let m = self.meta(pos)?;
        let s = span(&self.bytes, m.off)?;
        Some((m, u32::try_from(s.value.len()).unwrap_or(u32::MAX)))
    }

    /// The value's length in bytes at `pos` (0 for a tombstone).
    pub(crate) fn value_len(&self, pos: u32) -> u32 {
        self.span(pos)
            .map_or(0, |s| u32::try_from(s.value.len()).unwrap_or(u32::MAX))
    }

    fn span(&self, pos: u32) -> Option<Span> {
        span(&self.bytes, self.meta(pos)?.off)
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
        self.metas.push(Meta {
            off,
            who: who(owner, flagged),
            prev: NONE,
            next: NONE,
            x,
        });
        let (metas, bytes) = (&self.metas, &self.bytes);
        self.index
            .insert_unique(hash, pos, |&i| rehash(hasher, metas, bytes, i));
        if flagged && owner != ADMIN {
            self.link(pos);
        }
        Some(pos)
    }

    /// Writes an entry of `key` and `value` at the end of the arena;
    /// returns its offset.
    fn append_bytes(&mut self, key: &str, value: &str) -> Option<u32> {
        let off = self.reserve_entry(key.len(), value.len())?;
        push_varint(&mut self.bytes, key.len(), varint_len(key.len()));
        self.bytes.extend_from_slice(key.as_bytes());
        push_varint(&mut self.bytes, value.len(), varint_len(value.len()));
        self.bytes.extend_from_slice(value.as_bytes());
        Some(off)
    }

    /// Makes room at the end of the arena for an entry of a key and a
    /// value of these lengths; returns its offset, or `None` if the arena
    /// would pass `u32::MAX` bytes.
    fn reserve_entry(&mut self, key_len: usize, value_len: usize) -> Option<u32> {
        let need = varint_len(key_len)
            .checked_add(key_len)?
            .checked_add(varint_len(value_len))?
            .checked_add(value_len)?;
        let end = self.bytes.len().checked_add(need)?;
        u32::try_from(end).ok().filter(|&e| e != DEAD)?;
        let off = u32::try_from(self.bytes.len()).ok()?;
        grow(&mut self.bytes, need);
        Some(off)
    }

    /// Replaces the value at `pos`: in place when it fits the old value's
    /// bytes, else the record moves to the end of the arena. Returns the
    /// old value's length (0 for a tombstone).
    pub(crate) fn set_value(&mut self, pos: u32, value: &str) -> u32 {
        let Some((off, s)) = self
            .meta(pos)
            .and_then(|m| Some((m.off, span(&self.bytes, m.off)?)))
        else {
            return 0;
        };
        let old = u32::try_from(s.value.len()).unwrap_or(u32::MAX);
        let old_len = s.value.len();
        if value.len() <= old_len {
            // In place: the new length (if it changed), padded to the old
            // one's width.
            let end = s.value.start + value.len();
            if value.len() != old_len {
                if let Some(dst) = self.bytes.get_mut(s.value_len_at..s.value.start) {
                    write_varint(dst, u32::try_from(value.len()).unwrap_or(0));
                }
            }
            if let Some(dst) = self.bytes.get_mut(s.value.start..end) {
                dst.copy_from_slice(value.as_bytes());
            }
            self.garbage += (old_len - value.len()) as u32;
            return old;
        }
        // The key moves with the value: copied within the arena.
        let key_len = s.key.len();
        let Some(new_off) = self.reserve_entry(key_len, value.len()) else {
            return old;
        };
        push_varint(&mut self.bytes, key_len, varint_len(key_len));
        self.bytes.extend_from_within(s.key.clone());
        push_varint(&mut self.bytes, value.len(), varint_len(value.len()));
        self.bytes.extend_from_slice(value.as_bytes());
        self.garbage += s.size(off) as u32;
        if let Some(m) = self.meta_mut(pos) {
            m.off = new_off;
        }
        old
    }

    /// Sets the owner and flag at `pos`, moving it between owner lists.
    #[inline]
    pub(crate) fn set_owner(&mut self, pos: u32, owner: u32, flagged: bool) {
        let Some(m) = self.meta(pos) else {
            return;
        };
        if m.who == who(owner, flagged) {
            return;
        }
        if m.indexed() {
            self.unlink(pos);
        }
        if let Some(m) = self.meta_mut(pos) {
            m.who = who(owner, flagged);
        }
        if flagged && owner != ADMIN {
            self.link(pos);
        }
    }

    /// Removes the entry at `pos`, hashing its key; see [`Store::remove`].
    pub(crate) fn remove_at(
        &mut self,
        pos: u32,
        hasher: &DefaultHashBuilder,
    ) -> Option<(Meta<X>, u32)> {
        let hash = rehash(hasher, &self.metas, &self.bytes, pos);
        self.remove(hash, pos)
    }

    /// Removes the entry at `pos` (whose key hashes to `hash`), leaving a
    /// tombstone. Returns its meta and its value's length.
    pub(crate) fn remove(&mut self, hash: u64, pos: u32) -> Option<(Meta<X>, u32)> {
        let m = *self.meta(pos)?;
        let (size, value_len) = span(&self.bytes, m.off).map_or((0, 0), |s| {
            let len = u32::try_from(s.value.len()).unwrap_or(u32::MAX);
            (s.size(m.off), len)
        });
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == pos) {
            entry.remove();
        }
        if m.indexed() {
            self.unlink(pos);
        }
        if let Some(slot) = self.metas.get_mut(pos as usize) {
            slot.off = DEAD;
        }
        self.garbage += size as u32;
        Some((m, value_len))
    }

    /// Positions of `user`'s flagged entries, in order, into `out`
    /// (cleared first).
    pub(crate) fn owned(&self, user: u32, out: &mut Vec<u32>) {
        out.clear();
        let mut at = self.heads.get(user as usize).copied().unwrap_or(NONE);
        while let Some(m) = self.meta(at) {
            out.push(at);
            at = m.next;
        }
        out.sort_unstable();
    }

    fn link(&mut self, pos: u32) {
        let Some(owner) = self.meta(pos).map(|m| m.owner() as usize) else {
            return;
        };
        if self.heads.len() <= owner {
            self.grow_heads(owner);
        }
        let head = self.heads.get(owner).copied().unwrap_or(NONE);
        if let Some(h) = self.metas.get_mut(head as usize) {
            h.prev = pos;
        }
        if let Some(m) = self.metas.get_mut(pos as usize) {
            m.prev = NONE;
            m.next = head;
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

    fn unlink(&mut self, pos: u32) {
        let Some(&Meta {
            prev, next, who, ..
        }) = self.metas.get(pos as usize)
        else {
            return;
        };
        let owner = who & !FLAG;
        match self.metas.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(h) = self.heads.get_mut(owner as usize) {
                    *h = next;
                }
            }
        }
        if let Some(n) = self.metas.get_mut(next as usize) {
            n.prev = prev;
        }
        if let Some(m) = self.metas.get_mut(pos as usize) {
            m.prev = NONE;
            m.next = NONE;
        }
    }

    /// Compacts what the removals of the operation just ended have wasted,
    /// when the waste outweighs what is live.
    /// `scratch` is reused working memory.
    #[inline]
    pub(crate) fn settle(&mut self, hasher: &DefaultHashBuilder, scratch: &mut Vec<u32>) {
        let live = self.len();
        let dead = self.metas.len() - live;
        if live == 0 {
            if dead > 0 {
                self.empty();
            }
            return;
        }
        if dead >= MIN_DEAD_TO_COMPACT && dead > live {
            self.compact_metas(hasher);
        }
        let garbage = self.garbage as usize;
        if garbage >= MIN_GARBAGE_TO_COMPACT && garbage > self.bytes.len() - garbage {
            self.compact_bytes(scratch);
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
        self.bytes.clear();
        self.index.clear();
        self.heads.iter_mut().for_each(|h| *h = NONE);
        self.first = 0;
        self.garbage = 0;
    }

    fn compact_metas(&mut self, hasher: &DefaultHashBuilder) {
        self.metas.retain(Meta::live);
        self.first = 0;
        self.index.clear();
        for h in &mut self.heads {
            *h = NONE;
        }
        // Relink back to front, so each list ends up in position order.
        for pos in (0..self.metas.len()).rev() {
            let Ok(pos) = u32::try_from(pos) else {
                continue;
            };
            if self.meta(pos).is_some_and(Meta::indexed) {
                self.link(pos);
            }
        }
        let (metas, bytes) = (&self.metas, &self.bytes);
        for pos in 0..metas.len() {
            let Ok(pos) = u32::try_from(pos) else {
                continue;
            };
            let hash = rehash(hasher, metas, bytes, pos);
            self.index
                .insert_unique(hash, pos, |&i| rehash(hasher, metas, bytes, i));
        }
    }

    /// Squeezes the garbage out of the arena, in place: the live records
    /// move down in arena order (each only ever towards the start), so the
    /// buffer is kept and nothing is allocated. `scratch` holds the order.
    fn compact_bytes(&mut self, scratch: &mut Vec<u32>) {
        scratch.clear();
        scratch.extend(self.positions());
        let metas = &self.metas;
        scratch.sort_unstable_by_key(|&p| metas.get(p as usize).map_or(0, |m| m.off));
        let mut to = 0usize;
        for &pos in scratch.iter() {
            let Some(m) = self.metas.get_mut(pos as usize) else {
                continue;
            };
            let from = m.off as usize;
            let len = span(&self.bytes, m.off).map_or(0, |s| s.size(m.off));
            self.bytes.copy_within(from..from + len, to);
            m.off = u32::try_from(to).unwrap_or(DEAD);
            to += len;
        }
        self.bytes.truncate(to);
        self.garbage = 0;
    }

    /// Heap bytes the store holds (capacities), for the keep-or-free
    /// decision of an emptied store.
    fn capacity_bytes(&self) -> usize {
        self.metas.capacity() * core::mem::size_of::<Meta<X>>()
            + self.bytes.capacity()
            + self.index.capacity() * 5
            + self.heads.len() * 4
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
        if self.index.len() != live {
            return Err("store counts disagree with its records");
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
            let Some(s) = span(&self.bytes, m.off).filter(|s| s.value.end <= self.bytes.len())
            else {
                return Err("store record lies outside its arena");
            };
            used += s.size(m.off);
        }
        if used + self.garbage as usize != self.bytes.len() {
            return Err("store arena bytes do not add up");
        }
        let mut linked = 0usize;
        for (user, &head) in self.heads.iter().enumerate() {
            let mut prev = NONE;
            let mut at = head;
            while at != NONE {
                let Some(m) = self.meta(at) else {
                    return Err("owner list names a dead record");
                };
                if m.prev != prev || !m.indexed() || m.owner() as usize != user {
                    return Err("owner list links or owners are wrong");
                }
                linked += 1;
                if linked > live {
                    return Err("owner list has a cycle");
                }
                prev = at;
                at = m.next;
            }
        }
        for pos in self.positions() {
            let key = self.key(pos);
            if self.find(hash_key(hasher, key), key) != Some(pos) {
                return Err("store index does not find a record");
            }
            let Some(m) = self.meta(pos) else {
                return Err("store position without a record");
            };
            if m.owner() != ADMIN && !owner_ok(m.owner()) {
                return Err("record owned by no user");
            }
        }
        let indexed = self
            .metas
            .iter()
            .filter(|m| m.live() && m.indexed())
            .count();
        if indexed != linked {
            return Err("flagged record missing from its owner's list");
        }
        Ok(())
    }

    /// Heap bytes held (capacity, not length), for memory accounting.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.metas.capacity() * core::mem::size_of::<Meta<X>>()
            + self.bytes.capacity()
            + self.heads.len() * 4
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
            ("arena", self.bytes.len()),
            ("arena slack", self.bytes.capacity() - self.bytes.len()),
            ("index", self.index.allocation_size()),
            ("owner heads", self.heads.len() * 4),
        ]
    }
}

fn who(owner: u32, flagged: bool) -> u32 {
    (owner & !FLAG) | if flagged { FLAG } else { 0 }
}

#[inline]
fn key_of<'a, X>(metas: &[Meta<X>], bytes: &'a [u8], pos: u32) -> Option<&'a [u8]> {
    let m = metas.get(pos as usize).filter(|m| m.live())?;
    bytes.get(key_range(bytes, m.off)?)
}

/// The arena only ever receives whole `&str`s, so every record slice is
/// UTF-8; the check is the price of `forbid(unsafe_code)` and is cheap on
/// short ASCII keys.
fn text(bytes: Option<&[u8]>) -> &str {
    bytes
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or_default()
}

/// The text at `range` of the arena ("" if out of it).
///
/// `from_utf8` runs its word-at-a-time ASCII path only from an 8-byte
/// aligned address, and entries start wherever the one before ended (after
/// a one-byte length): checked from its own first byte, a 64-byte value
/// costs about 1.7 times what it does aligned. So the check starts at the
/// aligned address before the text, taking in the few bytes in front of it
/// (a length, the end of a key or of the entry before: nearly always
/// ASCII), and the text is then sliced out of the checked `str` (an O(1)
/// boundary check). When those bytes are not valid UTF-8 on their own (a
/// long length's continuation bytes, a value cut short in place), the text
/// is checked alone. (Widening the window forward as well, to a whole
/// number of the 16-byte steps, measured slower.)
#[inline]
fn text_in(bytes: &[u8], range: core::ops::Range<usize>) -> &str {
    let Some(exact) = bytes.get(range.clone()) else {
        return "";
    };
    // Bytes back to the previous 8-byte boundary (0 when aligned).
    let back = (8 - exact.as_ptr().align_offset(8) % 8) % 8;
    if back > 0 && back <= range.start {
        let wide = bytes
            .get(range.start - back..range.end)
            .and_then(|w| core::str::from_utf8(w).ok())
            .and_then(|w| w.get(back..));
        if let Some(s) = wide {
            return s;
        }
    }
    text(Some(exact))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h() -> DefaultHashBuilder {
        DefaultHashBuilder::default()
    }

    fn put(s: &mut Store<u8>, hs: &DefaultHashBuilder, k: &str, v: &str, owner: u32) -> u32 {
        s.push(hash_key(hs, k), k, v, owner, true, 0, hs).unwrap()
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

    /// Lengths live in the arena as varints: a shorter value written in
    /// place keeps its length's width (padded), a longer one moves, and
    /// keys and values of every width read back whole, before and after
    /// the arena is compacted.
    #[test]
    fn varint_lengths_of_every_width_survive_overwrites_and_compaction() {
        for (w, n) in [(1, 0usize), (1, 127), (2, 128), (2, 16_383), (3, 16_384)] {
            let mut buf = Vec::new();
            push_varint(&mut buf, n, varint_len(n));
            assert_eq!((buf.len(), read_varint(&buf, 0)), (w, Some((n, w))));
        }
        let mut padded = [0u8; 3];
        write_varint(&mut padded, 5);
        assert_eq!(read_varint(&padded, 0), Some((5, 3)), "padded");

        let hs = h();
        let mut s = Store::<u8>::default();
        let long_key = "k".repeat(300);
        let a = put(&mut s, &hs, &long_key, &"v".repeat(200), 0);
        let b = put(&mut s, &hs, "b", "", 1);
        s.set_value(a, "short");
        assert_eq!(
            (s.key(a), s.value(a), s.value_len(a)),
            (&*long_key, "short", 5)
        );
        s.set_value(b, &"w".repeat(20_000));
        s.set_value(a, &"x".repeat(1_000));
        assert_eq!(s.value(a), "x".repeat(1_000));
        assert_eq!(s.value(b), "w".repeat(20_000));
        assert!(s.consistent(&hs, |_| true).is_ok());
        assert!(s.garbage > 0, "the moves left garbage");
        s.compact_bytes(&mut Vec::new());
        assert_eq!(s.garbage, 0);
        assert_eq!(s.bytes.len(), 2 + 300 + 2 + 1_000 + 1 + 1 + 3 + 20_000);
        assert_eq!(s.find(hash_key(&hs, &long_key), &long_key), Some(a));
        assert_eq!((s.key(b), s.value_len(b)), ("b", 20_000));
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// `text_in` widens its check back to an aligned address; it returns
    /// the range's text whatever stands in front of it: ASCII, a lone
    /// continuation byte (a value cut short in place), a lead byte without
    /// its continuation, or nothing; at every alignment.
    #[test]
    fn text_in_returns_the_range_whatever_precedes_it() {
        let text = "héllo, wörld";
        for pad in 0..17 {
            for before in [&b"ab"[..], &[0xA9], &[0xC3], &[0xA9, b'a'], b""] {
                let mut v = alloc::vec![b'x'; pad];
                v.extend_from_slice(before);
                let start = v.len();
                v.extend_from_slice(text.as_bytes());
                v.extend_from_slice(&[0xC3]);
                assert_eq!(
                    text_in(&v, start..start + text.len()),
                    text,
                    "{pad} {before:?}"
                );
            }
        }
        assert_eq!(text_in(b"abc", 1..9), "", "out of the arena");
    }

    #[test]
    fn owner_lists_survive_removals_and_compaction() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let mut keys = Vec::new();
        for i in 0..200u32 {
            let k = alloc::format!("k{i}");
            put(&mut s, &hs, &k, "v", i % 3);
            keys.push(k);
        }
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 4 != 0) {
            let pos = s.find(hash_key(&hs, k), k).unwrap();
            assert!(s.remove(hash_key(&hs, k), pos).is_some(), "{i}");
        }
        s.settle(&hs, &mut Vec::new());
        assert!(s.consistent(&hs, |_| true).is_ok());
        let mut out = Vec::new();
        s.owned(0, &mut out);
        let owned: Vec<&str> = out.iter().map(|&p| s.key(p)).collect();
        // Keys k0, k12, k24, ... (i % 4 == 0 and i % 3 == 0), in order.
        let expected: Vec<String> = (0..200)
            .filter(|i| i % 12 == 0)
            .map(|i| alloc::format!("k{i}"))
            .collect();
        assert_eq!(owned, expected);
    }

    #[test]
    fn an_emptied_store_keeps_small_buffers_and_gives_large_ones_back() {
        let hs = h();
        let mut s = Store::<u8>::default();
        let p = put(&mut s, &hs, "k", "v", 0);
        let small = s.heap_bytes();
        s.remove(hash_key(&hs, "k"), p);
        s.settle(&hs, &mut Vec::new());
        assert_eq!(s.heap_bytes(), small, "kept for the next entry");
        assert!(s.consistent(&hs, |_| true).is_ok());
        let big = "x".repeat(KEEP_WHEN_EMPTY + 1);
        let p = put(&mut s, &hs, "k", &big, 0);
        s.remove(hash_key(&hs, "k"), p);
        s.settle(&hs, &mut Vec::new());
        assert_eq!(s.heap_bytes(), 0, "large buffers go back");
        assert!(s.consistent(&hs, |_| true).is_ok());
    }

    /// `consistent` is what `check_invariants` relies on for the stores:
    /// each kind of damage it claims to find, it finds (review, issue 9).
    #[test]
    fn consistent_reports_each_kind_of_damage() {
        let hs = h();
        let fresh = || {
            let mut s = Store::<u8>::default();
            for i in 0..6u32 {
                put(&mut s, &hs, &alloc::format!("k{i}"), "val", i % 2);
            }
            s
        };
        let damaged = |f: &dyn Fn(&mut Store<u8>)| {
            let mut s = fresh();
            f(&mut s);
            s.consistent(&hs, |_| true)
        };
        assert!(fresh().consistent(&hs, |_| true).is_ok());
        assert!(
            damaged(&|s| s.metas.get_mut(5).unwrap().off = DEAD).is_err(),
            "live count"
        );
        assert!(damaged(&|s| s.index.clear()).is_err(), "index count");
        assert!(damaged(&|s| s.garbage += 1).is_err(), "arena bytes");
        assert!(damaged(&|s| s.first = 1).is_err(), "first cursor");
        assert!(
            damaged(&|s| s.metas.get_mut(0).unwrap().prev = 4).is_err(),
            "list links"
        );
        assert!(
            damaged(&|s| s.metas.get_mut(1).unwrap().who = 1).is_err(),
            "unflagged record in a list"
        );
        assert!(
            damaged(&|s| *s.heads.get_mut(0).unwrap() = NONE).is_err(),
            "flagged record missing from its list"
        );
        assert!(
            damaged(&|s| {
                let at = s.metas.get(2).unwrap().off as usize + 2;
                *s.bytes.get_mut(at).unwrap() = b'x';
            })
            .is_err(),
            "key and index disagree"
        );
        assert!(
            damaged(&|s| *s.bytes.get_mut(0).unwrap() = 0x7f).is_err(),
            "a length past the arena"
        );
        assert!(
            fresh().consistent(&hs, |n| n == 0).is_err(),
            "owner without a user"
        );
    }
}
