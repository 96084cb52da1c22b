//! Per-frame state: what page a frame holds and who is using it.
//!
//! Each frame has a small header under a mutex (PostgreSQL packs the same
//! facts into one atomic word with a spinlock bit; a mutex held for a few
//! instructions is as cheap uncontended and much easier to get right), a
//! `Notify` on which tasks wait for the frame's I/O to end, and the content
//! lock that guards the page bytes.
//!
//! Lock order: a page-table partition before a frame header, never the
//! other way round; a frame header is never held across an `.await`.

use crate::sync::{Mutex, MutexGuard, RwLock};

use tokio::sync::Notify;

use crate::BufferTag;

/// Usage counts saturate here (PostgreSQL's `BM_MAX_USAGE_COUNT`).
pub(crate) const MAX_USAGE: u8 = 5;

/// What I/O a frame is busy with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Io {
    None,
    /// A read into the frame is in progress; the page is not valid.
    Reading,
    /// The page is being written out; it stays valid and readable.
    Writing,
}

#[derive(Debug)]
pub(crate) struct FrameMeta {
    /// The page held, or `None` for a free frame.
    pub tag: Option<BufferTag>,
    /// Pins held by `Buffer` handles.
    pub pins: u32,
    /// Clock-sweep usage count.
    pub usage: u8,
    /// The page bytes are the page's contents.
    pub valid: bool,
    /// Modified since last written.
    pub dirty: bool,
    /// Modified since the write in progress took its copy.
    pub just_dirtied: bool,
    pub io: Io,
    /// The last read of this page failed; the next reader retries.
    pub io_error: bool,
    /// The frame's memory is lent to an I/O as a `PageBuf` and must not be
    /// touched or reused until it comes back.
    pub lent: bool,
}

impl FrameMeta {
    const fn new() -> Self {
        FrameMeta {
            tag: None,
            pins: 0,
            usage: 0,
            valid: false,
            dirty: false,
            just_dirtied: false,
            io: Io::None,
            io_error: false,
            lent: false,
        }
    }

    /// Whether clock sweep may take the frame (ignoring usage and dirt).
    pub fn evictable(&self) -> bool {
        self.pins == 0 && !self.lent && self.io == Io::None
    }
}

pub(crate) struct FrameDesc {
    meta: Mutex<FrameMeta>,
    /// Woken when the frame's I/O ends or its memory comes back.
    pub io_done: Notify,
    /// Shared for reading the page, exclusive for changing it.
    pub content: RwLock<()>,
}

impl FrameDesc {
    pub fn new() -> Self {
        FrameDesc {
            meta: Mutex::new(FrameMeta::new()),
            io_done: Notify::new(),
            content: RwLock::new(()),
        }
    }

    pub fn meta(&self) -> MutexGuard<'_, FrameMeta> {
        // Header updates are single assignments that cannot be left half
        // done by a panic elsewhere; keep going after one.
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `done(meta)` holds, re-checking whenever the frame's
    /// I/O ends. Never holds the header across the wait.
    pub async fn wait_until(&self, done: impl Fn(&FrameMeta) -> bool) {
        loop {
            let notified = self.io_done.notified();
            tokio::pin!(notified);
            // Register before checking, so a wake-up between the check and
            // the await is not lost.
            notified.as_mut().enable();
            if done(&self.meta()) {
                return;
            }
            notified.await;
        }
    }
}
