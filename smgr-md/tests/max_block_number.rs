//! The last valid block, `MAX_BLOCK_NUMBER` (`u32::MAX - 1`), can really be
//! written and read, and nothing past it can. Uses 1 KiB blocks and 1 TiB
//! sparse segments (four files, almost no disk space) so the fork reaches
//! the top of the block range.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::testkit::pattern_page;
use smgr_api::{
    BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt, MAX_BLOCK_NUMBER,
};
use smgr_md::{MdOptions, MdSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_block_number_is_usable_and_the_next_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::new(1024).unwrap();
    let seg: u32 = 1 << 30;
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(bs, seg)).unwrap();
    let rel = RelFileLocator::in_database(5, 1100);
    smgr.create(rel, MAIN).await.unwrap();

    // Three full sparse segments and a fourth one block short of the top.
    for segno in 0..3 {
        let path = smgr.segment_path(rel, MAIN, segno).unwrap();
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap()
            .set_len(u64::from(seg) * 1024)
            .unwrap();
    }
    let last = smgr.segment_path(rel, MAIN, 3).unwrap();
    let last_blocks = u64::from(MAX_BLOCK_NUMBER) - 3 * u64::from(seg);
    std::fs::File::create(&last)
        .unwrap()
        .set_len(last_blocks * 1024)
        .unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), MAX_BLOCK_NUMBER);

    let page = pattern_page(1024, 1, MAX_BLOCK_NUMBER);
    smgr.extend_block(rel, MAIN, MAX_BLOCK_NUMBER, &page)
        .await
        .unwrap();
    assert_eq!(
        smgr.nblocks(rel, MAIN).await.unwrap(),
        u32::MAX,
        "2^32 - 1 blocks"
    );
    assert_eq!(
        *smgr.read_block(rel, MAIN, MAX_BLOCK_NUMBER).await.unwrap(),
        *page
    );
    let two = smgr
        .read_to_vec(rel, MAIN, MAX_BLOCK_NUMBER - 1, 2)
        .await
        .unwrap();
    assert!(two[..1024].iter().all(|&b| b == 0) && two[1024..] == page[..]);

    let err = smgr
        .extend(rel, MAIN, u32::MAX, vec![PageBuf::copy_from(&page)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BlockOutOfRange { .. }), "{err}");
    let err = smgr.zero_extend(rel, MAIN, u32::MAX, 1).await.unwrap_err();
    assert!(matches!(err, Error::BlockOutOfRange { .. }), "{err}");
    let rewritten = pattern_page(1024, 2, MAX_BLOCK_NUMBER);
    smgr.write_block(rel, MAIN, MAX_BLOCK_NUMBER, &rewritten)
        .await
        .unwrap();
    assert_eq!(
        *smgr.read_block(rel, MAIN, MAX_BLOCK_NUMBER).await.unwrap(),
        *rewritten
    );

    smgr.truncate(rel, MAIN, 3).await.unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 3);
    assert!(!smgr.segment_path(rel, MAIN, 1).unwrap().exists());
}
