//! A read that goes straight to a late segment checks every segment
//! before it, not just the one before: a short segment anywhere earlier
//! makes the fork corrupt, and the error names that segment.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{open, page, BS, MAIN};
use smgr_api::{Error, RelFileLocator, Smgr, SmgrExt};
use smgr_md::fs::{FileSystem, OpenMode, SegmentFile};
use smgr_md::testing::CrashFs;

#[tokio::test]
async fn a_short_first_segment_fails_a_read_of_the_third() {
    let fs = CrashFs::new();
    let smgr = open(&fs, 4);
    let rel = RelFileLocator::in_database(5, 100);
    smgr.create(rel, MAIN).await.unwrap();
    let pages = (0..10).map(|b| page(1, b)).collect();
    smgr.extend(rel, MAIN, 0, pages).await.unwrap();
    // Segment 0 loses its last block.
    let path = smgr.segment_path(rel, MAIN, 0).unwrap();
    let mode = OpenMode {
        write: true,
        create: false,
        create_new: false,
    };
    fs.open(&path, mode)
        .unwrap()
        .set_len(3 * BS as u64)
        .unwrap();

    let smgr = open(&fs, 4);
    match smgr.read_to_vec(rel, MAIN, 8, 2).await {
        Err(Error::CorruptSegment { path, segno, .. }) => {
            assert_eq!((path.as_str(), segno), ("base/5/100", 0));
        }
        other => panic!(
            "a read past a short segment 0 gave {:?}",
            other.map(|bytes| bytes.len())
        ),
    }
}
