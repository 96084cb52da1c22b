//! Power loss on a simulated disk (`testing::CrashFs`), under random
//! workloads of `create`, `extend`, `zero_extend`, `writev`, `truncate`,
//! `unlink` and `immedsync` on three forks (two in one directory, one in a
//! directory of its own) with 4-block segments. Three cuts per seed, each
//! followed by a fresh backend on what survived, which must return every
//! block a successful `immedsync` covered, byte for byte, and read every
//! other fork as well formed, report it with an error naming it, or be
//! brought back by `truncate`; never panic.
//!
//! With `power_loss_through_the_pool` (a quarter of the cuts), at least
//! 1,000 cuts a run (`SMGR_POWER_CUTS` for more; a failure prints its
//! seed, `SMGR_POWER_SEED` replays it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::model::{cut_and_check, cuts_wanted, run_seeds, Fork, Rng, Tally};
use common::{open, BS, MAIN};
use smgr_api::testkit::pattern_page;
use smgr_api::{PageBuf, RelFileLocator, Smgr};
use smgr_md::testing::CrashFs;
use smgr_md::MdSmgr;

const SEGMENT_BLOCKS: u32 = 4;
const CUTS_PER_SEED: u64 = 3;

/// One random operation on one fork; errors are failures (nothing here
/// asks for anything the fork cannot do).
async fn step(
    smgr: &MdSmgr<CrashFs>,
    forks: &mut [Fork],
    rng: &mut Rng,
    tag: u32,
) -> Result<(), String> {
    let fork = &mut forks[rng.below(forks.len() as u64) as usize];
    let rel = fork.rel;
    let what = rng.below(100);
    let fail = |op: &str, e: smgr_api::Error| format!("{op} of {rel}: {e}");
    let Some(len) = fork.live.as_ref().map(Vec::len) else {
        smgr.create(rel, MAIN)
            .await
            .map_err(|e| fail("create", e))?;
        fork.live = Some(Vec::new());
        return Ok(());
    };
    match what {
        0..=24 => {
            let n = rng.below(6) as usize + 1;
            let pages: Vec<Vec<u8>> = (0..n)
                .map(|i| pattern_page(BS, tag, (len + i) as u32))
                .collect();
            let bufs = pages.iter().map(|p| PageBuf::copy_from(p)).collect();
            smgr.extend(rel, MAIN, len as u32, bufs)
                .await
                .map_err(|e| fail("extend", e))?;
            for (i, page) in pages.into_iter().enumerate() {
                fork.wrote(len + i, page);
            }
        }
        25..=34 => {
            let n = rng.below(12) as usize + 1;
            smgr.zero_extend(rel, MAIN, len as u32, n as u32)
                .await
                .map_err(|e| fail("zero_extend", e))?;
            for i in 0..n {
                fork.wrote(len + i, vec![0; BS]);
            }
        }
        35..=54 if len > 0 => {
            let first = rng.below(len as u64) as usize;
            let n = (rng.below(4) as usize + 1).min(len - first);
            let pages: Vec<Vec<u8>> = (0..n)
                .map(|i| pattern_page(BS, tag, (first + i) as u32))
                .collect();
            let bufs = pages.iter().map(|p| PageBuf::copy_from(p)).collect();
            smgr.writev(rel, MAIN, first as u32, bufs)
                .await
                .map_err(|e| fail("writev", e))?;
            for (i, page) in pages.into_iter().enumerate() {
                fork.wrote(first + i, page);
            }
        }
        55..=64 => {
            let n = rng.below(len as u64 + 1) as usize;
            smgr.truncate(rel, MAIN, n as u32)
                .await
                .map_err(|e| fail("truncate", e))?;
            fork.truncated(n);
        }
        65..=69 => {
            smgr.unlink(rel, MAIN)
                .await
                .map_err(|e| fail("unlink", e))?;
            fork.live = None;
            fork.confirmed = None;
        }
        _ => {
            smgr.immedsync(rel, MAIN)
                .await
                .map_err(|e| fail("immedsync", e))?;
            fork.synced();
        }
    }
    Ok(())
}

async fn run(seed: u64) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut rng = Rng(seed);
    let fs = CrashFs::new();
    let mut forks = vec![
        Fork::new(RelFileLocator::in_database(5, 100)),
        Fork::new(RelFileLocator::in_database(5, 101)),
        Fork::new(RelFileLocator::in_database(6, 200)),
    ];
    for cut in 0..CUTS_PER_SEED {
        let smgr = open(&fs, SEGMENT_BLOCKS);
        let steps = rng.below(30) + 10;
        for i in 0..steps {
            let tag = (seed as u32)
                .wrapping_mul(1000)
                .wrapping_add((cut * 100 + i) as u32);
            step(&smgr, &mut forks, &mut rng, tag).await?;
        }
        drop(smgr);
        let cut_seed = rng.next();
        cut_and_check(&fs, SEGMENT_BLOCKS, &mut forks, cut_seed, &mut tally)
            .await
            .map_err(|e| format!("after cut {cut}: {e}"))?;
    }
    Ok(tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_blocks_survive_every_cut() {
    // Three quarters of the cuts; the pool's workloads make the rest.
    let wanted = cuts_wanted() * 3 / 4;
    let seeds = wanted.div_ceil(CUTS_PER_SEED);
    let tally = run_seeds(seeds, run).await;
    eprintln!("power cuts, direct: {tally:?}");
    assert!(tally.cuts >= wanted);
    assert!(tally.blocks_checked > 0 && tally.changes_dropped > 0 && tally.writes_torn > 0);
}
