//! The write-ahead log of a shard: framed `(now, command)` records.
