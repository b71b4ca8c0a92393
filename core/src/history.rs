//! Catch-up history: each room's recent events, in postcard's format in a byte
//! ring that drops the oldest, so a reconnecting client asks for the
//! events after the last sequence number it saw instead of the whole
//! state (see [`Command::Since`](crate::Command::Since)).
//!
//! The bound is the profile's `history_events` and `history_bytes` (bytes
//! of encoded events; 0 in either turns history off). Once the ring has
//! grown to the bound it allocates nothing more: recording drops whole
//! events from its front and writes the new one into the room they left.
//!
//! Compact by layout: an event is stored without its room id (the room's)
//! and without its number (the history's numbers are consecutive: every
//! event of the room is recorded, and a change with no event restarts the
//! history), as a 4-byte length and the rest of the event's bytes, back to
//! back in one `Vec<u8>`.
//!
//! The ring is a two-run ring buffer: the older run of events lies from
//! `head` to the end of the vector, and once there is no spare room after
//! it but the dropped front has room for the next event, a newer run
//! starts at the front (`0..wrap`) and grows towards `head`. When the older
//! run is all dropped the newer one becomes it. An event never straddles
//! the end, so each one is decoded from one slice; and a full ring, which
//! drops an event for each one it records, moves no byte it holds (a
//! ring of one run must move what it holds to the front from time to
//! time: moved every quarter of the ring, that is about four bytes moved
//! for each byte recorded, most of them out of cache in a room not touched
//! lately). The bytes are moved only when the ring must grow, and when
//! events of uneven size leave no gap wide enough for the next one: then
//! the two runs are put back in order at the front, in place. The ring
//! grows by a quarter at a time rather than doubling.
//!
//! A room holds its history as one optional box ([`RoomHistory`], 8
//! bytes): none while it holds no event (every room when the profile
//! turns history off), then 48 bytes and the ring.
//!
//! Encoding needs the `serde` feature; without it nothing is recorded and
//! every catch-up answers `HistoryTruncated`, sending the client to a
//! full read, which is always correct.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::event::Event;
use crate::text::Str;

/// Bytes of the length before each event.
const PREFIX: usize = 4;

/// Capacity above which the engine's encoding buffer is not kept after an
/// event (one very large event should not pin its size).
const KEEP_SCRATCH: usize = 16 * 1024;

/// One room's recent events.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// Each held event as a little-endian `u32` length and that many
    /// bytes: the older run from `head` to the end, oldest first, then the
    /// newer run in `0..wrap`. Between `wrap` and `head`: dropped events.
    ring: Vec<u8>,
    /// Where the oldest event held starts in `ring`.
    head: u32,
    /// The end of the newer run at the front of `ring`; 0 when there is
    /// none (then `head..` holds every event). Never past `head`.
    wrap: u32,
    /// Events held.
    count: u32,
    /// Every event with a sequence number above this one is in the ring:
    /// a catch-up from this number or later is complete.
    covered_from: u64,
}

/// The length stored at `at`, if `ring` has one there.
fn len_at(ring: &[u8], at: usize) -> Option<usize> {
    let bytes = ring.get(at..at.checked_add(PREFIX)?)?;
    let mut le = [0u8; PREFIX];
    le.copy_from_slice(bytes);
    Some(u32::from_le_bytes(le) as usize)
}

impl History {
    /// Forgets every event: a change at `seq` went out with no event (a
    /// silent write), so a catch-up from before it would have a gap. The
    /// buffer is kept for the events to come.
    pub(crate) fn restart_at(&mut self, seq: u64) {
        self.ring.clear();
        self.head = 0;
        self.wrap = 0;
        self.count = 0;
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
        self.ring.len().saturating_sub(self.head as usize) + self.wrap as usize
    }

    /// Heap bytes the history holds (its buffer's capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ring.capacity()
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
            self.drop_oldest();
        }
        // Now `count < max_events`, so the count below cannot overflow.
        match self.place(size) {
            Some(at) => {
                if at == self.ring.len() {
                    self.ring.extend_from_slice(scratch);
                } else if let Some(dst) = self.ring.get_mut(at..at + size) {
                    dst.copy_from_slice(scratch);
                } else {
                    self.restart_at(event.seq);
                    return;
                }
                self.count += 1;
            }
            // Past what `u32` offsets reach: start afresh.
            None => self.restart_at(event.seq),
        }
    }

    /// Drops the oldest event. When that empties the older run, the newer
    /// one (if any) takes its place.
    fn drop_oldest(&mut self) {
        let head = self.head as usize;
        let next = len_at(&self.ring, head).map_or(usize::MAX, |len| head + PREFIX + len);
        self.count = self.count.saturating_sub(1);
        self.covered_from = self.covered_from.saturating_add(1);
        if next < self.ring.len() {
            // `next` is below the length, itself at most `u32::MAX`.
            self.head = u32::try_from(next).unwrap_or(u32::MAX);
        } else {
            // The older run is gone: the newer one, at the front, is all.
            self.ring.truncate(self.wrap as usize);
            self.head = 0;
            self.wrap = 0;
        }
    }

    /// Where `size` bytes go in `ring`: the newer run if one is started and
    /// the gap before `head` has room, else the end of the older run if the
    /// capacity has room, else a newer run at the front if the dropped
    /// front has room; else the runs are put in order at the front and the
    /// ring grows. The returned range is either in `ring`'s length or
    /// starts at its end (an append, with the capacity for it).
    /// `None` if an offset would pass `u32::MAX`.
    fn place(&mut self, size: usize) -> Option<usize> {
        let head = self.head as usize;
        let wrap = self.wrap as usize;
        if wrap > 0 {
            if head.saturating_sub(wrap) >= size {
                self.wrap = u32::try_from(wrap + size).ok()?;
                return Some(wrap);
            }
            self.unwrap();
            self.keep_free(size);
        } else if self.ring.capacity() - self.ring.len() < size {
            if head >= size {
                self.wrap = u32::try_from(size).ok()?;
                return Some(0);
            }
            if head > 0 {
                // Out of room either way: close the dropped front.
                let len = self.ring.len();
                self.ring.copy_within(head.., 0);
                self.ring.truncate(len.saturating_sub(head));
                self.head = 0;
            }
            self.keep_free(size);
        }
        let at = self.ring.len();
        u32::try_from(at + size).ok()?;
        Some(at)
    }

    /// Once the bytes are at the front, grows the ring unless it has
    /// room for `size` and an eighth of what it holds: a full ring whose
    /// events vary in size then wraps many times before its gap runs out
    /// again, instead of moving its bytes every few events.
    fn keep_free(&mut self, size: usize) {
        let len = self.ring.len();
        make_room(&mut self.ring, size.max(len / 8));
    }

    /// Puts the two runs back in order at the front, in place: the older
    /// run, then the newer one (the gap between them is dropped bytes).
    fn unwrap(&mut self) {
        let (head, wrap, len) = (self.head as usize, self.wrap as usize, self.ring.len());
        // `wrap <= head <= len` (see `consistent`).
        self.ring.copy_within(head..len, wrap);
        self.ring.truncate(wrap + len.saturating_sub(head));
        self.ring.rotate_left(wrap);
        self.head = 0;
        self.wrap = 0;
    }

    /// The two runs' byte ranges, oldest first: the older run, then the
    /// newer one (empty when there is none).
    fn runs(&self) -> [(usize, usize); 2] {
        [
            (self.head as usize, self.ring.len()),
            (0, self.wrap as usize),
        ]
    }

    /// Where each held event's bytes start and how many there are, oldest
    /// first: the older run, then the newer one.
    #[cfg(feature = "serde")]
    fn starts(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.runs().into_iter().flat_map(move |(mut at, end)| {
            core::iter::from_fn(move || {
                if at >= end {
                    return None;
                }
                let len = len_at(&self.ring, at)?;
                let start = at + PREFIX;
                at = start.saturating_add(len);
                Some((start, len))
            })
        })
    }

    /// The held events after `seq`, oldest first, decoded one by one; their
    /// room id is `room`.
    #[cfg(feature = "serde")]
    pub(crate) fn after<'a>(&'a self, room: &'a Str, seq: u64) -> impl Iterator<Item = Event> + 'a {
        let mut number = self.covered_from;
        self.starts()
            .map(move |at| {
                number = number.saturating_add(1);
                (number, at)
            })
            .filter(move |&(number, _)| number > seq)
            .map_while(move |(number, (start, len))| decode(&self.ring, start, len, room, number))
    }

    /// Without serde nothing is held.
    #[cfg(not(feature = "serde"))]
    pub(crate) fn after<'a>(&'a self, _: &'a Str, _: u64) -> impl Iterator<Item = Event> + 'a {
        core::iter::empty()
    }

    /// The invariants: the lengths cover both runs exactly and count the
    /// events, the newer run ends before the older one starts, the numbers
    /// end at the room's `seq`, within the bounds.
    pub(crate) fn consistent(
        &self,
        seq: u64,
        max_events: u32,
        max_bytes: u32,
    ) -> Result<(), &'static str> {
        if self.wrap > self.head || self.head as usize > self.ring.len() {
            return Err("history runs overlap");
        }
        // An empty older run means an empty ring (with the check above, no
        // newer run either).
        if self.head as usize == self.ring.len() && self.head > 0 {
            return Err("history runs overlap");
        }
        let mut n = 0u32;
        for (mut at, end) in self.runs() {
            while at < end {
                let Some(len) = len_at(&self.ring, at) else {
                    return Err("history length cut short");
                };
                at += PREFIX + len;
                n += 1;
            }
            if at != end {
                return Err("history lengths do not cover its ring");
            }
        }
        if n != self.count {
            return Err("history lengths do not cover its ring");
        }
        if self.newest() != seq {
            return Err("history does not end at the room's number");
        }
        if self.count > max_events || self.bytes() > max_bytes as usize {
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

    /// Heap bytes the history holds: its box and its buffer.
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

/// Makes room for about `need` more bytes: growth by a quarter of what is
/// held (at least `need`), so a full ring carries little slack.
fn make_room(ring: &mut Vec<u8>, need: usize) {
    let spare = ring.capacity() - ring.len();
    if spare < need {
        ring.reserve_exact(need.max(ring.len() / 4));
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

/// Appends the stored form of `event` to `ring` and returns its length.
///
/// The bytes are exactly postcard's for the event's fields but the room
/// and the number (the test `encode_is_postcard` holds them equal for
/// every kind of change), so [`decode`] reads them with postcard and the
/// stored sizes the profile's `history_bytes` bounds stay those the
/// reference model counts. Written by hand because this runs on every
/// event: serde's generic path cost about 575 instructions a write, this
/// one a fraction (see the commit that added it).
#[cfg(feature = "serde")]
fn encode(event: &Event, ring: &mut Vec<u8>) -> Option<usize> {
    let before = ring.len();
    let mut w = Writer(ring);
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
    Some(ring.len() - before)
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

    fn text(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

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
            let back = decode(&got, 2, n, &e.room, e.seq).unwrap();
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
    /// events, and every catch-up returns them. Returns whether the ring
    /// ever held two runs, and its largest capacity.
    fn against_a_queue(max_events: u32, max_bytes: u32, spread: u64) -> (bool, usize) {
        let room = Str::from("room");
        let mut h = History::default();
        let mut scratch = Vec::new();
        let mut model: alloc::collections::VecDeque<(Event, usize)> = Default::default();
        let mut covered = 0u64;
        let mut rng = u64::from(max_bytes) ^ (u64::from(max_events) << 32);
        let (mut wrapped, mut peak) = (false, 0);
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
            wrapped |= h.wrap > 0;
            peak = peak.max(h.heap_bytes());
        }
        (wrapped, peak)
    }

    #[test]
    fn the_ring_holds_what_a_plain_queue_holds() {
        for (max_events, max_bytes, spread) in [
            (1, 1 << 20, 50),
            (3, 1 << 20, 200),
            (8, 300, 100),
            (50, 2_000, 120),
            (1_000, 600, 150),
            (256, 65_536, 100),
            (40, 1 << 20, 0),
        ] {
            let (wrapped, peak) = against_a_queue(max_events, max_bytes, spread);
            if max_events > 3 {
                assert!(
                    wrapped,
                    "{max_events} events, {max_bytes} bytes: never wrapped"
                );
            }
            // Held bytes, one event, and the slack growth leaves.
            let held =
                (max_events as usize * (PREFIX + 12 + spread as usize)).min(max_bytes as usize);
            assert!(peak <= held * 3 / 2 + 256, "{max_events}: capacity {peak}");
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

    // Where an event goes: after the older run while the buffer has room
    // there (no newer run is started, nothing grows), and when it has none
    // and the dropped front is too small for the event, the front is
    // closed before the buffer grows.
    #[test]
    fn the_ring_appends_while_it_has_room_and_closes_its_front_before_growing() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        h.ring.reserve_exact(4_096);
        let cap = h.ring.capacity();
        for seq in 1..=20 {
            h.record(&sized_event(seq, 20), 4, 1 << 20, &mut scratch);
            assert_eq!((h.wrap, h.ring.capacity()), (0, cap), "event {seq}");
        }
        assert!(h.head > 0);

        let mut h = History::default();
        h.record(&sized_event(1, 10), 2, 1 << 20, &mut scratch);
        h.record(&sized_event(2, 10), 2, 1 << 20, &mut scratch);
        // The third drops the first, whose room is too small for it.
        h.record(&sized_event(3, 200), 2, 1 << 20, &mut scratch);
        assert_eq!((h.head, h.wrap), (0, 0));
        assert_eq!(h.ring.len(), h.bytes());
        h.consistent(3, 2, 1 << 20).unwrap();
    }

    // The boundaries of `place`: an event that exactly fills what is left
    // of the buffer is appended (no newer run, no growth), and one exactly
    // the size of the dropped front starts the newer run there.
    #[test]
    fn an_event_that_exactly_fits_the_room_left_takes_it() {
        let mut scratch = Vec::new();
        let size = stored_size(&sized_event(1, 20));
        let back =
            |h: &History| -> Vec<u64> { h.after(&Str::from("room"), 0).map(|e| e.seq).collect() };
        for room_for in [4, 5] {
            let mut h = History::default();
            h.ring.reserve_exact(room_for * size);
            let cap = h.ring.capacity();
            for seq in 1..=5 {
                h.record(&sized_event(seq, 20), 4, 1 << 20, &mut scratch);
            }
            // The fifth drops the first. With room for five it fills the
            // buffer exactly and goes after the older run; with room for
            // four there is none after it, and the dropped front is
            // exactly its size: the newer run starts there.
            let (head, wrap, len) = (h.head as usize, h.wrap as usize, h.ring.len());
            match room_for {
                5 => assert_eq!((head, wrap, len), (size, 0, 5 * size)),
                _ => assert_eq!((head, wrap, len), (size, size, 4 * size)),
            }
            assert_eq!(h.ring.capacity(), cap, "nothing grew");
            h.consistent(5, 4, 1 << 20).unwrap();
            assert_eq!(back(&h), [2, 3, 4, 5]);
        }
    }

    // Once its bytes are at the front, a ring keeps an eighth of what it
    // holds free (room for many wraps before the next move): with less,
    // it grows by a quarter of what it holds; with exactly that, it does
    // not grow.
    #[test]
    fn a_ring_keeps_an_eighth_of_what_it_holds_free() {
        for (cap, grows) in [(8_100, true), (9_000, false)] {
            let mut h = History::default();
            h.ring.reserve_exact(cap);
            h.ring.resize(8_000, 0);
            h.keep_free(10);
            let now = h.ring.capacity();
            match grows {
                true => assert!(now >= 8_000 + 2_000, "{now}"),
                false => assert_eq!(now, cap),
            }
        }
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

    // Offsets are checked against `u32`, not their product: a ring past
    // 64 KiB keeps events past 64 KiB each.
    #[test]
    fn events_past_64_kib_are_held_side_by_side() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        for seq in 1..=2 {
            h.record(&sized_event(seq, 70_000), 10, 1 << 20, &mut scratch);
        }
        assert_eq!(h.len(), 2);
        let back: Vec<u64> = h.after(&Str::from("room"), 0).map(|e| e.seq).collect();
        assert_eq!(back, [1, 2]);
    }

    // check_invariants names a ring whose runs overlap or run past the
    // buffer, and an older run emptied without the ring being reset.
    #[test]
    fn overlapping_runs_break_the_invariants() {
        let mut scratch = Vec::new();
        let mut h = History::default();
        h.ring.reserve_exact(4_096);
        for seq in 1..=6 {
            h.record(&sized_event(seq, 20), 4, 1 << 20, &mut scratch);
        }
        let check = |h: &History| h.consistent(6, 4, 1 << 20);
        assert_eq!(check(&h), Ok(()));
        assert!(h.head > 0 && h.wrap == 0);
        let (head, len) = (h.head, h.ring.len() as u32);
        let overlap = Err("history runs overlap");
        h.wrap = head + 1;
        assert_eq!(check(&h), overlap, "newer run past the older one's start");
        h.wrap = 0;
        h.head = len + 1;
        assert_eq!(check(&h), overlap, "older run past the end");
        h.head = len;
        assert_eq!(check(&h), overlap, "empty older run, head not reset");
        h.head = head;
        assert_eq!(check(&h), Ok(()));
        // Each bound alone, passed by one, is named; held exactly, it is not.
        let over = Err("history over the profile's bounds");
        let bytes = h.bytes() as u32;
        assert_eq!(h.consistent(6, 3, 1 << 20), over, "events");
        assert_eq!(h.consistent(6, 4, bytes - 1), over, "bytes");
        assert_eq!(h.consistent(6, 4, bytes), Ok(()));
    }

    // A full ring of events of one size drops one event for each it
    // records and writes it where the dropped ones were: its buffer is
    // neither grown nor moved once it is full.
    #[test]
    fn a_full_ring_of_even_events_keeps_its_buffer() {
        let mut h = History::default();
        let mut scratch = Vec::new();
        for seq in 1..=300 {
            h.record(&sized_event(seq, 20), 64, 1 << 20, &mut scratch);
        }
        let (ptr, cap) = (h.ring.as_ptr(), h.ring.capacity());
        let mut wraps = 0;
        for seq in 301..=5_000 {
            let before = h.wrap;
            h.record(&sized_event(seq, 20), 64, 1 << 20, &mut scratch);
            wraps += usize::from(before == 0 && h.wrap > 0);
            assert_eq!(
                (h.ring.as_ptr(), h.ring.capacity()),
                (ptr, cap),
                "event {seq}"
            );
        }
        assert_eq!(h.len(), 64);
        assert!(wraps > 10, "the newer run started {wraps} times");
        h.consistent(5_000, 64, 1 << 20).unwrap();
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
