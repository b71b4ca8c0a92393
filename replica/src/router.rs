//! An in-process Raft network with fault injection.
//!
//! Every `Raft` of a test registers with one [`Router`] under its
//! `(group, node)`; RPCs are plain calls on the target's `Raft`. Faults act
//! between *nodes* (every group of a node shares its fate, like machines
//! on a network): isolate a node, split the nodes into sides, drop a share
//! of messages (requests or responses), delay every message. An RPC that
//! cannot get through fails with `Unreachable`, and openraft backs off for
//! [`BACKOFF`] before it retries.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use crate::types::{NodeId, Raft, TypeConfig};

pub use crate::types::GroupId;

/// How long openraft waits before retrying an unreachable node.
pub const BACKOFF: Duration = Duration::from_millis(20);

/// Why a message did not get through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkDown {
    /// No `Raft` is registered there (never started, or killed).
    NoSuchNode,
    /// One end is isolated.
    Isolated,
    /// The ends are on different sides of a partition.
    Partitioned,
    /// The message was dropped at random.
    Dropped,
}

impl std::fmt::Display for LinkDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::NoSuchNode => "no such node",
            Self::Isolated => "node isolated",
            Self::Partitioned => "nodes partitioned",
            Self::Dropped => "message dropped",
        };
        f.write_str(s)
    }
}

impl std::error::Error for LinkDown {}

#[derive(Default)]
struct Faults {
    isolated: BTreeSet<NodeId>,
    /// Sides of a partition: nodes on different sides cannot talk; a node
    /// on no side talks to everyone.
    sides: Vec<BTreeSet<NodeId>>,
    drop_per_million: u32,
    delay: Duration,
    /// xorshift state for drops: seeded, so a run's drops are a function
    /// of its seed and message order.
    rng: u64,
    dropped: u64,
    delivered: u64,
}

impl Faults {
    fn side(&self, node: NodeId) -> Option<usize> {
        self.sides.iter().position(|s| s.contains(&node))
    }

    fn link(&mut self, from: NodeId, to: NodeId) -> Result<(), LinkDown> {
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            return Err(LinkDown::Isolated);
        }
        match (self.side(from), self.side(to)) {
            (Some(a), Some(b)) if a != b => return Err(LinkDown::Partitioned),
            _ => {}
        }
        Ok(())
    }

    fn roll_drop(&mut self) -> bool {
        if self.drop_per_million == 0 {
            return false;
        }
        let mut x = self.rng | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let dropped = (x % 1_000_000) < u64::from(self.drop_per_million);
        if dropped {
            self.dropped += 1;
        }
        dropped
    }
}

#[derive(Default)]
struct Inner {
    targets: Mutex<HashMap<(GroupId, NodeId), Raft>>,
    faults: Mutex<Faults>,
}

/// The in-process network. Cheap to clone; clones are the same network.
#[derive(Clone, Default)]
pub struct Router {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Router {
    /// A network with no nodes and no faults; `seed` drives random drops.
    #[must_use]
    pub fn new(seed: u64) -> Router {
        let router = Router::default();
        lock(&router.inner.faults).rng = seed;
        router
    }

    /// Makes `raft` reachable as `(group, node)`.
    pub fn register(&self, group: GroupId, node: NodeId, raft: Raft) {
        lock(&self.inner.targets).insert((group, node), raft);
    }

    /// Makes `(group, node)` unreachable and returns its `Raft`.
    pub fn unregister(&self, group: GroupId, node: NodeId) -> Option<Raft> {
        lock(&self.inner.targets).remove(&(group, node))
    }

    /// The `Raft` registered as `(group, node)`.
    #[must_use]
    pub fn raft(&self, group: GroupId, node: NodeId) -> Option<Raft> {
        lock(&self.inner.targets).get(&(group, node)).cloned()
    }

    /// Cuts `node` off from every other node (both ways).
    pub fn isolate(&self, node: NodeId) {
        lock(&self.inner.faults).isolated.insert(node);
    }

    /// Undoes [`Router::isolate`] for `node`.
    pub fn reconnect(&self, node: NodeId) {
        lock(&self.inner.faults).isolated.remove(&node);
    }

    /// Splits the nodes into `sides`: nodes on different sides cannot
    /// talk; a node on no side talks to everyone. Replaces any partition.
    pub fn partition(&self, sides: &[&[NodeId]]) {
        lock(&self.inner.faults).sides =
            sides.iter().map(|s| s.iter().copied().collect()).collect();
    }

    /// Drops each message (request or response) with probability
    /// `per_million / 1_000_000`.
    pub fn set_drop_rate(&self, per_million: u32) {
        lock(&self.inner.faults).drop_per_million = per_million.min(1_000_000);
    }

    /// Delays every message by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.inner.faults).delay = delay;
    }

    /// Clears every fault: isolation, partition, drops, delay.
    pub fn heal(&self) {
        let mut f = lock(&self.inner.faults);
        f.isolated.clear();
        f.sides.clear();
        f.drop_per_million = 0;
        f.delay = Duration::ZERO;
    }

    /// Messages dropped at random so far, and messages delivered.
    #[must_use]
    pub fn counters(&self) -> (u64, u64) {
        let f = lock(&self.inner.faults);
        (f.dropped, f.delivered)
    }

    /// Whether `from` can reach `to` now (ignoring random drops).
    #[must_use]
    pub fn can_reach(&self, from: NodeId, to: NodeId) -> bool {
        lock(&self.inner.faults).link(from, to).is_ok()
    }

    /// The network factory for the `Raft` of `(group, from)`.
    #[must_use]
    pub fn network(&self, group: GroupId, from: NodeId) -> RouterNetwork {
        RouterNetwork {
            router: self.clone(),
            group,
            from,
        }
    }

    /// Checks the link and the request's fate; returns the target and the
    /// delay to apply.
    fn send(&self, group: GroupId, from: NodeId, to: NodeId) -> Result<(Raft, Duration), LinkDown> {
        let delay = {
            let mut f = lock(&self.inner.faults);
            f.link(from, to)?;
            if f.roll_drop() {
                return Err(LinkDown::Dropped);
            }
            f.delay
        };
        let raft = self.raft(group, to).ok_or(LinkDown::NoSuchNode)?;
        Ok((raft, delay))
    }

    /// Checks the response's fate (the link may have gone down meanwhile).
    fn reply(&self, from: NodeId, to: NodeId) -> Result<(), LinkDown> {
        let mut f = lock(&self.inner.faults);
        f.link(to, from)?;
        if f.roll_drop() {
            return Err(LinkDown::Dropped);
        }
        f.delivered += 1;
        Ok(())
    }
}

/// The network factory of one `Raft`.
pub struct RouterNetwork {
    router: Router,
    group: GroupId,
    from: NodeId,
}

/// A connection from one `Raft` to one target.
pub struct RouterConnection {
    router: Router,
    group: GroupId,
    from: NodeId,
    to: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for RouterNetwork {
    type Network = RouterConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> RouterConnection {
        RouterConnection {
            router: self.router.clone(),
            group: self.group,
            from: self.from,
            to: target,
        }
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

fn unreachable<E: std::error::Error>(down: LinkDown) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&down))
}

impl RouterConnection {
    async fn target(&self) -> Result<Raft, LinkDown> {
        let (raft, delay) = self.router.send(self.group, self.from, self.to)?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(raft)
    }
}

impl RaftNetwork<TypeConfig> for RouterConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let raft = self.target().await.map_err(unreachable)?;
        let result = raft.append_entries(rpc).await;
        self.router.reply(self.from, self.to).map_err(unreachable)?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let raft = self.target().await.map_err(unreachable)?;
        let result = raft.install_snapshot(rpc).await;
        self.router.reply(self.from, self.to).map_err(unreachable)?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let raft = self.target().await.map_err(unreachable)?;
        let result = raft.vote(rpc).await;
        self.router.reply(self.from, self.to).map_err(unreachable)?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(BACKOFF))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// xorshift64 (13, 7, 17), written out again as the reference the
    /// drops must follow: each roll's value below a million. A message is
    /// dropped when its roll is below the rate, so a seed gives the same
    /// drops in every run.
    fn reference_rolls(seed: u64, rolls: usize) -> Vec<u64> {
        let mut x = seed;
        (0..rolls)
            .map(|_| {
                x |= 1;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 1_000_000
            })
            .collect()
    }

    #[test]
    fn isolation_and_partitions_cut_links_both_ways() {
        let r = Router::new(1);
        assert!(r.can_reach(1, 2) && r.can_reach(2, 1));
        r.isolate(2);
        assert!(!r.can_reach(1, 2) && !r.can_reach(2, 1));
        assert!(r.can_reach(1, 3));
        assert_eq!(r.send(0, 1, 2).err(), Some(LinkDown::Isolated));
        r.reconnect(2);
        assert!(r.can_reach(1, 2));
        // Nodes on different sides cannot talk; a node on no side talks
        // to everyone, and so do nodes on the same side.
        r.partition(&[&[1, 2], &[3]]);
        assert!(r.can_reach(1, 2) && r.can_reach(2, 1));
        assert!(!r.can_reach(1, 3) && !r.can_reach(3, 2));
        assert!(r.can_reach(4, 3) && r.can_reach(1, 4));
        assert_eq!(r.send(0, 3, 1).err(), Some(LinkDown::Partitioned));
        assert_eq!(r.reply(3, 1).err(), Some(LinkDown::Partitioned));
        // A link that is up, to a node never started.
        assert_eq!(r.send(0, 1, 2).err(), Some(LinkDown::NoSuchNode));
        r.isolate(4);
        r.set_delay(Duration::from_millis(5));
        r.set_drop_rate(1);
        {
            let f = lock(&r.inner.faults);
            assert_eq!((f.delay, f.drop_per_million), (Duration::from_millis(5), 1));
        }
        r.heal();
        assert!(r.can_reach(1, 3) && r.can_reach(4, 1));
        let f = lock(&r.inner.faults);
        assert_eq!((f.delay, f.drop_per_million), (Duration::ZERO, 0));
    }

    #[test]
    fn drops_follow_the_seed_and_the_rate() {
        // The last rate is tiny: clamped with max instead of min, it would
        // drop every message.
        for (seed, rate) in [(7, 250_000), (0, 500_000), (0x9e37_79b9, 10)] {
            let r = Router::new(seed);
            r.set_drop_rate(rate);
            let mut dropped = 0;
            for _ in 0..10_000 {
                if r.reply(1, 2) == Err(LinkDown::Dropped) {
                    dropped += 1;
                }
            }
            let rolls = reference_rolls(seed, 10_000);
            let want = rolls.iter().filter(|&&roll| roll < u64::from(rate)).count() as u64;
            assert_eq!(r.counters(), (want, 10_000 - want), "seed {seed}");
            assert_eq!(dropped, want);
        }
        // A roll exactly at the rate goes through.
        let at = reference_rolls(7, 1)[0];
        assert!(at > 0);
        let r = Router::new(7);
        r.set_drop_rate(u32::try_from(at).unwrap());
        assert_eq!(r.reply(1, 2), Ok(()));
        // No drops at rate 0, every message at a million or more.
        let r = Router::new(3);
        assert_eq!(r.send(0, 1, 2).err(), Some(LinkDown::NoSuchNode));
        assert_eq!(r.reply(1, 2), Ok(()));
        r.set_drop_rate(2_000_000);
        assert_eq!(r.send(0, 1, 2).err(), Some(LinkDown::Dropped));
        assert_eq!(r.reply(1, 2), Err(LinkDown::Dropped));
        assert_eq!(r.counters(), (2, 1));
    }

    #[test]
    fn each_link_failure_says_what_it_is() {
        let words: Vec<String> = [
            LinkDown::NoSuchNode,
            LinkDown::Isolated,
            LinkDown::Partitioned,
            LinkDown::Dropped,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            words,
            [
                "no such node",
                "node isolated",
                "nodes partitioned",
                "message dropped"
            ]
        );
    }
}
