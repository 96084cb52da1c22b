//! A scan whose end is partly cached returns every block, in order (a bug
//! PostgreSQL's stream once had: blocks skipped near the end).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_block_comes_back_when_the_tail_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 100, 1).await;
    let pool = pool(smgr.clone(), 512);
    for block in [90, 91, 93, 97, 98, 99] {
        pool.read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap();
    }
    for max_ios in [0, 1, 4, 16] {
        let config = StreamConfig::default().max_ios(max_ios);
        let mut stream =
            ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..100);
        assert_eq!(
            drain(&mut stream, 1).await,
            (0..100).collect::<Vec<_>>(),
            "max_ios {max_ios}"
        );
    }
}
