//! Hedged GETs: a read whose first byte is late is issued once more and
//! the first answer wins. A stalled GET then costs about the hedge
//! threshold, not the stall; the stalled request, dropped, leaves nothing
//! behind; and both requests are pinned to the same object version, so a
//! read never returns bytes of two versions, even when the object is
//! replaced between the first request and its hedge.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use object_store::ObjectStore;
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt};
use smgr_object::testing::{Latency, LatencyStore};
use smgr_object::{ObjectOptions, ObjectSmgr};

const MAIN: ForkNumber = ForkNumber::Main;
const BS: usize = 1024;

fn options() -> ObjectOptions {
    ObjectOptions::new(BlockSize::new(BS as u32).unwrap(), 64)
        .hedge_after(Some(Duration::from_millis(100)))
}

async fn write(smgr: &ObjectSmgr, rel: RelFileLocator, tag: u32) {
    let pages = (0..32)
        .map(|b| PageBuf::copy_from(&pattern_page(BS, tag, b)))
        .collect();
    smgr.writev(rel, MAIN, 0, pages).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_get_is_hedged_and_leaves_nothing_behind() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let writer = ObjectSmgr::new(memory.clone(), "h", options()).unwrap();
    let rel = RelFileLocator::in_database(5, 16396);
    writer.create(rel, MAIN).await.unwrap();
    writer.zero_extend(rel, MAIN, 0, 32).await.unwrap();
    write(&writer, rel, 1).await;

    // Every second GET (the first, third, …) stalls for 3 s.
    let timing = Latency {
        first_byte: Duration::from_millis(5),
        stall_every: Some(2),
        stall: Duration::from_secs(3),
        ..Latency::default()
    };
    let slow = Arc::new(LatencyStore::new(memory.clone(), timing));
    let reader = ObjectSmgr::new(slow.clone(), "h", options()).unwrap();
    reader.nblocks(rel, MAIN).await.unwrap();
    let started = Instant::now();
    for first in [0, 8, 16, 24] {
        let bytes = reader.read_to_vec(rel, MAIN, first, 8).await.unwrap();
        for (i, page) in bytes.chunks(BS).enumerate() {
            assert!(
                page == pattern_page(BS, 1, first + i as u32),
                "block {}",
                first + i as u32
            );
        }
    }
    let took = started.elapsed();
    let stats = reader.stats();
    assert!(stats.hedged >= 1 && stats.hedges_won >= 1, "{stats:?}");
    assert!(
        took < Duration::from_secs(2),
        "four reads took {took:?}: a stall was waited out"
    );
    // The stalled requests were dropped when their hedges won: none is
    // still in flight, none delivered anything.
    let counts = slow.counts();
    assert!(counts.stalls >= 1 && counts.abandoned >= 1, "{counts:?}");
    assert_eq!(counts.in_flight, 0, "{counts:?}");

    // Hedging off: the stall is waited out.
    let slow = Arc::new(LatencyStore::new(memory, timing));
    let patient = ObjectSmgr::new(slow, "h", options().hedge_after(None)).unwrap();
    patient.nblocks(rel, MAIN).await.unwrap();
    let started = Instant::now();
    for first in [0, 8] {
        patient.read_to_vec(rel, MAIN, first, 8).await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "no stall met without hedging"
    );
    assert_eq!(patient.stats().hedged, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedge_never_mixes_object_versions() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let writer = ObjectSmgr::new(memory.clone(), "v", options()).unwrap();
    let rel = RelFileLocator::in_database(5, 16397);
    writer.create(rel, MAIN).await.unwrap();
    writer.zero_extend(rel, MAIN, 0, 32).await.unwrap();
    write(&writer, rel, 1).await;

    // The reader's first GET stalls for a second; its hedge goes out at
    // 100 ms; the object is replaced at about 20 ms, between the two.
    let stalling = Arc::new(LatencyStore::new(
        memory,
        Latency {
            stall_every: Some(1_000_000),
            stall: Duration::from_secs(1),
            ..Latency::default()
        },
    ));
    let reader = ObjectSmgr::new(stalling.clone(), "v", options()).unwrap();
    reader.nblocks(rel, MAIN).await.unwrap();
    let read = tokio::spawn({
        let reader = reader.clone();
        async move { reader.read_to_vec(rel, MAIN, 0, 32).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    write(&writer, rel, 2).await;
    let bytes = read.await.unwrap().unwrap();
    let tags: Vec<u32> = bytes
        .chunks(BS)
        .enumerate()
        .map(|(i, page)| {
            let block = i as u32;
            if page == pattern_page(BS, 1, block) {
                1
            } else if page == pattern_page(BS, 2, block) {
                2
            } else {
                panic!("block {block} is neither version")
            }
        })
        .collect();
    assert!(
        tags.iter().all(|&t| t == tags[0]),
        "one read returned two versions: {tags:?}"
    );
    assert!(reader.stats().hedged >= 1, "{:?}", reader.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reads_under_a_pool_leave_it_quiet() {
    use bufmgr::{BufferPool, PoolConfig};
    use smgr_api::PageFormat;
    use streamread::{ReadStream, StreamConfig, StreamFlags};

    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let writer = ObjectSmgr::new(memory.clone(), "p", options()).unwrap();
    let rel = RelFileLocator::in_database(5, 16398);
    writer.create(rel, MAIN).await.unwrap();
    writer.zero_extend(rel, MAIN, 0, 32).await.unwrap();
    // Pages the pool verifies: checksummed in its format.
    let verifier =
        smgr_api::PageVerifier::new(PageFormat::Native, BlockSize::new(BS as u32).unwrap());
    let checked = |block: u32| {
        let mut page = pattern_page(BS, 4, block);
        verifier.set_checksum(&mut page, block);
        page
    };
    let pages = (0..32).map(|b| PageBuf::copy_from(&checked(b))).collect();
    writer.writev(rel, MAIN, 0, pages).await.unwrap();
    // One GET in three stalls for 2 s; reads of 4 blocks, 4 in flight.
    let slow = Arc::new(LatencyStore::new(
        memory,
        Latency {
            first_byte: Duration::from_millis(2),
            stall_every: Some(3),
            stall: Duration::from_secs(2),
            ..Latency::default()
        },
    ));
    let reader = Arc::new(ObjectSmgr::new(slow.clone(), "p", options()).unwrap());
    let pool = BufferPool::new(reader.clone(), PoolConfig::new(64, PageFormat::Native)).unwrap();
    let config = StreamConfig::default()
        .io_combine_bytes(4 * BS)
        .remote_max_ios(4);
    let started = Instant::now();
    let mut stream = ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..32);
    let mut next = 0;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        assert_eq!(buffer.tag().block, next);
        assert!(*buffer.read().unwrap() == checked(next)[..], "block {next}");
        next += 1;
    }
    drop(stream);
    assert_eq!(next, 32);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a stall was waited out"
    );
    assert!(reader.stats().hedged >= 1, "{:?}", reader.stats());
    // The stalled GETs that lost were dropped: nothing of theirs is in
    // flight, and no frame is pinned, lent or in I/O.
    assert_eq!(slow.counts().in_flight, 0, "{:?}", slow.counts());
    assert!(pool.census().is_quiet(), "{:?}", pool.census());
}
