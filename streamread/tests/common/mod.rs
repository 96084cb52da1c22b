//! Helpers shared by the stream tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bufmgr::{BufferPool, PoolConfig};
use smgr_api::testkit::{pattern_page, FaultySmgr};
use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr,
};
use smgr_md::{MdOptions, MdSmgr};
use streamread::ReadStream;

pub const BS: usize = 8192;
pub const MAIN: ForkNumber = ForkNumber::Main;

pub fn page(tag: u32, block: BlockNumber) -> Vec<u8> {
    let mut page = pattern_page(BS, tag, block);
    PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT).set_checksum(&mut page, block);
    page
}

/// A real relation of `blocks` native pages (32-block segments) behind a
/// `FaultySmgr` that logs reads.
pub async fn relation(
    dir: &std::path::Path,
    blocks: BlockNumber,
    tag: u32,
) -> (Arc<FaultySmgr>, RelFileLocator) {
    let md = Arc::new(MdSmgr::open(dir, MdOptions::new(BlockSize::DEFAULT, 32)).unwrap());
    let rel = RelFileLocator::in_database(5, 16396);
    md.create(rel, MAIN).await.unwrap();
    let mut next = 0;
    while next < blocks {
        let n = (blocks - next).min(32);
        let pages = (next..next + n)
            .map(|b| PageBuf::copy_from(&page(tag, b)))
            .collect();
        md.extend(rel, MAIN, next, pages).await.unwrap();
        next += n;
    }
    (Arc::new(FaultySmgr::new(md)), rel)
}

pub fn pool(smgr: Arc<dyn Smgr>, frames: usize) -> BufferPool {
    BufferPool::new(smgr, PoolConfig::new(frames, PageFormat::Native)).unwrap()
}

/// Drains a stream, checking each page, and returns the blocks in order.
pub async fn drain(stream: &mut ReadStream<()>, tag: u32) -> Vec<BlockNumber> {
    let mut seen = Vec::new();
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        let block = buffer.tag().block;
        assert_eq!(
            *buffer.read().unwrap(),
            page(tag, block)[..],
            "block {block}"
        );
        seen.push(block);
    }
    seen
}

/// Waits (up to 5 s) for reads left behind by dropped calls or streams to
/// finish in the pool, then requires it quiet: nothing pinned, in I/O or
/// lent.
pub async fn assert_quiet_soon(pool: &BufferPool) {
    for _ in 0..500 {
        if pool.census().is_quiet() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("pool not quiet: {:?}", pool.census());
}
