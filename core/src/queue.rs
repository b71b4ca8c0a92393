//! The room's ordered queue (NetEase chatroom queue, SPEC §5).
//!
//! Structure: the same compact store as attributes ([`Store`]): records in
//! queue order with tombstones, keys and values in an arena, a swiss table
//! from key to position, and the owner index of transient elements. Offer
//! of a new key appends (amortized O(1)); offer of an existing key and
//! batch update write in place, keeping the position (O(1)); poll of a
//! named key leaves a tombstone (O(1)); poll of the head advances a cursor
//! past tombstones, which only moves forward between compactions
//! (amortized O(1)); compaction runs when tombstones outnumber live
//! elements, paid for by the removals that made them. List and multi-get
//! are O(elements returned). A linked list would give the same bounds with
//! a pointer per element and no cache locality; a `VecDeque` would make
//! named polls O(n).

use crate::store::Store;

pub(crate) struct Queue {
    pub(crate) capacity: u32,
    pub(crate) elems: Store<()>,
}

impl Queue {
    pub(crate) fn new(capacity: u32) -> Queue {
        Queue {
            capacity,
            elems: Store::default(),
        }
    }

    /// Whether a new key fits.
    pub(crate) fn has_room(&self) -> bool {
        self.elems.len() < self.capacity as usize
    }
}
