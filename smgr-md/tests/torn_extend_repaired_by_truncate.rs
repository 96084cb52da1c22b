//! An extend across a segment boundary cut by power loss can leave the
//! next segment with data while the tail of the one before never reached
//! the disk: `nblocks` reports the fork corrupt, naming the short segment,
//! and `truncate` to what is really there repairs it (it used to call
//! `nblocks` first and fail the same way, leaving only `unlink`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{open, page, scribble, BS, MAIN};
use smgr_api::testkit::pattern_page;
use smgr_api::{Error, RelFileLocator, Smgr, SmgrExt};
use smgr_md::testing::CrashFs;

#[tokio::test]
async fn truncate_repairs_a_torn_multi_segment_extend() {
    let fs = CrashFs::new();
    let smgr = open(&fs, 4);
    let rel = RelFileLocator::in_database(5, 100);
    smgr.create(rel, MAIN).await.unwrap();
    let pages = (0..3).map(|b| page(1, b)).collect();
    smgr.extend(rel, MAIN, 0, pages).await.unwrap();
    smgr.immedsync(rel, MAIN).await.unwrap();
    // Blocks 3 and 4 were being added: block 4 (segment 1) made it to
    // disk with its directory entry, block 3 (segment 0's tail) did not.
    scribble(&fs, &smgr, rel, 1, 0, &pattern_page(BS, 1, 4));

    let smgr = open(&fs, 4);
    match smgr.nblocks(rel, MAIN).await {
        Err(Error::CorruptSegment { path, segno, .. }) => {
            assert_eq!((path.as_str(), segno), ("base/5/100", 0));
        }
        other => panic!("a torn extend reads as {other:?}"),
    }
    // Asking for more than segment 0 holds cannot be honoured, and is
    // refused before anything is removed.
    match smgr.truncate(rel, MAIN, 4).await {
        Err(Error::WrongBlock { nblocks: 3, .. }) => {}
        other => panic!("truncate past what is there: {other:?}"),
    }
    let segment_1 = smgr.segment_path(rel, MAIN, 1).unwrap();
    assert_eq!(
        fs.contents(&segment_1).map(|bytes| bytes.len()),
        Some(BS),
        "a refused truncate removed segment 1"
    );
    smgr.truncate(rel, MAIN, 3).await.unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 3);
    let bytes = smgr.read_to_vec(rel, MAIN, 0, 3).await.unwrap();
    for (block, got) in bytes.chunks(BS).enumerate() {
        assert!(got == pattern_page(BS, 1, block as u32), "block {block}");
    }
    // And it extends again as usual.
    smgr.extend(rel, MAIN, 3, vec![page(2, 3), page(2, 4)])
        .await
        .unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 5);
}
