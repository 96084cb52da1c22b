//! Runs of billions of blocks are refused or walked lazily: no allocation
//! proportional to the run, no panic, no abort.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::{BlockSize, Error, ForkNumber, RelFileLocator, Smgr, SmgrExt, MAX_BLOCK_NUMBER};
use smgr_md::{MdOptions, MdSmgr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_prefetch_and_read_requests_are_cheap_and_safe() {
    let dir = tempfile::tempdir().unwrap();
    // One block per segment: the worst case for per-segment work.
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(BlockSize::new(1024).unwrap(), 1)).unwrap();
    let rel = RelFileLocator::in_database(5, 1800);
    smgr.create(rel, ForkNumber::Main).await.unwrap();
    smgr.zero_extend(rel, ForkNumber::Main, 0, 3).await.unwrap();
    // Stops at the first missing segment instead of planning 2^32 pieces.
    assert!(
        smgr.prefetch(rel, ForkNumber::Main, 0, MAX_BLOCK_NUMBER)
            .await
    );
    let err = smgr
        .read_to_vec(rel, ForkNumber::Main, 0, usize::MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BlockOutOfRange { .. }), "{err}");
    // A valid run far too large for memory: a clear error, not an abort.
    let err = smgr
        .read_to_vec(rel, ForkNumber::Main, 1, MAX_BLOCK_NUMBER as usize)
        .await
        .unwrap_err();
    match &err {
        Error::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::OutOfMemory, "{err}")
        }
        other => panic!("expected an allocation error, got {other}"),
    }
}
