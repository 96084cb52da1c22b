//! The pool's frame memory: one anonymous mapping, faulted in up front.
//!
//! First touch of fresh memory costs 0.4–2 s per GiB on these machines
//! (DESIGN.md), and it would land on the first reads. So the whole pool is
//! one mapping aligned to 2 MiB, advised to use transparent huge pages
//! *before* it is populated (`MADV_POPULATE_WRITE`, or touching every page
//! where that is refused), when the pool is built, not on the first read.

// The one module of this crate that needs `unsafe`: raw memory.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr::NonNull;

use crate::{Error, Result};

/// A transparent huge page on x86-64 and arm64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

pub(crate) struct FrameMemory {
    base: NonNull<u8>,
    len: usize,
    frame_bytes: usize,
}

// SAFETY: the mapping is plain memory owned by this value; which parts may
// be accessed from which thread is governed by the pool's frame states
// (pins, content locks, I/O lending), not by this type.
unsafe impl Send for FrameMemory {}
// SAFETY: as above; `&FrameMemory` only hands out raw pointers.
unsafe impl Sync for FrameMemory {}

impl FrameMemory {
    /// Maps `frames * frame_bytes` bytes of zeroed memory.
    pub fn new(frames: usize, frame_bytes: usize, populate: bool) -> Result<Self> {
        let len = frames
            .checked_mul(frame_bytes)
            .filter(|&len| len > 0)
            .ok_or(Error::InvalidConfig {
                name: "frames",
                value: frames as u64,
                reason: "pool size in bytes must be non-zero and fit in memory",
            })?;
        // Huge pages must be advised before the memory is populated:
        // populating first faults 4 KiB pages (DESIGN.md: 0.55 s for a
        // 1.4 GiB pool that way, a third of that advised first). So: map
        // with room to align to 2 MiB, trim, advise, then populate.
        let extra = if len >= HUGE_PAGE { HUGE_PAGE } else { 0 };
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // aliases nothing; we own it until `drop` unmaps it.
        let raw = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len + extra,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::PRIVATE,
            )
        }
        .map_err(|errno| Error::Memory {
            bytes: len,
            source: errno.into(),
        })?;
        let head = (HUGE_PAGE - raw as usize % HUGE_PAGE) % HUGE_PAGE;
        let head = if extra == 0 { 0 } else { head };
        // SAFETY: `head <= extra`, so `raw + head .. + len` lies inside the
        // mapping; the trimmed ends are parts of the same fresh mapping
        // that nothing refers to.
        let ptr = unsafe {
            let ptr = raw.cast::<u8>().add(head).cast::<c_void>();
            if head > 0 {
                let _ = rustix::mm::munmap(raw, head);
            }
            let tail = extra - head;
            if tail > 0 {
                let _ = rustix::mm::munmap(ptr.cast::<u8>().add(len).cast::<c_void>(), tail);
            }
            ptr
        };
        // Huge pages are an optimization: ignore a refusal.
        // SAFETY: the range is exactly the (trimmed) mapping.
        let _ = unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxHugepage) };
        if populate {
            // SAFETY: as above; populating writes zeros into our own
            // anonymous memory.
            let populated =
                unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxPopulateWrite) };
            if populated.is_err() {
                // Before Linux 5.14: touch every page instead.
                for offset in (0..len).step_by(4096) {
                    // SAFETY: `offset < len`, inside the mapping, which
                    // nothing else uses yet.
                    unsafe { ptr.cast::<u8>().add(offset).write_volatile(0) };
                }
            }
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or(Error::Memory {
            bytes: len,
            source: std::io::Error::other("mmap returned a null pointer"),
        })?;
        Ok(FrameMemory {
            base,
            len,
            frame_bytes,
        })
    }

    /// The start of frame `frame`. The caller must keep `frame` below the
    /// frame count; the pointer is valid for `frame_bytes` bytes while
    /// `self` lives.
    pub fn frame_ptr(&self, frame: usize) -> NonNull<u8> {
        debug_assert!((frame + 1) * self.frame_bytes <= self.len);
        // SAFETY: `frame * frame_bytes` is inside the mapping (the pool only
        // passes frame indexes below its frame count).
        unsafe { self.base.add(frame * self.frame_bytes) }
    }
}

impl Drop for FrameMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` with this length, and the
        // pool outlives every `PageBuf` lent from it (each holds an `Arc`
        // of the pool), so nothing refers to it any more.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast::<c_void>(), self.len) };
    }
}
