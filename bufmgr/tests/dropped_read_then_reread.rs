//! Dropping a read future midway (its read parked in the storage manager)
//! leaves the frame valid or free to retry, never stuck; reading again
//! returns the right bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::time::Duration;

use bufmgr::ReadBufferMode;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_read_does_not_wedge_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 32, 6).await;
    let pool = pool(smgr.clone(), 16);

    for round in 0..5u32 {
        let block = round * 3;
        smgr.hold_reads();
        let reader = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                    .await
            }
        });
        while smgr.reads().len() <= round as usize {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        reader.abort();
        let _ = reader.await;
        smgr.release_reads();
        let again = tokio::time::timeout(
            Duration::from_secs(10),
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal),
        )
        .await
        .expect("re-read hung: frame stuck in I/O")
        .unwrap();
        assert_eq!(*again.read().unwrap(), page(6, block)[..], "round {round}");
        // The abandoned read was finished by the pool, not thrown away: the
        // re-read found (or waited for) it and issued no read of its own.
        assert_eq!(
            smgr.reads().len(),
            round as usize + 1,
            "round {round}: the abandoned read was cancelled"
        );
    }
    // The abandoned reads finished in the background; the pool works on.
    for block in 0..32 {
        let buffer = pool
            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
        assert_eq!(*buffer.read().unwrap(), page(6, block)[..]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_is_retried_by_the_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 8, 7).await;
    let pool = pool(smgr.clone(), 16);
    smgr.fail_reads(1);
    smgr.hold_reads();
    let first = tokio::spawn({
        let pool = pool.clone();
        async move { pool.read_buffer(rel, MAIN, 2, ReadBufferMode::Normal).await }
    });
    while smgr.reads().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = tokio::spawn({
        let pool = pool.clone();
        async move { pool.read_buffer(rel, MAIN, 2, ReadBufferMode::Normal).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!second.is_finished(), "the second reader did not wait");
    smgr.release_reads();
    assert!(
        first.await.unwrap().is_err(),
        "the injected failure was not reported"
    );
    let buffer = second.await.unwrap().unwrap();
    assert_eq!(*buffer.read().unwrap(), page(7, 2)[..]);
    assert_eq!(
        smgr.reads().len(),
        2,
        "the waiter should have read once more"
    );
}

/// A read dropped while clock sweep writes back its dirty victim must not
/// leave that victim pinned: afterwards every frame can be used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_dropped_during_victim_write_back_leaks_no_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 16, 13).await;
    let pool = pool(smgr.clone(), 2);
    for block in 0..2 {
        let buffer = pool
            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
        let mut page = buffer.write().unwrap();
        page[100] = 7;
        page.mark_dirty();
        drop(page);
    }
    smgr.hold_writes();
    let reader = tokio::spawn({
        let pool = pool.clone();
        async move { pool.read_buffer(rel, MAIN, 5, ReadBufferMode::Normal).await }
    });
    while smgr.writes() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    reader.abort();
    let _ = reader.await;
    smgr.release_writes();
    // Both frames must be pinnable at once: no pin was leaked.
    let a = tokio::time::timeout(
        Duration::from_secs(10),
        pool.read_buffer(rel, MAIN, 6, ReadBufferMode::Normal),
    )
    .await
    .unwrap()
    .unwrap();
    let b = tokio::time::timeout(
        Duration::from_secs(10),
        pool.read_buffer(rel, MAIN, 7, ReadBufferMode::Normal),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(*a.read().unwrap(), page(13, 6)[..]);
    assert_eq!(*b.read().unwrap(), page(13, 7)[..]);
    // The abandoned write-back finished: the change reached storage.
    drop((a, b));
    pool.flush_all().await.unwrap();
    use smgr_api::SmgrExt;
    assert_eq!(smgr.read_block(rel, MAIN, 0).await.unwrap()[100], 7);
    assert_eq!(smgr.read_block(rel, MAIN, 1).await.unwrap()[100], 7);
}
