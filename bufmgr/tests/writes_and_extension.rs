//! Dirty pages are written with consecutive blocks combined into one
//! `writev`; flushing a relation leaves others alone; extension hands out
//! zeroed, valid pages backed by storage; a missing relation is named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;
use smgr_api::{RelFileLocator, Smgr, SmgrExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_combine_consecutive_dirty_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 40, 10).await;
    let pool = pool(smgr.clone(), 64);
    // Dirty 0..10 and 20..23: two runs.
    for block in (0..10).chain(20..23) {
        let buffer = pool
            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
        let mut page = buffer.write().unwrap();
        page[300] = 0x5A;
        page.mark_dirty();
        drop(page);
        assert!(buffer.is_dirty());
    }
    pool.flush_relation(rel, MAIN).await.unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.write_calls, stats.blocks_written),
        (2, 13),
        "{stats:?}"
    );
    for block in (0..10).chain(20..23) {
        assert_eq!(
            smgr.read_block(rel, MAIN, block).await.unwrap()[300],
            0x5A,
            "block {block}"
        );
    }
    // Clean now: flushing again writes nothing.
    pool.flush_all().await.unwrap();
    assert_eq!(pool.stats().blocks_written, 13);
    let one = pool
        .read_buffer(rel, MAIN, 30, ReadBufferMode::Normal)
        .await
        .unwrap();
    assert!(!one.is_dirty());
    let mut page = one.write().unwrap();
    page[1] = 1;
    page.mark_dirty();
    drop(page);
    pool.flush_buffer(&one).await.unwrap();
    assert!(!one.is_dirty());
    assert_eq!(pool.stats().blocks_written, 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_gives_zeroed_valid_pages_and_storage_space() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 10, 11).await;
    let pool = pool(smgr.clone(), 64);
    // 64 frames shared by 8 readers: one extension pins at most 8.
    let new = pool.extend_by(rel, MAIN, 70).await.unwrap();
    assert_eq!(new.len(), 8, "extension was not clamped to the pin share");
    assert_eq!(new[0].tag().block, 10);
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 18);
    assert!(new
        .iter()
        .all(|b| b.is_valid() && b.read().unwrap().iter().all(|&x| x == 0)));
    drop(new);
    // Concurrent extenders get distinct blocks.
    let (a, b) = tokio::join!(pool.extend_by(rel, MAIN, 3), pool.extend_by(rel, MAIN, 3));
    let mut blocks: Vec<u32> = a
        .unwrap()
        .iter()
        .chain(b.unwrap().iter())
        .map(|b| b.tag().block)
        .collect();
    blocks.sort_unstable();
    assert_eq!(blocks, (18..24).collect::<Vec<_>>());
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_a_missing_relation_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, _) = relation(dir.path(), 1, 12).await;
    let pool = pool(smgr, 16);
    let other = RelFileLocator::in_database(5, 1);
    let err = pool
        .read_buffer(other, MAIN, 0, ReadBufferMode::Normal)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("base/5/1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extending_by_zero_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 5, 16).await;
    let pool = pool(smgr.clone(), 16);
    assert!(pool.extend_by(rel, MAIN, 0).await.unwrap().is_empty());
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 5);
}

/// A change made while the page's write-back is in flight keeps the page
/// dirty: the write carried the old copy (PostgreSQL's BM_JUST_DIRTIED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_write_back_stays_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 5, 17).await;
    let pool = pool(smgr.clone(), 16);
    let buffer = pool
        .read_buffer(rel, MAIN, 1, ReadBufferMode::Normal)
        .await
        .unwrap();
    {
        let mut page = buffer.write().unwrap();
        page[200] = 1;
        page.mark_dirty();
    }
    smgr.hold_writes();
    let flush = tokio::spawn({
        let pool = pool.clone();
        async move { pool.flush_relation(rel, MAIN).await }
    });
    while smgr.writes() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    {
        let mut page = buffer.write().unwrap();
        page[200] = 2;
        page.mark_dirty();
    }
    smgr.release_writes();
    flush.await.unwrap().unwrap();
    assert!(
        buffer.is_dirty(),
        "a change made during the write was forgotten"
    );
    assert_eq!(smgr.read_block(rel, MAIN, 1).await.unwrap()[200], 1);
    pool.flush_buffer(&buffer).await.unwrap();
    assert!(!buffer.is_dirty());
    assert_eq!(smgr.read_block(rel, MAIN, 1).await.unwrap()[200], 2);
}
