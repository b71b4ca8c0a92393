//! The baseline: the room-state store a server team would write in an
//! afternoon (issue 5).
//!
//! - attributes: `std::collections::HashMap<String, HashMap<String, (owner,
//!   value)>>` — here the inner map sits in a per-room struct next to the
//!   room's sequence number, members and queue, so one room lookup serves a
//!   whole command (kinder to the baseline than parallel maps keyed by room);
//! - ownership: the owner `String` compared with the operator's;
//! - member exit: a scan of every key of the room for the user's keys;
//! - read-all: every attribute cloned into a `Vec` ([`Naive::read_all`]),
//!   or, on the server's read path, serialized straight from the borrowed
//!   map ([`crate::workload::naive_read_json`]);
//! - queue: a `VecDeque<(key, value)>` searched linearly by key;
//! - members: `HashMap<user, connection count>`;
//! - events: owned `String`s, cloned where the store keeps its own copy.
//!
//! Semantics are the engine's for what the benchmarks exercise, under the
//! benchmark profile ([`crate::workload::bench_profile`]): no limits, writers
//! need not be members, `BestEffort` batches, an overwrite keeps the owner,
//! every attribute is auto-delete (a user's exit removes every key it owns),
//! queue elements are not transient. Listing order is *not* kept (the std
//! `HashMap` has none): keeping it would only make the baseline slower.

use std::collections::{HashMap, VecDeque};

/// One op of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NaiveOp {
    /// Create or overwrite.
    Set {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Delete.
    Delete {
        /// Key.
        key: String,
    },
}

/// A command, owned, as a server would decode it from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NaiveCmd {
    /// Create an empty room.
    CreateRoom {
        /// Room id.
        room: String,
        /// Creator.
        creator: String,
    },
    /// One more connection of `user`.
    Join {
        /// Room id.
        room: String,
        /// User id.
        user: String,
    },
    /// One connection fewer; at zero the user exits.
    Leave {
        /// Room id.
        room: String,
        /// User id.
        user: String,
    },
    /// Every connection of `user` goes at once.
    Exit {
        /// Room id.
        room: String,
        /// User id.
        user: String,
    },
    /// A batch of ops, best effort.
    Write {
        /// Room id.
        room: String,
        /// Operator, owner of new keys.
        operator: String,
        /// Ops in order.
        ops: Vec<NaiveOp>,
    },
    /// Every attribute, cloned.
    ReadAll {
        /// Room id.
        room: String,
    },
    /// Append `key`, or update it in place.
    QueueOffer {
        /// Room id.
        room: String,
        /// Operator.
        operator: String,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Remove the named element, or the head.
    QueuePoll {
        /// Room id.
        room: String,
        /// Operator.
        operator: String,
        /// Key; `None` for the head.
        key: Option<String>,
    },
}

/// Why a command or an op failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NaiveError {
    /// No such room.
    RoomNotFound,
    /// The room exists already.
    RoomExists,
    /// The user has no connection.
    NotInRoom,
    /// The key belongs to another user.
    NotOwner,
    /// No such key or element.
    NotFound,
    /// Poll of the head of an empty queue.
    QueueEmpty,
}

/// What a successful command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NaiveSuccess {
    /// Applied.
    Done,
    /// A write: ops applied and `(index, error)` of the failed ones.
    Written {
        /// Room sequence number after the write.
        seq: u64,
        /// Ops applied.
        applied: usize,
        /// Failed ops.
        failed: Vec<(usize, NaiveError)>,
    },
    /// Attributes as `(key, owner, value)`, in no particular order.
    Read {
        /// Room sequence number.
        seq: u64,
        /// The attributes.
        attributes: Vec<(String, String, String)>,
    },
    /// The polled element.
    Polled(String, String),
}

/// One change of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NaiveChange {
    /// Room created.
    Created,
    /// First connection.
    Joined(String),
    /// Last connection gone.
    Exited(String),
    /// Attribute written: key, value, owner.
    Set(String, String, String),
    /// Attribute deleted.
    Deleted(String),
    /// Queue created.
    QueueInit,
    /// Queue element appended or updated: key, value.
    QueueSet(String, String),
    /// Queue element removed.
    QueueRemoved(String),
}

/// A change announced to a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NaiveEvent {
    /// Room id.
    pub room: String,
    /// Room sequence number after the change.
    pub seq: u64,
    /// Who did it (`"admin"` for kicks).
    pub operator: String,
    /// The changes.
    pub changes: Vec<NaiveChange>,
}

/// One attribute: its owner, value and revision (the room's sequence
/// number of its last change, as the engine's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NaiveAttr {
    /// Owner.
    pub owner: String,
    /// Value.
    pub value: String,
    /// Room sequence number of the last change.
    pub revision: u64,
}

/// One room.
#[derive(Debug, Default)]
pub struct NaiveRoom {
    /// key -> attribute.
    pub attrs: HashMap<String, NaiveAttr>,
    /// Sequence number.
    pub seq: u64,
    /// user -> connection count (present users only).
    pub members: HashMap<String, u32>,
    /// The queue, once offered to.
    pub queue: Option<VecDeque<(String, String)>>,
}

/// The whole store.
#[derive(Debug, Default)]
pub struct Naive {
    /// Rooms by id.
    pub rooms: HashMap<String, NaiveRoom>,
    /// Writers must be present (Easemob's rule, used by the cold regime);
    /// off by default, as in the benchmark profile.
    pub writers_must_be_members: bool,
    events: Vec<NaiveEvent>,
}

/// Result of a command.
pub type NaiveOutcome = Result<NaiveSuccess, NaiveError>;

impl Naive {
    /// An empty store.
    #[must_use]
    pub fn new() -> Naive {
        Naive::default()
    }

    /// Applies a command.
    pub fn handle(&mut self, cmd: NaiveCmd) -> NaiveOutcome {
        match cmd {
            NaiveCmd::CreateRoom { room, creator } => self.create_room(room, creator),
            NaiveCmd::Join { room, user } => self.join(&room, user),
            NaiveCmd::Leave { room, user } => self.leave(&room, &user),
            NaiveCmd::Exit { room, user } => self.exit(&room, &user),
            NaiveCmd::Write {
                room,
                operator,
                ops,
            } => self.write(&room, operator, ops),
            NaiveCmd::ReadAll { room } => self.read_all(&room),
            NaiveCmd::QueueOffer {
                room,
                operator,
                key,
                value,
            } => self.queue_offer(&room, operator, key, value),
            NaiveCmd::QueuePoll {
                room,
                operator,
                key,
            } => self.queue_poll(&room, operator, key.as_deref()),
        }
    }

    /// Appends every pending event to `out`.
    pub fn drain_events(&mut self, out: &mut Vec<NaiveEvent>) {
        out.append(&mut self.events);
    }

    fn emit(&mut self, room: &str, seq: u64, operator: String, changes: Vec<NaiveChange>) {
        self.events.push(NaiveEvent {
            room: room.to_string(),
            seq,
            operator,
            changes,
        });
    }

    fn create_room(&mut self, id: String, _creator: String) -> NaiveOutcome {
        if self.rooms.contains_key(&id) {
            return Err(NaiveError::RoomExists);
        }
        let room = NaiveRoom {
            seq: 1,
            ..NaiveRoom::default()
        };
        self.emit(&id, 1, "admin".to_string(), vec![NaiveChange::Created]);
        self.rooms.insert(id, room);
        Ok(NaiveSuccess::Done)
    }

    fn join(&mut self, id: &str, user: String) -> NaiveOutcome {
        let room = self.rooms.get_mut(id).ok_or(NaiveError::RoomNotFound)?;
        let count = room.members.entry(user.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            room.seq += 1;
            let seq = room.seq;
            self.emit(id, seq, user.clone(), vec![NaiveChange::Joined(user)]);
        }
        Ok(NaiveSuccess::Done)
    }

    fn leave(&mut self, id: &str, user: &str) -> NaiveOutcome {
        let room = self.rooms.get_mut(id).ok_or(NaiveError::RoomNotFound)?;
        let count = room.members.get_mut(user).ok_or(NaiveError::NotInRoom)?;
        *count -= 1;
        if *count == 0 {
            self.user_exited(id, user, user.to_string());
        }
        Ok(NaiveSuccess::Done)
    }

    fn exit(&mut self, id: &str, user: &str) -> NaiveOutcome {
        let room = self.rooms.get(id).ok_or(NaiveError::RoomNotFound)?;
        if !room.members.contains_key(user) {
            return Err(NaiveError::NotInRoom);
        }
        self.user_exited(id, user, "admin".to_string());
        Ok(NaiveSuccess::Done)
    }

    /// The user's last connection went: scan the room for its keys.
    fn user_exited(&mut self, id: &str, user: &str, operator: String) {
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        room.members.remove(user);
        let mut changes = vec![NaiveChange::Exited(user.to_string())];
        room.attrs.retain(|key, attr| {
            if attr.owner == user {
                changes.push(NaiveChange::Deleted(key.clone()));
                false
            } else {
                true
            }
        });
        room.seq += 1;
        let seq = room.seq;
        self.emit(id, seq, operator, changes);
    }

    fn write(&mut self, id: &str, operator: String, ops: Vec<NaiveOp>) -> NaiveOutcome {
        let room = self.rooms.get_mut(id).ok_or(NaiveError::RoomNotFound)?;
        if self.writers_must_be_members && !room.members.contains_key(&operator) {
            return Err(NaiveError::NotInRoom);
        }
        // Every applied op's revision is the number the write will carry.
        let revision = room.seq + 1;
        let mut changes = Vec::new();
        let mut failed = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                NaiveOp::Set { key, value } => match room.attrs.get_mut(&key) {
                    Some(attr) if attr.owner != operator => failed.push((i, NaiveError::NotOwner)),
                    Some(attr) => {
                        changes.push(NaiveChange::Set(key, value.clone(), attr.owner.clone()));
                        attr.value = value;
                        attr.revision = revision;
                    }
                    None => {
                        changes.push(NaiveChange::Set(
                            key.clone(),
                            value.clone(),
                            operator.clone(),
                        ));
                        room.attrs.insert(
                            key,
                            NaiveAttr {
                                owner: operator.clone(),
                                value,
                                revision,
                            },
                        );
                    }
                },
                NaiveOp::Delete { key } => match room.attrs.get(&key) {
                    None => failed.push((i, NaiveError::NotFound)),
                    Some(attr) if attr.owner != operator => failed.push((i, NaiveError::NotOwner)),
                    Some(_) => {
                        room.attrs.remove(&key);
                        changes.push(NaiveChange::Deleted(key));
                    }
                },
            }
        }
        let applied = changes.len();
        if applied > 0 {
            room.seq += 1;
        }
        let seq = room.seq;
        if applied > 0 {
            self.emit(id, seq, operator, changes);
        }
        Ok(NaiveSuccess::Written {
            seq,
            applied,
            failed,
        })
    }

    /// Every attribute, cloned.
    pub fn read_all(&self, id: &str) -> NaiveOutcome {
        let room = self.rooms.get(id).ok_or(NaiveError::RoomNotFound)?;
        let attributes = room
            .attrs
            .iter()
            .map(|(k, a)| (k.clone(), a.owner.clone(), a.value.clone()))
            .collect();
        Ok(NaiveSuccess::Read {
            seq: room.seq,
            attributes,
        })
    }

    fn queue_offer(
        &mut self,
        id: &str,
        operator: String,
        key: String,
        value: String,
    ) -> NaiveOutcome {
        let room = self.rooms.get_mut(id).ok_or(NaiveError::RoomNotFound)?;
        let mut changes = Vec::new();
        if room.queue.is_none() {
            room.queue = Some(VecDeque::new());
            changes.push(NaiveChange::QueueInit);
        }
        let queue = room.queue.get_or_insert_with(VecDeque::new);
        changes.push(NaiveChange::QueueSet(key.clone(), value.clone()));
        match queue.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => queue.push_back((key, value)),
        }
        room.seq += 1;
        let seq = room.seq;
        self.emit(id, seq, operator, changes);
        Ok(NaiveSuccess::Done)
    }

    fn queue_poll(&mut self, id: &str, operator: String, key: Option<&str>) -> NaiveOutcome {
        let room = self.rooms.get_mut(id).ok_or(NaiveError::RoomNotFound)?;
        let (key, value) = match key {
            Some(key) => {
                let queue = room.queue.as_mut().ok_or(NaiveError::NotFound)?;
                let at = queue
                    .iter()
                    .position(|(k, _)| k == key)
                    .ok_or(NaiveError::NotFound)?;
                queue.remove(at).ok_or(NaiveError::NotFound)?
            }
            None => room
                .queue
                .as_mut()
                .and_then(VecDeque::pop_front)
                .ok_or(NaiveError::QueueEmpty)?,
        };
        room.seq += 1;
        let seq = room.seq;
        self.emit(
            id,
            seq,
            operator,
            vec![NaiveChange::QueueRemoved(key.clone())],
        );
        Ok(NaiveSuccess::Polled(key, value))
    }
}
