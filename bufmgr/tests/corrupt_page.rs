//! A page that fails verification is an error naming the relation path and
//! block, and is never marked valid; with zero-on-error it comes back as
//! zeros and a warning names it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bufmgr::{Error, ReadBufferMode};
use common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_is_reported_or_zeroed_with_a_warning() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 16, 4).await;
    // Flip one byte of block 9 on disk (segment 0, 64-block segments).
    let path = dir.path().join("base/5/16396");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9 * BS + 4000] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let pool = pool(smgr, 32);

    for _ in 0..2 {
        let err = pool
            .read_buffer(rel, MAIN, 9, ReadBufferMode::Normal)
            .await
            .unwrap_err();
        match &err {
            Error::Storage(smgr_api::Error::CorruptPage { path, block, .. }) => {
                assert_eq!((path.as_str(), *block), ("base/5/16396", 9));
            }
            other => panic!("expected CorruptPage, got {other}"),
        }
        assert!(
            err.to_string()
                .contains("invalid page in block 9 of relation base/5/16396"),
            "{err}"
        );
    }
    // The failed page was never made valid: each attempt read it again.
    assert_eq!(pool.stats().blocks_read, 2);
    // A run containing it: the pages before it are valid, it is not.
    let mut run = Vec::new();
    for block in 7..12 {
        run.push(
            pool.prepare_read(rel, MAIN, block, None)
                .await
                .unwrap()
                .buffer,
        );
    }
    assert!(pool
        .complete_read(&run, ReadBufferMode::Normal)
        .await
        .is_err());
    assert!(run[0].is_valid() && run[1].is_valid());
    assert!(!run[2].is_valid(), "a corrupt page was marked valid");
    assert!(run[2].read().is_err());
    drop(run);

    let zeroed = pool
        .read_buffer(rel, MAIN, 9, ReadBufferMode::ZeroOnError)
        .await
        .unwrap();
    assert!(zeroed.read().unwrap().iter().all(|&b| b == 0));
    assert_eq!(pool.stats().pages_zeroed_on_error, 1);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("WARN") && text.contains("base/5/16396 block 9"),
        "log: {text}"
    );
}
