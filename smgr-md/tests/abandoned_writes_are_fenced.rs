//! A write or extend whose future is dropped keeps running on the blocking
//! pool; a later truncate or unlink of the fork waits for it, so the
//! abandoned I/O can never land after the size change (which would leave a
//! segment past a short one, or resurrect truncated data).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

fn poll_once_then_drop<F: Future>(future: F) {
    let mut future = pin!(future);
    let _ = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_after_an_abandoned_extend_leaves_a_well_formed_fork() {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::new(1024).unwrap();
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(bs, 4)).unwrap();
    for round in 0..50u32 {
        let rel = RelFileLocator::in_database(5, 1500 + round);
        smgr.create(rel, MAIN).await.unwrap();
        let pages = (0..64)
            .map(|b| PageBuf::copy_from(&pattern_page(1024, round, b)))
            .collect();
        poll_once_then_drop(smgr.extend(rel, MAIN, 0, pages));
        smgr.truncate(rel, MAIN, 0)
            .await
            .unwrap_or_else(|err| panic!("round {round}: {err}"));
        assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 0, "round {round}");
        assert!(
            !smgr.segment_path(rel, MAIN, 1).unwrap().exists(),
            "round {round}: segment .1 survived"
        );
        // A fresh backend (no cached handles) sees the same.
        let fresh = MdSmgr::open(dir.path(), MdOptions::new(bs, 4)).unwrap();
        assert_eq!(fresh.nblocks(rel, MAIN).await.unwrap(), 0, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_after_an_abandoned_write_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::new(1024).unwrap();
    let smgr = MdSmgr::open(dir.path(), MdOptions::new(bs, 4)).unwrap();
    for round in 0..50u32 {
        let rel = RelFileLocator::in_database(5, 1600 + round);
        smgr.create(rel, MAIN).await.unwrap();
        smgr.zero_extend(rel, MAIN, 0, 16).await.unwrap();
        let pages = (0..16)
            .map(|b| PageBuf::copy_from(&pattern_page(1024, round, b)))
            .collect();
        poll_once_then_drop(smgr.writev(rel, MAIN, 0, pages));
        smgr.unlink(rel, MAIN).await.unwrap();
        assert!(!smgr.exists(rel, MAIN).await.unwrap(), "round {round}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("base/5"))
                .unwrap()
                .count(),
            0,
            "round {round}: files left"
        );
    }
}
