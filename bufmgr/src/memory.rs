//! The pool's frame memory: one anonymous mapping, faulted in up front.
//!
//! First touch of fresh memory costs 0.4–2 s per GiB on these machines
//! (DESIGN.md), and it would land on the first reads. So the whole pool is
//! one mapping, advised to use transparent huge pages, and populated when
//! the pool is built (`MAP_POPULATE`), not on the first read.

// The one module of this crate that needs `unsafe`: raw memory.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr::NonNull;

use crate::{Error, Result};

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
        let mut flags = rustix::mm::MapFlags::PRIVATE;
        if populate {
            flags |= rustix::mm::MapFlags::POPULATE;
        }
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // aliases nothing; we own it until `drop` unmaps it.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                flags,
            )
        }
        .map_err(|errno| Error::Memory {
            bytes: len,
            source: errno.into(),
        })?;
        // Huge pages are an optimization: ignore a refusal. Advising after
        // POPULATE still lets khugepaged collapse the range later.
        // SAFETY: the range is exactly the mapping just created.
        let _ = unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxHugepage) };
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
