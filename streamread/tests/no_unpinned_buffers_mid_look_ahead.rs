//! Running out of unpinned buffers while the stream already holds pins
//! only shortens its look-ahead: every block still comes back, in order.
//! With no pins of its own, the stream returns `NoUnpinnedBuffers` and
//! keeps the block it could not pin for the next call.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::{BufferPool, Error, PoolConfig, ReadBufferMode};
use common::*;
use smgr_api::PageFormat;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_look_ahead_shortens_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 300, 32).await;
    // One reader's share is the whole pool, but someone else holds most
    // of it: the stream's look-ahead (up to 48 pins) runs out of frames.
    let frames = 48;
    let pool = BufferPool::new(
        smgr,
        PoolConfig::new(frames, PageFormat::Native).max_readers(1),
    )
    .unwrap();
    let mut held = Vec::new();
    for block in 200..240 {
        held.push(
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                .await
                .unwrap(),
        );
    }
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let config = StreamConfig::default().max_ios(2);
    let mut stream = ReadStream::range(&pool, rel, MAIN, config, flags, 0..150);
    let mut next = 0;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        assert_eq!(buffer.tag().block, next);
        assert_eq!(*buffer.read().unwrap(), page(32, next)[..]);
        next += 1;
    }
    assert_eq!(next, 150);
    drop(stream);
    assert_eq!(pool.census().pins, held.len());

    // Every frame pinned by someone else: the error, then the same block.
    for block in 240..248 {
        held.push(
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                .await
                .unwrap(),
        );
    }
    let mut stream = ReadStream::range(&pool, rel, MAIN, config, flags, 0..10);
    let err = stream.next_buffer().await.unwrap_err();
    assert!(matches!(err, Error::NoUnpinnedBuffers { .. }), "{err}");
    held.clear();
    for want in 0..10 {
        let (buffer, ()) = stream.next_buffer().await.unwrap().unwrap();
        assert_eq!(buffer.tag().block, want);
    }
    assert!(stream.next_buffer().await.unwrap().is_none());
}
