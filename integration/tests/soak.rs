//! Soak run: many concurrent read streams and writers over a small buffer
//! pool, on both backends (`smgr-md` in a temporary directory; the object
//! backend over the in-memory store with plain and with compressed segment
//! objects, and over the real S3 server with compressed ones), for a
//! bounded time, checked against a model, with resident memory sampled and
//! required to stay flat.
//!
//! Every page holds (block, version) in its tuple bytes; writers bump a
//! block's version under the page's exclusive lock and record it in the
//! model; a reader holding the page's shared lock must see exactly the
//! model's version for that block. Pages go to storage by eviction and by
//! periodic flushes; at the end everything is flushed and read back
//! through a fresh pool and compared with the model.
//!
//! Outside the default run (minutes):
//! `SMGR_SOAK_SECS=180 cargo test --release -p integration --test soak -- --ignored --nocapture --test-threads 1`
//! (one backend at a time, so each one's resident memory is its own).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use object_store::memory::InMemory;
use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageFormat, PageVerifier, RelFileLocator, Smgr,
};
use smgr_md::{MdOptions, MdSmgr};
use smgr_object::{ObjectOptions, ObjectSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const BLOCKS: BlockNumber = 4096; // 32 MiB per relation
const RELATIONS: u32 = 2;
const FORMAT: PageFormat = PageFormat::Postgres { checksums: true };

fn page(block: BlockNumber, version: u32) -> Vec<u8> {
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    let mut page = smgr_cli::demo::demo_page(&verifier, BlockSize::DEFAULT, block).to_vec();
    page[4000..4004].copy_from_slice(&block.to_le_bytes());
    page[4004..4008].copy_from_slice(&version.to_le_bytes());
    verifier.set_checksum(&mut page, block);
    page
}

fn version_of(bytes: &[u8], block: BlockNumber) -> u32 {
    let stored = u32::from_le_bytes(bytes[4000..4004].try_into().unwrap());
    assert_eq!(
        stored, block,
        "page of block {stored} found at block {block}"
    );
    u32::from_le_bytes(bytes[4004..4008].try_into().unwrap())
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

struct Model {
    versions: Vec<Mutex<Vec<u32>>>,
}

async fn soak(smgr: Arc<dyn Smgr>, name: &str, seconds: u64) {
    for r in 0..RELATIONS {
        let rel = RelFileLocator::in_database(5, 17000 + r);
        smgr.create(rel, MAIN).await.unwrap();
        for first in (0..BLOCKS).step_by(256) {
            let pages = (first..first + 256)
                .map(|b| smgr_api::PageBuf::copy_from(&page(b, 0)))
                .collect();
            smgr.extend(rel, MAIN, first, pages).await.unwrap();
        }
    }
    let model = Arc::new(Model {
        versions: (0..RELATIONS)
            .map(|_| Mutex::new(vec![0; BLOCKS as usize]))
            .collect(),
    });
    // 8 MiB of pool for 64 MiB of relations: constant eviction.
    let pool =
        BufferPool::new(smgr.clone(), PoolConfig::new(1024, FORMAT).max_readers(16)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, writes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for id in 0..6u64 {
        let (pool, model, stop, reads) = (pool.clone(), model.clone(), stop.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            let mut seed = 0x9E37_79B9 ^ (id + 1);
            while !stop.load(Ordering::Relaxed) {
                xorshift(&mut seed);
                let r = (seed % u64::from(RELATIONS)) as u32;
                let rel = RelFileLocator::in_database(5, 17000 + r);
                let first = (seed >> 8) as u32 % BLOCKS;
                let len = ((seed >> 24) as u32 % 512 + 1).min(BLOCKS - first);
                let sparse = seed & 1 == 0;
                let blocks: Vec<u32> = (first..first + len)
                    .filter(|b| !sparse || b % 3 == 0)
                    .collect();
                let config = StreamConfig::default().max_ios((seed >> 40) as usize % 8);
                let mut stream = ReadStream::from_blocks(
                    &pool,
                    rel,
                    MAIN,
                    config,
                    StreamFlags::default(),
                    blocks,
                );
                while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
                    let block = buffer.tag().block;
                    let bytes = buffer.read().unwrap();
                    let seen = version_of(&bytes, block);
                    let expected = model.versions[r as usize].lock().unwrap()[block as usize];
                    assert_eq!(seen, expected, "relation {r} block {block}");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for id in 0..3u64 {
        let (pool, model, stop, writes) =
            (pool.clone(), model.clone(), stop.clone(), writes.clone());
        tasks.push(tokio::spawn(async move {
            let mut seed = 0x5851_F42D ^ (id + 1);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                xorshift(&mut seed);
                let r = (seed % u64::from(RELATIONS)) as u32;
                let rel = RelFileLocator::in_database(5, 17000 + r);
                let block = (seed >> 8) as u32 % BLOCKS;
                let buffer = pool
                    .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                    .await
                    .unwrap();
                {
                    let mut bytes = buffer.write().unwrap();
                    let mut versions = model.versions[r as usize].lock().unwrap();
                    let next = versions[block as usize] + 1;
                    assert_eq!(version_of(&bytes, block), next - 1);
                    bytes.copy_from_slice(&page(block, next));
                    bytes.mark_dirty();
                    versions[block as usize] = next;
                }
                drop(buffer);
                writes.fetch_add(1, Ordering::Relaxed);
                n += 1;
                if n % 500 == 0 {
                    pool.flush_relation(rel, MAIN).await.unwrap();
                }
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push(rss_kib());
        if tasks.iter().any(|t| t.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    pool.flush_all().await.unwrap();
    assert!(pool.census().is_quiet(), "{:?}", pool.census());

    // Everything in storage matches the model.
    let fresh = BufferPool::new(smgr, PoolConfig::new(256, FORMAT)).unwrap();
    for r in 0..RELATIONS {
        let rel = RelFileLocator::in_database(5, 17000 + r);
        let versions = model.versions[r as usize].lock().unwrap().clone();
        let mut stream = ReadStream::range(
            &fresh,
            rel,
            MAIN,
            StreamConfig::default(),
            StreamFlags::default(),
            0..BLOCKS,
        );
        while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
            let block = buffer.tag().block;
            assert_eq!(
                version_of(&buffer.read().unwrap(), block),
                versions[block as usize]
            );
        }
    }
    // Memory: after the first quarter (pool, caches and allocator warm),
    // resident size must not keep growing.
    let warm = samples.get(samples.len() / 4).copied().unwrap_or(0);
    let peak_after = samples[samples.len() / 4..]
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    eprintln!(
        "SOAK | {name} | {:.0} s | {} pages read and checked, {} pages written | RSS after warm-up {} MiB, peak after {} MiB |",
        started.elapsed().as_secs_f64(),
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
        warm / 1024,
        peak_after / 1024
    );
    assert!(
        peak_after <= warm + warm / 5 + 16 * 1024,
        "memory grew: {warm} KiB -> {peak_after} KiB"
    );
}

fn seconds() -> u64 {
    std::env::var("SMGR_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak run: minutes of load; run by hand (see the file's docs and RELIABILITY.md)"]
async fn soak_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let md = Arc::new(MdSmgr::open(dir.path(), MdOptions::new(BlockSize::DEFAULT, 1024)).unwrap());
    soak(md, "smgr-md", seconds()).await;
}

/// Small segment objects: every write-back rewrites a whole object (or,
/// compressed, the frames it touches, in frames of 16 blocks).
async fn object_soak(
    store: Arc<dyn object_store::ObjectStore>,
    prefix: &str,
    zstd: bool,
    name: &str,
) {
    let compression = if zstd {
        smgr_object::Compression::Zstd {
            level: 1,
            frame_blocks: 16,
        }
    } else {
        smgr_object::Compression::None
    };
    let options = ObjectOptions::new(BlockSize::DEFAULT, 64).compression(compression);
    let object = ObjectSmgr::new(store, prefix, options).unwrap();
    soak(Arc::new(object), name, seconds()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak run: minutes of load; run by hand (see the file's docs and RELIABILITY.md)"]
async fn soak_object_store() {
    object_soak(
        Arc::new(InMemory::new()),
        "soak",
        false,
        "smgr-object (in memory)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak run: minutes of load; run by hand (see the file's docs and RELIABILITY.md)"]
async fn soak_object_store_compressed() {
    object_soak(
        Arc::new(InMemory::new()),
        "soak",
        true,
        "smgr-object (in memory, zstd)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak run: minutes of load; run by hand (see the file's docs and RELIABILITY.md)"]
async fn soak_object_store_on_s3() {
    // The real server (scripts/seaweedfs.sh): every GET and PUT a round
    // trip, conditional puts checked by the server.
    let Some(options) = integration::s3_server() else {
        return;
    };
    let (store, prefix, _) =
        smgr_object::store_from_url(&integration::s3_url("soak"), &options).unwrap();
    object_soak(store, &prefix, true, "smgr-object (SeaweedFS, zstd)").await;
}
