//! Advice goes out for runs that are not sequential, and for sequential
//! ones only where the backend has no read-ahead of its own; not for small
//! runs while small reads keep finding their pages cached; the
//! `sequential` flag suppresses it. The look-ahead settles at one block
//! for a fully cached scan and keeps reading ahead when hits and misses
//! alternate. Per-buffer data arrives with its buffer; prewarm fills the
//! pool.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use bufmgr::ReadBufferMode;
use common::*;
use smgr_api::testkit::{FaultySmgr, MemSmgr};
use smgr_api::{BlockSize, PageBuf, Smgr};
use streamread::{prewarm, ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_follows_the_backends_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (local, rel) = relation(dir.path(), 200, 9).await;
    assert!(local.reads_ahead_sequentially());
    // Local files, sequential: only the first run (nothing before it).
    let pool_local = pool(local.clone(), 512);
    let mut stream = ReadStream::range(
        &pool_local,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        0..160,
    );
    drain(&mut stream, 9).await;
    assert_eq!(stream.stats().advice, 1, "{:?}", stream.stats());
    // Local files, every 4th block, pages in the kernel's cache (just
    // written): the first runs are advised, then, once small reads keep
    // finding their pages cached, no more.
    let pool_local = pool(local.clone(), 512);
    let mut stream = ReadStream::from_blocks(
        &pool_local,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        (0..200).step_by(4),
    );
    drain(&mut stream, 9).await;
    let advice = stream.stats().advice;
    assert!((1..=10).contains(&advice), "{:?}", stream.stats());
    // Reads that have to wait (each I/O yields before it completes): every
    // run is advised.
    let waiting = Arc::new(FaultySmgr::new(local.clone()));
    waiting.yield_in_io(true);
    let pool_waiting = pool(waiting, 512);
    let mut stream = ReadStream::from_blocks(
        &pool_waiting,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        (0..200).step_by(4),
    );
    drain(&mut stream, 9).await;
    assert_eq!(stream.stats().advice, 50);
    // The sequential flag: none.
    let pool_local = pool(local.clone(), 512);
    let flags = StreamFlags {
        sequential: true,
        ..StreamFlags::default()
    };
    let mut stream = ReadStream::from_blocks(
        &pool_local,
        rel,
        MAIN,
        StreamConfig::default(),
        flags,
        (0..200).step_by(4),
    );
    drain(&mut stream, 9).await;
    assert_eq!(stream.stats().advice, 0);

    // A backend without read-ahead (as an object store): sequential runs
    // are advised too.
    let remote = Arc::new(FaultySmgr::new(Arc::new(MemSmgr::new(BlockSize::DEFAULT))));
    assert!(!remote.reads_ahead_sequentially());
    remote.create(rel, MAIN).await.unwrap();
    let pages = (0..160).map(|b| PageBuf::copy_from(&page(9, b))).collect();
    remote.extend(rel, MAIN, 0, pages).await.unwrap();
    let pool_remote = pool(remote.clone(), 512);
    let mut stream = ReadStream::range(
        &pool_remote,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        0..160,
    );
    drain(&mut stream, 9).await;
    let stats = stream.stats();
    assert_eq!(stats.advice, stats.reads, "{stats:?}");
    assert_eq!(stats.reads, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distance_settles_for_hits_and_holds_for_alternation() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 400, 10).await;
    let pool = pool(smgr.clone(), 1024);
    assert_eq!(prewarm(&pool, rel, MAIN, 0, 199).await.unwrap(), 200);
    // Fully cached: after a while only the next block is pinned ahead.
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        0..200,
    );
    let mut late_pins = 0;
    for i in 0..200 {
        let (buffer, ()) = stream.next_buffer().await.unwrap().unwrap();
        assert_eq!(buffer.tag().block, i);
        if i >= 150 {
            late_pins = late_pins.max(stream.pinned());
        }
    }
    let stats = stream.stats();
    assert_eq!((stats.hits, stats.reads), (200, 0));
    assert!(late_pins <= 1, "a cached scan still pins {late_pins} ahead");

    // Alternating: every other block of 200..400 cached.
    for block in (200..400).step_by(2) {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        200..400,
    );
    let mut ahead = Vec::new();
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        assert_eq!(*buffer.read().unwrap(), page(10, buffer.tag().block)[..]);
        ahead.push(stream.pinned());
    }
    let late: usize = ahead[100..].iter().sum::<usize>() / ahead[100..].len();
    assert!(
        late >= 8,
        "alternating hits and misses collapsed the look-ahead to {late}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_buffer_data_travels_with_its_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 64, 11).await;
    let pool = pool(smgr, 256);
    #[derive(Default)]
    struct Item {
        block: u32,
        label: String,
    }
    let order = [5u32, 6, 7, 1, 40, 41, 3, 3, 63];
    let mut i = 0;
    let mut stream = ReadStream::new(
        &pool,
        rel,
        MAIN,
        StreamConfig::default().max_ios(2),
        StreamFlags::default(),
        move |item: &mut Item| {
            let block = *order.get(i)?;
            *item = Item {
                block,
                label: format!("item {i}"),
            };
            i += 1;
            Some(block)
        },
    );
    let mut n = 0;
    while let Some((buffer, item)) = stream.next_buffer().await.unwrap() {
        assert_eq!(buffer.tag().block, item.block);
        assert_eq!(item.label, format!("item {n}"));
        n += 1;
    }
    assert_eq!(n, order.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarm_reads_a_range_into_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 100, 12).await;
    let pool = pool(smgr.clone(), 256);
    assert_eq!(prewarm(&pool, rel, MAIN, 10, 89).await.unwrap(), 80);
    assert_eq!(prewarm(&pool, rel, MAIN, 5, 4).await.unwrap(), 0);
    let before = pool.stats();
    for block in 10..90 {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    assert_eq!(pool.stats().hits - before.hits, 80);
    assert!(
        prewarm(&pool, rel, MAIN, 95, 120).await.is_err(),
        "prewarm past the end must fail"
    );
    let calls = smgr.reads();
    assert!(
        calls.iter().all(|c| c.count <= 16) && calls.len() >= 5,
        "{calls:?}"
    );
}
