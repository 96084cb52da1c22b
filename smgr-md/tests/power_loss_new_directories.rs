//! A fork created in directories that did not exist yet (`base/DB` of a
//! fresh root) and synced survives power loss: the new directories'
//! entries are made durable in their parents when they are made, or the
//! whole fork could vanish however often it was synced.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{open, page, BS, MAIN};
use smgr_api::testkit::pattern_page;
use smgr_api::{RelFileLocator, Smgr, SmgrExt};
use smgr_md::testing::CrashFs;

#[tokio::test]
async fn a_synced_fork_in_new_directories_survives_power_loss() {
    let rel = RelFileLocator::in_database(7, 100);
    for seed in 0..16 {
        let fs = CrashFs::new();
        let smgr = open(&fs, 4);
        smgr.create(rel, MAIN).await.unwrap();
        smgr.extend(rel, MAIN, 0, vec![page(1, 0), page(1, 1)])
            .await
            .unwrap();
        smgr.immedsync(rel, MAIN).await.unwrap();
        fs.power_cut(seed);

        let smgr = open(&fs, 4);
        let nblocks = smgr.nblocks(rel, MAIN).await;
        assert_eq!(
            nblocks.ok(),
            Some(2),
            "seed {seed}: the synced fork is gone"
        );
        let bytes = smgr.read_to_vec(rel, MAIN, 0, 2).await.unwrap();
        for (block, got) in bytes.chunks(BS).enumerate() {
            assert!(
                got == pattern_page(BS, 1, block as u32),
                "seed {seed}: block {block}"
            );
        }
    }
}
