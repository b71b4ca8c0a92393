//! A cluster in one process for tests and benches: `nodes` nodes, each
//! running one `Raft` per group over an in-memory log and a
//! [`StateMachineStore`], all joined by one fault-injecting [`Router`].
//!
//! The node side stamps `now` on every proposal with its own clock (the
//! leader's clock goes into the log), and runs a tick task that proposes a
//! [`Request::Tick`] when it is leader and the engine's `poll_timeout` has
//! come; followers never act on their clocks. The client side
//! ([`Client`]) numbers its commands, follows `ForwardToLeader`, and
//! retries a write whose outcome it does not know with the same serial, so
//! the state machine applies it once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Entry, EntryPayload, ServerState, SnapshotPolicy};
use roomstate::{Command, Millis, Profile, ReadReport, Rejection, Success};

use crate::mem_log::MemLogStore;
use crate::router::{GroupId, Router};
use crate::shard::group_of;
use crate::state_machine::StateMachineStore;
use crate::types::{
    ClientCommand, ClientId, CommandResult, MoveDone, MoveError, MoveStep, NodeId, Raft, Refused,
    Reply, Request, Response,
};

/// The replicated clock starts here (far from zero, like the simulator's).
pub const CLOCK_START_MS: u64 = 1_000_000;
/// How often a leader's tick task looks at the engine's `poll_timeout`
/// at most (it sleeps until the deadline when that is sooner).
pub const TICK_POLL: Duration = Duration::from_millis(20);

/// How a test cluster is built.
#[derive(Clone)]
pub struct ClusterConfig {
    /// Node ids `1..=nodes`.
    pub nodes: u64,
    /// Raft groups (shards); every node hosts every group.
    pub groups: u32,
    /// The engine profile of every group.
    pub profile: Profile,
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Election timeout range, ms.
    pub election_ms: (u64, u64),
    /// When openraft builds snapshots (and then purges the log).
    pub snapshot_policy: SnapshotPolicy,
    /// Log entries kept after a snapshot.
    pub keep_after_snapshot: u64,
    /// Seed of the router's random drops.
    pub seed: u64,
    /// Events each state machine keeps for fan-out.
    pub event_capacity: usize,
    /// Whether leaders run the tick task.
    pub ticks: bool,
}

impl ClusterConfig {
    /// `nodes` nodes, `groups` groups, short timeouts for tests, no
    /// automatic snapshots.
    #[must_use]
    pub fn new(nodes: u64, groups: u32, profile: Profile) -> ClusterConfig {
        ClusterConfig {
            nodes,
            groups,
            profile,
            heartbeat_ms: 50,
            election_ms: (300, 600),
            snapshot_policy: SnapshotPolicy::Never,
            keep_after_snapshot: 0,
            seed: 1,
            event_capacity: 1 << 20,
            ticks: true,
        }
    }

    fn raft_config(&self) -> Result<openraft::Config, ClusterError> {
        openraft::Config {
            cluster_name: "roomstate".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_ms.0,
            election_timeout_max: self.election_ms.1,
            snapshot_policy: self.snapshot_policy.clone(),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|_| ClusterError::Config)
    }
}

/// Why a cluster operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterError {
    /// The openraft configuration does not validate.
    Config,
    /// Openraft refused to start or initialize a node.
    Start,
    /// No such `(group, node)`, or it is down.
    NoSuchNode,
    /// Waited too long (for a leader, or for entries to apply).
    Timeout,
}

/// Why one proposal to one node failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProposeError {
    /// The node is not the leader; it names the leader if it knows one.
    ForwardToLeader(Option<NodeId>),
    /// The node is down (killed, or never started).
    NodeDown,
    /// The node's Raft stopped or failed while the write was pending: the
    /// outcome is unknown.
    Unknown,
}

/// Client id the room mover uses (move steps are idempotent and do not
/// go through the session table).
pub const MOVER_CLIENT: ClientId = u64::MAX;

/// Why a room move failed. The room is served where it was, unless the
/// error says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MoveFailed {
    /// A group refused a step.
    Refused(MoveError),
    /// A step got no answer in time. The room may be frozen in the source:
    /// run the move again (every step is idempotent) or abort it.
    Client(ClientError),
}

/// Why a client gave up on a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// No attempt got an answer before the client's deadline. The command
    /// may or may not have been applied.
    Timeout {
        /// Attempts made.
        attempts: u32,
    },
    /// The state machine answered with fewer results than commands (a
    /// bug; never seen).
    MissingResult,
    /// A read was rejected by the engine.
    Rejected(Rejection),
}

struct Member {
    sm: StateMachineStore,
    log: MemLogStore,
    raft: Option<Raft>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

struct Inner {
    cfg: ClusterConfig,
    raft_config: Arc<openraft::Config>,
    router: Router,
    members: Mutex<BTreeMap<(GroupId, NodeId), Member>>,
    base: Instant,
    skew: Mutex<HashMap<NodeId, i64>>,
    /// Rooms moved away from their hashed group.
    directory: Mutex<HashMap<String, GroupId>>,
}

/// The cluster handle. Cheap to clone; clones are the same cluster.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn node_now(&self, node: NodeId) -> Millis {
        let elapsed = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        let skew = lock(&self.skew).get(&node).copied().unwrap_or(0);
        Millis(
            CLOCK_START_MS
                .saturating_add(elapsed)
                .saturating_add_signed(skew),
        )
    }
}

/// Stamps every command of `request` (or the tick) with `now`.
fn stamp(request: &mut Request, now: Millis) {
    match request {
        Request::Command(c) => c.now = now,
        Request::Batch(cs) => cs.iter_mut().for_each(|c| c.now = now),
        Request::Tick { now: t } => *t = now,
        Request::Move(_) => {}
    }
}

impl Cluster {
    /// Starts every `(group, node)` and initializes each group with all
    /// nodes as voters (group `g` from node `1 + g % nodes`, to spread the
    /// first leaders).
    pub async fn start(cfg: ClusterConfig) -> Result<Cluster, ClusterError> {
        let raft_config = Arc::new(cfg.raft_config()?);
        let cluster = Cluster {
            inner: Arc::new(Inner {
                router: Router::new(cfg.seed),
                raft_config,
                members: Mutex::new(BTreeMap::new()),
                base: Instant::now(),
                skew: Mutex::new(HashMap::new()),
                directory: Mutex::new(HashMap::new()),
                cfg,
            }),
        };
        let (nodes, groups) = (cluster.inner.cfg.nodes, cluster.inner.cfg.groups);
        for group in 0..groups {
            for node in 1..=nodes {
                cluster.add_node(group, node).await?;
            }
        }
        let voters: BTreeMap<NodeId, BasicNode> =
            (1..=nodes).map(|n| (n, BasicNode::default())).collect();
        for group in 0..groups {
            let first = 1 + u64::from(group) % nodes.max(1);
            let raft = cluster.raft(group, first).ok_or(ClusterError::NoSuchNode)?;
            raft.initialize(voters.clone())
                .await
                .map_err(|_| ClusterError::Start)?;
        }
        Ok(cluster)
    }

    /// The cluster's configuration.
    #[must_use]
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.cfg
    }

    /// The network, for fault injection.
    #[must_use]
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// `node`'s clock now.
    #[must_use]
    pub fn node_now(&self, node: NodeId) -> Millis {
        self.inner.node_now(node)
    }

    /// Moves `node`'s clock by `ms` (negative: behind the others).
    pub fn set_clock_skew(&self, node: NodeId, ms: i64) {
        lock(&self.inner.skew).insert(node, ms);
    }

    /// Adds `(group, node)` with empty stores and starts its `Raft`, not
    /// initialized: it waits to be added as a learner.
    pub async fn add_node(&self, group: GroupId, node: NodeId) -> Result<(), ClusterError> {
        let sm = StateMachineStore::new(self.inner.cfg.profile);
        sm.set_event_capacity(self.inner.cfg.event_capacity);
        let log = MemLogStore::new();
        self.start_member(group, node, sm, log).await
    }

    async fn start_member(
        &self,
        group: GroupId,
        node: NodeId,
        sm: StateMachineStore,
        log: MemLogStore,
    ) -> Result<(), ClusterError> {
        let raft = Raft::new(
            node,
            self.inner.raft_config.clone(),
            self.inner.router.network(group, node),
            log.clone(),
            sm.clone(),
        )
        .await
        .map_err(|_| ClusterError::Start)?;
        self.inner.router.register(group, node, raft.clone());
        let ticker = self.inner.cfg.ticks.then(|| {
            tokio::spawn(tick_loop(
                Arc::downgrade(&self.inner),
                node,
                raft.clone(),
                sm.clone(),
            ))
        });
        lock(&self.inner.members).insert(
            (group, node),
            Member {
                sm,
                log,
                raft: Some(raft),
                ticker,
            },
        );
        Ok(())
    }

    /// Stops `(group, node)`'s `Raft` and makes it unreachable; its stores
    /// are kept, as a disk would keep them.
    pub async fn kill_member(&self, group: GroupId, node: NodeId) {
        self.inner.router.unregister(group, node);
        let (raft, ticker) = {
            let mut members = lock(&self.inner.members);
            match members.get_mut(&(group, node)) {
                Some(m) => (m.raft.take(), m.ticker.take()),
                None => (None, None),
            }
        };
        if let Some(t) = ticker {
            t.abort();
        }
        if let Some(raft) = raft {
            // A join error means the core task had already stopped.
            let _ = raft.shutdown().await;
        }
    }

    /// Kills `node` in every group (the machine dies).
    pub async fn kill(&self, node: NodeId) {
        for group in 0..self.inner.cfg.groups {
            self.kill_member(group, node).await;
        }
    }

    /// Starts a killed `(group, node)` again over its kept stores.
    pub async fn restart_member(&self, group: GroupId, node: NodeId) -> Result<(), ClusterError> {
        let (sm, log) = {
            let members = lock(&self.inner.members);
            let m = members
                .get(&(group, node))
                .ok_or(ClusterError::NoSuchNode)?;
            if m.raft.is_some() {
                return Ok(());
            }
            (m.sm.clone(), m.log.clone())
        };
        self.start_member(group, node, sm, log).await
    }

    /// Starts a killed `node` again in every group.
    pub async fn restart(&self, node: NodeId) -> Result<(), ClusterError> {
        for group in 0..self.inner.cfg.groups {
            self.restart_member(group, node).await?;
        }
        Ok(())
    }

    /// Stops every `Raft` (the end of a test).
    pub async fn shutdown(&self) {
        let keys: Vec<(GroupId, NodeId)> = lock(&self.inner.members).keys().copied().collect();
        for (group, node) in keys {
            self.kill_member(group, node).await;
        }
    }

    /// The running `Raft` of `(group, node)`.
    #[must_use]
    pub fn raft(&self, group: GroupId, node: NodeId) -> Option<Raft> {
        lock(&self.inner.members)
            .get(&(group, node))
            .and_then(|m| m.raft.clone())
    }

    /// The state machine of `(group, node)` (kept while it is down).
    #[must_use]
    pub fn state_machine(&self, group: GroupId, node: NodeId) -> Option<StateMachineStore> {
        lock(&self.inner.members)
            .get(&(group, node))
            .map(|m| m.sm.clone())
    }

    /// The log store of `(group, node)`.
    #[must_use]
    pub fn log_store(&self, group: GroupId, node: NodeId) -> Option<MemLogStore> {
        lock(&self.inner.members)
            .get(&(group, node))
            .map(|m| m.log.clone())
    }

    /// The nodes of `group` that are running.
    #[must_use]
    pub fn live_nodes(&self, group: GroupId) -> Vec<NodeId> {
        lock(&self.inner.members)
            .iter()
            .filter(|((g, _), m)| *g == group && m.raft.is_some())
            .map(|((_, n), _)| *n)
            .collect()
    }

    /// The leader of `group` as the running nodes see it: a node in state
    /// `Leader` that a majority of the configured nodes can reach (so an
    /// isolated old leader does not count), the one with the highest term.
    #[must_use]
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        let nodes = self.live_nodes(group);
        let mut best: Option<(u64, NodeId)> = None;
        for n in &nodes {
            let Some(raft) = self.raft(group, *n) else {
                continue;
            };
            let m = raft.metrics().borrow().clone();
            let reach = nodes
                .iter()
                .filter(|o| *o == n || self.inner.router.can_reach(*n, **o))
                .count() as u64;
            if m.state == ServerState::Leader
                && reach * 2 > self.inner.cfg.nodes
                && best.is_none_or(|(t, _)| m.current_term > t)
            {
                best = Some((m.current_term, *n));
            }
        }
        best.map(|(_, n)| n)
    }

    /// Waits up to `timeout` for `group` to have a leader other than
    /// `not`.
    pub async fn wait_leader(
        &self,
        group: GroupId,
        not: Option<NodeId>,
        timeout: Duration,
    ) -> Result<NodeId, ClusterError> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader(group).filter(|l| Some(*l) != not) {
                return Ok(l);
            }
            if Instant::now() >= until {
                return Err(ClusterError::Timeout);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `timeout` until every running node of `group` has
    /// applied everything the leader has applied, and returns that index.
    pub async fn wait_converged(
        &self,
        group: GroupId,
        timeout: Duration,
    ) -> Result<u64, ClusterError> {
        let until = Instant::now() + timeout;
        loop {
            let nodes = self.live_nodes(group);
            let applied: Vec<Option<u64>> = nodes
                .iter()
                .filter_map(|n| self.state_machine(group, *n))
                .map(|sm| sm.last_applied().map(|l| l.index))
                .collect();
            let leader_applied = self
                .leader(group)
                .and_then(|l| self.raft(group, l))
                .and_then(|r| r.metrics().borrow().last_log_index);
            if let (Some(target), Some(first)) = (leader_applied, applied.first()) {
                if applied.iter().all(|a| *a == Some(target)) && *first == Some(target) {
                    return Ok(target);
                }
            }
            if Instant::now() >= until {
                return Err(ClusterError::Timeout);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Proposes `request` on `(group, node)`, stamped with the node's
    /// clock, and waits for it to apply there.
    pub async fn propose(
        &self,
        group: GroupId,
        node: NodeId,
        mut request: Request,
    ) -> Result<Response, ProposeError> {
        let raft = self.raft(group, node).ok_or(ProposeError::NodeDown)?;
        stamp(&mut request, self.inner.node_now(node));
        match raft.client_write(request).await {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::ForwardToLeader(f.leader_id))
            }
            Err(_) => Err(ProposeError::Unknown),
        }
    }

    /// Adds `node` (started with [`Cluster::add_node`]) to `group` as a
    /// learner through the leader, and waits until it has caught up.
    pub async fn add_learner(
        &self,
        group: GroupId,
        node: NodeId,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let leader = self.wait_leader(group, None, timeout).await?;
        let raft = self.raft(group, leader).ok_or(ClusterError::NoSuchNode)?;
        tokio::time::timeout(timeout, raft.add_learner(node, BasicNode::default(), true))
            .await
            .map_err(|_| ClusterError::Timeout)?
            .map_err(|_| ClusterError::Start)?;
        Ok(())
    }

    /// Every `(client, serial) -> reply` pair and tick of the committed
    /// log of `(group, node)`, replayed from scratch on a fresh state
    /// machine: the reference a test compares replicas and acknowledged
    /// replies with. Needs a log that was never purged.
    #[must_use]
    pub fn replay_log(&self, group: GroupId, node: NodeId, upto: u64) -> Option<Replay> {
        let log = self.log_store(group, node)?;
        let sm = StateMachineStore::new(self.inner.cfg.profile);
        sm.set_event_capacity(0);
        let mut replies = HashMap::new();
        let mut first_seen: Vec<(Millis, Command, bool)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut commands_in_log = 0u64;
        for entry in log.entries() {
            if entry.log_id.index > upto {
                break;
            }
            let Entry { log_id, payload } = entry;
            let EntryPayload::Normal(request) = payload else {
                continue;
            };
            let commands: Vec<ClientCommand> = match &request {
                Request::Command(c) => vec![c.clone()],
                Request::Batch(cs) => cs.clone(),
                Request::Tick { now } => {
                    first_seen.push((*now, Command::Tick, true));
                    Vec::new()
                }
                Request::Move(_) => Vec::new(),
            };
            commands_in_log += commands.len() as u64;
            for c in &commands {
                if seen.insert((c.client, c.serial)) {
                    first_seen.push((c.now, c.command.clone(), false));
                }
            }
            let response = sm.apply_direct(log_id.index, request);
            for (c, r) in commands.iter().zip(response.results) {
                if let Ok(reply) = r {
                    replies.entry((c.client, c.serial)).or_insert(reply);
                }
            }
        }
        Some(Replay {
            engine_snapshot: sm.engine_snapshot(),
            replies,
            commands_in_log,
            first_seen,
        })
    }

    /// The group that serves `room`: where it moved to, or where its id
    /// hashes to.
    #[must_use]
    pub fn route(&self, room: &str) -> GroupId {
        lock(&self.inner.directory)
            .get(room)
            .copied()
            .unwrap_or_else(|| group_of(room, self.inner.cfg.groups))
    }

    fn set_route(&self, room: &str, group: GroupId) {
        lock(&self.inner.directory).insert(room.to_owned(), group);
    }

    /// Moves `room` to group `to`: freeze it in its group (its commands
    /// are refused with `Frozen` from then on), restore its snapshot in
    /// `to`, delete it from the source (its commands are refused with
    /// `Moved { to }` from then on), and route it to `to`. If `to` refuses
    /// the snapshot, the move is aborted and the source serves the room
    /// again. See the crate README for why this is safe.
    pub async fn move_room(&self, room: &str, to: GroupId) -> Result<(), MoveFailed> {
        let from = self.route(room);
        if from == to {
            return Ok(());
        }
        let mut mover = self.client(MOVER_CLIENT);
        let freeze = MoveStep::Freeze {
            room: room.into(),
            to,
        };
        let bytes = match mover.step(from, freeze).await? {
            MoveDone::Frozen(bytes) => bytes,
            _ => return Err(MoveFailed::Refused(MoveError::NotFrozen)),
        };
        let restore = MoveStep::Restore {
            room: room.into(),
            bytes,
        };
        if let Err(e) = mover.step(to, restore).await {
            mover
                .step(from, MoveStep::Abort { room: room.into() })
                .await?;
            return Err(e);
        }
        mover
            .step(from, MoveStep::Finish { room: room.into() })
            .await?;
        self.set_route(room, to);
        Ok(())
    }

    /// Starts a cluster and waits up to `timeout` for every group to
    /// elect a leader; returns the leaders by group.
    pub async fn start_elected(
        cfg: ClusterConfig,
        timeout: Duration,
    ) -> Result<(Cluster, Vec<NodeId>), ClusterError> {
        let cluster = Cluster::start(cfg).await?;
        let mut leaders = Vec::new();
        for group in 0..cluster.inner.cfg.groups {
            leaders.push(cluster.wait_leader(group, None, timeout).await?);
        }
        Ok((cluster, leaders))
    }

    /// A client with id `id`.
    #[must_use]
    pub fn client(&self, id: ClientId) -> Client {
        Client {
            cluster: self.clone(),
            id,
            next_serial: 1,
            hint: HashMap::new(),
            attempt_timeout: Duration::from_millis(1500),
            deadline: Duration::from_secs(20),
            attempts: 0,
            frozen: 0,
            rr: id,
        }
    }
}

/// A log replayed from scratch (see [`Cluster::replay_log`]).
pub struct Replay {
    /// The engine snapshot after the replay.
    pub engine_snapshot: Vec<u8>,
    /// The first reply to every `(client, serial)`.
    pub replies: HashMap<(ClientId, u64), Reply>,
    /// Client commands in the log, copies from retries included.
    pub commands_in_log: u64,
    /// Each `(client, serial)`'s first occurrence and every tick, in log
    /// order, as `(now, command, is_tick)`: applying exactly these to a
    /// bare engine must give the replicas' engine.
    pub first_seen: Vec<(Millis, Command, bool)>,
}

/// The leader's tick task: while `node` leads, propose a tick when the
/// engine's `poll_timeout` has come on the node's clock.
async fn tick_loop(inner: Weak<Inner>, node: NodeId, raft: Raft, sm: StateMachineStore) {
    loop {
        let Some(cluster) = inner.upgrade() else {
            return;
        };
        let leading = raft.metrics().borrow().state == ServerState::Leader;
        let mut wait = TICK_POLL;
        if leading {
            if let Some(at) = sm.poll_timeout() {
                let now = cluster.node_now(node);
                if now >= at {
                    let write = raft.client_write(Request::Tick { now });
                    // Not leader any more, or stopped: look again later.
                    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
                    wait = Duration::from_millis(1);
                } else {
                    wait = wait.min(Duration::from_millis(at.0 - now.0));
                }
            }
        }
        drop(cluster);
        tokio::time::sleep(wait).await;
    }
}

/// A client: numbers its commands, finds the leader of a group, retries
/// with the same serial until it gets the outcome or its deadline passes.
pub struct Client {
    cluster: Cluster,
    id: ClientId,
    next_serial: u64,
    hint: HashMap<GroupId, NodeId>,
    /// How long one attempt waits before the client tries again.
    pub attempt_timeout: Duration,
    /// How long a command is retried in all.
    pub deadline: Duration,
    /// Attempts made so far, over all commands (retries included).
    pub attempts: u64,
    /// Answers `Frozen` received (a room of ours was being moved).
    pub frozen: u64,
    rr: u64,
}

impl Client {
    /// The client's id.
    #[must_use]
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The serial the next command will get.
    #[must_use]
    pub fn next_serial(&self) -> u64 {
        self.next_serial
    }

    /// Writes `command` to `group`.
    pub async fn write(&mut self, group: GroupId, command: Command) -> Result<Reply, ClientError> {
        let serial = self.take_serials(1);
        let request = Request::Command(self.command(serial, command));
        let response = self.submit(group, request).await?;
        first_result(response)
    }

    /// Writes a command about `room` to the group that serves it (see
    /// [`Cluster::route`]). While the room is being moved the command is
    /// retried with the same serial; once it has moved, it follows it.
    pub async fn room(&mut self, room: &str, command: Command) -> Result<Reply, ClientError> {
        let serial = self.take_serials(1);
        let request = Request::Command(self.command(serial, command));
        let until = Instant::now() + self.deadline;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let group = self.cluster.route(room);
            let response = self.submit(group, request.clone()).await?;
            match response.results.into_iter().next() {
                Some(Ok(reply)) => return Ok(reply),
                Some(Err(Refused::Moved { to })) => self.cluster.set_route(room, to),
                Some(Err(Refused::Frozen)) => {
                    self.frozen += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Some(Err(_)) | None => return Err(ClientError::MissingResult),
            }
            if Instant::now() >= until {
                return Err(ClientError::Timeout { attempts });
            }
        }
    }

    /// Reads every attribute of `room` through the log (a linearizable
    /// read: it sees every write acknowledged before it was sent).
    pub async fn read(&mut self, room: &str) -> Result<ReadReport, ClientError> {
        let read = Command::Read {
            room: room.into(),
            keys: None,
        };
        match self.room(room, read).await?.outcome {
            Ok(Success::Read(report)) => Ok(report),
            Ok(_) => Err(ClientError::MissingResult),
            Err(rejection) => Err(ClientError::Rejected(rejection)),
        }
    }

    /// Runs one move step in `group` until it answers.
    async fn step(&mut self, group: GroupId, step: MoveStep) -> Result<MoveDone, MoveFailed> {
        let response = self
            .submit(group, Request::Move(step))
            .await
            .map_err(MoveFailed::Client)?;
        match response.step {
            Some(Ok(done)) => Ok(done),
            Some(Err(e)) => Err(MoveFailed::Refused(e)),
            None => Err(MoveFailed::Client(ClientError::MissingResult)),
        }
    }

    /// Writes `commands` to `group` as one log entry (consecutive
    /// serials); a retry of the entry returns every first reply.
    pub async fn write_batch(
        &mut self,
        group: GroupId,
        commands: Vec<Command>,
    ) -> Result<Vec<CommandResult>, ClientError> {
        let n = commands.len();
        let first = self.take_serials(n as u64);
        let batch: Vec<ClientCommand> = commands
            .into_iter()
            .zip(first..)
            .map(|(command, serial)| self.command(serial, command))
            .collect();
        let response = self.submit(group, Request::Batch(batch)).await?;
        if response.results.len() != n {
            return Err(ClientError::MissingResult);
        }
        Ok(response.results)
    }

    /// One attempt at `command` on `node`, no retry (its serial is used
    /// up either way): for tests that need a write to fail.
    pub async fn write_once(
        &mut self,
        group: GroupId,
        node: NodeId,
        command: Command,
    ) -> Result<CommandResult, ProposeError> {
        let serial = self.take_serials(1);
        let request = Request::Command(self.command(serial, command));
        self.attempts += 1;
        let response = self.cluster.propose(group, node, request).await?;
        response
            .results
            .into_iter()
            .next()
            .ok_or(ProposeError::Unknown)
    }

    fn take_serials(&mut self, n: u64) -> u64 {
        let first = self.next_serial;
        self.next_serial += n;
        first
    }

    fn command(&self, serial: u64, command: Command) -> ClientCommand {
        ClientCommand {
            client: self.id,
            serial,
            // The node that proposes it stamps its clock.
            now: Millis(0),
            command,
        }
    }

    async fn submit(&mut self, group: GroupId, request: Request) -> Result<Response, ClientError> {
        let until = Instant::now() + self.deadline;
        let nodes = self.cluster.inner.cfg.nodes.max(1);
        let mut attempts = 0u32;
        loop {
            let target = match self.hint.get(&group) {
                Some(n) => *n,
                None => {
                    self.rr = self.rr.wrapping_add(1);
                    1 + self.rr % nodes
                }
            };
            attempts += 1;
            self.attempts += 1;
            let attempt = self.cluster.propose(group, target, request.clone());
            let redirected = match tokio::time::timeout(self.attempt_timeout, attempt).await {
                Ok(Ok(response)) => {
                    self.hint.insert(group, target);
                    return Ok(response);
                }
                Ok(Err(ProposeError::ForwardToLeader(Some(leader)))) if leader != target => {
                    self.hint.insert(group, leader);
                    true
                }
                // No leader known, node down, outcome unknown, or no
                // answer in time: try another node with the same serial.
                _ => {
                    self.hint.remove(&group);
                    false
                }
            };
            if Instant::now() >= until {
                return Err(ClientError::Timeout { attempts });
            }
            if !redirected {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn first_result(response: Response) -> Result<Reply, ClientError> {
    match response.results.into_iter().next() {
        Some(Ok(reply)) => Ok(reply),
        // A client's own newest serial is never stale; count it missing.
        Some(Err(_)) | None => Err(ClientError::MissingResult),
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Every setting of the test cluster reaches openraft, set to values
    /// other than openraft's defaults (its heartbeat of 50 ms is one), so
    /// that a setting left out shows. The purge batch of one is openraft's
    /// default too: leaving it out would change nothing.
    #[test]
    fn the_raft_config_carries_every_setting() {
        let mut cfg = ClusterConfig::new(3, 1, Profile::tencent());
        cfg.heartbeat_ms = 70;
        cfg.election_ms = (410, 820);
        cfg.snapshot_policy = SnapshotPolicy::LogsSinceLast(12);
        cfg.keep_after_snapshot = 3;
        let raft = cfg.raft_config();
        let got = raft.as_ref().map(|r| {
            (
                r.cluster_name.as_str(),
                r.heartbeat_interval,
                r.election_timeout_min,
                r.election_timeout_max,
                r.snapshot_policy.clone(),
                r.max_in_snapshot_log_to_keep,
                r.purge_batch_size,
            )
        });
        assert_eq!(
            got,
            Ok((
                "roomstate",
                70,
                410,
                820,
                SnapshotPolicy::LogsSinceLast(12),
                3,
                1
            ))
        );
        // A range openraft does not take is refused, not started.
        cfg.election_ms = (820, 410);
        assert_eq!(cfg.raft_config().err(), Some(ClusterError::Config));
    }

    /// Whether `(group, node)`'s Raft says it leads.
    fn leads(cluster: &Cluster, group: GroupId, node: NodeId) -> bool {
        cluster
            .raft(group, node)
            .is_some_and(|r| r.metrics().borrow().state == ServerState::Leader)
    }

    /// `nodes` nodes and `groups` groups, with each group's leader.
    async fn started(nodes: u64, groups: u32) -> (Cluster, Vec<NodeId>) {
        let cfg = ClusterConfig::new(nodes, groups, Profile::tencent());
        let started = Cluster::start_elected(cfg, Duration::from_secs(10)).await;
        let Ok(started) = started else {
            panic!("the cluster elects its leaders");
        };
        started
    }

    fn create(room: &str) -> Command {
        Command::CreateRoom {
            room: room.into(),
            creator: "host".into(),
        }
    }

    /// The leader a test sees is a node that says it leads and that a
    /// majority of the configured nodes reaches. A leader cut off keeps
    /// saying it leads until it hears of a newer term; right after the
    /// cut no election has run yet, so what `leader` answers then comes
    /// from the reach rule alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_leader_is_one_a_majority_of_the_nodes_reaches() {
        // Five nodes, two groups: group 1 starts from node 2.
        let (cluster, leaders) = started(5, 2).await;
        assert_eq!(cluster.live_nodes(1), [1, 2, 3, 4, 5]);
        let l = leaders[1];
        for n in 1..=5 {
            assert_eq!(leads(&cluster, 1, n), n == l, "node {n}");
        }
        let others: Vec<NodeId> = (1..=5).filter(|n| *n != l).collect();
        // With two of the others: three of five is a majority.
        cluster
            .router()
            .partition(&[&[l, others[0], others[1]], &[others[2], others[3]]]);
        assert_eq!(cluster.leader(1), Some(l));
        // With one: two of five is not.
        cluster
            .router()
            .partition(&[&[l, others[0]], &[others[1], others[2], others[3]]]);
        assert!(leads(&cluster, 1, l));
        assert_eq!(cluster.leader(1), None);
        // Cut off alone, it is replaced. Healed, the old leader says it
        // leads until it hears of the new term: of two leaders a majority
        // reaches, the newer term's is the leader.
        cluster.router().isolate(l);
        let next = cluster
            .wait_leader(1, Some(l), Duration::from_secs(10))
            .await;
        let Ok(next) = next else {
            panic!("the majority elects another leader");
        };
        cluster.router().heal();
        let seen = cluster.leader(1);
        let both = leads(&cluster, 1, l) && leads(&cluster, 1, next);
        eprintln!("both still leading after the heal: {both}");
        if both {
            assert_eq!(seen, Some(next));
        }
        // A killed node is not live, in its group only.
        cluster.kill_member(1, others[3]).await;
        let live: Vec<NodeId> = (1..=5).filter(|n| *n != others[3]).collect();
        assert_eq!(cluster.live_nodes(1), live);
        assert_eq!(cluster.live_nodes(0), [1, 2, 3, 4, 5]);
        cluster.shutdown().await;
    }

    /// A client counts its attempts: a write sent once counts one; a
    /// command for a frozen room is retried until the deadline, every
    /// attempt answered `Frozen`, and the timeout says how many it made.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_counts_its_attempts_and_the_frozen_answers() {
        let (cluster, leaders) = started(3, 1).await;
        let l = leaders[0];
        // A new client picks nodes round robin from 1 + (its id + 1) %
        // nodes: client 2 starts at node 1, which leads a new group (it
        // started it), so its first write takes one attempt.
        let mut first = cluster.client(2);
        assert!(first
            .write(0, create("q"))
            .await
            .is_ok_and(|r| r.outcome.is_ok()));
        if l == 1 {
            assert_eq!(first.attempts, 1);
        }
        // Client 3 starts at node 2, a follower: it names the leader (once
        // it has heard from it: wait until every node has applied the
        // write), and the second attempt goes there.
        let converged = cluster.wait_converged(0, Duration::from_secs(5)).await;
        assert!(converged.is_ok());
        let mut third = cluster.client(3);
        assert!(third
            .write(0, create("p"))
            .await
            .is_ok_and(|r| r.outcome.is_ok()));
        if l == 1 {
            assert_eq!(third.attempts, 2);
        }
        let mut client = cluster.client(7);
        let once = client.write_once(0, l, create("r")).await;
        assert!(
            matches!(once, Ok(Ok(ref r)) if r.outcome.is_ok()),
            "{once:?}"
        );
        assert_eq!(client.attempts, 1);
        let freeze = Request::Move(MoveStep::Freeze {
            room: "r".into(),
            to: 1,
        });
        let frozen = cluster.propose(0, l, freeze).await.map(|r| r.step);
        assert!(matches!(frozen, Ok(Some(Ok(MoveDone::Frozen(_))))));
        client.deadline = Duration::from_millis(200);
        let read = client.read("r").await;
        let Err(ClientError::Timeout { attempts }) = read else {
            panic!("a frozen room's command times out: {read:?}");
        };
        assert!(attempts > 1, "{attempts}");
        assert_eq!(client.frozen, u64::from(attempts));
        // Each attempt is one submission or more (a first one sent to a
        // follower is redirected).
        assert!(client.attempts > u64::from(attempts), "{}", client.attempts);
        // Every node down: the timeout counts the submissions made.
        for n in 1..=3 {
            cluster.kill(n).await;
        }
        let mut last = cluster.client(9);
        last.deadline = Duration::from_millis(100);
        let down = last.write(0, Command::Tick).await;
        let Err(ClientError::Timeout { attempts }) = down else {
            panic!("no node answers: {down:?}");
        };
        // Between two failed attempts it waits 20 ms: in 100 ms, at most
        // six attempts.
        assert!(attempts > 1 && attempts <= 6, "{attempts}");
        assert_eq!(last.attempts, u64::from(attempts));
        cluster.shutdown().await;
    }

    /// Half the nodes is not a majority.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_reaching_half_the_nodes_is_not_the_leader() {
        let (cluster, leaders) = started(4, 1).await;
        let l = leaders[0];
        let others: Vec<NodeId> = (1..=4).filter(|n| *n != l).collect();
        cluster
            .router()
            .partition(&[&[l, others[0]], &[others[1], others[2]]]);
        assert!(leads(&cluster, 0, l));
        assert_eq!(cluster.leader(0), None);
        cluster.shutdown().await;
    }
}
