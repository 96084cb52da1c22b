//! Sequential reads grow into large requests: a stream reading a relation
//! in 128 KiB runs gets its pages in order, right, from a handful of GETs
//! of up to 8 MiB that read ahead of it, each byte fetched once, and
//! nothing left behind. Read-ahead belongs to one object version: after
//! the object is replaced, what was read ahead of the old one is never
//! served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;
use std::time::Duration;

use bufmgr::{BufferPool, PoolConfig};
use object_store::memory::InMemory;
use object_store::ObjectStore;
use smgr_api::testkit::pattern_page;
use smgr_api::{
    BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr, SmgrExt,
};
use smgr_object::testing::{Latency, LatencyStore};
use smgr_object::{ObjectOptions, ObjectSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;

/// Page `block` of the big relation, with a checksum the pool accepts.
fn checksummed(block: u32) -> Vec<u8> {
    let mut page = pattern_page(8192, 9, 0);
    page[8..12].copy_from_slice(&block.to_le_bytes());
    PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT).set_checksum(&mut page, block);
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_stream_reads_through_few_large_gets() {
    const BS: usize = 8192;
    const BLOCKS: u32 = 8192; // 64 MiB, one segment object
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let options = ObjectOptions::new(BlockSize::DEFAULT, 131072);
    let writer = ObjectSmgr::new(memory.clone(), "big", options.clone()).unwrap();
    let rel = RelFileLocator::in_database(5, 16396);
    writer.create(rel, MAIN).await.unwrap();
    let pages = (0..BLOCKS)
        .map(|b| PageBuf::copy_from(&checksummed(b)))
        .collect();
    writer.extend(rel, MAIN, 0, pages).await.unwrap();

    let slow = Arc::new(LatencyStore::new(
        memory,
        Latency {
            first_byte: Duration::from_millis(2),
            bytes_per_second: Some(512 << 20),
            ..Latency::default()
        },
    ));
    let reader = Arc::new(ObjectSmgr::new(slow.clone(), "big", options).unwrap());
    let pool = BufferPool::new(
        reader.clone(),
        PoolConfig::new(2048, PageFormat::Native).max_readers(1),
    )
    .unwrap();
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        0..BLOCKS,
    );
    let mut next = 0u32;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        assert_eq!(buffer.tag().block, next, "out of order");
        assert!(
            *buffer.read().unwrap() == checksummed(next)[..],
            "block {next} wrong"
        );
        next += 1;
    }
    assert_eq!(next, BLOCKS);
    drop(stream);

    let stats = reader.stats();
    let total = u64::from(BLOCKS) * BS as u64;
    // One GET per 128 KiB run would be 512 of them.
    assert!(stats.gets <= 32, "{stats:?}");
    assert!(stats.bytes / stats.gets >= 1 << 20, "{stats:?}");
    // Every byte fetched once, nothing past the object's end.
    assert_eq!(stats.bytes, total, "{stats:?}");
    // Every window was read whole and left; no GET is still running.
    assert_eq!(stats.window_bytes, 0, "{stats:?}");
    assert!(stats.peak_window_bytes <= reader.options().prefetch_cache_bytes);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(slow.counts().in_flight, 0, "{:?}", slow.counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_read_ahead_of_a_replaced_object_is_not_served() {
    const BS: usize = 1024;
    const BLOCKS: u32 = 4096;
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let options = ObjectOptions::new(BlockSize::new(BS as u32).unwrap(), BLOCKS);
    let writer = ObjectSmgr::new(memory.clone(), "v", options.clone()).unwrap();
    let rel = RelFileLocator::in_database(5, 1);
    writer.create(rel, MAIN).await.unwrap();
    let version = |tag: u32| -> Vec<PageBuf> {
        (0..BLOCKS)
            .map(|b| PageBuf::copy_from(&pattern_page(BS, tag, b)))
            .collect()
    };
    writer.extend(rel, MAIN, 0, version(1)).await.unwrap();

    let reader = ObjectSmgr::new(memory, "v", options).unwrap();
    let check = |bytes: &[u8], first: u32, tag: u32| {
        for (i, page) in bytes.chunks(BS).enumerate() {
            let block = first + i as u32;
            assert!(
                page == pattern_page(BS, tag, block),
                "block {block}: not version {tag}"
            );
        }
    };
    // A plain sequential reader (no advice): its reads open windows ahead.
    for first in (0..1024).step_by(16) {
        let bytes = reader.read_to_vec(rel, MAIN, first, 16).await.unwrap();
        check(&bytes, first, 1);
    }
    let before = reader.stats();
    assert!(before.gets < 64 / 2, "no read-ahead: {before:?}");
    assert!(before.window_bytes > 0, "nothing read ahead: {before:?}");

    writer.writev(rel, MAIN, 0, version(2)).await.unwrap();
    reader.refresh();
    for first in (1024..BLOCKS).step_by(16) {
        let bytes = reader.read_to_vec(rel, MAIN, first, 16).await.unwrap();
        check(&bytes, first, 2);
    }
}
