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
use crate::history::History;
use crate::locks::Locks;
use crate::members::Users;
use crate::outcome::{Attribute, QueueElement};
use crate::queue::Queue;
use crate::store::{hash_key, Store, ADMIN};
use crate::text::Str;
use crate::time::Millis;

/// What an attribute's record adds to the store's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttrX {
    pub(crate) revision: u64,
    pub(crate) at: Millis,
}

pub(crate) struct Room {
    pub(crate) id: Str,
    pub(crate) hasher: DefaultHashBuilder,
    /// The creator's user number; its record always exists (role Creator).
    pub(crate) creator: u32,
    pub(crate) seq: u64,
    pub(crate) attrs: Store<AttrX>,
    /// Sum of attribute value bytes.
    pub(crate) value_bytes: u64,
    pub(crate) queue: Option<Box<Queue>>,
    pub(crate) users: Users,
    pub(crate) flow: FlowWindow,
    /// The room's locks.
    pub(crate) locks: Locks,
    /// The attribute revision: the sequence number of the last event that
    /// changed an attribute (0: none yet). Agora's major revision.
    pub(crate) attr_rev: u64,
    /// Integer counters (Tencent group counters), sorted by key.
    pub(crate) counters: Counters,
    /// TTL deadlines of the keys that have one (see `engine::ttl`).
    pub(crate) expiry: BTreeMap<Str, Millis>,
    /// Recent events, for catch-up.
    pub(crate) history: History,
}

impl Room {
    /// A room with its creator's record; `None` for an empty creator id.
    pub(crate) fn new(id: Str, creator: &Str) -> Option<Room> {
        let hasher = DefaultHashBuilder::default();
        let mut users = Users::default();
        let n = users.intern(&hasher, creator)?;
        if let Some(rec) = users.get_mut(n) {
            rec.role = Role::Creator;
        }
        Some(Room {
            id,
            hasher,
            creator: n,
            seq: 0,
            attrs: Store::default(),
            value_bytes: 0,
            queue: None,
            users,
            flow: FlowWindow::default(),
            locks: Locks::default(),
            attr_rev: 0,
            counters: Counters::default(),
            expiry: BTreeMap::new(),
            history: History::default(),
        })
    }

    pub(crate) fn hash(&self, key: &str) -> u64 {
        hash_key(&self.hasher, key)
    }

    pub(crate) fn creator_name(&self) -> &Str {
        self.users.get(self.creator).map_or(&EMPTY, |r| &r.name)
    }

    pub(crate) fn user(&self, name: &str) -> Option<u32> {
        self.users.find(&self.hasher, name)
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
        x: AttrX,
    ) -> Change {
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
        x: AttrX,
    ) -> Option<()> {
        let owner = self.owner_str(owner)?;
        self.attrs
            .push(hash, key, value, owner, auto_delete, x, &self.hasher)?;
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
        Some(Attribute {
            key: Str::from(self.attrs.key(pos)),
            value: Str::from(self.attrs.value(pos)),
            owner: self.actor(m.owner()),
            auto_delete: m.flagged(),
            revision: m.x.revision,
            changed_at: m.x.at,
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
    pub(crate) fn exit(&mut self, n: u32, changes: &mut Vec<Change>, scratch: &mut Vec<u32>) {
        if let Some(rec) = self.users.get_mut(n) {
            rec.live = 0;
            rec.dropped = 0;
            rec.grace_until = Millis::ZERO;
        }
        // Hold a reference so the record outlives its removals below.
        self.add_ref(n, true);
        self.attrs.owned(n, scratch);
        for &pos in scratch.iter() {
            let key = Str::from(self.attrs.key(pos));
            if let Some((_, len)) = self.attrs.remove_at(pos, &self.hasher) {
                self.value_bytes -= u64::from(len);
                self.add_ref(n, false);
                changes.push(Change::AttributeDeleted { key });
            }
        }
        if let Some(q) = self.queue.as_mut() {
            q.elems.owned(n, scratch);
            for &pos in scratch.iter() {
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
    pub(crate) fn settle(&mut self, scratch: &mut Vec<u32>) {
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
        // 8 + what X adds.
        assert_eq!(size_of::<crate::store::Meta<super::AttrX>>(), 24);
        assert_eq!(size_of::<crate::store::Meta<()>>(), 8);
        assert_eq!(size_of::<crate::members::UserRec>(), 48);
        // 272 + 8 (the boxed locks) + 8 (the major revision) - 8 (a
        // store's live count is its index's length) - 8 (its owner heads
        // are a boxed slice) - 24 (the user index is boxed, and absent in
        // rooms of up to 8 user records) + counters (boxed when any, 8) +
        // TTL deadlines (a BTreeMap, 24) + catch-up history (a Vec, two
        // u32 and a number, 40) - 16 (the store's index and owner heads
        // are one optional box, its tags a boxed slice, and it counts its
        // live entries: 104 -> 88).
        assert_eq!(size_of::<super::Room>(), 304);
        assert_eq!(size_of::<crate::history::History>(), 40);
        assert_eq!(size_of::<crate::queue::Queue>(), 96);
    }
}
