//! One buffer pool for every core, on the real workload: `pgbench_accounts`
//! of the PostgreSQL 15 cluster that `scripts/pg-cluster.sh` builds (scale
//! 100: 1.28 GiB in two segments), read through the public API only, as an
//! embedding program would. Every figure is a ratio to a baseline timed in
//! the same run, page cache warm, pool memory prefaulted when built.
//!
//! ```text
//! scripts/pg-cluster.sh /var/tmp/smgr-pg15-scale100 100
//! SMGR_PG15_CLUSTER=/var/tmp/smgr-pg15-scale100 cargo bench -p streamread --bench shared_pool
//! ```
//!
//! `SHARED_POOL_ROUNDS` sets the repetitions (median taken; 5 by default);
//! `SHARED_POOL_ONLY` a comma-separated list of sections to run (`stream`,
//! `hits`, `hot64`, `prewarm`).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use smgr_api::{BlockNumber, BlockSize, ForkNumber, PageFormat, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const SEGMENT_BLOCKS: u32 = 131072;

/// The largest relation with a `.1` segment under `base/`: pgbench_accounts.
fn find_accounts(cluster: &Path) -> (RelFileLocator, Vec<PathBuf>) {
    let mut best: Option<(u64, RelFileLocator, Vec<PathBuf>)> = None;
    for db in std::fs::read_dir(cluster.join("base")).unwrap() {
        let db = db.unwrap();
        let Ok(db_oid) = db.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        for file in std::fs::read_dir(db.path()).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            let Some(rel) = name.strip_suffix(".1") else {
                continue;
            };
            let Ok(rel_number) = rel.parse::<u32>() else {
                continue;
            };
            let files: Vec<PathBuf> = [rel.to_string(), name.clone()]
                .iter()
                .map(|n| db.path().join(n))
                .collect();
            let size: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
            if best.as_ref().is_none_or(|b| size > b.0) {
                best = Some((size, RelFileLocator::in_database(db_oid, rel_number), files));
            }
        }
    }
    let (_, rel, files) =
        best.expect("no relation with a .1 segment: is this the scale-100 cluster?");
    (rel, files)
}

fn raw_read(files: &[PathBuf], range: std::ops::Range<u64>) -> u64 {
    // One 128 KiB pread at a time over the byte range of the relation.
    let mut buf = vec![0u8; 128 << 10];
    let seg_bytes = u64::from(SEGMENT_BLOCKS) * 8192;
    let mut sum = 0u64;
    let mut pos = range.start;
    let handles: Vec<std::fs::File> = files
        .iter()
        .map(|f| std::fs::File::open(f).unwrap())
        .collect();
    while pos < range.end {
        let seg = (pos / seg_bytes) as usize;
        let off = pos % seg_bytes;
        let want = (buf.len() as u64).min(range.end - pos).min(seg_bytes - off) as usize;
        let n = handles[seg].read_at(&mut buf[..want], off).unwrap();
        assert!(n > 0);
        sum = sum.wrapping_add(u64::from(buf[0]));
        pos += n as u64;
    }
    std::hint::black_box(sum)
}

/// Reads the relation into `dest` (its size) with two threads, 128 KiB at
/// a time: what a prewarm must copy, with nothing else.
fn raw_into(files: &[PathBuf], dest: &mut [u8]) -> u64 {
    let seg_bytes = u64::from(SEGMENT_BLOCKS) * 8192;
    let half = dest.len() / 2 / (128 << 10) * (128 << 10);
    let (a, b) = dest.split_at_mut(half);
    std::thread::scope(|scope| {
        for (start, part) in [(0u64, a), (half as u64, b)] {
            scope.spawn(move || {
                let handles: Vec<std::fs::File> = files
                    .iter()
                    .map(|f| std::fs::File::open(f).unwrap())
                    .collect();
                for (i, chunk) in part.chunks_mut(128 << 10).enumerate() {
                    let pos = start + (i as u64) * (128 << 10);
                    let seg = (pos / seg_bytes) as usize;
                    let off = pos % seg_bytes;
                    let want = chunk.len().min((seg_bytes - off) as usize);
                    handles[seg].read_exact_at(&mut chunk[..want], off).unwrap();
                }
            });
        }
    });
    u64::from(dest[dest.len() / 2])
}

/// The next of a xorshift64 sequence (random blocks, cheap and repeatable).
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> f64 {
    let start = Instant::now();
    std::hint::black_box(f());
    start.elapsed().as_secs_f64()
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap()
    }
}

async fn stream_range(pool: BufferPool, rel: RelFileLocator, range: std::ops::Range<u32>) -> u64 {
    stream_range_with(pool, rel, range, false).await
}

/// A sequential stream over `range`; with `ring`, through a bulk-read ring
/// as PostgreSQL scans a table larger than a quarter of shared buffers.
async fn stream_range_with(
    pool: BufferPool,
    rel: RelFileLocator,
    range: std::ops::Range<u32>,
    ring: bool,
) -> u64 {
    let flags = StreamFlags {
        full: true,
        sequential: true,
        ..StreamFlags::default()
    };
    let stream = ReadStream::range(&pool, rel, MAIN, StreamConfig::default(), flags, range);
    let mut stream = if ring {
        stream.with_bulk_read_ring()
    } else {
        stream
    };
    let mut sum = 0u64;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        sum = sum.wrapping_add(u64::from(buffer.read().unwrap()[0]));
    }
    sum
}

struct Report {
    rows: Vec<(String, f64, String)>,
}

impl Report {
    fn row(&mut self, what: &str, value: f64, target: &str) {
        println!("{what:<80} {value:>8.3}   target {target}");
        self.rows
            .push((what.to_string(), value, target.to_string()));
    }
}

fn pool_of(smgr: &Arc<dyn Smgr>, mib: usize) -> BufferPool {
    BufferPool::new(
        smgr.clone(),
        PoolConfig::new((mib << 20) / 8192, PageFormat::Postgres { checksums: true }),
    )
    .unwrap()
}

fn main() {
    let dir = PathBuf::from(
        std::env::var("SMGR_PG15_CLUSTER").unwrap_or_else(|_| "/var/tmp/smgr-pg15-scale100".into()),
    );
    if !dir.join("READY").exists() {
        eprintln!("shared_pool: no cluster at {} (run scripts/pg-cluster.sh, or set SMGR_PG15_CLUSTER); skipping", dir.display());
        return;
    }
    let cluster = dir.join("data");
    let rounds: usize = std::env::var("SHARED_POOL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("SHARED_POOL_ONLY").unwrap_or_default();
    let run = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
    let (rel, files) = find_accounts(&cluster);
    let bytes: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    let blocks = (bytes / 8192) as BlockNumber;
    println!(
        "pgbench_accounts = {rel}: {blocks} blocks, {:.2} GiB, {rounds} rounds (medians)",
        bytes as f64 / f64::from(1 << 30)
    );
    let md: Arc<dyn Smgr> = Arc::new(
        MdSmgr::open(&cluster, MdOptions::new(BlockSize::DEFAULT, SEGMENT_BLOCKS)).unwrap(),
    );
    let mut report = Report { rows: Vec::new() };
    raw_read(&files, 0..bytes); // warm the page cache

    // Only two ring streams over and over, for a profiler (not run unless
    // named in SHARED_POOL_ONLY).
    if only.split(',').any(|s| s == "profile-rings") {
        let mt = runtime(2);
        let pool = pool_of(&md, 256);
        let half = blocks / 2;
        for _ in 0..rounds {
            let t = time(|| {
                mt.block_on(async {
                    let a = tokio::spawn(stream_range_with(pool.clone(), rel, 0..half, true));
                    let b = tokio::spawn(stream_range_with(pool.clone(), rel, half..blocks, true));
                    a.await.unwrap().wrapping_add(b.await.unwrap())
                })
            });
            println!("  two ring streams: {t:.3} s");
        }
        return;
    }

    if run("stream") {
        let (mut raw1, mut raw2, mut one_ct, mut one_mt, mut two) =
            (vec![], vec![], vec![], vec![], vec![]);
        let half = blocks / 2;
        let ct = runtime(0);
        let mt = runtime(2);
        let pool = pool_of(&md, 256);
        for _ in 0..rounds {
            raw1.push(time(|| raw_read(&files, 0..bytes)));
            raw2.push(time(|| {
                let f1 = files.clone();
                let f2 = files.clone();
                let a = std::thread::spawn(move || raw_read(&f1, 0..u64::from(half) * 8192));
                let b = std::thread::spawn(move || raw_read(&f2, u64::from(half) * 8192..bytes));
                a.join().unwrap().wrapping_add(b.join().unwrap())
            }));
            one_ct.push(time(|| {
                ct.block_on(stream_range(pool.clone(), rel, 0..blocks))
            }));
            one_mt.push(time(|| {
                mt.block_on(stream_range(pool.clone(), rel, 0..blocks))
            }));
            two.push(time(|| {
                mt.block_on(async {
                    let a = tokio::spawn(stream_range(pool.clone(), rel, 0..half));
                    let b = tokio::spawn(stream_range(pool.clone(), rel, half..blocks));
                    a.await.unwrap().wrapping_add(b.await.unwrap())
                })
            }));
        }
        // The same through bulk-read rings (the frames a scan recycles stay
        // in the CPU's caches), as PostgreSQL reads a large table.
        let (mut ring_one, mut ring_two) = (vec![], vec![]);
        for _ in 0..rounds {
            ring_one.push(time(|| {
                mt.block_on(stream_range_with(pool.clone(), rel, 0..blocks, true))
            }));
            ring_two.push(time(|| {
                mt.block_on(async {
                    let a = tokio::spawn(stream_range_with(pool.clone(), rel, 0..half, true));
                    let b = tokio::spawn(stream_range_with(pool.clone(), rel, half..blocks, true));
                    a.await.unwrap().wrapping_add(b.await.unwrap())
                })
            }));
        }
        let (ring_one, ring_two) = (median(ring_one), median(ring_two));
        println!("  with rings: one stream {ring_one:.3} s, two streams {ring_two:.3} s");
        let (raw1, raw2, one_ct, one_mt, two) = (
            median(raw1),
            median(raw2),
            median(one_ct),
            median(one_mt),
            median(two),
        );
        println!("  raw 1 reader {raw1:.3} s, raw 2 readers {raw2:.3} s, stream current-thread {one_ct:.3} s, stream 2 workers {one_mt:.3} s, 2 streams {two:.3} s");
        report.row(
            "one stream, current-thread runtime / raw 128 KiB pread loop (speed)",
            raw1 / one_ct,
            ">= 0.8",
        );
        report.row(
            "one stream, two-worker runtime / raw 128 KiB pread loop (speed)",
            raw1 / one_mt,
            ">= 0.8",
        );
        report.row(
            "two streams, one shared 256 MiB pool / one stream (speed)",
            one_mt / two,
            ">= 1.7",
        );
        report.row(
            "two streams, one shared pool / two raw readers (speed)",
            raw2 / two,
            ">= 0.7",
        );
        report.row(
            "one stream with a bulk-read ring, two workers / raw 128 KiB pread loop (speed)",
            raw1 / ring_one,
            ">= 0.8",
        );
        report.row(
            "two streams with rings, one shared pool / one stream with a ring (speed)",
            ring_one / ring_two,
            ">= 1.7",
        );
        report.row(
            "two streams with rings, one shared pool / two raw readers (speed)",
            raw2 / ring_two,
            ">= 0.7",
        );
    }

    if run("hits") {
        // Random pages of a 128 MiB hot set, read_buffer + read() + drop.
        let hot: u32 = 16384;
        let pool = pool_of(&md, 256);
        let mt = runtime(2);
        mt.block_on(stream_range(pool.clone(), rel, 0..hot));
        let per_task: u64 = 2_000_000;
        let hits = |pool: BufferPool, seed: u64, n: u64| async move {
            let mut x = seed | 1;
            let mut sum = 0u64;
            for _ in 0..n {
                let block = (xorshift(&mut x) % u64::from(hot)) as u32;
                let buffer = pool
                    .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                    .await
                    .unwrap();
                sum = sum.wrapping_add(u64::from(buffer.read().unwrap()[100]));
            }
            sum
        };
        let (mut one, mut two) = (vec![], vec![]);
        for _ in 0..rounds {
            one.push(time(|| {
                mt.block_on(async { tokio::spawn(hits(pool.clone(), 7, per_task)).await.unwrap() })
            }));
            two.push(time(|| {
                mt.block_on(async {
                    let a = tokio::spawn(hits(pool.clone(), 7, per_task));
                    let b = tokio::spawn(hits(pool.clone(), 11, per_task));
                    a.await.unwrap().wrapping_add(b.await.unwrap())
                })
            }));
        }
        let (one, two) = (median(one), median(two));
        println!(
            "  128 MiB hot set: 1 task {:.0} ns/hit, 2 tasks {:.0} ns/hit overall",
            one * 1e9 / per_task as f64,
            two * 1e9 / (2 * per_task) as f64
        );
        report.row(
            "random hits on a 128 MiB hot set, two tasks / one (hits per second)",
            2.0 * one / two,
            ">= 1.8",
        );
        // What the memory allows: a random walk touching what a hit touches
        // (a page-table slot among 2 MiB of them, a 64-byte descriptor among
        // 2 MiB, byte 100 of a page among 128 MiB), no pool.
        // Each touch depends on the one before, as in a hit: the slot names
        // the descriptor, the descriptor the page.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || xorshift(&mut seed);
        let descs: Vec<u64> = (0..(2 << 20) / 64)
            .map(|_| next() % u64::from(hot))
            .collect();
        let table: Vec<u64> = (0..(2 << 20) / 8)
            .map(|_| next() % descs.len() as u64)
            .collect();
        let pages = vec![1u8; 128 << 20];
        let walk = |seed: u64, n: u64| {
            let mut x = seed | 1;
            let mut sum = 0u64;
            for _ in 0..n {
                let desc = table[(xorshift(&mut x) ^ sum) as usize % table.len()] as usize;
                let page = descs[desc] as usize;
                sum = sum.wrapping_add(u64::from(pages[page * 8192 + 100]));
            }
            sum
        };
        let (mut m1, mut m2) = (vec![], vec![]);
        for _ in 0..rounds {
            m1.push(time(|| walk(7, per_task)));
            m2.push(time(|| {
                std::thread::scope(|s| {
                    let a = s.spawn(|| walk(7, per_task));
                    let b = s.spawn(|| walk(11, per_task));
                    a.join().unwrap().wrapping_add(b.join().unwrap())
                })
            }));
        }
        let (m1, m2) = (median(m1), median(m2));
        println!(
            "  the same memory touches without a pool: 1 thread {:.0} ns, 2 threads {:.0} ns overall",
            m1 * 1e9 / per_task as f64,
            m2 * 1e9 / (2 * per_task) as f64
        );
        report.row(
            "  bound: those memory touches alone, two threads / one (per second)",
            2.0 * m1 / m2,
            "(ceiling)",
        );
    }

    if run("hot64") {
        let pool = pool_of(&md, 64);
        let mt = runtime(2);
        mt.block_on(stream_range(pool.clone(), rel, 0..64));
        let n: u64 = 5_000_000;
        let loop_ = |pool: BufferPool, stride: u32, offset: u32, n: u64| async move {
            let mut sum = 0u64;
            for i in 0..n {
                let block = ((i as u32).wrapping_mul(stride).wrapping_add(offset)) % 64;
                let buffer = pool
                    .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                    .await
                    .unwrap();
                sum = sum.wrapping_add(u64::from(buffer.read().unwrap()[100]));
            }
            sum
        };
        let (mut one, mut diff, mut same) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            one.push(time(|| {
                mt.block_on(async { tokio::spawn(loop_(pool.clone(), 1, 0, n)).await.unwrap() })
            }));
            diff.push(time(|| {
                mt.block_on(async {
                    let a = tokio::spawn(loop_(pool.clone(), 2, 0, n));
                    let b = tokio::spawn(loop_(pool.clone(), 2, 1, n));
                    a.await.unwrap().wrapping_add(b.await.unwrap())
                })
            }));
            same.push(time(|| {
                mt.block_on(async {
                    let a = tokio::spawn(loop_(pool.clone(), 1, 0, n));
                    let b = tokio::spawn(loop_(pool.clone(), 1, 0, n));
                    a.await.unwrap().wrapping_add(b.await.unwrap())
                })
            }));
        }
        // The same pages through optimistic reads (`read_with`), which write
        // nothing shared.
        let opt = |pool: BufferPool, n: u64| async move {
            let mut sum = 0u64;
            for i in 0..n {
                let block = (i % 64) as u32;
                sum = sum.wrapping_add(
                    pool.read_with(rel, MAIN, block, ReadBufferMode::Normal, |page| {
                        page.u8_at(100).unwrap_or(0)
                    })
                    .await
                    .unwrap()
                    .into(),
                );
            }
            sum
        };
        let (mut opt_one, mut opt_same) = (vec![], vec![]);
        for _ in 0..rounds {
            opt_one.push(time(|| {
                mt.block_on(async { tokio::spawn(opt(pool.clone(), n)).await.unwrap() })
            }));
            opt_same.push(time(|| {
                mt.block_on(async {
                    let a = tokio::spawn(opt(pool.clone(), n));
                    let b = tokio::spawn(opt(pool.clone(), n));
                    a.await.unwrap().wrapping_add(b.await.unwrap())
                })
            }));
        }
        let (opt_one, opt_same) = (median(opt_one), median(opt_same));
        println!("  64 hot pages, read_with: 1 task {:.1} ns/read; 2 tasks, same pages {:.1} ns/read overall",
            opt_one * 1e9 / n as f64, opt_same * 1e9 / (2 * n) as f64);
        report.row(
            "64 hot pages, read_with, two tasks on the same pages / one (reads per second)",
            2.0 * opt_one / opt_same,
            ">= 1.5",
        );
        let (one, diff, same) = (median(one), median(diff), median(same));
        println!("  64 hot pages: 1 task {:.1} ns/hit; 2 tasks, other pages {:.1} ns/hit overall; same pages {:.1} ns/hit overall",
            one * 1e9 / n as f64, diff * 1e9 / (2 * n) as f64, same * 1e9 / (2 * n) as f64);
        report.row(
            "64 hot pages, one task: ns per hit",
            one * 1e9 / n as f64,
            "<= 50",
        );
        report.row(
            "64 hot pages, two tasks on other pages / one (hits per second)",
            2.0 * one / diff,
            ">= 1.8",
        );
        report.row(
            "64 hot pages, two tasks on the same pages / one (hits per second)",
            2.0 * one / same,
            ">= 1.5",
        );
    }

    if run("prewarm") {
        let mt = runtime(2);
        let mib = (bytes >> 20) as usize + 64;
        let (mut build, mut warm, mut raw) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            raw.push(time(|| raw_read(&files, 0..bytes)));
            let start = Instant::now();
            let pool = pool_of(&md, mib);
            build.push(start.elapsed().as_secs_f64());
            // On a worker, as a task of an embedding program would run it.
            warm.push(time(|| {
                let pool = pool.clone();
                mt.block_on(async move {
                    tokio::spawn(async move {
                        streamread::prewarm(&pool, rel, MAIN, 0, blocks - 1).await
                    })
                    .await
                })
                .unwrap()
                .unwrap()
            }));
            drop(pool);
        }
        // The copy a prewarm cannot avoid: the relation into memory of its
        // size, faulted in beforehand (as the pool is), by two threads.
        let mut dest = vec![0u8; bytes as usize];
        dest.fill(1);
        let mut into_memory = vec![];
        for _ in 0..rounds {
            into_memory.push(time(|| raw_into(&files, &mut dest)));
        }
        let into_memory = median(into_memory);
        println!("  raw copy into {mib} MiB of memory by two threads {into_memory:.3} s");
        report.row(
            "prewarm / raw copy into memory of the relation's size by two threads (time)",
            median(warm.clone()) / into_memory,
            "(floor)",
        );
        let (build, warm, raw) = (median(build), median(warm), median(raw));
        println!("  pool of {mib} MiB built in {build:.3} s; prewarm {warm:.3} s; raw single reader {raw:.3} s");
        report.row(
            "prewarm of pgbench_accounts / raw single reader (time)",
            warm / raw,
            "<= 1.0",
        );
        report.row("building that pool: seconds", build, "<= half of before");
    }
    let _ = report.rows.len();
}
