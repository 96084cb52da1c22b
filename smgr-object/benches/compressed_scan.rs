//! Compressed vs plain segment objects on the real pgbench_accounts
//! (PostgreSQL 15, scale 100: 1.28 GiB in two segments), one run:
//!
//! - compression ratio and time at zstd levels 1, 3 and 9 (frames of 16
//!   blocks, the format the backend writes);
//! - a full scan through a read stream (1 MiB reads, 16 in flight) from an
//!   in-memory store that adds 20 ms to every GET, compressed (level 3) vs
//!   plain: wall time, bytes moved, process CPU per GB read;
//! - a random 10% block sample the same way.
//!
//! `cargo bench -p smgr-object --bench compressed_scan` (needs the cluster
//! `scripts/pg-cluster.sh` builds; `SMGR_PG15_CLUSTER` to point elsewhere).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bufmgr::{BufferPool, PoolConfig};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use smgr_api::{BlockNumber, ForkNumber, PageFormat, PathNaming, Smgr};
use smgr_object::seekable::{compress, FrameDecompressor, SeekTable, Tail};
use smgr_object::testing::FaultyStore;
use smgr_object::{ObjectOptions, ObjectSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const FRAME: usize = 16 * 8192;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second here).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

struct Scan {
    seconds: f64,
    bytes_moved: u64,
    cpu: f64,
    blocks: u64,
}

async fn scan(
    store: Arc<FaultyStore>,
    rel: smgr_api::RelFileLocator,
    blocks: Vec<BlockNumber>,
) -> Scan {
    let smgr = Arc::new(ObjectSmgr::new(store.clone(), "pg", ObjectOptions::default()).unwrap());
    smgr.nblocks(rel, ForkNumber::Main).await.unwrap(); // LIST and seek tables, outside the timing
    let pool = BufferPool::new(
        smgr,
        PoolConfig::new(8192, PageFormat::Postgres { checksums: true }),
    )
    .unwrap();
    let config = StreamConfig::default()
        .io_combine_bytes(1 << 20)
        .max_ios(16);
    let before = store.counts();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut stream = ReadStream::from_blocks(
        &pool,
        rel,
        ForkNumber::Main,
        config,
        StreamFlags::default(),
        blocks,
    );
    let mut n = 0u64;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        drop(buffer);
        n += 1;
    }
    Scan {
        seconds: started.elapsed().as_secs_f64(),
        bytes_moved: store.counts().get_bytes - before.get_bytes,
        cpu: cpu_seconds() - cpu,
        blocks: n,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let cluster = PathBuf::from(
        std::env::var("SMGR_PG15_CLUSTER").unwrap_or_else(|_| "/var/tmp/smgr-pg15-scale100".into()),
    );
    let manifest = std::fs::read_to_string(cluster.join("MANIFEST"))
        .expect("the PG15 cluster (scripts/pg-cluster.sh)");
    let relpath = manifest
        .lines()
        .find_map(|l| l.strip_prefix("pgbench_accounts\t"))
        .expect("pgbench_accounts in MANIFEST")
        .trim()
        .to_owned();
    let seg = PathNaming::default().parse(&relpath).unwrap();
    let files: Vec<(String, Vec<u8>)> = [relpath.clone(), format!("{relpath}.1")]
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(cluster.join("data").join(&p)).unwrap();
            (p, bytes)
        })
        .collect();
    let logical: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    let gib = logical as f64 / (1u64 << 30) as f64;
    println!(
        "pgbench_accounts: {} bytes ({gib:.2} GiB) in {} segment files",
        logical,
        files.len()
    );
    println!();
    println!("| zstd level | stored bytes | ratio (logical / stored) | compress time (one core) |");
    println!("|---|---|---|---|");
    let mut level3 = Vec::new();
    for level in [1, 3, 9] {
        let started = Instant::now();
        let objects: Vec<Vec<u8>> = files
            .iter()
            .map(|(_, b)| compress(b, FRAME, level).unwrap())
            .collect();
        let seconds = started.elapsed().as_secs_f64();
        let stored: u64 = objects.iter().map(|o| o.len() as u64).sum();
        println!(
            "| {level} | {stored} | {:.2} | {seconds:.1} s ({:.0} MB/s) |",
            logical as f64 / stored as f64,
            logical as f64 / 1e6 / seconds
        );
        if level == 3 {
            level3 = objects;
        }
    }

    decompress_into_pages(&level3[0]);

    // Two stores, plain and compressed, each behind 20 ms per GET.
    let plain_mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let zstd_mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    for ((path, bytes), object) in files.iter().zip(level3) {
        plain_mem
            .put(
                &Path::from(format!("pg/{path}")),
                PutPayload::from(bytes.clone()),
            )
            .await
            .unwrap();
        zstd_mem
            .put(
                &Path::from(format!("pg/{path}.zst")),
                PutPayload::from(object),
            )
            .await
            .unwrap();
    }
    one_block_writes(zstd_mem.clone(), seg.locator, &files[0].1).await;
    let slow = |inner: Arc<dyn ObjectStore>| {
        Arc::new(FaultyStore::new(Arc::new(ThrottledStore::new(
            inner,
            ThrottleConfig {
                wait_get_per_call: Duration::from_millis(20),
                wait_list_per_call: Duration::from_millis(20),
                ..ThrottleConfig::default()
            },
        ))))
    };
    let nblocks = (logical / 8192) as BlockNumber;
    let all: Vec<BlockNumber> = (0..nblocks).collect();
    // A fixed 10% sample, in block order (as a bitmap heap scan asks).
    let sample = smgr_api::testkit::bitmap_sample(nblocks, 0x2545_F491_4F6C_DD1D);
    println!();
    println!("20 ms per GET; stream with 1 MiB reads, 16 in flight; level 3 for compressed");
    println!();
    println!(
        "| pattern | objects | blocks | wall time | bytes moved | CPU (user+sys) per GB read |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, blocks) in [("full scan", all), ("random 10% sample", sample)] {
        for (kind, store) in [
            ("plain", slow(plain_mem.clone())),
            ("zstd seekable", slow(zstd_mem.clone())),
        ] {
            let s = scan(store, seg.locator, blocks.clone()).await;
            let gb = s.blocks as f64 * 8192.0 / 1e9;
            println!(
                "| {name} | {kind} | {} | {:.2} s | {:.0} MB | {:.2} s |",
                s.blocks,
                s.seconds,
                s.bytes_moved as f64 / 1e6,
                s.cpu / gb
            );
        }
    }
}

/// Every frame of one segment object into 8 KiB pages, one core: the
/// streaming decoder writing straight into the pages (what reads do)
/// against decompressing each frame into a buffer and copying the pages
/// out of it (what reads did before).
fn decompress_into_pages(object: &[u8]) {
    let Tail::Table(table) =
        SeekTable::parse_tail("bench", object, object.len() as u64, FRAME as u64).unwrap()
    else {
        panic!("no seek table");
    };
    let n = table.frames().len();
    let logical = table.decompressed_len();
    let mut pages = vec![vec![0u8; 8192]; FRAME / 8192];
    let frame = |i: usize| {
        let c = table.compressed_range(i..i + 1);
        (
            &object[c.start as usize..c.end as usize],
            table.decompressed_range(i..i + 1),
        )
    };
    let mut best = [f64::MAX; 3];
    for _ in 0..3 {
        let started = Instant::now();
        let mut d = FrameDecompressor::new("bench", 8192, 0, FRAME as u64);
        for i in 0..n {
            let (bytes, range) = frame(i);
            let k = ((range.end - range.start) / 8192) as usize;
            let mut slices: Vec<&mut [u8]> = pages[..k].iter_mut().map(|p| &mut p[..]).collect();
            d.decompress(i, bytes, range.clone(), range, None, &mut slices)
                .unwrap();
        }
        best[0] = best[0].min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let mut scratch = vec![0u8; FRAME];
        let mut bulk = zstd::bulk::Decompressor::new().unwrap();
        for i in 0..n {
            let (bytes, range) = frame(i);
            let len = (range.end - range.start) as usize;
            bulk.decompress_to_buffer(bytes, &mut scratch[..len])
                .unwrap();
            for (k, page) in pages[..len / 8192].iter_mut().enumerate() {
                page.copy_from_slice(&scratch[k * 8192..(k + 1) * 8192]);
            }
        }
        best[1] = best[1].min(started.elapsed().as_secs_f64());
        // A decompressor per frame, as when every read is one frame.
        let started = Instant::now();
        for i in 0..n {
            let (bytes, range) = frame(i);
            let k = ((range.end - range.start) / 8192) as usize;
            let mut slices: Vec<&mut [u8]> = pages[..k].iter_mut().map(|p| &mut p[..]).collect();
            FrameDecompressor::new("bench", 8192, 0, FRAME as u64)
                .decompress(i, bytes, range.clone(), range, None, &mut slices)
                .unwrap();
        }
        best[2] = best[2].min(started.elapsed().as_secs_f64());
    }
    let gb = logical as f64 / 1e9;
    println!();
    println!(
        "Decompressing one segment ({n} frames, {:.2} GB) into 8 KiB pages, one core, best of 3:",
        gb
    );
    println!();
    println!("| how | time | per GB | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| streaming decoder straight into the pages | {:.3} s | {:.3} s | {:.2} |",
        best[0],
        best[0] / gb,
        best[0] / best[1]
    );
    println!(
        "| each frame into a buffer, pages copied out | {:.3} s | {:.3} s | 1.00 |",
        best[1],
        best[1] / gb
    );
    println!(
        "| streaming, a `FrameDecompressor` made per frame (one read per frame) | {:.3} s | {:.3} s | {:.2} |",
        best[2],
        best[2] / gb,
        best[2] / best[1]
    );
}

/// One-block writes into the compressed 1 GiB segment (no added latency):
/// the backend compresses again only the frame a write touches, against
/// what a write cost when it recompressed the whole segment (decompress and
/// compress it all, timed here on the same data).
async fn one_block_writes(
    store: Arc<dyn ObjectStore>,
    rel: smgr_api::RelFileLocator,
    segment: &[u8],
) {
    let smgr = ObjectSmgr::new(store, "pg", ObjectOptions::default()).unwrap();
    smgr.nblocks(rel, ForkNumber::Main).await.unwrap();
    let blocks = [7u32, 1000, 55_555, 100_000, 131_000];
    let started = Instant::now();
    for &b in &blocks {
        let page =
            smgr_api::PageBuf::copy_from(&segment[b as usize * 8192..(b as usize + 1) * 8192]);
        smgr.writev(rel, ForkNumber::Main, b, vec![page])
            .await
            .unwrap();
    }
    let frames_only = started.elapsed().as_secs_f64() / blocks.len() as f64;
    let started = Instant::now();
    let object = compress(segment, FRAME, 3).unwrap();
    let whole = zstd::stream::decode_all(&object[..]).unwrap();
    assert_eq!(whole.len(), segment.len());
    let recompress = started.elapsed().as_secs_f64();
    println!();
    println!("One-block write into the compressed 1 GiB segment (in memory, no latency):");
    println!();
    println!("| how | per write | ratio |");
    println!("|---|---|---|");
    println!(
        "| compress again only the touched frame (now) | {:.3} s | {:.4} |",
        frames_only,
        frames_only / recompress
    );
    println!("| recompress the whole segment (before) | {recompress:.3} s | 1.00 |");
}
