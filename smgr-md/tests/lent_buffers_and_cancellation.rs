//! Reads go straight into memory lent by a pool (no copy through a buffer
//! of the backend's own), and a read whose future is dropped while the I/O
//! runs on the blocking pool still completes into that memory and returns
//! each frame to its lender exactly once, only after the I/O is over.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::Duration;

use smgr_api::testkit::{pattern_page, LendingArena};
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

const BS: usize = 4096;
const FRAMES: usize = 8;

async fn relation(dir: &std::path::Path) -> (MdSmgr, RelFileLocator) {
    let smgr = MdSmgr::open(dir, MdOptions::new(BlockSize::new(BS as u32).unwrap(), 5)).unwrap();
    let rel = RelFileLocator::in_database(5, 1300);
    smgr.create(rel, ForkNumber::Main).await.unwrap();
    let pages = (0..FRAMES as u32)
        .map(|b| PageBuf::copy_from(&pattern_page(BS, 4, b)))
        .collect();
    smgr.extend(rel, ForkNumber::Main, 0, pages).await.unwrap();
    (smgr, rel)
}

/// Drops the two segment files from the page cache so the read cannot be
/// served inline and has to go to the blocking pool.
fn evict(smgr: &MdSmgr, rel: RelFileLocator) {
    for segno in 0..2 {
        let file =
            std::fs::File::open(smgr.segment_path(rel, ForkNumber::Main, segno).unwrap()).unwrap();
        file.sync_all().unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_land_in_lent_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path()).await;
    let arena = LendingArena::new(FRAMES, BS);
    let bufs = smgr
        .readv(rel, ForkNumber::Main, 0, arena.lend_first(FRAMES))
        .await
        .unwrap();
    assert!(
        bufs.iter().all(PageBuf::is_lent),
        "the backend swapped in buffers of its own"
    );
    assert!(
        arena.returns().is_empty(),
        "frames returned while the caller holds them"
    );
    drop(bufs);
    let mut returned = arena.returns();
    returned.sort_unstable();
    assert_eq!(returned, (0..FRAMES).collect::<Vec<_>>());
    for frame in 0..FRAMES {
        assert!(
            arena.frame(frame) == pattern_page(BS, 4, frame as u32),
            "frame {frame}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_read_returns_frames_only_after_its_io() {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path()).await;
    for _ in 0..3 {
        evict(&smgr, rel);
        let arena = LendingArena::new(FRAMES, BS);
        {
            let read = smgr.readv(rel, ForkNumber::Main, 0, arena.lend_first(FRAMES));
            let mut read = pin!(read);
            let _ = read.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            // Dropped here, possibly while preadv runs on the blocking pool.
        }
        assert!(
            arena.wait_all_returned(Duration::from_secs(20)).await,
            "frames never came back"
        );
        assert_eq!(
            arena.returns().len(),
            FRAMES,
            "each frame returned exactly once"
        );
        // The abandoned read still finished, into the lent frames: the I/O
        // owned them until it was over.
        for frame in 0..FRAMES {
            assert!(
                arena.frame(frame) == pattern_page(BS, 4, frame as u32),
                "frame {frame}"
            );
        }
    }
}
