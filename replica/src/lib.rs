//! # roomstate-replica
//!
//! The roomstate engine as a replicated state machine on openraft.
