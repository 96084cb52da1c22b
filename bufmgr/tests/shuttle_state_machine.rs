//! The buffer pool's state machine under shuttle's schedulers: the real
//! pool (its frame headers, content locks, page table and atomics are
//! shuttle's when built with `--cfg shuttle`, see `src/sync.rs`) over an
//! in-memory backend behind `FaultySmgr`, which yields in the middle of
//! every I/O.
//!
//! Scenarios: two readers missing one block (one read, both right); a
//! reader dirtying a page while another evicts it (the change reaches
//! storage); a failed read retried by a waiter (one error, then right
//! bytes); a read cancelled mid-I/O (the I/O finishes detached, the next
//! reader gets right bytes); a page initialized by `zero_and_lock` while
//! another task reads it (the reader sees storage's page or the new one,
//! never the zeros; the new one is written); a hit racing the eviction of
//! its frame (the lock-free probe's pin-then-check); a write-back beside a
//! writer (the content lock in the state word: old page or new, never a
//! mix, and the change never lost). After each: nothing pinned, in I/O or
//! lent.
//! Each runs under the random and the PCT scheduler.
//!
//! `RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle cargo test -p bufmgr --test shuttle_state_machine -- --nocapture`
//! (`.ci/run` runs it; `SHUTTLE_ITERATIONS=n` for more schedules).

#![cfg(shuttle)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use shuttle::future::{block_on, spawn, yield_now};
use smgr_api::testkit::{pattern_page, FaultySmgr, MemSmgr};
use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr,
};

const MAIN: ForkNumber = ForkNumber::Main;
const BS: usize = 1024;
const BLOCKS: BlockNumber = 8;

fn rel() -> RelFileLocator {
    RelFileLocator::in_database(5, 1)
}

fn page(version: u32, block: BlockNumber) -> Vec<u8> {
    let mut page = pattern_page(BS, version, block);
    PageVerifier::new(PageFormat::Native, BlockSize::new(BS as u32).unwrap())
        .set_checksum(&mut page, block);
    page
}

/// An in-memory relation behind `FaultySmgr`, which logs reads, can fail
/// them, and yields to the scheduler in the middle of every read and write.
async fn setup(frames: usize) -> (BufferPool, Arc<FaultySmgr>) {
    let bs = BlockSize::new(BS as u32).unwrap();
    let mem = Arc::new(MemSmgr::new(bs));
    mem.create(rel(), MAIN).await.unwrap();
    let pages = (0..BLOCKS)
        .map(|b| PageBuf::copy_from(&page(1, b)))
        .collect();
    mem.extend(rel(), MAIN, 0, pages).await.unwrap();
    let smgr = Arc::new(FaultySmgr::new(mem));
    smgr.yield_in_io(true);
    let pool = BufferPool::new(
        smgr.clone(),
        PoolConfig::new(frames, PageFormat::Native).prefault(false),
    )
    .unwrap();
    (pool, smgr)
}

async fn read(pool: BufferPool, block: BlockNumber) -> std::result::Result<Vec<u8>, String> {
    let buffer = pool
        .read_buffer(rel(), MAIN, block, ReadBufferMode::Normal)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = buffer.read().map_err(|e| e.to_string())?.to_vec();
    Ok(bytes)
}

/// Lets detached work finish, then requires a quiet pool.
async fn assert_quiet(pool: &BufferPool) {
    for _ in 0..200 {
        if pool.census().is_quiet() {
            return;
        }
        yield_now().await;
    }
    panic!("pool not quiet: {:?}", pool.census());
}

fn two_readers_miss_one_block() {
    block_on(async {
        let (pool, smgr) = setup(4).await;
        let a = spawn(read(pool.clone(), 3));
        let b = spawn(read(pool.clone(), 3));
        assert_eq!(a.await.unwrap().unwrap(), page(1, 3));
        assert_eq!(b.await.unwrap().unwrap(), page(1, 3));
        assert_eq!(smgr.reads().len(), 1, "one miss, one read");
        assert_quiet(&pool).await;
    });
}

fn a_dirty_page_survives_its_eviction() {
    block_on(async {
        // Two frames: the evictor's three reads must take the writer's.
        let (pool, smgr) = setup(2).await;
        let writer = spawn({
            let pool = pool.clone();
            async move {
                let buffer = pool
                    .read_buffer(rel(), MAIN, 0, ReadBufferMode::Normal)
                    .await
                    .unwrap();
                let mut bytes = buffer.write().unwrap();
                bytes.copy_from_slice(&page(2, 0));
                bytes.mark_dirty();
            }
        });
        let evictor = spawn({
            let pool = pool.clone();
            async move {
                for block in 1..4 {
                    assert_eq!(read(pool.clone(), block).await.unwrap(), page(1, block));
                }
            }
        });
        writer.await.unwrap();
        evictor.await.unwrap();
        pool.flush_all().await.unwrap();
        assert_quiet(&pool).await;
        let stored = smgr
            .readv(rel(), MAIN, 0, PageBuf::zeroed_blocks(smgr.block_size(), 1))
            .await
            .unwrap();
        assert_eq!(&*stored[0], &page(2, 0)[..], "the change was lost");
    });
}

/// Schedules, over every run of a scenario, in which the path it is about
/// was taken (not merely allowed): counted outside shuttle's model, so
/// that a test can insist the schedulers reached it.
static WAITED_FOR_A_FAILED_READ: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);
static DROPPED_MID_READ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count(schedules: &std::sync::atomic::AtomicUsize) {
    schedules.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn a_failed_read_is_retried_by_a_waiter() {
    block_on(async {
        let (pool, smgr) = setup(4).await;
        smgr.fail_reads(1);
        let a = spawn(read(pool.clone(), 5));
        let b = spawn(read(pool.clone(), 5));
        let outcomes = [a.await.unwrap(), b.await.unwrap()];
        // One reader waited on the other's read (the one that failed) and
        // then read the block itself.
        if pool.stats().io_wait > std::time::Duration::ZERO {
            count(&WAITED_FOR_A_FAILED_READ);
        }
        let errors = outcomes.iter().filter(|o| o.is_err()).count();
        assert_eq!(
            errors, 1,
            "one read failed, the other retried: {outcomes:?}"
        );
        for outcome in outcomes.iter().flatten() {
            assert_eq!(outcome, &page(1, 5));
        }
        assert!(smgr.reads().len() <= 2);
        assert_eq!(read(pool.clone(), 5).await.unwrap(), page(1, 5));
        assert_quiet(&pool).await;
    });
}

fn a_cancelled_read_leaves_nothing_behind() {
    block_on(async {
        let (pool, smgr) = setup(4).await;
        let canceller = spawn({
            let pool = pool.clone();
            async move {
                // Poll the read once or twice, then drop it mid-flight
                // (with the pool's hit and miss paths lock-free, three
                // polls finished it in all but a handful of schedules).
                let mut reading = pin!(read(pool, 2));
                for _ in 0..2 {
                    let polled =
                        std::future::poll_fn(|cx| Poll::Ready(reading.as_mut().poll(cx))).await;
                    if polled.is_ready() {
                        return;
                    }
                    yield_now().await;
                }
                count(&DROPPED_MID_READ);
            }
        });
        let reader = spawn(read(pool.clone(), 2));
        canceller.await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), page(1, 2));
        assert!(smgr.reads().len() <= 2);
        assert_quiet(&pool).await;
        assert_eq!(read(pool.clone(), 2).await.unwrap(), page(1, 2));
    });
}

fn a_page_initialized_while_another_task_reads_it() {
    block_on(async {
        let (pool, smgr) = setup(4).await;
        let initializer = spawn({
            let pool = pool.clone();
            async move {
                pool.zero_and_lock(rel(), MAIN, 6, |bytes| {
                    assert!(bytes.iter().all(|&b| b == 0), "init got non-zeros");
                    bytes.copy_from_slice(&page(3, 6));
                })
                .await
                .unwrap();
            }
        });
        let reader = spawn(read(pool.clone(), 6));
        initializer.await.unwrap();
        // Storage's page (read before the initialization) or the
        // initialized one; never the zeros in between.
        let seen = reader.await.unwrap().unwrap();
        assert!(
            seen == page(1, 6) || seen == page(3, 6),
            "the reader saw a page being made"
        );
        assert_eq!(read(pool.clone(), 6).await.unwrap(), page(3, 6));
        pool.flush_all().await.unwrap();
        assert_quiet(&pool).await;
        let stored = smgr
            .readv(rel(), MAIN, 6, PageBuf::zeroed_blocks(smgr.block_size(), 1))
            .await
            .unwrap();
        assert_eq!(
            &*stored[0],
            &page(3, 6)[..],
            "the initialized page was lost"
        );
    });
}

static EVICTED_BETWEEN_HITS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// A task hitting one page (lock-free probe, pin if `MAPPED`, tag check)
/// while another evicts it from a two-frame pool again and again: every
/// hit returns that page's bytes, never the page its frame is taking.
fn a_hit_racing_its_frames_eviction() {
    block_on(async {
        let (pool, smgr) = setup(2).await;
        assert_eq!(read(pool.clone(), 0).await.unwrap(), page(1, 0));
        let hitter = spawn({
            let pool = pool.clone();
            async move {
                for _ in 0..3 {
                    assert_eq!(read(pool.clone(), 0).await.unwrap(), page(1, 0));
                }
            }
        });
        let evictor = spawn({
            let pool = pool.clone();
            async move {
                for block in 1..4 {
                    assert_eq!(read(pool.clone(), block).await.unwrap(), page(1, block));
                }
            }
        });
        hitter.await.unwrap();
        evictor.await.unwrap();
        if smgr.reads().iter().filter(|r| r.first == 0).count() > 1 {
            count(&EVICTED_BETWEEN_HITS);
        }
        assert_quiet(&pool).await;
    });
}

static FLUSHED_OLD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static FLUSHED_NEW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A write-back (shared content lock, copy) beside a writer changing the
/// page under the exclusive lock: storage gets the old page or the new
/// one, never a mix, and the change is never lost (the page stays dirty
/// if the write-back's copy predates it).
fn the_content_lock_against_a_write_back() {
    block_on(async {
        let (pool, smgr) = setup(4).await;
        let buffer = pool
            .read_buffer(rel(), MAIN, 1, ReadBufferMode::Normal)
            .await
            .unwrap();
        {
            // Dirty from the start, so the flusher always has a write.
            let mut bytes = buffer.write().unwrap();
            bytes.copy_from_slice(&page(2, 1));
            bytes.mark_dirty();
        }
        let writer = spawn({
            let buffer = buffer.clone();
            async move {
                let mut bytes = buffer.write().unwrap();
                bytes.copy_from_slice(&page(3, 1));
                bytes.mark_dirty();
            }
        });
        let flusher = spawn({
            let (pool, buffer) = (pool.clone(), buffer.clone());
            async move { pool.flush_buffer(&buffer).await.unwrap() }
        });
        writer.await.unwrap();
        flusher.await.unwrap();
        let stored = smgr
            .readv(rel(), MAIN, 1, PageBuf::zeroed_blocks(smgr.block_size(), 1))
            .await
            .unwrap();
        if stored[0][..] == page(2, 1)[..] {
            count(&FLUSHED_OLD);
            assert!(buffer.is_dirty(), "the newer change was marked clean");
        } else {
            assert_eq!(
                &stored[0][..],
                &page(3, 1)[..],
                "a torn or unknown page was written"
            );
            count(&FLUSHED_NEW);
        }
        drop(buffer);
        pool.flush_all().await.unwrap();
        let stored = smgr
            .readv(rel(), MAIN, 1, PageBuf::zeroed_blocks(smgr.block_size(), 1))
            .await
            .unwrap();
        assert_eq!(&stored[0][..], &page(3, 1)[..], "the change was lost");
        assert_quiet(&pool).await;
    });
}

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn explore(name: &str, scenario: fn()) {
    let n = iterations();
    shuttle::check_random(scenario, n);
    shuttle::check_pct(scenario, n, 3);
    eprintln!("SHUTTLE | {name} | {n} random + {n} PCT (depth 3) schedules | passed |");
}

/// `explore`, then insists that `reached` schedules took the path the
/// scenario is about, and says how many.
fn explore_reaching(
    name: &str,
    scenario: fn(),
    path: &str,
    reached: &std::sync::atomic::AtomicUsize,
) {
    explore(name, scenario);
    let reached = reached.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "SHUTTLE | {name} | {path} in {reached} of {} schedules |",
        2 * iterations()
    );
    assert!(reached > 0, "no schedule of {name:?} took the path: {path}");
}

#[test]
fn two_readers_missing_one_block() {
    explore("two readers miss one block", two_readers_miss_one_block);
}

#[test]
fn a_reader_and_an_evictor() {
    explore(
        "a dirty page and its evictor",
        a_dirty_page_survives_its_eviction,
    );
}

#[test]
fn a_failed_io_retried_by_a_waiter() {
    explore_reaching(
        "a failed read retried by a waiter",
        a_failed_read_is_retried_by_a_waiter,
        "a reader waited on the failing read, then read itself",
        &WAITED_FOR_A_FAILED_READ,
    );
}

#[test]
fn a_cancelled_read() {
    explore_reaching(
        "a read cancelled mid-I/O",
        a_cancelled_read_leaves_nothing_behind,
        "the read was dropped before it finished",
        &DROPPED_MID_READ,
    );
}

#[test]
fn zero_and_lock_beside_a_reader() {
    explore(
        "a page initialized beside a reader",
        a_page_initialized_while_another_task_reads_it,
    );
}

#[test]
fn a_hit_and_an_eviction_of_its_frame() {
    explore_reaching(
        "a hit racing its frame's eviction",
        a_hit_racing_its_frames_eviction,
        "the page was evicted and read again between hits",
        &EVICTED_BETWEEN_HITS,
    );
}

#[test]
fn a_write_back_beside_a_writer() {
    explore_reaching(
        "the content lock against a write-back",
        the_content_lock_against_a_write_back,
        "the write-back copied the page before the change",
        &FLUSHED_OLD,
    );
    let new = FLUSHED_NEW.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("SHUTTLE | the content lock against a write-back | the write-back copied the changed page in {new} schedules |");
    assert!(new > 0, "no schedule wrote the changed page");
}
