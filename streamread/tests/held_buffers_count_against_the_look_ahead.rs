//! The per-reader pin limit counts every pin the stream took, also the
//! buffers it handed out that the caller still holds (PostgreSQL's
//! `GetAdditionalPinLimit` counts all of a backend's pins): a caller that
//! keeps the last 6 buffers of a stream whose share is 8 pins leaves it a
//! look-ahead of 2, never 8 more.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::collections::VecDeque;

use bufmgr::{BufferPool, PoolConfig};
use common::*;
use smgr_api::PageFormat;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_the_caller_keeps_count_against_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 200, 34).await;
    // 64 frames for 8 readers: a share of 8 pins.
    let pool =
        BufferPool::new(smgr, PoolConfig::new(64, PageFormat::Native).max_readers(8)).unwrap();
    assert_eq!(pool.max_pins_per_reader(), 8);
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let config = StreamConfig::default().max_ios(4);
    let mut stream = ReadStream::range(&pool, rel, MAIN, config, flags, 0..200);
    let mut kept = VecDeque::new();
    let (mut most, mut next) = (0, 0);
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        assert_eq!(buffer.tag().block, next);
        assert_eq!(*buffer.read().unwrap(), page(34, next)[..]);
        next += 1;
        kept.push_back(buffer);
        if kept.len() > 6 {
            kept.pop_front();
        }
        most = most.max(stream.pinned() + kept.len());
    }
    assert_eq!(next, 200);
    assert!(
        most <= 8,
        "the stream and its caller held {most} pins, the share is 8"
    );
    drop(kept);
    drop(stream);
    assert!(pool.census().is_quiet(), "{:?}", pool.census());
}
