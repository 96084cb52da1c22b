//! `ObjectSmgr` passes the whole conformance kit over `object_store`'s
//! in-memory store and a local-directory store (the real S3 server is in
//! `integration/tests`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use object_store::memory::InMemory;
use smgr_api::testkit::{run_all, Kit};
use smgr_api::BlockSize;
use smgr_object::{ObjectOptions, ObjectSmgr, StoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_in_memory_with_1k_blocks_and_4_block_segments() {
    let smgr = ObjectSmgr::new(
        Arc::new(InMemory::new()),
        "some/prefix",
        ObjectOptions::new(BlockSize::new(1024).unwrap(), 4),
    )
    .unwrap();
    run_all(&Kit::new(Arc::new(smgr), 4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_in_memory_with_8k_blocks_and_16_block_segments() {
    let smgr = ObjectSmgr::new(
        Arc::new(InMemory::new()),
        "",
        ObjectOptions::new(BlockSize::DEFAULT, 16),
    )
    .unwrap();
    run_all(&Kit::new(Arc::new(smgr), 16)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_in_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/bucket", dir.path().display());
    let smgr = ObjectSmgr::from_url(
        &url,
        &StoreOptions::new(),
        ObjectOptions::new(BlockSize::new(2048).unwrap(), 5),
    )
    .unwrap();
    run_all(&Kit::new(Arc::new(smgr), 5)).await;
    // The layout is PostgreSQL's: a copy of a data directory would read.
    assert!(dir.path().join("bucket/base/5").is_dir());
}

/// New segments stored compressed (zstd seekable format, `.zst`): the
/// whole kit again, frames of 2 blocks so writes cut across frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_in_memory_with_compressed_segments() {
    let options = ObjectOptions::new(BlockSize::new(1024).unwrap(), 6).compression(
        smgr_object::Compression::Zstd {
            level: 3,
            frame_blocks: 2,
        },
    );
    let store = Arc::new(InMemory::new());
    let smgr = ObjectSmgr::new(store.clone(), "zst", options).unwrap();
    run_all(&Kit::new(Arc::new(smgr), 6)).await;
    // Every segment object the kit left is compressed.
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let keys: Vec<_> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k.ends_with(".zst")), "{keys:?}");
}
