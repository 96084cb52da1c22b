//! The stream never holds more pins than its budget (re-checked as it
//! goes, under a tiny pool); reset and early drop release every pin.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::time::Duration;

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use common::*;
use smgr_api::PageFormat;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_stay_within_the_readers_share() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 300, 5).await;
    // 64 frames shared by 8 readers: a share of 8 pins, far below the
    // (16 + 1) x 16 the stream would like.
    let pool =
        BufferPool::new(smgr, PoolConfig::new(64, PageFormat::Native).max_readers(8)).unwrap();
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        0..300,
    );
    let mut most = 0;
    let mut count = 0;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        most = most.max(stream.pinned() + 1);
        assert_eq!(*buffer.read().unwrap(), page(5, buffer.tag().block)[..]);
        count += 1;
    }
    assert_eq!(count, 300);
    assert!(most <= 8 + 1, "the stream held {most} pins");
}

/// Every frame of the pool can be pinned at once by someone else.
async fn all_frames_free(pool: &BufferPool, rel: smgr_api::RelFileLocator, frames: u32) {
    let mut held = Vec::new();
    for block in 200..200 + frames {
        let buffer = tokio::time::timeout(
            Duration::from_secs(10),
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal),
        )
        .await
        .expect("hung")
        .unwrap_or_else(|err| panic!("pin {} of {frames}: {err}", block - 200));
        held.push(buffer);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_drop_release_every_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 300, 6).await;
    let frames = 48;
    let pool = BufferPool::new(
        smgr.clone(),
        PoolConfig::new(frames, PageFormat::Native).max_readers(1),
    )
    .unwrap();
    let config = StreamConfig::default().max_ios(4);
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        config,
        StreamFlags {
            full: true,
            ..StreamFlags::default()
        },
        0..150,
    );
    for _ in 0..5 {
        stream.next_buffer().await.unwrap().unwrap();
    }
    assert!(stream.pinned() > 1, "the stream should be reading ahead");
    stream.reset().await;
    assert_eq!(stream.pinned(), 0);
    all_frames_free(&pool, rel, frames as u32).await;

    // Reads held in the storage manager when the stream is dropped.
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        config,
        StreamFlags {
            full: true,
            ..StreamFlags::default()
        },
        0..150,
    );
    stream.next_buffer().await.unwrap().unwrap();
    smgr.hold_reads();
    let _ = tokio::time::timeout(Duration::from_millis(50), async {
        while let Ok(Some(_)) = stream.next_buffer().await {}
    })
    .await;
    drop(stream);
    smgr.release_reads();
    // Aborted read tasks drop their pins as soon as they are polled.
    let mut waited = Duration::ZERO;
    loop {
        let attempt = async {
            let mut held = Vec::new();
            for block in 200..200 + frames as u32 {
                held.push(
                    pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                        .await?,
                );
            }
            Ok::<_, bufmgr::Error>(held.len())
        };
        match attempt.await {
            Ok(n) => {
                assert_eq!(n, frames);
                break;
            }
            Err(err) if waited < Duration::from_secs(5) => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(10)).await;
                waited += Duration::from_millis(10);
            }
            Err(err) => panic!("pins still held after dropping the stream: {err}"),
        }
    }
}
