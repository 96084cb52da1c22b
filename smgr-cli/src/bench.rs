//! `smgr bench`: the side-by-side comparisons of `BENCHMARKS.md`, on a
//! generated relation, in one run, as one table of ratios.
//!
//! Every row times a baseline and our path back to back on the same data
//! (page cache warm), so the ratio holds on a shared, noisy machine even
//! when the absolute times do not.

use std::fmt::Write as _;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use smgr_api::{
    pg_checksum_page_portable, BlockNumber, BlockSize, ForkNumber, PageFormat, PageVerifier,
    PathNaming, RelFileLocator, Smgr,
};
use smgr_md::{MdOptions, MdSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

use crate::demo::{demo_page, write_demo_relation};
use crate::location::{Location, LocationOptions};
use crate::scan::{scan_one_block, scan_stream};
use crate::verify::{verify_location, VerifyOptions};

const SEGMENT_BLOCKS: BlockNumber = 16384;
const POOL_FRAMES: usize = 2048;

pub(crate) struct Row {
    pub what: &'static str,
    pub baseline: &'static str,
    pub baseline_s: f64,
    pub ours_s: f64,
    pub target: &'static str,
}

/// Generates a relation of `mib` MiB under `dir` and runs the comparisons.
pub async fn run_bench(dir: &Path, mib: u32) -> bufmgr::Result<String> {
    let bs = BlockSize::DEFAULT;
    let blocks: BlockNumber = (mib.max(16) << 20) / bs.get();
    let format = PageFormat::Postgres { checksums: true };
    let md = Arc::new(MdSmgr::open(dir, MdOptions::new(bs, SEGMENT_BLOCKS))?);
    let rel = RelFileLocator::in_database(5, 16500);
    let main = ForkNumber::Main;
    write_demo_relation(md.as_ref(), rel, blocks, 64).await?;
    let naming = PathNaming::default();
    let files: Vec<std::path::PathBuf> = (0..blocks.div_ceil(SEGMENT_BLOCKS))
        .map(|segno| naming.segment_path(rel, main, segno).map(|p| dir.join(p)))
        .collect::<Result<_, _>>()?;
    let smgr: Arc<dyn Smgr> = md;
    let pool = |frames: usize| BufferPool::new(smgr.clone(), PoolConfig::new(frames, format));
    let mut rows = Vec::new();

    // Warm the page cache, then time raw 128 KiB reads.
    raw_reads(&files, 128 << 10)?;
    let raw = timed(|| raw_reads(&files, 128 << 10))?;
    let stream = scan_stream(
        &pool(POOL_FRAMES)?,
        rel,
        main,
        blocks,
        StreamConfig::default(),
    )
    .await?
    .seconds;
    rows.push(Row {
        what: "sequential scan, stream",
        baseline: "raw 128 KiB preadv loop",
        baseline_s: raw,
        ours_s: stream,
        target: ">=0.8",
    });
    let one = scan_one_block(&pool(POOL_FRAMES)?, rel, main, blocks)
        .await?
        .seconds;
    rows.push(Row {
        what: "sequential scan, stream",
        baseline: "read_buffer loop",
        baseline_s: one,
        ours_s: stream,
        target: ">=2",
    });

    // Every 10th block, as a bitmap heap scan would ask for them.
    let sample: Vec<BlockNumber> = (0..blocks).filter(|b| b % 10 == 3).collect();
    let one_sample = {
        let p = pool(POOL_FRAMES)?;
        let started = Instant::now();
        for &b in &sample {
            drop(p.read_buffer(rel, main, b, ReadBufferMode::Normal).await?);
        }
        started.elapsed().as_secs_f64()
    };
    let stream_sample = {
        let p = pool(POOL_FRAMES)?;
        let started = Instant::now();
        let mut s = ReadStream::from_blocks(
            &p,
            rel,
            main,
            StreamConfig::default(),
            StreamFlags::default(),
            sample.clone(),
        );
        while let Some((buffer, ())) = s.next_buffer().await? {
            drop(buffer);
        }
        started.elapsed().as_secs_f64()
    };
    rows.push(Row {
        what: "10% sample (warm), stream",
        baseline: "read_buffer loop",
        baseline_s: one_sample,
        ours_s: stream_sample,
        target: "-",
    });

    // A relation already in the pool: the stream's overhead over hits
    // (best of 5 each, the runs being short).
    let cached_blocks = blocks.min(32768);
    let big = pool(cached_blocks as usize + 64)?;
    streamread::prewarm(&big, rel, main, 0, cached_blocks - 1).await?;
    let (mut hits, mut cached) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let one = scan_one_block(&big, rel, main, cached_blocks).await?;
        hits = hits.min(one.seconds);
        let streamed = scan_stream(&big, rel, main, cached_blocks, StreamConfig::default()).await?;
        cached = cached.min(streamed.seconds);
    }
    rows.push(Row {
        what: "cached scan, stream",
        baseline: "read_buffer hits",
        baseline_s: hits,
        ours_s: cached,
        target: ">=0.95",
    });

    // Verification: pg_checksums' loop (8 KiB read + checksum, one thread)
    // against `smgr verify` (streams through the pool, all cores).
    let checksums = timed(|| pg_checksums_loop(&files, bs))?;
    let location = Location::Local(dir.to_path_buf());
    let options = LocationOptions {
        segment_blocks: SEGMENT_BLOCKS,
        ..LocationOptions::default()
    };
    let verified = verify_location(
        &location,
        &options,
        VerifyOptions::local(),
        Default::default(),
    )
    .await?
    .seconds;
    rows.push(Row {
        what: "verify, smgr",
        baseline: "pg_checksums-style loop",
        baseline_s: checksums,
        ours_s: verified,
        // The target (at most half of pg_checksums' time) is for the real
        // tool on a real cluster: scripts/bench-verify.sh.
        target: "-",
    });
    let cat = timed(|| raw_reads(&files, 128 << 10))?;
    rows.push(Row {
        what: "verify, smgr",
        baseline: "cat (128 KiB reads)",
        baseline_s: cat,
        ours_s: verified,
        target: "-",
    });

    rows.extend(crate::bench_pool::shared_pool_rows(&pool, rel, blocks, &files).await?);
    rows.extend(object_store_rows().await?);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} MiB relation, {} blocks, page cache warm; ratio = baseline time / our time (higher is better)\n",
        (u64::from(blocks) * bs.bytes() as u64) >> 20,
        blocks
    );
    let _ = writeln!(
        out,
        "{:<34} {:<28} {:>8} {:>8} {:>8} {:>7}",
        "ours", "baseline", "base s", "ours s", "ratio", "target"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<34} {:<28} {:>8.3} {:>8.3} {:>8.2} {:>7}",
            row.what,
            row.baseline,
            row.baseline_s,
            row.ours_s,
            row.baseline_s / row.ours_s.max(1e-9),
            row.target
        );
    }
    Ok(out)
}

fn timed(f: impl FnOnce() -> smgr_api::Result<()>) -> smgr_api::Result<f64> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed().as_secs_f64())
}

/// Reads every file start to end in `chunk`-byte reads, and nothing else.
fn raw_reads(files: &[std::path::PathBuf], chunk: usize) -> smgr_api::Result<()> {
    let mut buf = vec![0u8; chunk];
    for path in files {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| smgr_api::Error::io("open", &name, e))?;
        let mut at = 0u64;
        loop {
            let n = file
                .read_at(&mut buf, at)
                .map_err(|e| smgr_api::Error::io("read", &name, e))?;
            if n == 0 {
                break;
            }
            std::hint::black_box(&buf);
            at += n as u64;
        }
    }
    Ok(())
}

/// What `pg_checksums --check` does per file: read one block at a time and
/// compute its checksum, with the checksum code as Debian's PostgreSQL 15
/// is built (the portable vectorization, no AVX2).
fn pg_checksums_loop(files: &[std::path::PathBuf], bs: BlockSize) -> smgr_api::Result<()> {
    let mut buf = vec![0u8; bs.bytes()];
    let mut bad = 0u64;
    for (segno, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| smgr_api::Error::io("open", &name, e))?;
        let mut block = 0u32;
        loop {
            let at = u64::from(block) * bs.bytes() as u64;
            let n = file
                .read_at(&mut buf, at)
                .map_err(|e| smgr_api::Error::io("read", &name, e))?;
            if n < buf.len() {
                break;
            }
            let blkno = segno as u32 * SEGMENT_BLOCKS + block;
            // PostgreSQL's build of the checksum: no AVX2 dispatch.
            if pg_checksum_page_portable(&buf, blkno) != u16::from_le_bytes([buf[8], buf[9]]) {
                bad += 1;
            }
            block += 1;
        }
    }
    std::hint::black_box(bad);
    Ok(())
}

/// A 32 MiB relation in an in-memory object store whose every GET waits
/// 20 ms (`object_store`'s `ThrottledStore`): a stream with 1 MiB reads,
/// 16 in flight, against the one-block loop (timed over its first 50
/// blocks and extrapolated; the whole loop would take 80 s).
async fn object_store_rows() -> bufmgr::Result<Vec<Row>> {
    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};
    use object_store::ObjectStore;
    use smgr_object::{ObjectOptions, ObjectSmgr};

    const BLOCKS: BlockNumber = 4096;
    const SAMPLE: BlockNumber = 50;
    let bs = BlockSize::DEFAULT;
    let format = PageFormat::Postgres { checksums: true };
    let verifier = PageVerifier::new(format, bs);
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let rel = RelFileLocator::in_database(5, 16501);
    let main = ForkNumber::Main;
    let loader = ObjectSmgr::new(memory.clone(), "bench", ObjectOptions::default())?;
    loader.create(rel, main).await?;
    let pages = (0..BLOCKS).map(|b| demo_page(&verifier, bs, b)).collect();
    loader.extend(rel, main, 0, pages).await?;

    let throttle = ThrottleConfig {
        wait_get_per_call: std::time::Duration::from_millis(20),
        ..ThrottleConfig::default()
    };
    let slow: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(memory, throttle));
    let smgr: Arc<dyn Smgr> = Arc::new(ObjectSmgr::new(slow, "bench", ObjectOptions::default())?);
    smgr.nblocks(rel, main).await?; // the LIST, outside the timing
    let pool = BufferPool::new(smgr, PoolConfig::new(8192, format))?;

    let started = Instant::now();
    for block in 0..SAMPLE {
        drop(
            pool.read_buffer(rel, main, block, ReadBufferMode::Normal)
                .await?,
        );
    }
    let one_block = started.elapsed().as_secs_f64() * f64::from(BLOCKS) / f64::from(SAMPLE);
    let config = StreamConfig::default()
        .io_combine_bytes(1 << 20)
        .max_ios(16);
    let stream = scan_stream(&pool, rel, main, BLOCKS, config).await?.seconds;
    Ok(vec![Row {
        what: "object store (20 ms/GET), stream",
        baseline: "read_buffer loop (extrap.)",
        baseline_s: one_block,
        ours_s: stream,
        target: ">=100",
    }])
}
