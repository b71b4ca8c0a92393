//! openraft's own storage test suite (`openraft::testing::Suite`) over both
//! log stores of this crate, each paired with the crate's state machine.
//!
//! The suite needs `C::D: Debug`, `C::R: Debug` and `C::NodeId: From<u64>`;
//! the crate's `TypeConfig` has all three, so the real types run as they
//! are, with no adapter.
//!
//! Each `Suite::test_all` builds a fresh store per case and drives every
//! case on its own tokio runtime, so these tests are plain `#[test]`s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use roomstate::Profile;
use roomstate_replica::mem_log::MemLogStore;
use roomstate_replica::redb_log::RedbLogStore;
use roomstate_replica::{NodeId, StateMachineStore, TypeConfig};

/// Builds the in-memory log with an in-memory state machine.
struct MemBuilder;

impl StoreBuilder<TypeConfig, MemLogStore, StateMachineStore, ()> for MemBuilder {
    async fn build(&self) -> Result<((), MemLogStore, StateMachineStore), StorageError<NodeId>> {
        Ok((
            (),
            MemLogStore::new(),
            StateMachineStore::new(Profile::tencent()),
        ))
    }
}

/// Builds the redb log and a state machine that keeps its snapshots in a
/// directory, both in a temporary directory that the guard removes.
struct RedbBuilder;

impl StoreBuilder<TypeConfig, RedbLogStore<TypeConfig>, StateMachineStore, tempfile::TempDir>
    for RedbBuilder
{
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            RedbLogStore<TypeConfig>,
            StateMachineStore,
        ),
        StorageError<NodeId>,
    > {
        let dir = tempfile::tempdir().unwrap();
        let log = RedbLogStore::open(dir.path().join("log.redb"))?;
        let snapshots = dir.path().join("snapshots");
        std::fs::create_dir_all(&snapshots).unwrap();
        let sm = StateMachineStore::open(Profile::tencent(), &snapshots).unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_for_the_in_memory_log() {
    Suite::test_all(MemBuilder).unwrap();
}

#[test]
fn openraft_storage_suite_passes_for_the_redb_log() {
    Suite::test_all(RedbBuilder).unwrap();
}
