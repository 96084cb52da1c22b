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
use smgr_object::seekable::compress;
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
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let sample: Vec<BlockNumber> = (0..nblocks)
        .filter(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 10 == 0
        })
        .collect();
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
