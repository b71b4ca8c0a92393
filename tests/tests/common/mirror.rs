//! A mirror of the snapshot's layout (version 2), for tests that decode a
//! real snapshot, change one thing and encode it again: a restore must
//! refuse what breaks a rule and keep what does not. Included by `#[path]`
//! where needed.
#![allow(dead_code)] // each including test uses part of it

use roomstate::{Attribute, Millis, Profile, QueueElement, Role, Str};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Header {
    pub magic: [u8; 4],
    pub version: u16,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EngineSnap {
    pub profile: Profile,
    pub now: Millis,
    pub bucket_milli_tokens: u64,
    pub bucket_last: Millis,
    pub rooms: Vec<RoomSnap>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RoomSnap {
    pub id: Str,
    pub creator: Str,
    pub seq: u64,
    pub flow_start: Option<Millis>,
    pub flow_normal: u32,
    pub flow_high: u32,
    pub attributes: Vec<Attribute>,
    pub queue: Option<(u32, Vec<QueueElement>)>,
    pub users: Vec<UserSnap>,
    /// Since version 2, as the three below.
    pub major_revision: u64,
    pub locks: Vec<LockSnap>,
    /// Counters in key order.
    pub counters: Vec<(Str, i64)>,
    /// TTL deadlines in key order.
    pub expiry: Vec<(Str, Millis)>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct LockSnap {
    pub name: Str,
    pub ttl_ms: u64,
    pub holder: Option<Str>,
    pub token: u64,
    pub deadline: Option<Millis>,
    pub waiters: Vec<Str>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct UserSnap {
    pub id: Str,
    pub live: u32,
    pub dropped: u32,
    pub grace_until: Option<Millis>,
    pub role: Role,
}

pub fn decode(bytes: &[u8]) -> (Header, EngineSnap) {
    let (h, rest) = postcard::take_from_bytes::<Header>(bytes).unwrap();
    (h, postcard::from_bytes(rest).unwrap())
}

pub fn encode(h: &Header, snap: &EngineSnap) -> Vec<u8> {
    let mut out = postcard::to_allocvec(h).unwrap();
    out.extend(postcard::to_allocvec(snap).unwrap());
    out
}
