//! A backend that breaks the buffer contract (hands back buffers other
//! than the frames it was lent) gets an error, and the frames are never
//! marked valid with whatever they hold.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_buffers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 8, 14).await;
    let pool = pool(smgr.clone(), 8);
    smgr.return_foreign_buffers(1);
    let err = pool
        .read_buffer(rel, MAIN, 3, ReadBufferMode::Normal)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("did not return the buffers"),
        "{err}"
    );
    let prepared = pool.prepare_read(rel, MAIN, 3, None).await.unwrap();
    assert!(!prepared.hit, "a page from a broken read was marked valid");
    drop(prepared);
    let buffer = pool
        .read_buffer(rel, MAIN, 3, ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(*buffer.read().unwrap(), page(14, 3)[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_of_another_pool_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 8, 15).await;
    let a = pool(smgr.clone(), 8);
    let b = pool(smgr.clone(), 8);
    let theirs = b.prepare_read(rel, MAIN, 2, None).await.unwrap().buffer;
    let err = a
        .complete_read(std::slice::from_ref(&theirs), ReadBufferMode::Normal)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another pool"), "{err}");
    assert!(a.flush_buffer(&theirs).await.is_err());
}
