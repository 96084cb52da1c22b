//! An fsync that fails is returned to the caller with the file it failed
//! on, never swallowed. A FIFO in place of a segment makes the kernel
//! refuse the fsync (EINVAL), a real failure we can cause without root
//! tricks or a broken disk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::{BlockSize, Error, ForkNumber, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_error_of_a_later_segment_is_surfaced() {
    let dir = tempfile::tempdir().unwrap();
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(BlockSize::new(1024).unwrap(), 4)).unwrap();
    let rel = RelFileLocator::in_database(5, 900);
    smgr.create(rel, ForkNumber::Main).await.unwrap();
    smgr.zero_extend(rel, ForkNumber::Main, 0, 4).await.unwrap();
    smgr.immedsync(rel, ForkNumber::Main).await.unwrap();

    let seg1 = smgr.segment_path(rel, ForkNumber::Main, 1).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &seg1,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let err = smgr.immedsync(rel, ForkNumber::Main).await.unwrap_err();
    match &err {
        Error::Io { op, path, source } => {
            assert_eq!((*op, path.as_str()), ("fsync", "base/5/900.1"));
            assert_eq!(
                source.raw_os_error(),
                Some(rustix::io::Errno::INVAL.raw_os_error())
            );
        }
        other => panic!("expected an fsync Io error, got {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("could not fsync \"base/5/900.1\""),
        "{err}"
    );
}
