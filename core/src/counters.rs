//! Counter storage (Tencent group counters): a room's integer counters,
//! kept sorted by key.
//!
//! A room has few counters (Tencent allows 20), so a sorted `Vec` is both
//! the compact choice and an O(log n) lookup; its order is the order every
//! read and every delete-all lists them in, whatever the hasher.

use alloc::vec::Vec;

use crate::text::Str;

/// One room's counters, sorted by key. Empty costs no allocation; they
/// live in the room's boxed rare parts (`room::Rare`), so a room that
/// never had a counter pays nothing for them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    entries: Vec<(Str, i64)>,
}

impl Counters {
    /// No counters (a constant, for the rooms without rare parts).
    pub(crate) const fn new() -> Counters {
        Counters {
            entries: Vec::new(),
        }
    }

    fn list(&self) -> &[(Str, i64)] {
        &self.entries
    }

    /// Whether there is no counter.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
        match self.find(&key) {
            Ok(i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    e.1 = value;
                }
            }
            Err(i) => self.entries.insert(i.min(self.entries.len()), (key, value)),
        }
    }

    /// Removes `key`; whether it existed.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let Ok(i) = self.find(key) else {
            return false;
        };
        if i < self.entries.len() {
            self.entries.remove(i);
        }
        if self.entries.is_empty() {
            // The room drops its rare parts once they are all empty.
            self.entries = Vec::new();
        }
        true
    }

    /// Removes every counter, handing back the keys in key order.
    pub(crate) fn take_all(&mut self) -> Vec<(Str, i64)> {
        core::mem::take(&mut self.entries)
    }

    /// Every counter, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Str, i64)> + '_ {
        self.list().iter().map(|(k, v)| (k, *v))
    }

    /// Appends a counter without keeping the order: a test's corruption.
    #[cfg(test)]
    pub(crate) fn push_unordered(&mut self, key: Str, value: i64) {
        self.entries.push((key, value));
    }

    /// Whether the keys are strictly ascending (the invariant).
    pub(crate) fn sorted(&self) -> bool {
        self.list().windows(2).all(|w| match w {
            [a, b] => a.0 < b.0,
            _ => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;
    use alloc::vec::Vec;

    fn of(keys: &[&str]) -> Counters {
        Counters {
            entries: keys.iter().map(|k| ((*k).into(), 0)).collect(),
        }
    }

    /// `sorted` is the invariant the checker relies on: keys strictly
    /// ascending, so a repeated key is as wrong as a swapped pair.
    #[test]
    fn sorted_means_strictly_ascending() {
        for ok in [&[][..], &["a"], &["a", "b"], &["a", "b", "c"], &["", "a"]] {
            assert!(of(ok).sorted(), "{ok:?}");
        }
        for bad in [
            &["b", "a"][..],
            &["a", "a"],
            &["a", "c", "b"],
            &["a", "b", "b"],
        ] {
            assert!(!of(bad).sorted(), "{bad:?}");
        }
    }

    /// `set` keeps the order whatever order keys come in; `remove` finds
    /// them again and the last one gives the buffer back.
    #[test]
    fn set_keeps_key_order_and_remove_finds_every_key() {
        let mut c = Counters::new();
        for (k, v) in [("m", 1), ("c", 2), ("x", 3), ("a", 4), ("m", 5)] {
            c.set(k.into(), v);
            assert!(c.sorted());
        }
        let all: Vec<(&str, i64)> = c.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(all, [("a", 4), ("c", 2), ("m", 5), ("x", 3)]);
        assert_eq!(c.get("m"), Some(5));
        assert_eq!(c.get("b"), None);
        assert!(!c.remove("b"));
        for k in ["x", "a", "m", "c"] {
            assert!(c.remove(k), "{k}");
            assert_eq!(c.get(k), None);
            assert!(c.sorted());
        }
        assert!(c.is_empty());
        assert_eq!(c.entries.capacity(), 0);
    }
}
