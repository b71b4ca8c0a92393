//! The replicated state machine: a roomstate [`Engine`] behind openraft's
//! [`RaftStateMachine`], with exactly-once client sessions, log-driven
//! time, a numbered event stream and versioned snapshots.
//!
//! Everything the engine API offers reaches the rest of the crate through
//! the few methods of [`StateMachineStore`], so an engine API change is a
//! small edit here.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use roomstate::{Command, Engine, Event, Millis, Profile, SnapshotError, Str};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::types::{
    ClientCommand, ClientId, CommandResult, EventSpan, GroupId, MoveDone, MoveError, MoveStep,
    NodeId, Refused, Reply, Request, Response, TypeConfig,
};

/// First bytes of a replica snapshot.
pub const REPLICA_SNAPSHOT_MAGIC: [u8; 4] = *b"RSRP";
/// Replica snapshot format written by this build; the only one it reads.
pub const REPLICA_SNAPSHOT_VERSION: u16 = 1;
/// Events a state machine keeps for fan-out unless told otherwise.
pub const DEFAULT_EVENT_CAPACITY: usize = 65_536;
/// The file, inside a snapshot directory, that holds the current snapshot.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";

/// Why snapshot bytes (received, or read from a file) were refused.
/// Nothing was installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicaSnapshotError {
    /// Not a replica snapshot (bad magic).
    NotASnapshot,
    /// A format version this build does not read.
    UnsupportedVersion(u16),
    /// The bytes do not decode, or bytes are left over.
    Malformed,
    /// The engine inside refused to restore.
    Engine(SnapshotError),
    /// The session table is unsorted, repeats a client or holds an empty
    /// or overflowing record.
    Sessions,
    /// The snapshot's log id is not the one its metadata names.
    LogIdMismatch,
    /// Reading or writing the snapshot file failed.
    Io(std::io::ErrorKind),
}

impl std::fmt::Display for ReplicaSnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotASnapshot => f.write_str("not a replica snapshot"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported replica snapshot version {v}"),
            Self::Malformed => f.write_str("malformed replica snapshot"),
            Self::Engine(e) => write!(f, "engine snapshot refused: {e:?}"),
            Self::Sessions => f.write_str("session table unsorted or repeated"),
            Self::LogIdMismatch => f.write_str("snapshot log id differs from its metadata"),
            Self::Io(kind) => write!(f, "snapshot file: {kind}"),
        }
    }
}

impl std::error::Error for ReplicaSnapshotError {}

/// A client's exactly-once record: the replies to the client's commands
/// of the last log entry that applied any, serials `first..first +
/// replies.len()`. A client that batches several commands into one entry
/// gets every one of them back on a retry of that entry; one command per
/// entry keeps one reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    /// Log index of the entry the replies come from.
    entry: u64,
    first: u64,
    replies: Vec<Reply>,
}

impl Session {
    fn last(&self) -> u64 {
        self.first + (self.replies.len() as u64).saturating_sub(1)
    }
}

/// The body of a replica snapshot (after magic and version).
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    last_now: Millis,
    events_total: u64,
    executed: u64,
    /// Sorted by client id, so the bytes do not depend on hash order.
    sessions: Vec<(ClientId, Session)>,
    /// Rooms moving out or moved out, sorted by id.
    moves: Vec<(Str, Outbound)>,
    /// Rooms moved in and not moved out again, sorted.
    moved_in: Vec<Str>,
    engine: Vec<u8>,
}

/// A room moving out of this group, or moved out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Outbound {
    to: GroupId,
    finished: bool,
}

/// A snapshot kept as the current one.
#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The state under the lock.
struct SmState {
    engine: Engine,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    last_now: Millis,
    sessions: HashMap<ClientId, Session>,
    /// Events produced since the cluster's first entry.
    events_total: u64,
    /// Client commands the engine ran (retries answered from the session
    /// table are not counted).
    executed: u64,
    moves: BTreeMap<Str, Outbound>,
    moved_in: BTreeSet<Str>,
    /// The last `event_capacity` events; the first is number
    /// `events_total - events.len()`.
    events: VecDeque<Event>,
    event_capacity: usize,
    scratch: Vec<Event>,
    current: Option<StoredSnapshot>,
    built: u64,
}

struct Shared {
    state: Mutex<SmState>,
    dir: Option<PathBuf>,
    events_tx: watch::Sender<u64>,
}

/// The state machine store: cheap to clone, every clone is the same state
/// machine. Give one clone to `Raft::new` and keep another to read.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

/// Builds snapshots of a [`StateMachineStore`].
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
}

impl SmState {
    fn new(engine: Engine, event_capacity: usize) -> SmState {
        SmState {
            engine,
            last_applied: None,
            membership: StoredMembership::default(),
            last_now: Millis(0),
            sessions: HashMap::new(),
            events_total: 0,
            executed: 0,
            moves: BTreeMap::new(),
            moved_in: BTreeSet::new(),
            events: VecDeque::new(),
            event_capacity,
            scratch: Vec::new(),
            current: None,
            built: 0,
        }
    }

    /// `now`, clamped so time never goes back.
    fn clamp(&mut self, now: Millis) -> Millis {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    /// Moves the engine's new events into the numbered stream.
    fn collect_events(&mut self) {
        self.collect_events_except(None);
    }

    /// Numbers the engine's new events into the stream, leaving out those
    /// of room `except`.
    fn collect_events_except(&mut self, except: Option<&str>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        self.engine.drain_events(&mut scratch);
        for event in scratch.drain(..) {
            if except.is_some_and(|r| *event.room == *r) {
                continue;
            }
            self.events_total += 1;
            if self.event_capacity == 0 {
                continue;
            }
            if self.events.len() == self.event_capacity {
                self.events.pop_front();
            }
            self.events.push_back(event);
        }
        self.scratch = scratch;
    }

    fn apply_command(&mut self, entry: u64, c: ClientCommand) -> CommandResult {
        if let Some(s) = self.sessions.get(&c.client) {
            if c.serial < s.first {
                return Err(Refused::StaleSerial { last: s.last() });
            }
            if c.serial <= s.last() {
                let i = usize::try_from(c.serial - s.first).unwrap_or(usize::MAX);
                return s
                    .replies
                    .get(i)
                    .cloned()
                    .ok_or(Refused::StaleSerial { last: s.last() });
            }
        }
        // After the session check: a command applied before the freeze
        // still gets its reply on a retry.
        if let Some(m) = c.command.room().and_then(|r| self.moves.get(r)) {
            return Err(if m.finished {
                Refused::Moved { to: m.to }
            } else {
                Refused::Frozen
            });
        }
        let now = self.clamp(c.now);
        let start = self.events_total;
        let outcome = self.engine.handle(now, c.command);
        self.executed += 1;
        self.collect_events();
        let reply = Reply {
            outcome,
            events: EventSpan {
                start,
                end: self.events_total,
            },
        };
        match self.sessions.get_mut(&c.client) {
            // The next serial of a client already served by this entry:
            // keep the whole batch's replies.
            Some(s) if s.entry == entry && c.serial == s.last() + 1 => {
                s.replies.push(reply.clone());
            }
            _ => {
                self.sessions.insert(
                    c.client,
                    Session {
                        entry,
                        first: c.serial,
                        replies: vec![reply.clone()],
                    },
                );
            }
        }
        Ok(reply)
    }

    fn apply_request(&mut self, entry: u64, request: Request) -> Response {
        let start = self.events_total;
        let mut results = Vec::new();
        let mut step = None;
        match request {
            Request::Command(c) => results.push(self.apply_command(entry, c)),
            Request::Batch(commands) => {
                results.reserve(commands.len());
                for c in commands {
                    results.push(self.apply_command(entry, c));
                }
            }
            Request::Tick { now } => {
                let now = self.clamp(now);
                // A tick is never rejected; its outcome carries nothing.
                let _ = self.engine.handle(now, Command::Tick);
                self.collect_events();
            }
            Request::Move(m) => step = Some(self.apply_move(m)),
        }
        Response {
            results,
            events: EventSpan {
                start,
                end: self.events_total,
            },
            step,
        }
    }

    fn apply_move(&mut self, step: MoveStep) -> Result<MoveDone, MoveError> {
        match step {
            MoveStep::Freeze { room, to } => match self.moves.get(&room) {
                Some(m) if m.to == to && !m.finished => self
                    .engine
                    .snapshot_room(&room)
                    .map(MoveDone::Frozen)
                    .ok_or(MoveError::NoSuchRoom),
                Some(_) => Err(MoveError::OtherMove),
                None => {
                    let bytes = self
                        .engine
                        .snapshot_room(&room)
                        .ok_or(MoveError::NoSuchRoom)?;
                    self.moved_in.remove(&room);
                    self.moves.insert(
                        room,
                        Outbound {
                            to,
                            finished: false,
                        },
                    );
                    Ok(MoveDone::Frozen(bytes))
                }
            },
            MoveStep::Restore { room, bytes } => {
                if self.moved_in.contains(&room) && self.engine.room(&room).is_some() {
                    return Ok(MoveDone::Restored);
                }
                if self.moves.contains_key(&room) {
                    // The room moved out of here before; it may come back
                    // only as a new room id.
                    return Err(MoveError::OtherMove);
                }
                self.engine.restore_room(&bytes).map_err(MoveError::from)?;
                // Deadlines already past expire at once, with their events.
                self.collect_events();
                self.moved_in.insert(room);
                Ok(MoveDone::Restored)
            }
            MoveStep::Finish { room } => match self.moves.get_mut(&room) {
                Some(m) if m.finished => Ok(MoveDone::Finished),
                Some(m) => {
                    m.finished = true;
                    let now = self.last_now;
                    let destroy = Command::DestroyRoom { room: room.clone() };
                    let _ = self.engine.handle(now, destroy);
                    // The room lives on in the target: its listeners must
                    // not see it destroyed. Expiries due at `now` in other
                    // rooms come out as usual.
                    self.collect_events_except(Some(&room));
                    Ok(MoveDone::Finished)
                }
                None => Err(MoveError::NotFrozen),
            },
            MoveStep::Abort { room } => match self.moves.get(&room) {
                Some(m) if m.finished => Err(MoveError::NotFrozen),
                Some(_) => {
                    self.moves.remove(&room);
                    Ok(MoveDone::Aborted)
                }
                None => Ok(MoveDone::Aborted),
            },
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut sessions: Vec<(ClientId, Session)> =
            self.sessions.iter().map(|(k, v)| (*k, v.clone())).collect();
        sessions.sort_unstable_by_key(|(k, _)| *k);
        let body = SnapshotBody {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            last_now: self.last_now,
            events_total: self.events_total,
            executed: self.executed,
            sessions,
            moves: self.moves.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            moved_in: self.moved_in.iter().cloned().collect(),
            engine: self.engine.snapshot(),
        };
        encode_body(&body)
    }

    /// Replaces the state with a decoded snapshot's. The event buffer
    /// restarts empty at the snapshot's event number.
    fn install(&mut self, body: SnapshotBody) -> Result<(), ReplicaSnapshotError> {
        let engine = Engine::restore(&body.engine).map_err(ReplicaSnapshotError::Engine)?;
        let mut sessions = HashMap::with_capacity(body.sessions.len());
        let mut previous: Option<ClientId> = None;
        for (client, session) in body.sessions {
            if previous.is_some_and(|p| p >= client)
                || session.replies.is_empty()
                || session
                    .first
                    .checked_add(session.replies.len() as u64)
                    .is_none()
            {
                return Err(ReplicaSnapshotError::Sessions);
            }
            previous = Some(client);
            sessions.insert(client, session);
        }
        let moves: BTreeMap<Str, Outbound> = body.moves.into_iter().collect();
        let moved_in: BTreeSet<Str> = body.moved_in.into_iter().collect();
        self.engine = engine;
        self.moves = moves;
        self.moved_in = moved_in;
        self.last_applied = body.last_applied;
        self.membership = body.membership;
        self.last_now = body.last_now;
        self.sessions = sessions;
        self.events_total = body.events_total;
        self.executed = body.executed;
        self.events.clear();
        Ok(())
    }
}

fn encode_body(body: &SnapshotBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.engine.len() + 256);
    out.extend_from_slice(&REPLICA_SNAPSHOT_MAGIC);
    out.extend_from_slice(&REPLICA_SNAPSHOT_VERSION.to_le_bytes());
    // Serializing plain data into a Vec cannot fail; an empty body would
    // be refused on decode.
    if let Ok(bytes) = postcard::to_allocvec(body) {
        out.extend_from_slice(&bytes);
    }
    out
}

fn decode_body(bytes: &[u8]) -> Result<SnapshotBody, ReplicaSnapshotError> {
    let (magic, rest) = bytes
        .split_at_checked(4)
        .ok_or(ReplicaSnapshotError::NotASnapshot)?;
    if magic != REPLICA_SNAPSHOT_MAGIC {
        return Err(ReplicaSnapshotError::NotASnapshot);
    }
    let (version, rest) = rest
        .split_at_checked(2)
        .ok_or(ReplicaSnapshotError::Malformed)?;
    let version = u16::from_le_bytes([
        version.first().copied().unwrap_or(0),
        version.get(1).copied().unwrap_or(0),
    ]);
    if version != REPLICA_SNAPSHOT_VERSION {
        return Err(ReplicaSnapshotError::UnsupportedVersion(version));
    }
    let (body, left) = postcard::take_from_bytes::<SnapshotBody>(rest)
        .map_err(|_| ReplicaSnapshotError::Malformed)?;
    if !left.is_empty() {
        return Err(ReplicaSnapshotError::Malformed);
    }
    Ok(body)
}

fn snapshot_id(last: Option<LogId<NodeId>>, n: u64) -> String {
    match last {
        Some(l) => format!(
            "{}-{}-{}-{n}",
            l.leader_id.term, l.leader_id.node_id, l.index
        ),
        None => format!("none-{n}"),
    }
}

/// Writes `data` to `dir/SNAPSHOT_FILE` atomically: a temporary file,
/// synced, renamed over the old one, and the directory synced.
fn persist(dir: &Path, data: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    // Make the rename itself durable.
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn io_err(e: &std::io::Error) -> ReplicaSnapshotError {
    ReplicaSnapshotError::Io(e.kind())
}

impl StateMachineStore {
    /// A fresh state machine over an empty engine with `profile`, kept in
    /// memory only.
    #[must_use]
    pub fn new(profile: Profile) -> StateMachineStore {
        Self::build(
            SmState::new(Engine::new(profile), DEFAULT_EVENT_CAPACITY),
            None,
        )
    }

    /// A state machine that writes every snapshot it builds or installs to
    /// `dir` (atomically) and, if `dir` holds one already, starts from it:
    /// a restarted node then re-applies only the log after the snapshot.
    /// A snapshot file that does not validate is an error; nothing is
    /// started from it.
    pub fn open(profile: Profile, dir: &Path) -> Result<StateMachineStore, ReplicaSnapshotError> {
        let mut state = SmState::new(Engine::new(profile), DEFAULT_EVENT_CAPACITY);
        let file = dir.join(SNAPSHOT_FILE);
        match fs::read(&file) {
            Ok(data) => {
                let body = decode_body(&data)?;
                let last = body.last_applied;
                let membership = body.membership.clone();
                state.install(body)?;
                state.current = Some(StoredSnapshot {
                    meta: SnapshotMeta {
                        last_log_id: last,
                        last_membership: membership,
                        snapshot_id: snapshot_id(last, 0),
                    },
                    data,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&e)),
        }
        Ok(Self::build(state, Some(dir.to_path_buf())))
    }

    fn build(state: SmState, dir: Option<PathBuf>) -> StateMachineStore {
        let (events_tx, _) = watch::channel(state.events_total);
        StateMachineStore {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                dir,
                events_tx,
            }),
        }
    }

    /// Keep at most `capacity` applied events for fan-out (0: keep none;
    /// the stream is still numbered). Older ones are dropped first.
    pub fn set_event_capacity(&self, capacity: usize) {
        let mut s = self.lock();
        s.event_capacity = capacity;
        while s.events.len() > capacity {
            s.events.pop_front();
        }
    }

    fn lock(&self) -> MutexGuard<'_, SmState> {
        // Nothing in here panics while holding the lock; if something did,
        // the state is still the last fully applied entry's.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The last applied log id.
    #[must_use]
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.lock().last_applied
    }

    /// The latest `now` applied (the replicated clock).
    #[must_use]
    pub fn now(&self) -> Millis {
        self.lock().last_now
    }

    /// When the engine next needs a tick (the leader proposes it).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.lock().engine.poll_timeout()
    }

    /// The engine's snapshot bytes (compare replicas with it).
    #[must_use]
    pub fn engine_snapshot(&self) -> Vec<u8> {
        self.lock().engine.snapshot()
    }

    /// One room's snapshot bytes, `None` if the room does not exist.
    #[must_use]
    pub fn room_snapshot(&self, room: &str) -> Option<Vec<u8>> {
        self.lock().engine.snapshot_room(room)
    }

    /// A room's sequence number (0: no such room).
    #[must_use]
    pub fn room_seq(&self, room: &str) -> u64 {
        self.lock().engine.room(room).map_or(0, |r| r.seq())
    }

    /// Whether `user` is present in `room` (false if no such room).
    #[must_use]
    pub fn is_present(&self, room: &str, user: &str) -> bool {
        self.lock()
            .engine
            .room(room)
            .is_some_and(|r| r.is_present(user))
    }

    /// How many rooms the engine holds.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.lock().engine.room_count()
    }

    /// The client's last applied serial, if it has one.
    #[must_use]
    pub fn last_serial(&self, client: ClientId) -> Option<u64> {
        self.lock().sessions.get(&client).map(Session::last)
    }

    /// How many client commands the engine ran (retries answered from the
    /// exactly-once table are not counted).
    #[must_use]
    pub fn executed(&self) -> u64 {
        self.lock().executed
    }

    /// Number of events produced so far (the next event's number).
    #[must_use]
    pub fn events_total(&self) -> u64 {
        self.lock().events_total
    }

    /// The buffered events numbered `from..`, with their numbers; events
    /// older than the buffer are gone (the first number returned says
    /// where the copy starts).
    #[must_use]
    pub fn events_since(&self, from: u64) -> Vec<(u64, Event)> {
        let s = self.lock();
        let first = s.events_total - s.events.len() as u64;
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        s.events
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, e)| (first + i as u64, e.clone()))
            .collect()
    }

    /// A receiver that sees the event count change after every applied
    /// entry that produced events: a fan-out task waits on it and then
    /// reads [`StateMachineStore::events_since`].
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.events_tx.subscribe()
    }

    /// This state machine's replica snapshot bytes, as a snapshot build
    /// would make them now.
    #[must_use]
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        self.lock().encode()
    }

    /// Replaces the state with `bytes` (replica snapshot bytes), after
    /// validating them; on error nothing changes.
    pub fn install_bytes(&self, bytes: &[u8]) -> Result<(), ReplicaSnapshotError> {
        let body = decode_body(bytes)?;
        self.lock().install(body)
    }

    /// Applies a request outside Raft as if it were the log entry at
    /// `index` (for comparisons in tests and benches: the same code path as
    /// a replicated apply). Does not move the applied log id.
    pub fn apply_direct(&self, index: u64, request: Request) -> Response {
        let response = self.lock().apply_request(index, request);
        self.notify();
        response
    }

    fn notify(&self) {
        let total = self.lock().events_total;
        self.shared.events_tx.send_if_modified(|v| {
            let changed = *v != total;
            *v = total;
            changed
        });
    }

    /// Writes the current snapshot to the directory, if there is one.
    fn persist_current(&self, data: &[u8]) -> std::io::Result<()> {
        match &self.shared.dir {
            Some(dir) => persist(dir, data),
            None => Ok(()),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let store = StateMachineStore {
            shared: self.shared.clone(),
        };
        let stored = {
            let mut s = store.lock();
            s.built += 1;
            let data = s.encode();
            let meta = SnapshotMeta {
                last_log_id: s.last_applied,
                last_membership: s.membership.clone(),
                snapshot_id: snapshot_id(s.last_applied, s.built),
            };
            let stored = StoredSnapshot { meta, data };
            s.current = Some(stored.clone());
            stored
        };
        store
            .persist_current(&stored.data)
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let s = self.lock();
        Ok((s.last_applied, s.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        {
            let mut s = self.lock();
            for entry in entries {
                s.last_applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Normal(request) => s.apply_request(entry.log_id.index, request),
                    EntryPayload::Membership(m) => {
                        s.membership = StoredMembership::new(Some(entry.log_id), m);
                        Response::default()
                    }
                };
                out.push(response);
            }
        }
        self.notify();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let refuse = |e: ReplicaSnapshotError| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::new(&e),
            ))
        };
        let body = decode_body(&data).map_err(refuse)?;
        if body.last_applied != meta.last_log_id {
            return Err(refuse(ReplicaSnapshotError::LogIdMismatch));
        }
        {
            let mut s = self.lock();
            s.install(body).map_err(refuse)?;
            s.current = Some(StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            });
        }
        self.notify();
        self.persist_current(&data).map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)).into()
        })
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let s = self.lock();
        Ok(s.current.as_ref().map(|c| Snapshot {
            meta: c.meta.clone(),
            snapshot: Box::new(Cursor::new(c.data.clone())),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    use roomstate::{Actor, Op, Write};

    use crate::types::MoveStep;

    fn profile() -> Profile {
        let mut p = Profile::tencent();
        p.limits.request_rate = None;
        p
    }

    /// Runs `command` as client 1's next serial, in the log entry `index`.
    fn run(sm: &StateMachineStore, index: u64, command: Command) -> CommandResult {
        let c = ClientCommand {
            client: 1,
            serial: index,
            now: Millis(1_000 + index),
            command,
        };
        let mut r = sm.apply_direct(index, Request::Command(c)).results;
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    fn step(sm: &StateMachineStore, index: u64, step: MoveStep) -> Result<MoveDone, MoveError> {
        sm.apply_direct(index, Request::Move(step))
            .step
            .expect("a move step answers")
    }

    fn create(room: &str) -> Command {
        Command::CreateRoom {
            room: room.into(),
            creator: "host".into(),
        }
    }

    fn set(room: &str, value: &str) -> Command {
        Command::Write(Write::new(room, Actor::Admin).op(Op::set("k", value)))
    }

    fn freeze(room: &str, to: GroupId) -> MoveStep {
        MoveStep::Freeze {
            room: room.into(),
            to,
        }
    }

    #[test]
    fn a_freeze_repeats_to_its_own_target_only_and_never_after_the_finish() {
        let sm = StateMachineStore::new(profile());
        assert!(run(&sm, 1, create("r")).is_ok());
        assert!(run(&sm, 2, set("r", "a")).is_ok());
        let Ok(MoveDone::Frozen(bytes)) = step(&sm, 3, freeze("r", 2)) else {
            panic!("the first freeze takes the room's bytes");
        };
        assert_eq!(sm.room_snapshot("r"), Some(bytes.clone()));
        // A retried freeze (a mover that lost the reply) gets them again.
        assert_eq!(step(&sm, 4, freeze("r", 2)), Ok(MoveDone::Frozen(bytes)));
        assert_eq!(step(&sm, 5, freeze("r", 3)), Err(MoveError::OtherMove));
        assert_eq!(run(&sm, 6, set("r", "b")), Err(Refused::Frozen));
        let finish = || MoveStep::Finish { room: "r".into() };
        assert_eq!(step(&sm, 7, finish()), Ok(MoveDone::Finished));
        assert_eq!(sm.room_count(), 0);
        // Finished: the room is gone from here, and no freeze, to its
        // target or another, starts over.
        assert_eq!(step(&sm, 8, freeze("r", 2)), Err(MoveError::OtherMove));
        assert_eq!(step(&sm, 9, freeze("r", 3)), Err(MoveError::OtherMove));
        // A retried finish answers the same and changes nothing.
        let before = sm.snapshot_bytes();
        assert_eq!(step(&sm, 10, finish()), Ok(MoveDone::Finished));
        assert_eq!(sm.snapshot_bytes(), before);
        assert_eq!(run(&sm, 11, create("r")), Err(Refused::Moved { to: 2 }));
    }

    #[test]
    fn a_finished_move_cannot_be_aborted() {
        let sm = StateMachineStore::new(profile());
        assert!(run(&sm, 1, create("r")).is_ok());
        let abort = || MoveStep::Abort { room: "r".into() };
        // Nothing to abort yet; then a frozen move aborts and the room
        // serves again.
        assert_eq!(step(&sm, 2, abort()), Ok(MoveDone::Aborted));
        assert!(matches!(
            step(&sm, 3, freeze("r", 2)),
            Ok(MoveDone::Frozen(_))
        ));
        assert_eq!(step(&sm, 4, abort()), Ok(MoveDone::Aborted));
        assert!(run(&sm, 5, set("r", "a")).is_ok());
        assert!(matches!(
            step(&sm, 6, freeze("r", 2)),
            Ok(MoveDone::Frozen(_))
        ));
        let finish = MoveStep::Finish { room: "r".into() };
        assert_eq!(step(&sm, 7, finish), Ok(MoveDone::Finished));
        assert_eq!(step(&sm, 8, abort()), Err(MoveError::NotFrozen));
        // Still moved: the room must not be created here again.
        assert_eq!(run(&sm, 9, create("r")), Err(Refused::Moved { to: 2 }));
        assert_eq!(sm.room_count(), 0);
    }

    /// A replica snapshot of an empty state whose session table is
    /// `sessions`, as another build could have written it.
    fn with_sessions(sessions: Vec<(ClientId, Session)>) -> Vec<u8> {
        encode_body(&SnapshotBody {
            last_applied: None,
            membership: StoredMembership::default(),
            last_now: Millis(0),
            events_total: 0,
            executed: 0,
            sessions,
            moves: Vec::new(),
            moved_in: Vec::new(),
            engine: Engine::new(profile()).snapshot(),
        })
    }

    #[test]
    fn a_session_table_out_of_order_repeated_empty_or_overflowing_is_refused() {
        let sm = StateMachineStore::new(profile());
        assert!(run(&sm, 1, create("r")).is_ok());
        let Ok(reply) = run(&sm, 2, set("r", "a")) else {
            panic!("the write applies");
        };
        let before = sm.snapshot_bytes();
        let session = |first: u64, replies: usize| Session {
            entry: 9,
            first,
            replies: vec![reply.clone(); replies],
        };
        let good = with_sessions(vec![(3, session(5, 2)), (4, session(u64::MAX - 1, 1))]);
        let bad = [
            vec![(4, session(5, 1)), (3, session(5, 1))],
            vec![(3, session(5, 1)), (3, session(6, 1))],
            vec![(3, session(5, 0))],
            vec![(3, session(u64::MAX, 1))],
            vec![(3, session(u64::MAX - 1, 2))],
        ];
        for sessions in bad {
            let bytes = with_sessions(sessions);
            assert_eq!(
                sm.install_bytes(&bytes),
                Err(ReplicaSnapshotError::Sessions)
            );
            assert_eq!(sm.snapshot_bytes(), before);
        }
        assert_eq!(sm.install_bytes(&good), Ok(()));
        assert_eq!(sm.last_serial(3), Some(6));
        assert_eq!(sm.last_serial(4), Some(u64::MAX - 1));
        assert_eq!(sm.last_serial(1), None);
        assert_eq!(sm.room_count(), 0);
    }

    fn join(room: &str, user: &str) -> Command {
        Command::Join {
            room: room.into(),
            user: user.into(),
        }
    }

    #[test]
    fn the_event_stream_keeps_the_newest_events_numbered_from_the_first() {
        let sm = StateMachineStore::new(profile());
        let mut seen = sm.subscribe();
        assert!(run(&sm, 1, create("r")).is_ok());
        assert!(seen.has_changed().unwrap_or(false));
        seen.mark_unchanged();
        let Ok(reply) = run(&sm, 2, set("r", "a")) else {
            panic!("the write applies");
        };
        let total = sm.events_total();
        assert!(total >= 2, "a create and a write make events");
        assert_eq!(reply.events.end, total);
        assert_eq!(reply.events.len(), 1);
        assert!(seen.has_changed().unwrap_or(false));
        seen.mark_unchanged();
        // A refused command makes no event, and wakes no one.
        assert!(run(&sm, 3, join("nowhere", "u")).is_ok_and(|r| r.outcome.is_err()));
        assert_eq!(sm.events_total(), total);
        assert!(!seen.has_changed().unwrap_or(true));

        let numbers = |from| -> Vec<u64> { sm.events_since(from).iter().map(|e| e.0).collect() };
        assert_eq!(numbers(0), (0..total).collect::<Vec<_>>());
        assert_eq!(numbers(total - 1), vec![total - 1]);
        assert_eq!(numbers(total), Vec::<u64>::new());
        let last = sm.events_since(total - 1);
        assert_eq!(last.first().map(|e| e.1.room.as_str()), Some("r"));

        // Shrunk to 2, the two newest stay, under their numbers; the older
        // are gone, and a caller asking for them learns where the copy starts.
        sm.set_event_capacity(2);
        assert_eq!(numbers(0), vec![total - 2, total - 1]);
        for i in 0..3 {
            assert!(run(&sm, 4 + i, set("r", &format!("v{i}"))).is_ok());
        }
        assert_eq!(sm.events_total(), total + 3);
        assert_eq!(numbers(0), vec![total + 1, total + 2]);
        assert_eq!(numbers(total + 2), vec![total + 2]);
        // Capacity 0: nothing kept, and the stream still numbered.
        sm.set_event_capacity(0);
        assert_eq!(numbers(0), Vec::<u64>::new());
        assert!(run(&sm, 7, set("r", "z")).is_ok());
        assert_eq!(sm.events_total(), total + 4);
        assert_eq!(numbers(0), Vec::<u64>::new());
    }

    #[test]
    fn the_read_side_reports_what_was_applied() {
        let sm = StateMachineStore::new(profile());
        assert_eq!(
            (sm.room_seq("r"), sm.executed(), sm.now()),
            (0, 0, Millis(0))
        );
        assert!(run(&sm, 1, create("r")).is_ok());
        assert!(run(&sm, 2, join("r", "guest")).is_ok());
        assert!(run(&sm, 3, set("r", "a")).is_ok());
        assert_eq!(sm.room_count(), 1);
        assert_eq!(sm.executed(), 3);
        assert_eq!(sm.now(), Millis(1_003));
        assert_eq!(sm.last_serial(1), Some(3));
        assert!(sm.room_seq("r") >= 3);
        assert!(sm.is_present("r", "guest"));
        assert!(!sm.is_present("r", "stranger"));
        assert!(!sm.is_present("other", "guest"));
        assert_eq!(sm.poll_timeout(), None);
        // A guest who drops gets the profile's grace period: the engine
        // then wants a tick, and a tick at that time ends the presence.
        let drop = Command::Disconnect {
            room: "r".into(),
            user: "guest".into(),
        };
        assert!(run(&sm, 4, drop).is_ok());
        let Some(due) = sm.poll_timeout() else {
            panic!("a grace period asks for a tick");
        };
        assert!(due > Millis(1_004));
        let _ = sm.apply_direct(5, Request::Tick { now: due });
        assert_eq!(sm.now(), due);
        assert!(!sm.is_present("r", "guest"));
        // A retry is answered from the table, not run again.
        let _ = sm.apply_direct(
            6,
            Request::Command(ClientCommand {
                client: 1,
                serial: 3,
                now: due,
                command: set("r", "again"),
            }),
        );
        assert_eq!(sm.executed(), 4);
        // Time stamped earlier than the clock does not move it back.
        let _ = sm.apply_direct(7, Request::Tick { now: Millis(5) });
        assert_eq!(sm.now(), due);
    }

    #[test]
    fn a_snapshot_round_trips_with_many_clients_and_clears_the_event_buffer() {
        let sm = StateMachineStore::new(profile());
        assert!(run(&sm, 1, create("r")).is_ok());
        // Twenty clients: their order in the hash table is not their
        // order in the snapshot, which must be sorted to install.
        for client in 2..22 {
            let c = ClientCommand {
                client,
                serial: 1,
                now: Millis(2_000),
                command: set("r", "x"),
            };
            let _ = sm.apply_direct(client, Request::Command(c));
        }
        let bytes = sm.snapshot_bytes();
        let copy = StateMachineStore::new(profile());
        assert!(run(&copy, 1, create("elsewhere")).is_ok());
        assert!(!copy.events_since(0).is_empty());
        assert_eq!(copy.install_bytes(&bytes), Ok(()));
        assert_eq!(copy.snapshot_bytes(), bytes);
        assert_eq!(copy.engine_snapshot(), sm.engine_snapshot());
        assert_eq!(copy.events_total(), sm.events_total());
        assert_eq!(copy.events_since(0), Vec::new());
        assert_eq!(copy.last_serial(21), Some(1));
        assert_eq!(copy.executed(), sm.executed());
        assert_eq!(copy.now(), Millis(2_000));
    }

    #[test]
    fn snapshot_ids_name_the_log_id_and_the_build() {
        assert_eq!(snapshot_id(None, 3), "none-3");
        let log = LogId::new(openraft::CommittedLeaderId::new(2, 7), 9);
        assert_eq!(snapshot_id(Some(log), 4), "2-7-9-4");
    }

    #[tokio::test]
    async fn each_build_gets_its_own_id_and_becomes_the_current_snapshot() {
        let mut sm = StateMachineStore::new(profile());
        assert!(run(&sm, 1, create("r")).is_ok());
        let mut builder = sm.get_snapshot_builder().await;
        let first = builder.build_snapshot().await.map(|s| s.meta);
        let second = builder.build_snapshot().await.map(|s| s.meta);
        assert_eq!(first.map(|m| m.snapshot_id).ok().as_deref(), Some("none-1"));
        let second = second.ok();
        assert_eq!(
            second.as_ref().map(|m| m.snapshot_id.as_str()),
            Some("none-2")
        );
        let current = sm.get_current_snapshot().await.ok().flatten();
        assert_eq!(current.map(|c| c.meta), second);
    }

    #[test]
    fn a_snapshot_file_that_cannot_be_read_stops_the_open() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join(SNAPSHOT_FILE)).expect("a directory in its place");
        let opened = StateMachineStore::open(profile(), dir.path()).map(|_| ());
        assert!(
            matches!(opened, Err(ReplicaSnapshotError::Io(k)) if k != std::io::ErrorKind::NotFound),
            "{opened:?}"
        );
        // No file at all: a fresh start.
        let empty = tempfile::tempdir().expect("a temporary directory");
        let fresh = StateMachineStore::open(profile(), empty.path()).map(|s| s.room_count());
        assert_eq!(fresh, Ok(0));
    }

    #[test]
    fn each_snapshot_error_says_what_it_is() {
        let words = [
            (ReplicaSnapshotError::NotASnapshot, "not a replica snapshot"),
            (
                ReplicaSnapshotError::UnsupportedVersion(7),
                "unsupported replica snapshot version 7",
            ),
            (
                ReplicaSnapshotError::Malformed,
                "malformed replica snapshot",
            ),
            (
                ReplicaSnapshotError::Engine(SnapshotError::TrailingBytes),
                "engine snapshot refused: TrailingBytes",
            ),
            (
                ReplicaSnapshotError::Sessions,
                "session table unsorted or repeated",
            ),
            (
                ReplicaSnapshotError::LogIdMismatch,
                "snapshot log id differs from its metadata",
            ),
            (
                ReplicaSnapshotError::Io(std::io::ErrorKind::NotFound),
                "snapshot file: entity not found",
            ),
        ];
        for (error, text) in words {
            assert_eq!(error.to_string(), text);
        }
    }
}
