//! Segment files of impossible lengths are reported as corruption, as
//! PostgreSQL's md.c reports them, while PostgreSQL's legal leftovers
//! (empty inactive segments after the last one) are accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::path::Path;

use smgr_api::{BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

fn set_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

async fn setup() -> (tempfile::TempDir, MdSmgr, RelFileLocator) {
    let dir = tempfile::tempdir().unwrap();
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(BlockSize::new(1024).unwrap(), 4)).unwrap();
    let rel = RelFileLocator::in_database(5, 800);
    smgr.create(rel, MAIN).await.unwrap();
    (dir, smgr, rel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_segment_followed_by_data_is_corruption() {
    let (_dir, smgr, rel) = setup().await;
    set_len(&smgr.segment_path(rel, MAIN, 0).unwrap(), 4 * 1024);
    set_len(&smgr.segment_path(rel, MAIN, 1).unwrap(), 2 * 1024);
    set_len(&smgr.segment_path(rel, MAIN, 2).unwrap(), 1024);
    let err = smgr.nblocks(rel, MAIN).await.unwrap_err();
    match &err {
        Error::CorruptSegment {
            path,
            segno,
            segment_blocks_found,
            ..
        } => {
            assert_eq!(
                (path.as_str(), *segno, *segment_blocks_found),
                ("base/5/800.1", 1, 2)
            );
        }
        other => panic!("expected CorruptSegment, got {other}"),
    }
    assert!(
        err.to_string().contains("later segment is not empty"),
        "{err}"
    );
    // Reading the stray segment's block is refused too, not served.
    let err = smgr
        .readv(rel, MAIN, 8, PageBuf::zeroed_blocks(smgr.block_size(), 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CorruptSegment { segno: 1, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_segment_is_corruption() {
    let (_dir, smgr, rel) = setup().await;
    set_len(&smgr.segment_path(rel, MAIN, 0).unwrap(), 5 * 1024);
    let err = smgr.nblocks(rel, MAIN).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorruptSegment {
                segno: 0,
                segment_blocks_found: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("base/5/800"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_inactive_segments_after_the_last_are_legal() {
    let (_dir, smgr, rel) = setup().await;
    set_len(&smgr.segment_path(rel, MAIN, 0).unwrap(), 4 * 1024);
    set_len(&smgr.segment_path(rel, MAIN, 1).unwrap(), 1024);
    set_len(&smgr.segment_path(rel, MAIN, 2).unwrap(), 0);
    set_len(&smgr.segment_path(rel, MAIN, 3).unwrap(), 0);
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 5);
    // Truncate and unlink clear the inactive files too.
    smgr.truncate(rel, MAIN, 2).await.unwrap();
    assert!(!smgr.segment_path(rel, MAIN, 3).unwrap().exists());
    assert!(!smgr.segment_path(rel, MAIN, 1).unwrap().exists());
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 2);
    smgr.unlink(rel, MAIN).await.unwrap();
    assert!(!smgr.segment_path(rel, MAIN, 0).unwrap().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_segments_with_or_without_an_empty_next_segment() {
    let (_dir, smgr, rel) = setup().await;
    set_len(&smgr.segment_path(rel, MAIN, 0).unwrap(), 4 * 1024);
    set_len(&smgr.segment_path(rel, MAIN, 1).unwrap(), 4 * 1024);
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 8);
    set_len(&smgr.segment_path(rel, MAIN, 2).unwrap(), 0);
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 8);
    // Extending at 8 writes into the existing empty segment .2.
    smgr.zero_extend(rel, MAIN, 8, 1).await.unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extending_a_corrupt_fork_is_refused() {
    let (_dir, smgr, rel) = setup().await;
    // Segment 0 is short (2 of 4 blocks), yet segment 1 holds a block.
    set_len(&smgr.segment_path(rel, MAIN, 0).unwrap(), 2 * 1024);
    set_len(&smgr.segment_path(rel, MAIN, 1).unwrap(), 1024);
    let err = smgr
        .extend(rel, MAIN, 5, PageBuf::zeroed_blocks(smgr.block_size(), 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CorruptSegment { segno: 0, .. }),
        "{err}"
    );
    // And the verdict does not depend on what the cache holds.
    let err = smgr
        .readv(rel, MAIN, 4, PageBuf::zeroed_blocks(smgr.block_size(), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CorruptSegment { .. }), "{err}");
    assert_eq!(
        std::fs::metadata(smgr.segment_path(rel, MAIN, 1).unwrap())
            .unwrap()
            .len(),
        1024
    );
}
