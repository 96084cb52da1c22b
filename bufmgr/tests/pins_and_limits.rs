//! When every frame is pinned a read fails at once with a clear error
//! instead of hanging; pins are released by dropping handles; and one
//! reader's share of additional pins is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::time::Duration;

use bufmgr::{BufferPool, Error, PoolConfig, ReadBufferMode};
use common::*;
use smgr_api::PageFormat;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_pinned_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 16, 8).await;
    let pool = pool(smgr, 4);
    let mut held = Vec::new();
    for block in 0..4 {
        held.push(
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                .await
                .unwrap(),
        );
    }
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        pool.read_buffer(rel, MAIN, 4, ReadBufferMode::Normal),
    )
    .await
    .expect("a read with every frame pinned hung");
    match result {
        // Not retryable as such: here the caller itself holds every pin.
        Err(err @ Error::NoUnpinnedBuffers { frames: 4 }) => assert!(!err.is_retryable()),
        other => panic!("expected NoUnpinnedBuffers, got {other:?}"),
    }
    // A pinned page is still a hit; a clone is a second pin.
    let again = pool
        .read_buffer(rel, MAIN, 2, ReadBufferMode::Normal)
        .await
        .unwrap();
    let clone = again.clone();
    drop(again);
    drop(held);
    assert_eq!(*clone.read().unwrap(), page(8, 2)[..]);
    // With the pins dropped, the pool has room again.
    let buffer = pool
        .read_buffer(rel, MAIN, 4, ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(*buffer.read().unwrap(), page(8, 4)[..]);
}

#[tokio::test(flavor = "current_thread")]
async fn additional_pins_are_limited_to_a_readers_share() {
    let smgr = std::sync::Arc::new(smgr_api::testkit::MemSmgr::new(
        smgr_api::BlockSize::DEFAULT,
    ));
    let pool = BufferPool::new(
        smgr,
        PoolConfig::new(256, PageFormat::Native).max_readers(8),
    )
    .unwrap();
    assert_eq!(pool.max_pins_per_reader(), 32);
    assert_eq!(pool.limit_additional_pins(0, 16), 16);
    assert_eq!(pool.limit_additional_pins(0, 100), 32);
    assert_eq!(pool.limit_additional_pins(20, 100), 12);
    // Always at least one, so a reader can make progress.
    assert_eq!(pool.limit_additional_pins(32, 100), 1);
    assert_eq!(pool.limit_additional_pins(500, 100), 1);
    let tiny = BufferPool::new(
        std::sync::Arc::new(smgr_api::testkit::MemSmgr::new(
            smgr_api::BlockSize::DEFAULT,
        )),
        PoolConfig::new(4, PageFormat::Native).max_readers(100),
    )
    .unwrap();
    assert_eq!(tiny.max_pins_per_reader(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_configurations_are_refused() {
    let smgr = || {
        std::sync::Arc::new(smgr_api::testkit::MemSmgr::new(
            smgr_api::BlockSize::DEFAULT,
        ))
    };
    let err = BufferPool::new(smgr(), PoolConfig::new(0, PageFormat::Native)).unwrap_err();
    assert!(err.to_string().contains("frames"), "{err}");
    let err = BufferPool::new(
        smgr(),
        PoolConfig::new(8, PageFormat::Native).max_readers(0),
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_readers"), "{err}");
}
