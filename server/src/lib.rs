//! # roomstate-server
//!
//! The roomstate engine behind one vendor's REST API over HTTP, live room
//! events over WebSocket, and a write-ahead log that keeps the state across
//! a crash.
//!
//! ```text
//! HTTP request ──► http (auth, body, content type) ──► Request
//!      │                                               │ hash(room) → shard
//!      ▼                                               ▼
//! vendor error (front dialect)          shard task: Dialect/Engine
//!                                         batch → journal → WAL commit
//!                                         → replies, events → WebSocket queues
//! ```
//!
//! - [`config`]: flags, config file (TOML or JSON), environment secrets.
//! - [`server`]: start, accept loop, graceful shutdown.
//! - [`conn`]: a connection's keep-alive and request-head deadlines.
//! - [`http`]: vendor routes, `/admin`, `/healthz`, `/metrics`.
//! - [`ws`]: `GET /ws` with a client token, and `since`.
//! - [`shard`]: one engine per task; group commit; event fan-out.
//! - [`store`]: the shard's log (or none), the only user of [`wal`].
//! - [`engine_api`]: every use of the engine's API.
//! - [`auth`]: vendor signatures, admin token, client tokens.
//! - [`limits`]: every limit, named once.

pub mod auth;
pub mod config;
pub mod conn;
pub mod engine_api;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod shard;
pub mod store;
pub mod wal;
pub mod ws;
