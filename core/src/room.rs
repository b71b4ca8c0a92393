//! One room: attributes, queue and users, and the rooms of an engine.
//!
//! Every owner in a room is the owner's interned number ([`Users`]); the
//! stores ([`Store`]) keep keys and values in per-room arenas and the owner
//! index as lists through their records. A room hashes every key and id
//! with its own hasher, once per key per operation.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::command::{Actor, Role};
use crate::counters::Counters;
use crate::event::Change;
use crate::flow::FlowWindow;
use crate::history::RoomHistory;
use crate::locks::{Lock, Locks};
use crate::members::Users;
use crate::outcome::{Attribute, QueueElement};
use crate::queue::Queue;
use crate::store::{hash_key, Scratch, Store, ADMIN};
use crate::text::Str;
use crate::time::Millis;

pub(crate) use crate::stamp::AttrX;
use crate::stamp::Stamp;

pub(crate) struct Room {
    pub(crate) id: Str,
    pub(crate) hasher: DefaultHashBuilder,
    pub(crate) seq: u64,
    pub(crate) attrs: Store<AttrX>,
    /// Sum of attribute value bytes.
    pub(crate) value_bytes: u64,
    pub(crate) queue: Option<Box<Queue>>,
    pub(crate) users: Users,
    pub(crate) flow: FlowWindow,
    /// The attribute revision: the sequence number of the last event that
    /// changed an attribute (0: none yet). Agora's major revision.
    pub(crate) attr_rev: u64,
    /// Locks, counters, TTL deadlines and grace deadlines: `Some` iff any
    /// of them is non-empty (see [`Rare`]): add through `rare_mut`, end
    /// every removal with `tidy_rare`.
    pub(crate) rare: Option<Box<Rare>>,
    /// Recent events, for catch-up.
    pub(crate) history: RoomHistory,
}

/// The parts of a room that most rooms never use, behind one box made on
/// first use and dropped when all of them are empty again: a room without
/// them pays 8 bytes, not the 48 that a boxed locks list, a boxed counter
/// list, a TTL map and the grace deadlines in every user record cost.
#[derive(Default)]
pub(crate) struct Rare {
    /// The room's locks.
    pub(crate) locks: Locks,
    /// Integer counters (Tencent group counters), sorted by key.
    pub(crate) counters: Counters,
    /// TTL deadlines of the keys that have one (see `engine::ttl`).
    pub(crate) expiry: BTreeMap<Str, Millis>,
    /// Grace deadlines by user number: a user has one iff it has dropped
    /// connections (`UserRec::dropped > 0`).
    pub(crate) grace: BTreeMap<u32, Millis>,
    /// Exact revision and time of the attributes whose stamp does not fit
    /// a record (see `stamp.rs`), by key.
    pub(crate) wide: BTreeMap<Str, (u64, Millis)>,
}

impl Rare {
    const fn new() -> Rare {
        Rare {
            locks: Locks::new(),
            counters: Counters::new(),
            expiry: BTreeMap::new(),
            grace: BTreeMap::new(),
            wide: BTreeMap::new(),
        }
    }

    /// Whether every part is empty (then the room drops the box).
    pub(crate) fn is_empty(&self) -> bool {
        self.locks.is_empty()
            && self.counters.is_empty()
            && self.expiry.is_empty()
            && self.grace.is_empty()
            && self.wide.is_empty()
    }
}

/// What a room without rare parts reads.
static NO_RARE: Rare = Rare::new();

impl Room {
    /// Prefetch hint: the lines of the room itself.
    pub(crate) fn warm(&self) {
        let size = core::mem::size_of::<Room>();
        crate::prefetch::span(self, size, size);
    }

    /// Prefetch hint: the user records, the attributes' tags and records,
    /// and the history's counts.
    pub(crate) fn warm_parts(&self) {
        self.users.warm();
        self.attrs.warm_index();
        self.history.warm_counts();
    }

    /// Prefetch hint: the text of attribute `key` (after
    /// [`Room::warm_parts`]).
    pub(crate) fn warm_key(&self, key: &str) {
        self.attrs.warm_entry(self.hash(key));
    }

    /// Prefetch hint: the attributes' text, up to 2 KiB (what an exit's
    /// removals move; 20 attributes of 16-byte keys and 64-byte values
    /// hold about 1.7 KiB).
    pub(crate) fn warm_text(&self) {
        self.attrs.warm_text(2048);
    }

    /// Prefetch hint: where the history's next event goes (after
    /// [`Room::warm_parts`]).
    pub(crate) fn warm_end(&self) {
        self.history.warm_end();
    }

    /// A room with its creator's record; `None` for an empty creator id.
    pub(crate) fn new(id: Str, creator: &Str) -> Option<Room> {
        let hasher = DefaultHashBuilder::default();
        let mut users = Users::default();
        let n = users.intern(&hasher, creator)?;
        if let Some(rec) = users.get_mut(n) {
            rec.role = Role::Creator;
        }
        users.creator = n;
        Some(Room {
            id,
            hasher,
            seq: 0,
            attrs: Store::default(),
            value_bytes: 0,
            queue: None,
            users,
            flow: FlowWindow::default(),
            attr_rev: 0,
            rare: None,
            history: RoomHistory::default(),
        })
    }

    /// The rare parts, empty ones if the room has none.
    pub(crate) fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    /// The rare parts, made on first use: only for adding to them.
    pub(crate) fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Drops the rare parts if all are empty; every removal from them
    /// ends with this.
    pub(crate) fn tidy_rare(&mut self) {
        if self.rare.as_deref().is_some_and(Rare::is_empty) {
            self.rare = None;
        }
    }

    /// The room's locks.
    pub(crate) fn locks(&self) -> &Locks {
        &self.rare().locks
    }

    /// The room's locks, if it has any rare part (none: no lock to change).
    pub(crate) fn locks_mut(&mut self) -> Option<&mut Locks> {
        self.rare.as_deref_mut().map(|r| &mut r.locks)
    }

    /// The room's locks as a slice to change in place (empty if none).
    pub(crate) fn lock_list_mut(&mut self) -> &mut [Lock] {
        match self.rare.as_deref_mut() {
            Some(r) => r.locks.list_mut(),
            None => &mut [],
        }
    }

    /// The room's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.rare().counters
    }

    /// The room's counters, if it has any rare part.
    pub(crate) fn counters_mut(&mut self) -> Option<&mut Counters> {
        self.rare.as_deref_mut().map(|r| &mut r.counters)
    }

    /// TTL deadlines of the keys that have one.
    pub(crate) fn expiry(&self) -> &BTreeMap<Str, Millis> {
        &self.rare().expiry
    }

    /// Removes `key`'s TTL deadline, returning the stored key and it.
    pub(crate) fn take_expiry(&mut self, key: &str) -> Option<(Str, Millis)> {
        let entry = self.rare.as_deref_mut()?.expiry.remove_entry(key);
        self.tidy_rare();
        entry
    }

    /// User `n`'s grace deadline, if it has dropped connections.
    pub(crate) fn grace(&self, n: u32) -> Option<Millis> {
        self.rare().grace.get(&n).copied()
    }

    /// Every grace deadline, by user number.
    pub(crate) fn graces(&self) -> &BTreeMap<u32, Millis> {
        &self.rare().grace
    }

    /// Sets user `n`'s grace deadline, returning the one it replaces.
    pub(crate) fn set_grace(&mut self, n: u32, at: Millis) -> Option<Millis> {
        self.rare_mut().grace.insert(n, at)
    }

    /// Clears user `n`'s grace deadline, returning it.
    pub(crate) fn clear_grace(&mut self, n: u32) -> Option<Millis> {
        let at = self.rare.as_deref_mut()?.grace.remove(&n);
        self.tidy_rare();
        at
    }

    pub(crate) fn hash(&self, key: &str) -> u64 {
        hash_key(&self.hasher, key)
    }

    pub(crate) fn creator_name(&self) -> &Str {
        self.users
            .get(self.users.creator)
            .map_or(&EMPTY, |r| &r.name)
    }

    pub(crate) fn user(&self, name: &str) -> Option<u32> {
        self.users.find(&self.hasher, name)
    }

    /// `name`'s number, read first from the owner of the attribute at
    /// `pos` (the usual writer of a key is its owner: one record read, no
    /// hash), else found as [`Room::user`] finds it.
    pub(crate) fn user_owning(&self, pos: u32, name: &str) -> Option<u32> {
        let owner = self.attrs.meta(pos).map(|m| m.owner());
        match owner.and_then(|n| self.owner_name(n)) {
            Some(o) if o.as_str() == name => owner,
            _ => self.user(name),
        }
    }

    pub(crate) fn is_present(&self, user: &str) -> bool {
        self.users
            .by_name(&self.hasher, user)
            .is_some_and(|r| r.is_present())
    }

    pub(crate) fn role(&self, user: &str) -> Role {
        self.users
            .by_name(&self.hasher, user)
            .map_or(Role::Member, |r| r.role)
    }

    /// The user's number, its record made if missing.
    pub(crate) fn intern(&mut self, user: &Str) -> Option<u32> {
        self.users.intern(&self.hasher, user)
    }

    /// The owner number of `actor`, interning a user.
    pub(crate) fn owner_of(&mut self, actor: &Actor) -> Option<u32> {
        match actor {
            Actor::Admin => Some(ADMIN),
            Actor::User(u) => self.intern(u),
        }
    }

    /// The owner number of `actor` if it has one (a user with no record
    /// owns nothing).
    pub(crate) fn find_owner(&self, actor: &Actor) -> Option<u32> {
        match actor {
            Actor::Admin => Some(ADMIN),
            Actor::User(u) => self.user(u),
        }
    }

    /// The actor an owner number stands for.
    pub(crate) fn actor(&self, owner: u32) -> Actor {
        match self.users.get(owner) {
            Some(r) if owner != ADMIN => Actor::User(r.name.clone()),
            _ => Actor::Admin,
        }
    }

    /// The user id of an owner number, `None` for `Admin`.
    #[inline]
    pub(crate) fn owner_name(&self, owner: u32) -> Option<&Str> {
        (owner != ADMIN)
            .then(|| self.users.get(owner).map(|r| &r.name))
            .flatten()
    }

    /// Frees the user's record if nothing in it is worth keeping.
    pub(crate) fn gc_user(&mut self, n: u32) {
        self.users.gc(&self.hasher, n);
    }

    /// Counts one more (or one fewer) use of user `owner`'s record: a
    /// stored entry it owns, or an operation holding its number. The last
    /// release frees an idle record.
    pub(crate) fn add_ref(&mut self, owner: u32, more: bool) {
        if let Some(r) = self.users.get_mut(owner) {
            if more {
                r.refs += 1;
            } else {
                r.refs = r.refs.saturating_sub(1);
            }
        }
        if !more {
            self.gc_user(owner);
        }
    }

    /// Sets an attribute (new, or an overwrite at `pos`, which the caller
    /// looked up with `hash`); returns its change record. Limits and
    /// ownership were checked by the caller. `operator` is an owner number.
    #[allow(clippy::too_many_arguments)] // one call site, every argument distinct
    pub(crate) fn put_attr(
        &mut self,
        hash: u64,
        pos: Option<u32>,
        key: Str,
        value: Str,
        operator: u32,
        take_owner: bool,
        auto_delete: bool,
        stamp: Stamp,
    ) -> Change {
        let x = self.stamp(&key, stamp, true);
        let owner = match pos.and_then(|p| self.attrs.meta(p)) {
            Some(m) => {
                let old = m.owner();
                let owner = if take_owner { operator } else { old };
                let p = pos.unwrap_or_default();
                let old_bytes = u64::from(self.attrs.set_value(p, &value));
                if let Some(m) = self.attrs.meta_mut(p) {
                    m.x = x;
                }
                self.value_bytes = self.value_bytes - old_bytes + value.len() as u64;
                if owner != old {
                    self.add_ref(owner, true);
                }
                self.attrs.set_owner(p, owner, auto_delete);
                if owner != old {
                    self.add_ref(old, false);
                }
                owner
            }
            None => {
                let pushed =
                    self.attrs
                        .push(hash, &key, &value, operator, auto_delete, x, &self.hasher);
                if pushed.is_some() {
                    self.value_bytes += value.len() as u64;
                    self.add_ref(operator, true);
                } else {
                    self.forget_wide(&key);
                }
                operator
            }
        };
        Change::AttributeSet {
            key,
            value,
            owner: self.actor(owner),
            auto_delete,
        }
    }

    /// Adds a restored attribute whose key (hashing to `hash`) is new, with
    /// no change record; `owner` is a user id or `None` for `Admin`.
    #[cfg(feature = "serde")]
    pub(crate) fn insert_attr(
        &mut self,
        hash: u64,
        key: &str,
        value: &str,
        owner: Option<&str>,
        auto_delete: bool,
        stamp: Stamp,
    ) -> Option<()> {
        let owner = self.owner_str(owner)?;
        let x = self.stamp(key, stamp, false);
        if self
            .attrs
            .push(hash, key, value, owner, auto_delete, x, &self.hasher)
            .is_none()
        {
            self.forget_wide(key);
            return None;
        }
        self.value_bytes += value.len() as u64;
        self.add_ref(owner, true);
        Some(())
    }

    /// Adds a restored queue element whose key is new (the queue exists).
    #[cfg(feature = "serde")]
    pub(crate) fn insert_elem(
        &mut self,
        hash: u64,
        key: &str,
        value: &str,
        owner: Option<&str>,
        transient: bool,
    ) -> Option<()> {
        let owner = self.owner_str(owner)?;
        self.queue
            .as_mut()?
            .elems
            .push(hash, key, value, owner, transient, (), &self.hasher)?;
        self.add_ref(owner, true);
        Some(())
    }

    /// The owner number of a user id (interned) or of `Admin` (`None`).
    #[cfg(feature = "serde")]
    fn owner_str(&mut self, owner: Option<&str>) -> Option<u32> {
        match owner {
            None => Some(ADMIN),
            Some(u) => self.users.intern_str(&self.hasher, u),
        }
    }

    /// Deletes the attribute at `pos` (its key hashing to `hash`), keeping
    /// the owner index, the user records and the byte total right.
    pub(crate) fn delete_attr(&mut self, hash: u64, pos: u32) -> bool {
        self.forget_wide_at(pos);
        let Some((m, len)) = self.attrs.remove(hash, pos) else {
            return false;
        };
        self.value_bytes -= u64::from(len);
        self.add_ref(m.owner(), false);
        true
    }

    /// Appends or updates a queue element (the queue must exist); returns
    /// its change record. Capacity was checked by the caller.
    pub(crate) fn put_elem(&mut self, key: Str, value: Str, owner: u32, transient: bool) -> Change {
        let hash = self.hash(&key);
        let actor = self.actor(owner);
        let Some(q) = self.queue.as_mut() else {
            return Change::QueueSet {
                key,
                value,
                owner: actor,
                transient,
            };
        };
        match q.elems.find(hash, &key) {
            Some(p) => {
                let old = q.elems.meta(p).map_or(ADMIN, |m| m.owner());
                let _ = q.elems.set_value(p, &value);
                q.elems.set_owner(p, owner, transient);
                if old != owner {
                    self.add_ref(owner, true);
                    self.add_ref(old, false);
                }
            }
            None => {
                if q.elems
                    .push(hash, &key, &value, owner, transient, (), &self.hasher)
                    .is_some()
                {
                    self.add_ref(owner, true);
                }
            }
        }
        Change::QueueSet {
            key,
            value,
            owner: actor,
            transient,
        }
    }

    /// The element at `pos` of the queue, copied out.
    pub(crate) fn element(&self, pos: u32) -> Option<QueueElement> {
        let q = self.queue.as_ref()?;
        let m = q.elems.meta(pos)?;
        Some(QueueElement {
            key: Str::from(q.elems.key(pos)),
            value: Str::from(q.elems.value(pos)),
            owner: self.actor(m.owner()),
            transient: m.flagged(),
        })
    }

    /// The attribute at `pos`, copied out.
    pub(crate) fn attribute(&self, pos: u32) -> Option<Attribute> {
        let m = self.attrs.meta(pos)?;
        let key = self.attrs.key(pos);
        let stamp = self.stamp_of(key, m.x);
        Some(Attribute {
            key: Str::from(key),
            value: Str::from(self.attrs.value(pos)),
            owner: self.actor(m.owner()),
            auto_delete: m.flagged(),
            revision: stamp.revision,
            changed_at: stamp.at,
        })
    }

    /// Removes the queue element named `key`, keeping the owner index right.
    pub(crate) fn remove_elem(&mut self, key: &str) -> Option<QueueElement> {
        let hash = self.hash(key);
        let pos = self.queue.as_ref()?.elems.find(hash, key)?;
        let elem = self.element(pos)?;
        let (m, _) = self.queue.as_mut()?.elems.remove(hash, pos)?;
        self.add_ref(m.owner(), false);
        Some(elem)
    }

    /// Removes the queue and every owner-index entry pointing into it.
    pub(crate) fn drop_queue(&mut self) -> bool {
        let Some(queue) = self.queue.take() else {
            return false;
        };
        for pos in queue.elems.positions() {
            if let Some(m) = queue.elems.meta(pos) {
                self.add_ref(m.owner(), false);
            }
        }
        true
    }

    /// Ends user `n`'s presence: clears its connections and removes what it
    /// owns with auto-delete (then transient), in listing then queue order,
    /// pushing a change for each after `changes`' first (the exit itself).
    /// `scratch` is reused working memory.
    pub(crate) fn exit(&mut self, n: u32, changes: &mut Vec<Change>, scratch: &mut Scratch) {
        // What the leaver owns, at most: the scans below stop there.
        let mut most = 0;
        if let Some(rec) = self.users.get_mut(n) {
            rec.live = 0;
            rec.dropped = 0;
            most = rec.refs;
        }
        if !self.graces().is_empty() {
            self.clear_grace(n);
        }
        // Hold a reference so the record outlives its removals below.
        self.add_ref(n, true);
        self.attrs.owned(n, most, &mut scratch.positions);
        for &pos in &scratch.positions {
            let key = Str::from(self.attrs.key(pos));
            self.forget_wide_at(pos);
            if let Some((_, len)) = self.attrs.remove_at(pos, &self.hasher) {
                self.value_bytes -= u64::from(len);
                self.add_ref(n, false);
                changes.push(Change::AttributeDeleted { key });
            }
        }
        if let Some(q) = self.queue.as_mut() {
            // Less what was just removed, and the reference held above.
            let most = self.users.get(n).map_or(0, |r| r.refs.saturating_sub(1));
            q.elems.owned(n, most, &mut scratch.positions);
            for &pos in &scratch.positions {
                let key = Str::from(q.elems.key(pos));
                if q.elems.remove_at(pos, &self.hasher).is_some() {
                    if let Some(r) = self.users.get_mut(n) {
                        r.refs = r.refs.saturating_sub(1);
                    }
                    changes.push(Change::QueueRemoved { key });
                }
            }
        }
        self.add_ref(n, false);
        self.settle(scratch);
    }

    /// Compacts the stores after an operation that removed entries;
    /// `scratch` is reused working memory.
    pub(crate) fn settle(&mut self, scratch: &mut Scratch) {
        self.attrs.settle(&self.hasher, scratch);
        if let Some(q) = self.queue.as_mut() {
            q.elems.settle(&self.hasher, scratch);
        }
    }
}

static EMPTY: Str = Str::EMPTY;

/// The engine's rooms: boxed (a room is large, and a table of boxes wastes
/// only a pointer per free bucket), found by id.
#[derive(Default)]
pub(crate) struct Rooms {
    table: HashTable<Box<Room>>,
    hasher: DefaultHashBuilder,
}

impl Rooms {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Room> {
        self.table
            .find(hash_key(&self.hasher, id), |r| *r.id == *id)
            .map(|r| &**r)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Room> {
        self.table
            .find_mut(hash_key(&self.hasher, id), |r| *r.id == *id)
            .map(|r| &mut **r)
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Adds a room whose id is free (callers check first).
    pub(crate) fn insert(&mut self, room: Box<Room>) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash_key(hasher, &room.id), room, |r| {
                hash_key(hasher, &r.id)
            });
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Box<Room>> {
        self.table
            .find_entry(hash_key(&self.hasher, id), |r| *r.id == *id)
            .ok()
            .map(|e| e.remove().0)
    }

    /// Heap bytes of the room table itself (its buckets of boxes).
    #[cfg(test)]
    pub(crate) fn table_bytes(&self) -> usize {
        self.table.allocation_size()
    }

    /// The hash the table files `id` under.
    pub(crate) fn hash(&self, id: &str) -> u64 {
        hash_key(&self.hasher, id)
    }

    /// The room that `hash` first matches in the table, found without
    /// comparing ids: for hints only, since it may be another room (a
    /// match of the hash's 7-bit tag alone), or none.
    pub(crate) fn guess(&self, hash: u64) -> Option<&Room> {
        self.table.find(hash, |_| true).map(|r| &**r)
    }

    /// Every room, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Room> + '_ {
        self.table.iter().map(|r| &**r)
    }
}

/// The sizes of the storage's hot types, pinned: they are what a stored
/// attribute, element, user and room cost (see `alloc_report`). A change
/// here is a layout decision: update the number and say why.
#[cfg(test)]
mod sizes {
    use core::mem::size_of;

    #[test]
    fn storage_types_keep_their_sizes() {
        // Lengths live in the arena (issue 9, round 2), and the owner
        // links with the index, only in stores past SCAN_KEYS (round 3):
        // 8 + what X adds: round 4, a revision and a time in 8 bytes
        // (`stamp.rs`).
        assert_eq!(size_of::<crate::store::Meta<super::AttrX>>(), 16);
        assert_eq!(size_of::<crate::store::Meta<()>>(), 8);
        // 48 - 8: the grace deadline moved to the room's rare parts.
        assert_eq!(size_of::<crate::members::UserRec>(), 40);
        // 272 + 8 (the boxed locks) + 8 (the major revision) - 8 (a
        // store's live count is its index's length) - 8 (its owner heads
        // are a boxed slice) - 24 (the user index is boxed, and absent in
        // rooms of up to 8 user records) + counters (boxed when any, 8) +
        // TTL deadlines (a BTreeMap, 24) + catch-up history (a Vec, two
        // u32 and a number, 40) = 320; then - 32: locks, counters and TTL
        // deadlines (8 + 8 + 24) behind one box with the grace deadlines
        // (`Rare`, 8).
        // - 8: the notification window's "none" is a sentinel start, not
        // an `Option` (16 bytes, `flow.rs`); - 16: the user records are a
        // boxed slice with the spare slots on the free list, whose head is
        // a u32 sharing a word with the creator's number (Users 40 → 32,
        // and the creator's word leaves the room); - 16: the store's index
        // and owner heads are one optional box, its tags a boxed slice,
        // and it counts its live entries (104 → 88); - 32: the catch-up
        // history is an optional box, absent until the room records an
        // event (always, with history off).
        assert_eq!(size_of::<super::Room>(), 216);
        assert_eq!(size_of::<crate::members::Users>(), 32);
        assert_eq!(size_of::<super::Rare>(), 120);
        // 56 + 24: the newest block beside the counts, out of the list
        // (issue 9, round 18).
        assert_eq!(size_of::<crate::history::History>(), 80);
        assert_eq!(size_of::<crate::queue::Queue>(), 96);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod rare_tests {
    use alloc::vec::Vec;

    use crate::command::{Actor, Command, CounterOp, Op, Write};
    use crate::engine::Engine;
    use crate::profile::Profile;
    use crate::time::Millis;

    fn has_rare(engine: &Engine) -> bool {
        engine.rooms.get("r").unwrap().rare.is_some()
    }

    fn run(engine: &mut Engine, now: u64, command: Command) {
        assert!(engine.handle(Millis(now), command).is_ok());
        engine.drain_events(&mut Vec::new());
        assert!(engine.check_invariants().is_ok());
    }

    /// A room's rare parts (locks, counters, TTL and grace deadlines) are
    /// boxed on first use and the box is dropped once all are empty again.
    #[test]
    fn rare_parts_exist_only_while_one_is_in_use() {
        let mut e = Engine::new(Profile::agora_rtm());
        let r = || "r".into();
        run(
            &mut e,
            1,
            Command::CreateRoom {
                room: r(),
                creator: "ann".into(),
            },
        );
        run(
            &mut e,
            1,
            Command::Join {
                room: r(),
                user: "bob".into(),
            },
        );
        assert!(!has_rare(&e), "a new room has none");

        run(
            &mut e,
            2,
            Command::SetLock {
                room: r(),
                name: "L".into(),
                ttl_ms: 10,
            },
        );
        assert!(has_rare(&e));
        run(
            &mut e,
            3,
            Command::RemoveLock {
                room: r(),
                name: "L".into(),
            },
        );
        assert!(!has_rare(&e), "the last lock removed");

        let counter = |key: &str| Command::Counter {
            room: r(),
            operator: Actor::user("bob"),
            key: key.into(),
            op: CounterOp::Set(5),
            min: None,
            max: None,
        };
        run(&mut e, 4, counter("a"));
        run(&mut e, 4, counter("b"));
        run(
            &mut e,
            5,
            Command::CounterDelete {
                room: r(),
                operator: Actor::Admin,
                keys: Some(["a".into()].into()),
            },
        );
        assert!(has_rare(&e), "one counter left");
        run(
            &mut e,
            5,
            Command::CounterDelete {
                room: r(),
                operator: Actor::Admin,
                keys: None,
            },
        );
        assert!(!has_rare(&e), "every counter deleted");

        let w = Write::new("r", Actor::user("bob")).op(Op::set("k", "v").ttl(100));
        run(&mut e, 6, Command::Write(w));
        assert!(has_rare(&e));
        run(&mut e, 106, Command::Tick);
        assert_eq!(e.rooms.get("r").unwrap().attrs.len(), 0, "the key expired");
        assert!(!has_rare(&e), "its deadline went with it");

        run(
            &mut e,
            200,
            Command::Disconnect {
                room: r(),
                user: "bob".into(),
            },
        );
        assert!(has_rare(&e), "a grace deadline");
        assert!(e.room("r").unwrap().dropped_connections("bob").is_some());
        run(
            &mut e,
            201,
            Command::Join {
                room: r(),
                user: "bob".into(),
            },
        );
        assert!(!has_rare(&e), "the dropped connection reclaimed");
        run(
            &mut e,
            202,
            Command::Disconnect {
                room: r(),
                user: "bob".into(),
            },
        );
        let grace = e.profile().limits.disconnect_grace_ms;
        run(&mut e, 202 + grace - 1, Command::Tick);
        assert!(has_rare(&e), "not yet: the deadline is exact");
        run(&mut e, 202 + grace, Command::Tick);
        assert!(
            !e.room("r").unwrap().is_present("bob"),
            "bob exited at his deadline"
        );
        assert!(!has_rare(&e));
    }
}
