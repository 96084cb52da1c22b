//! Reads and prefetches racing with a truncate may see the old or the new
//! size, but they must not leave a handle of a removed segment in the
//! cache: blocks extended after the truncate must go to the live files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt};
use smgr_md::{MdOptions, MdSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extends_after_a_racing_truncate_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::new(1024).unwrap();
    let smgr = Arc::new(MdSmgr::open(dir.path(), MdOptions::new(bs, 4)).unwrap());
    let rel = RelFileLocator::in_database(5, 1700);
    smgr.create(rel, MAIN).await.unwrap();
    for round in 0..100u32 {
        let pages = (0..8)
            .map(|b| PageBuf::copy_from(&pattern_page(1024, round, b)))
            .collect();
        smgr.extend(rel, MAIN, 0, pages).await.unwrap();
        let reader = {
            let smgr = smgr.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    smgr.prefetch(rel, MAIN, 4, 4).await;
                    let _ = smgr.read_to_vec(rel, MAIN, 4, 2).await;
                    tokio::task::yield_now().await;
                }
            })
        };
        smgr.truncate(rel, MAIN, 0).await.unwrap();
        reader.await.unwrap();
        let pages = (0..8)
            .map(|b| PageBuf::copy_from(&pattern_page(1024, round + 1000, b)))
            .collect();
        smgr.extend(rel, MAIN, 0, pages).await.unwrap();
        // Read back through a backend with no cached handles.
        let fresh = MdSmgr::open(dir.path(), MdOptions::new(bs, 4)).unwrap();
        let bytes = fresh.read_to_vec(rel, MAIN, 0, 8).await.unwrap();
        for b in 0..8 {
            assert!(
                bytes[b * 1024..(b + 1) * 1024] == pattern_page(1024, round + 1000, b as u32)[..],
                "round {round} block {b}"
            );
        }
        smgr.truncate(rel, MAIN, 0).await.unwrap();
    }
}
