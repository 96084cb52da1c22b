//! The pool: frames, page table, clock sweep, and lending frame memory to
//! I/O; and the handles that keep it alive without a shared counter.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use smgr_api::{BlockSize, PageBuf, PageFormat, PageLender, PageVerifier, PathNaming, Smgr};

use crate::core::{Core, CoreBox};
use crate::frame::{FrameDesc, Waiters};
use crate::memory::{array, FrameMemory};
use crate::page_table::PageTable;
use crate::ring::BufferAccessStrategy;
use crate::state::{Sweep, DIRTY, IO_ERROR, LENT, MAPPED, READING, VALID, WRITING};
use crate::stats::{thread_slot, Counters, PoolStats, Stats, SLOTS};
use crate::sync::AtomicU64;
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
    pub verifier: PageVerifier,
    pub naming: PathNaming,
    /// Frames and their memory (what buffers touch): see `core.rs` for
    /// how long they live. Reached through `Deref`.
    pub core: CoreBox,
    pub waiters: Waiters,
    pub table: PageTable,
    /// The clock hand: each thread takes `CLOCK_CHUNK` positions at a time
    /// into its own slot of `clock_chunks`, so sweeping does not bounce one
    /// line between cores for every candidate.
    clock: AtomicU64,
    clock_chunks: Box<[PaddedChunk]>,
    pub stats: Stats,
    /// Serializes relation extension (PostgreSQL's relation extension
    /// lock, pool-wide for now).
    pub extension: tokio::sync::Mutex<()>,
    /// `frames / max_readers`, at least 1: asked before every pin a stream
    /// takes, so worked out once.
    max_pins_per_reader: usize,
}

/// Clock positions a thread takes at once.
const CLOCK_CHUNK: u64 = 32;

/// A thread's run of clock positions: `(next << 32) | left`.
#[derive(Default)]
#[repr(align(128))]
struct PaddedChunk(AtomicU64);

impl std::ops::Deref for PoolInner {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

/// A handle that keeps the pool alive, one per thread slot, lent with the
/// frames a thread's reads lend to the backend: the count it changes per
/// page stays on that thread's core, not on the pool's own `Arc`.
#[repr(align(128))]
pub(crate) struct Shard {
    pub pool: Arc<PoolInner>,
}

/// A reader's count of pins: buffers pinned through it each hold one.
#[repr(align(128))]
pub(crate) struct ReaderCount {
    /// The pool's core it belongs to (compared, never followed).
    pub core: usize,
}

/// Whose pins are whose, for per-reader pin limits (PostgreSQL counts a
/// backend's pins in its `PrivateRefCount` for `GetAdditionalPinLimit`).
/// Pins taken through a reader ([`BufferPool::prepare_read_as`]) count as
/// its own as long as their [`Buffer`](crate::Buffer)s (or clones of
/// them) live, wherever they have gone; a read stream takes a reader of
/// its own, so buffers its caller still holds count against its
/// look-ahead. The count is a reference count on the reader's own cache
/// line, changed only by pins taken through it.
pub struct Reader {
    pub(crate) count: Arc<ReaderCount>,
}

impl Reader {
    /// Pins held through this reader right now.
    pub fn pins(&self) -> usize {
        Arc::strong_count(&self.count) - 1
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("pins", &self.pins())
            .finish()
    }
}

/// A shared pool of page frames over one storage manager (PostgreSQL's
/// shared buffers). Cheap to clone: clones share the pool. Share one pool
/// among all the tasks and threads of a program: its hit path takes no
/// lock and writes no line that other cores use, unless they use the same
/// page.
///
/// Dirty pages reach storage when they are evicted or flushed, never on
/// drop: call [`flush_all`](Self::flush_all) (and the backend's
/// `immedsync`) before the last clone is dropped or the Tokio runtime shuts
/// down. A write-back still running when the runtime shuts down is
/// dropped, and its page stays dirty in a pool that is going away.
#[derive(Clone)]
pub struct BufferPool {
    pub(crate) inner: Arc<PoolInner>,
    shards: Arc<[Arc<Shard>]>,
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

impl BufferPool {
    /// Builds a pool of `config.frames` frames of `smgr`'s block size. The
    /// memory is one mapping, allocated (and with `prefault`, faulted in)
    /// here.
    pub fn new(smgr: Arc<dyn Smgr>, config: PoolConfig) -> Result<Self> {
        if config.frames == 0 || config.frames >= u32::MAX as usize {
            return Err(Error::InvalidConfig {
                name: "frames",
                value: config.frames as u64,
                reason: "must be from 1 to 2^32 - 2",
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
        let inner = Arc::new(PoolInner {
            verifier: PageVerifier::new(config.page_format, block_size),
            naming: PathNaming::default(),
            core: CoreBox::new(Core {
                memory,
                frames: array(config.frames, FrameDesc::new)?,
                block_size,
            }),
            waiters: Waiters::new(config.frames),
            table: PageTable::new(config.frames)?,
            clock: AtomicU64::new(0),
            clock_chunks: (0..SLOTS).map(|_| PaddedChunk::default()).collect(),
            stats: Stats::new(),
            extension: tokio::sync::Mutex::new(()),
            max_pins_per_reader: (config.frames / config.max_readers).max(1),
            smgr,
        });
        let shards = (0..SLOTS)
            .map(|_| {
                Arc::new(Shard {
                    pool: inner.clone(),
                })
            })
            .collect();
        Ok(BufferPool { inner, shards })
    }

    /// The current thread's handle, lent with the frames its reads lend.
    pub(crate) fn shard(&self) -> Arc<Shard> {
        self.shards[thread_slot()].clone()
    }

    /// A new [`Reader`]: a count of its own for the pins taken through it.
    pub fn reader(&self) -> Reader {
        Reader {
            count: Arc::new(ReaderCount {
                core: self.inner.core.id(),
            }),
        }
    }

    pub(crate) fn check_reader(&self, reader: &Reader) -> Result<()> {
        if reader.count.core == self.inner.core.id() {
            Ok(())
        } else {
            Err(Error::NotARun {
                detail: "the reader belongs to another pool".into(),
            })
        }
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

    /// The counters so far, summed over the threads that counted.
    pub fn stats(&self) -> PoolStats {
        self.inner.stats.snapshot()
    }

    /// What the frames hold right now (PostgreSQL's `pg_buffercache`
    /// summary). Each frame's state word is read once, one after another,
    /// so under concurrent use the totals are approximate; when nothing
    /// runs they are exact, which is how tests check that no pin leaked
    /// and no frame was left in I/O.
    pub fn census(&self) -> PoolCensus {
        let mut census = PoolCensus::default();
        for desc in self.inner.frames.iter() {
            let s = desc.load();
            census.used += usize::from(s.any(MAPPED));
            census.valid += usize::from(s.has(VALID));
            census.dirty += usize::from(s.has(DIRTY));
            census.pinned += usize::from(s.pins() > 0);
            census.pins += s.pins() as usize;
            census.in_io += usize::from(s.any(READING | WRITING));
            census.lent += usize::from(s.has(LENT));
            census.failed_reads += usize::from(s.has(IO_ERROR));
        }
        census
    }

    /// The most pins one reader may hold beyond the one it needs:
    /// `frames / max_readers` (at least 1).
    pub fn max_pins_per_reader(&self) -> usize {
        self.inner.max_pins_per_reader
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
    /// Lends frame `frame`'s memory to an I/O, with `lender` to take it
    /// back. The caller has set the frame's `LENT` flag (taking its read
    /// I/O), so nothing else touches the memory until `page_returned`
    /// clears it.
    pub fn lend(&self, frame: u32, lender: Arc<dyn PageLender>) -> PageBuf {
        let ptr: NonNull<u8> = self.memory.frame_ptr(frame as usize);
        #[allow(unsafe_code)]
        // SAFETY: `ptr` is frame `frame` of the pool's mapping, valid for
        // one block while the pool lives; `lender` is the pool or a handle
        // that keeps it alive, and the `PageBuf` holds it, so the mapping
        // outlives the loan. The frame's `LENT` flag, set by the caller,
        // keeps every other path (eviction, content locks, another read)
        // off this memory until `page_returned`. The one exception is an
        // optimistic reader (`read_with`) that checked the frame before it
        // was lent: it may still be reading (volatile loads, never writes),
        // and the version bump made when the frame lost its page makes it
        // throw away what it read (optimistic.rs).
        unsafe {
            PageBuf::from_lent(ptr, self.block_size.bytes(), lender, frame as usize)
        }
    }

    /// Lends frame `frame`'s memory again to the read I/O that holds it
    /// once the memory has come back from an earlier loan; `None` while it
    /// has not (a backend still holds it).
    pub fn relend(self: &Arc<Self>, frame: u32) -> Option<PageBuf> {
        if !self.frames[frame as usize].state.relend() {
            return None;
        }
        Some(self.lend(frame, self.clone()))
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
                if let Some(Sweep::Claimed { dirty: false }) =
                    self.frames.get(frame as usize).map(|d| d.state.sweep(true))
                {
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
            // A thread takes clock positions in chunks of its own; before
            // giving up it looks at every frame once, in order, since other
            // threads' chunks hid some from it.
            let frame = if fruitless <= frames {
                self.next_clock_position()
            } else {
                ((fruitless - frames - 1) % frames) as u32
            };
            match self.frames[frame as usize].state.sweep(false) {
                outcome @ (Sweep::Busy | Sweep::InIo) => {
                    if let Sweep::InIo = outcome {
                        in_io = Some(frame);
                    }
                    fruitless += 1;
                    if fruitless > 2 * frames {
                        match in_io.take() {
                            // Nothing is free now, but a frame that nobody
                            // pins is only waiting for its I/O: wait for it
                            // rather than fail, then sweep again.
                            Some(waiting) => {
                                self.waiters
                                    .wait_until(waiting, &self.frames[waiting as usize], |s| {
                                        s.io_idle()
                                    })
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
                        let claim = PinGuard { inner: self, frame };
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

    /// The next clock position for this thread, from its chunk.
    fn next_clock_position(&self) -> u32 {
        let frames = self.frames.len() as u64;
        let chunk = &self.clock_chunks[thread_slot()].0;
        let mut current = chunk.load(Relaxed);
        loop {
            let (next, left) = (current >> 32, current & 0xFFFF_FFFF);
            if left == 0 {
                break;
            }
            let taken = ((next + 1) % frames) << 32 | (left - 1);
            match chunk.compare_exchange_weak(current, taken, Relaxed, Relaxed) {
                Ok(_) => return next as u32,
                Err(now) => current = now,
            }
        }
        let size = CLOCK_CHUNK.min(frames.div_ceil(4)).max(1);
        let start = self.clock.fetch_add(size, Relaxed) % frames;
        chunk.store(((start + 1) % frames) << 32 | (size - 1), Relaxed);
        start as u32
    }

    /// Removes the page of a frame we claimed (pinned once) from the page
    /// table. False (and the pin dropped) if someone else pinned or dirtied
    /// it in between.
    fn unmap_claimed(&self, frame: u32) -> bool {
        let desc = &self.frames[frame as usize];
        if !desc.load().has(MAPPED) {
            return desc.state.unmap_claimed();
        }
        // Our claim pin keeps the tag stable while MAPPED.
        let old = desc.tag();
        let mut partition = self.table.lock(&old);
        if !desc.state.unmap_claimed() {
            return false;
        }
        desc.page_gone();
        partition.remove(frame);
        Counters::add(&self.stats.here().evictions, 1);
        true
    }

    /// Drops one pin of `frame`.
    pub fn unpin(&self, frame: u32) {
        self.frames[frame as usize].state.unpin();
    }

    /// Wakes the waiters of `frame` if a transition said there are some.
    pub fn wake_if(&self, frame: u32, waiters: bool) {
        if waiters {
            self.waiters.wake(frame);
        }
    }
}

/// Drops a pin (clock sweep's on a victim, or a writer's) if the future
/// holding it is dropped, unless defused with `mem::forget` once the pin is
/// handed on.
pub(crate) struct PinGuard<'a> {
    pub inner: &'a PoolInner,
    pub frame: u32,
}

impl Drop for PinGuard<'_> {
    fn drop(&mut self) {
        self.inner.unpin(self.frame);
    }
}

// SAFETY: `lend` hands each frame's memory out only while the frame's
// `LENT` flag is set, which every other user of the memory checks first;
// `page_returned` is the only place that clears it.
#[allow(unsafe_code)]
unsafe impl PageLender for PoolInner {
    fn page_returned(&self, token: usize) {
        if let Some(desc) = self.frames.get(token) {
            let waiters = desc.state.page_returned();
            self.wake_if(token as u32, waiters);
        }
    }
}

// SAFETY: as for `PoolInner`, whose `page_returned` this is.
#[allow(unsafe_code)]
unsafe impl PageLender for Shard {
    fn page_returned(&self, token: usize) {
        self.pool.page_returned(token);
    }
}
