//! Catch-up history: each room's recent events, in postcard's format, in
//! a queue of byte blocks that drops the oldest, so a reconnecting client
//! asks for the events after the last sequence number it saw instead of
//! the whole state (see [`Command::Since`](crate::Command::Since)).
//!
//! The bound is the profile's `history_events` and `history_bytes` (bytes
//! of encoded events; 0 in either turns history off). At the bound,
//! recording drops whole events from its front, and a block all of whose
//! events were dropped becomes a block the next events are written into,
//! so a history at its bound allocates nothing (the exceptions are
//! below: events that outgrow its blocks, and spares past a cap).
//!
//! Compact by layout: an event is stored without its room id (the room's)
//! and without its number (the history's numbers are consecutive: every
//! event of the room is recorded, and a change with no event restarts the
//! history), as a 4-byte length and the rest of the event's bytes, back to
//! back in a block. An event never straddles two blocks, so each one is
//! decoded from one slice.
//!
//! Blocks, not one growing buffer, because of where the memory comes
//! from. A history grows for as long as its room lives below the bound
//! (256 events take a room with a write a minute four hours). A buffer
//! that grows by moving to a larger one copies all it holds each time,
//! into memory the process may never have touched: grown by a quarter,
//! about five bytes of fresh memory for each byte recorded. Measured over
//! 100,000 and 500,000 rooms of the cold benchmarks, that was 0.61 page
//! faults a write, and a write took 4.4 and 11.6 µs instead of 1.6 and
//! 2.0 µs with history off (`profile cold-write`). A block, once
//! allocated, is written in place and never moved:
//! - a young history is one block that grows by a quarter (at least by
//!   the event) up to [`BLOCK`] bytes, so a room with few events holds
//!   about their size;
//! - past that, each new block holds four of the event it is made for:
//!   [`BLOCK`] bytes for events up to a quarter of it, more for larger
//!   ones (rounded up to a multiple of [`STEP`], at most the byte bound),
//!   and the blocks already written stay where they are;
//! - a lone block whose dropped front is a quarter of it or more (a
//!   history bounded below a block) moves what it holds to its start
//!   instead of growing: at most three bytes moved for each byte
//!   dropped, within one block;
//! - a block all of whose events were dropped is kept as a spare, and the
//!   oldest spare is the next new block if it is at least that block's
//!   size (else it is freed: events larger than it came). Two spares are
//!   always kept; more only while the blocks stay within a quarter over
//!   the byte bound (past that an emptied block is freed). So a history
//!   at its bound allocates nothing unless its events outgrow its blocks
//!   or its blocks need more than two spares past that cap, and it does
//!   not keep the blocks of its largest moment forever. Measured at the
//!   default bounds (one room, 16,000 writes of four keys): values of 1
//!   to 1,500 bytes hold 80,696 bytes of blocks for 65,018 bytes of
//!   events (the ring before the blocks: 80,723; every spare kept:
//!   112,624); 513-byte values 74,552 (ring 79,495); 64-byte values
//!   26,424 (ring 25,939). A model of an 8,000-byte bound with events of
//!   16 to 316 bytes allocated at one record in eleven with the cap
//!   alone (before the rounding to a [`STEP`]), and 2 times in 10,000
//!   records with both.
//!
//! New blocks are full-sized at once, not grown by doubling: a block that
//! grows by moving is the copying above on a smaller scale, and measured
//! slower (3.2 µs a cold write starting at a quarter block, 5.3 µs at
//! half a block, against 2.3 µs).
//!
//! What a history holds past its events: the dropped front of the
//! oldest block; each block's unused end, less than the event that did
//! not fit there, so under a quarter of the block while events keep one
//! size; the spares, two and more only within the cap above; and the
//! list of the blocks before the newest, a pointer and two lengths per
//! block. `alloc_report`'s grid rooms hold 9 events, 2,061 bytes, in a
//! first block of 927 bytes and one of 1,280 (four of the 302-byte event
//! that started it, rounded up): 2,311 heap bytes with the box and the
//! list, where the ring held 2,364.
//!
//! A room holds its history as one optional box ([`RoomHistory`], 8
//! bytes): none while it holds no event (every room when the profile
//! turns history off), then 80 bytes and the blocks. The box holds the
//! newest block's pointer and lengths itself, and the list holds only
//! the older blocks, so a room whose history is one block has no list,
//! and recording an event goes from the room to the box to the block:
//! with the newest block in the list too, that was one more trip to
//! memory in a room not touched recently (callgrind, 4 MiB last-level
//! cache, `profile cold-write` and `cold-exit` over 100,000 rooms: 21.2
//! and 21.5 last-level read misses per command before, 20.2 and 20.5
//! after), and 48 more bytes in each room of the grid (a 56-byte box and
//! a list of four).
//!
//! Encoding needs the `serde` feature; without it nothing is recorded and
//! every catch-up answers `HistoryTruncated`, sending the client to a
//! full read, which is always correct.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::event::Event;
use crate::text::Str;

/// Bytes of the length before each event.
const PREFIX: usize = 4;

/// Capacity of a full block: a young history grows its one block up to
/// it, and past it adds blocks of this size.
const BLOCK: usize = 1024;

/// New blocks past [`BLOCK`] are a multiple of this, so events that grow
/// by a few bytes (a sequence number's varint gaining a byte) still fit
/// the spares made for them.
const STEP: usize = 256;

/// Capacity above which the engine's encoding buffer is not kept after an
/// event (one very large event should not pin its size).
const KEEP_SCRATCH: usize = 16 * 1024;

/// One room's recent events.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The newest block: the one events are written into, kept beside
    /// the counts so that recording an event reaches it without a trip
    /// through the block list (see the module's notes). The blocks are
    /// `older` then this one; each holds events back to back, each a
    /// little-endian `u32` length and that many bytes. The first block
    /// that holds events holds them from `head`; every later one from its
    /// start. Empty, with no capacity, in a history that never held one.
    newest: Vec<u8>,
    /// The blocks before the newest, oldest first; the first `spares`
    /// hold no events. Empty in a history of one block, as most are.
    older: VecDeque<Vec<u8>>,
    /// Where the oldest event held starts, in the first block that holds
    /// events (0 when none does).
    head: u32,
    /// Events held.
    count: u32,
    /// Bytes held: the events' encodings and their lengths.
    held: u32,
    /// Blocks at the front whose events were all dropped: each waits to
    /// be written again as a new block. None while no event is held.
    spares: u32,
    /// Every event with a sequence number above this one is held: a
    /// catch-up from this number or later is complete.
    covered_from: u64,
}

/// The length stored at `at`, if `block` has one there.
fn len_at(block: &[u8], at: usize) -> Option<usize> {
    let bytes = block.get(at..at.checked_add(PREFIX)?)?;
    let mut le = [0u8; PREFIX];
    le.copy_from_slice(bytes);
    Some(u32::from_le_bytes(le) as usize)
}

/// Capacity of a new block (after a history's first) for an event of
/// `size` bytes: four such events rounded up to a [`STEP`], at least
/// [`BLOCK`], at most the byte bound (and at least the event). A block's
/// unused end is less than the event that did not fit in it, so with
/// events of one size it is under a quarter of the block.
fn new_block(size: usize, max_bytes: usize) -> usize {
    let four = size.saturating_mul(4).saturating_add(STEP - 1) / STEP * STEP;
    four.max(BLOCK).min(max_bytes).max(size)
}

impl History {
    /// Forgets every event: a change at `seq` went out with no event (a
    /// silent write), so a catch-up from before it would have a gap. One
    /// block is kept, empty, for the events to come.
    pub(crate) fn restart_at(&mut self, seq: u64) {
        self.older.clear();
        self.newest.clear();
        self.head = 0;
        self.count = 0;
        self.held = 0;
        self.spares = 0;
        self.covered_from = seq;
    }

    /// The number a catch-up may start from, at the earliest.
    pub(crate) fn covered_from(&self) -> u64 {
        self.covered_from
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// Bytes held: the events' encodings and their lengths.
    pub(crate) fn bytes(&self) -> usize {
        self.held as usize
    }

    /// Heap bytes the history holds: its blocks' capacities and the block
    /// list's.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.capacity() + self.older.capacity() * core::mem::size_of::<Vec<u8>>()
    }

    /// The blocks' capacity.
    fn capacity(&self) -> usize {
        self.older.iter().map(Vec::capacity).sum::<usize>() + self.newest.capacity()
    }

    /// The blocks, oldest first.
    #[cfg(all(test, feature = "serde"))]
    fn blocks(&self) -> VecDeque<&Vec<u8>> {
        self.older
            .iter()
            .chain(core::iter::once(&self.newest))
            .collect()
    }

    /// The block at `i`, oldest first, to damage.
    #[cfg(all(test, feature = "serde"))]
    fn block_mut(&mut self, i: usize) -> &mut Vec<u8> {
        self.older.get_mut(i).unwrap_or(&mut self.newest)
    }

    /// The block at `i`, oldest first (the newest is at `older.len()`).
    fn block(&self, i: usize) -> Option<&Vec<u8>> {
        match i.cmp(&self.older.len()) {
            core::cmp::Ordering::Less => self.older.get(i),
            core::cmp::Ordering::Equal => Some(&self.newest),
            core::cmp::Ordering::Greater => None,
        }
    }

    /// The number of the newest event held (`covered_from` if none).
    fn newest(&self) -> u64 {
        self.covered_from.saturating_add(u64::from(self.count))
    }

    /// Records `event`: drops the oldest events until it fits both bounds
    /// (`max_bytes` counts the 4-byte lengths too), then stores it.
    /// `scratch` is the engine's buffer to encode into, reused.
    pub(crate) fn record(
        &mut self,
        event: &Event,
        max_events: u32,
        max_bytes: u32,
        scratch: &mut Vec<u8>,
    ) {
        if max_events == 0 || max_bytes == 0 {
            self.restart_at(event.seq);
            return;
        }
        if event.seq != self.newest().saturating_add(1) {
            // Not the next number (cannot happen while every numbered
            // change is recorded or restarts the history): start afresh.
            self.restart_at(event.seq.saturating_sub(1));
        }
        scratch.clear();
        scratch.extend_from_slice(&[0; PREFIX]);
        let len = encode(event, scratch).and_then(|n| u32::try_from(n).ok());
        let (Some(n), Some(slot)) = (len, scratch.get_mut(..PREFIX)) else {
            // Not encodable (no serde): nothing before this is complete.
            self.restart_at(event.seq);
            return;
        };
        slot.copy_from_slice(&n.to_le_bytes());
        let size = scratch.len();
        if size > max_bytes as usize {
            // Alone over the bound: it would be dropped at once, and every
            // event before it with it.
            self.restart_at(event.seq);
            return;
        }
        while self.count > 0
            && (self.count >= max_events || self.bytes() + size > max_bytes as usize)
        {
            self.drop_oldest(max_bytes as usize);
        }
        // Now `count < max_events` and `held + size <= max_bytes`, so
        // neither sum below can overflow.
        match self.place(size, max_bytes as usize) {
            Some(block) => {
                block.extend_from_slice(scratch);
                self.count += 1;
                self.held += n + PREFIX as u32;
            }
            // Past what `u32` offsets reach: start afresh.
            None => self.restart_at(event.seq),
        }
    }

    /// Drops the oldest event. A block left with no event becomes a
    /// spare, unless the blocks' capacity is past a quarter over
    /// `max_bytes` (then it is freed); the last event gone, one block is
    /// kept, cleared.
    fn drop_oldest(&mut self, max_bytes: usize) {
        let first = self.spares as usize;
        let Some(front) = self.block(first) else {
            // Events counted but no block holds them (cannot happen while
            // the invariants hold): forget them, or `record` would never
            // stop dropping.
            self.restart_at(self.newest());
            return;
        };
        let head = self.head as usize;
        let next = len_at(front, head).map_or(front.len(), |len| head + PREFIX + len);
        let emptied = next >= front.len();
        self.count = self.count.saturating_sub(1);
        self.covered_from = self.covered_from.saturating_add(1);
        let dropped = u32::try_from(next.saturating_sub(head)).unwrap_or(u32::MAX);
        self.held = self.held.saturating_sub(dropped);
        if !emptied {
            // `next` is below the block's length, itself at most
            // `u32::MAX` (see `place`).
            self.head = u32::try_from(next).unwrap_or(u32::MAX);
            return;
        }
        self.head = 0;
        if self.count == 0 {
            self.restart_at(self.covered_from);
        } else if self.spares >= 2 && self.capacity() > max_bytes.saturating_add(max_bytes / 4) {
            // `first` is not the newest: emptying the newest drops the
            // last event.
            self.older.remove(first);
        } else {
            self.spares += 1;
        }
    }

    /// The block the next `size` bytes are appended to, with the capacity
    /// for them: the newest block if it has room; else a lone block whose
    /// dropped front is a quarter of it or more, closed up; else a lone
    /// block grown towards [`BLOCK`]; else a new block (see
    /// [`new_block`]), the oldest spare if it is at least that size.
    /// `None` if a block's length would pass `u32::MAX`.
    fn place(&mut self, size: usize, max_bytes: usize) -> Option<&mut Vec<u8>> {
        let lone = self.older.is_empty();
        let head = self.head as usize;
        let back = &mut self.newest;
        let len = back.len();
        if lone && head > 0 && back.capacity() - len < size && head * 4 >= len {
            back.copy_within(head.., 0);
            back.truncate(len - head);
            self.head = 0;
        }
        let (len, cap) = (back.len(), back.capacity());
        if lone && cap - len < size && cap < BLOCK && len + size <= BLOCK {
            // A young history's one block, by a quarter; a first block
            // starts at the event's size.
            back.reserve_exact((len + size).max(len + len / 4).min(BLOCK) - len);
        }
        if back.capacity() - back.len() >= size {
            u32::try_from(back.len() + size).ok()?;
            return Some(&mut self.newest);
        }
        u32::try_from(size).ok()?;
        if self.count == 0 {
            // An empty history's block (it has no older ones) too small for
            // the event, and past a block: a first block of the event's size.
            self.newest = Vec::with_capacity(size);
            return Some(&mut self.newest);
        }
        let want = new_block(size, max_bytes);
        let block = if self.spares > 0 {
            self.spares -= 1;
            match self.older.pop_front() {
                // Written again if it is at least a new block's size, else
                // freed (a block that events larger than it outgrew).
                Some(mut b) if b.capacity() >= want => {
                    b.clear();
                    b
                }
                _ => Vec::with_capacity(want),
            }
        } else {
            Vec::with_capacity(want)
        };
        let full = core::mem::replace(&mut self.newest, block);
        if self.older.capacity() == 0 {
            // A second block: a list of one.
            self.older.reserve_exact(1);
        }
        self.older.push_back(full);
        Some(&mut self.newest)
    }

    /// The blocks that hold events, oldest first, each with where its
    /// events start: the first at `head`, every later one at 0.
    fn live(&self) -> impl Iterator<Item = (&Vec<u8>, usize)> + '_ {
        let head = self.head as usize;
        let live = self.older.iter().skip(self.spares as usize);
        let live = live.chain(core::iter::once(&self.newest));
        live.enumerate()
            .map(move |(i, block)| (block, if i == 0 { head } else { 0 }))
    }

    /// Where each held event's bytes are, oldest first.
    #[cfg(feature = "serde")]
    fn encodings(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.live().flat_map(|(block, mut at)| {
            core::iter::from_fn(move || {
                let len = len_at(block, at)?;
                let start = at + PREFIX;
                at = start.saturating_add(len);
                block.get(start..at)
            })
        })
    }

    /// The held events after `seq`, oldest first, decoded one by one; their
    /// room id is `room`.
    #[cfg(feature = "serde")]
    pub(crate) fn after<'a>(&'a self, room: &'a Str, seq: u64) -> impl Iterator<Item = Event> + 'a {
        let mut number = self.covered_from;
        self.encodings()
            .map(move |bytes| {
                number = number.saturating_add(1);
                (number, bytes)
            })
            .filter(move |&(number, _)| number > seq)
            .map_while(move |(number, bytes)| decode(bytes, room, number))
    }

    /// Without serde nothing is held.
    #[cfg(not(feature = "serde"))]
    pub(crate) fn after<'a>(&'a self, _: &'a Str, _: u64) -> impl Iterator<Item = Event> + 'a {
        core::iter::empty()
    }

    /// The lengths of a history that holds events cover each block that
    /// holds them exactly (the first from `head`), each holds one at
    /// least, and together they count the events and the bytes held.
    fn cover(&self) -> Result<(), &'static str> {
        if self.spares as usize > self.older.len() {
            return Err("history spares with no block after them");
        }
        let (mut n, mut bytes) = (0u64, 0usize);
        for (block, from) in self.live() {
            if from > block.len() {
                return Err("history head past its blocks");
            }
            if from == block.len() {
                return Err("history block holds no event");
            }
            let mut at = from;
            while at < block.len() {
                let Some(len) = len_at(block, at) else {
                    return Err("history length cut short");
                };
                at += PREFIX + len;
                n += 1;
            }
            if at != block.len() {
                return Err("history lengths do not cover its blocks");
            }
            bytes += block.len() - from;
        }
        if n != u64::from(self.count) || bytes != self.held as usize {
            return Err("history lengths do not cover its blocks");
        }
        Ok(())
    }

    /// The invariants: an empty history is its newest block alone, cleared,
    /// with no spares; one that holds events is covered by its lengths
    /// ([`History::cover`]); the numbers end at the room's `seq`, within
    /// the bounds.
    pub(crate) fn consistent(
        &self,
        seq: u64,
        max_events: u32,
        max_bytes: u32,
    ) -> Result<(), &'static str> {
        if self.count == 0 {
            let cleared = self.older.is_empty() && self.newest.is_empty();
            if !cleared || self.head > 0 || self.held > 0 || self.spares > 0 {
                return Err("an empty history holds bytes");
            }
        } else {
            self.cover()?;
        }
        if self.newest() != seq {
            return Err("history does not end at the room's number");
        }
        if self.count > max_events || self.held > max_bytes {
            return Err("history over the profile's bounds");
        }
        Ok(())
    }
}

/// A room's history: `None` is an empty one that covers everything after
/// the room's `seq` (a new room, a restored one, every room whose profile
/// turns history off), so a room pays 8 bytes for it until it records an
/// event. Every change that numbers an event either records it or
/// restarts the history (`Engine::commit`), so an absent history stays
/// exactly the one it stands for.
#[derive(Debug, Default)]
pub(crate) struct RoomHistory(Option<Box<History>>);

impl RoomHistory {
    /// Prefetch hint: the history's counts.
    pub(crate) fn warm_counts(&self) {
        if let Some(h) = &self.0 {
            crate::prefetch::line(&**h);
        }
    }

    /// Prefetch hint: where the next event goes (reads the counts, which
    /// [`RoomHistory::warm_counts`] has started loading).
    pub(crate) fn warm_end(&self) {
        if let Some(h) = &self.0 {
            crate::prefetch::line(h.newest.as_ptr().wrapping_add(h.newest.len()));
        }
    }

    /// Forgets every event (see [`History::restart_at`]); an absent history
    /// already covers from the room's `seq`.
    pub(crate) fn restart_at(&mut self, seq: u64) {
        if let Some(h) = &mut self.0 {
            h.restart_at(seq);
        }
    }

    /// The number a catch-up may start from, at the earliest, in a room at
    /// `seq`.
    pub(crate) fn covered_from(&self, seq: u64) -> u64 {
        self.0.as_ref().map_or(seq, |h| h.covered_from())
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    /// Bytes held: the events' encodings and their lengths.
    pub(crate) fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |h| h.bytes())
    }

    /// Heap bytes the history holds: its box and its blocks.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |h| core::mem::size_of::<History>() + h.heap_bytes())
    }

    /// Records `event` (see [`History::record`]), encoding it in
    /// `scratch`, which is given back if one event grew it past
    /// `KEEP_SCRATCH`. With history off nothing is held, and nothing is
    /// allocated.
    #[inline]
    pub(crate) fn record(
        &mut self,
        event: &Event,
        max_events: u32,
        max_bytes: u32,
        scratch: &mut Vec<u8>,
    ) {
        if max_events == 0 || max_bytes == 0 {
            if self.0.is_some() {
                self.0 = None;
            }
            return;
        }
        // A new history starts empty: recording the event restarts it at
        // the number before the event's, which is what the absent one
        // covered from.
        self.0
            .get_or_insert_with(Box::default)
            .record(event, max_events, max_bytes, scratch);
        if scratch.capacity() > KEEP_SCRATCH {
            *scratch = Vec::new();
        }
    }

    /// The held events after `seq`, oldest first; their room id is `room`.
    pub(crate) fn after<'a>(&'a self, room: &'a Str, seq: u64) -> impl Iterator<Item = Event> + 'a {
        self.0.iter().flat_map(move |h| h.after(room, seq))
    }

    /// The invariants of [`History::consistent`]; an absent history holds
    /// none and ends at the room's number by definition.
    pub(crate) fn consistent(
        &self,
        seq: u64,
        max_events: u32,
        max_bytes: u32,
    ) -> Result<(), &'static str> {
        self.0
            .as_ref()
            .map_or(Ok(()), |h| h.consistent(seq, max_events, max_bytes))
    }
}

/// An event as stored, read back: every field but the room id and the
/// number, in the order [`encode`] writes them.
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

/// Appends the stored form of `event` to `out` and returns its length.
///
/// The bytes are exactly postcard's for the event's fields but the room
/// and the number (the test `encode_is_postcard` holds them equal for
/// every kind of change), so [`decode`] reads them with postcard and the
/// stored sizes the profile's `history_bytes` bounds stay those the
/// reference model counts. Written by hand because this runs on every
/// event: serde's generic path cost about 575 instructions a write, this
/// one a fraction (see the commit that added it).
#[cfg(feature = "serde")]
fn encode(event: &Event, out: &mut Vec<u8>) -> Option<usize> {
    let before = out.len();
    let mut w = Writer(out);
    w.varint(event.at.0);
    w.actor(&event.operator);
    w.tag(event.cause as u32);
    w.tag(event.delivery as u32);
    match &event.ext {
        None => w.byte(0),
        Some(ext) => {
            w.byte(1);
            w.text(ext);
        }
    }
    w.varint(event.changes.len() as u64);
    for c in &event.changes {
        w.change(c);
    }
    Some(out.len() - before)
}

/// postcard's wire format, for the types an event holds: integers as
/// LEB128 varints (signed ones zigzagged first), an enum as its variant's
/// index (a varint) then its fields, an option as a 0/1 byte then the
/// value, a string or list as its length (a varint) then its items.
#[cfg(feature = "serde")]
struct Writer<'a>(&'a mut Vec<u8>);

#[cfg(feature = "serde")]
impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    #[inline]
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            // Truncation intended: the low seven bits, with the "more" bit.
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    /// A variant index (always below 128 here, so one byte).
    fn tag(&mut self, index: u32) {
        self.varint(u64::from(index));
    }

    fn flag(&mut self, b: bool) {
        self.0.push(u8::from(b));
    }

    fn signed(&mut self, n: i64) {
        // Zigzag: 0, -1, 1, -2 ... as 0, 1, 2, 3 ...
        self.varint(((n << 1) ^ (n >> 63)) as u64);
    }

    // Into each caller, as `actor` (see there).
    #[inline(always)]
    fn text(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    // Into each caller: an attribute's event writes two actors and three
    // texts, and the calls cost about 50 instructions of a hot write at the
    // history's bound (callgrind, `profile write-hot 20000 40000`: 2,873
    // called, 2,824 inlined).
    #[inline(always)]
    fn actor(&mut self, a: &crate::command::Actor) {
        match a {
            crate::command::Actor::Admin => self.tag(0),
            crate::command::Actor::User(u) => {
                self.tag(1);
                self.text(u);
            }
        }
    }

    fn change(&mut self, c: &crate::event::Change) {
        use crate::event::Change;
        match c {
            Change::RoomCreated { creator } => {
                self.tag(0);
                self.text(creator);
            }
            Change::RoomDestroyed => self.tag(1),
            Change::MemberJoined { user } => {
                self.tag(2);
                self.text(user);
            }
            Change::MemberExited { user, how } => {
                self.tag(3);
                self.text(user);
                self.tag(*how as u32);
            }
            Change::RoleSet { user, role } => {
                self.tag(4);
                self.text(user);
                self.tag(*role as u32);
            }
            Change::AttributeSet {
                key,
                value,
                owner,
                auto_delete,
            } => {
                self.tag(5);
                self.text(key);
                self.text(value);
                self.actor(owner);
                self.flag(*auto_delete);
            }
            Change::AttributeDeleted { key } => {
                self.tag(6);
                self.text(key);
            }
            Change::LockSet { name, ttl_ms } => {
                self.tag(7);
                self.text(name);
                self.varint(*ttl_ms);
            }
            Change::LockRemoved { name } => {
                self.tag(8);
                self.text(name);
            }
            Change::LockAcquired {
                name,
                holder,
                token,
            } => {
                self.tag(9);
                self.text(name);
                self.text(holder);
                self.varint(*token);
            }
            Change::LockReleased { name, holder } => {
                self.tag(10);
                self.text(name);
                self.text(holder);
            }
            Change::LockExpired { name, holder } => {
                self.tag(11);
                self.text(name);
                self.text(holder);
            }
            Change::QueueInit { capacity } => {
                self.tag(12);
                self.varint(u64::from(*capacity));
            }
            Change::QueueSet {
                key,
                value,
                owner,
                transient,
            } => {
                self.tag(13);
                self.text(key);
                self.text(value);
                self.actor(owner);
                self.flag(*transient);
            }
            Change::QueueRemoved { key } => {
                self.tag(14);
                self.text(key);
            }
            Change::QueueDropped => self.tag(15),
            Change::CounterChanged { key, value } => {
                self.tag(16);
                self.text(key);
                self.signed(*value);
            }
            Change::CounterDeleted { key } => {
                self.tag(17);
                self.text(key);
            }
        }
    }
}

#[cfg(not(feature = "serde"))]
fn encode(_: &Event, _: &mut Vec<u8>) -> Option<usize> {
    None
}

#[cfg(feature = "serde")]
fn decode(bytes: &[u8], room: &Str, seq: u64) -> Option<Event> {
    let b: BodyIn = postcard::from_bytes(bytes).ok()?;
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

/// An event of one queue removal in room "room" whose key is `key_len`
/// bytes long (the tests' event, with serde and without).
#[cfg(test)]
fn sized_event(seq: u64, key_len: usize) -> Event {
    use crate::command::Actor;
    use crate::event::{Cause, Change, Delivery};
    Event {
        room: Str::from("room"),
        seq,
        at: crate::time::Millis(seq),
        operator: Actor::Admin,
        cause: Cause::Written,
        delivery: Delivery::Normal,
        ext: None,
        changes: alloc::vec![Change::QueueRemoved {
            key: Str::from("x".repeat(key_len)),
        }],
    }
}

#[cfg(all(test, feature = "serde"))]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests
mod tests {
    use super::*;
    use crate::command::{Actor, Command, Op, Role, Write};
    use crate::engine::Engine;
    use crate::profile::Profile;

    /// An engine with `profile` and room "r", and the time it was made at.
    fn engine_with_room(profile: Profile) -> (Engine, Millis) {
        let mut e = Engine::new(profile);
        let now = Millis(1_000);
        let create = Command::CreateRoom {
            room: "r".into(),
            creator: "u".into(),
        };
        assert!(e.handle(now, create).is_ok());
        (e, now)
    }

    /// The history's hints: its box, then the line where the next event
    /// goes (the end of the newest block); an absent history, none.
    #[test]
    fn hints_name_the_box_and_the_newest_blocks_end() {
        use crate::prefetch::log;
        let mut h = RoomHistory::default();
        log::take();
        h.warm_counts();
        h.warm_end();
        assert!(log::take().is_empty());
        let mut scratch = Vec::new();
        for seq in 1..40 {
            h.record(&sized_event(seq, 30), 256, 65_536, &mut scratch);
        }
        let b = h.0.as_deref().unwrap();
        assert!(!b.older.is_empty(), "more than one block");
        let boxed = core::ptr::from_ref(b).addr();
        let end = b.newest.as_ptr().addr() + b.newest.len();
        h.warm_counts();
        assert_eq!(log::take(), log::covering(boxed, 1));
        h.warm_end();
        assert_eq!(log::take(), log::covering(end, 1));
    }

    // check_invariants holds a room's history to the room's number: a
    // history that ends elsewhere is named.
    #[test]
    fn a_history_that_does_not_end_at_the_room_number_breaks_the_invariants() {
        let (mut e, now) = engine_with_room(Profile::netease());
        let w = Write::new("r", Actor::Admin).op(Op::set("k", "v"));
        assert!(e.handle(now, Command::Write(w)).is_ok());
        assert_eq!(e.check_invariants(), Ok(()));
        assert!(e.rooms.get("r").unwrap().history.len() > 0);
        e.rooms.get_mut("r").unwrap().seq += 1;
        assert_eq!(
            e.check_invariants().map_err(|v| v.what),
            Err("history does not end at the room's number")
        );
    }
    use crate::event::{Cause, Change, Delivery, ExitKind};
    use crate::time::Millis;
    use alloc::string::String;
    use alloc::vec;

    /// One change of every kind, with numbers at the varint boundaries and
    /// texts of one-byte and two-byte lengths.
    fn every_change(n: u64, text: &str) -> Vec<Change> {
        let s = || Str::from(text);
        let i = n as i64;
        vec![
            Change::RoomCreated { creator: s() },
            Change::RoomDestroyed,
            Change::MemberJoined { user: s() },
            Change::MemberExited {
                user: s(),
                how: ExitKind::Left,
            },
            Change::MemberExited {
                user: s(),
                how: ExitKind::Kicked,
            },
            Change::MemberExited {
                user: s(),
                how: ExitKind::Disconnected,
            },
            Change::RoleSet {
                user: s(),
                role: Role::Member,
            },
            Change::RoleSet {
                user: s(),
                role: Role::Admin,
            },
            Change::RoleSet {
                user: s(),
                role: Role::Creator,
            },
            Change::AttributeSet {
                key: s(),
                value: s(),
                owner: Actor::Admin,
                auto_delete: true,
            },
            Change::AttributeSet {
                key: s(),
                value: Str::from(""),
                owner: Actor::User(s()),
                auto_delete: false,
            },
            Change::AttributeDeleted { key: s() },
            Change::LockSet {
                name: s(),
                ttl_ms: n,
            },
            Change::LockRemoved { name: s() },
            Change::LockAcquired {
                name: s(),
                holder: s(),
                token: n,
            },
            Change::LockReleased {
                name: s(),
                holder: s(),
            },
            Change::LockExpired {
                name: s(),
                holder: s(),
            },
            Change::QueueInit { capacity: n as u32 },
            Change::QueueSet {
                key: s(),
                value: s(),
                owner: Actor::User(s()),
                transient: true,
            },
            Change::QueueSet {
                key: s(),
                value: s(),
                owner: Actor::Admin,
                transient: false,
            },
            Change::QueueRemoved { key: s() },
            Change::QueueDropped,
            Change::CounterChanged { key: s(), value: i },
            Change::CounterChanged {
                key: s(),
                value: i.wrapping_neg(),
            },
            Change::CounterChanged {
                key: s(),
                value: i64::MIN,
            },
            Change::CounterChanged {
                key: s(),
                value: i64::MAX,
            },
            Change::CounterDeleted { key: s() },
        ]
    }

    fn events() -> Vec<Event> {
        let numbers = [0, 1, 127, 128, 255, 16_383, 16_384, 1 << 35, u64::MAX];
        let long = "é".repeat(70); // 140 bytes: a two-byte length
        let texts = ["", "k", "a key of twenty-two b", long.as_str()];
        let causes = [
            Cause::RoomCreated,
            Cause::Written,
            Cause::Forced,
            Cause::Membership,
            Cause::OwnerExited,
            Cause::Expired,
            Cause::RoomDestroyed,
        ];
        let deliveries = [Delivery::High, Delivery::Normal, Delivery::Overflow];
        let mut out = Vec::new();
        for (k, &n) in numbers.iter().enumerate() {
            for (t, text) in texts.iter().enumerate() {
                out.push(Event {
                    room: Str::from("room"),
                    seq: n,
                    at: Millis(n),
                    operator: if t % 2 == 0 {
                        Actor::Admin
                    } else {
                        Actor::User(Str::from(*text))
                    },
                    cause: causes[(k + t) % causes.len()],
                    delivery: deliveries[(k + t) % deliveries.len()],
                    ext: (k % 2 == 1).then(|| Str::from(*text)),
                    changes: if t == 0 {
                        Vec::new()
                    } else {
                        every_change(n, text)
                    },
                });
            }
        }
        // A list long enough for a two-byte count.
        let mut many = out[5].clone();
        many.changes = (0..200)
            .map(|i| Change::QueueRemoved {
                key: Str::from(String::from("e") + &"x".repeat(i % 30)),
            })
            .collect();
        out.push(many);
        out
    }

    /// Which variant `c` is. The match has no wildcard, so a new variant
    /// must be named here, and then given to `every_change`, before
    /// `encode_is_postcard` passes again.
    fn variant(c: &Change) -> usize {
        match c {
            Change::RoomCreated { .. } => 0,
            Change::RoomDestroyed => 1,
            Change::MemberJoined { .. } => 2,
            Change::MemberExited { .. } => 3,
            Change::RoleSet { .. } => 4,
            Change::AttributeSet { .. } => 5,
            Change::AttributeDeleted { .. } => 6,
            Change::LockSet { .. } => 7,
            Change::LockRemoved { .. } => 8,
            Change::LockAcquired { .. } => 9,
            Change::LockReleased { .. } => 10,
            Change::LockExpired { .. } => 11,
            Change::QueueInit { .. } => 12,
            Change::QueueSet { .. } => 13,
            Change::QueueRemoved { .. } => 14,
            Change::QueueDropped => 15,
            Change::CounterChanged { .. } => 16,
            Change::CounterDeleted { .. } => 17,
        }
    }

    #[test]
    fn encode_is_postcard() {
        for e in events() {
            let body = (e.at, &e.operator, e.cause, e.delivery, &e.ext, &e.changes);
            let want = postcard::to_allocvec(&body).unwrap();
            let mut got = vec![9u8, 9]; // appends after what is there
            let n = encode(&e, &mut got).unwrap();
            assert_eq!(n, want.len());
            assert_eq!(&got[..2], &[9, 9]);
            assert_eq!(&got[2..], &want[..], "{e:?}");
            let back = decode(&got[2..2 + n], &e.room, e.seq).unwrap();
            assert_eq!(back, e);
        }
        let mut seen = [false; 18];
        for c in events().iter().flat_map(|e| &e.changes) {
            seen[variant(c)] = true;
        }
        assert!(seen.iter().all(|&s| s), "every kind of change is encoded");
    }

    /// The stored size of `e` (its 4-byte length and postcard's bytes),
    /// counted by postcard itself.
    fn stored_size(e: &Event) -> usize {
        let body = (e.at, &e.operator, e.cause, e.delivery, &e.ext, &e.changes);
        PREFIX + postcard::to_allocvec(&body).unwrap().len()
    }

    /// Runs 3,000 events of uneven sizes (keys of 0 to `spread` bytes)
    /// through a history and through a plain queue that drops its oldest
    /// while either bound is passed: after every event both hold the same
    /// events, and every catch-up returns them. Returns the most blocks
    /// the history used at once, and its largest heap.
    fn against_a_queue(max_events: u32, max_bytes: u32, spread: u64) -> (usize, usize) {
        let room = Str::from("room");
        let mut h = History::default();
        let mut scratch = Vec::new();
        let mut model: alloc::collections::VecDeque<(Event, usize)> = Default::default();
        let mut covered = 0u64;
        let mut rng = u64::from(max_bytes) ^ (u64::from(max_events) << 32);
        let (mut blocks, mut peak) = (0, 0);
        for seq in 1..=3_000u64 {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let e = sized_event(seq, ((rng >> 33) % (spread + 1)) as usize);
            model.push_back((e.clone(), stored_size(&e)));
            while model.len() > max_events as usize
                || model.iter().map(|m| m.1).sum::<usize>() > max_bytes as usize
            {
                model.pop_front();
                covered += 1;
            }
            h.record(&e, max_events, max_bytes, &mut scratch);
            h.consistent(seq, max_events, max_bytes).unwrap();
            assert_eq!(h.covered_from(), covered, "event {seq}");
            assert_eq!(h.len(), model.len(), "event {seq}");
            assert_eq!(h.bytes(), model.iter().map(|m| m.1).sum::<usize>());
            let want: Vec<Event> = model.iter().map(|m| m.0.clone()).collect();
            assert_eq!(h.after(&room, covered).collect::<Vec<_>>(), want);
            let from = seq.saturating_sub(2).max(covered);
            let tail = want.len() - (seq - from) as usize;
            assert_eq!(h.after(&room, from).collect::<Vec<_>>(), want[tail..]);
            blocks = blocks.max(h.blocks().len());
            peak = peak.max(h.heap_bytes());
            // Past the events: each live block but the newest has less
            // room left than the largest event (one did not fit there),
            // and the oldest has dropped less than its length.
            let largest = stored_size(&sized_event(seq, spread as usize));
            let live: Vec<(&Vec<u8>, usize)> = h.live().collect();
            for (b, _) in live.iter().take(live.len().saturating_sub(1)) {
                assert!(b.capacity() - b.len() < largest, "event {seq}");
            }
            assert!(live.iter().all(|&(b, from)| from < b.len()));
        }
        (blocks, peak)
    }

    #[test]
    fn the_history_holds_what_a_plain_queue_holds() {
        for (max_events, max_bytes, spread) in [
            (1, 1 << 20, 50),
            (3, 1 << 20, 200),
            (8, 300, 100),
            (50, 2_000, 120),
            (1_000, 600, 150),
            (256, 65_536, 100),
            (40, 1 << 20, 0),
            (64, 65_536, 1_000),
            (20, 1 << 20, 3_000),
        ] {
            let (blocks, peak) = against_a_queue(max_events, max_bytes, spread);
            let event = PREFIX + 12 + spread as usize;
            let held = (max_events as usize * event).min(max_bytes as usize);
            // Held under a block: one block. Past it: several. Spares
            // are reused, so the heap stays within twice the most that
            // can be held, a few blocks, and the list.
            if held + event <= BLOCK / 2 {
                assert_eq!(blocks, 1, "{max_events} events, {max_bytes} bytes");
            }
            if held > 2 * BLOCK {
                assert!(blocks > 2, "{max_events} events, {max_bytes} bytes");
            }
            let list = 2 * (blocks + 1) * core::mem::size_of::<Vec<u8>>();
            let few = 4 * new_block(event, max_bytes as usize);
            assert!(
                peak <= 2 * held + few + list,
                "{max_events} events: heap {peak} for {held} bytes"
            );
        }
    }

    #[test]
    fn an_event_over_the_byte_bound_empties_the_history() {
        let room = Str::from("room");
        let mut h = History::default();
        let mut scratch = Vec::new();
        for seq in 1..=5 {
            h.record(&sized_event(seq, 10), 100, 200, &mut scratch);
        }
        assert_eq!(h.len(), 5);
        h.record(&sized_event(6, 300), 100, 200, &mut scratch);
        assert_eq!((h.len(), h.bytes(), h.covered_from()), (0, 0, 6));
        h.consistent(6, 100, 200).unwrap();
        h.record(&sized_event(7, 10), 100, 200, &mut scratch);
        assert_eq!(h.after(&room, 6).map(|e| e.seq).collect::<Vec<_>>(), [7]);
    }

    // The byte bound is inclusive: events that fill it exactly stay, one
    // alone or several together.
    #[test]
    fn events_that_fill_the_byte_bound_exactly_are_held() {
        let room = Str::from("room");
        let size = stored_size(&sized_event(1, 30)) as u32;
        for n in 1..=3u32 {
            let mut h = History::default();
            let mut scratch = Vec::new();
            for seq in 1..=u64::from(n) + 4 {
                h.record(&sized_event(seq, 30), 100, n * size, &mut scratch);
            }
            assert_eq!(h.len(), n as usize, "{n} events of {size} bytes");
            assert_eq!(h.bytes(), (n * size) as usize);
            let newest = u64::from(n) + 4;
            let back: Vec<u64> = h.after(&room, 0).map(|e| e.seq).collect();
            assert_eq!(
                back,
                (newest + 1 - u64::from(n)..=newest).collect::<Vec<_>>()
            );
        }
    }

    // A young history is one block that starts at its first event's size
    // and grows by a quarter, at least by the event, never past a block;
    // past that, blocks of BLOCK bytes are added, and a block once added
    // is never moved.
    #[test]
    fn a_history_grows_one_block_then_adds_blocks_that_never_move() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        let size = stored_size(&sized_event(1, 20));
        let (mut placed, mut first_ptr): (Vec<*const u8>, _) = (Vec::new(), None);
        for seq in 1..=200u64 {
            let before = h
                .blocks()
                .front()
                .map_or((0, 0), |b| (b.len(), b.capacity()));
            let lone = h.blocks().len() <= 1;
            h.record(&sized_event(seq, 20), 1_000, 1 << 20, &mut scratch);
            h.consistent(seq, 1_000, 1 << 20).unwrap();
            let first = h.blocks().front().unwrap().capacity();
            match (seq, lone && h.blocks().len() == 1) {
                (1, _) => assert_eq!(first, size, "the first block is the first event"),
                (_, true) if first != before.1 => {
                    let (len, _) = before;
                    assert_eq!(first, (len + size).max(len + len / 4).min(BLOCK), "{seq}");
                }
                _ => {}
            }
            assert!(first <= BLOCK);
            if lone && h.blocks().len() == 2 {
                // The young block is left when the event no longer fits
                // within a block.
                assert!(before.0 + size > BLOCK, "event {seq}: left at {}", before.0);
            }
            if h.blocks().len() > 1 {
                let p = h.blocks()[0].as_ptr();
                assert_eq!(*first_ptr.get_or_insert(p), p, "event {seq}: first moved");
            }
            for (i, b) in h.blocks().iter().enumerate().skip(1) {
                assert_eq!(b.capacity(), BLOCK, "event {seq}, block {i}");
                match placed.get(i - 1) {
                    Some(&p) => assert_eq!(b.as_ptr(), p, "event {seq}: block {i} moved"),
                    None => placed.push(b.as_ptr()),
                }
            }
        }
        assert!(h.blocks().len() > 4, "{} blocks", h.blocks().len());
        assert_eq!(h.len(), 200);
    }

    // The heap a history reports is its blocks' capacity and its list's:
    // none before an event, then the first block alone (sized to the
    // first event, with no list), then with a second block a list of one.
    #[test]
    fn heap_bytes_are_the_blocks_and_a_list_of_the_older_ones() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        assert_eq!(h.heap_bytes(), 0);
        let size = stored_size(&sized_event(1, 20));
        h.record(&sized_event(1, 20), 1_000, 1 << 20, &mut scratch);
        assert_eq!(h.heap_bytes(), size, "one block, no list");
        let mut seq = 1;
        while h.blocks().len() < 2 {
            seq += 1;
            h.record(&sized_event(seq, 20), 1_000, 1 << 20, &mut scratch);
        }
        // The young block grew to a full block before the second came.
        let first = h.blocks()[0].capacity();
        assert_eq!(first, BLOCK);
        let list = core::mem::size_of::<Vec<u8>>();
        assert_eq!(h.heap_bytes(), first + BLOCK + list, "a list of one");
    }

    // A full history drops one event for each it records, and a block
    // whose events were all dropped is the one written next: at the
    // bound, the same blocks go round and nothing is allocated.
    #[test]
    fn a_full_history_writes_its_dropped_blocks_again() {
        let mut h = History::default();
        let mut scratch = Vec::new();
        for seq in 1..=300 {
            h.record(&sized_event(seq, 20), 64, 1 << 20, &mut scratch);
        }
        let ptrs = |h: &History| {
            let mut p: Vec<*const u8> = h.blocks().iter().map(|b| b.as_ptr()).collect();
            p.sort_unstable();
            p
        };
        let (blocks, heap) = (ptrs(&h), h.heap_bytes());
        assert!(blocks.len() >= 3, "{} blocks", blocks.len());
        // The young first block, under a full block, was freed rather than
        // written again.
        assert!(h.blocks().iter().all(|b| b.capacity() == BLOCK));
        let mut went_round = 0;
        for seq in 301..=5_000 {
            let front = h.blocks().front().map(|b| b.as_ptr());
            h.record(&sized_event(seq, 20), 64, 1 << 20, &mut scratch);
            went_round += usize::from(h.blocks().back().map(|b| b.as_ptr()) == front);
            assert_eq!((ptrs(&h), h.heap_bytes()), (blocks.clone(), heap), "{seq}");
        }
        assert!(went_round > 100, "blocks written again {went_round} times");
        assert_eq!(h.len(), 64);
        h.consistent(5_000, 64, 1 << 20).unwrap();
    }

    /// A history of one empty block of `cap` bytes' capacity.
    fn lone_block(cap: usize) -> History {
        History {
            newest: Vec::with_capacity(cap),
            ..History::default()
        }
    }

    // A lone block with no room left closes up its dropped front when it
    // is a quarter of the block or more, and grows otherwise; an event
    // that exactly fills the room left takes it.
    #[test]
    fn a_lone_block_closes_up_a_dropped_quarter_and_grows_otherwise() {
        let mut scratch = Vec::new();
        let s = stored_size(&sized_event(1, 20));
        let back =
            |h: &History| -> Vec<u64> { h.after(&Str::from("room"), 0).map(|e| e.seq).collect() };
        for keep in [4u64, 5] {
            let mut h = lone_block(keep as usize * s);
            let cap = h.blocks()[0].capacity();
            for seq in 1..=keep {
                h.record(&sized_event(seq, 20), keep as u32, 1 << 20, &mut scratch);
                assert_eq!(h.blocks()[0].capacity(), cap, "the room left is taken");
            }
            // The next drops the first: a quarter of four events, a
            // fifth of five.
            h.record(
                &sized_event(keep + 1, 20),
                keep as u32,
                1 << 20,
                &mut scratch,
            );
            h.consistent(keep + 1, keep as u32, 1 << 20).unwrap();
            assert_eq!(h.blocks().len(), 1);
            let grown = h.blocks()[0].capacity();
            match keep {
                4 => assert_eq!((h.head as usize, grown), (0, cap), "closed up"),
                _ => assert_eq!((h.head as usize, grown), (s, cap + cap / 4), "grown"),
            }
            assert_eq!(back(&h), (2..=keep + 1).collect::<Vec<_>>());
        }
        // A history bounded to a few small events stays one small block.
        let mut h = History::default();
        for seq in 1..=1_000 {
            h.record(&sized_event(seq, 10), 2, 1 << 20, &mut scratch);
        }
        let e = stored_size(&sized_event(1, 10));
        assert_eq!(h.blocks().len(), 1);
        assert!(
            h.blocks()[0].capacity() <= 4 * e,
            "{}",
            h.blocks()[0].capacity()
        );
        assert_eq!(h.older.capacity(), 0, "no list for one block");

        // An event that exactly fills the room after a dropped front is
        // appended there: nothing is closed up, nothing grows. Room for
        // five, four held, the first dropped: a quarter of the block.
        let mut h = lone_block(5 * s);
        let cap = h.blocks()[0].capacity();
        for seq in 1..=5 {
            h.record(&sized_event(seq, 20), 4, 1 << 20, &mut scratch);
        }
        assert_eq!((h.head as usize, h.blocks()[0].capacity()), (s, cap));
        assert_eq!(back(&h), [2, 3, 4, 5]);
        // Eight events that exactly fill a block of eight: the last one
        // takes the room left, where a quarter of seven is more than one.
        let mut h = lone_block(8 * s);
        for seq in 1..=8 {
            h.record(&sized_event(seq, 20), 100, 1 << 20, &mut scratch);
        }
        assert_eq!((h.blocks().len(), h.blocks()[0].capacity()), (1, 8 * s));
    }

    // A young block that cannot take the next event within a block is not
    // grown: the event starts a new block of four such events, and the
    // young one keeps its capacity. A spare smaller than the new block an
    // event needs is freed rather than written again, though it could
    // take the event: first the young block, then a block that larger
    // events outgrew.
    #[test]
    fn a_young_block_is_not_grown_past_a_block_and_small_spares_are_freed() {
        let mut scratch = Vec::new();
        let s = stored_size(&sized_event(1, 600));
        let mut h = lone_block(s + 100);
        let cap = h.blocks()[0].capacity();
        h.record(&sized_event(1, 600), 100, 1 << 20, &mut scratch);
        assert!(s + s > BLOCK && cap < BLOCK, "{s}");
        h.record(&sized_event(2, 600), 100, 1 << 20, &mut scratch);
        let caps = |h: &History| h.blocks().iter().map(|b| b.capacity()).collect::<Vec<_>>();
        let four = new_block(s, 1 << 20);
        assert_eq!(caps(&h), [cap, four]);
        h.consistent(2, 100, 1 << 20).unwrap();
        // Bounded to two events: the young block is a spare from the
        // third on, and the sixth needs a new block.
        for seq in 3..=6 {
            h.record(&sized_event(seq, 600), 2, 1 << 20, &mut scratch);
        }
        assert!(cap >= s);
        assert_eq!(caps(&h), [four, four]);
        // Events past a quarter of that block: the seventh fits the room
        // left, the eighth needs a block of four of its own size.
        let large = stored_size(&sized_event(7, 1_500));
        h.record(&sized_event(7, 1_500), 2, 1 << 20, &mut scratch);
        h.record(&sized_event(8, 1_500), 2, 1 << 20, &mut scratch);
        assert_eq!(caps(&h), [four, new_block(large, 1 << 20)]);
        h.consistent(8, 2, 1 << 20).unwrap();
        let back: Vec<u64> = h.after(&Str::from("room"), 0).map(|e| e.seq).collect();
        assert_eq!(back, [7, 8]);
    }

    // Past two spares, a block emptied is kept while the blocks stay
    // within a quarter over the byte bound, and freed past it. A history
    // at its byte bound (11 blocks of 1 KiB, a quarter over is 10), then
    // bounded to one event fewer at each record, of small events: its
    // blocks empty one by one. Two spares are kept over the quarter, the
    // next block emptied is freed, and from then on every block emptied
    // is kept, the capacity exactly at the quarter.
    #[test]
    fn spares_past_two_are_kept_within_a_quarter_over_the_byte_bound() {
        const MAX: usize = 8_192;
        const QUARTER_OVER: usize = MAX + MAX / 4;
        let mut scratch = Vec::new();
        let mut h = History::default();
        let within = |h: &History| h.spares <= 2 || h.capacity() <= QUARTER_OVER;
        for seq in 1..=200 {
            h.record(&sized_event(seq, 200), 1_000, MAX as u32, &mut scratch);
            assert!(within(&h), "{seq}: {} spares", h.spares);
        }
        let full = h.capacity();
        assert!(full > QUARTER_OVER, "{full}");
        let held = h.len();
        let mut two_over = false;
        for seq in 201..=300 {
            let max_events =
                u32::try_from(held.saturating_sub((seq - 200) as usize).max(4)).unwrap_or(u32::MAX);
            h.record(&sized_event(seq, 1), max_events, MAX as u32, &mut scratch);
            h.consistent(seq, max_events, MAX as u32).unwrap();
            assert!(within(&h), "{seq}: {} spares", h.spares);
            assert!(h.capacity() <= full, "{seq}");
            two_over |= h.spares == 2 && h.capacity() > QUARTER_OVER;
        }
        assert!(two_over, "never two spares over the quarter");
        // Every block but the newest is a spare, and together they hold
        // exactly a quarter over the bound: a capacity at the quarter
        // keeps its spares.
        assert_eq!(h.capacity(), QUARTER_OVER);
        assert!(h.blocks().iter().all(|b| b.capacity() == BLOCK));
        assert_eq!(h.spares as usize, h.blocks().len() - 1);
    }

    // A spare before one block that holds events is a history's ordinary
    // state (a history a little over a block), and the invariants hold.
    #[test]
    fn a_spare_before_one_block_is_consistent() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        let mut seen = false;
        for seq in 1..=200 {
            h.record(&sized_event(seq, 20), 30, 1 << 20, &mut scratch);
            h.consistent(seq, 30, 1 << 20).unwrap();
            seen |= h.spares == 1 && h.blocks().len() == 2;
        }
        assert!(seen, "never a spare and one block");
    }

    // A bound of zero holds nothing, whichever of the two it is.
    #[test]
    fn a_zero_bound_holds_nothing() {
        let mut scratch = Vec::new();
        for (max_events, max_bytes) in [(0, 1 << 20), (100, 0)] {
            let mut h = History::default();
            h.record(&sized_event(1, 10), 100, 1 << 20, &mut scratch);
            h.record(&sized_event(2, 10), max_events, max_bytes, &mut scratch);
            assert_eq!((h.len(), h.bytes(), h.covered_from()), (0, 0, 2));
        }
    }

    // Past a quarter block, a new block holds four of its event, at most
    // the byte bound; a first block is the first event. Offsets are
    // checked against `u32`, not their product: events past 64 KiB are
    // held side by side in one block.
    #[test]
    fn large_events_have_blocks_of_four_and_pass_64_kib_side_by_side() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        let big = stored_size(&sized_event(1, 70_000));
        for seq in 1..=3 {
            h.record(&sized_event(seq, 70_000), 10, 1 << 20, &mut scratch);
        }
        assert_eq!(h.len(), 3);
        let caps: Vec<usize> = h.blocks().iter().map(|b| b.capacity()).collect();
        let four = new_block(big, 1 << 20);
        assert_eq!(caps, [big, four], "the third shares the second's block");
        let back: Vec<u64> = h.after(&Str::from("room"), 0).map(|e| e.seq).collect();
        assert_eq!(back, [1, 2, 3]);
        h.consistent(3, 10, 1 << 20).unwrap();
        // Under a byte bound of three such events, a block is the bound.
        let mut h = History::default();
        let bound = u32::try_from(3 * big).unwrap();
        for seq in 1..=2 {
            h.record(&sized_event(seq, 70_000), 10, bound, &mut scratch);
        }
        let caps: Vec<usize> = h.blocks().iter().map(|b| b.capacity()).collect();
        assert_eq!(caps, [big, 3 * big]);
        // Two such events in one block given at the start.
        let mut h = lone_block(3 * big);
        for seq in 1..=2 {
            h.record(&sized_event(seq, 70_000), 10, 1 << 20, &mut scratch);
        }
        assert_eq!((h.len(), h.blocks().len()), (2, 1));
        h.consistent(2, 10, 1 << 20).unwrap();
        // A quarter block or less: new blocks are one block. Past it,
        // four events rounded up to a STEP, so a spare made for an event
        // takes one a byte larger.
        assert_eq!(new_block(BLOCK / 4, 1 << 20), BLOCK);
        assert_eq!(new_block(BLOCK / 4 + 1, 1 << 20), BLOCK + STEP);
        assert_eq!(new_block(513, 1 << 20), 2_304);
        assert_eq!(new_block(514, 1 << 20), 2_304);
        assert_eq!(new_block(576, 1 << 20), 2_304);
        assert_eq!(new_block(577, 1 << 20), 2_560);
        assert_eq!(four, 280_064);
        assert_eq!(new_block(BLOCK, 100), BLOCK, "at least the event");
        assert_eq!(new_block(300, 1_100), 1_100, "at most the bound");
    }

    // check_invariants names a head past its block, a lone block whose
    // events were all dropped without being cleared, an empty block after
    // the first, lengths that do not add up, and each bound passed.
    #[test]
    fn damaged_blocks_break_the_invariants() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        for seq in 1..=40 {
            h.record(&sized_event(seq, 20), 30, 1 << 20, &mut scratch);
        }
        let check = |h: &History| h.consistent(40, 30, 1 << 20);
        assert_eq!(check(&h), Ok(()));
        assert!(h.head > 0 && h.blocks().len() > 1);
        let head = h.head;
        let past = Err("history head past its blocks");
        h.head = h.blocks()[0].len() as u32 + 1;
        assert_eq!(check(&h), past, "head past the first block");
        h.head = head;

        let no_event = Err("history block holds no event");
        let mut lone = History::default();
        lone.record(&sized_event(1, 20), 30, 1 << 20, &mut scratch);
        lone.head = lone.blocks()[0].len() as u32;
        assert_eq!(lone.consistent(1, 30, 1 << 20), no_event, "all dropped");
        lone.head = 0;
        lone.spares = 1;
        let no_after = Err("history spares with no block after them");
        assert_eq!(lone.consistent(1, 30, 1 << 20), no_after);
        let holds = Err("an empty history holds bytes");
        for damage in 0..4 {
            let mut none = History::default();
            match damage {
                0 => none.head = 1,
                1 => none.held = 1,
                2 => none.spares = 1,
                _ => none.newest = vec![0; 4],
            }
            assert_eq!(none.consistent(0, 30, 1 << 20), holds, "damage {damage}");
        }
        let mut two = History::default();
        two.older.push_back(Vec::new());
        assert_eq!(two.consistent(0, 30, 1 << 20), holds, "two empty blocks");

        let cover = Err("history lengths do not cover its blocks");
        let newest = core::mem::take(&mut h.newest);
        h.older.push_back(newest);
        assert_eq!(check(&h), no_event, "an empty last block");
        h.newest = h.older.pop_back().unwrap();
        h.held += 1;
        assert_eq!(check(&h), cover, "bytes held");
        h.held -= 1;
        h.head += 1;
        assert!(check(&h).is_err(), "head inside an event");
        h.head = head;
        h.block_mut(1).pop();
        assert_eq!(check(&h), cover, "a block cut inside an event");
        h.block_mut(1).push(b'x');
        assert_eq!(check(&h), Ok(()));
        h.count += 1;
        assert_eq!(h.consistent(41, 30, 1 << 20), cover, "events counted");
        h.count -= 1;
        // Each bound alone, passed by one, is named; held exactly, it is not.
        let over = Err("history over the profile's bounds");
        let bytes = h.bytes() as u32;
        assert_eq!(h.consistent(40, 29, 1 << 20), over, "events");
        assert_eq!(h.consistent(40, 30, bytes - 1), over, "bytes");
        assert_eq!(h.consistent(40, 30, bytes), Ok(()));
    }

    // The engine's encoding buffer keeps an ordinary event's size for the
    // next one, and is given back after an event past KEEP_SCRATCH.
    #[test]
    fn a_large_event_does_not_pin_the_encoding_buffer() {
        let mut p = Profile::tencent();
        p.limits.request_rate = None;
        p.limits.max_value_len = 64 * 1024;
        p.limits.max_room_value_bytes = None;
        let (mut e, now) = engine_with_room(p);
        let small = Write::new("r", Actor::Admin).op(Op::set("k", "v"));
        assert!(e.handle(now, Command::Write(small)).is_ok());
        let kept = e.out.encoded.capacity();
        assert!(kept > 0 && kept <= KEEP_SCRATCH, "capacity {kept}");
        // The vendors' longest value, 4,096 characters, keeps its buffer
        // (which may have doubled past the event): a stream of such writes
        // reuses it.
        let longest = "v".repeat(4_096);
        let w = Write::new("r", Actor::Admin).op(Op::set("k", longest.as_str()));
        assert!(e.handle(now, Command::Write(w)).is_ok());
        let kept = e.out.encoded.capacity();
        assert!(kept > 4_096 && kept <= KEEP_SCRATCH, "capacity {kept}");
        // A buffer of exactly the limit is still kept.
        e.out.encoded = Vec::with_capacity(KEEP_SCRATCH);
        let w = Write::new("r", Actor::Admin).op(Op::set("k", "v"));
        assert!(e.handle(now, Command::Write(w)).is_ok());
        assert_eq!(e.out.encoded.capacity(), KEEP_SCRATCH);
        let big = "v".repeat(KEEP_SCRATCH + 1);
        let w = Write::new("r", Actor::Admin).op(Op::set("k", big.as_str()));
        assert!(e.handle(now, Command::Write(w)).is_ok());
        assert_eq!(e.out.encoded.capacity(), 0);
        assert_eq!(e.rooms.get("r").unwrap().history.len(), 5);
    }

    #[test]
    fn recorded_events_come_back_equal() {
        let mut h = History::default();
        let mut scratch = Vec::new();
        let mut all = events();
        for (i, e) in all.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
            h.record(e, 1_000, 1 << 20, &mut scratch);
        }
        let room = Str::from("room");
        let back: Vec<Event> = h.after(&room, 3).collect();
        assert_eq!(back, all[3..]);
        h.consistent(all.len() as u64, 1_000, 1 << 20).unwrap();
    }
}

/// Without serde no event can be encoded: the history holds none and
/// always covers from the newest number, so a catch-up from before it is
/// refused rather than answered with a gap (`.ci/run` runs these).
#[cfg(all(test, not(feature = "serde")))]
mod without_serde {
    use super::*;

    #[test]
    fn nothing_is_held_and_a_catch_up_covers_from_the_newest() {
        let room = Str::from("room");
        let mut h = RoomHistory::default();
        let mut scratch = Vec::new();
        for seq in 1..=3 {
            h.record(&sized_event(seq, 1), 256, 65_536, &mut scratch);
            assert_eq!((h.len(), h.bytes(), h.covered_from(0)), (0, 0, seq));
            assert_eq!(h.after(&room, 0).count(), 0);
        }
    }
}
