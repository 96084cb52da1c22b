//! Two tasks missing the same block cause one read: the second waits for
//! the first one's I/O and gets the same, correct page.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::time::Duration;

use bufmgr::ReadBufferMode;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_miss_waits_for_the_first_read() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 16, 1).await;
    let pool = pool(smgr.clone(), 32);

    smgr.hold_reads();
    let first = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.read_buffer(rel, MAIN, 7, ReadBufferMode::Normal)
                .await
                .unwrap()
        }
    });
    // Let the first read reach the storage manager and park there.
    while smgr.reads().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.read_buffer(rel, MAIN, 7, ReadBufferMode::Normal)
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !second.is_finished(),
        "the second reader did not wait for the first"
    );
    smgr.release_reads();

    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(*a.read().unwrap(), page(1, 7)[..]);
    assert_eq!(*b.read().unwrap(), page(1, 7)[..]);
    assert_eq!(smgr.reads().len(), 1, "reads: {:?}", smgr.reads());
    let stats = pool.stats();
    assert_eq!(stats.blocks_read, 1);
    assert!(stats.io_wait > Duration::ZERO, "the wait was not counted");
}
