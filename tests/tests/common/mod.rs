//! A small driver shared by the `rules_*` tests: an engine with a profile, a
//! clock the test moves by hand, and helpers that run a command and return
//! its outcome together with the events it produced.
#![allow(dead_code)]

use roomstate::{
    Actor, Attribute, BatchReport, Cause, Change, Command, Delivery, Engine, Event, ExitKind,
    Millis, Notify, OpError, OpFailure, Outcome, Profile, QueueElement, Rejection, Role, Success,
    Write,
};

/// Where every driver's clock starts (well away from zero, so "earlier"
/// times exist).
pub const T0: Millis = Millis(1_000_000);

/// `Actor::User(id)`.
pub fn u(id: &str) -> Actor {
    Actor::user(id)
}

/// An engine plus the `now` the next command is applied at.
pub struct Driver {
    pub engine: Engine,
    pub profile: Profile,
    pub now: Millis,
}

/// What a room looks like from outside: used to prove a rejected command
/// changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snap {
    pub seq: u64,
    pub attributes: Vec<Attribute>,
    pub queue: Vec<QueueElement>,
    pub value_bytes: u64,
    pub counters: Vec<(String, i64)>,
}

impl Driver {
    pub fn new(profile: Profile) -> Driver {
        Driver {
            engine: Engine::new(profile),
            profile,
            now: T0,
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.saturating_add(ms);
    }

    /// Applies `cmd` at the driver's `now`.
    pub fn handle(&mut self, cmd: Command) -> Outcome {
        self.engine.handle(self.now, cmd)
    }

    /// Drains every pending event.
    pub fn events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        self.engine.drain_events(&mut out);
        out
    }

    /// Applies `cmd` and returns its outcome with the events it produced.
    pub fn run(&mut self, cmd: Command) -> (Outcome, Vec<Event>) {
        let out = self.handle(cmd);
        (out, self.events())
    }

    /// Applies `cmd` at an explicit time (which may be earlier than `now`).
    pub fn run_at(&mut self, at: Millis, cmd: Command) -> (Outcome, Vec<Event>) {
        let out = self.engine.handle(at, cmd);
        (out, self.events())
    }

    /// Runs a write.
    pub fn write(&mut self, w: Write) -> (Outcome, Vec<Event>) {
        self.run(Command::Write(w))
    }

    /// Runs a write that must succeed; returns its report and events.
    pub fn write_ok(&mut self, w: Write) -> (BatchReport, Vec<Event>) {
        match self.write(w) {
            (Ok(Success::Written(r)), evs) => (r, evs),
            (other, _) => panic!("expected Ok(Written), got {other:?}"),
        }
    }

    /// Runs a write that must apply every op; returns the event it emitted.
    pub fn write_all(&mut self, w: Write) -> Event {
        let n = w.ops.len();
        let (r, mut evs) = self.write_ok(w);
        assert!(r.failed.is_empty(), "unexpected failures {:?}", r.failed);
        assert_eq!(r.applied as usize, n);
        assert_eq!(evs.len(), 1, "one event per write: {evs:?}");
        evs.remove(0)
    }

    pub fn create(&mut self, room: &str, creator: &str) {
        let (out, evs) = self.run(Command::CreateRoom {
            room: room.into(),
            creator: creator.into(),
        });
        assert_eq!(out, Ok(Success::Done), "create {room}");
        assert_eq!(evs.len(), 1);
    }

    /// Adds one connection of `user`; returns the events (one `MemberJoined`
    /// for a first connection, none otherwise).
    pub fn join(&mut self, room: &str, user: &str) -> Vec<Event> {
        let (out, evs) = self.run(join(room, user));
        assert_eq!(out, Ok(Success::Done), "join {user}");
        evs
    }

    pub fn leave(&mut self, room: &str, user: &str) -> (Outcome, Vec<Event>) {
        self.run(Command::Leave {
            room: room.into(),
            user: user.into(),
        })
    }

    pub fn disconnect(&mut self, room: &str, user: &str) -> (Outcome, Vec<Event>) {
        self.run(Command::Disconnect {
            room: room.into(),
            user: user.into(),
        })
    }

    pub fn kick(&mut self, room: &str, user: &str) -> (Outcome, Vec<Event>) {
        self.run(Command::Exit {
            room: room.into(),
            user: user.into(),
        })
    }

    pub fn set_role(&mut self, room: &str, user: &str, role: Role) -> (Outcome, Vec<Event>) {
        self.run(Command::SetRole {
            room: room.into(),
            user: user.into(),
            role,
        })
    }

    pub fn tick(&mut self) -> (Outcome, Vec<Event>) {
        self.run(Command::Tick)
    }

    pub fn exists(&self, room: &str) -> bool {
        self.engine.room(room).is_some()
    }

    pub fn seq(&self, room: &str) -> u64 {
        self.engine.room(room).expect("room exists").seq()
    }

    pub fn attr(&self, room: &str, key: &str) -> Option<Attribute> {
        self.engine
            .room(room)
            .expect("room exists")
            .attribute(key)
            .map(|a| a.to_attribute())
    }

    pub fn attrs(&self, room: &str) -> Vec<Attribute> {
        self.engine
            .room(room)
            .expect("room exists")
            .attributes()
            .map(|a| a.to_attribute())
            .collect()
    }

    /// Keys in listing order.
    pub fn keys(&self, room: &str) -> Vec<String> {
        self.attrs(room)
            .into_iter()
            .map(|a| a.key.to_string())
            .collect()
    }

    pub fn owner(&self, room: &str, key: &str) -> Actor {
        self.attr(room, key).expect("key exists").owner
    }

    pub fn value(&self, room: &str, key: &str) -> String {
        self.attr(room, key).expect("key exists").value.to_string()
    }

    pub fn queue(&self, room: &str) -> Vec<QueueElement> {
        self.engine
            .room(room)
            .expect("room exists")
            .queue()
            .map(|e| e.to_element())
            .collect()
    }

    /// Queue keys in order.
    pub fn queue_keys(&self, room: &str) -> Vec<String> {
        self.queue(room)
            .into_iter()
            .map(|e| e.key.to_string())
            .collect()
    }

    pub fn value_bytes(&self, room: &str) -> u64 {
        self.engine.room(room).expect("room exists").value_bytes()
    }

    pub fn present(&self, room: &str, user: &str) -> bool {
        self.engine
            .room(room)
            .expect("room exists")
            .is_present(user)
    }

    pub fn connections(&self, room: &str, user: &str) -> u32 {
        self.engine
            .room(room)
            .expect("room exists")
            .connections(user)
    }

    pub fn role(&self, room: &str, user: &str) -> Role {
        self.engine.room(room).expect("room exists").role(user)
    }

    pub fn snap(&self, room: &str) -> Snap {
        let v = self.engine.room(room).expect("room exists");
        Snap {
            seq: v.seq(),
            attributes: v.attributes().map(|a| a.to_attribute()).collect(),
            queue: v.queue().map(|e| e.to_element()).collect(),
            value_bytes: v.value_bytes(),
            counters: v.counters().map(|(k, c)| (k.to_string(), c)).collect(),
        }
    }

    /// Runs `cmd`, asserts it is rejected with `rej`, emitted no event and
    /// left `room` exactly as it was.
    pub fn rejected(&mut self, room: &str, cmd: Command, rej: Rejection) {
        let before = self.snap(room);
        let (out, evs) = self.run(cmd);
        assert_eq!(out, Err(rej));
        assert!(evs.is_empty(), "a rejection emitted events: {evs:?}");
        assert_eq!(self.snap(room), before, "a rejection changed the room");
    }

    /// The end-of-test check every rule test makes.
    pub fn check(&self) {
        self.engine.check_invariants().unwrap();
    }
}

// ---- commands -------------------------------------------------------------

pub fn join(room: &str, user: &str) -> Command {
    Command::Join {
        room: room.into(),
        user: user.into(),
    }
}

pub fn read(room: &str, keys: Option<&[&str]>) -> Command {
    Command::Read {
        room: room.into(),
        keys: keys.map(|ks| ks.iter().map(|k| (*k).into()).collect()),
    }
}

pub fn offer(room: &str, operator: Actor, key: &str, value: &str, transient: bool) -> Command {
    offer_with(room, operator, key, value, transient, Notify::default())
}

pub fn offer_with(
    room: &str,
    operator: Actor,
    key: &str,
    value: &str,
    transient: bool,
    notify: Notify,
) -> Command {
    Command::QueueOffer {
        room: room.into(),
        operator,
        key: key.into(),
        value: value.into(),
        transient,
        notify,
    }
}

pub fn poll(room: &str, operator: Actor, key: Option<&str>) -> Command {
    Command::QueuePoll {
        room: room.into(),
        operator,
        key: key.map(Into::into),
        notify: Notify::default(),
    }
}

pub fn high(policy: roomstate::HighPolicy) -> Notify {
    Notify {
        high: Some(policy),
        ..Notify::default()
    }
}

// ---- expected values --------------------------------------------------------

/// An event with `Normal` delivery and no extension.
pub fn event(
    room: &str,
    seq: u64,
    at: Millis,
    operator: Actor,
    cause: Cause,
    changes: Vec<Change>,
) -> Event {
    Event {
        room: room.into(),
        seq,
        at,
        operator,
        cause,
        delivery: Delivery::Normal,
        ext: None,
        changes,
    }
}

pub fn set_ch(key: &str, value: &str, owner: Actor, auto_delete: bool) -> Change {
    Change::AttributeSet {
        key: key.into(),
        value: value.into(),
        owner,
        auto_delete,
    }
}

pub fn del_ch(key: &str) -> Change {
    Change::AttributeDeleted { key: key.into() }
}

pub fn qset_ch(key: &str, value: &str, owner: Actor, transient: bool) -> Change {
    Change::QueueSet {
        key: key.into(),
        value: value.into(),
        owner,
        transient,
    }
}

pub fn qrm_ch(key: &str) -> Change {
    Change::QueueRemoved { key: key.into() }
}

pub fn joined_ch(user: &str) -> Change {
    Change::MemberJoined { user: user.into() }
}

pub fn exited_ch(user: &str, how: ExitKind) -> Change {
    Change::MemberExited {
        user: user.into(),
        how,
    }
}

pub fn elem(key: &str, value: &str, owner: Actor, transient: bool) -> QueueElement {
    QueueElement {
        key: key.into(),
        value: value.into(),
        owner,
        transient,
    }
}

pub fn report(seq: u64, applied: u32, failed: &[(usize, &str, OpError)]) -> BatchReport {
    BatchReport {
        seq,
        applied,
        failed: failed
            .iter()
            .map(|(index, key, error)| OpFailure {
                index: *index,
                key: (*key).into(),
                error: *error,
            })
            .collect(),
    }
}

/// `Ok(Success::Written(report(..)))`.
pub fn written(seq: u64, applied: u32, failed: &[(usize, &str, OpError)]) -> Outcome {
    Ok(Success::Written(report(seq, applied, failed)))
}

/// `Ok(Success::QueueBatch(report(..)))`.
pub fn queue_batch(seq: u64, applied: u32, failed: &[(usize, &str, OpError)]) -> Outcome {
    Ok(Success::QueueBatch(report(seq, applied, failed)))
}

/// `n` copies of `s`.
pub fn rep(s: &str, n: usize) -> String {
    s.repeat(n)
}
