//! A room's locks (Agora Signaling locks, plus fencing tokens): storage.
//! The rules that change them live in `engine/locks.rs`.
//!
//! A room has at most `LockLimits::max_per_room` locks (32 for Agora), so
//! they live in one vector in creation order and are found by a scan: no
//! hashing, and the listing order is the storage order.

use alloc::vec::Vec;

use crate::text::Str;
use crate::time::Millis;

/// One lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lock {
    pub(crate) name: Str,
    /// How long the lock outlives its holder's last live connection.
    pub(crate) ttl_ms: u64,
    /// The holder, a user present in the room.
    pub(crate) holder: Option<Str>,
    /// The fencing token of the latest acquisition (0: never acquired).
    pub(crate) token: u64,
    /// When the lock expires: `Some` iff the holder is present with no live
    /// connection (all of them dropped, inside their grace period).
    pub(crate) deadline: Option<Millis>,
    /// Users waiting for it, first in line first; each present, none the
    /// holder, none twice; empty while the lock is free.
    pub(crate) waiters: Vec<Str>,
}

/// A room's locks, in creation order. They live in the room's boxed rare
/// parts (`room::Rare`), so a room without locks pays nothing for them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Locks {
    list: Vec<Lock>,
}

impl Locks {
    /// No locks (a constant, for the rooms without rare parts).
    pub(crate) const fn new() -> Locks {
        Locks { list: Vec::new() }
    }

    pub(crate) fn list(&self) -> &[Lock] {
        &self.list
    }

    pub(crate) fn list_mut(&mut self) -> &mut [Lock] {
        &mut self.list
    }

    pub(crate) fn push(&mut self, lock: Lock) {
        self.list.push(lock);
    }

    pub(crate) fn len(&self) -> usize {
        self.list().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Lock> {
        self.list().iter().find(|l| *l.name == *name)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Lock> {
        self.list_mut().iter_mut().find(|l| *l.name == *name)
    }

    /// Removes and returns the lock named `name`, keeping the others' order.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Lock> {
        let i = self.list.iter().position(|l| *l.name == *name)?;
        let lock = self.list.remove(i);
        if self.list.is_empty() {
            // The room drops its rare parts once they are all empty.
            self.list = Vec::new();
        }
        Some(lock)
    }

    /// Whether `user` holds any lock (exits and disconnects ask first, so
    /// a room without locks costs them one length check).
    pub(crate) fn holds_any(&self, user: &str) -> bool {
        self.list()
            .iter()
            .any(|l| l.holder.as_deref() == Some(user))
    }

    /// Whether `user` holds or waits for any lock.
    pub(crate) fn involves(&self, user: &str) -> bool {
        self.list()
            .iter()
            .any(|l| l.holder.as_deref() == Some(user) || l.waiters.iter().any(|w| **w == *user))
    }
}

impl Lock {
    pub(crate) fn new(name: Str, ttl_ms: u64) -> Lock {
        Lock {
            name,
            ttl_ms,
            holder: None,
            token: 0,
            deadline: None,
            waiters: Vec::new(),
        }
    }

    /// Makes `user` the holder with the next fencing token; returns it.
    pub(crate) fn grant(&mut self, user: Str) -> u64 {
        self.token = self.token.saturating_add(1);
        self.holder = Some(user);
        self.deadline = None;
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::{Lock, Locks};
    use alloc::vec;

    /// Exits and disconnects skip their scans of a room's locks when these
    /// say no, so they must say yes exactly for the holder (`holds_any`)
    /// and for the holder and the waiters (`involves`).
    #[test]
    fn only_the_holder_holds_and_only_holder_and_waiters_are_involved() {
        let mut locks = Locks::new();
        assert!(locks.is_empty());
        assert!(!locks.holds_any("ann") && !locks.involves("ann"));
        let mut held = Lock::new("a".into(), 10);
        held.holder = Some("ann".into());
        held.waiters = vec!["bob".into()];
        locks.push(held);
        locks.push(Lock::new("free".into(), 10));
        assert!(!locks.is_empty());
        assert!(locks.holds_any("ann"));
        assert!(!locks.holds_any("bob"), "a waiter holds nothing");
        assert!(!locks.holds_any("cy"));
        assert!(locks.involves("ann"));
        assert!(locks.involves("bob"));
        assert!(!locks.involves("cy"));
        assert!(locks.remove("a").is_some());
        assert!(!locks.holds_any("ann") && !locks.involves("bob"));
        assert!(locks.remove("free").is_some());
        assert!(locks.is_empty());
    }
}
