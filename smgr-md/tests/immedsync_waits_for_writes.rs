//! `immedsync` covers every earlier write, as the trait promises, even a
//! write whose future was dropped while its I/O was still running: it
//! waits for that write before it syncs, so what it confirmed survives
//! power loss.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::time::Duration;

use common::{open, page, BS, MAIN};
use smgr_api::testkit::pattern_page;
use smgr_api::{RelFileLocator, Smgr, SmgrExt};
use smgr_md::testing::CrashFs;

struct Resume(CrashFs);

impl Drop for Resume {
    fn drop(&mut self) {
        self.0.resume_writes();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immedsync_covers_a_write_whose_future_was_dropped() {
    let fs = CrashFs::new();
    let smgr = open(&fs, 4);
    let rel = RelFileLocator::in_database(5, 100);
    smgr.create(rel, MAIN).await.unwrap();
    smgr.extend(rel, MAIN, 0, vec![page(1, 0)]).await.unwrap();
    smgr.immedsync(rel, MAIN).await.unwrap();

    // The device holds the next write; its caller gives up waiting. (Held
    // writes go on if the test fails, or the runtime would wait forever.)
    fs.pause_writes();
    let _resume = Resume(fs.clone());
    let mut write = Box::pin(smgr.writev(rel, MAIN, 0, vec![page(2, 0)]));
    while fs.writes_held() == 0 {
        tokio::select! {
            _ = &mut write => panic!("the write finished while the device held it"),
            () = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
    drop(write);

    let sync = tokio::spawn({
        let smgr = smgr.clone();
        async move { smgr.immedsync(rel, MAIN).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !sync.is_finished(),
        "immedsync returned while an earlier write was still in flight"
    );
    fs.resume_writes();
    sync.await.unwrap().unwrap();

    // Whatever the cut keeps, the write immedsync covered is there.
    for seed in 0..16 {
        let disk = fs.duplicate();
        disk.power_cut(seed);
        let bytes = open(&disk, 4).read_to_vec(rel, MAIN, 0, 1).await.unwrap();
        assert!(
            bytes == pattern_page(BS, 2, 0),
            "seed {seed}: the covered write was lost"
        );
    }
}
