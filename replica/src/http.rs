//! Raft network over HTTP on loopback (the other helper's module).
