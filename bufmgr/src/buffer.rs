//! `Buffer`: a pin on one frame, and guarded access to its page.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::core::Core;
use crate::frame::FrameDesc;
use crate::pool::ReaderCount;
use crate::state::{DIRTY, VALID};
use crate::{BufferTag, Error, Result};

/// A pinned buffer: while it exists, its frame holds its page and cannot
/// be evicted. Dropping it unpins (PostgreSQL's `ReleaseBuffer`); cloning it
/// pins again.
///
/// The page is read through [`read`](Self::read) (shared content lock) and
/// changed through [`write`](Self::write) (exclusive content lock), whose
/// guard's [`PageMut::mark_dirty`] records the change. Content locks live in
/// the frame's state word and are held for short, synchronous work, as
/// PostgreSQL's are: a task that finds one taken spins, then yields its
/// thread, so do not hold a guard across an `.await`.
///
/// A buffer holds no reference count of the pool: its pin keeps the
/// frames alive (`core.rs`), so pinning changes nothing but the frame's
/// own state word.
pub struct Buffer {
    pub(crate) core: NonNull<Core>,
    pub(crate) frame: u32,
    pub(crate) tag: BufferTag,
    /// The reader whose pin this is, if one was named.
    pub(crate) reader: Option<Arc<ReaderCount>>,
}

// SAFETY: a buffer is a pin on a frame of a `Core`, which is `Sync` (atomic
// state words; page bytes behind the content lock); the pin keeps the core
// allocated wherever the buffer goes.
#[allow(unsafe_code)]
unsafe impl Send for Buffer {}
// SAFETY: as above; `&Buffer` only reads through the content lock.
#[allow(unsafe_code)]
unsafe impl Sync for Buffer {}

impl Buffer {
    pub(crate) fn core(&self) -> &Core {
        #[allow(unsafe_code)]
        // SAFETY: the core is freed only once no frame is pinned
        // (`core.rs`), and this buffer holds a pin until its drop.
        unsafe {
            self.core.as_ref()
        }
    }

    fn desc(&self) -> &FrameDesc {
        &self.core().frames[self.frame as usize]
    }

    /// The page this buffer holds.
    pub fn tag(&self) -> BufferTag {
        self.tag
    }

    /// Whether the page has been read (a prepared miss is not valid until
    /// its read completes).
    pub fn is_valid(&self) -> bool {
        self.desc().load().has(VALID)
    }

    /// Whether the page has changes not yet written.
    pub fn is_dirty(&self) -> bool {
        self.desc().load().has(DIRTY)
    }

    /// The page, under a shared content lock.
    ///
    /// # Errors
    ///
    /// [`Error::NotValid`] if the page was not read yet.
    pub fn read(&self) -> Result<PageRef<'_>> {
        let desc = self.desc();
        if !desc.state.lock_shared() {
            return Err(self.not_valid());
        }
        Ok(PageRef {
            desc,
            bytes: self.page_slice(),
        })
    }

    /// The page, under an exclusive content lock, for changing it. Call
    /// [`PageMut::mark_dirty`] after a change so it gets written.
    ///
    /// # Errors
    ///
    /// [`Error::NotValid`] if the page was not read yet.
    pub fn write(&self) -> Result<PageMut<'_>> {
        let desc = self.desc();
        if !desc.state.lock_exclusive() {
            return Err(self.not_valid());
        }
        desc.begin_change();
        Ok(PageMut {
            desc,
            bytes: self.page_slice_mut(),
        })
    }

    fn not_valid(&self) -> Error {
        Error::NotValid {
            tag: self.tag.to_string(),
        }
    }

    #[allow(unsafe_code)]
    fn page_slice(&self) -> &[u8] {
        let pool = self.core();
        let ptr = pool.memory.frame_ptr(self.frame as usize);
        // SAFETY: we hold a pin, so the frame keeps this page and is not
        // reused; the page is valid and not lent (checked when the lock was
        // taken, and a read I/O needs an invalid page, which only eviction,
        // needing zero pins, makes of a valid one); the caller holds the
        // content lock shared, so nobody has a `&mut` to these bytes.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr(), pool.block_size.bytes()) }
    }

    #[allow(unsafe_code, clippy::mut_from_ref)]
    fn page_slice_mut(&self) -> &mut [u8] {
        let pool = self.core();
        let ptr = pool.memory.frame_ptr(self.frame as usize);
        // SAFETY: as in `page_slice`, and the caller holds the content lock
        // exclusively, so this is the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), pool.block_size.bytes()) }
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        self.desc().state.pin_again();
        Buffer {
            core: self.core,
            frame: self.frame,
            tag: self.tag,
            reader: self.reader.clone(),
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.reader = None;
        // The last touch of the core: once the count is seen at zero the
        // core may be freed (`core.rs`), as `Arc`'s memory may be once its
        // count is decremented.
        self.desc().state.unpin();
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("tag", &self.tag)
            .field("frame", &self.frame)
            .finish()
    }
}

/// A page under a shared content lock.
pub struct PageRef<'a> {
    desc: &'a FrameDesc,
    bytes: &'a [u8],
}

impl Deref for PageRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl Drop for PageRef<'_> {
    fn drop(&mut self) {
        self.desc.state.unlock_shared();
    }
}

/// A page under an exclusive content lock.
pub struct PageMut<'a> {
    desc: &'a FrameDesc,
    bytes: &'a mut [u8],
}

impl PageMut<'_> {
    /// Records that the page was changed (PostgreSQL's `MarkBufferDirty`):
    /// it will be written before its frame is reused, or by a flush. Only
    /// possible while holding the exclusive lock, as PostgreSQL requires,
    /// so a write-back's copy either includes the change or the page stays
    /// dirty.
    pub fn mark_dirty(&self) {
        self.desc.state.mark_dirty();
    }
}

impl Deref for PageMut<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl DerefMut for PageMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

impl Drop for PageMut<'_> {
    fn drop(&mut self) {
        self.desc.end_change();
        self.desc.state.unlock_exclusive();
    }
}
