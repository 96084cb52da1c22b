//! Evicting a dirty page writes it to storage before the frame is reused,
//! and the page read back later has the change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;
use smgr_api::{BlockSize, PageFormat, PageState, PageVerifier, SmgrExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_victims_are_written_before_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 64, 5).await;
    let pool = pool(smgr.clone(), 8);

    for block in 0..8 {
        let buffer = pool
            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
        let mut page = buffer.write().unwrap();
        page[500] = 0xA0 + block as u8;
        page.mark_dirty();
        drop(page);
    }
    assert_eq!(pool.stats().blocks_written, 0);
    // Reading 8 other blocks through an 8-frame pool evicts every one.
    for block in 8..16 {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.blocks_written, 8, "{stats:?}");
    assert!(stats.evictions >= 8, "{stats:?}");
    // Storage has the changes, with valid checksums.
    let verifier = PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT);
    for block in 0..8 {
        let stored = smgr.read_block(rel, MAIN, block).await.unwrap();
        assert_eq!(stored[500], 0xA0 + block as u8, "block {block}");
        assert_eq!(
            verifier.verify(&stored, block),
            Ok(PageState::Valid),
            "block {block}"
        );
    }
    // And through the pool again.
    let again = pool
        .read_buffer(rel, MAIN, 3, ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(again.read().unwrap()[500], 0xA3);
}
