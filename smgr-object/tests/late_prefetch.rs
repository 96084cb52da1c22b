//! A prefetch whose task only runs after the read it was meant for has
//! finished (forced here by a single-threaded runtime) does not fetch the
//! bytes a second time: prefetch + read stays one GET in every order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use smgr_api::{BlockSize, ForkNumber, RelFileLocator, Smgr, SmgrExt};
use smgr_object::testing::FaultyStore;
use smgr_object::{ObjectOptions, ObjectSmgr};

#[tokio::test(flavor = "current_thread")]
async fn a_late_prefetch_task_finds_the_bytes_already_read() {
    let store = Arc::new(FaultyStore::new(Arc::new(InMemory::new())));
    let smgr = ObjectSmgr::new(
        store.clone(),
        "p",
        ObjectOptions::new(BlockSize::new(1024).unwrap(), 16),
    )
    .unwrap();
    let rel = RelFileLocator::in_database(5, 1);
    smgr.create(rel, ForkNumber::Main).await.unwrap();
    smgr.zero_extend(rel, ForkNumber::Main, 0, 8).await.unwrap();
    smgr.nblocks(rel, ForkNumber::Main).await.unwrap();
    let before = store.counts().gets;
    // The prefetch task is spawned but cannot run before the read is done.
    assert!(smgr.prefetch(rel, ForkNumber::Main, 0, 8).await);
    smgr.read_to_vec(rel, ForkNumber::Main, 0, 8).await.unwrap();
    // Now let it run.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        store.counts().gets - before,
        1,
        "the late prefetch fetched the range again"
    );
    // A range nobody prefetched does not go through the cache at all.
    smgr.read_to_vec(rel, ForkNumber::Main, 2, 3).await.unwrap();
    assert_eq!(store.counts().gets - before, 2);
}
