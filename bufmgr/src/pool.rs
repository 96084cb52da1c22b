//! The pool: frames, page table, clock sweep, and lending frame memory to
//! I/O.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use smgr_api::{BlockSize, PageBuf, PageFormat, PageLender, PageVerifier, PathNaming, Smgr};

use crate::frame::{FrameDesc, Io, MAX_USAGE};
use crate::memory::FrameMemory;
use crate::page_table::PageTable;
use crate::ring::BufferAccessStrategy;
use crate::stats::{Counters, PoolStats};
use crate::sync::AtomicUsize;
use crate::{Error, Result};

/// A count of the pool's frames by state, from [`BufferPool::census`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCensus {
    /// Frames holding a page (valid or being read).
    pub used: usize,
    /// Frames whose page is valid.
    pub valid: usize,
    /// Frames whose page is dirty.
    pub dirty: usize,
    /// Frames pinned by at least one buffer.
    pub pinned: usize,
    /// Pins held in all.
    pub pins: usize,
    /// Frames with a read or write in progress.
    pub in_io: usize,
    /// Frames whose memory is lent to an I/O.
    pub lent: usize,
    /// Frames whose last read failed (the next reader retries).
    pub failed_reads: usize,
}

impl PoolCensus {
    /// Nothing pinned, in I/O or lent: the state every pool must return to
    /// when its users have finished, whatever went wrong.
    pub fn is_quiet(&self) -> bool {
        self.pins == 0 && self.in_io == 0 && self.lent == 0
    }
}

/// How a [`BufferPool`] is built.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Frames in the pool (PostgreSQL's `shared_buffers` in pages).
    pub frames: usize,
    /// The page format every read is verified against.
    pub page_format: PageFormat,
    /// How many readers are expected to share the pool; each may pin at
    /// most `frames / max_readers` buffers beyond the one it needs (see
    /// [`BufferPool::limit_additional_pins`]), as PostgreSQL divides
    /// `shared_buffers` by `MaxBackends`.
    pub max_readers: usize,
    /// Fault in the pool's memory when it is built instead of on first use
    /// (recommended: first touch is slow on these machines).
    pub prefault: bool,
}

impl PoolConfig {
    /// A pool of `frames` frames verifying pages of `page_format`.
    pub fn new(frames: usize, page_format: PageFormat) -> Self {
        PoolConfig {
            frames,
            page_format,
            max_readers: 8,
            prefault: true,
        }
    }

    /// The same configuration for `n` concurrent readers.
    pub fn max_readers(mut self, n: usize) -> Self {
        self.max_readers = n;
        self
    }

    /// The same configuration with prefaulting on or off.
    pub fn prefault(mut self, on: bool) -> Self {
        self.prefault = on;
        self
    }
}

pub(crate) struct PoolInner {
    pub smgr: Arc<dyn Smgr>,
    pub block_size: BlockSize,
    pub verifier: PageVerifier,
    pub naming: PathNaming,
    pub memory: FrameMemory,
    pub frames: Vec<FrameDesc>,
    pub table: PageTable,
    clock: AtomicUsize,
    pub stats: Counters,
    /// Serializes relation extension (PostgreSQL's relation extension
    /// lock, pool-wide for now).
    pub extension: tokio::sync::Mutex<()>,
    pub config: PoolConfig,
}

/// A shared pool of page frames over one storage manager (PostgreSQL's
/// shared buffers). Cheap to clone: clones share the pool.
///
/// Dirty pages reach storage when they are evicted or flushed, never on
/// drop: call [`flush_all`](Self::flush_all) (and the backend's
/// `immedsync`) before the last clone is dropped or the Tokio runtime shuts
/// down. A write-back still running when the runtime shuts down is
/// dropped, and its page stays dirty in a pool that is going away.
#[derive(Clone)]
pub struct BufferPool {
    pub(crate) inner: Arc<PoolInner>,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("frames", &self.inner.frames.len())
            .field("block_size", &self.inner.block_size)
            .field("smgr", &self.inner.smgr)
            .finish()
    }
}

/// What clock sweep found at one frame.
enum Sweep {
    /// Pinned: not a candidate.
    Busy,
    /// Unpinned but busy with I/O (or its memory still lent): a candidate
    /// soon.
    InIo,
    /// Recently used: its usage count was lowered.
    Aged,
    /// Ours now (pinned once by us); holds `dirty` data if true.
    Claimed { dirty: bool },
}

impl BufferPool {
    /// Builds a pool of `config.frames` frames of `smgr`'s block size. The
    /// memory is one mapping, allocated (and with `prefault`, faulted in)
    /// here.
    pub fn new(smgr: Arc<dyn Smgr>, config: PoolConfig) -> Result<Self> {
        if config.frames == 0 || config.frames > u32::MAX as usize {
            return Err(Error::InvalidConfig {
                name: "frames",
                value: config.frames as u64,
                reason: "must be from 1 to 2^32 - 1",
            });
        }
        if config.max_readers == 0 {
            return Err(Error::InvalidConfig {
                name: "max_readers",
                value: 0,
                reason: "must be at least 1",
            });
        }
        let block_size = smgr.block_size();
        let memory = FrameMemory::new(config.frames, block_size.bytes(), config.prefault)?;
        Ok(BufferPool {
            inner: Arc::new(PoolInner {
                verifier: PageVerifier::new(config.page_format, block_size),
                block_size,
                naming: PathNaming::default(),
                memory,
                frames: (0..config.frames).map(|_| FrameDesc::new()).collect(),
                table: PageTable::new(config.frames),
                clock: AtomicUsize::new(0),
                stats: Counters::default(),
                extension: tokio::sync::Mutex::new(()),
                config,
                smgr,
            }),
        })
    }

    /// The storage manager below the pool.
    pub fn smgr(&self) -> &Arc<dyn Smgr> {
        &self.inner.smgr
    }

    /// The block size of every frame.
    pub fn block_size(&self) -> BlockSize {
        self.inner.block_size
    }

    /// Frames in the pool.
    pub fn frames(&self) -> usize {
        self.inner.frames.len()
    }

    /// The verifier every read goes through.
    pub fn verifier(&self) -> PageVerifier {
        self.inner.verifier
    }

    /// The counters so far.
    pub fn stats(&self) -> PoolStats {
        self.inner.stats.snapshot()
    }

    /// What the frames hold right now (PostgreSQL's `pg_buffercache`
    /// summary). Each frame is looked at under its own lock, one after
    /// another, so under concurrent use the totals are approximate; when
    /// nothing runs they are exact, which is how tests check that no pin
    /// leaked and no frame was left in I/O.
    pub fn census(&self) -> PoolCensus {
        let mut census = PoolCensus::default();
        for desc in &self.inner.frames {
            let meta = desc.meta();
            census.used += usize::from(meta.tag.is_some());
            census.valid += usize::from(meta.valid);
            census.dirty += usize::from(meta.dirty);
            census.pinned += usize::from(meta.pins > 0);
            census.pins += meta.pins as usize;
            census.in_io += usize::from(meta.io != Io::None);
            census.lent += usize::from(meta.lent);
            census.failed_reads += usize::from(meta.io_error);
        }
        census
    }

    /// The most pins one reader may hold beyond the one it needs:
    /// `frames / max_readers` (at least 1).
    pub fn max_pins_per_reader(&self) -> usize {
        (self.inner.frames.len() / self.inner.config.max_readers).max(1)
    }

    /// How many of `wanted` additional pins a reader already holding
    /// `pinned` may take (PostgreSQL's `LimitAdditionalPins`): its share of
    /// the pool minus what it holds, but always at least 1 so it can make
    /// progress.
    pub fn limit_additional_pins(&self, pinned: usize, wanted: usize) -> usize {
        let share = self.max_pins_per_reader().saturating_sub(pinned);
        wanted.min(share).max(1)
    }
}

impl PoolInner {
    /// Lends frame `frame`'s memory to an I/O. The caller has set the
    /// frame's `lent` flag under its header lock (with `io == Reading`), so
    /// nothing else touches the memory until `page_returned` clears it.
    pub fn lend(self: &Arc<Self>, frame: u32) -> PageBuf {
        let ptr: NonNull<u8> = self.memory.frame_ptr(frame as usize);
        let lender: Arc<dyn PageLender> = self.clone();
        #[allow(unsafe_code)]
        // SAFETY: `ptr` is frame `frame` of the pool's mapping, valid for
        // one block while the pool lives; the `PageBuf` holds an `Arc` of
        // the pool, so the mapping outlives it. The frame's `lent` flag,
        // set by the caller, keeps every other path (eviction, content
        // access, another read) off this memory until `page_returned`.
        unsafe {
            PageBuf::from_lent(ptr, self.block_size.bytes(), lender, frame as usize)
        }
    }

    /// Lends frame `frame`'s memory again to the read I/O that holds it
    /// (`io == Reading`) once the memory has come back from an earlier
    /// loan; `None` while it has not (a backend still holds it).
    pub fn relend(self: &Arc<Self>, frame: u32) -> Option<PageBuf> {
        {
            let mut meta = self.frames[frame as usize].meta();
            if meta.io != Io::Reading || meta.lent {
                return None;
            }
            meta.lent = true;
        }
        Some(self.lend(frame))
    }

    /// A frame for a new page, pinned once by the caller, holding no page
    /// (its old page written back if dirty and unmapped). From the
    /// strategy's ring if it has a usable one, else by clock sweep.
    pub async fn get_victim(
        self: &Arc<Self>,
        mut strategy: Option<&mut BufferAccessStrategy>,
    ) -> Result<u32> {
        if let Some(ring) = strategy.as_deref_mut() {
            if let Some(frame) = ring.next_candidate() {
                if let Sweep::Claimed { dirty: false } = self.try_claim(frame, true) {
                    if self.unmap_claimed(frame) {
                        return Ok(frame);
                    }
                }
            }
        }
        let frames = self.frames.len();
        let mut fruitless = 0usize;
        let mut in_io = None;
        loop {
            let frame = (self.clock.fetch_add(1, Ordering::Relaxed) % frames) as u32;
            match self.try_claim(frame, false) {
                outcome @ (Sweep::Busy | Sweep::InIo) => {
                    if let Sweep::InIo = outcome {
                        in_io = Some(frame);
                    }
                    fruitless += 1;
                    if fruitless > frames {
                        match in_io.take() {
                            // Nothing is free now, but a frame that nobody
                            // pins is only waiting for its I/O: wait for it
                            // rather than fail, then sweep again.
                            Some(waiting) => {
                                self.frames[waiting as usize]
                                    .wait_until(|m| m.io == Io::None && !m.lent)
                                    .await;
                                fruitless = 0;
                            }
                            None => return Err(Error::NoUnpinnedBuffers { frames }),
                        }
                    }
                }
                Sweep::Aged => fruitless = 0,
                Sweep::Claimed { dirty } => {
                    if dirty {
                        // Write the old page back before reusing the frame.
                        // Another task may pin or dirty it meanwhile; then
                        // look further. If this future is dropped during
                        // the write, the guard gives our pin back.
                        let claim = ClaimGuard { inner: self, frame };
                        self.write_back_claimed(frame).await?;
                        std::mem::forget(claim);
                    }
                    if self.unmap_claimed(frame) {
                        if let Some(ring) = strategy.as_deref_mut() {
                            ring.remember(frame);
                        }
                        return Ok(frame);
                    }
                    // Someone took it back meanwhile: no progress.
                    fruitless += 1;
                }
            }
        }
    }

    fn try_claim(&self, frame: u32, from_ring: bool) -> Sweep {
        let Some(desc) = self.frames.get(frame as usize) else {
            // A ring frame number from another pool.
            return Sweep::Busy;
        };
        let mut meta = desc.meta();
        if !meta.evictable() {
            // Frames in I/O will be free soon, even if pinned by the task
            // writing them back for eviction.
            return if meta.pins == 0 || meta.io != Io::None {
                Sweep::InIo
            } else {
                Sweep::Busy
            };
        }
        if from_ring {
            // A ring frame is reused only if nobody else found it useful
            // meanwhile and it needs no write.
            if meta.usage > 1 || meta.dirty {
                return Sweep::Busy;
            }
        } else if meta.usage > 0 {
            meta.usage -= 1;
            return Sweep::Aged;
        }
        meta.pins = 1;
        Sweep::Claimed { dirty: meta.dirty }
    }

    /// Removes the page of a frame we claimed (pinned once) from the page
    /// table. False (and the pin dropped) if someone else pinned or dirtied
    /// it in between.
    fn unmap_claimed(&self, frame: u32) -> bool {
        let desc = &self.frames[frame as usize];
        let old = desc.meta().tag;
        let mut partition = old.map(|tag| self.table.lock(&tag));
        let mut meta = desc.meta();
        let still_ours =
            meta.pins == 1 && !meta.dirty && !meta.lent && meta.io == Io::None && meta.tag == old;
        if !still_ours {
            meta.pins -= 1;
            return false;
        }
        if let (Some(tag), Some(partition)) = (old, partition.as_mut()) {
            partition.remove(&tag);
            Counters::add(&self.stats.evictions, 1);
        }
        meta.tag = None;
        meta.valid = false;
        meta.io_error = false;
        meta.usage = 0;
        true
    }

    /// Drops one pin of `frame`.
    pub fn unpin(&self, frame: u32) {
        let mut meta = self.frames[frame as usize].meta();
        debug_assert!(meta.pins > 0, "unpin of an unpinned frame");
        meta.pins = meta.pins.saturating_sub(1);
    }

    /// Adds one pin to a frame that is already pinned (by the caller).
    pub fn pin_again(&self, frame: u32) {
        let mut meta = self.frames[frame as usize].meta();
        meta.pins += 1;
    }

    /// Bumps the usage count, up to `MAX_USAGE`.
    pub fn bump_usage(meta: &mut crate::frame::FrameMeta) {
        if meta.usage < MAX_USAGE {
            meta.usage += 1;
        }
    }
}

/// Drops the pin clock sweep took on a victim, unless defused with
/// `mem::forget` once the pin is handed on.
struct ClaimGuard<'a> {
    inner: &'a PoolInner,
    frame: u32,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.inner.unpin(self.frame);
    }
}

// SAFETY: `lend` hands each frame's memory out only while the frame's
// `lent` flag is set, which every other user of the memory checks first;
// `page_returned` is the only place that clears it.
#[allow(unsafe_code)]
unsafe impl PageLender for PoolInner {
    fn page_returned(&self, token: usize) {
        if let Some(desc) = self.frames.get(token) {
            desc.meta().lent = false;
            desc.io_done.notify_waiters();
        }
    }
}
