//! A caller's ring caps the stream's pins (PostgreSQL's
//! `GetAccessStrategyPinLimit`): with a ring of 8 frames a stream that
//! would like `(max_ios + 1) × combine` pins holds at most 8, and a scan
//! through it takes no frame from the rest of the pool: the pages cached
//! before it are all hits after it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::{BufferAccessStrategy, ReadBufferMode};
use common::*;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_a_small_ring_never_sweeps_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 1200, 31).await;
    let pool = pool(smgr, 512);
    for block in 0..400 {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    let ring = 8;
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let mut stream = ReadStream::range(&pool, rel, MAIN, StreamConfig::default(), flags, 400..1200)
        .with_strategy(BufferAccessStrategy::bulk_read(ring));
    let mut most = 0;
    let mut next = 400;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        most = most.max(stream.pinned() + 1);
        assert_eq!(buffer.tag().block, next);
        assert_eq!(*buffer.read().unwrap(), page(31, next)[..]);
        next += 1;
    }
    assert_eq!(next, 1200);
    // Its own pins plus the one buffer handed out.
    assert!(
        most <= ring + 1,
        "the stream held {most} pins through a ring of {ring}"
    );
    drop(stream);
    let before = pool.stats().hits;
    for block in 0..400 {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    assert_eq!(
        pool.stats().hits - before,
        400,
        "the scan took frames outside its ring"
    );
}
