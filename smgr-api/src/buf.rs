//! Owned page buffers: the memory a read fills or a write drains.
//!
//! # Why owned
//!
//! An `Smgr` operation is a future, and a future can be dropped at any
//! `.await`. If `readv` borrowed `&mut [u8]`, dropping it while a kernel read
//! or a blocking-pool thread still wrote into that slice would write into
//! memory the caller already reused. So every I/O takes its buffers by value
//! and hands them back when it completes. If the future is dropped, whoever
//! runs the I/O (a blocking thread, an io_uring completion) still owns the
//! buffers and releases them only when the I/O is truly over.
//!
//! A [`PageBuf`] is either heap memory it owns, or memory *lent* by a buffer
//! pool: one frame of the pool's shared mapping, handed out with
//! [`PageBuf::from_lent`]. The local backend reads straight into that memory
//! with `preadv`, so there is no extra copy; the pool learns through
//! [`PageLender::page_returned`] when the I/O has let go of the frame, and
//! must not reuse the frame before then.

// The one place in this crate that needs `unsafe`: lent memory is a raw
// pointer whose validity the lender vouches for.
#![allow(unsafe_code)]

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::BlockSize;

/// The owner of memory lent out as [`PageBuf`]s (a buffer pool).
///
/// # Safety
///
/// An implementor that lends a region with [`PageBuf::from_lent`] promises
/// that, from that call until [`page_returned`](Self::page_returned) is
/// called with the same token:
///
/// - the region is initialized memory (its bytes may be read), stays
///   allocated and does not move;
/// - the pointer was derived from a raw or mutable allocation (an mmap, an
///   `alloc`, `Box::into_raw`), not from a shared reference, so writing
///   through it is allowed;
/// - nothing else reads or writes the region, and the lender forms no Rust
///   reference (`&[u8]`, `&mut [u8]`) that covers it, so the `PageBuf` has
///   exclusive access from any thread.
///
/// `page_returned` runs from `PageBuf`'s `Drop`, possibly on a blocking
/// thread or while unwinding: it must not panic.
pub unsafe trait PageLender: Send + Sync + 'static {
    /// The `PageBuf` lent with `token` was dropped: no I/O touches its
    /// memory any more and the lender may use or lend it again.
    fn page_returned(&self, token: usize);
}

/// An owned, block-sized buffer that I/O reads into or writes from.
///
/// `PageBuf` dereferences to `[u8]`. Its address is stable while it exists,
/// even when the value moves between threads, so an I/O can keep a pointer
/// to it for as long as it owns it.
pub struct PageBuf {
    inner: Inner,
}

enum Inner {
    Heap(Box<[u8]>),
    Lent {
        ptr: NonNull<u8>,
        len: usize,
        lender: Arc<dyn PageLender>,
        token: usize,
    },
}

// SAFETY: a heap `PageBuf` is a `Box<[u8]>`, which is `Send` and `Sync`. A
// lent one has, by the `PageLender` contract, exclusive access to its region
// until it is dropped, so it may move to and be shared across threads like a
// `Box<[u8]>` would; `Arc<dyn PageLender>` is `Send + Sync` by the trait's
// bounds.
unsafe impl Send for PageBuf {}
// SAFETY: see `Send` above; `&PageBuf` only gives `&[u8]`.
unsafe impl Sync for PageBuf {}

impl PageBuf {
    /// A zero-filled heap buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        PageBuf {
            inner: Inner::Heap(vec![0u8; len].into_boxed_slice()),
        }
    }

    /// A zero-filled heap buffer of one block.
    pub fn zeroed_block(block_size: BlockSize) -> Self {
        Self::zeroed(block_size.bytes())
    }

    /// A heap buffer holding a copy of `bytes`.
    pub fn copy_from(bytes: &[u8]) -> Self {
        PageBuf {
            inner: Inner::Heap(bytes.to_vec().into_boxed_slice()),
        }
    }

    /// `count` zero-filled heap buffers of one block each, ready for a
    /// `readv`.
    pub fn zeroed_blocks(block_size: BlockSize, count: usize) -> Vec<Self> {
        (0..count).map(|_| Self::zeroed_block(block_size)).collect()
    }

    /// Wraps `len` bytes at `ptr` that `lender` lends out until this
    /// `PageBuf` is dropped, at which point `lender.page_returned(token)`
    /// is called exactly once.
    ///
    /// # Safety
    ///
    /// `ptr .. ptr + len` must be valid for reads and writes, and `lender`
    /// must uphold the [`PageLender`] contract for it: exclusive, stable,
    /// allocated until `page_returned(token)`.
    pub unsafe fn from_lent(
        ptr: NonNull<u8>,
        len: usize,
        lender: Arc<dyn PageLender>,
        token: usize,
    ) -> Self {
        PageBuf {
            inner: Inner::Lent {
                ptr,
                len,
                lender,
                token,
            },
        }
    }

    /// Whether the memory is lent by a [`PageLender`] rather than owned.
    pub fn is_lent(&self) -> bool {
        matches!(self.inner, Inner::Lent { .. })
    }
}

impl Deref for PageBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            Inner::Heap(bytes) => bytes,
            // SAFETY: by `from_lent`'s contract the region is valid,
            // allocated and exclusively ours until we are dropped.
            Inner::Lent { ptr, len, .. } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
        }
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.inner {
            Inner::Heap(bytes) => bytes,
            // SAFETY: as in `deref`; `&mut self` makes this the only
            // reference derived from this `PageBuf`.
            Inner::Lent { ptr, len, .. } => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr(), *len)
            },
        }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        if let Inner::Lent { lender, token, .. } = &self.inner {
            lender.page_returned(*token);
        }
    }
}

impl fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageBuf")
            .field("len", &self.len())
            .field("lent", &self.is_lent())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Lender {
        memory: Mutex<Vec<u8>>,
        returned: Mutex<Vec<usize>>,
    }

    // SAFETY: the test lends each half of `memory` once and reads it only
    // after `page_returned`.
    unsafe impl PageLender for Lender {
        fn page_returned(&self, token: usize) {
            self.returned.lock().unwrap().push(token);
        }
    }

    #[test]
    fn lent_pages_write_through_and_come_back_once() {
        let lender = Arc::new(Lender {
            memory: Mutex::new(vec![0u8; 2048]),
            returned: Mutex::new(Vec::new()),
        });
        let base = lender.memory.lock().unwrap().as_mut_ptr();
        let bufs: Vec<PageBuf> = (0..2)
            .map(|i| {
                let ptr = NonNull::new(base.wrapping_add(i * 1024)).unwrap();
                // SAFETY: two disjoint halves of a live Vec, not touched
                // until both are returned.
                unsafe { PageBuf::from_lent(ptr, 1024, lender.clone(), i) }
            })
            .collect();
        let handle = std::thread::spawn(move || {
            let mut bufs = bufs;
            for (i, buf) in bufs.iter_mut().enumerate() {
                buf.fill(i as u8 + 1);
            }
            drop(bufs);
        });
        handle.join().unwrap();
        assert_eq!(*lender.returned.lock().unwrap(), vec![0, 1]);
        let memory = lender.memory.lock().unwrap();
        assert!(memory[..1024].iter().all(|&b| b == 1));
        assert!(memory[1024..].iter().all(|&b| b == 2));
    }

    #[test]
    fn heap_pages() {
        let mut buf = PageBuf::zeroed_block(BlockSize::new(1024).unwrap());
        assert_eq!(buf.len(), 1024);
        assert!(!buf.is_lent());
        buf[3] = 7;
        assert_eq!(PageBuf::copy_from(&buf)[3], 7);
        assert_eq!(format!("{buf:?}"), "PageBuf { len: 1024, lent: false }");
    }
}
