//! Compact entry storage: the attributes of a room, and its queue.
//!
//! Layout, per room and per kind of entry:
//! - `metas`: one fixed-size record per entry, in listing (or queue)
//!   order. A removal leaves a tombstone; the order of the live records is
//!   the listing order, so no sort is ever needed.
//! - `bytes`: an arena holding each live entry's key then value, exactly
//!   sized. An overwrite whose value fits the old one's bytes writes in
//!   place; a longer one moves the record to the end of the arena. The
//!   bytes no live entry uses are counted as garbage.
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

/// One entry's fixed-size record. `X` is what the kind adds (revision and
/// time for attributes, nothing for queue elements).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta<X> {
    /// Arena offset of the key; the value follows it. `DEAD`: tombstone.
    off: u32,
    key_len: u32,
    val_len: u32,
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

    pub(crate) fn value_len(&self) -> u32 {
        self.val_len
    }
}

/// The store's hash of a key. Every store in a room hashes with the room's
/// hasher, so a key hashed once serves every lookup of one operation.
pub(crate) fn hash_key(hasher: &DefaultHashBuilder, key: &str) -> u64 {
    hasher.hash_one(key.as_bytes())
}

pub(crate) struct Store<X> {
    metas: Vec<Meta<X>>,
    bytes: Vec<u8>,
    index: HashTable<u32>,
    /// Owner index heads, by interned user number.
    heads: Vec<u32>,
    live: u32,
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
            heads: Vec::new(),
            live: 0,
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
        self.live as usize
    }

    /// Position of `key`, whose hash is `hash`.
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
        text(key_of(&self.metas, &self.bytes, pos))
    }

    /// The value at `pos` ("" for a tombstone or a bad position).
    pub(crate) fn value(&self, pos: u32) -> &str {
        let v = self.meta(pos).and_then(|m| {
            let start = m.off as usize + m.key_len as usize;
            self.bytes.get(start..start + m.val_len as usize)
        });
        text(v)
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
            key_len: u32::try_from(key.len()).ok()?,
            val_len: u32::try_from(value.len()).ok()?,
            who: who(owner, flagged),
            prev: NONE,
            next: NONE,
            x,
        });
        let (metas, bytes) = (&self.metas, &self.bytes);
        self.index.insert_unique(hash, pos, |&i| {
            hash_key(hasher, text(key_of(metas, bytes, i)))
        });
        self.live += 1;
        if flagged && owner != ADMIN {
            self.link(pos);
        }
        Some(pos)
    }

    /// Writes `key` and `value` at the end of the arena; returns the offset.
    fn append_bytes(&mut self, key: &str, value: &str) -> Option<u32> {
        let end = self.bytes.len().checked_add(key.len() + value.len())?;
        u32::try_from(end).ok()?;
        let need = key.len() + value.len();
        let off = u32::try_from(self.bytes.len()).ok()?;
        grow(&mut self.bytes, need);
        self.bytes.extend_from_slice(key.as_bytes());
        self.bytes.extend_from_slice(value.as_bytes());
        Some(off)
    }

    /// Replaces the value at `pos`: in place when it fits the old value's
    /// bytes, else the record moves to the end of the arena.
    pub(crate) fn set_value(&mut self, pos: u32, value: &str) {
        let Some(m) = self.meta(pos).copied() else {
            return;
        };
        let new_len = value.len() as u32;
        if value.len() <= m.val_len as usize {
            let start = m.off as usize + m.key_len as usize;
            if let Some(dst) = self.bytes.get_mut(start..start + value.len()) {
                dst.copy_from_slice(value.as_bytes());
            }
            self.garbage += m.val_len - new_len;
            if let Some(m) = self.meta_mut(pos) {
                m.val_len = new_len;
            }
            return;
        }
        // The key moves with the value; copy it out of the arena first.
        let mut key = [0u8; 64];
        let key_len = m.key_len as usize;
        let off = if let Some(k) = key.get_mut(..key_len) {
            k.copy_from_slice(self.key(pos).as_bytes());
            let k = text(Some(k));
            self.append_bytes(k, value)
        } else {
            // Long keys: copy within the arena (rare; keys are short).
            let start = self.bytes.len();
            let key_range = m.off as usize..m.off as usize + key_len;
            grow(&mut self.bytes, key_len + value.len());
            self.bytes.extend_from_within(key_range);
            self.bytes.extend_from_slice(value.as_bytes());
            u32::try_from(start).ok()
        };
        let Some(off) = off else {
            return;
        };
        self.garbage += m.key_len + m.val_len;
        if let Some(m) = self.meta_mut(pos) {
            m.off = off;
            m.val_len = new_len;
        }
    }

    /// Sets the owner and flag at `pos`, moving it between owner lists.
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
    pub(crate) fn remove_at(&mut self, pos: u32, hasher: &DefaultHashBuilder) -> Option<Meta<X>> {
        let hash = hash_key(hasher, self.key(pos));
        self.remove(hash, pos)
    }

    /// Removes the entry at `pos` (whose key hashes to `hash`), leaving a
    /// tombstone. Returns its meta.
    pub(crate) fn remove(&mut self, hash: u64, pos: u32) -> Option<Meta<X>> {
        let m = *self.meta(pos)?;
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == pos) {
            entry.remove();
        }
        if m.indexed() {
            self.unlink(pos);
        }
        if let Some(slot) = self.metas.get_mut(pos as usize) {
            slot.off = DEAD;
        }
        self.live -= 1;
        self.garbage += m.key_len + m.val_len;
        Some(m)
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
            let extra = owner + 1 - self.heads.len();
            grow(&mut self.heads, extra);
            self.heads.resize(owner + 1, NONE);
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
        let dead = self.metas.len() - self.live as usize;
        if self.live == 0 {
            if dead > 0 {
                self.empty();
            }
            return;
        }
        if dead >= MIN_DEAD_TO_COMPACT && dead > self.live as usize {
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
            let hash = hash_key(hasher, text(key_of(metas, bytes, pos)));
            self.index.insert_unique(hash, pos, |&i| {
                hash_key(hasher, text(key_of(metas, bytes, i)))
            });
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
            let len = m.key_len as usize + m.val_len as usize;
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
            + self.heads.capacity() * 4
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
        if live != self.live as usize || self.index.len() != live {
            return Err("store counts disagree with its records");
        }
        if self
            .metas
            .get(..self.first as usize)
            .is_some_and(|s| s.iter().any(Meta::live))
        {
            return Err("a live record before the store's first cursor");
        }
        let used: usize = self
            .metas
            .iter()
            .filter(|m| m.live())
            .map(|m| (m.key_len + m.val_len) as usize)
            .sum();
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
            + self.heads.capacity() * 4
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
            ("owner heads", self.heads.capacity() * 4),
        ]
    }
}

fn who(owner: u32, flagged: bool) -> u32 {
    (owner & !FLAG) | if flagged { FLAG } else { 0 }
}

fn key_of<'a, X>(metas: &[Meta<X>], bytes: &'a [u8], pos: u32) -> Option<&'a [u8]> {
    let m = metas.get(pos as usize).filter(|m| m.live())?;
    bytes.get(m.off as usize..m.off as usize + m.key_len as usize)
}

/// The arena only ever receives whole `&str`s, so every record slice is
/// UTF-8; the check is the price of `forbid(unsafe_code)` and is cheap on
/// short ASCII keys.
fn text(bytes: Option<&[u8]>) -> &str {
    bytes
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or_default()
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
        assert!(damaged(&|s| s.live += 1).is_err(), "live count");
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
            damaged(&|s| s.metas.get_mut(2).unwrap().key_len = 1).is_err(),
            "key and index disagree"
        );
        assert!(
            fresh().consistent(&hs, |n| n == 0).is_err(),
            "owner without a user"
        );
    }
}
