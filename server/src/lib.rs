//! # roomstate-server
//!
//! The roomstate engine behind one vendor's REST API over HTTP, live room
//! events over WebSocket, and a write-ahead log that keeps the state across
//! a crash.

pub mod wal;
