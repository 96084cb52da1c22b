//! A minimal page lender, for testing backends' buffer ownership.

// Test support that plays a buffer pool: it lends raw memory.
#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{PageBuf, PageLender};

/// A fixed arena of frames that lends each frame as a [`PageBuf`] and
/// records when it comes back, as a buffer pool would. Frame contents can
/// only be inspected while the frame is not lent.
///
/// The memory is one raw allocation that no Rust reference ever covers
/// while a frame is lent, so an I/O writing into a lent frame from another
/// thread races with nothing.
#[derive(Debug)]
pub struct LendingArena {
    base: NonNull<u8>,
    layout: Layout,
    frame_bytes: usize,
    state: Mutex<ArenaState>,
}

#[derive(Debug)]
struct ArenaState {
    lent: Vec<bool>,
    returns: Vec<usize>,
}

// SAFETY: the raw memory is only touched through lent `PageBuf`s (one per
// frame at a time) or, for frames not lent, under the state mutex.
unsafe impl Send for LendingArena {}
// SAFETY: as above.
unsafe impl Sync for LendingArena {}

impl LendingArena {
    /// An arena of `frames` zeroed frames of `frame_bytes` bytes each.
    pub fn new(frames: usize, frame_bytes: usize) -> Arc<Self> {
        let size = (frames * frame_bytes).max(1);
        let layout = match Layout::from_size_align(size, 4096) {
            Ok(layout) => layout,
            Err(err) => panic!("arena of {frames} x {frame_bytes} bytes: {err}"),
        };
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let Some(base) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout);
        };
        Arc::new(LendingArena {
            base,
            layout,
            frame_bytes,
            state: Mutex::new(ArenaState {
                lent: vec![false; frames],
                returns: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, ArenaState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lends frame `frame`. Panics if it is already lent.
    pub fn lend(self: &Arc<Self>, frame: usize) -> PageBuf {
        let mut state = self.state();
        assert!(!state.lent[frame], "frame {frame} lent twice");
        state.lent[frame] = true;
        let lender: Arc<dyn PageLender> = self.clone();
        // SAFETY: `frame` is in range (the index above checked it), so the
        // pointer is inside the allocation, which lives as long as the Arc
        // the PageBuf holds; the `lent` flag keeps every other access off
        // the frame until `page_returned`.
        unsafe {
            PageBuf::from_lent(
                self.base.add(frame * self.frame_bytes),
                self.frame_bytes,
                lender,
                frame,
            )
        }
    }

    /// Lends frames `0 .. count`.
    pub fn lend_first(self: &Arc<Self>, count: usize) -> Vec<PageBuf> {
        (0..count).map(|frame| self.lend(frame)).collect()
    }

    /// Frames lent and not yet returned.
    pub fn outstanding(&self) -> usize {
        self.state().lent.iter().filter(|&&lent| lent).count()
    }

    /// Frame numbers in the order they came back (a frame lent twice
    /// appears twice).
    pub fn returns(&self) -> Vec<usize> {
        self.state().returns.clone()
    }

    /// Waits (polling) until no frame is lent; false after `timeout`.
    pub async fn wait_all_returned(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        while self.outstanding() > 0 {
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// A copy of frame `frame`. Panics if it is lent.
    pub fn frame(&self, frame: usize) -> Vec<u8> {
        let state = self.state();
        assert!(!state.lent[frame], "frame {frame} is lent");
        // SAFETY: the frame is in the allocation and not lent, so no
        // PageBuf refers to it, and the state lock keeps it from being lent
        // while we copy.
        unsafe {
            std::slice::from_raw_parts(
                self.base.add(frame * self.frame_bytes).as_ptr(),
                self.frame_bytes,
            )
            .to_vec()
        }
    }
}

// SAFETY: `lend` hands out each frame at most once until it is returned,
// and `frame` reads only frames that are not lent; `page_returned` does not
// panic for any token `lend` issued.
unsafe impl PageLender for LendingArena {
    fn page_returned(&self, token: usize) {
        let mut state = self.state();
        if let Some(lent) = state.lent.get_mut(token) {
            *lent = false;
        }
        state.returns.push(token);
    }
}

impl Drop for LendingArena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; every lent PageBuf
        // holds an Arc of the arena, so none is alive now.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}
