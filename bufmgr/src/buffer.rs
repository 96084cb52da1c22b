//! `Buffer`: a pin on one frame, and guarded access to its page.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::sync::{RwLockReadGuard, RwLockWriteGuard};

use crate::frame::FrameDesc;
use crate::pool::PoolInner;
use crate::{BufferTag, Error, Result};

/// A pinned buffer: while it exists, its frame holds its page and cannot
/// be evicted. Dropping it unpins (PostgreSQL's `ReleaseBuffer`); cloning it
/// pins again.
///
/// The page is read through [`read`](Self::read) (shared content lock) and
/// changed through [`write`](Self::write) (exclusive content lock), whose
/// guard's [`PageMut::mark_dirty`] records the change. Content locks are ordinary blocking
/// locks held for short, synchronous work, as PostgreSQL's are: do not hold
/// a guard across an `.await`.
pub struct Buffer {
    pub(crate) pool: Arc<PoolInner>,
    pub(crate) frame: u32,
    pub(crate) tag: BufferTag,
}

impl Buffer {
    /// The page this buffer holds.
    pub fn tag(&self) -> BufferTag {
        self.tag
    }

    /// Whether the page has been read (a prepared miss is not valid until
    /// its read completes).
    pub fn is_valid(&self) -> bool {
        self.pool.frames[self.frame as usize].meta().valid
    }

    /// Whether the page has changes not yet written.
    pub fn is_dirty(&self) -> bool {
        self.pool.frames[self.frame as usize].meta().dirty
    }

    /// The page, under a shared content lock.
    ///
    /// # Errors
    ///
    /// [`Error::NotValid`] if the page was not read yet.
    pub fn read(&self) -> Result<PageRef<'_>> {
        let desc = &self.pool.frames[self.frame as usize];
        let guard = desc.content.read().unwrap_or_else(|p| p.into_inner());
        self.check_valid()?;
        Ok(PageRef {
            _guard: guard,
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
        let desc = &self.pool.frames[self.frame as usize];
        let guard = desc.content.write().unwrap_or_else(|p| p.into_inner());
        self.check_valid()?;
        Ok(PageMut {
            _guard: guard,
            desc,
            bytes: self.page_slice_mut(),
        })
    }

    fn check_valid(&self) -> Result<()> {
        let meta = self.pool.frames[self.frame as usize].meta();
        if meta.valid && !meta.lent {
            Ok(())
        } else {
            Err(Error::NotValid {
                tag: self.tag.to_string(),
            })
        }
    }

    #[allow(unsafe_code)]
    fn page_slice(&self) -> &[u8] {
        let ptr = self.pool.memory.frame_ptr(self.frame as usize);
        // SAFETY: we hold a pin, so the frame keeps this page and is not
        // reused; the page is valid, so no read I/O has the memory lent
        // (lending needs an invalid page, and only eviction, which needs
        // zero pins, makes a valid page invalid); the caller holds the
        // content lock shared, so nobody has a `&mut` to these bytes.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr(), self.pool.block_size.bytes()) }
    }

    #[allow(unsafe_code, clippy::mut_from_ref)]
    fn page_slice_mut(&self) -> &mut [u8] {
        let ptr = self.pool.memory.frame_ptr(self.frame as usize);
        // SAFETY: as in `page_slice`, and the caller holds the content lock
        // exclusively, so this is the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), self.pool.block_size.bytes()) }
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        self.pool.pin_again(self.frame);
        Buffer {
            pool: self.pool.clone(),
            frame: self.frame,
            tag: self.tag,
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.pool.unpin(self.frame);
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
    _guard: RwLockReadGuard<'a, ()>,
    bytes: &'a [u8],
}

impl Deref for PageRef<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

/// A page under an exclusive content lock.
pub struct PageMut<'a> {
    _guard: RwLockWriteGuard<'a, ()>,
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
        let mut meta = self.desc.meta();
        meta.dirty = true;
        meta.just_dirtied = true;
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
