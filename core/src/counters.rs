//! Counter storage (Tencent group counters): a room's integer counters,
//! kept sorted by key.
//!
//! A room has few counters (Tencent allows 20), so a sorted `Vec` is both
//! the compact choice and an O(log n) lookup; its order is the order every
//! read and every delete-all lists them in, whatever the hasher.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::text::Str;

/// One room's counters, sorted by key. Empty costs no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// `None` while the room has no counter (most rooms never have one:
    /// 8 bytes in the room instead of a `Vec`'s 24, for one more
    /// allocation in the rooms that have counters).
    #[allow(clippy::box_collection)]
    entries: Option<Box<Vec<(Str, i64)>>>,
}

impl Counters {
    /// Number of counters.
    fn list(&self) -> &[(Str, i64)] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn len(&self) -> usize {
        self.list().len()
    }

    /// The counter's value, `None` when it does not exist.
    pub(crate) fn get(&self, key: &str) -> Option<i64> {
        let i = self.find(key).ok()?;
        self.list().get(i).map(|(_, v)| *v)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.list().binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Sets `key` to `value`, creating it in key order if missing.
    pub(crate) fn set(&mut self, key: Str, value: i64) {
        let found = self.find(&key);
        let entries = self.entries.get_or_insert_with(Box::default);
        match found {
            Ok(i) => {
                if let Some(e) = entries.get_mut(i) {
                    e.1 = value;
                }
            }
            Err(i) => entries.insert(i.min(entries.len()), (key, value)),
        }
    }

    /// Removes `key`; whether it existed.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let (Ok(i), Some(entries)) = (self.find(key), self.entries.as_mut()) else {
            return false;
        };
        if i < entries.len() {
            entries.remove(i);
        }
        if entries.is_empty() {
            self.entries = None;
        }
        true
    }

    /// Removes every counter, handing back the keys in key order.
    pub(crate) fn take_all(&mut self) -> Vec<(Str, i64)> {
        self.entries.take().map(|b| *b).unwrap_or_default()
    }

    /// Every counter, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Str, i64)> + '_ {
        self.list().iter().map(|(k, v)| (k, *v))
    }

    /// Whether the keys are strictly ascending (the invariant).
    pub(crate) fn sorted(&self) -> bool {
        self.list().windows(2).all(|w| match w {
            [a, b] => a.0 < b.0,
            _ => true,
        })
    }
}
