//! A shard: one task owning one [`Dialect`] (one engine) and its log.
//!
//! Jobs arrive on a bounded channel. The loop takes a batch, answers each
//! job against the dialect, logs the batch's state changes and commits
//! them with one sync, and only then sends the batch's replies and
//! publishes its events to WebSocket subscribers. It never awaits a
//! client: a subscriber's queue is bounded and written with `try_send`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use roomstate::{Millis, Rejection};
use roomstate_dialects::{Control, Dialect, Request, Response, VendorId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::engine_api;
use crate::limits;
use crate::metrics as m;
use crate::store::{spawn_syncer, Durable, Store, StoreError, SyncMsg, Syncer};

/// What a shard is asked to do.
pub enum Job {
    /// A vendor API request.
    Vendor {
        /// The request.
        request: Request,
        /// The vendor's answer.
        reply: oneshot::Sender<Response>,
    },
    /// A management action: `200 {}` or the vendor's error.
    Admin {
        /// What to do.
        action: AdminAction,
        /// The answer.
        reply: oneshot::Sender<Response>,
    },
    /// A WebSocket client joins a room and subscribes to its events.
    Connect {
        /// The subscriber.
        sub: Subscriber,
        /// Resume after this sequence number (sends the state first).
        since: Option<u64>,
        /// `Ok` once joined, or the vendor's error.
        reply: oneshot::Sender<Result<(), Response>>,
    },
    /// A WebSocket client went away.
    Disconnect {
        /// The subscriber's id.
        id: u64,
    },
    /// Flush, snapshot and stop.
    Shutdown {
        /// Answered when done.
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// Management actions.
pub enum AdminAction {
    /// A control line (create, join, leave, exit, set role).
    Control(Control),
    /// Destroy a room.
    Destroy(String),
}

/// Why a subscriber's connection is being closed by the server.
pub type CloseReason = Arc<Mutex<Option<&'static str>>>;

/// One WebSocket connection's end in a shard.
pub struct Subscriber {
    /// Unique per process.
    pub id: u64,
    /// The room (canonical id).
    pub room: String,
    /// The user.
    pub user: String,
    /// The bounded outgoing queue.
    pub tx: mpsc::Sender<Utf8Bytes>,
    /// Set before the queue is dropped to close the connection.
    pub close: CloseReason,
    /// Bytes in the queue: the shard adds, the socket's writer subtracts.
    pub queued_bytes: Arc<AtomicUsize>,
}

struct Live {
    sub: Subscriber,
    /// Events up to this sequence number are already known to the client.
    after_seq: u64,
}

/// The sending end of a shard.
#[derive(Clone)]
pub struct ShardHandle {
    /// The bounded job channel.
    pub tx: mpsc::Sender<Job>,
}

/// A stable hash of a room id to a shard (FNV-1a; the same in every
/// process, so a room's log stays in its shard's directory).
#[must_use]
pub fn shard_of(room: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in room.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    usize::try_from(h % (shards.max(1) as u64)).unwrap_or(0)
}

/// A request id salt unique to this process start and shard (the front
/// dialect that renders transport errors uses `index` 255).
#[must_use]
pub fn request_id_salt(index: usize) -> u64 {
    let boot_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    (boot_ms << 8) | (index as u64 & 0xff)
}

/// Wall-clock milliseconds, never going back (the engine's `now`).
struct Clock {
    last: u64,
}

impl Clock {
    fn now(&mut self) -> Millis {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last = self.last.max(wall);
        Millis(self.last)
    }
}

/// A connect's reply channel and its answer.
type ConnectReply = (oneshot::Sender<Result<(), Response>>, Result<(), Response>);

/// What the loop sends once a batch is durable.
#[derive(Default)]
struct Outbox {
    replies: Vec<(oneshot::Sender<Response>, Response)>,
    connects: Vec<ConnectReply>,
    /// State messages to put first in new subscribers' queues.
    states: Vec<(u64, String)>,
    events: Vec<roomstate::Event>,
}

/// The state of one shard task.
pub struct Shard {
    index: usize,
    vendor: VendorId,
    dialect: Dialect,
    /// The log until `run` hands it to the syncer thread.
    store: Option<Store>,
    /// No log: a batch is released as soon as it is applied.
    memory_only: bool,
    clock: Clock,
    rooms: HashMap<String, Vec<Live>>,
    /// Subscriber id to (room, user), until its disconnect is handled.
    conns: HashMap<u64, (String, String)>,
    /// Members present per room this shard has seen change.
    members: HashMap<String, usize>,
    /// The open connections changed since the ledger was last sent.
    ledger_changed: bool,
}

impl Shard {
    /// Opens shard `index` (recovering its log).
    pub fn open(config: &crate::config::Config, index: usize) -> Result<Shard, StoreError> {
        let (store, mut dialect) = Store::open(config, index)?;
        dialect.enable_journal();
        // Connections a crash left open are dropped ones: their grace runs
        // now, and a client that reconnects in time reclaims its place.
        let left_open = store.read_ledger();
        if !left_open.is_empty() {
            let now = Clock {
                last: engine_api::engine_now(&dialect).0,
            }
            .now();
            for (room, user) in &left_open {
                let _ = dialect.handle(now, engine_api::disconnect(room, user));
            }
            tracing::warn!(
                shard = index,
                connections = left_open.len(),
                "WebSocket connections left open by a crash recorded as dropped"
            );
        }
        dialect.set_admin_identifiers(config.auth.tencent_admin_identifiers.iter().cloned());
        dialect.set_request_id_salt(request_id_salt(index));
        let clock = Clock {
            last: engine_api::engine_now(&dialect).0,
        };
        // The members gauge resumes from the restored rooms.
        let members = engine_api::members_by_room(&dialect);
        m::members_delta(members.values().sum::<usize>() as i64);
        Ok(Shard {
            index,
            vendor: config.vendor,
            dialect,
            memory_only: !store.is_logged(),
            store: Some(store),
            clock,
            rooms: HashMap::new(),
            conns: HashMap::new(),
            members,
            ledger_changed: false,
        })
    }

    /// Runs the shard until shutdown or a fatal store error.
    ///
    /// Batches are applied as they come; a batch's replies and events wait
    /// (in order) until the log thread reports the batch durable, while the
    /// shard goes on applying the next ones. A batch that changed nothing
    /// still waits behind earlier ones, so no reply reveals state that is
    /// not yet on disk.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Job>) -> Result<(), StoreError> {
        m::set_rooms(self.index, engine_api::room_count(&self.dialect));
        let (durable_tx, mut durable) = mpsc::unbounded_channel();
        let store = self
            .store
            .take()
            .ok_or_else(|| StoreError("the shard has run already".into()))?;
        let syncer = spawn_syncer(store, self.index, durable_tx)?;
        let mut pending: VecDeque<(u64, Outbox)> = VecDeque::new();
        let mut next_batch: u64 = 1;
        // Log what opening did (a crash's connections dropped), then list
        // no connection open.
        self.ledger_changed = true;
        self.stage(Outbox::default(), &syncer, &mut pending, &mut next_batch)?;
        let mut batch: Vec<Job> = Vec::with_capacity(limits::SHARD_BATCH);
        loop {
            let wake = self.dialect.poll_timeout().map(|at| {
                let now = self.clock.now();
                Instant::now() + std::time::Duration::from_millis(at.0.saturating_sub(now.0))
            });
            let far = Instant::now() + std::time::Duration::from_secs(3600);
            tokio::select! {
                biased;
                report = durable.recv() => match report {
                    Some(Durable::UpTo(n)) => self.release_upto(&mut pending, n),
                    Some(Durable::Failed(e)) => return Err(StoreError(e)),
                    Some(Durable::Finished) | None => {
                        return Err(StoreError("the log thread stopped".into()))
                    }
                },
                job = rx.recv() => {
                    let Some(first) = job else {
                        // Every sender is gone: the server stopped.
                        return self.shutdown(&syncer, &mut durable, &mut pending).await;
                    };
                    batch.push(first);
                    while batch.len() < limits::SHARD_BATCH {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let mut outbox = Outbox::default();
                    let mut stop = None;
                    for job in batch.drain(..) {
                        match job {
                            Job::Shutdown { reply } => stop = Some(reply),
                            job => self.answer(job, &mut outbox),
                        }
                    }
                    self.stage(outbox, &syncer, &mut pending, &mut next_batch)?;
                    if let Some(reply) = stop {
                        let result = self.shutdown(&syncer, &mut durable, &mut pending).await;
                        let _ = reply.send(result.as_ref().map(|_| ()).map_err(ToString::to_string));
                        return result;
                    }
                },
                () = tokio::time::sleep_until(wake.unwrap_or(far)), if wake.is_some() => {
                    let now = self.clock.now();
                    let _ = self.dialect.handle(now, engine_api::tick());
                    let mut outbox = Outbox::default();
                    outbox.events.extend_from_slice(self.dialect.events());
                    self.stage(outbox, &syncer, &mut pending, &mut next_batch)?;
                },
            }
            if syncer
                .snapshot_due
                .swap(false, std::sync::atomic::Ordering::Relaxed)
                && !syncer.send(SyncMsg::Snapshot(engine_api::shard_snapshot(&self.dialect)))
            {
                return Err(StoreError("the log thread stopped".into()));
            }
        }
    }

    /// Hands a batch's journal to the log and queues its outbox until the
    /// batch is durable (or releases it at once when nothing waits).
    fn stage(
        &mut self,
        outbox: Outbox,
        syncer: &Syncer,
        pending: &mut VecDeque<(u64, Outbox)>,
        next_batch: &mut u64,
    ) -> Result<(), StoreError> {
        let journal = self.dialect.take_journal();
        if self.memory_only || (journal.is_empty() && pending.is_empty() && !self.ledger_changed) {
            self.release(outbox);
            return Ok(());
        }
        let n = *next_batch;
        *next_batch += 1;
        if !syncer.send(SyncMsg::Append { batch: n, journal }) {
            return Err(StoreError("the log thread stopped".into()));
        }
        if self.ledger_changed {
            self.ledger_changed = false;
            let mut list: Vec<(String, String)> = self.conns.values().cloned().collect();
            list.sort_unstable();
            if !syncer.send(SyncMsg::Connections(list)) {
                return Err(StoreError("the log thread stopped".into()));
            }
        }
        pending.push_back((n, outbox));
        Ok(())
    }

    fn release_upto(&mut self, pending: &mut VecDeque<(u64, Outbox)>, n: u64) {
        while pending.front().is_some_and(|(b, _)| *b <= n) {
            if let Some((_, outbox)) = pending.pop_front() {
                self.release(outbox);
            }
        }
    }

    /// Commits what is queued, writes a final snapshot, releases the last
    /// replies and stops.
    async fn shutdown(
        &mut self,
        syncer: &Syncer,
        durable: &mut mpsc::UnboundedReceiver<Durable>,
        pending: &mut VecDeque<(u64, Outbox)>,
    ) -> Result<(), StoreError> {
        // Open WebSocket connections drop with the process: record them as
        // dropped, so their grace periods run after a restart (a client
        // that reconnects in time reclaims its place) instead of leaving
        // users present for ever.
        let now = self.clock.now();
        let mut conns: Vec<(u64, (String, String))> = self.conns.drain().collect();
        conns.sort_unstable_by_key(|(id, _)| *id);
        for (_, (room, user)) in conns {
            let _ = self
                .dialect
                .handle(now, engine_api::disconnect(&room, &user));
        }
        let journal = self.dialect.take_journal();
        if !journal.is_empty()
            && !syncer.send(SyncMsg::Append {
                batch: u64::MAX,
                journal,
            })
        {
            return Err(StoreError("the log thread stopped".into()));
        }
        if !syncer.send(SyncMsg::Connections(Vec::new())) {
            return Err(StoreError("the log thread stopped".into()));
        }
        if !syncer.send(SyncMsg::Finish(engine_api::shard_snapshot(&self.dialect))) {
            return Err(StoreError("the log thread stopped".into()));
        }
        loop {
            match durable.recv().await {
                Some(Durable::UpTo(n)) => self.release_upto(pending, n),
                Some(Durable::Finished) => {
                    self.release_upto(pending, u64::MAX);
                    tracing::info!(shard = self.index, "flushed and snapshotted");
                    return Ok(());
                }
                Some(Durable::Failed(e)) => return Err(StoreError(e)),
                None => return Err(StoreError("the log thread stopped".into())),
            }
        }
    }

    fn answer(&mut self, job: Job, out: &mut Outbox) {
        let now = self.clock.now();
        match job {
            Job::Vendor { request, reply } => {
                let response = self.dialect.request(now, &request);
                self.note_rejection();
                out.events.extend_from_slice(self.dialect.events());
                out.replies.push((reply, response));
            }
            Job::Admin { action, reply } => {
                let response = match action {
                    AdminAction::Control(c) => self.dialect.control(now, &c),
                    AdminAction::Destroy(room) => {
                        match self.dialect.handle(now, engine_api::destroy(&room)) {
                            Ok(_) => Response {
                                status: 200,
                                body: roomstate_dialects::Json::Obj(Vec::new()),
                            },
                            Err(r) => self.dialect.rejection(now, r),
                        }
                    }
                };
                self.note_rejection();
                out.events.extend_from_slice(self.dialect.events());
                out.replies.push((reply, response));
            }
            Job::Connect { sub, since, reply } => {
                let result = self.connect(now, sub, since, out);
                out.connects.push((reply, result));
            }
            Job::Disconnect { id } => {
                self.unsubscribe(id);
                if let Some((room, user)) = self.conns.remove(&id) {
                    self.ledger_changed = true;
                    // A room destroyed meanwhile answers NotInRoom: nothing to do.
                    let _ = self
                        .dialect
                        .handle(now, engine_api::disconnect(&room, &user));
                    out.events.extend_from_slice(self.dialect.events());
                }
            }
            Job::Shutdown { .. } => {}
        }
    }

    fn note_rejection(&self) {
        if let Some(r) = self.dialect.last_rejection() {
            m::rejection(&engine_api::rejection_class(r));
        }
    }

    fn connect(
        &mut self,
        now: Millis,
        sub: Subscriber,
        since: Option<u64>,
        out: &mut Outbox,
    ) -> Result<(), Response> {
        let before = engine_api::room_seq(&self.dialect, &sub.room);
        if let Err(r) = self
            .dialect
            .handle(now, engine_api::join(&sub.room, &sub.user))
        {
            m::rejection(&engine_api::rejection_class(r));
            return Err(self.dialect.rejection(now, r));
        }
        out.events.extend_from_slice(self.dialect.events());
        let catch_up = since
            .filter(|s| *s < before)
            .and_then(|s| engine_api::catch_up_json(&self.dialect, &sub.room, s, before));
        let after_seq = match since {
            // Nothing happened since: the live stream continues the client's.
            Some(s) if s == before => before,
            // The events it missed, from the room's history; the live
            // stream (the join's own event first) continues them.
            Some(_) if catch_up.is_some() => {
                for text in catch_up.into_iter().flatten() {
                    out.states.push((sub.id, text));
                }
                before
            }
            Some(_) => match engine_api::room_state_json(&mut self.dialect, now, &sub.room) {
                Ok(state) => {
                    out.states.push((sub.id, state));
                    engine_api::room_seq(&self.dialect, &sub.room)
                }
                Err(r) => {
                    // Joined but cannot send the state (rate limit): undo.
                    let _ = self
                        .dialect
                        .handle(now, engine_api::disconnect(&sub.room, &sub.user));
                    out.events.extend_from_slice(self.dialect.events());
                    return Err(self.dialect.rejection(now, r));
                }
            },
            None => before,
        };
        self.conns
            .insert(sub.id, (sub.room.clone(), sub.user.clone()));
        self.ledger_changed = true;
        self.rooms
            .entry(sub.room.clone())
            .or_default()
            .push(Live { sub, after_seq });
        m::connections(1);
        Ok(())
    }

    fn unsubscribe(&mut self, id: u64) {
        let Some((room, _)) = self.conns.get(&id) else {
            return;
        };
        if let Some(list) = self.rooms.get_mut(room) {
            let before = list.len();
            list.retain(|l| l.sub.id != id);
            if list.len() < before {
                m::connections(-1);
            }
            if list.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// Lets a durable batch out: replies, state messages, connect
    /// answers, then events.
    fn release(&mut self, out: Outbox) {
        for (reply, response) in out.replies {
            let _ = reply.send(response);
        }
        for (id, state) in out.states {
            self.push_to(id, state);
        }
        for (reply, result) in out.connects {
            let _ = reply.send(result);
        }
        for event in &out.events {
            self.publish(event);
        }
        if !out.events.is_empty() {
            m::set_rooms(self.index, engine_api::room_count(&self.dialect));
        }
    }

    fn push_to(&mut self, id: u64, text: String) {
        let Some((room, _)) = self.conns.get(&id) else {
            return;
        };
        if let Some(live) = self
            .rooms
            .get(room)
            .and_then(|l| l.iter().find(|l| l.sub.id == id))
        {
            // A fresh queue has room for its first message.
            let len = text.len();
            if live.sub.tx.try_send(Utf8Bytes::from(text)).is_ok() {
                live.sub.queued_bytes.fetch_add(len, Ordering::Relaxed);
            }
        }
    }

    fn publish(&mut self, event: &roomstate::Event) {
        let room = engine_api::event_room(event);
        if engine_api::event_changes_members(event) {
            let now = engine_api::member_count(&self.dialect, room);
            let was = self.members.insert(room.to_owned(), now).unwrap_or(0);
            m::members_delta(now as i64 - was as i64);
            if now == 0 {
                self.members.remove(room);
            }
        }
        let Some(list) = self.rooms.get_mut(room) else {
            return;
        };
        let seq = engine_api::event_seq(event);
        let droppable = engine_api::event_droppable(event);
        let destroys = engine_api::event_destroys_room(event);
        let mut text: Option<Utf8Bytes> = None;
        let mut slow: Vec<u64> = Vec::new();
        for live in list.iter_mut() {
            if seq <= live.after_seq {
                continue;
            }
            live.after_seq = seq;
            let used = limits::WS_QUEUE - live.sub.tx.capacity();
            let bytes = live.sub.queued_bytes.load(Ordering::Relaxed);
            if droppable
                && (used >= limits::WS_OVERFLOW_MARK || bytes >= limits::WS_QUEUE_BYTES / 2)
            {
                m::ws_dropped("overflow");
                continue;
            }
            let msg = text
                .get_or_insert_with(|| Utf8Bytes::from(engine_api::event_json(event)))
                .clone();
            let len = msg.len();
            if bytes + len > limits::WS_QUEUE_BYTES || live.sub.tx.try_send(msg).is_err() {
                slow.push(live.sub.id);
                continue;
            }
            live.sub.queued_bytes.fetch_add(len, Ordering::Relaxed);
            m::ws_queue_depth(used + 1);
        }
        for id in slow {
            m::ws_dropped("too_slow");
            self.kick(room.to_owned(), id, "too slow: outgoing queue full");
        }
        if destroys {
            let ids: Vec<u64> = self
                .rooms
                .get(room)
                .map(|l| l.iter().map(|l| l.sub.id).collect())
                .unwrap_or_default();
            for id in ids {
                self.kick(room.to_owned(), id, "room destroyed");
            }
        }
    }

    /// Closes a subscriber's connection with a reason; its socket task
    /// then reports the disconnect.
    fn kick(&mut self, room: String, id: u64, reason: &'static str) {
        if let Some(list) = self.rooms.get_mut(&room) {
            if let Some(pos) = list.iter().position(|l| l.sub.id == id) {
                let live = list.swap_remove(pos);
                if let Ok(mut r) = live.sub.close.lock() {
                    *r = Some(reason);
                }
                m::connections(-1);
                // Dropping the queue's sender ends the socket's writer.
                drop(live);
            }
            if list.is_empty() {
                self.rooms.remove(&room);
            }
        }
    }

    /// The vendor of this shard.
    #[must_use]
    pub fn vendor(&self) -> VendorId {
        self.vendor
    }
}

/// A busy shard's answer, rendered by a dialect that never runs commands.
pub fn busy(front: &Mutex<Dialect>, now: Millis) -> Response {
    match front.lock() {
        Ok(mut d) => d.rejection(now, Rejection::RateLimited),
        Err(_) => Response {
            status: 503,
            body: roomstate_dialects::Json::Obj(Vec::new()),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use roomstate_dialects::Control;

    /// The room-to-shard hash is FNV-1a 64, the same in every process and
    /// build: a room's log lives in its shard's directory, so a change
    /// here would strand every room on restart. Checked against the
    /// published FNV-1a 64 vectors, and for spread.
    #[test]
    fn rooms_go_to_their_shards_by_fnv_1a() {
        for (room, hash) in [
            ("", 0xcbf2_9ce4_8422_2325_u64),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ] {
            for shards in [1_usize, 2, 3, 7, 64, 1_000_003] {
                assert_eq!(
                    shard_of(room, shards) as u64,
                    hash % shards as u64,
                    "{room:?} over {shards}"
                );
            }
        }
        assert_eq!(shard_of("a", 0), 0, "no shards count as one");
        let mut counts = [0usize; 4];
        for i in 0..400 {
            counts[shard_of(&format!("room-{i}"), 4)] += 1;
        }
        assert!(counts.iter().all(|&n| n > 50), "{counts:?}");
    }

    /// A salt holds the process's start in milliseconds and the shard's
    /// index in its low byte, so that no two shards, nor two starts, hand
    /// out the same request ids.
    #[test]
    fn request_id_salts_hold_the_start_and_the_shard() {
        let ms = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let before = ms();
        let salts = [0, 1, 7, 255].map(request_id_salt);
        let after = ms();
        for (salt, index) in salts.iter().zip([0, 1, 7, 255]) {
            assert_eq!(salt & 0xff, index, "{salt:#x}");
            assert!((before..=after).contains(&(salt >> 8)), "{salt:#x}");
        }
    }

    fn shard(vendor: VendorId) -> Shard {
        Shard::open(&crate::config::Config::for_tests(vendor), 0).unwrap()
    }

    /// Each batch that reaches the log gets its own increasing number, and
    /// its replies wait until the log reports that number durable: a
    /// report for an earlier batch lets out that batch's replies, not a
    /// later one's.
    #[test]
    fn a_batch_waits_for_its_own_number_to_be_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config::for_tests(VendorId::Easemob);
        config.data = Some(dir.path().to_path_buf());
        config.fsync = crate::config::Fsync::Never;
        let mut s = Shard::open(&config, 0).unwrap();
        let store = s.store.take().unwrap();
        let (durable_tx, _durable) = mpsc::unbounded_channel();
        let syncer = crate::store::spawn_syncer(store, 0, durable_tx).unwrap();
        let mut pending = VecDeque::new();
        let mut next_batch = 1;
        let mut replies = Vec::new();
        for room in ["a", "b", "c"] {
            let (reply, rx) = oneshot::channel();
            let action = AdminAction::Control(Control::CreateRoom {
                room: room.into(),
                creator: "host".into(),
            });
            let mut out = Outbox::default();
            s.answer(Job::Admin { action, reply }, &mut out);
            s.stage(out, &syncer, &mut pending, &mut next_batch)
                .unwrap();
            replies.push(rx);
        }
        let numbers: Vec<u64> = pending.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 3]);
        s.release_upto(&mut pending, 2);
        assert!(replies[0].try_recv().is_ok());
        assert!(replies[1].try_recv().is_ok());
        assert!(replies[2].try_recv().is_err(), "batch 3 is not durable yet");
        s.release_upto(&mut pending, 3);
        assert!(replies[2].try_recv().is_ok());
        assert!(pending.is_empty());
    }

    /// Without a data directory nothing is logged: a batch's replies go
    /// out as soon as it is applied, and no batch number is taken.
    #[test]
    fn a_memory_only_shard_answers_at_once() {
        let mut s = shard(VendorId::Easemob);
        let store = s.store.take().unwrap();
        let (durable_tx, _durable) = mpsc::unbounded_channel();
        let syncer = crate::store::spawn_syncer(store, 0, durable_tx).unwrap();
        let (mut pending, mut next_batch) = (VecDeque::new(), 1);
        let (reply, mut rx) = oneshot::channel();
        let action = AdminAction::Control(Control::CreateRoom {
            room: "a".into(),
            creator: "host".into(),
        });
        let mut out = Outbox::default();
        s.answer(Job::Admin { action, reply }, &mut out);
        s.stage(out, &syncer, &mut pending, &mut next_batch)
            .unwrap();
        assert_eq!(rx.try_recv().map(|r| r.status), Ok(200));
        assert!(pending.is_empty());
        assert_eq!(next_batch, 1);
    }

    /// Subscribes user `w` to `room`; returns a second sender on the same
    /// queue (to fill it) and the receiving end.
    fn subscribe(
        s: &mut Shard,
        room: &str,
    ) -> (
        mpsc::Sender<Utf8Bytes>,
        mpsc::Receiver<Utf8Bytes>,
        CloseReason,
    ) {
        let (tx, rx) = mpsc::channel(limits::WS_QUEUE);
        let close: CloseReason = Arc::new(Mutex::new(None));
        let sub = Subscriber {
            id: 1,
            room: room.into(),
            user: "w".into(),
            tx: tx.clone(),
            close: Arc::clone(&close),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
        };
        s.conns.insert(1, (room.into(), "w".into()));
        s.rooms
            .entry(room.into())
            .or_default()
            .push(Live { sub, after_seq: 0 });
        (tx, rx, close)
    }

    /// Answers a job and lets its outbox out; the deliveries of its events.
    fn run(s: &mut Shard, job: Job) -> Vec<roomstate::Delivery> {
        let mut out = Outbox::default();
        s.answer(job, &mut out);
        let deliveries = out.events.iter().map(|e| e.delivery).collect();
        s.release(out);
        deliveries
    }

    fn create(s: &mut Shard, room: &str) {
        let (reply, _rx) = oneshot::channel();
        let action = AdminAction::Control(Control::CreateRoom {
            room: room.into(),
            creator: "host".into(),
        });
        run(s, Job::Admin { action, reply });
    }

    /// A NetEase offer of `key` in room 1; the deliveries of its events.
    fn offer(s: &mut Shard, key: &str) -> Vec<roomstate::Delivery> {
        let mut request = Request::new(
            VendorId::NetEase,
            "POST",
            "/nimserver/chatroom/queueOffer.action",
        );
        request.form = vec![
            ("roomid".into(), "1".into()),
            ("key".into(), key.into()),
            ("value".into(), "v".into()),
        ];
        let (reply, _rx) = oneshot::channel();
        run(s, Job::Vendor { request, reply })
    }

    /// 40 NetEase offers in one second: over the flow's 20 normal events a
    /// second, the rest are Overflow.
    fn offers(s: &mut Shard) -> Vec<roomstate::Delivery> {
        (0..40).flat_map(|i| offer(s, &format!("k{i}"))).collect()
    }

    fn drain(rx: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(m.as_str().to_owned());
        }
        out
    }

    #[test]
    fn overflow_events_are_dropped_first_once_a_queue_is_half_full() {
        let mut s = shard(VendorId::NetEase);
        create(&mut s, "1");
        let (filler, mut rx, close) = subscribe(&mut s, "1");
        for _ in 0..limits::WS_OVERFLOW_MARK {
            filler.try_send(Utf8Bytes::from_static("filler")).unwrap();
        }
        let deliveries = offers(&mut s);
        let normal = deliveries
            .iter()
            .filter(|d| **d != roomstate::Delivery::Overflow)
            .count();
        assert!(normal > 0 && normal < deliveries.len(), "{deliveries:?}");
        let got: Vec<String> = drain(&mut rx)
            .into_iter()
            .filter(|m| m != "filler")
            .collect();
        assert_eq!(got.len(), normal);
        assert!(got.iter().all(|m| !m.contains("\"Overflow\"")));
        assert_eq!(*close.lock().unwrap(), None, "not closed: only dropped");
    }

    #[test]
    fn overflow_events_go_out_while_a_queue_has_room() {
        let mut s = shard(VendorId::NetEase);
        create(&mut s, "1");
        let (_filler, mut rx, _close) = subscribe(&mut s, "1");
        let deliveries = offers(&mut s);
        let got = drain(&mut rx);
        assert_eq!(got.len(), deliveries.len());
        assert!(got.iter().any(|m| m.contains("\"Overflow\"")));
    }

    /// The bytes a subscriber's queue holds, as its socket would report
    /// them.
    fn set_queued_bytes(s: &Shard, room: &str, bytes: usize) {
        s.rooms[room][0]
            .sub
            .queued_bytes
            .store(bytes, Ordering::Relaxed);
    }

    /// Half the byte budget queued drops overflow events as half the
    /// message count does, and sends the others.
    #[test]
    fn overflow_events_are_dropped_once_half_the_bytes_are_queued() {
        let mut s = shard(VendorId::NetEase);
        create(&mut s, "1");
        let (_filler, mut rx, close) = subscribe(&mut s, "1");
        let mut classes = Vec::new();
        for i in 0..40 {
            set_queued_bytes(&s, "1", limits::WS_QUEUE_BYTES / 2);
            let delivery = offer(&mut s, &format!("k{i}"));
            let want = usize::from(delivery != [roomstate::Delivery::Overflow]);
            assert_eq!(drain(&mut rx).len(), want, "offer {i}: {delivery:?}");
            classes.extend(delivery);
        }
        assert!(classes.contains(&roomstate::Delivery::Overflow));
        assert!(classes.contains(&roomstate::Delivery::Normal));
        assert_eq!(*close.lock().unwrap(), None);
    }

    /// An event that brings the queue to exactly its byte budget goes out;
    /// one byte more closes the connection.
    #[test]
    fn the_byte_budget_is_the_last_byte_a_queue_takes() {
        let mut s = shard(VendorId::NetEase);
        create(&mut s, "1");
        let (_filler, mut rx, close) = subscribe(&mut s, "1");
        // The first offer also sets the queue up; the next ones' events
        // differ only in digits of equal width.
        offer(&mut s, "k0");
        offer(&mut s, "k1");
        let len = drain(&mut rx)[1].len();
        set_queued_bytes(&s, "1", limits::WS_QUEUE_BYTES - len);
        offer(&mut s, "k2");
        let sent: Vec<usize> = drain(&mut rx).iter().map(String::len).collect();
        assert_eq!(sent, [len]);
        assert_eq!(*close.lock().unwrap(), None);
        set_queued_bytes(&s, "1", limits::WS_QUEUE_BYTES - len + 1);
        offer(&mut s, "k3");
        assert!(drain(&mut rx).is_empty());
        assert_eq!(
            *close.lock().unwrap(),
            Some("too slow: outgoing queue full")
        );
    }

    /// Each event sent records the queue's depth with the event in it.
    #[test]
    fn the_depth_recorded_counts_the_event_just_queued() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let mut s = shard(VendorId::NetEase);
        create(&mut s, "1");
        let (filler, mut rx, _close) = subscribe(&mut s, "1");
        let waiting = 5;
        for _ in 0..waiting {
            filler.try_send(Utf8Bytes::from_static("filler")).unwrap();
        }
        metrics::with_local_recorder(&recorder, || {
            for key in ["k0", "k1", "k2"] {
                offer(&mut s, key);
            }
        });
        let sent = drain(&mut rx).len() - waiting;
        assert!(sent >= 3, "{sent}");
        let sum: usize = (1..=sent).map(|i| waiting + i).sum();
        let text = handle.render();
        assert!(
            text.contains(&format!("roomstate_ws_queue_depth_sum {sum}\n"))
                && text.contains(&format!("roomstate_ws_queue_depth_count {sent}\n")),
            "{text}"
        );
    }

    #[test]
    fn a_full_queue_closes_the_connection_with_a_reason() {
        let mut s = shard(VendorId::NetEase);
        create(&mut s, "1");
        let (filler, _rx, close) = subscribe(&mut s, "1");
        for _ in 0..limits::WS_QUEUE {
            filler.try_send(Utf8Bytes::from_static("filler")).unwrap();
        }
        offers(&mut s);
        assert_eq!(
            *close.lock().unwrap(),
            Some("too slow: outgoing queue full")
        );
        assert!(!s.rooms.contains_key("1"), "unsubscribed");
        // Its disconnect is still owed to the engine (the socket reports it).
        assert!(s.conns.contains_key(&1));
    }
}
