//! `zero_extend` gives zeros even where a power loss left part of a block
//! past the fork's end (a torn extend): `fallocate` keeps bytes that are
//! already there, so they are cut away first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{open, page, scribble, BS, MAIN};
use smgr_api::{RelFileLocator, Smgr, SmgrExt};
use smgr_md::testing::CrashFs;

#[tokio::test]
async fn zero_extend_over_a_torn_partial_block_gives_zeros() {
    let fs = CrashFs::new();
    // Segments of 64 blocks: a 12-block zero-extend takes `fallocate`.
    let smgr = open(&fs, 64);
    let rel = RelFileLocator::in_database(5, 100);
    smgr.create(rel, MAIN).await.unwrap();
    smgr.extend(rel, MAIN, 0, vec![page(1, 0), page(1, 1)])
        .await
        .unwrap();
    smgr.immedsync(rel, MAIN).await.unwrap();
    // Half of block 2 of an extend reached the disk before the power went.
    scribble(&fs, &smgr, rel, 0, 2 * BS as u64, &[0xAB; BS / 2]);

    let smgr = open(&fs, 64);
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 2);
    smgr.zero_extend(rel, MAIN, 2, 12).await.unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 14);
    let bytes = smgr.read_to_vec(rel, MAIN, 2, 12).await.unwrap();
    if let Some(at) = bytes.iter().position(|b| *b != 0) {
        panic!(
            "zero-extended block {} is not zeros at byte {}",
            2 + at / BS,
            at % BS
        );
    }
}
