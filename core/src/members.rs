//! Per-room users: each user id is interned once per room as a small
//! number, which every owner field of the room's stores refers to.

use alloc::vec::Vec;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::command::Role;
use crate::store::{hash_key, ADMIN, NONE};
use crate::text::Str;
use crate::time::Millis;

/// One user's record in one room. It exists while the user is present,
/// has a role other than `Member`, or owns an attribute or queue element
/// (its number is in use); otherwise its number is freed.
#[derive(Default, Debug)]
pub(crate) struct UserRec {
    /// The user id; empty in a free record.
    pub(crate) name: Str,
    /// When the dropped connections expire; `Millis::ZERO` iff none
    /// dropped (a deadline always lies after some `now`, so never zero).
    pub(crate) grace_until: Millis,
    /// Connections that are up.
    pub(crate) live: u32,
    /// Connections that dropped and are inside their grace period.
    pub(crate) dropped: u32,
    /// Stored entries (attributes and queue elements) this user owns; in a
    /// free record, the next free number.
    pub(crate) refs: u32,
    pub(crate) role: Role,
}

impl UserRec {
    pub(crate) fn connections(&self) -> u32 {
        self.live.saturating_add(self.dropped)
    }

    pub(crate) fn is_present(&self) -> bool {
        self.connections() > 0
    }

    /// Nothing left worth keeping.
    pub(crate) fn is_idle(&self) -> bool {
        !self.is_present() && self.role == Role::Member && self.refs == 0
    }

    /// The grace deadline, if connections dropped.
    pub(crate) fn grace(&self) -> Option<Millis> {
        (self.grace_until != Millis::ZERO).then_some(self.grace_until)
    }
}

/// A room's users: records in a vector (freed numbers reused through an
/// intrusive free list) and a swiss table from id to number.
#[derive(Default)]
pub(crate) struct Users {
    recs: Vec<UserRec>,
    index: HashTable<u32>,
    free: Option<u32>,
}

impl Users {
    pub(crate) fn find(&self, hasher: &DefaultHashBuilder, name: &str) -> Option<u32> {
        let recs = &self.recs;
        self.index
            .find(hash_key(hasher, name), |&i| {
                recs.get(i as usize).is_some_and(|r| *r.name == *name)
            })
            .copied()
    }

    pub(crate) fn get(&self, n: u32) -> Option<&UserRec> {
        self.recs.get(n as usize).filter(|r| !r.name.is_empty())
    }

    pub(crate) fn get_mut(&mut self, n: u32) -> Option<&mut UserRec> {
        self.recs.get_mut(n as usize).filter(|r| !r.name.is_empty())
    }

    pub(crate) fn by_name(&self, hasher: &DefaultHashBuilder, name: &str) -> Option<&UserRec> {
        self.find(hasher, name).and_then(|n| self.get(n))
    }

    /// The user's number, a new record made if missing. `None` for an empty
    /// id (never stored: callers refuse it first) or when numbers run out.
    pub(crate) fn intern(&mut self, hasher: &DefaultHashBuilder, name: &Str) -> Option<u32> {
        self.intern_with(hasher, name, || name.clone())
    }

    /// [`Users::intern`] for a borrowed id (the record copies it if new).
    #[cfg(feature = "serde")] // used by snapshot restore only
    pub(crate) fn intern_str(&mut self, hasher: &DefaultHashBuilder, name: &str) -> Option<u32> {
        self.intern_with(hasher, name, || Str::from(name))
    }

    fn intern_with(
        &mut self,
        hasher: &DefaultHashBuilder,
        name: &str,
        owned: impl FnOnce() -> Str,
    ) -> Option<u32> {
        if name.is_empty() {
            return None;
        }
        if let Some(n) = self.find(hasher, name) {
            return Some(n);
        }
        let rec = UserRec {
            name: owned(),
            ..UserRec::default()
        };
        let n = match self.free {
            Some(n) => {
                let slot = self.recs.get_mut(n as usize)?;
                let next = slot.refs;
                *slot = rec;
                self.free = (next != NONE).then_some(next);
                n
            }
            None => {
                let n = u32::try_from(self.recs.len()).ok().filter(|&n| n < ADMIN)?;
                if self.recs.len() == self.recs.capacity() {
                    self.recs.reserve_exact((self.recs.len() / 4).max(2));
                }
                self.recs.push(rec);
                n
            }
        };
        let recs = &self.recs;
        self.index.insert_unique(hash_key(hasher, name), n, |&i| {
            recs.get(i as usize)
                .map_or(0, |r| hash_key(hasher, &r.name))
        });
        Some(n)
    }

    /// Frees the record if nothing in it is worth keeping.
    pub(crate) fn gc(&mut self, hasher: &DefaultHashBuilder, n: u32) {
        let Some(rec) = self.get(n).filter(|r| r.is_idle()) else {
            return;
        };
        let hash = hash_key(hasher, &rec.name);
        if let Ok(e) = self.index.find_entry(hash, |&i| i == n) {
            e.remove();
        }
        let next = self.free.unwrap_or(NONE);
        if let Some(slot) = self.recs.get_mut(n as usize) {
            *slot = UserRec {
                refs: next,
                ..UserRec::default()
            };
        }
        self.free = Some(n);
    }

    /// Live records with their numbers, in number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &UserRec)> + '_ {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.name.is_empty())
            .map(|(i, r)| (u32::try_from(i).unwrap_or(NONE), r))
    }

    /// Checks the index against the records (for `check_invariants`).
    pub(crate) fn consistent(&self, hasher: &DefaultHashBuilder) -> Result<(), &'static str> {
        let mut live = 0;
        for (n, rec) in self.iter() {
            live += 1;
            if self.find(hasher, &rec.name) != Some(n) {
                return Err("user index does not find a record");
            }
        }
        if live != self.index.len() {
            return Err("user index counts a record twice or a free one");
        }
        let mut free = 0;
        let mut at = self.free;
        while let Some(n) = at {
            let Some(slot) = self.recs.get(n as usize) else {
                return Err("user free list leaves the records");
            };
            if !slot.name.is_empty() {
                return Err("user free list names a live record");
            }
            free += 1;
            if free > self.recs.len() {
                return Err("user free list has a cycle");
            }
            at = (slot.refs != NONE).then_some(slot.refs);
        }
        if live + free != self.recs.len() {
            return Err("user records neither live nor free");
        }
        Ok(())
    }
}
