//! Optimistic reads: a page read in place without a pin or a lock, kept
//! only if a version check says nothing changed it meanwhile (as vmcache
//! and LeanStore read). A pin writes the frame's state word, so two cores
//! pinning the same hot page pass its cache line back and forth; an
//! optimistic read writes nothing shared, so readers of one page on many
//! cores do not slow each other down.
//!
//! The reader loads the frame's version (even: no change under way),
//! checks that the frame is mapped to the page and valid, reads, and loads
//! the version again: equal means no writer (exclusive lock), eviction or
//! read into the frame happened in between, so what was read is a state
//! the page really had. The bytes are read with volatile loads, as
//! `crossbeam`'s sequence lock does, since a writer (through a `PageMut`,
//! or a backend's `readv` into the frame after it was evicted and lent
//! again) may be changing them while they are read; a result computed from
//! such bytes is thrown away. Under Rust's memory model such a read racing
//! a write is formally a data race, as in every sequence lock written in
//! Rust today; the volatile loads keep the compiler from assuming
//! otherwise, and the hardware gives some value, which the version check
//! then discards. (An atomic byte-wise copy, Rust RFC 3301, would make it
//! formally sound; it is not stable yet.)

use std::marker::PhantomData;

use smgr_api::{BlockNumber, ForkNumber, RelFileLocator};

use crate::state::{EXCLUSIVE, LENT, MAPPED, VALID};
use crate::stats::Counters;
use crate::{BufferPool, BufferTag, ReadBufferMode, Result};

/// Optimistic attempts before falling back to a pinned, locked read.
const ATTEMPTS: usize = 4;

/// A page seen by an optimistic read ([`BufferPool::read_with`]). Its bytes
/// may be changing while they are read: what is read through it is only
/// trusted once the read is validated, which `read_with` does after the
/// closure returns.
pub struct PageView<'a> {
    ptr: *const u8,
    len: usize,
    _page: PhantomData<&'a [u8]>,
}

impl PageView<'_> {
    /// The page's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the page has no bytes (never: pages are at least 1 KiB).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `out.len()` bytes from `offset` into `out`; `None` if that
    /// reaches past the page.
    pub fn read_into(&self, offset: usize, out: &mut [u8]) -> Option<()> {
        let end = offset.checked_add(out.len())?;
        if end > self.len {
            return None;
        }
        for (i, byte) in out.iter_mut().enumerate() {
            #[allow(unsafe_code)]
            // SAFETY: `offset + i < self.len`, inside the frame, which the
            // pool's mapping keeps readable while the pool lives (the
            // view's lifetime is bounded by the pool's borrow). The load is
            // volatile because a writer may store to the byte meanwhile;
            // the value is then discarded by the version check.
            {
                *byte = unsafe { self.ptr.add(offset + i).read_volatile() };
            }
        }
        Some(())
    }

    /// The byte at `offset`.
    pub fn u8_at(&self, offset: usize) -> Option<u8> {
        let mut b = [0u8; 1];
        self.read_into(offset, &mut b).map(|()| b[0])
    }

    /// The little-endian `u16` at `offset`.
    pub fn u16_le_at(&self, offset: usize) -> Option<u16> {
        let mut b = [0u8; 2];
        self.read_into(offset, &mut b)
            .map(|()| u16::from_le_bytes(b))
    }

    /// The little-endian `u32` at `offset`.
    pub fn u32_le_at(&self, offset: usize) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read_into(offset, &mut b)
            .map(|()| u32::from_le_bytes(b))
    }

    /// The little-endian `u64` at `offset`.
    pub fn u64_le_at(&self, offset: usize) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read_into(offset, &mut b)
            .map(|()| u64::from_le_bytes(b))
    }

    /// The whole page, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len];
        let _ = self.read_into(0, &mut out);
        out
    }
}

impl BufferPool {
    /// Reads from a page without pinning or locking it: `f` runs on the
    /// page in place and its result is returned if nothing changed the
    /// page meanwhile (a version check). Pins and shared locks write the
    /// frame's state word; this writes nothing shared, so many cores can
    /// read one hot page at full speed.
    ///
    /// `f` may run more than once, and on bytes a writer is changing: its
    /// result is thrown away unless validated, so it must not act on what
    /// it reads (no I/O, no panics on odd values: [`PageView`]'s accessors
    /// return `None` rather than panic). If the page is not valid in the
    /// pool, or keeps changing, the page is read through a pin and a shared
    /// lock instead ([`read_buffer`](Self::read_buffer) in `mode`), so the
    /// call always answers.
    ///
    /// # Errors
    ///
    /// Those of [`read_buffer`](Self::read_buffer), on the fallback path.
    pub async fn read_with<R>(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        mode: ReadBufferMode,
        mut f: impl FnMut(&PageView<'_>) -> R,
    ) -> Result<R> {
        let tag = BufferTag::new(rel, fork, block);
        for _ in 0..ATTEMPTS {
            match self.try_read_optimistic(&tag, &mut f) {
                Optimistic::Read(r) => return Ok(r),
                Optimistic::Changed => continue,
                Optimistic::NotHere => break,
            }
        }
        let buffer = self.read_buffer(rel, fork, block, mode).await?;
        let page = buffer.read()?;
        let view = PageView {
            ptr: page.as_ptr(),
            len: page.len(),
            _page: PhantomData,
        };
        Ok(f(&view))
    }

    fn try_read_optimistic<R>(
        &self,
        tag: &BufferTag,
        f: &mut impl FnMut(&PageView<'_>) -> R,
    ) -> Optimistic<R> {
        let inner = &self.inner;
        let mut outcome = Optimistic::NotHere;
        inner.table.probe(tag, |frame| {
            let Some(desc) = inner.frames.get(frame as usize) else {
                return false;
            };
            let Some(version) = desc.read_version() else {
                outcome = Optimistic::Changed;
                return true;
            };
            let state = desc.load();
            if !state.has(MAPPED | VALID) || state.any(LENT | EXCLUSIVE) || !desc.has_tag(tag) {
                // Another page's frame (same fingerprint), or this one not
                // readable now: look on, then fall back.
                return false;
            }
            let view = PageView {
                ptr: inner.memory.frame_ptr(frame as usize).as_ptr(),
                len: inner.block_size.bytes(),
                _page: PhantomData,
            };
            let result = f(&view);
            outcome = if desc.still(version) {
                Counters::add(&inner.stats.here().hits, 1);
                Optimistic::Read(result)
            } else {
                Optimistic::Changed
            };
            true
        });
        outcome
    }
}

enum Optimistic<R> {
    Read(R),
    Changed,
    NotHere,
}
