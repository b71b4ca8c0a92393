//! Snapshots: the engine (or one room) as versioned postcard bytes, and a
//! restore that trusts nothing.
//!
//! Layout: `b"RSTS"`, a `u16` format version (varint), then the body. The
//! body holds the profile, the clock, the rate bucket and every room
//! sorted by id; each room its attributes in listing order, its queue in
//! order, and its users sorted by id (only users that are present or have
//! a role; the owner index is derived from the attributes and queue and
//! rebuilt on restore). Nothing depends on hash order, so snapshot →
//! restore → snapshot gives the same bytes. Undrained events are not part
//! of a snapshot: drain them first.
//!
//! Restore checks every limit of the snapshot's profile, key shapes,
//! uniqueness and order of ids and keys, owners, roles, revisions against
//! sequence numbers, byte totals, queue capacity, grace deadlines and
//! budget counters, and rebuilds the owner index. Decoding never
//! preallocates from a length prefix: every collection grows as its
//! elements are actually decoded, each of which consumes input.

use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::command::{Actor, Role};
use crate::engine::{check_element, check_key, Engine};
use crate::flow::{FlowWindow, TokenBucket};
use crate::outcome::{Attribute, QueueElement};
use crate::profile::Profile;
use crate::queue::Queue;
use crate::room::{AttrX, Room};
use crate::text::Str;
use crate::time::Millis;

/// First bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"RSTS";
/// Format version written by this build; the only one it reads.
pub const SNAPSHOT_VERSION: u16 = 1;

/// Largest room sequence number a snapshot may carry: a live room cannot
/// come near it (2^62 commands), and a forged one at `u64::MAX` would
/// overflow on the next change.
pub const MAX_SEQ: u64 = 1 << 62;

/// Why a snapshot was refused. Nothing was restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not a roomstate snapshot (bad magic).
    NotASnapshot,
    /// A format version this build does not read.
    UnsupportedVersion(u16),
    /// The bytes do not decode (truncated, bad tag, bad UTF-8, ...).
    Malformed,
    /// Bytes left over after the snapshot.
    TrailingBytes,
    /// A room snapshot's profile differs from the engine's.
    ProfileMismatch,
    /// A room snapshot names a room the engine has.
    RoomExists,
    /// The content decodes but breaks a rule; says which.
    Invalid(&'static str),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SnapshotError {}

/// A `Vec` that deserializes without trusting the length prefix.
struct Seq<T>(Vec<T>);

impl<T: Serialize> Serialize for Seq<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Seq<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Seq<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seq<T>, A::Error> {
                // No `with_capacity(size_hint)`: growth follows decoded input.
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Seq(v))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    magic: [u8; 4],
    version: u16,
}

#[derive(Serialize, Deserialize)]
struct EngineSnap {
    profile: Profile,
    now: Millis,
    bucket_milli_tokens: u64,
    bucket_last: Millis,
    rooms: Seq<RoomSnap>,
}

#[derive(Serialize, Deserialize)]
struct RoomOnlySnap {
    profile: Profile,
    room: RoomSnap,
}

#[derive(Serialize, Deserialize)]
struct RoomSnap {
    id: Str,
    creator: Str,
    seq: u64,
    flow_start: Option<Millis>,
    flow_normal: u32,
    flow_high: u32,
    attributes: Seq<Attribute>,
    queue: Option<QueueSnap>,
    users: Seq<UserSnap>,
}

#[derive(Serialize, Deserialize)]
struct QueueSnap {
    capacity: u32,
    elements: Seq<QueueElement>,
}

#[derive(Serialize, Deserialize)]
struct UserSnap {
    id: Str,
    live: u32,
    dropped: u32,
    grace_until: Option<Millis>,
    role: Role,
}

fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    let header = Header {
        magic: SNAPSHOT_MAGIC,
        version: SNAPSHOT_VERSION,
    };
    // Serializing into a Vec cannot fail for these types.
    let mut out = postcard::to_allocvec(&header).unwrap_or_default();
    out.extend(postcard::to_allocvec(body).unwrap_or_default());
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, SnapshotError> {
    let (header, rest) =
        postcard::take_from_bytes::<Header>(bytes).map_err(|_| SnapshotError::NotASnapshot)?;
    if header.magic != SNAPSHOT_MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    if header.version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(header.version));
    }
    let (body, rest) =
        postcard::take_from_bytes::<T>(rest).map_err(|_| SnapshotError::Malformed)?;
    if !rest.is_empty() {
        return Err(SnapshotError::TrailingBytes);
    }
    Ok(body)
}

fn room_snap(room: &Room) -> RoomSnap {
    let mut users: Vec<UserSnap> = room
        .users
        .iter()
        .filter(|(_, r)| r.is_present() || r.role != Role::Member)
        .map(|(_, r)| UserSnap {
            id: r.name.clone(),
            live: r.live,
            dropped: r.dropped,
            grace_until: r.grace(),
            role: r.role,
        })
        .collect();
    users.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    RoomSnap {
        id: room.id.clone(),
        creator: room.creator_name().clone(),
        seq: room.seq,
        flow_start: room.flow.start,
        flow_normal: room.flow.normal,
        flow_high: room.flow.high,
        attributes: Seq(room
            .attrs
            .positions()
            .filter_map(|p| room.attribute(p))
            .collect()),
        queue: room.queue.as_ref().map(|q| QueueSnap {
            capacity: q.capacity,
            elements: Seq(q
                .elems
                .positions()
                .filter_map(|p| room.element(p))
                .collect()),
        }),
        users: Seq(users),
    }
}

fn invalid<T>(what: &'static str) -> Result<T, SnapshotError> {
    Err(SnapshotError::Invalid(what))
}

fn check_actor(a: &Actor) -> Result<(), SnapshotError> {
    match a {
        Actor::User(u) if u.is_empty() => invalid("empty user id as owner"),
        _ => Ok(()),
    }
}

/// Validates one room against `profile` and builds it, owner index
/// included. Times are checked against `now` when given (a whole-engine
/// restore); a single room may come from another engine's clock.
fn build_room(
    snap: RoomSnap,
    profile: &Profile,
    now: Option<Millis>,
) -> Result<Room, SnapshotError> {
    let after_now = |t: Millis| now.is_some_and(|n| t > n);
    let limits = &profile.limits;
    if snap.id.is_empty() || snap.creator.is_empty() {
        return invalid("empty room or creator id");
    }
    if snap.seq == 0 || snap.seq > MAX_SEQ {
        return invalid("room sequence number 0 or above MAX_SEQ");
    }
    let mut room = Room::new(snap.id, &snap.creator).ok_or(SnapshotError::Invalid("creator id"))?;
    room.seq = snap.seq;

    if snap.flow_start.is_some_and(after_now)
        || (snap.flow_start.is_none() && (snap.flow_normal | snap.flow_high) != 0)
    {
        return invalid("notification window in the future or counts without a window");
    }
    if let Some(flow) = limits.notification_flow {
        if snap.flow_normal > flow.normal_per_second || snap.flow_high > flow.high_per_second {
            return invalid("notification counts over budget");
        }
    } else if snap.flow_start.is_some() {
        return invalid("notification window without a flow in the profile");
    }
    room.flow = FlowWindow {
        start: snap.flow_start,
        normal: snap.flow_normal,
        high: snap.flow_high,
    };

    let mut creator_seen = false;
    let mut previous: Option<&Str> = None;
    for u in &snap.users.0 {
        if u.id.is_empty() || previous.is_some_and(|p| *p >= u.id) {
            return invalid("user ids empty, unsorted or repeated");
        }
        previous = Some(&u.id);
        let is_creator = u.id == snap.creator;
        if is_creator != (u.role == Role::Creator) {
            return invalid("Creator role not held by exactly the creator");
        }
        creator_seen |= is_creator;
        if u.live.checked_add(u.dropped).is_none() {
            return invalid("connection count overflows");
        }
        // A deadline lies after `now` and no further than one grace
        // period ahead: no engine sets one anywhere else.
        let grace = limits.disconnect_grace_ms;
        let out_of_range = |g: Millis| now.is_some_and(|n| g <= n || g > n.saturating_add(grace));
        if (u.dropped > 0) != u.grace_until.is_some()
            || u.grace_until.is_some_and(out_of_range)
            || u.grace_until == Some(Millis::ZERO)
        {
            return invalid("dropped connections and grace deadline disagree");
        }
        if u.live == 0 && u.dropped == 0 && u.role == Role::Member {
            return invalid("user record with nothing in it");
        }
        let n = room
            .intern(&u.id)
            .ok_or(SnapshotError::Invalid("too many users"))?;
        if let Some(rec) = room.users.get_mut(n) {
            rec.live = u.live;
            rec.dropped = u.dropped;
            rec.grace_until = u.grace_until.unwrap_or(Millis::ZERO);
            rec.role = u.role;
        }
    }
    if !creator_seen {
        return invalid("creator has no record");
    }

    for a in snap.attributes.0 {
        check_key(&a.key, limits.max_key_len, limits.key_unit)
            .map_err(|_| SnapshotError::Invalid("attribute key"))?;
        if !limits.key_charset.allows(&a.key) {
            return invalid("attribute key charset");
        }
        if limits.value_unit.len(&a.value) > limits.max_value_len as usize {
            return invalid("attribute value too long");
        }
        if a.revision == 0 || a.revision > room.seq || after_now(a.changed_at) {
            return invalid("attribute revision or time out of range");
        }
        check_actor(&a.owner)?;
        if room.attrs.find(room.hash(&a.key), &a.key).is_some() {
            return invalid("attribute key repeated");
        }
        if limits
            .max_keys_per_room
            .is_some_and(|m| room.attrs.len() >= m as usize)
        {
            return invalid("more attributes than the profile allows");
        }
        let owner = room
            .owner_of(&a.owner)
            .ok_or(SnapshotError::Invalid("too many users"))?;
        let x = AttrX {
            revision: a.revision,
            at: a.changed_at,
        };
        let hash = room.hash(&a.key);
        let _ = room.put_attr(hash, None, a.key, a.value, owner, false, a.auto_delete, x);
        if limits
            .max_room_value_bytes
            .is_some_and(|m| room.value_bytes > m)
        {
            return invalid("room values over the profile's total");
        }
    }

    if let Some(q) = snap.queue {
        let ql = &limits.queue;
        // A first offer creates a queue of `default_capacity`, which a
        // custom profile may set above `max_capacity` (the limit of init).
        if q.capacity == 0 || q.capacity > ql.max_capacity.max(ql.default_capacity) {
            return invalid("queue capacity out of range");
        }
        room.queue = Some(alloc::boxed::Box::new(Queue::new(q.capacity)));
        for e in q.elements.0 {
            check_element(&e.key, &e.value, ql)
                .map_err(|_| SnapshotError::Invalid("queue element shape"))?;
            check_actor(&e.owner)?;
            let full = room.queue.as_ref().is_none_or(|q| !q.has_room());
            let hash = room.hash(&e.key);
            let repeated = room
                .queue
                .as_ref()
                .is_some_and(|q| q.elems.find(hash, &e.key).is_some());
            if full || repeated {
                return invalid("queue over capacity or key repeated");
            }
            let owner = room
                .owner_of(&e.owner)
                .ok_or(SnapshotError::Invalid("too many users"))?;
            let _ = room.put_elem(e.key, e.value, owner, e.transient);
        }
    }
    Ok(room)
}

impl Engine {
    /// The whole engine as snapshot bytes. Drain events first: undrained
    /// events are not included.
    #[must_use]
    pub fn snapshot(&self) -> Vec<u8> {
        let mut rooms: Vec<&Room> = self.rooms.iter().collect();
        rooms.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        encode(&EngineSnap {
            profile: self.profile,
            now: self.now,
            bucket_milli_tokens: self.bucket.milli_tokens,
            bucket_last: self.bucket.last,
            rooms: Seq(rooms.into_iter().map(room_snap).collect()),
        })
    }

    /// An engine from snapshot bytes, validated throughout.
    pub fn restore(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let snap: EngineSnap = decode(bytes)?;
        let mut engine = Engine::new(snap.profile);
        let limits = snap.profile.limits;
        engine.now = snap.now;
        let capacity = limits
            .request_rate
            .map_or(0, |r| u64::from(r.per_second) * 1000);
        if snap.bucket_milli_tokens > capacity || snap.bucket_last > snap.now {
            return invalid("rate bucket out of range");
        }
        engine.bucket = TokenBucket {
            milli_tokens: snap.bucket_milli_tokens,
            last: snap.bucket_last,
        };
        let mut previous: Option<Str> = None;
        for r in snap.rooms.0 {
            if previous.as_ref().is_some_and(|p| *p >= r.id) {
                return invalid("room ids unsorted or repeated");
            }
            previous = Some(r.id.clone());
            let room = build_room(r, &snap.profile, Some(snap.now))?;
            engine.insert_room(room)?;
        }
        Ok(engine)
    }

    /// One room as snapshot bytes (with the profile), `None` if no such room.
    #[must_use]
    pub fn snapshot_room(&self, id: &str) -> Option<Vec<u8>> {
        let room = self.rooms.get(id)?;
        Some(encode(&RoomOnlySnap {
            profile: self.profile,
            room: room_snap(room),
        }))
    }

    /// Adds a room from [`Engine::snapshot_room`] bytes. The profile must be
    /// this engine's and the room id free. The room's times are taken to be
    /// on this engine's clock: grace deadlines already past expire at once,
    /// with their usual events; a notification window that starts after
    /// this engine's `now` is reset.
    pub fn restore_room(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let snap: RoomOnlySnap = decode(bytes)?;
        if snap.profile != self.profile {
            return Err(SnapshotError::ProfileMismatch);
        }
        if self.rooms.contains(&snap.room.id) {
            return Err(SnapshotError::RoomExists);
        }
        let mut room = build_room(snap.room, &self.profile, None)?;
        // A budget window that starts after this engine's `now` belongs to
        // a clock that runs ahead of ours: start afresh rather than carry
        // its counts into our future.
        if room.flow.start.is_some_and(|s| s > self.now) {
            room.flow = FlowWindow::default();
        }
        self.insert_room(room)?;
        self.expire(self.now);
        Ok(())
    }

    fn insert_room(&mut self, room: Room) -> Result<(), SnapshotError> {
        let total = self.value_bytes + room.value_bytes;
        if self
            .profile
            .limits
            .max_engine_value_bytes
            .is_some_and(|m| total > m)
        {
            return invalid("engine values over the profile's total");
        }
        self.value_bytes = total;
        for (_, rec) in room.users.iter() {
            if let Some(at) = rec.grace() {
                self.timers.insert((at, room.id.clone(), rec.name.clone()));
            }
        }
        self.rooms.insert(alloc::boxed::Box::new(room));
        Ok(())
    }
}
