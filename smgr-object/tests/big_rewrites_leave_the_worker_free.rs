//! A write that compresses many frames runs on the blocking pool: other
//! tasks on the same (single-threaded) runtime keep running meanwhile, and
//! the pages written come back intact.
//!
//! The store is in memory on purpose: its PUT never waits, so the only way
//! the ticker below can run during the write is the compression being
//! handed to another thread.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{page, read, MAIN};
use object_store::memory::InMemory;
use smgr_api::{BlockSize, PageBuf, RelFileLocator, Smgr};
use smgr_object::{Compression, ObjectOptions, ObjectSmgr};

#[tokio::test(flavor = "current_thread")]
async fn a_big_compressed_extend_lets_other_tasks_run() {
    let store = Arc::new(InMemory::new());
    // 8 MiB segments, so that one extend compresses 4 MiB in 32 frames.
    let options = ObjectOptions::new(BlockSize::DEFAULT, 1024).compression(Compression::Zstd {
        level: 3,
        frame_blocks: 16,
    });
    let smgr = ObjectSmgr::new(store, "w", options).unwrap();
    let rel = RelFileLocator::in_database(5, 16500);
    smgr.create(rel, MAIN).await.unwrap();

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    tokio::task::yield_now().await; // the ticker is running

    let pages = (0..512).map(|b| PageBuf::copy_from(&page(1, b))).collect();
    let before = ticks.load(Ordering::Relaxed);
    smgr.extend(rel, MAIN, 0, pages).await.unwrap();
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    // Compressing 4 MiB takes milliseconds; a ticker round well under one
    // microsecond. Inline, the write does not yield at all (1 tick, seen
    // when the threshold was set out of reach); 10 leaves room for a
    // machine too busy to run the ticker much.
    assert!(
        during >= 10,
        "the ticker ran {during} times while 4 MiB were compressed"
    );

    // The copy of the pages handed to the blocking pool was faithful.
    let back = read(&smgr, rel, 0, 512).await.unwrap();
    for (b, p) in back.iter().enumerate() {
        assert!(*p == page(1, b as u32), "block {b} differs after the write");
    }

    // A one-block write compresses one frame, in place, and lands too.
    smgr.writev(rel, MAIN, 7, vec![PageBuf::copy_from(&page(2, 7))])
        .await
        .unwrap();
    let back = read(&smgr, rel, 6, 3).await.unwrap();
    assert!(back[0] == page(1, 6) && back[1] == page(2, 7) && back[2] == page(1, 8));
}
