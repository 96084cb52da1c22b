//! The in-memory `Smgr` passes the whole conformance kit, at two block
//! sizes: it is the model the kit is written against.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use smgr_api::testkit::{run_all, Kit, MemSmgr};
use smgr_api::BlockSize;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_smgr_passes_the_kit_with_1k_blocks() {
    let smgr = Arc::new(MemSmgr::new(BlockSize::new(1024).unwrap()));
    run_all(&Kit::new(smgr, 4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_smgr_passes_the_kit_with_8k_blocks() {
    let smgr = Arc::new(MemSmgr::new(BlockSize::DEFAULT));
    run_all(&Kit::new(smgr, 16)).await;
}

/// The fault wrapper with no faults armed is transparent: it passes the kit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_smgr_without_faults_passes_the_kit() {
    use smgr_api::testkit::FaultySmgr;
    let inner = Arc::new(MemSmgr::new(BlockSize::new(2048).unwrap()));
    let smgr = Arc::new(FaultySmgr::new(inner));
    run_all(&Kit::new(smgr.clone(), 5)).await;
    assert!(!smgr.reads().is_empty());
}
