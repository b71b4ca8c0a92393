//! An insertion-ordered map: O(1) lookup, append, update in place and
//! removal, and iteration in insertion order without sorting.
//!
//! Entries live in a slot vector in insertion order; a removal leaves a
//! tombstone. A swiss table of slot indexes (hashing the key stored in the
//! slot, so each key is stored once) gives lookup. When tombstones outnumber
//! live entries the slots are compacted, which keeps every operation
//! amortized O(1) and iteration O(live). Both attribute maps and queues use
//! it: the queue's head is the first live slot, found from a cursor that
//! only moves forward between compactions.

use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Something stored under a string key.
pub(crate) trait Keyed {
    fn key(&self) -> &str;
}

/// Tombstones tolerated before a compaction is considered at all.
const MIN_TOMBSTONES_TO_COMPACT: usize = 32;

pub(crate) struct OrderedMap<V> {
    table: HashTable<u32>,
    slots: Vec<Option<V>>,
    live: usize,
    /// No live slot before this index.
    head: usize,
    hasher: DefaultHashBuilder,
}

impl<V: Keyed> OrderedMap<V> {
    pub(crate) fn new() -> Self {
        OrderedMap {
            table: HashTable::new(),
            slots: Vec::new(),
            live: 0,
            head: 0,
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Reserves room for `n` more entries.
    #[cfg(feature = "serde")]
    pub(crate) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table.reserve(n, |&i| match slots.get(i as usize) {
            Some(Some(v)) => hasher.hash_one(v.key()),
            _ => 0,
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Slot index of `key`.
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(
                self.hash(key),
                |&i| matches!(slots.get(i as usize), Some(Some(v)) if v.key() == key),
            )
            .map(|&i| i as usize)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        let i = self.position(key)?;
        self.slots.get(i)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.position(key)?;
        self.slots.get_mut(i)?.as_mut()
    }

    pub(crate) fn at_mut(&mut self, position: usize) -> Option<&mut V> {
        self.slots.get_mut(position)?.as_mut()
    }

    pub(crate) fn at(&self, position: usize) -> Option<&V> {
        self.slots.get(position)?.as_ref()
    }

    /// Appends `value`, whose key must not be present (callers look up first).
    pub(crate) fn push(&mut self, value: V) {
        let Ok(index) = u32::try_from(self.slots.len()) else {
            // More than u32::MAX slots cannot be reached under any profile
            // limit; refuse silently rather than corrupt the index.
            return;
        };
        let hash = self.hash(value.key());
        self.slots.push(Some(value));
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .insert_unique(hash, index, |&i| match slots.get(i as usize) {
                Some(Some(v)) => hasher.hash_one(v.key()),
                _ => 0,
            });
        self.live += 1;
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let hash = self.hash(key);
        let slots = &self.slots;
        let entry = self
            .table
            .find_entry(
                hash,
                |&i| matches!(slots.get(i as usize), Some(Some(v)) if v.key() == key),
            )
            .ok()?;
        let (index, _) = entry.remove();
        let value = self.slots.get_mut(index as usize)?.take();
        if value.is_some() {
            self.live -= 1;
            self.maybe_compact();
        }
        value
    }

    /// The first live entry (the queue's head).
    pub(crate) fn first(&mut self) -> Option<&V> {
        while matches!(self.slots.get(self.head), Some(None)) {
            self.head += 1;
        }
        self.slots.get(self.head)?.as_ref()
    }

    /// Live entries in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &V> + '_ {
        self.slots
            .get(self.head..)
            .unwrap_or_default()
            .iter()
            .filter_map(Option::as_ref)
    }

    /// Compacts when tombstones outnumber live entries: the O(n) rebuild is
    /// paid for by the n removals that made the tombstones.
    fn maybe_compact(&mut self) {
        let tombstones = self.slots.len() - self.live;
        if tombstones < MIN_TOMBSTONES_TO_COMPACT || tombstones <= self.live {
            return;
        }
        self.slots.retain(Option::is_some);
        self.head = 0;
        self.table.clear();
        let (slots, hasher) = (&self.slots, &self.hasher);
        for (i, v) in slots.iter().enumerate() {
            if let (Some(v), Ok(i)) = (v, u32::try_from(i)) {
                self.table.insert_unique(hasher.hash_one(v.key()), i, |&j| {
                    match slots.get(j as usize) {
                        Some(Some(v)) => hasher.hash_one(v.key()),
                        _ => 0,
                    }
                });
            }
        }
    }

    /// Checks the index against the slots (for `check_invariants`).
    pub(crate) fn consistent(&self) -> bool {
        let counted = self.slots.iter().filter(|s| s.is_some()).count();
        counted == self.live
            && self.table.len() == self.live
            && self
                .slots
                .get(..self.head)
                .unwrap_or_default()
                .iter()
                .all(Option::is_none)
            && self.iter().all(|v| {
                self.position(v.key())
                    .and_then(|i| self.at(i))
                    .is_some_and(|w| core::ptr::eq(w, v))
            })
    }
}
