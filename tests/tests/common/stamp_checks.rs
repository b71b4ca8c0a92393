//! What the stamp tests (`stamps.rs`, `review4_stamps.rs`) read and forge in
//! room "r": every attribute's `(key, revision, changed_at)`, a snapshot
//! round trip that must keep them, and a snapshot moved to a high room
//! number. Included by `#[path]` next to `common/mirror.rs` as `mirror`.
#![allow(dead_code)] // each including test uses part of it

use roomstate::Engine;

use super::mirror::{decode, encode};

/// `(key, revision, changed_at)` of every attribute of "r", in listing
/// order.
pub fn stamps(e: &Engine) -> Vec<(String, u64, u64)> {
    e.room("r")
        .unwrap()
        .attributes()
        .map(|a| (a.key.to_string(), a.revision, a.changed_at.0))
        .collect()
}

/// The engine restores from its snapshot to the same stamps, keeps its
/// invariants, and snapshots to the same bytes.
pub fn round_trips(e: &Engine) {
    let bytes = e.snapshot();
    let restored = Engine::restore(&bytes).expect("the engine's own snapshot restores");
    assert_eq!(restored.check_invariants(), Ok(()));
    assert_eq!(stamps(&restored), stamps(e));
    assert_eq!(restored.snapshot(), bytes);
}

/// The engine's snapshot with room "r"'s numbers moved up to `seq` (its
/// attributes' revisions end there, the major revision is the newest),
/// restored: revisions past `u32::MAX` are kept wide.
pub fn at_seq(e: &Engine, seq: u64) -> Engine {
    let (h, mut snap) = decode(&e.snapshot());
    let room = snap.rooms.iter_mut().find(|r| &*r.id == "r").unwrap();
    let n = room.attributes.len() as u64;
    for (i, a) in room.attributes.iter_mut().enumerate() {
        a.revision = seq - n + 1 + i as u64;
    }
    room.seq = seq;
    room.major_revision = seq;
    let e = Engine::restore(&encode(&h, &snap)).unwrap();
    assert_eq!(e.check_invariants(), Ok(()));
    e
}
