//! Catch-up history: each room's recent events, postcard-encoded in a byte
//! ring that drops the oldest, so a reconnecting client asks for the
//! events after the last sequence number it saw instead of the whole
//! state (see [`Command::Since`](crate::Command::Since)).
//!
//! The bound is the profile's `history_events` and `history_bytes` (bytes
//! of encoded events; 0 in either turns history off). Once the ring has
//! grown to the bound it allocates nothing more: recording appends to the
//! ring's spare capacity and drops whole events from its front.
//!
//! Encoding needs the `serde` feature; without it nothing is recorded and
//! every catch-up answers `HistoryTruncated`, sending the client to a
//! full read, which is always correct.

use alloc::collections::VecDeque;

use crate::event::Event;

/// One room's recent events.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The encoded events, oldest first, back to back.
    ring: VecDeque<u8>,
    /// `(seq, encoded length)` of each event in `ring`, oldest first.
    index: VecDeque<(u64, u32)>,
    /// Every event with a sequence number above this one is in the ring:
    /// a catch-up from this number or later is complete.
    covered_from: u64,
}

impl History {
    /// An empty history of a room at `seq`: it covers nothing before.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // restore only
    pub(crate) fn starting_at(seq: u64) -> History {
        History {
            covered_from: seq,
            ..History::default()
        }
    }

    /// Forgets every event: a change at `seq` went out with no event (a
    /// silent write), so a catch-up from before it would have a gap. The
    /// buffers are kept for the events to come.
    pub(crate) fn restart_at(&mut self, seq: u64) {
        self.ring.clear();
        self.index.clear();
        self.covered_from = seq;
    }

    /// The number a catch-up may start from, at the earliest.
    pub(crate) fn covered_from(&self) -> u64 {
        self.covered_from
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes of encoded events held.
    pub(crate) fn bytes(&self) -> usize {
        self.ring.len()
    }

    /// Heap bytes the history holds (its buffers' capacities).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ring.capacity() + self.index.capacity() * core::mem::size_of::<(u64, u32)>()
    }

    /// Records `event`, then drops the oldest events until both bounds hold.
    pub(crate) fn record(&mut self, event: &Event, max_events: u32, max_bytes: u32) {
        if max_events == 0 || max_bytes == 0 {
            self.covered_from = event.seq;
            return;
        }
        match encode(event, &mut self.ring) {
            Some(len) => self.index.push_back((event.seq, len)),
            None => {
                // Not encodable (no serde): nothing before this is complete.
                self.ring.clear();
                self.index.clear();
                self.covered_from = event.seq;
                return;
            }
        }
        while self.index.len() > max_events as usize || self.ring.len() > max_bytes as usize {
            let Some((seq, len)) = self.index.pop_front() else {
                break;
            };
            self.ring.drain(..(len as usize).min(self.ring.len()));
            self.covered_from = seq;
        }
    }

    /// The held events after `seq`, oldest first, each with its encoding.
    pub(crate) fn after(&self, seq: u64) -> impl Iterator<Item = Event> + '_ {
        let mut offset = 0usize;
        self.index.iter().filter_map(move |&(s, len)| {
            let start = offset;
            offset += len as usize;
            if s <= seq {
                return None;
            }
            decode(&self.ring, start, len as usize)
        })
    }

    /// The invariants: the index covers the ring exactly, in ascending
    /// numbers above `covered_from`, none above `seq`, within the bounds.
    pub(crate) fn consistent(
        &self,
        seq: u64,
        max_events: u32,
        max_bytes: u32,
    ) -> Result<(), &'static str> {
        let total: usize = self.index.iter().map(|(_, l)| *l as usize).sum();
        if total != self.ring.len() {
            return Err("history index does not cover its ring");
        }
        let mut last = self.covered_from;
        for &(s, _) in &self.index {
            if s <= last {
                return Err("history numbers not ascending above its start");
            }
            last = s;
        }
        if last > seq || self.covered_from > seq {
            return Err("history ahead of the room");
        }
        if self.index.len() > max_events as usize || self.ring.len() > max_bytes as usize {
            return Err("history over the profile's bounds");
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
fn encode(event: &Event, ring: &mut VecDeque<u8>) -> Option<u32> {
    let before = ring.len();
    let taken = core::mem::take(ring);
    // Extending a VecDeque cannot fail; if serialization did, the ring is
    // gone and the caller starts afresh.
    *ring = postcard::to_extend(event, taken).ok()?;
    u32::try_from(ring.len() - before).ok()
}

#[cfg(not(feature = "serde"))]
fn encode(_: &Event, _: &mut VecDeque<u8>) -> Option<u32> {
    None
}

#[cfg(feature = "serde")]
fn decode(ring: &VecDeque<u8>, start: usize, len: usize) -> Option<Event> {
    let bytes: alloc::vec::Vec<u8> = ring.range(start..start + len).copied().collect();
    postcard::from_bytes(&bytes).ok()
}

#[cfg(not(feature = "serde"))]
fn decode(_: &VecDeque<u8>, _: usize, _: usize) -> Option<Event> {
    None
}
