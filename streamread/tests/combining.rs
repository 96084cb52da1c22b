//! Consecutive misses are combined into reads of up to the combine limit,
//! and a read never spans a gap, a hit, or more than the limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_misses_become_full_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 100, 3).await;
    let pool = pool(smgr.clone(), 512);
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        0..100,
    );
    assert_eq!(drain(&mut stream, 3).await.len(), 100);
    // Reads run as concurrent tasks, so they are recorded in any order.
    let mut sizes: Vec<usize> = smgr.reads().iter().map(|r| r.count).collect();
    sizes.sort_unstable();
    // 100 blocks at 16 per read: six full reads and one of 4 (segment ends
    // are split inside the backend, not by the stream).
    assert_eq!(sizes, vec![4, 16, 16, 16, 16, 16, 16], "{:?}", smgr.reads());
    let stats = stream.stats();
    assert_eq!((stats.reads, stats.blocks_read, stats.hits), (7, 100, 0));
    assert_eq!(stats.read_sizes[4], 6, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_cross_gaps_hits_or_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 64, 4).await;
    let pool = pool(smgr.clone(), 512);
    pool.read_buffer(rel, MAIN, 10, ReadBufferMode::Normal)
        .await
        .unwrap();
    smgr.clear_reads();
    let blocks: Vec<u32> = (0..20)
        .chain(30..33)
        .chain((40..50).rev())
        .chain(50..64)
        .collect();
    let config = StreamConfig::default().io_combine_bytes(8 * BS);
    let mut stream = ReadStream::from_blocks(
        &pool,
        rel,
        MAIN,
        config,
        StreamFlags::default(),
        blocks.clone(),
    );
    assert_eq!(drain(&mut stream, 4).await, blocks);
    let mut read_blocks = Vec::new();
    for call in smgr.reads() {
        assert!(call.count <= 8, "read over the limit: {call:?}");
        let run: Vec<u32> = (call.first..call.first + call.count as u32).collect();
        // A run is consecutive in the source order too.
        let at = blocks.iter().position(|&b| b == call.first).unwrap();
        assert_eq!(
            &blocks[at..at + run.len()],
            &run[..],
            "read {call:?} spans a gap"
        );
        assert!(
            !run.contains(&10),
            "read {call:?} includes the cached block"
        );
        read_blocks.extend(run);
    }
    read_blocks.sort_unstable();
    let mut expected: Vec<u32> = blocks.iter().copied().filter(|&b| b != 10).collect();
    expected.sort_unstable();
    assert_eq!(read_blocks, expected, "every miss read exactly once");
}
