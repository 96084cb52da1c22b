//! A stream through its bulk-read ring (`with_bulk_read_ring`) reads every
//! block right and leaves the rest of the pool alone: pages cached before
//! a scan three times the pool's size are still there after it. The same
//! scan without the ring pushes them out (the control that shows the test
//! can fail).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::{BufferPool, ReadBufferMode};
use common::*;
use smgr_api::RelFileLocator;
use streamread::{ReadStream, StreamConfig, StreamFlags};

const CACHED: u32 = 100;
const BLOCKS: u32 = 3000;

/// Caches blocks `0..CACHED`, scans `CACHED..BLOCKS` (with the ring or
/// not), and returns how many of the cached blocks are still hits.
async fn cached_pages_left(pool: &BufferPool, rel: RelFileLocator, ring: bool) -> u64 {
    for block in 0..CACHED {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let stream = ReadStream::range(
        pool,
        rel,
        MAIN,
        StreamConfig::default(),
        flags,
        CACHED..BLOCKS,
    );
    let mut stream = if ring {
        stream.with_bulk_read_ring()
    } else {
        stream
    };
    assert_eq!(
        drain(&mut stream, 3).await,
        (CACHED..BLOCKS).collect::<Vec<_>>()
    );
    drop(stream);
    let before = pool.stats().hits;
    for block in 0..CACHED {
        let buffer = pool
            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
        assert_eq!(*buffer.read().unwrap(), page(3, block)[..], "block {block}");
    }
    pool.stats().hits - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringed_scan_leaves_the_rest_of_the_pool_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), BLOCKS, 3).await;
    let ringed = cached_pages_left(&pool(smgr.clone(), 1024), rel, true).await;
    assert_eq!(
        ringed,
        u64::from(CACHED),
        "the ring's scan evicted cached pages"
    );
    let swept = cached_pages_left(&pool(smgr, 1024), rel, false).await;
    assert!(
        swept < u64::from(CACHED),
        "without the ring, a scan of {} blocks through 1024 frames kept all {CACHED} cached pages",
        BLOCKS - CACHED
    );
}
