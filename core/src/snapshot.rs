//! Snapshots: the engine (or one room) as versioned postcard bytes, and a
//! restore that trusts nothing.
//!
//! Layout: `b"RSTS"`, a `u16` format version (varint), then the body. The
//! body holds the profile, the clock, the rate bucket and every room
//! sorted by id; each room its attributes in listing order, its queue in
//! order, its users sorted by id, its major revision and its locks in
//! creation order (users: only those that are present or have a role; the owner index is derived from the attributes and queue and
//! rebuilt on restore). Nothing depends on hash order, so snapshot →
//! restore → snapshot gives the same bytes. Undrained events are not part
//! of a snapshot: drain them first.
//!
//! Writing reads straight from the rooms' storage: nothing is copied to
//! write a snapshot.
//!
//! Restore checks every limit of the snapshot's profile, key shapes,
//! uniqueness and order of ids and keys, owners, roles, revisions against
//! sequence numbers, byte totals, queue capacity, grace deadlines and
//! budget counters, and rebuilds the owner index. It never holds a decoded
//! copy of the snapshot: each room is built as its fields are decoded, each
//! attribute, element and user is checked and stored as soon as it is read,
//! and the first broken rule stops the decoder. Nothing is preallocated
//! from a length prefix. So a restore takes the engine it builds plus one
//! record at a time, and a room that breaks a limit costs no more than the
//! limit allows.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::command::Role;
use crate::engine::{check_element, check_key, Engine};
use crate::flow::{FlowWindow, TokenBucket};
use crate::profile::{Profile, Unit};
use crate::queue::Queue;
use crate::room::{Room, Rooms};
use crate::snapshot_v1::ProfileV1;
use crate::stamp::Stamp;
use crate::text::Str;
use crate::time::Millis;

/// First bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"RSTS";
/// Format version written by this build. It also reads version 1 (no
/// counters, no TTL deadlines, the profile without their limits).
pub const SNAPSHOT_VERSION: u16 = 2;

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
        match self {
            SnapshotError::NotASnapshot => f.write_str("not a roomstate snapshot"),
            SnapshotError::UnsupportedVersion(v) => {
                write!(f, "snapshot format version {v} is not one this build reads")
            }
            SnapshotError::Malformed => f.write_str("snapshot bytes do not decode"),
            SnapshotError::TrailingBytes => f.write_str("bytes left over after the snapshot"),
            SnapshotError::ProfileMismatch => {
                f.write_str("the room snapshot's profile differs from the engine's")
            }
            SnapshotError::RoomExists => f.write_str("the engine already has this room"),
            SnapshotError::Invalid(what) => write!(f, "snapshot breaks a rule: {what}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SnapshotError {}

#[derive(Serialize, Deserialize)]
struct Header {
    magic: [u8; 4],
    version: u16,
}

/// A lock as written.
#[derive(Serialize, Deserialize)]
struct LockSnap {
    name: Str,
    ttl_ms: u64,
    holder: Option<Str>,
    token: u64,
    deadline: Option<Millis>,
    waiters: Vec<Str>,
}

/// A user's record as written (only users present or with a role).
#[derive(Serialize, Deserialize)]
struct UserSnap {
    id: Str,
    live: u32,
    dropped: u32,
    grace_until: Option<Millis>,
    role: Role,
}

// ----- writing: straight from storage -----
//
// The layout is that of these derived structs, field by field (postcard
// writes a struct as its fields in order, and a sequence with its length):
//
// engine: (profile, now, bucket_milli_tokens, bucket_last, [room])
// room:   (id, creator, seq, flow_start, flow_normal, flow_high,
//          [Attribute], Option<(capacity, [QueueElement])>, [UserSnap],
//          major_revision, [LockSnap], [(counter key, i64)] sorted by
//          key, [(key, TTL deadline)] sorted by key)
//          -- version 1 has the first nine fields only
//
// The catch-up history is not written: it is a cache of events a client
// may have missed, not state. A restored room starts with an empty
// history, so `Since` answers `HistoryTruncated` and the client reads the
// full state, which is always correct.
// one room alone: (profile, room)

/// An owner as written: the same bytes as [`crate::Actor`]'s, borrowed (from the
/// room when writing, from the input when reading).
#[derive(Serialize, Deserialize)]
enum ActorRec<'a> {
    Admin,
    User(&'a str),
}

impl<'a> ActorRec<'a> {
    /// The user id, `None` for `Admin`.
    fn user(&self) -> Option<&'a str> {
        match *self {
            ActorRec::Admin => None,
            ActorRec::User(u) => Some(u),
        }
    }
}

/// An attribute as written: the same bytes as [`crate::Attribute`]'s, borrowed
/// from the room's arena (or, reading, from the input: restoring copies
/// each key and value once, into the arena).
#[derive(Serialize, Deserialize)]
struct AttrRec<'a> {
    key: &'a str,
    value: &'a str,
    owner: ActorRec<'a>,
    auto_delete: bool,
    revision: u64,
    changed_at: Millis,
}

/// A queue element as written: the same bytes as [`crate::QueueElement`]'s.
#[derive(Serialize, Deserialize)]
struct ElemRec<'a> {
    key: &'a str,
    value: &'a str,
    owner: ActorRec<'a>,
    transient: bool,
}

fn actor_out(room: &Room, owner: u32) -> ActorRec<'_> {
    match room.owner_name(owner) {
        Some(name) => ActorRec::User(name),
        None => ActorRec::Admin,
    }
}

/// Writes `len` items of an iterator as a sequence.
fn write_seq<S: Serializer, T: Serialize>(
    s: S,
    len: usize,
    items: impl Iterator<Item = T>,
) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(len))?;
    for item in items {
        seq.serialize_element(&item)?;
    }
    seq.end()
}

struct AttrsOut<'a>(&'a Room);

impl Serialize for AttrsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let room = self.0;
        let attrs = room.attrs.positions().filter_map(|p| {
            let m = room.attrs.meta(p)?;
            let key = room.attrs.key(p);
            let stamp = room.stamp_of(key, m.x);
            Some(AttrRec {
                key,
                value: room.attrs.value(p),
                owner: actor_out(room, m.owner()),
                auto_delete: m.flagged(),
                revision: stamp.revision,
                changed_at: stamp.at,
            })
        });
        write_seq(s, room.attrs.len(), attrs)
    }
}

struct ElemsOut<'a>(&'a Room, &'a Queue);

impl Serialize for ElemsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ElemsOut(room, q) = *self;
        let elems = q.elems.positions().filter_map(|p| {
            let m = q.elems.meta(p)?;
            Some(ElemRec {
                key: q.elems.key(p),
                value: q.elems.value(p),
                owner: actor_out(room, m.owner()),
                transient: m.flagged(),
            })
        });
        write_seq(s, q.elems.len(), elems)
    }
}

/// A room as written, straight from its storage.
struct RoomOut<'a>(&'a Room);

impl Serialize for RoomOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let room = self.0;
        let mut users: Vec<UserSnap> = room
            .users
            .iter()
            .filter(|(_, r)| r.is_present() || r.role != Role::Member)
            .map(|(n, r)| UserSnap {
                id: r.name.clone(),
                live: r.live,
                dropped: r.dropped,
                grace_until: room.grace(n),
                role: r.role,
            })
            .collect();
        users.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let queue = room
            .queue
            .as_deref()
            .map(|q| (q.capacity, ElemsOut(room, q)));
        let locks: Vec<LockSnap> = room
            .locks()
            .list()
            .iter()
            .map(|l| LockSnap {
                name: l.name.clone(),
                ttl_ms: l.ttl_ms,
                holder: l.holder.clone(),
                token: l.token,
                deadline: l.deadline,
                waiters: l.waiters.clone(),
            })
            .collect();
        let mut t = s.serialize_tuple(ROOM_FIELDS)?;
        t.serialize_element(&room.id)?;
        t.serialize_element(room.creator_name())?;
        t.serialize_element(&room.seq)?;
        t.serialize_element(&room.flow.start())?;
        t.serialize_element(&room.flow.normal)?;
        t.serialize_element(&room.flow.high)?;
        t.serialize_element(&AttrsOut(room))?;
        t.serialize_element(&queue)?;
        t.serialize_element(&users)?;
        t.serialize_element(&room.attr_rev)?;
        t.serialize_element(&locks)?;
        t.serialize_element(&CountersOut(room))?;
        t.serialize_element(&ExpiryOut(room))?;
        t.end()
    }
}

/// A room's counters, in key order.
struct CountersOut<'a>(&'a Room);

impl Serialize for CountersOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write_seq(s, self.0.counters().len(), self.0.counters().iter())
    }
}

/// A room's TTL deadlines, in key order.
struct ExpiryOut<'a>(&'a Room);

impl Serialize for ExpiryOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write_seq(s, self.0.expiry().len(), self.0.expiry().iter())
    }
}

/// Every room, sorted by id.
struct RoomsOut<'a>(&'a Rooms);

impl Serialize for RoomsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut rooms: Vec<&Room> = self.0.iter().collect();
        rooms.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        write_seq(s, rooms.len(), rooms.into_iter().map(RoomOut))
    }
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

// ----- reading: validate and build as the bytes are read -----

fn invalid<T>(what: &'static str) -> Result<T, SnapshotError> {
    Err(SnapshotError::Invalid(what))
}

fn check_actor(a: &ActorRec<'_>) -> Result<(), SnapshotError> {
    match a {
        ActorRec::User("") => invalid("empty user id as owner"),
        _ => Ok(()),
    }
}

/// The body of a snapshot, after its header is checked.
fn body(bytes: &[u8]) -> Result<(u16, &[u8]), SnapshotError> {
    let (header, rest) =
        postcard::take_from_bytes::<Header>(bytes).map_err(|_| SnapshotError::NotASnapshot)?;
    if header.magic != SNAPSHOT_MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    if !(1..=SNAPSHOT_VERSION).contains(&header.version) {
        return Err(SnapshotError::UnsupportedVersion(header.version));
    }
    Ok((header.version, rest))
}

/// The profile, in the layout of the snapshot's version.
fn profile_field<'de, A: SeqAccess<'de>>(seq: &mut A, version: u16) -> Result<Profile, A::Error> {
    if version == 1 {
        Ok(field::<A, ProfileV1>(seq)?.into())
    } else {
        field(seq)
    }
}

type Decoder<'de> = postcard::Deserializer<'de, postcard::de_flavors::Slice<'de>>;

/// The outcome of decoding a body: a validation failure inside the decoder
/// comes back as its typed error, and bytes left over are refused.
fn finish<T, E>(
    decoded: Result<T, E>,
    failure: Option<SnapshotError>,
    de: Decoder<'_>,
) -> Result<T, SnapshotError> {
    let value = decoded.map_err(|_| failure.unwrap_or(SnapshotError::Malformed))?;
    match de.finalize() {
        Ok([]) => Ok(value),
        Ok(_) => Err(SnapshotError::TrailingBytes),
        Err(_) => Err(SnapshotError::Malformed),
    }
}

/// Records a validation failure and stops the decoder.
fn stop<E: de::Error>(failure: &mut Option<SnapshotError>, e: SnapshotError) -> E {
    *failure = Some(e);
    E::custom("invalid snapshot")
}

/// The next field of a struct written as a tuple, which must be there.
fn field<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("missing field"))
}

fn field_seed<'de, A: SeqAccess<'de>, T: DeserializeSeed<'de>>(
    seq: &mut A,
    seed: T,
) -> Result<T::Value, A::Error> {
    seq.next_element_seed(seed)?
        .ok_or_else(|| de::Error::custom("missing field"))
}

/// What the decoding of one room needs.
struct Ctx<'a> {
    profile: &'a Profile,
    /// The snapshot's clock for a whole-engine restore; `None` for a
    /// single room, which may come from another engine's clock.
    now: Option<Millis>,
    /// For a single room: the engine's rooms, whose ids it must not take.
    taken: Option<&'a Rooms>,
    /// The snapshot's format version.
    version: u16,
}

impl Ctx<'_> {
    fn after_now(&self, t: Millis) -> bool {
        self.now.is_some_and(|n| t > n)
    }
}

/// A notification window as written.
struct FlowSnap {
    start: Option<Millis>,
    normal: u32,
    high: u32,
}

/// A room's head (id, creator, seq, flow window), validated; the room is
/// built from it.
fn room_head(
    ctx: &Ctx<'_>,
    id: Str,
    creator: &Str,
    seq: u64,
    flow: FlowSnap,
) -> Result<Room, SnapshotError> {
    if id.is_empty() || creator.is_empty() {
        return invalid("empty room or creator id");
    }
    if ctx.taken.is_some_and(|rooms| rooms.contains(&id)) {
        return Err(SnapshotError::RoomExists);
    }
    if seq == 0 || seq > MAX_SEQ {
        return invalid("room sequence number 0 or above MAX_SEQ");
    }
    if flow.start.is_some_and(|t| ctx.after_now(t))
        || (flow.start.is_none() && (flow.normal | flow.high) != 0)
    {
        return invalid("notification window in the future or counts without a window");
    }
    if let Some(f) = ctx.profile.limits.notification_flow {
        if flow.normal > f.normal_per_second || flow.high > f.high_per_second {
            return invalid("notification counts over budget");
        }
    } else if flow.start.is_some() {
        return invalid("notification window without a flow in the profile");
    }
    let mut room = Room::new(id, creator).ok_or(SnapshotError::Invalid("creator id"))?;
    room.seq = seq;
    room.flow = FlowWindow::new(flow.start, flow.normal, flow.high);
    // Not in the snapshot: a restored room's history starts now (a new
    // room's empty one covers from its `seq`).
    Ok(room)
}

/// Checks one attribute against the profile and the room, and stores it.
fn add_attribute(ctx: &Ctx<'_>, room: &mut Room, a: AttrRec<'_>) -> Result<(), SnapshotError> {
    let limits = &ctx.profile.limits;
    check_key(a.key, limits.max_key_len, limits.key_unit)
        .map_err(|_| SnapshotError::Invalid("attribute key"))?;
    if !limits.key_charset.allows(a.key) {
        return invalid("attribute key charset");
    }
    if limits
        .value_unit
        .exceeds(a.value, limits.max_value_len as usize)
    {
        return invalid("attribute value too long");
    }
    if a.revision == 0 || a.revision > room.seq || ctx.after_now(a.changed_at) {
        return invalid("attribute revision or time out of range");
    }
    check_actor(&a.owner)?;
    let hash = room.hash(a.key);
    if room.attrs.find(hash, a.key).is_some() {
        return invalid("attribute key repeated");
    }
    if limits
        .max_keys_per_room
        .is_some_and(|m| room.attrs.len() >= m as usize)
    {
        return invalid("more attributes than the profile allows");
    }
    if limits
        .max_room_value_bytes
        .is_some_and(|m| room.value_bytes + a.value.len() as u64 > m)
    {
        return invalid("room values over the profile's total");
    }
    let x = Stamp {
        revision: a.revision,
        at: a.changed_at,
    };
    room.insert_attr(hash, a.key, a.value, a.owner.user(), a.auto_delete, x)
        .ok_or(SnapshotError::Invalid("too many users or bytes"))
}

/// Checks one queue element and stores it (the queue exists).
fn add_element(ctx: &Ctx<'_>, room: &mut Room, e: ElemRec<'_>) -> Result<(), SnapshotError> {
    check_element(e.key, e.value, &ctx.profile.limits.queue)
        .map_err(|_| SnapshotError::Invalid("queue element shape"))?;
    check_actor(&e.owner)?;
    let hash = room.hash(e.key);
    let full = room.queue.as_ref().is_none_or(|q| !q.has_room());
    let repeated = room
        .queue
        .as_ref()
        .is_some_and(|q| q.elems.find(hash, e.key).is_some());
    if full || repeated {
        return invalid("queue over capacity or key repeated");
    }
    room.insert_elem(hash, e.key, e.value, e.owner.user(), e.transient)
        .ok_or(SnapshotError::Invalid("too many users or bytes"))
}

/// Checks one user's record (after the one before it, in id order) and
/// sets it.
fn add_user(
    ctx: &Ctx<'_>,
    room: &mut Room,
    creator: &Str,
    previous: Option<&Str>,
    u: &UserSnap,
) -> Result<(), SnapshotError> {
    if u.id.is_empty() || previous.is_some_and(|p| *p >= u.id) {
        return invalid("user ids empty, unsorted or repeated");
    }
    if (u.id == *creator) != (u.role == Role::Creator) {
        return invalid("Creator role not held by exactly the creator");
    }
    if u.live.checked_add(u.dropped).is_none() {
        return invalid("connection count overflows");
    }
    // A deadline lies after `now` and no further than one grace period
    // ahead: no engine sets one anywhere else. It is never 0 (it lies
    // after some `now`).
    let grace = ctx.profile.limits.disconnect_grace_ms;
    let out_of_range = |g: Millis| {
        g == Millis::ZERO
            || ctx
                .now
                .is_some_and(|n| g <= n || g > n.saturating_add(grace))
    };
    if (u.dropped > 0) != u.grace_until.is_some() || u.grace_until.is_some_and(out_of_range) {
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
        rec.role = u.role;
    }
    if let Some(at) = u.grace_until {
        room.set_grace(n, at);
    }
    Ok(())
}

/// The latest time a room's state shows its clock had reached: its newest
/// attribute change, and each grace or lock deadline less the period that
/// set it.
fn latest_time(room: &Room, grace_ms: u64) -> Millis {
    let changes = room.attrs.positions().filter_map(|p| {
        room.attrs
            .meta(p)
            .map(|m| room.stamp_of(room.attrs.key(p), m.x).at)
    });
    let graces = room
        .graces()
        .values()
        .map(|d| Millis(d.0.saturating_sub(grace_ms)));
    let locks = room.locks().list().iter().filter_map(|l| {
        l.deadline
            .map(|d| Millis(d.0.saturating_sub(l.ttl_ms.max(1))))
    });
    changes
        .chain(graces)
        .chain(locks)
        .max()
        .unwrap_or(Millis::ZERO)
}

/// The revision of the room's newest attribute (0: none).
fn newest_revision(room: &Room) -> u64 {
    room.attrs
        .positions()
        .filter_map(|p| {
            room.attrs
                .meta(p)
                .map(|m| room.revision_of(room.attrs.key(p), m.x))
        })
        .max()
        .unwrap_or(0)
}

/// Checks the room's major revision against its seq and attributes.
fn set_major_revision(room: &mut Room, major: u64) -> Result<(), SnapshotError> {
    let newest = newest_revision(room);
    if major > room.seq || major < newest {
        return invalid("major revision after the seq or before an attribute's");
    }
    room.attr_rev = major;
    Ok(())
}

/// Checks one lock against the profile and the room's users (decoded
/// before it), and stores it.
fn add_lock(ctx: &Ctx<'_>, room: &mut Room, l: LockSnap) -> Result<(), SnapshotError> {
    let limits = ctx.profile.limits.locks;
    if !limits.name_ok(&l.name) || room.locks().get(&l.name).is_some() {
        return invalid("lock name invalid or repeated");
    }
    if room.locks().len() >= limits.max_per_room as usize {
        return invalid("more locks than the profile allows");
    }
    if l.ttl_ms != limits.clamp_ttl(l.ttl_ms) {
        return invalid("lock TTL outside the profile's range");
    }
    let live = |u: &str| {
        room.users
            .by_name(&room.hasher, u)
            .filter(|r| r.is_present())
            .map(|r| r.live)
    };
    match &l.holder {
        None => {
            if !l.waiters.is_empty() || l.deadline.is_some() {
                return invalid("free lock with waiters or a deadline");
            }
        }
        Some(h) => {
            let Some(h_live) = live(h) else {
                return invalid("lock holder not in the room");
            };
            if l.token == 0 {
                return invalid("held lock without a token");
            }
            // A deadline lies after `now` and no further than one TTL
            // ahead, and exactly while the holder has no live connection.
            let out_of_range = |d: Millis| {
                d == Millis::ZERO
                    || ctx
                        .now
                        .is_some_and(|n| d <= n || d > n.saturating_add(l.ttl_ms.max(1)))
            };
            if (h_live == 0) != l.deadline.is_some() || l.deadline.is_some_and(out_of_range) {
                return invalid("lock deadline and holder's connections disagree");
            }
            for (i, w) in l.waiters.iter().enumerate() {
                if w == h || l.waiters.iter().skip(i + 1).any(|x| x == w) {
                    return invalid("lock waiter repeated or the holder");
                }
                if live(w).is_none() {
                    return invalid("lock waiter not in the room");
                }
            }
        }
    }
    room.rare_mut().locks.push(crate::locks::Lock {
        name: l.name,
        ttl_ms: l.ttl_ms,
        holder: l.holder,
        token: l.token,
        deadline: l.deadline,
        waiters: l.waiters,
    });
    Ok(())
}

/// Fields of a room as written (version 2).
const ROOM_FIELDS: usize = 13;
/// Fields of a room in version 1.
const ROOM_FIELDS_V1: usize = 9;

/// Checks one counter (after the one before it, in key order) and stores it.
fn add_counter(
    ctx: &Ctx<'_>,
    room: &mut Room,
    (key, value): (Str, i64),
) -> Result<(), SnapshotError> {
    let limits = &ctx.profile.limits;
    check_key(&key, limits.max_counter_key_len, Unit::Bytes)
        .map_err(|_| SnapshotError::Invalid("counter key"))?;
    if room
        .counters()
        .iter()
        .last()
        .is_some_and(|(k, _)| *k >= key)
    {
        return invalid("counter keys unsorted or repeated");
    }
    if limits
        .max_counters_per_room
        .is_some_and(|m| room.counters().len() >= m as usize)
    {
        return invalid("more counters than the profile allows");
    }
    room.rare_mut().counters.set(key, value);
    Ok(())
}

/// Checks one TTL deadline (of a stored key, after the one before it in
/// key order, after `now`) and stores it.
fn add_deadline(
    ctx: &Ctx<'_>,
    room: &mut Room,
    (key, at): (Str, Millis),
) -> Result<(), SnapshotError> {
    if room.attrs.find(room.hash(&key), &key).is_none() {
        return invalid("TTL deadline of a key that is not stored");
    }
    if room
        .expiry()
        .last_key_value()
        .is_some_and(|(k, _)| *k >= key)
    {
        return invalid("TTL keys unsorted or repeated");
    }
    if at == Millis::ZERO || ctx.now.is_some_and(|n| at <= n) {
        return invalid("TTL deadline not after the snapshot's clock");
    }
    room.rare_mut().expiry.insert(key, at);
    Ok(())
}

/// Decodes and builds one room.
struct RoomSeed<'c, 'f> {
    ctx: &'c Ctx<'c>,
    failure: &'f mut Option<SnapshotError>,
}

impl<'de> DeserializeSeed<'de> for RoomSeed<'_, '_> {
    type Value = Room;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Room, D::Error> {
        let fields = if self.ctx.version == 1 {
            ROOM_FIELDS_V1
        } else {
            ROOM_FIELDS
        };
        d.deserialize_tuple(fields, self)
    }
}

impl<'de> Visitor<'de> for RoomSeed<'_, '_> {
    type Value = Room;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a room")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Room, A::Error> {
        let RoomSeed { ctx, failure } = self;
        let id: Str = field(&mut seq)?;
        let creator: Str = field(&mut seq)?;
        let room_seq: u64 = field(&mut seq)?;
        let flow = FlowSnap {
            start: field(&mut seq)?,
            normal: field(&mut seq)?,
            high: field(&mut seq)?,
        };
        let mut room =
            room_head(ctx, id, &creator, room_seq, flow).map_err(|e| stop(failure, e))?;
        let attrs = EachRecord::new(&mut *failure, |a: AttrRec<'_>| {
            add_attribute(ctx, &mut room, a)
        });
        field_seed(&mut seq, attrs)?;
        room.normalize_stamps();
        field_seed(
            &mut seq,
            QueueSeed {
                ctx,
                room: &mut room,
                failure: &mut *failure,
            },
        )?;
        let mut previous: Option<Str> = None;
        let mut creator_seen = false;
        let users = EachRecord::new(&mut *failure, |u: UserSnap| {
            add_user(ctx, &mut room, &creator, previous.as_ref(), &u)?;
            creator_seen |= u.id == creator;
            previous = Some(u.id);
            Ok(())
        });
        field_seed(&mut seq, users)?;
        if !creator_seen {
            return Err(stop(
                failure,
                SnapshotError::Invalid("creator has no record"),
            ));
        }
        if ctx.version == 1 {
            // Version 1 had no major revision: the newest attribute's.
            let newest = newest_revision(&room);
            set_major_revision(&mut room, newest).map_err(|e| stop(failure, e))?;
        } else {
            let major: u64 = field(&mut seq)?;
            set_major_revision(&mut room, major).map_err(|e| stop(failure, e))?;
            let locks = EachRecord::new(&mut *failure, |l: LockSnap| add_lock(ctx, &mut room, l));
            field_seed(&mut seq, locks)?;
            let counters = EachRecord::new(&mut *failure, |c: (Str, i64)| {
                add_counter(ctx, &mut room, c)
            });
            field_seed(&mut seq, counters)?;
            let expiry = EachRecord::new(&mut *failure, |d: (Str, Millis)| {
                add_deadline(ctx, &mut room, d)
            });
            field_seed(&mut seq, expiry)?;
        }
        Ok(room)
    }
}

/// A sequence of records, each handed to `add` (which checks and stores
/// it) as soon as it is decoded; nothing is collected.
struct EachRecord<'f, T, F> {
    failure: &'f mut Option<SnapshotError>,
    add: F,
    kind: PhantomData<T>,
}

impl<'f, T, F: FnMut(T) -> Result<(), SnapshotError>> EachRecord<'f, T, F> {
    fn new(failure: &'f mut Option<SnapshotError>, add: F) -> Self {
        EachRecord {
            failure,
            add,
            kind: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T) -> Result<(), SnapshotError>> DeserializeSeed<'de>
    for EachRecord<'_, T, F>
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T) -> Result<(), SnapshotError>> Visitor<'de>
    for EachRecord<'_, T, F>
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<T>()? {
            (self.add)(record).map_err(|e| stop(self.failure, e))?;
        }
        Ok(())
    }
}

/// A room's optional queue: its capacity, then its elements.
struct QueueSeed<'c, 'r, 'f> {
    ctx: &'c Ctx<'c>,
    room: &'r mut Room,
    failure: &'f mut Option<SnapshotError>,
}

impl<'de> DeserializeSeed<'de> for QueueSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for QueueSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional queue")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_tuple(2, self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let QueueSeed { ctx, room, failure } = self;
        let capacity: u32 = field(&mut seq)?;
        let ql = &ctx.profile.limits.queue;
        // A first offer creates a queue of `default_capacity`, which a
        // custom profile may set above `max_capacity` (the limit of init).
        if capacity == 0 || capacity > ql.max_capacity.max(ql.default_capacity) {
            return Err(stop(
                failure,
                SnapshotError::Invalid("queue capacity out of range"),
            ));
        }
        room.queue = Some(Box::new(Queue::new(capacity)));
        let elems = EachRecord::new(failure, |e: ElemRec<'_>| add_element(ctx, room, e));
        field_seed(&mut seq, elems)
    }
}

/// The rooms of a whole-engine snapshot, each built and added as decoded.
struct RoomsSeed<'c, 'e, 'f> {
    ctx: &'c Ctx<'c>,
    engine: &'e mut Engine,
    failure: &'f mut Option<SnapshotError>,
}

impl<'de> DeserializeSeed<'de> for RoomsSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RoomsSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of rooms")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let RoomsSeed {
            ctx,
            engine,
            failure,
        } = self;
        let mut previous: Option<Str> = None;
        while let Some(room) = seq.next_element_seed(RoomSeed {
            ctx,
            failure: &mut *failure,
        })? {
            if previous.as_ref().is_some_and(|p| *p >= room.id) {
                return Err(stop(
                    failure,
                    SnapshotError::Invalid("room ids unsorted or repeated"),
                ));
            }
            previous = Some(room.id.clone());
            engine.insert_room(room).map_err(|e| stop(failure, e))?;
        }
        Ok(())
    }
}

/// A whole engine.
struct EngineSeed<'f>(&'f mut Option<SnapshotError>, u16);

impl<'de> DeserializeSeed<'de> for EngineSeed<'_> {
    type Value = Engine;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Engine, D::Error> {
        d.deserialize_tuple(5, self)
    }
}

impl<'de> Visitor<'de> for EngineSeed<'_> {
    type Value = Engine;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an engine")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Engine, A::Error> {
        let EngineSeed(failure, version) = self;
        let profile = profile_field(&mut seq, version)?;
        let now: Millis = field(&mut seq)?;
        let milli_tokens: u64 = field(&mut seq)?;
        let last: Millis = field(&mut seq)?;
        let capacity = profile
            .limits
            .request_rate
            .map_or(0, |r| u64::from(r.per_second) * 1000);
        if milli_tokens > capacity || last > now {
            return Err(stop(
                failure,
                SnapshotError::Invalid("rate bucket out of range"),
            ));
        }
        let mut engine = Engine::new(profile);
        engine.now = now;
        engine.bucket = TokenBucket { milli_tokens, last };
        let ctx = Ctx {
            profile: &profile,
            now: Some(now),
            taken: None,
            version,
        };
        field_seed(
            &mut seq,
            RoomsSeed {
                ctx: &ctx,
                engine: &mut engine,
                failure,
            },
        )?;
        Ok(engine)
    }
}

/// One room with the profile it was written under.
struct RoomOnlySeed<'e, 'f> {
    engine: &'e Engine,
    failure: &'f mut Option<SnapshotError>,
    version: u16,
}

impl<'de> DeserializeSeed<'de> for RoomOnlySeed<'_, '_> {
    type Value = Room;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Room, D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for RoomOnlySeed<'_, '_> {
    type Value = Room;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a room with its profile")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Room, A::Error> {
        let RoomOnlySeed {
            engine,
            failure,
            version,
        } = self;
        let profile = profile_field(&mut seq, version)?;
        if profile != engine.profile {
            return Err(stop(failure, SnapshotError::ProfileMismatch));
        }
        let ctx = Ctx {
            profile: &engine.profile,
            now: None,
            taken: Some(&engine.rooms),
            version,
        };
        field_seed(&mut seq, RoomSeed { ctx: &ctx, failure })
    }
}

/// The engine's header fields and rooms, for writing.
#[derive(Serialize)]
struct EngineOut<'a> {
    profile: &'a Profile,
    now: Millis,
    bucket_milli_tokens: u64,
    bucket_last: Millis,
    rooms: RoomsOut<'a>,
}

impl Engine {
    /// The whole engine as snapshot bytes. Drain events first: undrained
    /// events are not included.
    #[must_use]
    pub fn snapshot(&self) -> Vec<u8> {
        encode(&EngineOut {
            profile: &self.profile,
            now: self.now,
            bucket_milli_tokens: self.bucket.milli_tokens,
            bucket_last: self.bucket.last,
            rooms: RoomsOut(&self.rooms),
        })
    }

    /// An engine from snapshot bytes, validated throughout. Rooms are built
    /// as they are decoded: the memory taken is that of the engine built,
    /// and a snapshot that breaks a rule is refused as soon as the rule is
    /// broken.
    pub fn restore(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let (version, body) = body(bytes)?;
        let mut de = Decoder::from_bytes(body);
        let mut failure = None;
        let decoded = EngineSeed(&mut failure, version).deserialize(&mut de);
        finish(decoded, failure, de)
    }

    /// One room as snapshot bytes (with the profile), `None` if no such room.
    #[must_use]
    pub fn snapshot_room(&self, id: &str) -> Option<Vec<u8>> {
        let room = self.rooms.get(id)?;
        Some(encode(&(&self.profile, RoomOut(room))))
    }

    /// Adds a room from [`Engine::snapshot_room`] bytes. The profile must be
    /// this engine's and the room id free. The room's times are taken to be
    /// on this engine's clock: grace deadlines already past expire at once,
    /// with their usual events; times from a clock that runs ahead of this
    /// engine's (an attribute changed after our `now`, a grace or lock
    /// deadline more than its period ahead) move our clock forward to
    /// them, as a [`Command::Tick`](crate::Command::Tick) at that time
    /// would; a notification window that starts after `now` is reset.
    pub fn restore_room(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let (version, body) = body(bytes)?;
        let mut de = Decoder::from_bytes(body);
        let mut failure = None;
        let decoded = RoomOnlySeed {
            engine: self,
            failure: &mut failure,
            version,
        }
        .deserialize(&mut de);
        let mut room = finish(decoded, failure, de)?;
        // Times from a clock that runs ahead of ours (a change, or a
        // deadline set one grace period or lock TTL after it) move our
        // clock up to them, as a Tick at that time would: the engine then
        // restores from its own snapshot, and writes in the room keep
        // 8-byte stamps (review4).
        self.now = self
            .now
            .max(latest_time(&room, self.profile.limits.disconnect_grace_ms));
        // A budget window that starts after this engine's `now` belongs to
        // a clock that runs ahead of ours: start afresh rather than carry
        // its counts into our future.
        if room.flow.start().is_some_and(|s| s > self.now) {
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
        for (&n, &at) in room.graces() {
            if let Some(rec) = room.users.get(n) {
                self.timers.insert((at, room.id.clone(), rec.name.clone()));
            }
        }
        for lock in room.locks().list() {
            if let Some(at) = lock.deadline {
                self.lock_timers
                    .insert((at, room.id.clone(), lock.name.clone()));
            }
        }
        for (key, at) in room.expiry() {
            self.ttls.insert((*at, room.id.clone(), key.clone()));
        }
        self.rooms.insert(Box::new(room));
        Ok(())
    }
}
