//! A bulk read through a ring of a few frames does not push the rest of
//! the pool out: pages read before the scan are still hits after it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::{BufferAccessStrategy, ReadBufferMode};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_scan_keeps_to_its_ring() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 600, 9).await;
    let pool = pool(smgr, 64);
    // A hot set of 32 pages, used twice so they have usage counts.
    for _ in 0..2 {
        for block in 0..32 {
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                .await
                .unwrap();
        }
    }
    let mut ring = BufferAccessStrategy::bulk_read(8);
    assert_eq!(ring.ring_size(), 8);
    for block in 32..600 {
        let buffer = pool
            .read_buffer_with(rel, MAIN, block, ReadBufferMode::Normal, Some(&mut ring))
            .await
            .unwrap();
        assert_eq!(*buffer.read().unwrap(), page(9, block)[..], "block {block}");
    }
    let before = pool.stats();
    for block in 0..32 {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    let after = pool.stats();
    assert_eq!(after.hits - before.hits, 32, "the scan evicted hot pages");
    assert_eq!(after.blocks_read, before.blocks_read);
    // Without a ring the same scan does evict them.
    for block in 32..600 {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    let before = pool.stats();
    for block in 0..32 {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    assert!(pool.stats().blocks_read > before.blocks_read);
}
