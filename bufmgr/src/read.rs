//! Reading pages into the pool, in two steps as in the seed patch.
//!
//! *Prepare* finds or allocates the frame of one block and pins it: a hit
//! if the page is already valid, a miss otherwise; it starts no I/O.
//! *Complete* takes a run of consecutive prepared buffers and reads the
//! missing ones with as few `readv` calls as possible:
//!
//! - a block that another task completed meanwhile is skipped;
//! - if another task is reading the *first* block, we wait for it (and
//!   read it ourselves if that read failed);
//! - for later blocks we never wait: a block that is busy or already valid
//!   ends the current `readv`, and the rest of the run continues after it.
//!
//! # Who finishes a read
//!
//! The I/O of a run is a future that owns its frames' `PageBuf`s and an
//! [`IoGuard`]. It runs inside the caller's future while the caller waits;
//! if the caller's future is dropped, the rest of the I/O future is spawned
//! onto the runtime ([`Detached`]), so the read still finishes and its
//! frames become valid (or failed, free to retry). Frame memory is only
//! reused after the I/O hands its `PageBuf` back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use smgr_api::{
    block_run_end, BlockNumber, ForkNumber, PageBuf, RelFileLocator, INVALID_BLOCK_NUMBER,
};

use crate::pool::{PoolInner, Reader, ReaderCount};
use crate::ring::BufferAccessStrategy;
use crate::state::{ReadStart, VALID};
use crate::stats::Counters;
use crate::{Buffer, BufferPool, BufferTag, Error, Result};

/// What to do about the page's contents when reading one buffer
/// (PostgreSQL's `ReadBufferMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBufferMode {
    /// Read the page; a page that fails verification is an error.
    Normal,
    /// Read the page; one that fails verification is replaced by zeros and
    /// a warning naming it is logged (`zero_damaged_pages`).
    ZeroOnError,
}

/// A pinned buffer from [`BufferPool::prepare_read`], and whether its page
/// was already valid.
#[derive(Debug)]
pub struct PreparedRead {
    /// The pinned buffer.
    pub buffer: Buffer,
    /// True if the page was valid in the pool (no read needed).
    pub hit: bool,
}

impl BufferPool {
    /// Finds or allocates the frame of a block and pins it, without any
    /// I/O on it (the first step of a read). An eviction on the way may
    /// write a dirty page back, hence `async`.
    ///
    /// # Errors
    ///
    /// [`Error::NoUnpinnedBuffers`] if no frame can be had; a storage error
    /// from writing back a dirty victim; an invalid block number.
    pub async fn prepare_read(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        strategy: Option<&mut BufferAccessStrategy>,
    ) -> Result<PreparedRead> {
        self.prepare_read_for(None, rel, fork, block, strategy)
            .await
    }

    /// [`prepare_read`](Self::prepare_read) whose pin counts as `reader`'s
    /// ([`Reader::pins`]).
    pub async fn prepare_read_as(
        &self,
        reader: &Reader,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        strategy: Option<&mut BufferAccessStrategy>,
    ) -> Result<PreparedRead> {
        self.check_reader(reader)?;
        self.prepare_read_for(Some(&reader.count), rel, fork, block, strategy)
            .await
    }

    async fn prepare_read_for(
        &self,
        owner: Option<&Arc<ReaderCount>>,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        mut strategy: Option<&mut BufferAccessStrategy>,
    ) -> Result<PreparedRead> {
        let inner = &self.inner;
        if block == INVALID_BLOCK_NUMBER {
            // The path is only built for the error: this is the hit path.
            let path = inner.naming.relpath(rel, fork)?;
            block_run_end(&path, block, 1)?;
        }
        let tag = BufferTag::new(rel, fork, block);
        loop {
            if let Some(found) = self.lookup(tag, owner) {
                return Ok(found);
            }
            let frame = inner.get_victim(strategy.as_deref_mut()).await?;
            let mut partition = inner.table.lock(&tag);
            if let Some(mapped) = partition.get(&inner.frames) {
                // Someone else mapped the page meanwhile: use theirs. Under
                // the partition lock a mapped frame can always be pinned.
                let state = inner.frames[mapped as usize].state.pin_if_mapped();
                drop(partition);
                inner.unpin(frame);
                if let Some(state) = state {
                    return Ok(self.found(tag, mapped, state.has(VALID), owner));
                }
                continue;
            }
            let desc = &inner.frames[frame as usize];
            desc.set_tag(&tag);
            desc.state.map();
            partition.insert(frame);
            drop(partition);
            Counters::add(&inner.stats.here().misses, 1);
            return Ok(PreparedRead {
                buffer: self.buffer(frame, tag, owner),
                hit: false,
            });
        }
    }

    /// Pins the page's frame if the page is in the pool, without waiting
    /// for anything (no eviction, no I/O): the synchronous first half of
    /// [`prepare_read`](Self::prepare_read), for callers that want to skip
    /// the `async` machinery on hits. `None` if it is not in the pool (or a
    /// lock-free look-up just missed it); then call `prepare_read`.
    pub fn prepare_read_if_cached(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
    ) -> Option<PreparedRead> {
        if block == INVALID_BLOCK_NUMBER {
            return None;
        }
        self.lookup(BufferTag::new(rel, fork, block), None)
    }

    /// [`prepare_read_if_cached`](Self::prepare_read_if_cached) whose pin
    /// counts as `reader`'s; `None` also for a reader of another pool.
    pub fn prepare_read_if_cached_as(
        &self,
        reader: &Reader,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
    ) -> Option<PreparedRead> {
        if block == INVALID_BLOCK_NUMBER || self.check_reader(reader).is_err() {
            return None;
        }
        self.lookup(BufferTag::new(rel, fork, block), Some(&reader.count))
    }

    /// Pins the page's frame if it is mapped, by a lock-free probe of the
    /// page table (pin, then check the tag). The probe may miss an entry a
    /// writer is moving; the miss path looks again under the partition's
    /// lock before it maps the page to a new frame, so a false miss costs a
    /// victim, never a second copy of the page.
    fn lookup(&self, tag: BufferTag, owner: Option<&Arc<ReaderCount>>) -> Option<PreparedRead> {
        let inner = &self.inner;
        let mut found = None;
        inner.table.probe(&tag, |frame| {
            let Some(desc) = inner.frames.get(frame as usize) else {
                return false;
            };
            let Some(state) = desc.state.pin_if_mapped() else {
                return false;
            };
            // Pinned while MAPPED: the tag cannot change under us now.
            if desc.has_tag(&tag) {
                found = Some((frame, state.has(VALID)));
                true
            } else {
                desc.state.unpin();
                false
            }
        });
        let (frame, hit) = match found {
            Some(found) => found,
            // Entries that did not fit a partition's array live in a map
            // only the locked look-up sees (rare: a skewed partition).
            None if inner.table.has_overflow(&tag) => {
                let partition = inner.table.lock(&tag);
                let frame = partition.get(&inner.frames)?;
                let state = inner.frames[frame as usize].state.pin_if_mapped()?;
                drop(partition);
                (frame, state.has(VALID))
            }
            None => return None,
        };
        Some(self.found(tag, frame, hit, owner))
    }

    /// A pinned frame found mapped to `tag`, counted as a hit or a miss.
    fn found(
        &self,
        tag: BufferTag,
        frame: u32,
        hit: bool,
        owner: Option<&Arc<ReaderCount>>,
    ) -> PreparedRead {
        let counters = self.inner.stats.here();
        Counters::add(
            if hit {
                &counters.hits
            } else {
                &counters.misses
            },
            1,
        );
        PreparedRead {
            buffer: self.buffer(frame, tag, owner),
            hit,
        }
    }

    /// The handle of a pin just taken on `frame`.
    fn buffer(&self, frame: u32, tag: BufferTag, owner: Option<&Arc<ReaderCount>>) -> Buffer {
        Buffer {
            core: self.inner.core.ptr(),
            frame,
            tag,
            reader: owner.cloned(),
        }
    }

    /// Completes the reads of `buffers`, consecutive blocks of one fork
    /// prepared by [`prepare_read`](Self::prepare_read), with as few
    /// `readv` calls as possible (the second step of a read). Buffers that
    /// are valid by now are skipped. Every block read is verified.
    ///
    /// # Errors
    ///
    /// A storage error, or [`smgr_api::Error::CorruptPage`] (inside
    /// [`Error::Storage`]) naming the relation path and block of a page
    /// that fails verification in [`ReadBufferMode::Normal`]. In the
    /// `readv` that met it, the pages that verified become valid and the
    /// failed one does not; later runs of `buffers` are not read. Pages
    /// left not valid are read again by the next reader.
    ///
    /// With [`ReadBufferMode::ZeroOnError`] a damaged page becomes a valid
    /// page of zeros for every reader of the pool, as PostgreSQL's
    /// `zero_damaged_pages` does.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future never leaves a frame stuck: a `readv` already
    /// started finishes in the background and its pages become valid.
    pub async fn complete_read(&self, buffers: &[Buffer], mode: ReadBufferMode) -> Result<()> {
        check_run(&self.inner, buffers)?;
        let mut i = 0;
        while i < buffers.len() {
            if !self.start_read_io(&buffers[i], true).await {
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < buffers.len() && self.try_start_read_io(&buffers[end]) {
                end += 1;
            }
            self.read_run(&buffers[i..end], mode).await?;
            i = end;
        }
        Ok(())
    }

    /// Reads one block through the pool (PostgreSQL's `ReadBufferExtended`
    /// with the default strategy): prepare, then complete if it missed.
    pub async fn read_buffer(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        mode: ReadBufferMode,
    ) -> Result<Buffer> {
        self.read_buffer_with(rel, fork, block, mode, None).await
    }

    /// [`read_buffer`](Self::read_buffer) with a buffer access strategy.
    pub async fn read_buffer_with(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        mode: ReadBufferMode,
        strategy: Option<&mut BufferAccessStrategy>,
    ) -> Result<Buffer> {
        // A hit needs none of the machinery below.
        let prepared = match self.prepare_read_if_cached(rel, fork, block) {
            Some(prepared) if prepared.hit => return Ok(prepared.buffer),
            Some(prepared) => prepared,
            None => self.prepare_read(rel, fork, block, strategy).await?,
        };
        if !prepared.hit {
            self.complete_read(std::slice::from_ref(&prepared.buffer), mode)
                .await?;
        }
        Ok(prepared.buffer)
    }

    /// A page the caller initializes without reading it (PostgreSQL's
    /// `RBM_ZERO_AND_LOCK`, then the caller's initialization, then the
    /// unlock): `init` gets the page as zeros and fills it in, and no other
    /// task sees the page before `init` returns. The page comes back
    /// pinned, valid and dirty.
    ///
    /// A page not in the pool is initialized while its frame's I/O is in
    /// progress, so tasks reading the block meanwhile wait for it, as for a
    /// read, and storage is not read. A page already in the pool is zeroed
    /// and initialized under its exclusive content lock (PostgreSQL would
    /// hand over its old contents; zeros make one contract for both
    /// cases). `init` runs on this task, synchronously: keep it short. If
    /// it panics, the pool keeps what it had (nothing, or the old page).
    ///
    /// As in PostgreSQL, blocks that an [`extend_by`](Self::extend_by) in
    /// progress is adding belong to its caller: initialize those through
    /// the buffers it returns.
    ///
    /// # Errors
    ///
    /// The block must exist in storage (new blocks come from
    /// `extend_by`): one past the end is `WrongBlock`, found here rather
    /// than when the page is written.
    pub async fn zero_and_lock(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        init: impl FnOnce(&mut [u8]),
    ) -> Result<Buffer> {
        let prepared = self.prepare_read(rel, fork, block, None).await?;
        let buffer = prepared.buffer;
        if !prepared.hit {
            // Only a page not in the pool may be one storage lacks.
            let nblocks = self.inner.smgr.nblocks(rel, fork).await?;
            if block >= nblocks {
                return Err(smgr_api::Error::WrongBlock {
                    op: "zero and lock",
                    path: self.inner.naming.relpath(rel, fork)?,
                    block,
                    nblocks,
                }
                .into());
            }
        }
        if !prepared.hit && self.start_read_io(&buffer, true).await {
            // Guarded before `init` runs: if it panics, the I/O ends as
            // failed instead of leaving the frame in I/O forever.
            let guard = IoGuard::new(self.inner.clone(), vec![buffer.frame]);
            let mut page = self.inner.lend(buffer.frame, self.shard());
            page.fill(0);
            init(&mut page);
            drop(page);
            guard.finish(&[true]);
            buffer.write()?.mark_dirty();
        } else {
            // A valid page: `init` fills a copy, so that if it panics the
            // pool still holds the old page, not a half-made one.
            let mut fresh = vec![0u8; self.inner.block_size.bytes()];
            init(&mut fresh);
            let mut page = buffer.write()?;
            page.copy_from_slice(&fresh);
            page.mark_dirty();
        }
        Ok(buffer)
    }

    /// Makes a not-yet-valid buffer a valid page of zeros, without reading.
    pub(crate) async fn zero_fill(&self, buffer: &Buffer) {
        if !self.start_read_io(buffer, true).await {
            return;
        }
        let mut page = self.inner.lend(buffer.frame, self.shard());
        page.fill(0);
        drop(page);
        IoGuard::new(self.inner.clone(), vec![buffer.frame]).finish(&[true]);
    }

    /// Takes the read I/O of a buffer's page, waiting while another task
    /// reads it. False if the page is (or became) valid.
    async fn start_read_io(&self, buffer: &Buffer, wait: bool) -> bool {
        let desc = &self.inner.frames[buffer.frame as usize];
        loop {
            match desc.state.start_read() {
                ReadStart::Valid => return false,
                ReadStart::Started => return true,
                ReadStart::Busy if !wait => return false,
                ReadStart::Busy => {}
            }
            let started = Instant::now();
            self.inner
                .waiters
                .wait_until(buffer.frame, desc, |s| s.has(VALID) || s.io_idle())
                .await;
            Counters::add(
                &self.inner.stats.here().io_wait_nanos,
                started.elapsed().as_nanos() as u64,
            );
        }
    }

    /// `start_read_io` that never waits: false if valid or busy.
    fn try_start_read_io(&self, buffer: &Buffer) -> bool {
        self.inner.frames[buffer.frame as usize].state.start_read() == ReadStart::Started
    }

    /// One `readv` for buffers whose read I/O we took (consecutive blocks).
    /// Not `async`: the frames are lent and guarded before this returns,
    /// with no suspension point between taking their I/O and guarding it.
    fn read_run(&self, buffers: &[Buffer], mode: ReadBufferMode) -> Detached<Result<()>> {
        let inner = self.inner.clone();
        let first = buffers[0].tag;
        let frames: Vec<u32> = buffers.iter().map(|b| b.frame).collect();
        // Lend the frames now, synchronously after taking their I/O, so the
        // guard and the buffers travel together from here on.
        // Lent through this thread's handle: the loans are returned on the
        // thread that reads, so the count they change stays on its core.
        let lender = self.shard();
        let pages: Vec<PageBuf> = frames
            .iter()
            .map(|&f| inner.lend(f, lender.clone()))
            .collect();
        let guard = IoGuard::new(inner.clone(), frames);
        Detached::new(read_and_verify(inner, first, pages, guard, mode))
    }
}

/// The I/O of one run: `readv`, verify each page, publish the outcome.
async fn read_and_verify(
    inner: Arc<PoolInner>,
    first: BufferTag,
    pages: Vec<PageBuf>,
    guard: IoGuard,
    mode: ReadBufferMode,
) -> Result<()> {
    let n = pages.len();
    let bytes = (n * inner.block_size.bytes()) as u64;
    Counters::add(&inner.stats.here().read_calls, 1);
    let expected: Vec<usize> = guard
        .frames
        .iter()
        .map(|&f| inner.memory.frame_ptr(f as usize).as_ptr() as usize)
        .collect();
    let pages = match inner
        .smgr
        .readv(first.rel, first.fork, first.block, pages)
        .await
    {
        Ok(pages) => pages,
        Err(err) if mode == ReadBufferMode::ZeroOnError && err.is_damaged_data() => {
            return crate::damaged::zero_damaged_blocks(inner, first, guard, err).await;
        }
        Err(err) => {
            guard.finish(&vec![false; n]);
            return Err(err.into());
        }
    };
    // `Smgr` is a safe trait: a faulty backend could hand back other
    // buffers, fewer of them, or keep one of ours. Only pages that really
    // are our frames may become valid (and `publish` also refuses a frame
    // still lent).
    if pages.len() != n
        || pages
            .iter()
            .zip(&expected)
            .any(|(page, &addr)| page.as_ptr() as usize != addr)
    {
        drop(pages);
        guard.finish(&vec![false; n]);
        return Err(buffers_not_returned(&inner, first));
    }
    let counters = inner.stats.here();
    Counters::add(&counters.blocks_read, n as u64);
    Counters::add(&counters.bytes_read, bytes);
    let mut ok = vec![true; n];
    let mut first_error = None;
    for (k, page) in pages.into_iter().enumerate() {
        let block = first.block + k as BlockNumber;
        if let Err(err) = verify_page(&inner, first, block, page, mode) {
            ok[k] = false;
            first_error.get_or_insert(err);
        }
    }
    guard.finish(&ok);
    first_error.map_or(Ok(()), Err)
}

/// The error for a backend that handed back other buffers than it was
/// lent, fewer of them, or kept one.
pub(crate) fn buffers_not_returned(inner: &PoolInner, first: BufferTag) -> Error {
    Error::Storage(smgr_api::Error::io(
        "read",
        inner
            .naming
            .relpath(first.rel, first.fork)
            .unwrap_or_else(|_| first.rel.to_string()),
        std::io::Error::other("the storage manager did not return the buffers it was given"),
    ))
}

/// Verifies one page just read into the pool and hands its memory back: a
/// page that fails is an error naming path and block, or, with
/// [`ReadBufferMode::ZeroOnError`], zeros and a warning.
pub(crate) fn verify_page(
    inner: &PoolInner,
    first: BufferTag,
    block: BlockNumber,
    mut page: PageBuf,
    mode: ReadBufferMode,
) -> Result<()> {
    let Err(detail) = inner.verifier.verify(&page, block) else {
        return Ok(());
    };
    if mode == ReadBufferMode::ZeroOnError {
        let tag = BufferTag::new(first.rel, first.fork, block);
        tracing::warn!(page = %tag, %detail, "invalid page; zeroing it");
        page.fill(0);
        Counters::add(&inner.stats.here().pages_zeroed_on_error, 1);
        return Ok(());
    }
    Err(Error::Storage(smgr_api::Error::CorruptPage {
        path: inner
            .naming
            .relpath(first.rel, first.fork)
            .unwrap_or_else(|_| first.rel.to_string()),
        block,
        detail,
    }))
}

/// Publishes the outcome of a read I/O on its frames exactly once: valid,
/// or failed (not valid, `io_error`, free for the next reader to retry).
/// Dropped without `finish` (the I/O future was dropped before it ended),
/// it marks every frame failed, so no frame stays in I/O forever.
pub(crate) struct IoGuard {
    inner: Arc<PoolInner>,
    pub(crate) frames: Vec<u32>,
}

impl IoGuard {
    pub fn new(inner: Arc<PoolInner>, frames: Vec<u32>) -> Self {
        IoGuard { inner, frames }
    }

    pub fn finish(mut self, ok: &[bool]) {
        let frames = std::mem::take(&mut self.frames);
        for (i, &frame) in frames.iter().enumerate() {
            // A frame without an outcome failed: never left in I/O.
            self.publish(frame, ok.get(i).copied().unwrap_or(false));
        }
    }

    fn publish(&self, frame: u32, ok: bool) {
        // Never valid while an I/O may still hold the memory (`end_read`).
        let waiters = self.inner.frames[frame as usize].state.end_read(ok);
        self.inner.wake_if(frame, waiters);
    }
}

impl Drop for IoGuard {
    fn drop(&mut self) {
        for frame in std::mem::take(&mut self.frames) {
            self.publish(frame, false);
        }
    }
}

/// A future that, if dropped before it finishes, keeps running on the
/// Tokio runtime instead of being cancelled: I/O completion belongs to the
/// pool, not to whoever happened to be waiting for it.
pub(crate) struct Detached<T: Send + 'static> {
    future: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
}

impl<T: Send + 'static> Detached<T> {
    pub(crate) fn new(future: impl Future<Output = T> + Send + 'static) -> Self {
        Detached {
            future: Some(Box::pin(future)),
        }
    }
}

impl<T: Send + 'static> Future for Detached<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(future) = self.future.as_mut() else {
            return Poll::Pending;
        };
        // A panic inside the I/O (a backend bug) ends it here: dropping the
        // future (`self.future = None`) runs its guards (frames published
        // as failed), and it is not polled again in the background.
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx)));
        let output = match polled {
            Ok(poll) => std::task::ready!(poll),
            Err(panic) => {
                self.future = None;
                std::panic::resume_unwind(panic);
            }
        };
        self.future = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            match crate::sync::spawn_detached(async move {
                let _ = future.await;
            }) {
                Ok(()) => {}
                // No runtime to finish on (it is shutting down): dropping
                // the future drops its IoGuard, which marks the frames
                // failed; their memory comes back when the backend's I/O
                // lets go of it.
                Err(unfinished) => drop(unfinished),
            }
        }
    }
}

fn check_run(inner: &Arc<PoolInner>, buffers: &[Buffer]) -> Result<()> {
    let Some(first) = buffers.first() else {
        return Ok(());
    };
    for (i, buffer) in buffers.iter().enumerate() {
        if buffer.core != inner.core.ptr() {
            return Err(Error::NotARun {
                detail: format!("buffer {i} ({}) belongs to another pool", buffer.tag),
            });
        }
        let tag = buffer.tag;
        if tag.rel != first.tag.rel
            || tag.fork != first.tag.fork
            || u64::from(tag.block) != u64::from(first.tag.block) + i as u64
        {
            return Err(Error::NotARun {
                detail: format!(
                    "buffer {i} is {tag}, expected block {} after {}",
                    u64::from(first.tag.block) + i as u64,
                    first.tag
                ),
            });
        }
    }
    Ok(())
}
