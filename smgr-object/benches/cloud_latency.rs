//! Reads at cloud latency, in process: `LatencyStore` over the in-memory
//! store, every request waiting 20 ms for its first byte and a GET's body
//! arriving at 60 MiB/s (one S3 request's typical bandwidth), side by side
//! in one run:
//!
//! - a 1 GiB relation scanned by one stream (1 MiB reads, 64 and 256 in
//!   flight) against the bound `in-flight × 60 MiB/s` and against the
//!   same scan with no latency at all (the CPU's ceiling);
//! - the same with one GET in 50 stalled for 2 s, hedging on (and off);
//! - 10,000 one-block relations read by 64 tasks against the bound
//!   `count × 20 ms / 64`;
//! - the peak bytes in flight and the process's peak memory.
//!
//! `cargo bench -p smgr-object --bench cloud_latency`

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageFormat, PageVerifier, RelFileLocator, Smgr};
use smgr_object::testing::{Latency, LatencyStore};
use smgr_object::{ObjectOptions, ObjectSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const BIG_BLOCKS: u32 = 131072; // 1 GiB of 8 KiB blocks: one segment
const SMALL_RELATIONS: u32 = 10_000;
const FIRST_BYTE: Duration = Duration::from_millis(20);
const PER_REQUEST: u64 = 60 << 20; // bytes per second
const COMBINE: usize = 1 << 20;
const TASKS: usize = 64;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn page(block: u32) -> Vec<u8> {
    let verifier = PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT);
    let mut page = pattern_page(8192, 1, 0);
    page[8..12].copy_from_slice(&block.to_le_bytes());
    verifier.set_checksum(&mut page, block);
    page
}

fn latency(stall_every: Option<u64>) -> Latency {
    Latency {
        first_byte: FIRST_BYTE,
        bytes_per_second: Some(PER_REQUEST),
        stall_every,
        stall: Duration::from_secs(2),
    }
}

/// Scans the big relation once; (seconds, GETs, hedged, peak bytes in
/// flight).
async fn scan(
    memory: &Arc<dyn ObjectStore>,
    latency: Latency,
    hedge: bool,
    depth: usize,
) -> (f64, u64, u64, u64) {
    let slow = Arc::new(LatencyStore::new(memory.clone(), latency));
    let mut options = ObjectOptions::default();
    if !hedge {
        options = options.hedge_after(None);
    }
    let smgr = Arc::new(ObjectSmgr::new(slow, "bench", options).unwrap());
    let rel = RelFileLocator::in_database(5, 16396);
    smgr.nblocks(rel, MAIN).await.unwrap();
    // One reader: the stream may pin (DEPTH + 1) reads' worth (the
    // pool's per-reader share would otherwise cut its depth).
    let frames = (depth + 2) * (COMBINE / 8192);
    let config = PoolConfig::new(frames, PageFormat::Native).max_readers(1);
    let pool = BufferPool::new(smgr.clone(), config).unwrap();
    let config = StreamConfig::default()
        .io_combine_bytes(COMBINE)
        .remote_max_ios(depth);
    let started = Instant::now();
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        config,
        StreamFlags::default(),
        0..BIG_BLOCKS,
    );
    let mut blocks = 0u32;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        assert_eq!(buffer.tag().block, blocks);
        blocks += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(blocks, BIG_BLOCKS);
    let stats = smgr.stats();
    (
        seconds,
        stats.gets,
        stats.hedged,
        stats.peak_bytes_in_flight,
    )
}

async fn small_relations(memory: &Arc<dyn ObjectStore>) -> f64 {
    let slow = Arc::new(LatencyStore::new(memory.clone(), latency(None)));
    let smgr = Arc::new(ObjectSmgr::new(slow, "small", ObjectOptions::default()).unwrap());
    // One LIST learns every fork of the directory, outside the timing.
    smgr.nblocks(RelFileLocator::in_database(5, 20000), MAIN)
        .await
        .unwrap();
    let pool = BufferPool::new(smgr.clone(), PoolConfig::new(4096, PageFormat::Native)).unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS as u32 {
        let pool = pool.clone();
        tasks.spawn(async move {
            let mut n = task;
            while n < SMALL_RELATIONS {
                let rel = RelFileLocator::in_database(5, 20000 + n);
                let buffer = pool
                    .read_buffer(rel, MAIN, 0, ReadBufferMode::Normal)
                    .await
                    .unwrap();
                drop(buffer);
                n += TASKS as u32;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    started.elapsed().as_secs_f64()
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn run() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    // The big relation as one 1 GiB segment object, put directly.
    let mut big = Vec::with_capacity(BIG_BLOCKS as usize * 8192);
    for block in 0..BIG_BLOCKS {
        big.extend_from_slice(&page(block));
    }
    memory
        .put(
            &Path::from("bench/base/5/16396"),
            PutPayload::from(Bytes::from(big)),
        )
        .await
        .unwrap();
    for n in 0..SMALL_RELATIONS {
        let key = Path::from(format!("small/base/5/{}", 20000 + n));
        memory.put(&key, PutPayload::from(page(0))).await.unwrap();
    }

    let request_seconds = FIRST_BYTE.as_secs_f64() + COMBINE as f64 / PER_REQUEST as f64;
    let mib = f64::from(BIG_BLOCKS) * 8192.0 / f64::from(1 << 20);
    println!("20 ms to first byte, 60 MiB/s per request; stream: 1 MiB reads; 2 worker threads");
    println!("| what | time | MiB/s | against |");
    println!("|---|---|---|---|");
    let (cpu, _, _, _) = scan(&memory, Latency::default(), true, 64).await;
    println!(
        "| 1 GiB scan, no latency at all (the CPU's ceiling: copy and checksum) | {cpu:.2} s | {:.0} | |",
        mib / cpu
    );
    for depth in [64usize, 256] {
        let bound = (depth * COMBINE) as f64 / request_seconds / f64::from(1 << 20);
        let (plain, gets, _, peak) = scan(&memory, latency(None), true, depth).await;
        println!(
            "| 1 GiB scan, {depth} reads in flight | {plain:.2} s | {:.0} | bound {bound:.0} MiB/s ({depth} x 1 MiB per {:.1} ms): {:.2}; the CPU's ceiling: {:.2} |",
            mib / plain,
            request_seconds * 1000.0,
            mib / plain / bound,
            cpu / plain
        );
        let (stalled, _, hedged, _) = scan(&memory, latency(Some(50)), true, depth).await;
        println!(
            "| the same, 1 GET in 50 stalled 2 s, hedging on | {stalled:.2} s | {:.0} | no stalls: {:.2}x the time; {hedged} GETs hedged |",
            mib / stalled,
            stalled / plain
        );
        if depth == 256 {
            let (off, _, _, _) = scan(&memory, latency(Some(50)), false, depth).await;
            println!(
                "| the same, hedging off | {off:.2} s | {:.0} | no stalls: {:.2}x the time |",
                mib / off,
                off / plain
            );
        }
        println!(
            "| (GETs {gets}, peak bytes in flight {:.0} MiB) | | | |",
            peak as f64 / f64::from(1 << 20)
        );
    }
    let small = small_relations(&memory).await;
    let small_bound = f64::from(SMALL_RELATIONS) * FIRST_BYTE.as_secs_f64() / TASKS as f64;
    println!(
        "| 10,000 one-block relations, {TASKS} tasks | {small:.2} s | | bound {small_bound:.2} s: {:.2} |",
        small_bound / small
    );
    println!(
        "peak memory of the process {:.0} MiB (the store holds 1.1 GiB of it; the bytes-in-flight cap is 256 MiB)",
        peak_rss_mib()
    );
}
