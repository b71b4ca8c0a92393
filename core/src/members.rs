//! Per-room users: each user id is interned once per room as a small
//! number, which every owner field of the room's stores refers to.

use alloc::boxed::Box;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::command::Role;
use crate::store::{hash_key, json_plain, ADMIN, NONE};
use crate::text::Str;

/// One user's record in one room. It exists while the user is present,
/// has a role other than `Member`, or owns an attribute or queue element
/// (its number is in use); otherwise its number is freed.
#[derive(Default, Debug)]
pub(crate) struct UserRec {
    /// The user id; empty in a free record.
    pub(crate) name: Str,
    /// Connections that are up.
    pub(crate) live: u32,
    /// Connections that dropped and are inside their grace period; their
    /// deadline is the room's (`Room::grace`), kept apart because few
    /// users have one at any time.
    pub(crate) dropped: u32,
    /// Stored entries (attributes and queue elements) this user owns; in a
    /// free record, the next free number.
    pub(crate) refs: u32,
    pub(crate) role: Role,
    /// The top bits of the id's hash, so that a scan ([`SCAN_USERS`])
    /// compares ids only where these agree. It fills padding: the record
    /// stays 40 bytes.
    tag: u16,
    /// The id is [`json_plain`]: found once, when the record is made, so
    /// that a reply copies the owner of each attribute without a scan. It
    /// fills padding too.
    pub(crate) plain: bool,
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
}

/// Up to this many records (live or free), a room finds a user by
/// comparing ids along its records, and keeps no index: most rooms hold a
/// few users, and their index would cost 96 bytes at 8 users (16 buckets
/// of 4 bytes and 32 control bytes), an eighth of such a room. Comparing
/// eight short ids costs about what hashing one does. Past it, the swiss
/// table.
const SCAN_USERS: usize = 8;

/// The tag of an id whose hash is `hash`.
fn tag(hash: u64) -> u16 {
    (hash >> 48) as u16
}

/// A room's users: records in a boxed slice, every slot either a live
/// record or a free one on an intrusive free list (freed numbers first,
/// then the spare slots of the last growth, lowest first: the numbers a
/// vector with a free list would hand out), and, past [`SCAN_USERS`]
/// slots, a swiss table from id to number; 32 bytes.
///
/// A slice and a free list instead of a `Vec` and an `Option<u32>` head:
/// the spare capacity is on the free list, so no length is needed, and
/// the head is a plain `u32` ([`NONE`]: empty) that shares its word with
/// the creator's number.
pub(crate) struct Users {
    recs: Box<[UserRec]>,
    /// `Some` iff `recs` holds more than `SCAN_USERS` slots. Boxed: a room
    /// that scans pays 8 bytes for it, not 32.
    index: Option<Box<HashTable<u32>>>,
    /// The first free slot, [`NONE`] if every slot is live.
    free: u32,
    /// The room creator's number; its record always exists (role
    /// Creator). Here rather than in `Room` to fill this struct's padding.
    pub(crate) creator: u32,
}

impl Default for Users {
    fn default() -> Users {
        Users {
            recs: Box::default(),
            index: None,
            free: NONE,
            creator: 0,
        }
    }
}

impl Users {
    pub(crate) fn find(&self, hasher: &DefaultHashBuilder, name: &str) -> Option<u32> {
        let recs = &self.recs;
        let Some(index) = self.index.as_deref() else {
            // A free record's id is empty, and so never matches.
            if name.is_empty() {
                return None;
            }
            let tag = tag(hash_key(hasher, name));
            let n = recs.iter().position(|r| r.tag == tag && *r.name == *name)?;
            return u32::try_from(n).ok();
        };
        index
            .find(hash_key(hasher, name), |&i| {
                recs.get(i as usize).is_some_and(|r| *r.name == *name)
            })
            .copied()
    }

    /// Prefetch hint: the user records (their first lines).
    pub(crate) fn warm(&self) {
        let bytes = self.recs.len() * core::mem::size_of::<UserRec>();
        crate::prefetch::span(self.recs.as_ptr(), bytes, 8 * crate::prefetch::LINE);
    }

    #[inline]
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
        self.add(hasher, owned())
    }

    /// Adds a record for `name`, which has none. Out of line: the hot
    /// paths (an owner found, a member present) only ever find.
    #[inline(never)]
    fn add(&mut self, hasher: &DefaultHashBuilder, name: Str) -> Option<u32> {
        let hash = hash_key(hasher, &name);
        let rec = UserRec {
            plain: json_plain(&name),
            name,
            tag: tag(hash),
            ..UserRec::default()
        };
        if self.free == NONE {
            self.grow()?;
        }
        let n = self.free;
        let slot = self.recs.get_mut(n as usize)?;
        self.free = slot.refs;
        *slot = rec;
        let Users { recs, index, .. } = self;
        let rehash = |&i: &u32| {
            recs.get(i as usize)
                .map_or(0, |r| hash_key(hasher, &r.name))
        };
        match index {
            Some(index) => {
                index.insert_unique(hash, n, rehash);
            }
            None if recs.len() > SCAN_USERS => {
                // The record that ends the scanning: index them all.
                let mut table = Box::new(HashTable::with_capacity(recs.len()));
                for (i, r) in recs.iter().enumerate() {
                    if !r.name.is_empty() {
                        let i = u32::try_from(i).unwrap_or(NONE);
                        table.insert_unique(hash_key(hasher, &r.name), i, rehash);
                    }
                }
                *index = Some(table);
            }
            None => {}
        }
        Some(n)
    }

    /// Adds free slots (the free list is empty): room for exactly one at
    /// first (a room's creator is often its only record), then one more,
    /// then a quarter more but at least two (1, 2, 4, 6, 8, 10, 12, 15...
    /// slots). `None` when numbers run out.
    fn grow(&mut self) -> Option<()> {
        let len = self.recs.len();
        let first = u32::try_from(len).ok().filter(|&n| n < ADMIN)?;
        let wanted = if len < 2 { 1 } else { (len / 4).max(2) };
        let extra = wanted.min((ADMIN - first) as usize);
        let mut recs = core::mem::take(&mut self.recs).into_vec();
        recs.reserve_exact(extra);
        let last = first.saturating_add(u32::try_from(extra).ok()?);
        for n in first..last {
            let next = if n + 1 < last { n + 1 } else { NONE };
            recs.push(UserRec {
                refs: next,
                ..UserRec::default()
            });
        }
        self.recs = recs.into_boxed_slice();
        self.free = first;
        Some(())
    }

    /// Frees the record if nothing in it is worth keeping.
    pub(crate) fn gc(&mut self, hasher: &DefaultHashBuilder, n: u32) {
        let Some(rec) = self.get(n).filter(|r| r.is_idle()) else {
            return;
        };
        let hash = self.index.is_some().then(|| hash_key(hasher, &rec.name));
        if let (Some(index), Some(hash)) = (self.index.as_deref_mut(), hash) {
            if let Ok(e) = index.find_entry(hash, |&i| i == n) {
                e.remove();
            }
        }
        let next = self.free;
        if let Some(slot) = self.recs.get_mut(n as usize) {
            *slot = UserRec {
                refs: next,
                ..UserRec::default()
            };
        }
        self.free = n;
    }

    /// Live records with their numbers, in number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &UserRec)> + '_ {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.name.is_empty())
            .map(|(i, r)| (u32::try_from(i).unwrap_or(NONE), r))
    }

    /// Heap bytes by part, for the footprint accounting: records (used,
    /// slack), user ids stored out of line, index table.
    #[cfg(test)]
    pub(crate) fn heap_parts(&self) -> [(&'static str, usize); 4] {
        let rec = core::mem::size_of::<UserRec>();
        let long_names: usize = self
            .recs
            .iter()
            .filter(|r| r.name.len() > crate::text::INLINE)
            // An `Arc<str>`: two counters and the bytes.
            .map(|r| 16 + r.name.len())
            .sum();
        let live = self.iter().count();
        [
            ("user records", live * rec),
            ("user records slack", (self.recs.len() - live) * rec),
            ("user ids out of line", long_names),
            (
                "user index",
                self.index
                    .as_deref()
                    .map_or(0, |i| 32 + i.allocation_size()),
            ),
        ]
    }

    /// Checks the index against the records (for `check_invariants`).
    pub(crate) fn consistent(&self, hasher: &DefaultHashBuilder) -> Result<(), &'static str> {
        let mut live = 0;
        for (n, rec) in self.iter() {
            live += 1;
            if self.find(hasher, &rec.name) != Some(n) {
                return Err("user index does not find a record");
            }
            if rec.plain != json_plain(&rec.name) {
                return Err("user record's plain flag disagrees with its id");
            }
        }
        if self.index.is_some() != (self.recs.len() > SCAN_USERS) {
            return Err("user index kept below the scan threshold, or missing past it");
        }
        if self.index.as_deref().is_some_and(|i| i.len() != live) {
            return Err("user index counts a record twice or a free one");
        }
        let mut free = 0;
        let mut at = self.free;
        while at != NONE {
            let n = at;
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
            at = slot.refs;
        }
        if live + free != self.recs.len() {
            return Err("user records neither live nor free");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Records grow 1, 2, 4, 6, 8, 10, 12, 15...: a room holding only its
    /// creator holds one record, and a room of 8 users exactly 8.
    #[test]
    fn user_records_grow_from_one_and_land_on_eight() {
        let hs = DefaultHashBuilder::default();
        let mut users = Users::default();
        let mut caps = alloc::vec::Vec::new();
        for i in 0..15 {
            users.intern(&hs, &Str::from(alloc::format!("u{i}").as_str()));
            caps.push(users.recs.len());
        }
        assert_eq!(caps, [1, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 15, 15, 15]);
    }

    /// `consistent` (run by `check_invariants`) names each way the records,
    /// the index and the free list can disagree; without this, a checker
    /// that always passes passed every test (cargo mutants).
    #[test]
    fn consistent_names_each_broken_invariant() {
        let hs = DefaultHashBuilder::default();
        let build = |n: usize| {
            let mut users = Users::default();
            for i in 0..n {
                users.intern(&hs, &Str::from(alloc::format!("u{i}").as_str()));
            }
            users
        };
        // Three users: four slots, the last one free; twelve: indexed.
        let small = build(3);
        assert_eq!((small.recs.len(), small.free), (4, 3));
        assert_eq!(small.consistent(&hs), Ok(()));
        assert_eq!(build(12).consistent(&hs), Ok(()));
        assert_eq!(Users::default().consistent(&hs), Ok(()));
        // Exactly eight slots: still scanned, no index.
        let eight = build(8);
        assert_eq!((eight.recs.len(), eight.index.is_some()), (8, false));
        assert_eq!(eight.consistent(&hs), Ok(()));
        // Every slot free: a free list as long as the records is no cycle.
        let mut empty = build(2);
        empty.gc(&hs, 0);
        empty.gc(&hs, 1);
        assert_eq!((empty.recs.len(), empty.iter().count()), (2, 0));
        assert_eq!(empty.consistent(&hs), Ok(()));

        let mut u = build(12);
        // The hasher is seeded at random, and a lookup of the new id still
        // finds the record when its probe meets the old entry with the
        // same 7-bit control tag: one run in about 128 with 12 records in
        // one group. Such an id is not a broken index for `find`, so the
        // test takes the first id that the index really does not find.
        for i in 0.. {
            let name = Str::from(alloc::format!("renamed{i}").as_str());
            u.recs.get_mut(3).unwrap().name = name.clone();
            if u.find(&hs, &name).is_none() {
                break;
            }
        }
        assert_eq!(u.consistent(&hs), Err("user index does not find a record"));
        let threshold = Err("user index kept below the scan threshold, or missing past it");
        let u = Users {
            index: Some(Box::default()),
            ..Users::default()
        };
        assert_eq!(u.consistent(&hs), threshold);
        let mut u = build(12);
        u.index = None;
        assert_eq!(u.consistent(&hs), threshold);
        let mut u = build(12);
        let Users { recs, index, .. } = &mut u;
        let rehash = |&i: &u32| recs.get(i as usize).map_or(0, |r| hash_key(&hs, &r.name));
        index
            .as_deref_mut()
            .unwrap()
            .insert_unique(hash_key(&hs, "u0"), 0, rehash);
        assert_eq!(
            u.consistent(&hs),
            Err("user index counts a record twice or a free one")
        );

        let mut u = build(3);
        u.recs.get_mut(1).unwrap().plain = false;
        let plain = Err("user record's plain flag disagrees with its id");
        assert_eq!(u.consistent(&hs), plain);
        let mut u = Users::default();
        u.intern(&hs, &Str::from("say \"hi\""));
        assert!(!u.recs.first().unwrap().plain);
        assert_eq!(u.consistent(&hs), Ok(()));
        u.recs.get_mut(0).unwrap().plain = true;
        assert_eq!(u.consistent(&hs), plain);

        let mut u = build(3);
        u.free = 0;
        assert_eq!(u.consistent(&hs), Err("user free list names a live record"));
        let mut u = build(3);
        u.free = 100;
        assert_eq!(u.consistent(&hs), Err("user free list leaves the records"));
        let mut u = build(3);
        u.recs.get_mut(3).unwrap().refs = 3;
        assert_eq!(u.consistent(&hs), Err("user free list has a cycle"));
        let mut u = build(3);
        u.free = NONE;
        assert_eq!(u.consistent(&hs), Err("user records neither live nor free"));
    }

    /// Numbers are handed out as a vector with a free list would: freed
    /// ones first, last freed first, then the next unused, lowest first
    /// (the spare slots of a growth sit behind the freed ones).
    #[test]
    fn freed_numbers_come_back_first_then_the_spare_slots_in_order() {
        let hs = DefaultHashBuilder::default();
        let mut users = Users::default();
        let name = |i: usize| Str::from(alloc::format!("user-{i}").as_str());
        for i in 0..5 {
            assert_eq!(users.intern(&hs, &name(i)), Some(i as u32));
        }
        assert_eq!(users.recs.len(), 6, "one spare slot");
        users.gc(&hs, 1);
        users.gc(&hs, 3);
        let got: alloc::vec::Vec<u32> = (10..14)
            .map(|i| users.intern(&hs, &name(i)).unwrap())
            .collect();
        assert_eq!(got, [3, 1, 5, 6]);
        assert_eq!(users.recs.len(), 8);
        assert!(users.consistent(&hs).is_ok());
        // A spare slot is free, not a user.
        assert_eq!(users.iter().count(), 7);
        assert!(users.get(7).is_none());
    }

    /// Up to `SCAN_USERS` records a user is found by a scan and there is no
    /// index; the record after builds it, and from then on every intern,
    /// free and reuse keeps it; ids are found (and free records are not)
    /// either way.
    #[test]
    fn users_are_found_by_scan_then_through_the_index_built_past_the_threshold() {
        let hs = DefaultHashBuilder::default();
        let mut users = Users::default();
        let name = |i: usize| Str::from(alloc::format!("user-{i}").as_str());
        for i in 0..SCAN_USERS {
            assert_eq!(users.intern(&hs, &name(i)), Some(i as u32));
        }
        assert!(users.index.is_none(), "no index while scanning");
        // Free one and reuse its number: still scanning.
        users.gc(&hs, 3);
        assert_eq!(users.find(&hs, &name(3)), None);
        assert_eq!(users.find(&hs, ""), None, "a free record's empty id");
        assert_eq!(users.intern(&hs, &name(100)), Some(3));
        assert!(users.consistent(&hs).is_ok());
        // One more record: the index holds them all.
        assert_eq!(
            users.intern(&hs, &name(SCAN_USERS)),
            Some(SCAN_USERS as u32)
        );
        assert_eq!(users.index.as_ref().unwrap().len(), SCAN_USERS + 1);
        for i in (0..=SCAN_USERS).filter(|&i| i != 3) {
            assert_eq!(users.find(&hs, &name(i)), Some(i as u32), "{i}");
        }
        assert_eq!(users.find(&hs, &name(100)), Some(3));
        users.gc(&hs, 5);
        assert_eq!(users.find(&hs, &name(5)), None);
        assert_eq!(users.intern(&hs, &name(200)), Some(5));
        assert_eq!(users.find(&hs, &name(200)), Some(5));
        assert!(users.consistent(&hs).is_ok());
        // Damage is still seen: an index entry missing.
        let hash = hash_key(&hs, &name(200));
        let index = users.index.as_mut().unwrap();
        index.find_entry(hash, |&i| i == 5).unwrap().remove();
        assert!(users.consistent(&hs).is_err());
    }
}
