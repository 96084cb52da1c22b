//! Buffer pool benchmarks, each group side by side in one run:
//!
//! - `hit_path`: `read_buffer` of a page already in the pool plus dropping
//!   the pin (PostgreSQL's `ReadBuffer` + `ReleaseBuffer` on a hit), on one
//!   task, and on two tasks on two threads (time per operation, both
//!   threads together);
//! - `seq_read_1gib`: a warm (page-cached) 1 GiB relation read one block at
//!   a time: a plain 8 KiB `pread` loop (the floor), `MdSmgr::readv` of one
//!   block, and `read_buffer` through a 256 MiB pool that must evict as it
//!   goes. This one-block loop is the baseline for streaming reads.
//!
//! Pool memory is prefaulted when each pool is built, outside the timing.
//!
//! `cargo bench -p bufmgr --bench pool`

#![allow(missing_docs, clippy::unwrap_used)]

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smgr_api::{BlockSize, ForkNumber, PageBuf, PageFormat, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

async fn relation(dir: &std::path::Path, blocks: u32) -> (Arc<MdSmgr>, RelFileLocator) {
    let smgr = Arc::new(MdSmgr::open(dir, MdOptions::default()).unwrap());
    let rel = RelFileLocator::in_database(5, 1);
    smgr.create(rel, MAIN).await.unwrap();
    let mut next = 0;
    while next < blocks {
        let n = (blocks - next).min(128);
        // All-zero pages verify as new: no checksum work skews the numbers.
        smgr.extend(
            rel,
            MAIN,
            next,
            PageBuf::zeroed_blocks(BlockSize::DEFAULT, n as usize),
        )
        .await
        .unwrap();
        next += n;
    }
    (smgr, rel)
}

fn hit_path(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = rt.block_on(relation(dir.path(), 64));
    let pool = BufferPool::new(smgr, PoolConfig::new(1024, PageFormat::Native)).unwrap();
    rt.block_on(async {
        for block in 0..64 {
            pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                .await
                .unwrap();
        }
    });
    let mut group = c.benchmark_group("hit_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("1 task", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            rt.block_on(async move {
                let start = Instant::now();
                for i in 0..iters {
                    let buffer = pool
                        .read_buffer(rel, MAIN, (i % 64) as u32, ReadBufferMode::Normal)
                        .await
                        .unwrap();
                    drop(buffer);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("2 tasks on 2 threads", |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            rt.block_on(async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..2u64)
                    .map(|t| {
                        let pool = pool.clone();
                        tokio::spawn(async move {
                            for i in 0..iters / 2 {
                                let block = ((i * 2 + t) % 64) as u32;
                                drop(
                                    pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                                        .await
                                        .unwrap(),
                                );
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn seq_read_1gib(c: &mut Criterion) {
    const BLOCKS: u32 = 131072;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = rt.block_on(relation(dir.path(), BLOCKS));
    let file = std::fs::File::open(smgr.segment_path(rel, MAIN, 0).unwrap()).unwrap();
    let mut group = c.benchmark_group("seq_read_1gib");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(u64::from(BLOCKS) * 8192));
    group.bench_function("pread 8 KiB loop (floor)", |b| {
        let mut page = vec![0u8; 8192];
        b.iter(|| {
            for block in 0..BLOCKS {
                file.read_exact_at(&mut page, u64::from(block) * 8192)
                    .unwrap();
            }
        })
    });
    group.bench_function("MdSmgr::readv one block", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut bufs = vec![PageBuf::zeroed_block(BlockSize::DEFAULT)];
                for block in 0..BLOCKS {
                    bufs = smgr.readv(rel, MAIN, block, bufs).await.unwrap();
                }
            })
        })
    });
    let pool = BufferPool::new(smgr.clone(), PoolConfig::new(32768, PageFormat::Native)).unwrap();
    group.bench_function("read_buffer one block, 256 MiB pool", |b| {
        b.iter(|| {
            rt.block_on(async {
                for block in 0..BLOCKS {
                    drop(
                        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                            .await
                            .unwrap(),
                    );
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, hit_path, seq_read_1gib);
criterion_main!(benches);
