//! `MdSmgr` passes the whole conformance kit at several block and segment
//! sizes, so runs cross real segment files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use smgr_api::testkit::{run_all, Kit};
use smgr_api::BlockSize;
use smgr_md::{MdOptions, MdSmgr};

async fn kit_passes(block_size: u32, segment_blocks: u32) {
    let dir = tempfile::tempdir().unwrap();
    let options = MdOptions::new(BlockSize::new(block_size).unwrap(), segment_blocks);
    let smgr = Arc::new(MdSmgr::open(dir.path(), options).unwrap());
    run_all(&Kit::new(smgr, segment_blocks)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_with_1k_blocks_and_4_block_segments() {
    kit_passes(1024, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_with_8k_blocks_and_16_block_segments() {
    kit_passes(8192, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_with_32k_blocks_and_7_block_segments() {
    kit_passes(32768, 7).await;
}

#[tokio::test(flavor = "current_thread")]
async fn kit_passes_on_a_current_thread_runtime() {
    kit_passes(4096, 5).await;
}

/// Every read through the blocking pool, none inline: the slow path alone
/// must satisfy the whole contract too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_without_the_inline_nowait_path() {
    let dir = tempfile::tempdir().unwrap();
    let options = MdOptions::new(BlockSize::new(8192).unwrap(), 16).nowait_reads(false);
    let smgr = Arc::new(MdSmgr::open(dir.path(), options).unwrap());
    run_all(&Kit::new(smgr, 16)).await;
}
