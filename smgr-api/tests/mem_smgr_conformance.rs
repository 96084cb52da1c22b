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
