//! Reads go straight into memory lent by a pool (no copy through a buffer
//! of the backend's own), and a read whose future is dropped while the I/O
//! runs on the blocking pool still completes into that memory and returns
//! each frame to its lender exactly once, only after the I/O is over.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
#![allow(unsafe_code)] // the test plays the pool: it lends raw frame memory

use std::future::Future;
use std::pin::pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, PageLender, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

const BS: usize = 4096;
const FRAMES: usize = 8;

/// A toy pool: one allocation of frames, each lent at most once at a time.
struct Pool {
    memory: Box<[u8]>,
    returned: Mutex<Vec<usize>>,
    outstanding: AtomicUsize,
}

// SAFETY: `lend` hands out each frame once; the test reads `memory` only
// after every lent frame came back through `page_returned`, and never
// moves or frees the box while frames are out (the Arc keeps it alive).
unsafe impl PageLender for Pool {
    fn page_returned(&self, token: usize) {
        self.returned.lock().unwrap().push(token);
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    fn new() -> Arc<Self> {
        Arc::new(Pool {
            memory: vec![0u8; BS * FRAMES].into_boxed_slice(),
            returned: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
        })
    }

    fn lend(self: &Arc<Self>) -> Vec<PageBuf> {
        let base = self.memory.as_ptr() as *mut u8;
        (0..FRAMES)
            .map(|frame| {
                self.outstanding.fetch_add(1, Ordering::SeqCst);
                let ptr = NonNull::new(base.wrapping_add(frame * BS)).unwrap();
                // SAFETY: frame `frame` of a live allocation, disjoint from
                // the others, not lent twice (see the PageLender impl).
                unsafe { PageBuf::from_lent(ptr, BS, self.clone(), frame) }
            })
            .collect()
    }

    fn frame(&self, frame: usize) -> &[u8] {
        assert_eq!(
            self.outstanding.load(Ordering::SeqCst),
            0,
            "frames still lent"
        );
        &self.memory[frame * BS..(frame + 1) * BS]
    }
}

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
    let pool = Pool::new();
    let bufs = smgr
        .readv(rel, ForkNumber::Main, 0, pool.lend())
        .await
        .unwrap();
    assert!(
        bufs.iter().all(PageBuf::is_lent),
        "the backend swapped in buffers of its own"
    );
    assert!(
        pool.returned.lock().unwrap().is_empty(),
        "frames returned while the caller holds them"
    );
    drop(bufs);
    let mut returned = pool.returned.lock().unwrap().clone();
    returned.sort_unstable();
    assert_eq!(returned, (0..FRAMES).collect::<Vec<_>>());
    for frame in 0..FRAMES {
        assert!(
            pool.frame(frame) == pattern_page(BS, 4, frame as u32),
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
        let pool = Pool::new();
        {
            let read = smgr.readv(rel, ForkNumber::Main, 0, pool.lend());
            let mut read = pin!(read);
            let _ = read.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            // Dropped here, possibly while preadv runs on the blocking pool.
        }
        let mut waited = Duration::ZERO;
        while pool.outstanding.load(Ordering::SeqCst) > 0 {
            assert!(waited < Duration::from_secs(20), "frames never came back");
            tokio::time::sleep(Duration::from_millis(5)).await;
            waited += Duration::from_millis(5);
        }
        let returned = pool.returned.lock().unwrap().clone();
        assert_eq!(
            returned.len(),
            FRAMES,
            "each frame returned exactly once: {returned:?}"
        );
        // The abandoned read still finished, into the lent frames: the
        // I/O owned them until it was over.
        for frame in 0..FRAMES {
            assert!(
                pool.frame(frame) == pattern_page(BS, 4, frame as u32),
                "frame {frame}"
            );
        }
    }
}
