//! Stress: 8 tasks on 2 worker threads read and write 4096 blocks at random
//! through a 256-frame pool (so nearly every access evicts something, often
//! a dirty page), checked against a model of what every page must hold.
//! Repeated with several seeds; `STRESS_SEEDS=n` runs n seeds.
//!
//! Each page carries its block number and a write counter, and its body is
//! derived from both, so a torn, misplaced or stale page is detected on
//! sight. The model counts completed writes per block: a read that starts
//! after a write was counted must see it (no lost update through eviction
//! or write-back), and at the end storage must hold exactly the model.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use common::MAIN;
use smgr_api::{
    BlockSize, PageBuf, PageFormat, PageState, PageVerifier, RelFileLocator, Smgr, SmgrExt,
};
use smgr_md::{MdOptions, MdSmgr};

const BLOCKS: u32 = 4096;
const FRAMES: usize = 256;
const TASKS: u64 = 8;
const OPS_PER_TASK: u32 = 1500;

fn body_byte(block: u32, counter: u64) -> u8 {
    (block.wrapping_mul(31) as u64).wrapping_add(counter.wrapping_mul(7)) as u8
}

fn fill(page: &mut [u8], block: u32, counter: u64) {
    // A marker, so that no page is all zeros (which verifies as "new").
    page[4..8].copy_from_slice(b"PAGE");
    page[8..12].copy_from_slice(&block.to_le_bytes());
    page[12..20].copy_from_slice(&counter.to_le_bytes());
    page[20..].fill(body_byte(block, counter));
}

/// The page's counter, after checking it is a whole, correctly placed page.
fn check(page: &[u8], block: u32) -> u64 {
    assert_eq!(
        &page[4..8],
        b"PAGE",
        "block {block} is not a page of this test"
    );
    let stored = u32::from_le_bytes(page[8..12].try_into().unwrap());
    assert_eq!(
        stored, block,
        "page of block {stored} found at block {block}"
    );
    let counter = u64::from_le_bytes(page[12..20].try_into().unwrap());
    let want = body_byte(block, counter);
    assert!(
        page[20..].iter().all(|&b| b == want),
        "torn page at block {block} (counter {counter})"
    );
    counter
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::DEFAULT;
    let smgr = Arc::new(MdSmgr::open(dir.path(), MdOptions::new(bs, 1024)).unwrap());
    let rel = RelFileLocator::in_database(5, 2000);
    let verifier = PageVerifier::new(PageFormat::Native, bs);
    smgr.create(rel, MAIN).await.unwrap();
    for first in (0..BLOCKS).step_by(64) {
        let pages = (first..first + 64)
            .map(|block| {
                let mut page = PageBuf::zeroed_block(bs);
                fill(&mut page, block, 0);
                verifier.set_checksum(&mut page, block);
                page
            })
            .collect();
        smgr.extend(rel, MAIN, first, pages).await.unwrap();
    }
    let pool = BufferPool::new(
        smgr.clone(),
        PoolConfig::new(FRAMES, PageFormat::Native).max_readers(16),
    )
    .unwrap();
    let model: Arc<Vec<AtomicU64>> = Arc::new((0..BLOCKS).map(|_| AtomicU64::new(0)).collect());

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let pool = pool.clone();
        let model = model.clone();
        tasks.spawn(async move {
            let mut rng =
                Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((task + 1) * 0x2545_F491));
            for op in 0..OPS_PER_TASK {
                let block = (rng.next() % u64::from(BLOCKS)) as u32;
                match rng.next() % 10 {
                    0..=5 => {
                        let floor = model[block as usize].load(Ordering::SeqCst);
                        let buffer = pool
                            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                            .await
                            .unwrap();
                        let seen = check(&buffer.read().unwrap(), block);
                        assert!(
                            seen >= floor,
                            "seed {seed}: block {block} went back from {floor} to {seen}"
                        );
                    }
                    6..=8 => {
                        let buffer = pool
                            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
                            .await
                            .unwrap();
                        {
                            let mut page = buffer.write().unwrap();
                            let counter = check(&page, block);
                            fill(&mut page, block, counter + 1);
                            page.mark_dirty();
                        }
                        drop(buffer);
                        model[block as usize].fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        // A short run through prepare + complete.
                        let first = block.min(BLOCKS - 4);
                        let floors: Vec<u64> = (first..first + 4)
                            .map(|b| model[b as usize].load(Ordering::SeqCst))
                            .collect();
                        let mut run = Vec::new();
                        for b in first..first + 4 {
                            run.push(pool.prepare_read(rel, MAIN, b, None).await.unwrap().buffer);
                        }
                        pool.complete_read(&run, ReadBufferMode::Normal)
                            .await
                            .unwrap();
                        for (i, buffer) in run.iter().enumerate() {
                            let seen = check(&buffer.read().unwrap(), first + i as u32);
                            assert!(
                                seen >= floors[i],
                                "seed {seed}: run block {} went back",
                                first + i as u32
                            );
                        }
                    }
                }
                if op % 500 == 499 && task == 0 {
                    pool.flush_all().await.unwrap();
                }
            }
        });
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: deadlock or livelock"));

    pool.flush_all().await.unwrap();
    let stats = pool.stats();
    assert!(
        stats.evictions > 1000 && stats.blocks_written > 100,
        "seed {seed}: too little churn: {stats:?}"
    );
    let stored = smgr
        .read_to_vec(rel, MAIN, 0, BLOCKS as usize)
        .await
        .unwrap();
    for block in 0..BLOCKS {
        let page = &stored[block as usize * bs.bytes()..(block as usize + 1) * bs.bytes()];
        assert_eq!(
            verifier.verify(page, block),
            Ok(PageState::Valid),
            "seed {seed}: block {block} on disk"
        );
        assert_eq!(
            check(page, block),
            model[block as usize].load(Ordering::SeqCst),
            "seed {seed}: block {block} lost writes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_reads_and_writes_match_the_model() {
    let seeds: u64 = std::env::var("STRESS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 1..=seeds {
        run(seed).await;
    }
}
