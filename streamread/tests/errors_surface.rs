//! A page that fails verification surfaces through `next_buffer()` at that
//! block (the blocks around it still come back), and zero-on-error streams
//! give zeros there instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use bufmgr::ReadBufferMode;
use common::*;
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_is_reported_for_the_right_block() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 40, 8).await;
    let path = dir.path().join("base/5/16396");
    let mut bytes = std::fs::read(&path).unwrap();
    for block in [7usize, 9] {
        bytes[block * BS + 1234] ^= 0x40;
    }
    std::fs::write(&path, bytes).unwrap();

    for max_ios in [0, 4] {
        let pool = common::pool(smgr.clone(), 256);
        let config = StreamConfig::default().max_ios(max_ios);
        let mut stream = ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..20);
        let mut outcome = Vec::new();
        for _ in 0..20 {
            match stream.next_buffer().await {
                Ok(Some((buffer, ()))) => {
                    let block = buffer.tag().block;
                    assert_eq!(*buffer.read().unwrap(), page(8, block)[..]);
                    outcome.push(Ok(block));
                }
                Ok(None) => panic!("stream ended early"),
                Err(err) => outcome.push(Err(err.to_string())),
            }
        }
        assert!(stream.next_buffer().await.unwrap().is_none());
        for (i, result) in outcome.iter().enumerate() {
            match result {
                Ok(block) => assert_eq!(*block as usize, i),
                Err(message) => {
                    assert!(
                        i == 7 || i == 9,
                        "max_ios {max_ios}: error at {i}: {message}"
                    );
                    assert!(
                        message.contains(&format!(
                            "invalid page in block {i} of relation base/5/16396"
                        )),
                        "{message}"
                    );
                }
            }
        }
        assert_eq!(
            outcome.iter().filter(|r| r.is_err()).count(),
            2,
            "max_ios {max_ios}: {outcome:?}"
        );

        let pool = common::pool(smgr.clone(), 256);
        let mut stream = ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..20)
            .with_mode(ReadBufferMode::ZeroOnError);
        let mut zeroed = Vec::new();
        while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
            if buffer.read().unwrap().iter().all(|&b| b == 0) {
                zeroed.push(buffer.tag().block);
            }
        }
        assert_eq!(zeroed, vec![7, 9]);
    }
}
