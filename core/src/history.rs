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
//! Compact by layout: an event is stored without its room id (the room's)
//! and without its number (the history's numbers are consecutive: every
//! event of the room is recorded, and a change with no event restarts the
//! history), so the ring holds the rest of the event's bytes and a side
//! list holds one `u32` length per event. The ring is a `Vec<u8>` whose
//! front is dropped by moving a start offset and compacted (one `memmove`)
//! once the dropped part passes a quarter of the held part; it grows by a
//! quarter at a time rather than doubling.
//!
//! Encoding needs the `serde` feature; without it nothing is recorded and
//! every catch-up answers `HistoryTruncated`, sending the client to a
//! full read, which is always correct.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::event::Event;
#[cfg(feature = "serde")]
use crate::text::Str;

/// One room's recent events.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The encoded events, oldest first, back to back, from `head` on
    /// (before it: dropped events not yet compacted away).
    ring: Vec<u8>,
    /// Where the oldest event held starts in `ring`.
    head: usize,
    /// The encoded length of each event in `ring`, oldest first; the
    /// `i`-th is event number `covered_from + 1 + i`.
    lens: VecDeque<u32>,
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
        self.head = 0;
        self.lens.clear();
        self.covered_from = seq;
    }

    /// The number a catch-up may start from, at the earliest.
    pub(crate) fn covered_from(&self) -> u64 {
        self.covered_from
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.lens.len()
    }

    /// Bytes of encoded events held.
    pub(crate) fn bytes(&self) -> usize {
        self.ring.len() - self.head
    }

    /// Heap bytes the history holds (its buffers' capacities).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ring.capacity() + self.lens.capacity() * core::mem::size_of::<u32>()
    }

    /// The number of the newest event held (`covered_from` if none).
    fn newest(&self) -> u64 {
        self.covered_from.saturating_add(self.lens.len() as u64)
    }

    /// Records `event`, then drops the oldest events until both bounds hold.
    pub(crate) fn record(&mut self, event: &Event, max_events: u32, max_bytes: u32) {
        if max_events == 0 || max_bytes == 0 {
            self.restart_at(event.seq);
            return;
        }
        if event.seq != self.newest().saturating_add(1) {
            // Not the next number (cannot happen while every numbered
            // change is recorded or restarts the history): start afresh.
            self.restart_at(event.seq.saturating_sub(1));
        }
        self.compact();
        make_room(&mut self.ring, estimate(event));
        match encode(event, &mut self.ring) {
            Some(len) => self.lens.push_back(len),
            None => {
                // Not encodable (no serde): nothing before this is complete.
                self.restart_at(event.seq);
                return;
            }
        }
        while self.lens.len() > max_events as usize || self.bytes() > max_bytes as usize {
            let Some(len) = self.lens.pop_front() else {
                break;
            };
            self.head = (self.head + len as usize).min(self.ring.len());
            self.covered_from = self.covered_from.saturating_add(1);
        }
    }

    /// Moves the held events to the front once the dropped ones before
    /// them pass a quarter of them (each byte is moved at most four times
    /// per byte dropped: amortized, and allocation-free).
    fn compact(&mut self) {
        if self.head > 0 && self.head >= self.bytes() / 4 {
            self.ring.copy_within(self.head.., 0);
            self.ring.truncate(self.ring.len() - self.head);
            self.head = 0;
        }
    }

    /// The held events after `seq`, oldest first, decoded one by one; their
    /// room id is `room`.
    #[cfg(feature = "serde")]
    pub(crate) fn after<'a>(&'a self, room: &'a Str, seq: u64) -> impl Iterator<Item = Event> + 'a {
        let mut offset = self.head;
        let mut number = self.covered_from;
        self.lens.iter().filter_map(move |&len| {
            let start = offset;
            offset += len as usize;
            number += 1;
            if number <= seq {
                return None;
            }
            decode(&self.ring, start, len as usize, room, number)
        })
    }

    /// Without serde nothing is held.
    #[cfg(not(feature = "serde"))]
    pub(crate) fn after<'a>(
        &'a self,
        _: &'a crate::text::Str,
        _: u64,
    ) -> impl Iterator<Item = Event> + 'a {
        core::iter::empty()
    }

    /// The invariants: the lengths cover the ring exactly, the numbers end
    /// at the room's `seq`, within the bounds.
    pub(crate) fn consistent(
        &self,
        seq: u64,
        max_events: u32,
        max_bytes: u32,
    ) -> Result<(), &'static str> {
        let total: usize = self.lens.iter().map(|l| *l as usize).sum();
        if self.head > self.ring.len() || total != self.bytes() {
            return Err("history lengths do not cover its ring");
        }
        if self.newest() != seq {
            return Err("history does not end at the room's number");
        }
        if self.lens.len() > max_events as usize || self.bytes() > max_bytes as usize {
            return Err("history over the profile's bounds");
        }
        Ok(())
    }
}

/// Makes room for about `need` more bytes: growth by a quarter of what is
/// held (at least `need`), so a full ring carries little slack.
fn make_room(ring: &mut Vec<u8>, need: usize) {
    let spare = ring.capacity() - ring.len();
    if spare < need {
        ring.reserve_exact(need.max(ring.len() / 4));
    }
}

/// A close upper guess of an event's encoded size: its strings plus a few
/// bytes of numbers and tags per part.
fn estimate(event: &Event) -> usize {
    use crate::event::Change;
    let text = |s: &str| s.len() + 2;
    let actor = |a: &crate::command::Actor| match a {
        crate::command::Actor::Admin => 1,
        crate::command::Actor::User(u) => 1 + text(u),
    };
    let changes: usize = event
        .changes
        .iter()
        .map(|c| {
            4 + match c {
                Change::AttributeSet {
                    key, value, owner, ..
                }
                | Change::QueueSet {
                    key, value, owner, ..
                } => text(key) + text(value) + actor(owner),
                Change::AttributeDeleted { key }
                | Change::QueueRemoved { key }
                | Change::CounterDeleted { key } => text(key),
                Change::CounterChanged { key, .. } => text(key) + 10,
                Change::MemberJoined { user, .. }
                | Change::MemberExited { user, .. }
                | Change::RoleSet { user, .. } => text(user) + 2,
                Change::LockSet { name, .. } | Change::LockRemoved { name } => text(name) + 10,
                Change::LockAcquired { name, holder, .. }
                | Change::LockReleased { name, holder }
                | Change::LockExpired { name, holder } => text(name) + text(holder) + 10,
                Change::RoomCreated { creator } => text(creator),
                Change::RoomDestroyed | Change::QueueInit { .. } | Change::QueueDropped => 5,
            }
        })
        .sum();
    16 + actor(&event.operator) + event.ext.as_deref().map_or(1, text) + changes
}

/// An event as stored: every field but the room id and the number.
#[cfg(feature = "serde")]
#[derive(serde::Serialize)]
struct BodyOut<'a> {
    at: crate::time::Millis,
    operator: &'a crate::command::Actor,
    cause: crate::event::Cause,
    delivery: crate::event::Delivery,
    ext: &'a Option<Str>,
    changes: &'a [crate::event::Change],
}

/// [`BodyOut`], read back.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct BodyIn {
    at: crate::time::Millis,
    operator: crate::command::Actor,
    cause: crate::event::Cause,
    delivery: crate::event::Delivery,
    ext: Option<Str>,
    changes: alloc::vec::Vec<crate::event::Change>,
}

/// A postcard output appending to the ring (postcard's own `to_extend`
/// pushes byte by byte).
#[cfg(feature = "serde")]
struct Append<'a>(&'a mut Vec<u8>);

#[cfg(feature = "serde")]
impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "serde")]
fn encode(event: &Event, ring: &mut Vec<u8>) -> Option<u32> {
    let before = ring.len();
    let body = BodyOut {
        at: event.at,
        operator: &event.operator,
        cause: event.cause,
        delivery: event.delivery,
        ext: &event.ext,
        changes: &event.changes,
    };
    if postcard::serialize_with_flavor(&body, Append(ring)).is_err() {
        ring.truncate(before);
        return None;
    }
    u32::try_from(ring.len() - before).ok()
}

#[cfg(not(feature = "serde"))]
fn encode(_: &Event, _: &mut Vec<u8>) -> Option<u32> {
    None
}

#[cfg(feature = "serde")]
fn decode(ring: &[u8], start: usize, len: usize, room: &Str, seq: u64) -> Option<Event> {
    let b: BodyIn = postcard::from_bytes(ring.get(start..start.checked_add(len)?)?).ok()?;
    Some(Event {
        room: room.clone(),
        seq,
        at: b.at,
        operator: b.operator,
        cause: b.cause,
        delivery: b.delivery,
        ext: b.ext,
        changes: b.changes,
    })
}
