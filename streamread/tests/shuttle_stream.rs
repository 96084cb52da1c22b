//! Read streams under shuttle's schedulers: the real stream and pool (the
//! pool's state words and the stream's read tasks are shuttle's when built
//! with `--cfg shuttle`, see `src/sync.rs` of both crates) over an
//! in-memory backend behind `FaultySmgr`, which yields in the middle of
//! every read.
//!
//! Scenarios: two streams reading the same blocks at once through a small
//! pool (every block, in order, right bytes; each page read once or
//! waited for); a stream whose `next_buffer()` calls are dropped after one
//! poll and called again (no block lost or repeated); a stream reset and
//! dropped while its reads are in flight. After each: nothing pinned, in
//! I/O or lent.
//!
//! `RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p streamread --test shuttle_stream -- --nocapture`
//! (`scripts/test` runs it; `SHUTTLE_ITERATIONS=n` for more schedules).

#![cfg(shuttle)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use bufmgr::{BufferPool, PoolConfig};
use shuttle::future::{block_on, spawn, yield_now};
use smgr_api::testkit::{pattern_page, FaultySmgr, MemSmgr};
use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr,
};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const BS: usize = 1024;
const BLOCKS: BlockNumber = 8;

fn rel() -> RelFileLocator {
    RelFileLocator::in_database(5, 1)
}

fn page(block: BlockNumber) -> Vec<u8> {
    let mut page = pattern_page(BS, 1, block);
    PageVerifier::new(PageFormat::Native, BlockSize::new(BS as u32).unwrap())
        .set_checksum(&mut page, block);
    page
}

async fn setup(frames: usize) -> (BufferPool, Arc<FaultySmgr>) {
    let bs = BlockSize::new(BS as u32).unwrap();
    let mem = Arc::new(MemSmgr::new(bs));
    mem.create(rel(), MAIN).await.unwrap();
    let pages = (0..BLOCKS).map(|b| PageBuf::copy_from(&page(b))).collect();
    mem.extend(rel(), MAIN, 0, pages).await.unwrap();
    let smgr = Arc::new(FaultySmgr::new(mem));
    smgr.yield_in_io(true);
    let pool = BufferPool::new(
        smgr.clone(),
        PoolConfig::new(frames, PageFormat::Native)
            .max_readers(1)
            .prefault(false),
    )
    .unwrap();
    (pool, smgr)
}

/// Runs of two blocks, two reads in flight (the memory backend has no
/// read-ahead, so its depth is `remote_max_ios`).
fn stream(pool: &BufferPool) -> ReadStream<()> {
    let config = StreamConfig::default()
        .max_ios(2)
        .remote_max_ios(2)
        .io_combine_bytes(2 * BS);
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    ReadStream::range(pool, rel(), MAIN, config, flags, 0..BLOCKS)
}

async fn drain(mut stream: ReadStream<()>) -> Vec<BlockNumber> {
    let mut seen = Vec::new();
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        let block = buffer.tag().block;
        assert_eq!(*buffer.read().unwrap(), page(block)[..], "block {block}");
        seen.push(block);
    }
    seen
}

async fn assert_quiet(pool: &BufferPool) {
    for _ in 0..200 {
        if pool.census().is_quiet() {
            return;
        }
        yield_now().await;
    }
    panic!("pool not quiet: {:?}", pool.census());
}

static SHARED_A_READ: AtomicUsize = AtomicUsize::new(0);
static DROPPED_WAITING: AtomicUsize = AtomicUsize::new(0);

fn two_streams_over_the_same_blocks() {
    block_on(async {
        let (pool, smgr) = setup(10).await;
        let a = spawn(drain(stream(&pool)));
        let b = spawn(drain(stream(&pool)));
        let all: Vec<BlockNumber> = (0..BLOCKS).collect();
        assert_eq!(a.await.unwrap(), all);
        assert_eq!(b.await.unwrap(), all);
        // Each page read at most once per stream; fewer reads than two
        // whole scans means one stream found pages the other read.
        let blocks_read: usize = smgr.reads().iter().map(|r| r.count).sum();
        assert!(blocks_read <= 2 * BLOCKS as usize);
        if blocks_read < 2 * BLOCKS as usize {
            SHARED_A_READ.fetch_add(1, Ordering::Relaxed);
        }
        assert_quiet(&pool).await;
    });
}

fn next_buffer_dropped_after_one_poll() {
    block_on(async {
        let (pool, _smgr) = setup(10).await;
        let mut stream = stream(&pool);
        let mut seen = Vec::new();
        loop {
            // Poll once; if it is not ready, drop it and ask again.
            let outcome = {
                let mut call = pin!(stream.next_buffer());
                std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await
            };
            match outcome {
                Poll::Pending => {
                    DROPPED_WAITING.fetch_add(1, Ordering::Relaxed);
                    yield_now().await;
                }
                Poll::Ready(result) => match result.unwrap() {
                    Some((buffer, ())) => {
                        let block = buffer.tag().block;
                        assert_eq!(*buffer.read().unwrap(), page(block)[..]);
                        seen.push(block);
                    }
                    None => break,
                },
            }
        }
        assert_eq!(seen, (0..BLOCKS).collect::<Vec<_>>());
        drop(stream);
        assert_quiet(&pool).await;
    });
}

fn reset_and_drop_with_reads_in_flight() {
    block_on(async {
        let (pool, _smgr) = setup(10).await;
        let mut stream = stream(&pool);
        let (first, ()) = stream.next_buffer().await.unwrap().unwrap();
        assert_eq!(first.tag().block, 0);
        drop(first);
        stream.reset().await;
        // Reset releases every pin before it returns.
        assert_eq!(pool.census().pins, 0, "{:?}", pool.census());
        let (again, ()) = stream.next_buffer().await.unwrap().unwrap();
        // The source went on where it was (a range does not rewind).
        assert!(again.tag().block > 0);
        drop(again);
        drop(stream);
        assert_quiet(&pool).await;
    });
}

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn explore(name: &str, scenario: fn()) {
    let n = iterations();
    shuttle::check_random(scenario, n);
    shuttle::check_pct(scenario, n, 3);
    eprintln!("SHUTTLE | {name} | {n} random + {n} PCT (depth 3) schedules | passed |");
}

fn explore_reaching(name: &str, scenario: fn(), path: &str, reached: &AtomicUsize) {
    explore(name, scenario);
    let reached = reached.load(Ordering::Relaxed);
    eprintln!(
        "SHUTTLE | {name} | {path}: {reached} times in {} schedules |",
        2 * iterations()
    );
    assert!(reached > 0, "no schedule of {name:?} took the path: {path}");
}

#[test]
fn two_streams_share_reads() {
    explore_reaching(
        "two streams over the same blocks",
        two_streams_over_the_same_blocks,
        "one stream found pages the other read",
        &SHARED_A_READ,
    );
}

#[test]
fn a_dropped_next_buffer_loses_nothing() {
    explore_reaching(
        "next_buffer dropped after one poll",
        next_buffer_dropped_after_one_poll,
        "a call was dropped while it waited",
        &DROPPED_WAITING,
    );
}

#[test]
fn reset_and_drop_mid_read() {
    explore(
        "a stream reset and dropped with reads in flight",
        reset_and_drop_with_reads_in_flight,
    );
}
