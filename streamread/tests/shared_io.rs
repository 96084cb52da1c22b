//! Two streams over the same blocks at the same time share the I/O: each
//! block is read from storage once, and both streams get every block.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::*;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_read_each_block_once() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 256, 7).await;
    let pool = pool(smgr.clone(), 1024);
    let scan = |pool: bufmgr::BufferPool| async move {
        let mut stream = ReadStream::range(
            &pool,
            rel,
            MAIN,
            StreamConfig::default(),
            StreamFlags::default(),
            0..256,
        );
        drain(&mut stream, 7).await
    };
    let (a, b) = tokio::join!(
        tokio::spawn(scan(pool.clone())),
        tokio::spawn(scan(pool.clone()))
    );
    assert_eq!(a.unwrap(), (0..256).collect::<Vec<_>>());
    assert_eq!(b.unwrap(), (0..256).collect::<Vec<_>>());
    let read: usize = smgr.reads().iter().map(|r| r.count).sum();
    assert_eq!(read, 256, "blocks read from storage: {read}");
}
