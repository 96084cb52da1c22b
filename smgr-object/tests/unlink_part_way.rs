//! An unlink that fails part-way (segments are deleted highest first)
//! leaves a shorter fork, and the backend knows it: the blocks left read
//! right, the ones deleted are past the end (a short read, as on local
//! files, not a failed GET of a missing object), and the next unlink
//! finishes the job.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use object_store::memory::InMemory;
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, Error, ForkNumber, RelFileLocator, Smgr, SmgrExt};
use smgr_object::testing::FaultyStore;
use smgr_object::{ObjectOptions, ObjectSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_unlink_leaves_a_shorter_fork_it_knows() {
    let faulty = Arc::new(FaultyStore::new(Arc::new(InMemory::new())));
    let bs = BlockSize::new(1024).unwrap();
    let smgr = ObjectSmgr::new(faulty.clone(), "u", ObjectOptions::new(bs, 4)).unwrap();
    let rel = RelFileLocator::in_database(5, 16500);
    smgr.create(rel, MAIN).await.unwrap();
    for block in 0..12 {
        smgr.extend_block(rel, MAIN, block, &pattern_page(1024, 1, block))
            .await
            .unwrap();
    }
    // Segment 2 (blocks 8..12) is deleted, segment 1 fails.
    faulty.fail_deletes(1, 1);
    let err = smgr.unlink(rel, MAIN).await.unwrap_err();
    assert!(err.to_string().contains("base/5/16500.1"), "{err}");
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 8);
    for block in 0..8 {
        assert_eq!(
            smgr.read_to_vec(rel, MAIN, block, 1).await.unwrap(),
            pattern_page(1024, 1, block)
        );
    }
    // Past the end now, as on local files (not a GET of a deleted object).
    let past = smgr.read_to_vec(rel, MAIN, 9, 1).await.unwrap_err();
    assert!(!matches!(past, Error::NotFound { .. }), "{past}");
    assert!(
        past.to_string().contains("read only 0 of 1024 bytes"),
        "{past}"
    );
    // A fresh backend sees the same on the store.
    let fresh = ObjectSmgr::new(faulty.clone(), "u", ObjectOptions::new(bs, 4)).unwrap();
    assert_eq!(fresh.nblocks(rel, MAIN).await.unwrap(), 8);

    smgr.unlink(rel, MAIN).await.unwrap();
    assert!(!smgr.exists(rel, MAIN).await.unwrap());
    fresh.refresh();
    assert!(!fresh.exists(rel, MAIN).await.unwrap());
}
