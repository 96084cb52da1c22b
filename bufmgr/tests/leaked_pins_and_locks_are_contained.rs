//! Leaks in the embedding program stay contained: a content-lock guard
//! leaked with `mem::forget` keeps its frame out of reuse (the next page
//! never inherits the lock, so nothing spins on it), and pins beyond the
//! state word's 18-bit count stop with a clear panic instead of wrapping
//! into the usage bits (which would let clock sweep take a pinned frame).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_lock_keeps_its_frame_out_of_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 40, 52).await;
    let pool = pool(smgr, 4);
    let buffer = pool
        .read_buffer(rel, MAIN, 0, ReadBufferMode::Normal)
        .await
        .unwrap();
    std::mem::forget(buffer.read().unwrap());
    drop(buffer);
    // Every other block goes through the three other frames.
    for round in 0..3 {
        for block in 1..40 {
            let other = pool
                .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                .await
                .unwrap_or_else(|err| panic!("round {round}, block {block}: {err}"));
            assert_eq!(*other.read().unwrap(), page(52, block)[..]);
        }
    }
    // Block 0 still holds its page (a hit), readable under the leaked
    // shared lock.
    let hits = pool.stats().hits;
    let again = pool
        .read_buffer(rel, MAIN, 0, ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(pool.stats().hits, hits + 1);
    assert_eq!(*again.read().unwrap(), page(52, 0)[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_pins_of_one_buffer_panic_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 2, 53).await;
    let pool = pool(smgr, 4);
    let buffer = pool
        .read_buffer(rel, MAIN, 1, ReadBufferMode::Normal)
        .await
        .unwrap();
    let limit = (1 << 18) - 1;
    let clones: Vec<_> = (1..limit).map(|_| buffer.clone()).collect();
    assert_eq!(pool.census().pins, limit);
    let overflow = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| buffer.clone()));
    let message = overflow.unwrap_err();
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("pins of one buffer"), "{message}");
    // Nothing changed: still exactly `limit` pins, the page still valid.
    assert_eq!(pool.census().pins, limit);
    drop(clones);
    assert_eq!(*buffer.read().unwrap(), page(53, 1)[..]);
    drop(buffer);
    assert!(pool.census().is_quiet());
}
