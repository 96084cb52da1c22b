//! A backend that panics inside a read (a bug) fails the blocks of that
//! read with an error carrying the panic's message, whether the read ran
//! as a task or inline; the stream goes on with the next blocks and the
//! pool is left quiet.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::*;
use smgr_api::testkit::{Fault, FaultOp};
use streamread::{ReadStream, StreamConfig, StreamFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panic_message_reaches_the_error() {
    // Runs of 16 blocks run as tasks; runs of 2 are tried inline first.
    for combine in [16, 2] {
        let dir = tempfile::tempdir().unwrap();
        let (smgr, rel) = relation(dir.path(), 64, 33).await;
        let pool = pool(smgr.clone(), 256);
        let config = StreamConfig::default()
            .max_ios(2)
            .io_combine_bytes(combine * BS);
        let flags = StreamFlags {
            full: true,
            ..StreamFlags::default()
        };
        let mut stream = ReadStream::range(&pool, rel, MAIN, config, flags, 0..64);
        // Let the first read through, then panic in the second.
        let (first, ()) = stream.next_buffer().await.unwrap().unwrap();
        assert_eq!(first.tag().block, 0);
        drop(first);
        smgr.inject(FaultOp::Read, Fault::Panic, 1);
        let mut failed = Vec::new();
        let mut ok = 1;
        loop {
            match stream.next_buffer().await {
                Ok(Some((buffer, ()))) => {
                    assert_eq!(*buffer.read().unwrap(), page(33, buffer.tag().block)[..]);
                    ok += 1;
                }
                Ok(None) => break,
                Err(err) => {
                    let message = err.to_string();
                    assert!(
                        message.contains("injected panic in read of base/5/16396"),
                        "combine {combine}: {message}"
                    );
                    failed.push(message);
                }
            }
        }
        assert_eq!(smgr.faults_delivered(), 1);
        assert!(!failed.is_empty(), "combine {combine}: no block failed");
        assert!(
            failed.len() <= combine,
            "combine {combine}: {} failed",
            failed.len()
        );
        assert_eq!(ok + failed.len(), 64);
        drop(stream);
        assert_quiet_soon(&pool).await;
    }
}
