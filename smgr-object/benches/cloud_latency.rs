//! Reads at cloud latency, in process: `LatencyStore` over the in-memory
//! store, every request waiting 20 ms for its first byte and a GET's body
//! arriving at 60 MiB/s (one S3 request's typical bandwidth), side by side
//! in one run:
//!
//! - a 1 GiB relation scanned by one stream with the defaults (128 KiB
//!   reads, 64 in flight; the backend's GETs growing to 8 MiB and running
//!   128 MiB ahead), against the bound `requests in flight × 60 MiB/s`
//!   and the same scan with no latency at all (the CPU's ceiling); against
//!   one GET per 128 KiB read (no read-ahead, as before); and 256 MiB
//!   ahead;
//! - the same with one GET in 50 stalled for 2 s, hedging on and off;
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

/// How one scan reads.
#[derive(Clone, Copy)]
struct Setup {
    /// Stream reads (`io_combine_limit`).
    combine: usize,
    /// Stream reads in flight.
    depth: usize,
    /// Largest GET (`max_request_bytes`).
    request: u64,
    /// `read_ahead_bytes`.
    ahead: u64,
    hedge: bool,
}

/// What one scan did.
struct Scanned {
    seconds: f64,
    stats: smgr_object::ObjectStats,
    most_gets: usize,
    peak_mib: f64,
}

/// Scans the big relation once.
async fn scan(memory: &Arc<dyn ObjectStore>, latency: Latency, setup: Setup) -> Scanned {
    let slow = Arc::new(LatencyStore::new(memory.clone(), latency));
    // A cap of its own per scan, so each peak is its own.
    let mut options = ObjectOptions::default()
        .max_bytes_in_flight(256 << 20)
        .max_request_bytes(setup.request)
        .read_ahead_bytes(setup.ahead);
    if !setup.hedge {
        options = options.hedge_after(None);
    }
    let smgr = Arc::new(ObjectSmgr::new(slow.clone(), "bench", options).unwrap());
    let rel = RelFileLocator::in_database(5, 16396);
    smgr.nblocks(rel, MAIN).await.unwrap();
    // One reader: the stream may pin (depth + 1) reads' worth (the
    // pool's per-reader share would otherwise cut its depth).
    let frames = (setup.depth + 2) * (setup.combine / 8192);
    let config = PoolConfig::new(frames, PageFormat::Native).max_readers(1);
    let pool = BufferPool::new(smgr.clone(), config).unwrap();
    let config = StreamConfig::default()
        .io_combine_bytes(setup.combine)
        .remote_max_ios(setup.depth);
    reset_peak_rss();
    let baseline = rss_mib();
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
    Scanned {
        seconds,
        stats: smgr.stats(),
        most_gets: slow.counts().most_in_flight,
        peak_mib: peak_rss_mib() - baseline,
    }
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
    status_mib("VmHWM:")
}

fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// A size line of /proc/self/status, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Starts the peak (VmHWM) again from what the process holds now.
fn reset_peak_rss() {
    // Linux: writing 5 to clear_refs resets the peak resident set size.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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

    let mib = f64::from(BIG_BLOCKS) * 8192.0 / f64::from(1 << 20);
    let per_request = PER_REQUEST as f64 / f64::from(1 << 20);
    println!("20 ms to first byte, 60 MiB/s per request, 1 in 50 GETs stalled 2 s where said; 2 worker threads");
    println!("| what | time | MiB/s | GETs (mean size) | most GETs at once | peak bytes in flight | peak windows | peak RSS over the start | against |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let row = |what: &str, r: &Scanned, against: String| {
        let s = &r.stats;
        println!(
            "| {what} | {:.2} s | {:.0} | {} ({:.2} MiB) | {} | {:.0} MiB | {:.0} MiB | {:.0} MiB | {against} |",
            r.seconds,
            mib / r.seconds,
            s.gets,
            s.bytes as f64 / s.gets.max(1) as f64 / f64::from(1 << 20),
            r.most_gets,
            s.peak_bytes_in_flight as f64 / f64::from(1 << 20),
            s.peak_window_bytes as f64 / f64::from(1 << 20),
            r.peak_mib,
        );
    };
    // The defaults a user gets: 128 KiB stream reads, 64 in flight,
    // requests growing to 8 MiB, 128 MiB read ahead.
    let default = Setup {
        combine: 128 << 10,
        depth: 64,
        request: 8 << 20,
        ahead: 128 << 20,
        hedge: true,
    };
    let cpu = scan(&memory, Latency::default(), default).await;
    row(
        "1 GiB scan, defaults, no latency at all (the CPU's ceiling)",
        &cpu,
        String::new(),
    );
    // Small requests: what this backend did before large requests (each
    // advised 128 KiB run one GET).
    let small_requests = Setup {
        request: 128 << 10,
        ahead: 0,
        ..default
    };
    let before = scan(&memory, latency(None), small_requests).await;
    let bound = 64.0 * 0.125 / (FIRST_BYTE.as_secs_f64() + 0.125 / per_request);
    row(
        "1 GiB scan, 128 KiB GETs (no read-ahead: as before)",
        &before,
        format!(
            "bound {bound:.0} MiB/s (64 x 128 KiB per 22 ms): {:.2}",
            mib / before.seconds / bound
        ),
    );
    for (what, ahead) in [
        ("defaults (128 MiB ahead)", 128u64 << 20),
        ("256 MiB ahead", 256 << 20),
    ] {
        let setup = Setup { ahead, ..default };
        let plain = scan(&memory, latency(None), setup).await;
        let requests = (ahead / setup.request) as f64;
        let bound = (requests * per_request).min(mib / cpu.seconds);
        row(
            &format!("1 GiB scan, {what}"),
            &plain,
            format!(
                "bound {bound:.0} MiB/s (min of {requests:.0} x 60 MiB/s and the CPU's ceiling): **{:.2}**; {:.1}x the small requests' speed",
                mib / plain.seconds / bound,
                before.seconds / plain.seconds
            ),
        );
        let stalled = scan(&memory, latency(Some(50)), setup).await;
        row(
            "the same, stalls, hedging on",
            &stalled,
            format!(
                "**{:.2}x** the time without stalls; {} hedged",
                stalled.seconds / plain.seconds,
                stalled.stats.hedged
            ),
        );
        let off = scan(
            &memory,
            latency(Some(50)),
            Setup {
                hedge: false,
                ..setup
            },
        )
        .await;
        row(
            "the same, stalls, hedging off",
            &off,
            format!(
                "{:.2}x the time without stalls",
                off.seconds / plain.seconds
            ),
        );
    }
    let small = small_relations(&memory).await;
    let small_bound = f64::from(SMALL_RELATIONS) * FIRST_BYTE.as_secs_f64() / TASKS as f64;
    println!(
        "| 10,000 one-block relations, {TASKS} tasks | {small:.2} s | | bound {small_bound:.2} s: {:.2} |",
        small_bound / small
    );
    println!(
        "peak RSS over the scan's start (pool and store already there); windows hold slices of the in-memory store's objects here, so they show in the windows column, not in RSS; caps: windows 256 MiB (prefetch_cache_bytes), bytes in flight 256 MiB"
    );
}
