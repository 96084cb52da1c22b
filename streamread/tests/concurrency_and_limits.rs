//! Reads are really in flight at the same time (not merely advised): with
//! the storage manager holding every read, several `readv` calls arrive
//! before any completes, up to `max_ios`; the maintenance setting governs
//! maintenance streams. A 1 MiB combine limit gives 128-block reads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use smgr_api::testkit::{FaultySmgr, MemSmgr};
use smgr_api::{BlockSize, PageBuf, Smgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

/// How many reads reach the storage manager while all are held.
async fn reads_in_flight(config: StreamConfig, flags: StreamFlags) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 512, 20).await;
    let pool = pool(smgr.clone(), 2048);
    smgr.hold_reads();
    // Gaps between 4-block groups: every group is its own read.
    let blocks: Vec<u32> = (0..512).filter(|b| b % 8 < 4).collect();
    let mut stream = ReadStream::from_blocks(&pool, rel, MAIN, config, flags, blocks.clone());
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
            seen.push(buffer.tag().block);
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let in_flight = smgr.reads().len();
    smgr.release_reads();
    assert_eq!(reader.await.unwrap(), blocks);
    in_flight
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_overlap_up_to_max_ios() {
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let many = reads_in_flight(StreamConfig::default().max_ios(8), flags).await;
    assert!(
        (4..=8).contains(&many),
        "{many} reads in flight with max_ios 8"
    );
    let one = reads_in_flight(StreamConfig::default().max_ios(1), flags).await;
    assert_eq!(one, 1);
    let sync = reads_in_flight(StreamConfig::default().max_ios(0), flags).await;
    assert_eq!(sync, 1, "a synchronous stream reads one run at a time");
    let maintenance = StreamFlags {
        full: true,
        maintenance: true,
        ..StreamFlags::default()
    };
    let limited = reads_in_flight(
        StreamConfig::default().max_ios(8).maintenance_max_ios(2),
        maintenance,
    )
    .await;
    assert_eq!(limited, 2, "maintenance streams use maintenance_max_ios");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mebibyte_combine_limit_gives_128_block_reads() {
    let smgr = Arc::new(FaultySmgr::new(Arc::new(MemSmgr::new(BlockSize::DEFAULT))));
    let rel = smgr_api::RelFileLocator::in_database(5, 1);
    smgr.create(rel, MAIN).await.unwrap();
    let pages = (0..400).map(|b| PageBuf::copy_from(&page(21, b))).collect();
    smgr.extend(rel, MAIN, 0, pages).await.unwrap();
    let pool = bufmgr::BufferPool::new(
        smgr.clone(),
        bufmgr::PoolConfig::new(4096, smgr_api::PageFormat::Native).max_readers(1),
    )
    .unwrap();
    let config = StreamConfig::default().io_combine_bytes(1024 * 1024);
    let mut stream = ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..400);
    assert_eq!(drain(&mut stream, 21).await.len(), 400);
    // Runs execute as concurrent tasks: compare sizes, not their order.
    let mut sizes: Vec<usize> = smgr.reads().iter().map(|r| r.count).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![16, 128, 128, 128], "{sizes:?}");
}
