//! `zero_and_lock`: the caller initializes a page without reading it, and
//! no other task sees the page before the initialization ends (a reader of
//! the block meanwhile waits, as for a read, and gets the initialized page,
//! never the zeros); a panic in the initialization leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::mpsc;
use std::time::Duration;

use bufmgr::ReadBufferMode;
use common::*;
use smgr_api::{RelFileLocator, SmgrExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_initialized_without_a_read_and_written_back() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 10, 12).await;
    let pool = pool(smgr.clone(), 16);
    let buffer = pool
        .zero_and_lock(rel, MAIN, 4, |page| {
            assert!(page.iter().all(|&b| b == 0), "init got a page of non-zeros");
            page.copy_from_slice(&page_99(4));
        })
        .await
        .unwrap();
    assert!(smgr.reads().is_empty(), "zero_and_lock read the page");
    assert!(buffer.is_dirty());
    assert_eq!(*buffer.read().unwrap(), page_99(4)[..]);
    pool.flush_buffer(&buffer).await.unwrap();
    assert_eq!(
        *smgr.read_block(rel, MAIN, 4).await.unwrap(),
        page_99(4)[..]
    );

    // A page already in the pool: init gets zeros too, under the lock.
    let again = pool
        .zero_and_lock(rel, MAIN, 4, |page| {
            assert!(page.iter().all(|&b| b == 0), "init got the old page");
            page[100] = 7;
        })
        .await
        .unwrap();
    assert!(again.is_dirty());
    assert_eq!(again.read().unwrap()[100], 7);

    // Blocks that do not exist are errors naming them, before any init.
    let err = pool
        .zero_and_lock(rel, MAIN, 10, |_| panic!("init of block 10 of 10"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("base/5/16396")
            && message.contains("block 10")
            && message.contains("10 blocks"),
        "{message}"
    );
    let other = RelFileLocator::in_database(5, 1);
    let err = pool
        .zero_and_lock(other, MAIN, 0, |_| panic!("init of a missing relation"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("base/5/1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_meanwhile_waits_and_sees_the_initialized_page() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 10, 12).await;
    let pool = pool(smgr.clone(), 16);

    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let initializer = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.zero_and_lock(rel, MAIN, 4, move |page| {
                started_tx.send(()).unwrap();
                // Held here (blocking this worker) until the reader waits.
                go_rx.recv().unwrap();
                page.copy_from_slice(&page_99(4));
            })
            .await
            .unwrap()
        }
    });
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    let reader = tokio::spawn({
        let pool = pool.clone();
        async move {
            let buffer = pool
                .read_buffer(rel, MAIN, 4, ReadBufferMode::Normal)
                .await
                .unwrap();
            let page = buffer.read().unwrap().to_vec();
            page
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !reader.is_finished(),
        "a reader got block 4 while it was being initialized"
    );
    go_tx.send(()).unwrap();
    let seen = reader.await.unwrap();
    assert_eq!(seen, page_99(4), "the reader saw the page before its init");
    assert!(initializer.await.unwrap().is_dirty());
    assert!(smgr.reads().is_empty(), "block 4 was read from storage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_init_leaves_the_pool_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 10, 12).await;
    let pool = pool(smgr.clone(), 16);
    for (case, expected_reads) in [("not in the pool", 1), ("in the pool", 0)] {
        let failed = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.zero_and_lock(rel, MAIN, 3, |page| {
                    page[0] = 0xEE;
                    panic!("init fails halfway");
                })
                .await
                .map(|_| ())
            }
        })
        .await;
        assert!(failed.unwrap_err().is_panic(), "{case}");
        // Not stuck in I/O, not half-initialized, not dirty: block 3 is
        // storage's page, read now if it was not in the pool.
        let reads_before = smgr.reads().len();
        let buffer = pool
            .read_buffer(rel, MAIN, 3, ReadBufferMode::Normal)
            .await
            .unwrap();
        assert_eq!(*buffer.read().unwrap(), page(12, 3)[..], "{case}");
        assert!(!buffer.is_dirty(), "{case}");
        assert_eq!(smgr.reads().len() - reads_before, expected_reads, "{case}");
    }
}

fn page_99(block: u32) -> Vec<u8> {
    page(99, block)
}
