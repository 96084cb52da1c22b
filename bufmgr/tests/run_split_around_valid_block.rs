//! A run of blocks prepared as misses, one of which another task read in
//! the meantime, is completed with two reads around it; the blocks after
//! the first never wait for anyone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::{Buffer, ReadBufferMode};
use common::*;
use smgr_api::testkit::ReadCall;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middle_block_read_elsewhere_splits_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 16, 2).await;
    let pool = pool(smgr.clone(), 32);

    let mut run: Vec<Buffer> = Vec::new();
    for block in 3..8 {
        let prepared = pool.prepare_read(rel, MAIN, block, None).await.unwrap();
        assert!(!prepared.hit, "block {block} should miss");
        run.push(prepared.buffer);
    }
    // Someone else reads block 5 to completion meanwhile.
    let other = pool
        .read_buffer(rel, MAIN, 5, ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(*other.read().unwrap(), page(2, 5)[..]);
    smgr.clear_reads();

    pool.complete_read(&run, ReadBufferMode::Normal)
        .await
        .unwrap();
    let call = |first, count| ReadCall {
        rel,
        fork: MAIN,
        first,
        count,
    };
    assert_eq!(smgr.reads(), vec![call(3, 2), call(6, 2)]);
    for (i, buffer) in run.iter().enumerate() {
        assert_eq!(
            *buffer.read().unwrap(),
            page(2, 3 + i as u32)[..],
            "block {}",
            3 + i
        );
    }
    // A fully prepared, untouched run is one read.
    let mut run2 = Vec::new();
    for block in 8..16 {
        run2.push(
            pool.prepare_read(rel, MAIN, block, None)
                .await
                .unwrap()
                .buffer,
        );
    }
    smgr.clear_reads();
    pool.complete_read(&run2, ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(smgr.reads(), vec![call(8, 8)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_that_are_not_a_run_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 8, 3).await;
    let pool = pool(smgr, 16);
    let a = pool.prepare_read(rel, MAIN, 1, None).await.unwrap().buffer;
    let b = pool.prepare_read(rel, MAIN, 3, None).await.unwrap().buffer;
    let err = pool
        .complete_read(&[a, b], ReadBufferMode::Normal)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("consecutive"), "{err}");
}
