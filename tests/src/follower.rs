//! A reconnecting client, for the simulator: it mirrors one room from a
//! baseline (a full read and its `seq`), catch-up (`events_since`) and
//! live events, drops off and comes back at random points, and must hold
//! exactly the engine's state whenever it is caught up.
//!
//! What it mirrors is everything events announce about a room's state:
//! attributes (value, owner, auto-delete, revision, time of change), the
//! queue (capacity and elements in order), counters, and locks (TTL,
//! holder, token). Membership is not mirrored: joins of dropped
//! connections inside their grace are not announced.
//!
//! A change made with notification off has no event: a follower learns of
//! it from the next event's number, so it is compared with the engine only
//! when its number is the room's.
//!
//! The protocol is the one a client follows: apply live events while each
//! is the next number; on a gap (a silent change, or events missed while
//! away) catch up from the last number applied; when the history no longer
//! reaches back, read the full state. A room destroyed and created again
//! under the same id starts its numbers again, which numbers alone cannot
//! tell; the follower learns of the destruction from its event, as a
//! client learns it from the room's lifecycle, and reads the new room in
//! full.

use std::collections::BTreeMap;

use roomstate::{Actor, Change, Engine, Event, Millis, Rejection, RoomView, Str};

use crate::sim::Rng;

/// An attribute as a client holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Attr {
    value: Str,
    owner: Actor,
    auto_delete: bool,
    revision: u64,
    changed_at: Millis,
}

/// A lock as events describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Lock {
    ttl_ms: u64,
    holder: Option<Str>,
    token: u64,
}

/// A queue element as a client holds it: key, value, owner, transient.
type Elem = (Str, Str, Actor, bool);

/// One room as a client holds it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Mirror {
    seq: u64,
    attrs: BTreeMap<Str, Attr>,
    queue: Option<(u32, Vec<Elem>)>,
    counters: BTreeMap<Str, i64>,
    locks: BTreeMap<Str, Lock>,
}

impl Mirror {
    /// The full state of `room`, as a client's full read gets it.
    #[must_use]
    pub fn read(room: &RoomView<'_>) -> Mirror {
        Mirror {
            seq: room.seq(),
            attrs: room
                .attributes()
                .map(|a| {
                    let attr = Attr {
                        value: a.value.into(),
                        owner: a.owner_actor(),
                        auto_delete: a.auto_delete,
                        revision: a.revision,
                        changed_at: a.changed_at,
                    };
                    (Str::from(a.key), attr)
                })
                .collect(),
            queue: room.queue_capacity().map(|capacity| {
                let elems = room
                    .queue()
                    .map(|e| (e.key.into(), e.value.into(), e.owner_actor(), e.transient))
                    .collect();
                (capacity, elems)
            }),
            counters: room.counters().map(|(k, v)| (k.into(), v)).collect(),
            locks: room
                .locks()
                .map(|l| {
                    let lock = Lock {
                        ttl_ms: l.ttl_ms,
                        holder: l.holder.map(Str::from),
                        token: l.token,
                    };
                    (Str::from(l.name), lock)
                })
                .collect(),
        }
    }

    /// Applies the next event. `false` if it is not the next number (the
    /// client missed something and must catch up) or the room is gone.
    fn apply(&mut self, e: &Event) -> bool {
        if e.seq != self.seq + 1 {
            return false;
        }
        self.seq = e.seq;
        for c in &e.changes[..] {
            match c {
                Change::RoomDestroyed => return false,
                Change::AttributeSet {
                    key,
                    value,
                    owner,
                    auto_delete,
                } => {
                    let attr = Attr {
                        value: value.clone(),
                        owner: owner.clone(),
                        auto_delete: *auto_delete,
                        revision: e.seq,
                        changed_at: e.at,
                    };
                    self.attrs.insert(key.clone(), attr);
                }
                Change::AttributeDeleted { key } => {
                    self.attrs.remove(key);
                }
                Change::QueueInit { capacity } => match &mut self.queue {
                    Some((cap, _)) => *cap = *capacity,
                    None => self.queue = Some((*capacity, Vec::new())),
                },
                Change::QueueDropped => self.queue = None,
                Change::QueueSet {
                    key,
                    value,
                    owner,
                    transient,
                } => {
                    if let Some((_, elems)) = &mut self.queue {
                        let new = (key.clone(), value.clone(), owner.clone(), *transient);
                        match elems.iter_mut().find(|x| x.0 == *key) {
                            Some(x) => *x = new,
                            None => elems.push(new),
                        }
                    }
                }
                Change::QueueRemoved { key } => {
                    if let Some((_, elems)) = &mut self.queue {
                        elems.retain(|x| x.0 != *key);
                    }
                }
                Change::CounterChanged { key, value } => {
                    self.counters.insert(key.clone(), *value);
                }
                Change::CounterDeleted { key } => {
                    self.counters.remove(key);
                }
                Change::LockSet { name, ttl_ms } => {
                    let lock = Lock {
                        ttl_ms: *ttl_ms,
                        holder: None,
                        token: 0,
                    };
                    self.locks.insert(name.clone(), lock);
                }
                Change::LockRemoved { name } => {
                    self.locks.remove(name);
                }
                Change::LockAcquired {
                    name,
                    holder,
                    token,
                } => {
                    if let Some(l) = self.locks.get_mut(name) {
                        l.holder = Some(holder.clone());
                        l.token = *token;
                    }
                }
                Change::LockReleased { name, .. } | Change::LockExpired { name, .. } => {
                    if let Some(l) = self.locks.get_mut(name) {
                        l.holder = None;
                    }
                }
                Change::RoomCreated { .. }
                | Change::MemberJoined { .. }
                | Change::MemberExited { .. }
                | Change::RoleSet { .. } => {}
            }
        }
        true
    }
}

/// What a follower did, over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowStats {
    /// Reconnections that caught up from the history.
    pub caught_up: u64,
    /// Reconnections (or gaps) that needed a full read.
    pub full_reads: u64,
    /// Comparisons of a caught-up mirror with the engine.
    pub checks: u64,
}

/// A client following one room.
#[derive(Debug)]
pub struct Follower {
    room: Str,
    /// The room as the client holds it; `None` before its first read or
    /// after the room is gone.
    mirror: Option<Mirror>,
    /// Whether live events reach it.
    connected: bool,
    /// Whether its mirror is behind (a gap, or time away).
    behind: bool,
}

impl Follower {
    /// A client of `room`, not yet connected.
    #[must_use]
    pub fn new(room: Str) -> Follower {
        Follower {
            room,
            mirror: None,
            connected: false,
            behind: true,
        }
    }

    /// One step: the live events of the step (if connected), then maybe a
    /// drop or a reconnection, then, if caught up, the comparison with the
    /// engine. Panics on a difference.
    pub fn step(
        &mut self,
        r: &mut Rng,
        engine: &Engine,
        events: &[Event],
        stats: &mut FollowStats,
    ) {
        // Compared only when something reached the follower: an event
        // applied, or a catch-up (between those, nothing it holds moved).
        let mut moved = false;
        for e in events.iter().filter(|e| e.room == self.room) {
            let destroyed = e.changes.iter().any(|c| matches!(c, Change::RoomDestroyed));
            if destroyed {
                // Learnt from the room's lifecycle even while away.
                self.mirror = None;
                self.behind = true;
                continue;
            }
            if !self.connected || self.behind {
                continue;
            }
            let applied = self.mirror.as_mut().is_some_and(|m| m.apply(e));
            moved |= applied;
            if !applied {
                self.behind = true;
            }
        }
        if self.connected && r.chance(3) {
            self.connected = false;
            self.behind = true;
        } else if !self.connected && r.chance(10) {
            self.connected = true;
        }
        if self.connected && self.behind {
            self.catch_up(engine, stats);
            moved = true;
        }
        if moved && self.connected && !self.behind {
            let now = engine.room(&self.room).map(|v| Mirror::read(&v));
            let (mine, theirs) = (self.mirror.as_ref(), now.as_ref());
            let (seq, room_seq) = (mine.map(|m| m.seq), theirs.map(|m| m.seq));
            if seq == room_seq {
                assert_eq!(
                    mine, theirs,
                    "follower of {} differs from the engine",
                    self.room
                );
                stats.checks += 1;
            } else {
                // Only a silent change (no event) leaves a follower behind
                // unknowingly; the next event's number tells it.
                assert!(
                    seq < room_seq,
                    "follower of {} ahead of the engine",
                    self.room
                );
            }
        }
    }

    /// Catches up from the history, or reads the full state.
    fn catch_up(&mut self, engine: &Engine, stats: &mut FollowStats) {
        let Some(view) = engine.room(&self.room) else {
            self.mirror = None;
            self.behind = false;
            return;
        };
        if let Some(m) = self.mirror.as_mut() {
            match view.events_since(m.seq) {
                Ok(events) => {
                    let mut whole = true;
                    for e in events {
                        whole &= m.apply(&e);
                    }
                    assert!(whole, "catch-up of {} skipped a number", self.room);
                    assert_eq!(m.seq, view.seq(), "catch-up of {} ended early", self.room);
                    stats.caught_up += 1;
                    self.behind = false;
                    return;
                }
                Err(Rejection::HistoryTruncated { oldest }) => {
                    assert!(oldest > m.seq, "truncated below the number asked");
                }
                Err(other) => panic!("catch-up of {} refused: {other:?}", self.room),
            }
        }
        self.mirror = Some(Mirror::read(&view));
        stats.full_reads += 1;
        self.behind = false;
    }
}
