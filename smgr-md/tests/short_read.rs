//! A torn segment file (shorter than its blocks) gives a short-read error
//! that names the segment file, the blocks and the byte counts, never a
//! zero-filled page.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::{BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt};
use smgr_md::{MdOptions, MdSmgr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_block_is_a_short_read_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::new(1024).unwrap();
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(bs, 4)).unwrap();
    let rel = RelFileLocator::in_database(5, 700);
    smgr.create(rel, ForkNumber::Main).await.unwrap();
    smgr.zero_extend(rel, ForkNumber::Main, 0, 6).await.unwrap();
    // Tear segment .1 in the middle of its second block.
    let seg1 = smgr.segment_path(rel, ForkNumber::Main, 1).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg1)
        .unwrap()
        .set_len(1536)
        .unwrap();

    assert_eq!(
        smgr.nblocks(rel, ForkNumber::Main).await.unwrap(),
        5,
        "a partial block is not counted"
    );
    let err = smgr
        .readv(rel, ForkNumber::Main, 3, PageBuf::zeroed_blocks(bs, 3))
        .await
        .unwrap_err();
    match &err {
        Error::ShortRead {
            path,
            first,
            last,
            read,
            expected,
        } => {
            assert_eq!(path, "base/5/700.1");
            assert_eq!((*first, *last), (3, 5));
            assert_eq!((*read, *expected), (2560, 3072));
        }
        other => panic!("expected ShortRead, got {other}"),
    }
    assert_eq!(
        err.to_string(),
        "could not read blocks 3..5 in file \"base/5/700.1\": read only 2560 of 3072 bytes"
    );
    // The whole blocks before the tear still read.
    smgr.read_to_vec(rel, ForkNumber::Main, 0, 5).await.unwrap();
}
