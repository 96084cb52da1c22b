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

/// Faults in `len` bytes at `addr` (a fresh mapping of ours): the kernel
/// zeroes every page it hands out. (Populating parts from several threads
/// at once was tried: no faster here, the zeroing is bound by memory.)
fn fault_in(addr: usize, len: usize) {
    let ptr = addr as *mut c_void;
    // SAFETY: `addr .. addr + len` is a mapping of ours that nothing uses
    // yet; populating writes zeros into it.
    let populated =
        unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxPopulateWrite) };
    if populated.is_err() {
        // Before Linux 5.14: touch every page instead.
        for offset in (0..len).step_by(4096) {
            // SAFETY: `offset < len`, inside the mapping.
            unsafe { ptr.cast::<u8>().add(offset).write_volatile(0) };
        }
    }
}

/// Types whose value made of all-zero bytes is valid and that need no drop:
/// arrays of them can live in zeroed huge-page memory ([`ZeroedArray`]).
///
/// # Safety
///
/// All-zero bytes must be a valid `Self`, and `Self` must have no drop
/// glue (its memory is unmapped without running destructors).
#[cfg(not(shuttle))]
pub(crate) unsafe trait Zeroable: Send + Sync {}

/// The pool's arrays of atomics: in zeroed huge-page memory normally; under
/// shuttle (whose atomics carry state of their own), ordinary boxes.
#[cfg(not(shuttle))]
pub(crate) type Array<T> = ZeroedArray<T>;
#[cfg(shuttle)]
pub(crate) type Array<T> = Box<[T]>;

/// `len` values made by `new` (which must be the all-zero value).
#[cfg(not(shuttle))]
pub(crate) fn array<T: Zeroable>(len: usize, _new: impl Fn() -> T) -> Result<Array<T>> {
    ZeroedArray::new(len)
}

/// `len` values made by `new`.
#[cfg(shuttle)]
pub(crate) fn array<T>(len: usize, new: impl Fn() -> T) -> Result<Array<T>> {
    Ok((0..len).map(|_| new()).collect())
}

// SAFETY: an `AtomicU64` is a `u64` in memory; zero is a valid value and it
// has no drop glue.
#[cfg(not(shuttle))]
unsafe impl Zeroable for std::sync::atomic::AtomicU64 {}

/// An array of `T` in one zeroed mapping, advised for huge pages and
/// populated up front like the frames: the pool's descriptors and
/// page-table slots are touched at random by every hit and miss, and on
/// 4 KiB pages each such touch also missed the TLB (the probe of the page
/// table was a tenth of a prewarm's CPU).
#[cfg(not(shuttle))]
pub(crate) struct ZeroedArray<T: Zeroable> {
    memory: FrameMemory,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

#[cfg(not(shuttle))]
impl<T: Zeroable> ZeroedArray<T> {
    pub fn new(len: usize) -> Result<Self> {
        const { assert!(!std::mem::needs_drop::<T>()) };
        let bytes = std::mem::size_of::<T>().max(1);
        Ok(ZeroedArray {
            memory: FrameMemory::new(len.max(1), bytes, true)?,
            len,
            _t: std::marker::PhantomData,
        })
    }
}

#[cfg(not(shuttle))]
impl<T: Zeroable> std::ops::Deref for ZeroedArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping holds `len` values of `T` (`len * size_of`
        // bytes, page-aligned, so aligned for `T`), all zero bytes, which
        // `Zeroable` promises is a valid `T`; it lives as long as `self`,
        // and `T: Sync` makes shared references from many threads sound.
        unsafe { std::slice::from_raw_parts(self.memory.base.as_ptr().cast::<T>(), self.len) }
    }
}

pub(crate) struct FrameMemory {
    base: NonNull<u8>,
    /// Bytes mapped: `len` rounded up to whole pages.
    map_len: usize,
    frames: usize,
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
        // Whole 4 KiB pages, so the trimmed tail starts on a page boundary.
        let map_len = len.next_multiple_of(4096);
        let extra = if len >= HUGE_PAGE { HUGE_PAGE } else { 0 };
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // aliases nothing; we own it until `drop` unmaps it.
        let raw = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                map_len + extra,
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
        // SAFETY: `head <= extra`, so `raw + head .. + map_len` lies inside
        // the mapping; the trimmed ends are page-aligned parts of the same
        // fresh mapping that nothing refers to.
        let ptr = unsafe {
            let ptr = raw.cast::<u8>().add(head).cast::<c_void>();
            if head > 0 {
                let _ = rustix::mm::munmap(raw, head);
            }
            let tail = extra - head;
            if tail > 0 {
                let _ = rustix::mm::munmap(ptr.cast::<u8>().add(map_len).cast::<c_void>(), tail);
            }
            ptr
        };
        // Huge pages are an optimization: ignore a refusal.
        // SAFETY: the range is exactly the (trimmed) mapping.
        let _ = unsafe { rustix::mm::madvise(ptr, map_len, rustix::mm::Advice::LinuxHugepage) };
        if populate {
            fault_in(ptr.cast::<u8>() as usize, map_len);
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or(Error::Memory {
            bytes: len,
            source: std::io::Error::other("mmap returned a null pointer"),
        })?;
        Ok(FrameMemory {
            base,
            map_len,
            frames,
            frame_bytes,
        })
    }

    /// The start of frame `frame`. The caller must keep `frame` below the
    /// frame count; the pointer is valid for `frame_bytes` bytes while
    /// `self` lives.
    pub fn frame_ptr(&self, frame: usize) -> NonNull<u8> {
        // A check, not a debug assertion: a wrong index must not become a
        // pointer outside the mapping (one compare on the hit path).
        assert!(frame < self.frames, "frame {frame} out of range");
        // SAFETY: `frame < frames`, so `frame * frame_bytes + frame_bytes
        // <= len`, inside the mapping.
        unsafe { self.base.add(frame * self.frame_bytes) }
    }
}

impl Drop for FrameMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` with this length, and the
        // pool outlives every `PageBuf` lent from it (each holds an `Arc`
        // of the pool), so nothing refers to it any more.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast::<c_void>(), self.map_len) };
    }
}
