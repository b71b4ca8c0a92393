//! The borrowed read view of one room.

use alloc::vec::Vec;

use crate::command::Role;
use crate::outcome::{Attribute, QueueElement};
use crate::room::Room;
use crate::text::Str;

/// A borrowed view of one room.
#[derive(Clone, Copy)]
pub struct RoomView<'a> {
    pub(crate) room: &'a Room,
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
        &self.room.creator
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

    /// One attribute.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&'a Attribute> {
        self.room.attrs.get(key).map(|s| &s.attr)
    }

    /// Every attribute, in listing order, borrowed.
    pub fn attributes(&self) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.room.attrs.iter().map(|s| &s.attr)
    }

    /// Whether `user` holds a connection (live or in grace).
    #[must_use]
    pub fn is_present(&self, user: &str) -> bool {
        self.room.is_present(user)
    }

    /// `user`'s connections, live and in grace.
    #[must_use]
    pub fn connections(&self, user: &str) -> u32 {
        self.room.users.get(user).map_or(0, |r| r.connections())
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
            .map(|(u, _)| u)
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

    /// Queue elements in order, borrowed.
    pub fn queue(&self) -> impl Iterator<Item = &'a QueueElement> + 'a {
        self.room
            .queue
            .iter()
            .flat_map(|q| q.elems.iter())
            .map(|s| &s.elem)
    }
}
