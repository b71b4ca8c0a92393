//! Every limit of the server, named once.

use std::time::Duration;

/// Most shards a process runs.
pub const MAX_SHARDS: usize = 256;
/// Jobs waiting for one shard; a full queue answers the vendor's
/// busy/rate-limit error at once.
pub const SHARD_QUEUE: usize = 4096;
/// Most jobs a shard takes in one batch (one log commit).
pub const SHARD_BATCH: usize = 512;
/// Largest request body, in bytes (the vendors' largest documented
/// request, 100 Easemob keys of 4096 characters, fits).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Time to receive a request's headers (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time an idle keep-alive connection stays open between requests.
pub const KEEP_ALIVE_IDLE_SECONDS: u64 = 60;
/// Most HTTP worker threads (`--threads`).
pub const MAX_THREADS: usize = 256;
/// Time to receive a request's body once the headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open HTTP connections at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Messages waiting for one WebSocket client.
pub const WS_QUEUE: usize = 1024;
/// Bytes waiting for one WebSocket client (events can be large).
pub const WS_QUEUE_BYTES: usize = 4 << 20;
/// Above this many queued messages (or half the bytes), `Overflow`
/// events are dropped.
pub const WS_OVERFLOW_MARK: usize = WS_QUEUE / 2;
/// Most queued messages written to a WebSocket client with one flush.
pub const WS_WRITE_BATCH: usize = 64;
/// Read buffer of a WebSocket connection (clients send little).
pub const WS_READ_BUFFER: usize = 4 << 10;
/// Time a WebSocket write may take before the client counts as stuck.
pub const WS_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to drain connections at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default lifetime of a client token.
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 3600;
/// Default freshness window of NetEase `CurTime` and ZEGO `Timestamp`
/// (ZEGO documents 10 minutes; NetEase documents 5).
pub const DEFAULT_SIGNATURE_WINDOW_SECONDS: u64 = 300;
/// Tencent's default App admin account (the console's).
pub const TENCENT_DEFAULT_ADMIN: &str = "administrator";
/// Default snapshot cadence: records.
pub const SNAPSHOT_EVERY_RECORDS: u64 = 100_000;
/// Default snapshot cadence: seconds.
pub const SNAPSHOT_EVERY_SECONDS: u64 = 300;
