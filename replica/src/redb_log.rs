//! A durable Raft log on [redb]: log entries, the vote, the committed log id
//! and the last purged log id, in one database file.
//!
//! Why redb: it is a well-kept embedded store whose write transactions are
//! crash-safe (copy-on-write B-trees, checksummed pages, an atomic commit
//! slot), so a node that dies in the middle of a write finds either the old
//! or the new state on restart, never a torn one. That is the guarantee a
//! Raft log needs, without a hand-written WAL and its recovery rules.
//!
//! Durability: every write that openraft must see on disk before it goes on
//! (appended entries, the vote, truncation, purge) is one redb transaction
//! committed with [`Durability::Immediate`], which returns only after fsync.
//! The append callback fires after that commit. The committed log id is an
//! optimisation (it lets a restarted node re-apply without waiting for a
//! leader) and may lag after a crash, so it is committed with
//! [`Durability::None`]: no fsync of its own, made durable by the next
//! immediate commit (an append, the vote), or lost with a crash before it,
//! which leaves an older committed id: safe, since committed entries are
//! never truncated. (`Durability::Eventual` would not save the fsync: on
//! Linux redb 2.6 syncs it like `Immediate`.)
//!
//! Corrupt data (a record that does not decode, or whose log id does not
//! match its key) is reported as a [`StorageError`], never a panic.
//!
//! The store is generic over the type config: entries and the vote are
//! stored with postcard through openraft's serde support.

// The error types are openraft's `StorageError` (fixed by its traits) and
// `redb::Error`; boxing them here would only add an allocation per error.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader,
    RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Log entries by index, each a postcard-encoded `C::Entry`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Small records by name: [`KEY_VOTE`], [`KEY_COMMITTED`], [`KEY_PURGED`].
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// redb's page cache per log (its default is 1 GiB). Raft reads mostly
/// the tail of the log, which recent writes keep cached.
pub const CACHE_BYTES: usize = 16 << 20;

/// The last saved vote.
const KEY_VOTE: &str = "vote";
/// The last saved committed log id.
const KEY_COMMITTED: &str = "committed";
/// The last purged log id.
const KEY_PURGED: &str = "last_purged";

/// A durable [`RaftLogStorage`] on a redb database file.
///
/// Cloning is cheap: clones share the database, so a clone serves as the
/// log reader that openraft's replication tasks use.
pub struct RedbLogStore<C: RaftTypeConfig> {
    db: Arc<Database>,
    _c: PhantomData<C>,
}

impl<C: RaftTypeConfig> Clone for RedbLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            _c: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig> Debug for RedbLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLogStore").finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> RedbLogStore<C> {
    /// Opens the log at `path`, creating the file (not its directory) if it
    /// does not exist. A file that is not a redb database, or one whose
    /// tables cannot be opened, is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError<C::NodeId>> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path.as_ref())
            .map_err(|e| store_err(ErrorVerb::Read, e))?;
        // Create both tables up front so that readers never meet a missing
        // table.
        let txn = db
            .begin_write()
            .map_err(|e| store_err(ErrorVerb::Write, e))?;
        txn.open_table(LOG)
            .map_err(|e| store_err(ErrorVerb::Write, e))?;
        txn.open_table(META)
            .map_err(|e| store_err(ErrorVerb::Write, e))?;
        txn.commit().map_err(|e| store_err(ErrorVerb::Write, e))?;
        Ok(Self {
            db: Arc::new(db),
            _c: PhantomData,
        })
    }

    /// Reads one metadata record.
    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &str,
        subject: ErrorSubject<C::NodeId>,
    ) -> Result<Option<T>, StorageError<C::NodeId>> {
        let io = |e: AnyError| StorageIOError::new(subject.clone(), ErrorVerb::Read, e);
        let bytes = (|| -> Result<Option<Vec<u8>>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(META)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })()
        .map_err(|e| io(AnyError::new(&e)))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes).map(Some).map_err(|e| {
                io(AnyError::new(&e).add_context(|| format!("meta record {key}"))).into()
            }),
        }
    }

    /// Writes one metadata record in its own transaction.
    async fn write_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
        subject: ErrorSubject<C::NodeId>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let io = |e: AnyError| StorageIOError::new(subject.clone(), ErrorVerb::Write, e);
        let bytes = postcard::to_allocvec(value).map_err(|e| io(AnyError::new(&e)))?;
        self.write(durability, move |txn| {
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
        .await
        .map_err(|e| io(e).into())
    }

    /// Runs `f` in one write transaction off the async threads (a commit
    /// may wait for fsync) and commits it with `durability`.
    async fn write<F>(&self, durability: Durability, f: F) -> Result<(), AnyError>
    where
        F: FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let job = move || -> Result<(), redb::Error> {
            let mut txn = db.begin_write()?;
            txn.set_durability(durability);
            f(&txn)?;
            txn.commit()?;
            Ok(())
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(result) => result.map_err(|e| AnyError::new(&e)),
            Err(join) => Err(AnyError::new(&join)),
        }
    }

    /// The last entry's log id, if the log holds any entry.
    fn last_log_id(&self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        let last = (|| -> Result<Option<(u64, Vec<u8>)>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let last = table.last()?.map(|(k, v)| (k.value(), v.value().to_vec()));
            Ok(last)
        })()
        .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        match last {
            None => Ok(None),
            Some((index, bytes)) => {
                Ok(Some(decode_entry::<C>(index, &bytes)?.get_log_id().clone()))
            }
        }
    }
}

/// Decodes the entry stored under `index`, checking that it is the entry
/// for that index.
fn decode_entry<C: RaftTypeConfig>(
    index: u64,
    bytes: &[u8],
) -> Result<C::Entry, StorageError<C::NodeId>> {
    let entry: C::Entry = postcard::from_bytes(bytes)
        .map_err(|e| StorageIOError::<C::NodeId>::read_log_at_index(index, AnyError::new(&e)))?;
    let stored = entry.get_log_id().index;
    if stored != index {
        return Err(StorageIOError::<C::NodeId>::read_log_at_index(
            index,
            AnyError::error(format!(
                "the entry stored at index {index} has index {stored}"
            )),
        )
        .into());
    }
    Ok(entry)
}

/// A storage error about the store as a whole (opening it).
fn store_err<NID: openraft::NodeId>(
    verb: ErrorVerb,
    e: impl Into<redb::Error>,
) -> StorageError<NID> {
    let e: redb::Error = e.into();
    StorageIOError::new(ErrorSubject::Store, verb, AnyError::new(&e)).into()
}

/// `range` as a half-open `start..end`, or `None` when it holds no index.
fn half_open(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start < end).then_some((start, end))
}

impl<C> RaftLogReader<C> for RedbLogStore<C>
where
    C: RaftTypeConfig,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let Some((start, end)) = half_open(&range) else {
            return Ok(Vec::new());
        };
        let raw = (|| -> Result<Vec<(u64, Vec<u8>)>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let mut out = Vec::new();
            for item in table.range(start..end)? {
                let (k, v) = item?;
                out.push((k.value(), v.value().to_vec()));
            }
            Ok(out)
        })()
        .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        raw.iter()
            .map(|(index, bytes)| decode_entry::<C>(*index, bytes))
            .collect()
    }
}

impl<C> RaftLogStorage<C> for RedbLogStore<C>
where
    C: RaftTypeConfig,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_purged_log_id: Option<LogId<C::NodeId>> =
            self.read_meta(KEY_PURGED, ErrorSubject::Logs)?;
        let last_log_id = self.last_log_id()?.or_else(|| last_purged_log_id.clone());
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write_meta(KEY_VOTE, vote, Durability::Immediate, ErrorSubject::Vote)
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.read_meta(KEY_VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.write_meta(
            KEY_COMMITTED,
            &committed,
            Durability::None,
            ErrorSubject::Store,
        )
        .await
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        // Stored as an `Option` itself: `save_committed(None)` is a value.
        Ok(self
            .read_meta::<Option<LogId<C::NodeId>>>(KEY_COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        for entry in entries {
            let bytes = postcard::to_allocvec(&entry).map_err(|e| {
                StorageIOError::write_log_entry(entry.get_log_id().clone(), AnyError::new(&e))
            })?;
            records.push((entry.get_log_id().index, bytes));
        }
        let result = self
            .write(Durability::Immediate, move |txn| {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &records {
                    table.insert(*index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let since = log_id.index;
        self.write(Durability::Immediate, move |txn| {
            txn.open_table(LOG)?.retain_in(since.., |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = postcard::to_allocvec(&log_id)
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let upto = log_id.index;
        // The purged id and the deletion commit together: a restart never
        // sees entries gone without the id that says so.
        self.write(Durability::Immediate, move |txn| {
            txn.open_table(META)?.insert(KEY_PURGED, bytes.as_slice())?;
            txn.open_table(LOG)?.retain_in(..=upto, |_, _| false)?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;
    use openraft::storage::RaftLogStorage;
    use openraft::testing::log_id;
    use openraft::{CommittedLeaderId, Entry, EntryPayload};
    use std::io::Cursor;

    openraft::declare_raft_types!(
        /// A minimal config for the store's own tests.
        pub Cfg: D = u64, R = u64,
    );

    fn entry(term: u64, index: u64, value: u64) -> Entry<Cfg> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(value),
        }
    }

    fn temp_path(name: &str) -> (tempdir::Dir, std::path::PathBuf) {
        let dir = tempdir::Dir::new(name);
        let path = dir.path().join("log.redb");
        (dir, path)
    }

    /// A directory under the system temp dir, removed on drop.
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new(name: &str) -> Self {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                let p = std::env::temp_dir()
                    .join(format!("redb-log-{name}-{}-{nanos}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    async fn append(store: &mut RedbLogStore<Cfg>, entries: Vec<Entry<Cfg>>) {
        // LogFlushed has no public constructor besides the one openraft's
        // suite uses; go through the blocking helper openraft provides.
        use openraft::storage::RaftLogStorageExt;
        store.blocking_append(entries).await.unwrap();
    }

    #[tokio::test]
    async fn redb_log_keeps_entries_vote_and_purge_across_reopen() {
        let (_dir, path) = temp_path("reopen");
        {
            let mut store = RedbLogStore::<Cfg>::open(&path).unwrap();
            append(&mut store, (1..=5).map(|i| entry(1, i, i * 10)).collect()).await;
            store.save_vote(&Vote::new(3, 2)).await.unwrap();
            store.save_committed(Some(log_id(1, 1, 4))).await.unwrap();
            store.purge(log_id(1, 1, 2)).await.unwrap();
            store.truncate(log_id(1, 1, 5)).await.unwrap();
        }
        let mut store = RedbLogStore::<Cfg>::open(&path).unwrap();
        assert_eq!(format!("{store:?}"), "RedbLogStore { .. }");
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 4)));
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 1, 4)));
        let got = store.try_get_log_entries(0..100).await.unwrap();
        let want: Vec<_> = (3..=4).map(|i| entry(1, i, i * 10)).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn redb_log_state_after_purging_everything_is_the_purged_id() {
        let (_dir, path) = temp_path("purge-all");
        let mut store = RedbLogStore::<Cfg>::open(&path).unwrap();
        append(&mut store, (1..=3).map(|i| entry(2, i, i)).collect()).await;
        store.purge(log_id(2, 1, 3)).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 3)));
        assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn redb_log_empty_and_reversed_ranges_read_nothing() {
        let (_dir, path) = temp_path("ranges");
        let mut store = RedbLogStore::<Cfg>::open(&path).unwrap();
        append(&mut store, (1..=3).map(|i| entry(1, i, i)).collect()).await;
        assert!(store.try_get_log_entries(2..2).await.unwrap().is_empty());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = store.try_get_log_entries(3..1).await.unwrap();
        assert!(reversed.is_empty());
        assert_eq!(
            store.try_get_log_entries(2..=u64::MAX).await.unwrap().len(),
            2
        );
    }

    #[tokio::test]
    async fn redb_log_corrupt_entry_is_a_storage_error() {
        let (_dir, path) = temp_path("corrupt-entry");
        let mut store = RedbLogStore::<Cfg>::open(&path).unwrap();
        append(&mut store, (1..=3).map(|i| entry(1, i, i)).collect()).await;
        // Garbage under index 2, and a valid entry for index 9 under index 3.
        let moved = postcard::to_allocvec(&entry(1, 9, 9)).unwrap();
        let txn = store.db.begin_write().unwrap();
        {
            let mut t = txn.open_table(LOG).unwrap();
            t.insert(2, [0xffu8, 0xff, 0xff].as_slice()).unwrap();
            t.insert(3, moved.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        assert!(store.try_get_log_entries(1..2).await.is_ok());
        let err = store.try_get_log_entries(2..3).await.unwrap_err();
        assert!(err.to_string().contains('2'), "{err}");
        let err = store.try_get_log_entries(3..4).await.unwrap_err();
        assert!(err.to_string().contains("has index 9"), "{err}");
        // The last entry is the misplaced one: the log state says so too.
        assert!(store.get_log_state().await.is_err());
    }

    #[tokio::test]
    async fn redb_log_corrupt_vote_is_a_storage_error() {
        let (_dir, path) = temp_path("corrupt-vote");
        let mut store = RedbLogStore::<Cfg>::open(&path).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(KEY_VOTE, [0xffu8; 2].as_slice())
            .unwrap();
        txn.commit().unwrap();
        assert!(store.read_vote().await.is_err());
    }

    #[test]
    fn redb_log_a_file_that_is_not_a_database_is_an_open_error() {
        let (_dir, path) = temp_path("not-a-db");
        std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
        assert!(RedbLogStore::<Cfg>::open(&path).is_err());
    }
}
