//! A combined read that reaches past the end of the fork fails as a whole
//! (a short read); the blocks of it that exist must still come back, and
//! only the missing ones are errors. Found by the `read_stream_model` fuzz
//! target: block 63 of a 64-block relation failed because block 64 was
//! combined into its read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::*;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_before_the_end_survive_a_run_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 64, 7).await;
    let pool = pool(smgr.clone(), 256);
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let wanted = [60u32, 61, 62, 63, 64, 65, 0];
    let mut stream =
        ReadStream::from_blocks(&pool, rel, MAIN, StreamConfig::default(), flags, wanted);
    let mut outcomes = Vec::new();
    while outcomes.len() < wanted.len() {
        match stream.next_buffer().await {
            Ok(Some((buffer, ()))) => {
                let block = buffer.tag().block;
                assert_eq!(&*buffer.read().unwrap(), &page(7, block)[..]);
                outcomes.push(Some(block));
            }
            Ok(None) => break,
            Err(err) => {
                let text = err.to_string();
                assert!(text.contains("base/5/16396"), "{text}");
                outcomes.push(None);
            }
        }
    }
    assert_eq!(
        outcomes,
        vec![Some(60), Some(61), Some(62), Some(63), None, None, Some(0)]
    );
    // The first read combined 60..=65 (one call, cut short).
    assert!(
        smgr.reads().iter().any(|r| r.first == 60 && r.count == 6),
        "{:?}",
        smgr.reads()
    );
}
