//! The room's ordered queue (NetEase chatroom queue, SPEC §5).
//!
//! Structure: the same insertion-ordered slot map as attributes
//! ([`OrderedMap`]): a slot vector in queue order plus a swiss table from
//! key to slot. Offer of a new key appends (amortized O(1)); offer of an
//! existing key and batch update write in place, keeping the position
//! (O(1)); poll of a named key leaves a tombstone (O(1)); poll of the head
//! advances a cursor past tombstones, which only moves forward between
//! compactions (amortized O(1)); compaction runs when tombstones outnumber
//! live elements, paid for by the removals that made them. List and
//! multi-get are O(elements returned). A linked list would give the same
//! bounds with a pointer per element and no cache locality; a `VecDeque`
//! would make named polls O(n).

use crate::ordered::{Keyed, OrderedMap};
use crate::outcome::QueueElement;

/// A stored element and its place in its owner's index.
pub(crate) struct ElemSlot {
    pub(crate) elem: QueueElement,
    /// Position in the owner's `transient` list; meaningful only when indexed.
    pub(crate) owned_pos: u32,
}

impl Keyed for ElemSlot {
    fn key(&self) -> &str {
        &self.elem.key
    }
}

pub(crate) struct Queue {
    pub(crate) capacity: u32,
    pub(crate) elems: OrderedMap<ElemSlot>,
}

impl Queue {
    pub(crate) fn new(capacity: u32) -> Queue {
        Queue {
            capacity,
            elems: OrderedMap::new(),
        }
    }

    /// Whether a new key fits.
    pub(crate) fn has_room(&self) -> bool {
        self.elems.len() < self.capacity as usize
    }
}
