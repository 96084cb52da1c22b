//! Block numbers at the edge of the 32-bit space (`MAX_BLOCK_NUMBER`,
//! `INVALID_BLOCK_NUMBER`) asked of the pool and of a stream are errors
//! naming the block, never an overflow, a panic or a hang; the stream goes
//! on past them, and nothing stays pinned.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;
use smgr_api::{PageBuf, Smgr, INVALID_BLOCK_NUMBER, MAX_BLOCK_NUMBER};
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_block_numbers_are_errors_not_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 4, 9).await;
    let pool = pool(smgr.clone(), 64);

    for block in [MAX_BLOCK_NUMBER - 1, MAX_BLOCK_NUMBER, INVALID_BLOCK_NUMBER] {
        let err = pool
            .read_buffer(rel, MAIN, block, ReadBufferMode::Normal)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&block.to_string())
                || err.to_string().contains("base/5/16396"),
            "{block}: {err}"
        );
    }
    // A run that would end past the last block number.
    let err = smgr
        .readv(
            rel,
            MAIN,
            MAX_BLOCK_NUMBER,
            PageBuf::zeroed_blocks(smgr.block_size(), 2),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, smgr_api::Error::BlockOutOfRange { .. }),
        "{err}"
    );

    let blocks = vec![
        MAX_BLOCK_NUMBER - 1,
        MAX_BLOCK_NUMBER,
        INVALID_BLOCK_NUMBER,
        0,
        3,
    ];
    let mut stream = ReadStream::from_blocks(
        &pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        blocks.clone(),
    );
    let mut outcomes = Vec::new();
    loop {
        match stream.next_buffer().await {
            Ok(Some((buffer, ()))) => outcomes.push(Ok(buffer.tag().block)),
            Ok(None) => break,
            Err(err) => outcomes.push(Err(err.to_string())),
        }
        assert!(
            outcomes.len() <= blocks.len(),
            "the stream does not end: {outcomes:?}"
        );
    }
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
    assert!(outcomes[..3].iter().all(|o| o.is_err()), "{outcomes:?}");
    assert_eq!(outcomes[3..], [Ok(0), Ok(3)], "{outcomes:?}");
    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let census = pool.census();
    assert!(census.is_quiet(), "{census:?}");
}
