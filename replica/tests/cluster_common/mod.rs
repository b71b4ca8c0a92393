//! What the cluster tests share.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use roomstate::{Actor, Command, Op, Profile, Write};
use roomstate_replica::cluster::{Cluster, ClusterConfig};
use roomstate_replica::NodeId;

/// Tencent's profile without its request rate (the tests send bursts).
pub fn profile() -> Profile {
    let mut p = Profile::tencent();
    p.limits.request_rate = None;
    p
}

/// A cluster of `nodes` x `groups` over [`profile`], with its leaders.
pub async fn start(nodes: u64, groups: u32) -> (Cluster, Vec<NodeId>) {
    start_with(ClusterConfig::new(nodes, groups, profile())).await
}

/// A cluster built from `cfg`, with its leaders.
pub async fn start_with(cfg: ClusterConfig) -> (Cluster, Vec<NodeId>) {
    Cluster::start_elected(cfg, Duration::from_secs(10))
        .await
        .unwrap()
}

/// Creates `room` (creator `host`).
pub fn create(room: &str) -> Command {
    Command::CreateRoom {
        room: room.into(),
        creator: "host".into(),
    }
}

/// The server sets `key` to `value` in `room`.
pub fn set(room: &str, key: &str, value: &str) -> Command {
    Command::Write(Write::new(room, Actor::Admin).op(Op::set(key, value)))
}
