//! A read-only backend reads but refuses every change, naming the
//! relation, and leaves the files as they were.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::{BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt};
use smgr_md::{MdOptions, MdSmgr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::new(1024).unwrap();
    let rel = RelFileLocator::in_database(5, 1200);
    let writer = MdSmgr::open(dir.path(), MdOptions::new(bs, 4)).unwrap();
    writer.create(rel, ForkNumber::Main).await.unwrap();
    writer
        .extend_block(rel, ForkNumber::Main, 0, &[9u8; 1024])
        .await
        .unwrap();

    let reader = MdSmgr::open(dir.path(), MdOptions::new(bs, 4).read_only()).unwrap();
    assert_eq!(
        reader.read_block(rel, ForkNumber::Main, 0).await.unwrap()[0],
        9
    );
    let one = || vec![PageBuf::zeroed_block(bs)];
    let errors = [
        reader
            .writev(rel, ForkNumber::Main, 0, one())
            .await
            .map(drop)
            .unwrap_err(),
        reader
            .extend(rel, ForkNumber::Main, 1, one())
            .await
            .map(drop)
            .unwrap_err(),
        reader
            .zero_extend(rel, ForkNumber::Main, 1, 1)
            .await
            .unwrap_err(),
        reader.truncate(rel, ForkNumber::Main, 0).await.unwrap_err(),
        reader.unlink(rel, ForkNumber::Main).await.unwrap_err(),
        reader
            .create(RelFileLocator::in_database(5, 1201), ForkNumber::Main)
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
        assert!(err.to_string().contains("base/5/120"), "{err}");
    }
    assert_eq!(reader.nblocks(rel, ForkNumber::Main).await.unwrap(), 1);
    assert_eq!(
        writer.read_block(rel, ForkNumber::Main, 0).await.unwrap()[0],
        9
    );
}
