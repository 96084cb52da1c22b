//! Scans of a 1 GiB relation (131,072 blocks of 8 KiB with native
//! checksums) in `smgr-md`, each group side by side in one run:
//!
//! - `warm_seq`: all in the page cache, a 256 MiB pool that must evict:
//!   a raw `preadv` loop of 128 KiB (the physical limit), the one-block
//!   `read_buffer` loop, a stream sweeping the pool, and a stream through
//!   its bulk-read ring (as PostgreSQL scans large tables);
//! - `cold_seq`: the file evicted from the page cache before each
//!   iteration (`posix_fadvise(DONTNEED)`), fresh pool: raw 128 KiB reads
//!   vs a stream;
//! - `cold_bitmap`: 10% of the blocks in ascending order with gaps, cold:
//!   the one-block loop vs a stream with advice;
//! - `cached`: 128 MiB already in the pool: a stream vs `read_buffer` hits.
//!
//! Pools are built (and prefaulted) outside the timed part.
//!
//! `cargo bench -p streamread --bench scan`

#![allow(missing_docs, clippy::unwrap_used)]

use std::io::IoSliceMut;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const BLOCKS: u32 = 131072;

struct Setup {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    smgr: Arc<MdSmgr>,
    rel: RelFileLocator,
    file: std::fs::File,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let smgr = Arc::new(MdSmgr::open(dir.path(), MdOptions::default()).unwrap());
    let rel = RelFileLocator::in_database(5, 1);
    let verifier = PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT);
    rt.block_on(async {
        smgr.create(rel, MAIN).await.unwrap();
        let template = pattern_page(8192, 1, 0);
        let mut next = 0;
        while next < BLOCKS {
            let pages = (next..next + 128)
                .map(|block| {
                    let mut page = PageBuf::copy_from(&template);
                    page[8..12].copy_from_slice(&block.to_le_bytes());
                    verifier.set_checksum(&mut page, block);
                    page
                })
                .collect();
            smgr.extend(rel, MAIN, next, pages).await.unwrap();
            next += 128;
        }
        smgr.immedsync(rel, MAIN).await.unwrap();
    });
    let file = std::fs::File::open(smgr.segment_path(rel, MAIN, 0).unwrap()).unwrap();
    Setup {
        rt,
        _dir: dir,
        smgr,
        rel,
        file,
    }
}

fn evict(file: &std::fs::File) {
    rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

fn warm_cache(file: &std::fs::File) {
    rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::WillNeed).unwrap();
    raw_preadv(file, 0..BLOCKS);
}

/// Reads blocks with 128 KiB `preadv` calls into 16 page buffers.
fn raw_preadv(file: &std::fs::File, blocks: std::ops::Range<u32>) {
    let mut pages = vec![vec![0u8; 8192]; 16];
    let mut block = blocks.start;
    while block < blocks.end {
        let n = (blocks.end - block).min(16) as usize;
        let mut iov: Vec<IoSliceMut<'_>> =
            pages[..n].iter_mut().map(|p| IoSliceMut::new(p)).collect();
        let got = rustix::io::preadv(file, &mut iov, u64::from(block) * 8192).unwrap();
        assert_eq!(got, n * 8192);
        block += n as u32;
    }
}

fn pool(s: &Setup, frames: usize) -> BufferPool {
    BufferPool::new(s.smgr.clone(), PoolConfig::new(frames, PageFormat::Native)).unwrap()
}

async fn stream_scan(pool: &BufferPool, rel: RelFileLocator, blocks: Vec<u32>) -> (u64, u64) {
    let mut stream = ReadStream::from_blocks(
        pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        blocks,
    );
    let mut n = 0u64;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        drop(buffer);
        n += 1;
    }
    (n, stream.stats().reads)
}

fn warm_seq(c: &mut Criterion) {
    let s = setup();
    warm_cache(&s.file);
    let mut group = c.benchmark_group("warm_seq_1gib");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Bytes(u64::from(BLOCKS) * 8192));
    group.bench_function("raw preadv 128 KiB", |b| {
        b.iter(|| raw_preadv(&s.file, 0..BLOCKS))
    });
    let one = pool(&s, 32768);
    group.bench_function("read_buffer one block", |b| {
        b.iter(|| {
            s.rt.block_on(async {
                for block in 0..BLOCKS {
                    drop(
                        one.read_buffer(s.rel, MAIN, block, ReadBufferMode::Normal)
                            .await
                            .unwrap(),
                    );
                }
            })
        })
    });
    drop(one);
    let streaming = pool(&s, 32768);
    let mut calls = (0, 0);
    group.bench_function("stream", |b| {
        b.iter(|| {
            calls =
                s.rt.block_on(stream_scan(&streaming, s.rel, (0..BLOCKS).collect()))
        })
    });
    let ringed = pool(&s, 32768);
    group.bench_function("stream with bulk-read ring", |b| {
        b.iter(|| {
            s.rt.block_on(async {
                let mut stream = ReadStream::from_blocks(
                    &ringed,
                    s.rel,
                    MAIN,
                    StreamConfig::default(),
                    StreamFlags::default(),
                    (0..BLOCKS).collect::<Vec<u32>>(),
                )
                .with_bulk_read_ring();
                while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
                    drop(buffer);
                }
            })
        })
    });
    group.finish();
    eprintln!(
        "warm stream: {} blocks in {} reads: {:.4} read calls per block",
        calls.0,
        calls.1,
        calls.1 as f64 / calls.0.max(1) as f64
    );
}

fn cold_seq(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("cold_seq_1gib");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Bytes(u64::from(BLOCKS) * 8192));
    group.bench_function("raw preadv 128 KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                evict(&s.file);
                let start = Instant::now();
                raw_preadv(&s.file, 0..BLOCKS);
                total += start.elapsed();
            }
            total
        })
    });
    group.bench_function("stream", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pool = pool(&s, 32768);
                evict(&s.file);
                let start = Instant::now();
                s.rt.block_on(stream_scan(&pool, s.rel, (0..BLOCKS).collect()));
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn cold_bitmap(c: &mut Criterion) {
    let s = setup();
    // 10% of the blocks, ascending, with irregular gaps.
    let blocks = smgr_api::testkit::bitmap_sample(BLOCKS, 0x9E37_79B9_7F4A_7C15);
    let mut group = c.benchmark_group("cold_bitmap_10pct");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(blocks.len() as u64));
    group.bench_function("read_buffer one block", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pool = pool(&s, 32768);
                evict(&s.file);
                let start = Instant::now();
                s.rt.block_on(async {
                    for &block in &blocks {
                        drop(
                            pool.read_buffer(s.rel, MAIN, block, ReadBufferMode::Normal)
                                .await
                                .unwrap(),
                        );
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    group.bench_function("stream with advice", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pool = pool(&s, 32768);
                evict(&s.file);
                let start = Instant::now();
                s.rt.block_on(stream_scan(&pool, s.rel, blocks.clone()));
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn cached(c: &mut Criterion) {
    let s = setup();
    const CACHED: u32 = 16384;
    let pool = pool(&s, 32768);
    s.rt.block_on(streamread::prewarm(&pool, s.rel, MAIN, 0, CACHED - 1))
        .unwrap();
    let mut group = c.benchmark_group("cached_128mib");
    group
        .sample_size(20)
        .throughput(Throughput::Elements(u64::from(CACHED)));
    group.bench_function("read_buffer hits", |b| {
        b.iter(|| {
            s.rt.block_on(async {
                for block in 0..CACHED {
                    drop(
                        pool.read_buffer(s.rel, MAIN, block, ReadBufferMode::Normal)
                            .await
                            .unwrap(),
                    );
                }
            })
        })
    });
    group.bench_function("stream", |b| {
        b.iter(|| {
            s.rt.block_on(stream_scan(&pool, s.rel, (0..CACHED).collect()))
        })
    });
    group.finish();
}

criterion_group!(benches, warm_seq, cached, cold_seq, cold_bitmap);
criterion_main!(benches);
