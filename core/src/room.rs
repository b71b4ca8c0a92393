//! One room: attributes, queue, users and the owner index that ties them.

use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::command::{Actor, Role};
use crate::event::Change;
use crate::flow::FlowWindow;
use crate::members::UserRec;
use crate::ordered::{Keyed, OrderedMap};
use crate::outcome::{Attribute, QueueElement};
use crate::queue::{ElemSlot, Queue};
use crate::text::Str;
use crate::time::Millis;

/// A stored attribute and its place in its owner's index.
pub(crate) struct AttrSlot {
    pub(crate) attr: Attribute,
    /// Position in the owner's `auto_attrs`; meaningful only when indexed.
    pub(crate) owned_pos: u32,
}

impl Keyed for AttrSlot {
    fn key(&self) -> &str {
        &self.attr.key
    }
}

/// The user an attribute or element is indexed under, if any: user-owned
/// and auto-delete (or transient).
pub(crate) fn indexed_owner(owner: &Actor, flagged: bool) -> Option<&Str> {
    if flagged {
        owner.as_user()
    } else {
        None
    }
}

pub(crate) struct Room {
    pub(crate) id: Str,
    pub(crate) creator: Str,
    pub(crate) seq: u64,
    pub(crate) attrs: OrderedMap<AttrSlot>,
    /// Sum of attribute value bytes.
    pub(crate) value_bytes: u64,
    pub(crate) queue: Option<Queue>,
    pub(crate) users: HashMap<Str, UserRec>,
    pub(crate) flow: FlowWindow,
}

/// Which of a user's owner-index lists.
#[derive(Clone, Copy)]
enum List {
    Attrs,
    Elems,
}

impl Room {
    pub(crate) fn new(id: Str, creator: Str) -> Room {
        let mut users = HashMap::new();
        users.insert(
            creator.clone(),
            UserRec {
                role: Role::Creator,
                ..UserRec::default()
            },
        );
        Room {
            id,
            creator,
            seq: 0,
            attrs: OrderedMap::new(),
            value_bytes: 0,
            queue: None,
            users,
            flow: FlowWindow::default(),
        }
    }

    pub(crate) fn is_present(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(UserRec::is_present)
    }

    pub(crate) fn role(&self, user: &str) -> Role {
        self.users.get(user).map_or(Role::Member, |r| r.role)
    }

    /// The user's record, created if missing.
    pub(crate) fn user_mut(&mut self, user: &Str) -> &mut UserRec {
        self.users.entry(user.clone()).or_default()
    }

    /// Drops the user's record if nothing in it is worth keeping.
    pub(crate) fn gc_user(&mut self, user: &str) {
        if self.users.get(user).is_some_and(UserRec::is_idle) {
            self.users.remove(user);
        }
    }

    fn list(&mut self, user: &Str, list: List) -> &mut Vec<Str> {
        let rec = self.user_mut(user);
        match list {
            List::Attrs => &mut rec.auto_attrs,
            List::Elems => &mut rec.transient,
        }
    }

    /// Adds `key` to `user`'s index list, returning its position.
    fn index(&mut self, user: &Str, list: List, key: Str) -> u32 {
        let l = self.list(user, list);
        l.push(key);
        u32::try_from(l.len() - 1).unwrap_or(u32::MAX)
    }

    /// Removes position `pos` of `user`'s index list, fixing the position
    /// stored by the entry that moved into its place.
    fn unindex(&mut self, user: &Str, list: List, pos: u32) {
        let pos = pos as usize;
        let l = self.list(user, list);
        if pos >= l.len() {
            return; // cannot happen while invariants hold
        }
        l.swap_remove(pos);
        let moved = l.get(pos).cloned();
        if let Some(moved) = moved {
            let slot_pos = u32::try_from(pos).unwrap_or(u32::MAX);
            match list {
                List::Attrs => {
                    if let Some(s) = self.attrs.get_mut(&moved) {
                        s.owned_pos = slot_pos;
                    }
                }
                List::Elems => {
                    if let Some(s) = self.queue.as_mut().and_then(|q| q.elems.get_mut(&moved)) {
                        s.owned_pos = slot_pos;
                    }
                }
            }
        }
        self.gc_user(user);
    }

    /// Sets an attribute (new or overwrite); returns its change record.
    /// Limits and ownership were checked by the caller.
    #[allow(clippy::too_many_arguments)] // one call site, every argument distinct
    pub(crate) fn put_attr(
        &mut self,
        key: Str,
        value: Str,
        operator: &Actor,
        take_owner: bool,
        auto_delete: bool,
        revision: u64,
        at: Millis,
        hint: Option<usize>,
    ) -> Change {
        // Where the key lives: the caller's hint if that slot still holds
        // it (an earlier op may have compacted the slots), else a lookup.
        let slot = match hint {
            Some(p) if self.attrs.at(p).is_some_and(|s| s.attr.key == key) => Some(p),
            _ => self.attrs.position(&key),
        };
        // Fast path: an overwrite that keeps owner and flag touches no index.
        if let Some(s) = slot.and_then(|p| self.attrs.at_mut(p)) {
            if (!take_owner || s.attr.owner == *operator) && s.attr.auto_delete == auto_delete {
                let old_bytes = s.attr.value.len() as u64;
                let change = Change::AttributeSet {
                    key,
                    value: value.clone(),
                    owner: s.attr.owner.clone(),
                    auto_delete,
                };
                self.value_bytes = self.value_bytes - old_bytes + value.len() as u64;
                s.attr.value = value;
                s.attr.revision = revision;
                s.attr.changed_at = at;
                return change;
            }
        }
        // `slot` stays valid below: the owner index moves list entries,
        // never attribute slots.
        let existing = slot.and_then(|p| self.attrs.at(p)).map(|s| {
            (
                s.attr.owner.clone(),
                s.attr.auto_delete,
                s.owned_pos,
                s.attr.value.len(),
            )
        });
        let owner = match (&existing, take_owner) {
            (Some((old, ..)), false) => old.clone(),
            _ => operator.clone(),
        };
        let new_bytes = value.len() as u64;
        let change = Change::AttributeSet {
            key: key.clone(),
            value: value.clone(),
            owner: owner.clone(),
            auto_delete,
        };
        match existing {
            Some((old_owner, old_auto, old_pos, old_bytes)) => {
                let was = indexed_owner(&old_owner, old_auto);
                let will = indexed_owner(&owner, auto_delete);
                let reindex = was != will;
                if reindex {
                    if let Some(u) = was {
                        self.unindex(u, List::Attrs, old_pos);
                    }
                }
                let pos = match (reindex, will) {
                    (true, Some(u)) => self.index(u, List::Attrs, key.clone()),
                    _ => old_pos,
                };
                if let Some(s) = slot.and_then(|p| self.attrs.at_mut(p)) {
                    s.attr.value = value;
                    s.attr.owner = owner;
                    s.attr.auto_delete = auto_delete;
                    s.attr.revision = revision;
                    s.attr.changed_at = at;
                    s.owned_pos = pos;
                }
                self.value_bytes = self.value_bytes - old_bytes as u64 + new_bytes;
            }
            None => {
                let pos = match indexed_owner(&owner, auto_delete) {
                    Some(u) => self.index(&u.clone(), List::Attrs, key.clone()),
                    None => 0,
                };
                self.attrs.push(AttrSlot {
                    attr: Attribute {
                        key,
                        value,
                        owner,
                        auto_delete,
                        revision,
                        changed_at: at,
                    },
                    owned_pos: pos,
                });
                self.value_bytes += new_bytes;
            }
        }
        change
    }

    /// Appends a restored attribute whose key is new (checked by the
    /// caller), indexing its owner; no change record is built.
    #[cfg(feature = "serde")]
    pub(crate) fn restore_attr(&mut self, attr: Attribute) {
        let pos = match indexed_owner(&attr.owner, attr.auto_delete) {
            Some(u) => self.index(&u.clone(), List::Attrs, attr.key.clone()),
            None => 0,
        };
        self.value_bytes += attr.value.len() as u64;
        self.attrs.push(AttrSlot {
            attr,
            owned_pos: pos,
        });
    }

    /// Deletes an attribute, keeping the owner index and byte total right.
    pub(crate) fn delete_attr(&mut self, key: &str) -> Option<Attribute> {
        let slot = self.attrs.remove(key)?;
        self.value_bytes -= slot.attr.value.len() as u64;
        if let Some(u) = indexed_owner(&slot.attr.owner, slot.attr.auto_delete) {
            self.unindex(&u.clone(), List::Attrs, slot.owned_pos);
        }
        Some(slot.attr)
    }

    /// Appends or updates a queue element (the queue must exist); returns
    /// its change record. Capacity was checked by the caller.
    pub(crate) fn put_elem(
        &mut self,
        key: Str,
        value: Str,
        owner: Actor,
        transient: bool,
    ) -> Change {
        let change = Change::QueueSet {
            key: key.clone(),
            value: value.clone(),
            owner: owner.clone(),
            transient,
        };
        let Some(queue) = self.queue.as_ref() else {
            return change;
        };
        let existing = queue
            .elems
            .get(&key)
            .map(|s| (s.elem.owner.clone(), s.elem.transient, s.owned_pos));
        let will = indexed_owner(&owner, transient).cloned();
        match existing {
            Some((old_owner, old_transient, old_pos)) => {
                let was = indexed_owner(&old_owner, old_transient);
                let reindex = was != will.as_ref();
                if reindex {
                    if let Some(u) = was {
                        self.unindex(u, List::Elems, old_pos);
                    }
                }
                let pos = match (reindex, &will) {
                    (true, Some(u)) => self.index(u, List::Elems, key.clone()),
                    _ => old_pos,
                };
                if let Some(s) = self.queue.as_mut().and_then(|q| q.elems.get_mut(&key)) {
                    s.elem.value = value;
                    s.elem.owner = owner;
                    s.elem.transient = transient;
                    s.owned_pos = pos;
                }
            }
            None => {
                let pos = match &will {
                    Some(u) => self.index(u, List::Elems, key.clone()),
                    None => 0,
                };
                if let Some(q) = self.queue.as_mut() {
                    q.elems.push(ElemSlot {
                        elem: QueueElement {
                            key,
                            value,
                            owner,
                            transient,
                        },
                        owned_pos: pos,
                    });
                }
            }
        }
        change
    }

    /// Removes a queue element, keeping the owner index right.
    pub(crate) fn remove_elem(&mut self, key: &str) -> Option<QueueElement> {
        let slot = self.queue.as_mut()?.elems.remove(key)?;
        if let Some(u) = indexed_owner(&slot.elem.owner, slot.elem.transient) {
            self.unindex(&u.clone(), List::Elems, slot.owned_pos);
        }
        Some(slot.elem)
    }

    /// Removes the queue and every owner-index entry pointing into it.
    pub(crate) fn drop_queue(&mut self) -> bool {
        let Some(queue) = self.queue.take() else {
            return false;
        };
        drop(queue);
        // Every transient entry of the owner index points into this queue.
        for rec in self.users.values_mut() {
            rec.transient.clear();
        }
        self.users.retain(|_, r| !r.is_idle());
        true
    }

    /// Ends `user`'s presence: clears its connections and removes what it
    /// owns with auto-delete / transient, in listing then queue order.
    /// Returns the removal changes (without the `MemberExited` one).
    pub(crate) fn exit(&mut self, user: &str, first: Change) -> Vec<Change> {
        let Some(rec) = self.users.get_mut(user) else {
            return alloc::vec![first];
        };
        rec.live = 0;
        rec.dropped = 0;
        rec.grace_until = None;
        let mut attrs = core::mem::take(&mut rec.auto_attrs);
        let elems = core::mem::take(&mut rec.transient);
        // With no connections and nothing owned left, the record stays only
        // for a role; decided now, while it is in hand.
        let idle = rec.is_idle();
        let mut changes = Vec::with_capacity(attrs.len() + elems.len() + 1);
        changes.push(first);

        // Listing order: sort the user's keys by slot position, in place.
        if attrs.len() > 1 {
            attrs.sort_by_cached_key(|k| self.attrs.position(k).unwrap_or(usize::MAX));
        }
        for key in attrs {
            if let Some(slot) = self.attrs.remove(&key) {
                self.value_bytes -= slot.attr.value.len() as u64;
                changes.push(Change::AttributeDeleted { key });
            }
        }

        if let Some(queue) = self.queue.as_mut() {
            let mut found: Vec<(usize, Str)> = elems
                .into_iter()
                .filter_map(|k| queue.elems.position(&k).map(|p| (p, k)))
                .collect();
            found.sort_unstable_by_key(|(p, _)| *p);
            for (_, key) in found {
                if queue.elems.remove(&key).is_some() {
                    changes.push(Change::QueueRemoved { key });
                }
            }
        }
        if idle {
            self.users.remove(user);
        }
        changes
    }
}
