//! A `Reader` counts the pins taken through it for as long as their
//! buffers (and clones of them) live, wherever they go; a reader of
//! another pool is refused with an error naming the mistake.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_counts_its_pins() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 8, 51).await;
    let pool = pool(smgr.clone(), 16);
    let reader = pool.reader();
    assert_eq!(reader.pins(), 0);
    let a = pool
        .prepare_read_as(&reader, rel, MAIN, 0, None)
        .await
        .unwrap();
    assert!(!a.hit);
    pool.complete_read(
        std::slice::from_ref(&a.buffer),
        bufmgr::ReadBufferMode::Normal,
    )
    .await
    .unwrap();
    let b = pool
        .prepare_read_if_cached_as(&reader, rel, MAIN, 0)
        .unwrap();
    assert!(b.hit);
    // Pins through the pool's own methods are not this reader's.
    let other = pool
        .read_buffer(rel, MAIN, 1, bufmgr::ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(reader.pins(), 2);
    let clone = b.buffer.clone();
    let moved = tokio::spawn(async move { clone }).await.unwrap();
    assert_eq!(reader.pins(), 3);
    drop((a, b, moved));
    assert_eq!(reader.pins(), 0);
    drop(other);
    assert!(pool.census().is_quiet());

    let elsewhere = common::pool(smgr, 16).reader();
    let err = pool
        .prepare_read_as(&elsewhere, rel, MAIN, 0, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the reader belongs to another pool"),
        "{err}"
    );
    assert!(pool
        .prepare_read_if_cached_as(&elsewhere, rel, MAIN, 0)
        .is_none());
}
