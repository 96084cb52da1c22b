//! Buffers hold no reference count of the pool: their pins keep its frames
//! alive. A buffer (and clones of it, on other tasks) stays readable after
//! every `BufferPool` handle is gone; the frames are freed once the last
//! pin goes (were they freed earlier, reading the page would fault: the
//! frame memory is unmapped when freed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::time::Duration;

use bufmgr::ReadBufferMode;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffer_outlives_every_handle_of_its_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 8, 54).await;
    for round in 0..20 {
        let pool = pool(smgr.clone(), 64);
        let buffer = pool
            .read_buffer(rel, MAIN, 3, ReadBufferMode::Normal)
            .await
            .unwrap();
        let reader = pool.reader();
        let other = pool
            .prepare_read_as(&reader, rel, MAIN, 4, None)
            .await
            .unwrap();
        pool.complete_read(std::slice::from_ref(&other.buffer), ReadBufferMode::Normal)
            .await
            .unwrap();
        drop(pool);
        assert_eq!(*buffer.read().unwrap(), page(54, 3)[..], "round {round}");
        let clone = buffer.clone();
        let elsewhere = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(round % 3)).await;
            let bytes = clone.read().unwrap().to_vec();
            (clone, bytes)
        });
        drop(buffer);
        let (clone, bytes) = elsewhere.await.unwrap();
        assert_eq!(bytes, page(54, 3));
        assert_eq!(*other.buffer.read().unwrap(), page(54, 4)[..]);
        assert_eq!(reader.pins(), 1);
        drop(other);
        assert_eq!(reader.pins(), 0);
        // The last pin: the frames go (now, or soon, on the reaper thread).
        drop(clone);
    }
}
