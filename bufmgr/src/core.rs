//! The part of the pool a [`Buffer`](crate::Buffer) touches (frame
//! descriptors and frame memory), and how long it lives.
//!
//! A buffer holds no reference count: counting one up and down on every
//! pin was a third of the hit path's locked instructions. Its pin keeps
//! the core alive instead. The core is freed once no handle to the pool is
//! left (every `BufferPool` clone, reader of the page table, I/O in flight
//! and lent page holds the pool's `Arc`) *and* no frame is pinned:
//!
//! - when the last handle goes, every frame's pin count is read; if all
//!   are zero the core is freed there;
//! - otherwise a reaper thread reads them again, every millisecond at
//!   first and backing off to every 200 ms, and frees the core when they
//!   are all zero. (A buffer leaked with `mem::forget` keeps its pin, so
//!   the core and that thread stay for good: memory leaked, never freed
//!   under a live pin.)
//!
//! Why a scan that sees zeros is enough: with no handle left, a new pin can
//! only come from cloning a live buffer, whose frame is then already
//! pinned; so a frame seen unpinned stays unpinned, and once every frame
//! was seen unpinned no buffer exists. A buffer's drop touches the core for
//! the last time in the atomic decrement of its pin (as `Arc`'s drop does
//! with its count), so the core may go the moment that decrement is seen.

// This module owns raw memory whose lifetime it manages by hand.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::ptr::NonNull;

use smgr_api::BlockSize;

use crate::frame::FrameDesc;
use crate::memory::{Array, FrameMemory};

/// What buffers touch.
pub(crate) struct Core {
    pub memory: FrameMemory,
    pub frames: Array<FrameDesc>,
    pub block_size: BlockSize,
}

impl Core {
    fn unpinned(&self) -> bool {
        self.frames.iter().all(|desc| desc.load().pins() == 0)
    }
}

/// The pool's ownership of its core: freed on drop once no frame is
/// pinned, by a reaper thread if some still are.
pub(crate) struct CoreBox(NonNull<Core>);

// SAFETY: `Core` is made of atomics and memory whose use is governed by
// the frames' state words; it is `Send` and `Sync`, and so is a pointer
// that owns it.
unsafe impl Send for CoreBox {}
// SAFETY: as above.
unsafe impl Sync for CoreBox {}

impl CoreBox {
    pub fn new(core: Core) -> Self {
        CoreBox(NonNull::from(Box::leak(Box::new(core))))
    }

    /// The core's address: what a buffer holds, and what tells pools apart.
    pub fn ptr(&self) -> NonNull<Core> {
        self.0
    }

    /// The core's address as a number, for identities kept past its life
    /// (a reader's), compared and never followed.
    pub fn id(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

impl Deref for CoreBox {
    type Target = Core;
    fn deref(&self) -> &Core {
        // SAFETY: the box owns the core until `drop`, which is the only
        // place that frees it.
        unsafe { self.0.as_ref() }
    }
}

/// A core pointer that may cross to the reaper thread.
struct SendCore(NonNull<Core>);
// SAFETY: see `CoreBox`.
unsafe impl Send for SendCore {}

impl SendCore {
    /// Frees the core if no frame is pinned; true if it did.
    ///
    /// # Safety
    ///
    /// No handle to the pool may be left, the core must not have been
    /// freed yet, and only one thread may call this at a time.
    unsafe fn free_if_unpinned(&self) -> bool {
        // SAFETY: not freed yet (the caller's promise).
        let unpinned = unsafe { self.0.as_ref() }.unpinned();
        if unpinned {
            // SAFETY: allocated by `Box` in `CoreBox::new`; no handle is
            // left and no frame is pinned, so no buffer exists and none
            // can appear (module docs): nothing refers to it any more.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        }
        unpinned
    }
}

impl Drop for CoreBox {
    fn drop(&mut self) {
        if cfg!(shuttle) {
            // Under shuttle the state words are shuttle's atomics, which
            // cannot be read while it tears an execution down (where the
            // last handle often goes), and no real thread may be started:
            // a test build leaves the core allocated.
            return;
        }
        let core = SendCore(self.0);
        // SAFETY: this box was the last handle's (it lives in the pool's
        // `Arc`, now dropped); the core is not freed yet, and this thread
        // is the only one to look.
        if unsafe { core.free_if_unpinned() } {
            return;
        }
        let started = std::thread::Builder::new()
            .name("bufmgr-reaper".into())
            .spawn(move || {
                let core = core;
                // Each look reads every frame's state word: look often at
                // first (buffers usually go soon), then less and less.
                let mut wait = std::time::Duration::from_millis(1);
                loop {
                    // A dedicated thread, not an async worker.
                    #[allow(clippy::disallowed_methods)]
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_millis(200));
                    // SAFETY: no handle is left; the core is freed only
                    // here, by this one thread.
                    if unsafe { core.free_if_unpinned() } {
                        return;
                    }
                }
            });
        if let Err(err) = started {
            tracing::warn!(error = %err, "cannot start a thread to free the buffer pool once its buffers are dropped; its memory stays allocated");
        }
    }
}
