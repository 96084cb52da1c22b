//! Scanning a 256 MiB relation in an object store whose every GET costs
//! 20 ms (`object_store`'s `ThrottledStore` over the in-memory store), side
//! by side in one run:
//!
//! - a stream (1 MiB combine limit, 16 reads in flight) through the pool;
//! - the one-block-at-a-time `read_buffer` loop (timed over its first 100
//!   blocks and extrapolated: the whole loop would take 11 minutes);
//! - `object_store`'s own `get_ranges` over the same 1 MiB ranges;
//! - the bound `max_ios × combine / latency`.
//!
//! Also GETs per MiB read and what prefetch saved. A bench binary, not
//! criterion: one scan takes seconds.
//!
//! `cargo bench -p smgr-object --bench latency_scan`

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::ObjectStore;
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr};
use smgr_object::testing::FaultyStore;
use smgr_object::{ObjectOptions, ObjectSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const BLOCKS: u32 = 32768; // 256 MiB of 8 KiB blocks
const LATENCY: Duration = Duration::from_millis(20);
const COMBINE: usize = 1 << 20;
const MAX_IOS: usize = 16;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let rel = RelFileLocator::in_database(5, 16396);
    // Load without latency; 1 GiB segments as PostgreSQL writes them.
    let loader = ObjectSmgr::new(memory.clone(), "bench", ObjectOptions::default()).unwrap();
    loader.create(rel, MAIN).await.unwrap();
    let verifier = PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT);
    let template = pattern_page(8192, 1, 0);
    let pages: Vec<PageBuf> = (0..BLOCKS)
        .map(|block| {
            let mut page = PageBuf::copy_from(&template);
            page[8..12].copy_from_slice(&block.to_le_bytes());
            verifier.set_checksum(&mut page, block);
            page
        })
        .collect();
    loader.extend(rel, MAIN, 0, pages).await.unwrap();

    let throttle = ThrottleConfig {
        wait_get_per_call: LATENCY,
        wait_list_per_call: LATENCY,
        ..ThrottleConfig::default()
    };
    let slow = Arc::new(FaultyStore::new(Arc::new(ThrottledStore::new(
        memory.clone(),
        throttle,
    ))));
    let smgr = Arc::new(ObjectSmgr::new(slow.clone(), "bench", ObjectOptions::default()).unwrap());
    smgr.nblocks(rel, MAIN).await.unwrap(); // the LIST, outside the timing
    let mib = f64::from(BLOCKS) * 8192.0 / (1024.0 * 1024.0);

    // One block at a time, sampled.
    let pool = BufferPool::new(smgr.clone(), PoolConfig::new(40000, PageFormat::Native)).unwrap();
    let sample = 100u32;
    let start = Instant::now();
    for block in 0..sample {
        drop(
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                .await
                .unwrap(),
        );
    }
    let one_block = start.elapsed().as_secs_f64() / f64::from(sample) * f64::from(BLOCKS);
    drop(pool);

    // The stream.
    let pool = BufferPool::new(
        smgr.clone(),
        PoolConfig::new(40000, PageFormat::Native).max_readers(1),
    )
    .unwrap();
    let gets_before = slow.counts();
    let config = StreamConfig::default()
        .io_combine_bytes(COMBINE)
        .max_ios(MAX_IOS)
        .remote_max_ios(MAX_IOS);
    let start = Instant::now();
    let mut stream = ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..BLOCKS);
    let mut n = 0u32;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        drop(buffer);
        n += 1;
    }
    let streamed = start.elapsed().as_secs_f64();
    assert_eq!(n, BLOCKS);
    let counts = slow.counts();
    let gets = counts.gets - gets_before.gets;
    let stats = stream.stats();

    // object_store's get_ranges over the same 1 MiB ranges.
    let ranges: Vec<std::ops::Range<u64>> = (0..(BLOCKS as u64 * 8192))
        .step_by(COMBINE)
        .map(|s| s..s + COMBINE as u64)
        .collect();
    let path = Path::from("bench/base/5/16396");
    let start = Instant::now();
    let got = slow.get_ranges(&path, &ranges).await.unwrap();
    let get_ranges = start.elapsed().as_secs_f64();
    assert_eq!(got.len(), ranges.len());

    let bound = (MAX_IOS * COMBINE) as f64 / LATENCY.as_secs_f64() / (1024.0 * 1024.0);
    println!(
        "256 MiB relation, {} ms per GET, stream: {} KiB combine, {MAX_IOS} reads in flight",
        LATENCY.as_millis(),
        COMBINE / 1024
    );
    println!("| what | time | MiB/s | ratio |");
    println!("|---|---|---|---|");
    println!("| one block at a time (extrapolated from {sample} blocks) | {one_block:.1} s | {:.1} | 1.00 |", mib / one_block);
    println!(
        "| stream | {streamed:.2} s | {:.1} | {:.0}x faster |",
        mib / streamed,
        one_block / streamed
    );
    println!("| object_store get_ranges, same 1 MiB ranges, one call | {get_ranges:.2} s | {:.1} | stream {:.2}x its speed |", mib / get_ranges, get_ranges / streamed);
    println!(
        "| bound max_ios x combine / latency | | {bound:.1} | stream at {:.0}% |",
        100.0 * (mib / streamed) / bound
    );
    println!("GETs: {gets} for {mib:.0} MiB = {:.2} per MiB; stream reads {}, advice {}, prefetch bytes fetched once and reused: {} MiB",
        gets as f64 / mib, stats.reads, stats.advice, (counts.get_bytes - gets_before.get_bytes) / (1 << 20));
}
