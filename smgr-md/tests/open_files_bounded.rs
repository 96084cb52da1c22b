//! A relation with many more segments than the open-file limit can be read
//! and written whole: the backend keeps at most `max_open_files` segment
//! files open, and the process's descriptor count stays bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_segments_few_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::new(1024).unwrap();
    let limit = 8;
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(bs, 1).max_open_files(limit)).unwrap();
    let rel = RelFileLocator::in_database(5, 1000);
    let blocks = 300u32;
    let before = open_descriptors();

    smgr.create(rel, ForkNumber::Main).await.unwrap();
    let pages: Vec<PageBuf> = (0..blocks)
        .map(|b| PageBuf::copy_from(&pattern_page(1024, 3, b)))
        .collect();
    smgr.extend(rel, ForkNumber::Main, 0, pages).await.unwrap();
    assert_eq!(smgr.nblocks(rel, ForkNumber::Main).await.unwrap(), blocks);
    assert!(dir.path().join("base/5/1000.299").exists());

    // One readv across all 300 segment files, then block by block.
    let bufs = smgr
        .readv(
            rel,
            ForkNumber::Main,
            0,
            PageBuf::zeroed_blocks(bs, blocks as usize),
        )
        .await
        .unwrap();
    for (b, buf) in bufs.iter().enumerate() {
        assert!(**buf == *pattern_page(1024, 3, b as u32), "block {b}");
    }
    for b in (0..blocks).rev() {
        smgr.readv(rel, ForkNumber::Main, b, PageBuf::zeroed_blocks(bs, 1))
            .await
            .unwrap();
        assert!(
            smgr.open_files() <= limit,
            "{} files open",
            smgr.open_files()
        );
    }
    // One writev across all 300 segments, within the descriptor limit.
    let rewrite: Vec<PageBuf> = (0..blocks)
        .map(|b| PageBuf::copy_from(&pattern_page(1024, 4, b)))
        .collect();
    smgr.writev(rel, ForkNumber::Main, 0, rewrite)
        .await
        .unwrap();
    assert!(
        smgr.open_files() <= limit,
        "{} files open",
        smgr.open_files()
    );
    let back = smgr
        .readv(
            rel,
            ForkNumber::Main,
            0,
            PageBuf::zeroed_blocks(bs, blocks as usize),
        )
        .await
        .unwrap();
    assert!(*back[299] == *pattern_page(1024, 4, 299));
    smgr.immedsync(rel, ForkNumber::Main).await.unwrap();
    let after = open_descriptors();
    // The blocking pool's threads may hold a few descriptors of their own.
    assert!(
        after <= before + limit + 4,
        "{before} descriptors before, {after} after"
    );
    smgr.unlink(rel, ForkNumber::Main).await.unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("base/5"))
            .unwrap()
            .count(),
        0
    );
}
