//! `read_with` reads a page without pin or lock, and never returns what it
//! read from a page a writer was changing, or from a frame that was losing
//! its page: a writer keeps bytes 100..4100 of four pages equal (changing
//! them in two halves under the exclusive lock), an evictor keeps pushing
//! those pages out of a tiny pool, and two optimistic readers check that
//! every answer they get has all of those bytes equal. A page not in the
//! pool is read in (the pinned fallback).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bufmgr::ReadBufferMode;
use common::*;

const SPAN: std::ops::Range<usize> = 100..4100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimistic_reads_never_see_a_torn_page() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 40, 41).await;
    let pool = pool(smgr, 12);
    // Not in the pool yet: read in through the fallback.
    let first = pool
        .read_with(rel, MAIN, 0, ReadBufferMode::Normal, |page| page.to_vec())
        .await
        .unwrap();
    assert_eq!(first, page(41, 0));
    for block in 0..4 {
        let buffer = pool.read_for_update(rel, MAIN, block).await.unwrap();
        let mut page = buffer.write().unwrap();
        page[SPAN].fill(0);
        page.mark_dirty();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut value = 0u8;
            while !stop.load(Ordering::Relaxed) {
                value = value.wrapping_add(1);
                let buffer = pool
                    .read_for_update(rel, MAIN, u32::from(value % 4))
                    .await
                    .unwrap();
                let mut page = buffer.write().unwrap();
                let half = (SPAN.start + SPAN.end) / 2;
                page[SPAN.start..half].fill(value);
                // Long enough between the halves for readers to run into it.
                for i in 0..2000u32 {
                    std::hint::black_box(i);
                }
                page[half..SPAN.end].fill(value);
                page.mark_dirty();
                drop(page);
                drop(buffer);
                tokio::task::yield_now().await;
            }
        })
    };
    let evictor = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut block = 4;
            while !stop.load(Ordering::Relaxed) {
                block = if block >= 39 { 4 } else { block + 1 };
                drop(
                    pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                        .await
                        .unwrap(),
                );
                tokio::task::yield_now().await;
            }
        })
    };
    let readers: Vec<_> = (0..2u32)
        .map(|r| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut reads = 0u64;
                for i in 0..20_000u32 {
                    let block = (i + r) % 4;
                    let whole = pool
                        .read_with(rel, MAIN, block, ReadBufferMode::Normal, |page| {
                            let mut bytes = vec![0u8; SPAN.len()];
                            page.read_into(SPAN.start, &mut bytes).unwrap();
                            bytes.iter().all(|&b| b == bytes[0])
                        })
                        .await
                        .unwrap();
                    assert!(whole, "reader {r}: a torn page of block {block}");
                    reads += 1;
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                reads
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), 20_000);
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    evictor.await.unwrap();
    pool.flush_all().await.unwrap();
    assert!(pool.census().is_quiet(), "{:?}", pool.census());
}
