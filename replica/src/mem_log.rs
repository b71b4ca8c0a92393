//! An in-memory Raft log and vote store for tests and benches
//! (openraft 0.9 storage-v2 [`RaftLogStorage`]).
//!
//! Clones share the same log, so a test can shut a node's `Raft` down and
//! start a new one over the same store: the log survives like a disk
//! would. Writes complete synchronously: an entry is "flushed" as soon as
//! it is in memory.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, RaftLogId, RaftLogReader, StorageError, Vote};

use crate::types::{NodeId, TypeConfig};

#[derive(Default)]
struct LogInner {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
}

/// The in-memory log store. Cheap to clone; clones share the log.
#[derive(Clone, Default)]
pub struct MemLogStore {
    inner: Arc<Mutex<LogInner>>,
}

impl MemLogStore {
    /// An empty log.
    #[must_use]
    pub fn new() -> MemLogStore {
        MemLogStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        // No code below panics while holding the lock.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of entries held (not purged).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the log holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last purged log id.
    #[must_use]
    pub fn last_purged(&self) -> Option<LogId<NodeId>> {
        self.lock().last_purged
    }
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = MemLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let s = self.lock();
        let last = s
            .entries
            .last_key_value()
            .map(|(_, e)| *e.get_log_id())
            .or(s.last_purged);
        Ok(LogState {
            last_purged_log_id: s.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> MemLogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        {
            let mut s = self.lock();
            for entry in entries {
                s.entries.insert(entry.get_log_id().index, entry);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut s = self.lock();
        // Drop every entry at or after the index.
        let _ = s.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut s = self.lock();
        if s.last_purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        s.last_purged = Some(log_id);
        let keep = s.entries.split_off(&(log_id.index + 1));
        s.entries = keep;
        Ok(())
    }
}

impl MemLogStore {
    /// A copy of the entries held, in index order (for tests that replay
    /// the log).
    #[must_use]
    pub fn entries(&self) -> Vec<Entry<TypeConfig>> {
        self.lock().entries.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::MemLogStore;
    use openraft::storage::RaftLogStorage;
    use openraft::testing::log_id;

    /// A new log holds nothing (the cluster tests check a filled one).
    #[test]
    fn a_new_log_is_empty() {
        let log = MemLogStore::new();
        assert!(log.is_empty());
        assert_eq!(log.len(), 0);
        assert!(log.entries().is_empty());
        assert_eq!(log.last_purged(), None);
    }

    /// The committed log id reads back as saved, in every clone (a node
    /// restarted over the same store re-applies up to it).
    #[tokio::test]
    async fn the_committed_log_id_reads_back() {
        let mut log = MemLogStore::new();
        assert_eq!(log.read_committed().await.unwrap(), None);
        log.save_committed(Some(log_id(2, 1, 7))).await.unwrap();
        let mut restarted = log.clone();
        assert_eq!(
            restarted.read_committed().await.unwrap(),
            Some(log_id(2, 1, 7))
        );
    }
}
