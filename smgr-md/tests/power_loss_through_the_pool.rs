//! Power loss on a simulated disk under the buffer pool: random workloads
//! that extend a fork (`extend_by`), change pages in the pool (written
//! back whenever the pool evicts them, or at `flush_relation`), and
//! confirm with `flush_relation` + `immedsync`. After each cut a fresh
//! backend must return every page the last confirmation covered, byte for
//! byte, and read the rest as a well-formed fork (or repair it with
//! `truncate`); a page a cut tore, and nothing confirmed, is refused by
//! the pool with an error naming it. Two cuts per seed; with the direct workloads of
//! `power_loss_random_workloads`, part of the 1,000 cuts a run makes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use bufmgr::{BufferPool, PoolConfig};
use common::model::{cut_and_check, cuts_wanted, run_seeds, Fork, Rng, Tally};
use common::{open, BS, MAIN};
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, PageFormat, PageVerifier, RelFileLocator, Smgr};
use smgr_md::testing::CrashFs;

const SEGMENT_BLOCKS: u32 = 4;
const CUTS_PER_SEED: u64 = 2;
/// A quarter of the cuts go to the pool's workloads.
const SHARE: u64 = 4;

fn page(verifier: &PageVerifier, tag: u32, block: u32) -> Vec<u8> {
    let mut page = pattern_page(BS, tag, block);
    verifier.set_checksum(&mut page, block);
    page
}

async fn run(seed: u64) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut rng = Rng(seed);
    let fs = CrashFs::new();
    let verifier = PageVerifier::new(PageFormat::Native, BlockSize::new(BS as u32).unwrap());
    let mut forks = vec![Fork::new(RelFileLocator::in_database(5, 300))];
    let rel = forks[0].rel;
    for cut in 0..CUTS_PER_SEED {
        let smgr = Arc::new(open(&fs, SEGMENT_BLOCKS));
        if forks[0].live.is_none() {
            smgr.create(rel, MAIN).await.map_err(|e| e.to_string())?;
            forks[0].live = Some(Vec::new());
        }
        // Few frames: pages are evicted (and written) at random times.
        let pool = BufferPool::new(smgr.clone(), PoolConfig::new(16, PageFormat::Native))
            .map_err(|e| e.to_string())?;
        let steps = rng.below(25) + 10;
        for i in 0..steps {
            let tag = (seed as u32)
                .wrapping_mul(1000)
                .wrapping_add((cut * 100 + i) as u32);
            let fork = &mut forks[0];
            let len = fork.live.as_ref().map_or(0, Vec::len);
            match rng.below(10) {
                0..=3 => {
                    let n = rng.below(5) as u32 + 1;
                    let buffers = pool
                        .extend_by(rel, MAIN, n)
                        .await
                        .map_err(|e| format!("extend_by: {e}"))?;
                    for buffer in &buffers {
                        let block = buffer.tag().block;
                        // Some stay zero (as extended), the rest are filled.
                        if rng.below(4) == 0 {
                            fork.wrote(block as usize, vec![0; BS]);
                            continue;
                        }
                        let bytes = page(&verifier, tag, block);
                        let mut frame = buffer.write().map_err(|e| e.to_string())?;
                        frame.copy_from_slice(&bytes);
                        frame.mark_dirty();
                        fork.wrote(block as usize, bytes);
                    }
                }
                4..=6 if len > 0 => {
                    let block = rng.below(len as u64) as u32;
                    // A page a cut tore (it was not confirmed) fails its
                    // checksum: the pool must say so, naming it.
                    let torn = fork
                        .live
                        .as_ref()
                        .is_some_and(|live| verifier.verify(&live[block as usize], block).is_err());
                    let read = pool.read_for_update(rel, MAIN, block).await;
                    let buffer = match read {
                        Err(e) if torn => {
                            let text = e.to_string();
                            if !text.contains("base/5/300")
                                || !text.contains(&format!("block {block}"))
                            {
                                return Err(format!(
                                    "a torn page's error does not name it: {text}"
                                ));
                            }
                            continue;
                        }
                        Err(e) => return Err(format!("read block {block}: {e}")),
                        Ok(_) if torn => return Err(format!("torn block {block} read as valid")),
                        Ok(buffer) => buffer,
                    };
                    let bytes = page(&verifier, tag, block);
                    let mut frame = buffer.write().map_err(|e| e.to_string())?;
                    frame.copy_from_slice(&bytes);
                    frame.mark_dirty();
                    fork.wrote(block as usize, bytes);
                }
                _ => {
                    pool.flush_relation(rel, MAIN)
                        .await
                        .map_err(|e| format!("flush_relation: {e}"))?;
                    smgr.immedsync(rel, MAIN)
                        .await
                        .map_err(|e| format!("immedsync: {e}"))?;
                    fork.synced();
                }
            }
        }
        drop(pool);
        drop(smgr);
        let cut_seed = rng.next();
        cut_and_check(&fs, SEGMENT_BLOCKS, &mut forks, cut_seed, &mut tally)
            .await
            .map_err(|e| format!("after cut {cut}: {e}"))?;
    }
    Ok(tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_pages_survive_every_cut() {
    let seeds = (cuts_wanted() / SHARE).div_ceil(CUTS_PER_SEED);
    let tally = run_seeds(seeds, run).await;
    eprintln!("power cuts, through the pool: {tally:?}");
    assert!(tally.cuts * SHARE >= cuts_wanted());
    assert!(tally.blocks_checked > 0 && tally.changes_dropped > 0);
}
