//! The borrowed read view of one room: reads that copy nothing.

use alloc::vec::Vec;

use crate::command::{Actor, Role};
use crate::outcome::{Attribute, LockInfo, QueueElement};
use crate::room::{AttrX, Room};
use crate::store::{Meta, ADMIN};
use crate::text::Str;
use crate::time::Millis;

/// A borrowed view of one room, from [`crate::Engine::room`].
#[derive(Clone, Copy)]
pub struct RoomView<'a> {
    pub(crate) room: &'a Room,
}

/// A stored attribute, borrowed from the room (nothing is copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrRef<'a> {
    /// Key.
    pub key: &'a str,
    /// Value.
    pub value: &'a str,
    /// The owning user's id; `None` when `Admin` owns it.
    pub owner: Option<&'a str>,
    /// Deleted when its (user) owner exits.
    pub auto_delete: bool,
    /// Room sequence number of its last change.
    pub revision: u64,
    /// Time of its last change.
    pub changed_at: Millis,
    /// Key, value and owner id hold no `"`, no `\` and no control
    /// character below U+0020: a JSON writer may copy them between quotes
    /// as they are. The engine learns it when it stores the text, so a
    /// reply reads it instead of scanning each string.
    pub plain: bool,
}

impl AttrRef<'_> {
    /// The owner as an [`Actor`].
    #[must_use]
    pub fn owner_actor(&self) -> Actor {
        self.owner.map_or(Actor::Admin, Actor::user)
    }

    /// An owned copy.
    #[must_use]
    pub fn to_attribute(&self) -> Attribute {
        Attribute {
            key: self.key.into(),
            value: self.value.into(),
            owner: self.owner_actor(),
            auto_delete: self.auto_delete,
            revision: self.revision,
            changed_at: self.changed_at,
        }
    }
}

/// A lock, borrowed from the room (nothing is copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockRef<'a> {
    /// Lock name.
    pub name: &'a str,
    /// How long the lock outlives its holder's last live connection.
    pub ttl_ms: u64,
    /// The holder, if any.
    pub holder: Option<&'a str>,
    /// The fencing token of the latest acquisition (0: never acquired).
    pub token: u64,
    /// When the lock expires, set while the holder has no live connection.
    pub expires_at: Option<Millis>,
    /// Users waiting for it, first in line first.
    pub waiters: &'a [Str],
}

impl LockRef<'_> {
    /// An owned copy.
    #[must_use]
    pub fn to_info(&self) -> LockInfo {
        LockInfo {
            name: self.name.into(),
            ttl_ms: self.ttl_ms,
            holder: self.holder.map(Str::from),
            token: self.token,
            expires_at: self.expires_at,
            waiters: self.waiters.to_vec(),
        }
    }
}

impl<'a> From<&'a crate::locks::Lock> for LockRef<'a> {
    fn from(l: &'a crate::locks::Lock) -> LockRef<'a> {
        LockRef {
            name: &l.name,
            ttl_ms: l.ttl_ms,
            holder: l.holder.as_deref(),
            token: l.token,
            expires_at: l.deadline,
            waiters: &l.waiters,
        }
    }
}

/// A queue element, borrowed from the room (nothing is copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElemRef<'a> {
    /// Key.
    pub key: &'a str,
    /// Value.
    pub value: &'a str,
    /// The owning user's id; `None` when `Admin` owns it.
    pub owner: Option<&'a str>,
    /// Removed when its (user) owner exits.
    pub transient: bool,
    /// Key, value and owner id need no JSON escape, as
    /// [`AttrRef::plain`].
    pub plain: bool,
}

impl ElemRef<'_> {
    /// The owner as an [`Actor`].
    #[must_use]
    pub fn owner_actor(&self) -> Actor {
        self.owner.map_or(Actor::Admin, Actor::user)
    }

    /// An owned copy.
    #[must_use]
    pub fn to_element(&self) -> QueueElement {
        QueueElement {
            key: self.key.into(),
            value: self.value.into(),
            owner: self.owner_actor(),
            transient: self.transient,
        }
    }
}

impl<'a> RoomView<'a> {
    /// Room id.
    #[must_use]
    pub fn id(&self) -> &'a Str {
        &self.room.id
    }

    /// The creator's user id.
    #[must_use]
    pub fn creator(&self) -> &'a Str {
        self.room.creator_name()
    }

    /// Current sequence number.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.room.seq
    }

    /// Number of attributes.
    #[must_use]
    pub fn attribute_count(&self) -> usize {
        self.room.attrs.len()
    }

    /// Sum of attribute value bytes.
    #[must_use]
    pub fn value_bytes(&self) -> u64 {
        self.room.value_bytes
    }

    /// The owner's id (`None`: `Admin`) and whether the entry's key, value
    /// and owner id are all plain.
    #[inline]
    fn owner<X>(&self, m: &Meta<X>) -> (Option<&'a str>, bool) {
        let owner = m.owner();
        if owner == ADMIN {
            return (None, m.plain());
        }
        match self.room.users.get(owner) {
            Some(r) => (Some(r.name.as_str()), m.plain() && r.plain),
            None => (None, m.plain()),
        }
    }

    fn attr_at(&self, pos: u32) -> Option<AttrRef<'a>> {
        let room = self.room;
        let m = room.attrs.meta(pos)?;
        Some(self.attr(m, room.attrs.key(pos), room.attrs.value(pos)))
    }

    #[inline]
    fn attr(&self, m: &Meta<AttrX>, key: &'a str, value: &'a str) -> AttrRef<'a> {
        let stamp = self.room.stamp_of(key, m.x);
        let (owner, plain) = self.owner(m);
        AttrRef {
            key,
            value,
            owner,
            auto_delete: m.flagged(),
            revision: stamp.revision,
            changed_at: stamp.at,
            plain,
        }
    }

    fn elem_at(&self, pos: u32) -> Option<ElemRef<'a>> {
        let q = self.room.queue.as_ref()?;
        let m: &Meta<()> = q.elems.meta(pos)?;
        Some(self.elem(m, q.elems.key(pos), q.elems.value(pos)))
    }

    fn elem(&self, m: &Meta<()>, key: &'a str, value: &'a str) -> ElemRef<'a> {
        let (owner, plain) = self.owner(m);
        ElemRef {
            key,
            value,
            owner,
            transient: m.flagged(),
            plain,
        }
    }

    /// One attribute.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<AttrRef<'a>> {
        let pos = self.room.attrs.find(self.room.hash(key), key)?;
        self.attr_at(pos)
    }

    /// Every attribute, in listing order, borrowed.
    pub fn attributes(&self) -> impl Iterator<Item = AttrRef<'a>> + 'a {
        let view = *self;
        self.room
            .attrs
            .entries()
            .map(move |(m, key, value)| view.attr(m, key, value))
    }

    /// Whether `user` holds a connection (live or in grace).
    #[must_use]
    pub fn is_present(&self, user: &str) -> bool {
        self.room.is_present(user)
    }

    /// `user`'s connections, live and in grace.
    #[must_use]
    pub fn connections(&self, user: &str) -> u32 {
        self.rec(user).map_or(0, |r| r.connections())
    }

    /// `user`'s live connections (not dropped).
    #[must_use]
    pub fn live_connections(&self, user: &str) -> u32 {
        self.rec(user).map_or(0, |r| r.live)
    }

    /// `user`'s dropped connections still inside their grace period, and
    /// when that ends.
    #[must_use]
    pub fn dropped_connections(&self, user: &str) -> Option<(u32, Millis)> {
        let n = self.room.user(user)?;
        let r = self.room.users.get(n)?;
        self.room.grace(n).map(|at| (r.dropped, at))
    }

    fn rec(&self, user: &str) -> Option<&'a crate::members::UserRec> {
        self.room.users.by_name(&self.room.hasher, user)
    }

    /// `user`'s role.
    #[must_use]
    pub fn role(&self, user: &str) -> Role {
        self.room.role(user)
    }

    /// Present users, sorted by id (allocates; for inspection, not hot paths).
    #[must_use]
    pub fn members(&self) -> Vec<&'a Str> {
        let mut v: Vec<&Str> = self
            .room
            .users
            .iter()
            .filter(|(_, r)| r.is_present())
            .map(|(_, r)| &r.name)
            .collect();
        v.sort_unstable();
        v
    }

    /// Queue capacity, `None` without a queue.
    #[must_use]
    pub fn queue_capacity(&self) -> Option<u32> {
        self.room.queue.as_ref().map(|q| q.capacity)
    }

    /// Queue length.
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.room.queue.as_ref().map_or(0, |q| q.elems.len())
    }

    /// One queue element.
    #[must_use]
    pub fn queue_element(&self, key: &str) -> Option<ElemRef<'a>> {
        let q = self.room.queue.as_ref()?;
        let pos = q.elems.find(self.room.hash(key), key)?;
        self.elem_at(pos)
    }

    /// Queue elements in order, borrowed.
    pub fn queue(&self) -> impl Iterator<Item = ElemRef<'a>> + 'a {
        let view = *self;
        self.room
            .queue
            .iter()
            .flat_map(|q| q.elems.entries())
            .map(move |(m, key, value)| view.elem(m, key, value))
    }

    /// The attribute revision (Agora's major revision): the sequence
    /// number of the last event that changed an attribute, 0 before any.
    /// A write naming it with [`Write::major_revision`](crate::Write::major_revision)
    /// applies only if no attribute changed since.
    #[must_use]
    pub fn major_revision(&self) -> u64 {
        self.room.attr_rev
    }

    /// Every lock, in creation order, borrowed.
    pub fn locks(&self) -> impl Iterator<Item = LockRef<'a>> + 'a {
        self.room.locks().list().iter().map(LockRef::from)
    }

    /// One lock.
    #[must_use]
    pub fn lock(&self, name: &str) -> Option<LockRef<'a>> {
        self.room.locks().get(name).map(LockRef::from)
    }

    /// One counter's value.
    #[must_use]
    pub fn counter(&self, key: &str) -> Option<i64> {
        self.room.counters().get(key)
    }

    /// Every counter, in key order, borrowed.
    pub fn counters(&self) -> impl Iterator<Item = (&'a str, i64)> + 'a {
        self.room.counters().iter().map(|(k, v)| (k.as_str(), v))
    }

    /// When `key` expires, if it was set with a TTL.
    #[must_use]
    pub fn expires_at(&self, key: &str) -> Option<Millis> {
        self.room.expiry().get(key).copied()
    }

    /// The room's events after `seq`, oldest first, decoded one by one
    /// from its history as the iterator is advanced. `Err` as
    /// [`Command::Since`](crate::Command::Since).
    pub fn events_since(
        &self,
        seq: u64,
    ) -> Result<impl Iterator<Item = crate::event::Event> + 'a, crate::error::Rejection> {
        crate::engine::events_since(self.room, seq)
    }

    /// Events and encoded bytes the room's catch-up history holds.
    #[must_use]
    pub fn history_len(&self) -> (usize, usize) {
        (self.room.history.len(), self.room.history.bytes())
    }

    /// Heap bytes the room's catch-up history holds (its buffers).
    #[must_use]
    pub fn history_heap_bytes(&self) -> usize {
        self.room.history.heap_bytes()
    }
}
