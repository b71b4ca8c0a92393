//! Durable log and vote on redb (the other helper's module).
