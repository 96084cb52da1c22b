//! Writing dirty pages back, and extending relations through the pool.
//!
//! A page is written from a copy taken under its shared content lock, with
//! its checksum set in the copy (as PostgreSQL's `PageSetChecksumCopy`), so
//! readers of the buffer are never blocked by the write and the page in the
//! pool is never half-stamped. Consecutive dirty blocks of one fork go out
//! in one `writev`.

use std::sync::Arc;

use smgr_api::{BlockNumber, ForkNumber, PageBuf, RelFileLocator};

use crate::pool::{PinGuard, PoolInner};
use crate::read::Detached;
use crate::state::{WriteStart, DIRTY, MAPPED, VALID};
use crate::stats::Counters;
use crate::{Buffer, BufferPool, BufferTag, ReadBufferMode, Result};

impl BufferPool {
    /// Writes the buffer's page if it is dirty.
    pub async fn flush_buffer(&self, buffer: &Buffer) -> Result<()> {
        if buffer.core != self.inner.core.ptr() {
            return Err(crate::Error::NotARun {
                detail: format!("{} belongs to another pool", buffer.tag),
            });
        }
        self.inner
            .write_frames(vec![(buffer.tag, buffer.frame)])
            .await
    }

    /// Writes every dirty page of one fork, consecutive blocks combined.
    pub async fn flush_relation(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        let dirty = self
            .inner
            .dirty_frames(|tag| tag.rel == rel && tag.fork == fork);
        self.inner.write_frames(dirty).await
    }

    /// Writes every dirty page in the pool.
    pub async fn flush_all(&self) -> Result<()> {
        let dirty = self.inner.dirty_frames(|_| true);
        self.inner.write_frames(dirty).await
    }

    /// Adds up to `count` zeroed blocks at the end of a fork and returns
    /// them pinned and valid (PostgreSQL's `ExtendBufferedRelBy`). As in
    /// PostgreSQL, `count` is clamped to what one reader may pin
    /// ([`limit_additional_pins`](Self::limit_additional_pins)); the length
    /// of the result says how many blocks were added. The space is reserved
    /// in storage (`zero_extend`) before the buffers are handed out.
    /// Extensions are serialized, so concurrent callers get distinct blocks.
    pub async fn extend_by(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        count: BlockNumber,
    ) -> Result<Vec<Buffer>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let count = self.limit_additional_pins(0, count as usize) as BlockNumber;
        let _extension = self.inner.extension.lock().await;
        let smgr = &self.inner.smgr;
        let first = smgr.nblocks(rel, fork).await?;
        smgr.zero_extend(rel, fork, first, count).await?;
        let mut buffers = Vec::with_capacity(count as usize);
        for block in first..first + count {
            let prepared = self.prepare_read(rel, fork, block, None).await?;
            if prepared.hit {
                // A page of this number from before a truncation the pool
                // did not see; storage now holds zeros, so must the pool.
                tracing::warn!(page = %prepared.buffer.tag(), "stale page found beyond the end of the relation; zeroing it");
                // Dirty, so that zeros also replace whatever write of the
                // stale page may still reach storage.
                let mut page = prepared.buffer.write()?;
                page.fill(0);
                page.mark_dirty();
            } else {
                self.zero_fill(&prepared.buffer).await;
            }
            buffers.push(prepared.buffer);
        }
        Ok(buffers)
    }

    /// Reads a block for changing it: [`read_buffer`](Self::read_buffer)
    /// in normal mode. A convenience for the common write path.
    pub async fn read_for_update(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
    ) -> Result<Buffer> {
        self.read_buffer(rel, fork, block, ReadBufferMode::Normal)
            .await
    }
}

impl PoolInner {
    /// Dirty, valid pages whose tag matches, in (relation, fork, block)
    /// order.
    fn dirty_frames(&self, wanted: impl Fn(&BufferTag) -> bool) -> Vec<(BufferTag, u32)> {
        let mut dirty: Vec<(BufferTag, u32)> = Vec::new();
        for (frame, desc) in self.frames.iter().enumerate() {
            if !desc.load().has(DIRTY | VALID | MAPPED) {
                continue;
            }
            // Pinned while MAPPED, the tag is stable: read it exactly.
            let Some(state) = desc.state.pin_if_mapped_quietly() else {
                continue;
            };
            let tag = desc.tag();
            if state.has(DIRTY | VALID) && wanted(&tag) {
                dirty.push((tag, frame as u32));
            }
            desc.state.unpin();
        }
        dirty.sort_unstable_by_key(|(tag, _)| *tag);
        dirty
    }

    /// Writes the frame we claimed for eviction (pinned once by us; its
    /// tag is stable while it is `MAPPED`).
    pub async fn write_back_claimed(self: &Arc<Self>, frame: u32) -> Result<()> {
        let desc = &self.frames[frame as usize];
        if !desc.load().has(MAPPED) {
            return Ok(());
        }
        self.write_frames(vec![(desc.tag(), frame)]).await
    }

    /// Writes the given pages (sorted by tag) that are still dirty, one
    /// `writev` per run of consecutive blocks.
    pub async fn write_frames(self: &Arc<Self>, frames: Vec<(BufferTag, u32)>) -> Result<()> {
        let mut run: Vec<(BufferTag, PageBuf, WriteGuard)> = Vec::new();
        let mut first_error = None;
        for (tag, frame) in frames {
            let Some((copy, guard)) = self.start_write(tag, frame).await else {
                continue;
            };
            if let Some((last, _, _)) = run.last() {
                if last.rel != tag.rel
                    || last.fork != tag.fork
                    || last.block.checked_add(1) != Some(tag.block)
                {
                    if let Err(err) = self.write_run(std::mem::take(&mut run)).await {
                        first_error.get_or_insert(err);
                    }
                }
            }
            run.push((tag, copy, guard));
        }
        if !run.is_empty() {
            if let Err(err) = self.write_run(run).await {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Takes the write I/O of a frame if it still holds `tag` dirty, and
    /// returns a checksummed copy of its page with the guard that ends the
    /// I/O. Waits for a write already in progress, since its copy may
    /// predate the latest change.
    async fn start_write(
        self: &Arc<Self>,
        tag: BufferTag,
        frame: u32,
    ) -> Option<(PageBuf, WriteGuard)> {
        let desc = &self.frames[frame as usize];
        // A pin of our own until the write is ours: the frame keeps its
        // page (and the tag we compare stays put); once `WRITING` is set,
        // that flag keeps it from eviction, and the pin goes (a sweep then
        // sees a frame in I/O, not a pinned one, and waits for it).
        desc.state.pin_if_mapped_quietly()?;
        let pin = PinGuard { inner: self, frame };
        if !desc.has_tag(&tag) {
            return None;
        }
        loop {
            match desc.state.start_write() {
                WriteStart::Clean => return None,
                WriteStart::Started => break,
                WriteStart::Busy => {
                    self.waiters
                        .wait_until(frame, desc, |s| s.io_idle() || !s.has(DIRTY))
                        .await
                }
            }
        }
        // From here to the return nothing awaits: the guard is in place
        // before any suspension point.
        drop(pin);
        let guard = WriteGuard {
            inner: self.clone(),
            frame: Some(frame),
        };
        // Valid, dirty and in write I/O, it cannot become invalid or lent:
        // the shared lock is always granted (if not, nothing is written).
        if !desc.state.lock_shared() {
            drop(guard);
            return None;
        }
        let mut copy = PageBuf::zeroed_block(self.block_size);
        #[allow(unsafe_code)]
        // SAFETY: the frame is valid and in write I/O, so it cannot be
        // evicted or lent to a read; the shared content lock keeps writers
        // out while we copy.
        let page = unsafe {
            std::slice::from_raw_parts(
                self.memory.frame_ptr(frame as usize).as_ptr(),
                self.block_size.bytes(),
            )
        };
        copy.copy_from_slice(page);
        desc.state.unlock_shared();
        self.verifier.set_checksum(&mut copy, tag.block);
        Some((copy, guard))
    }

    /// One `writev` for a run of consecutive pages; the I/O belongs to the
    /// pool (see `Detached`), so a dropped flush still finishes it before a
    /// later write of the same pages can start.
    async fn write_run(self: &Arc<Self>, run: Vec<(BufferTag, PageBuf, WriteGuard)>) -> Result<()> {
        let Some(&(first, _, _)) = run.first() else {
            return Ok(());
        };
        let inner = self.clone();
        let (pages, guards): (Vec<PageBuf>, Vec<WriteGuard>) = run
            .into_iter()
            .map(|(_, page, guard)| (page, guard))
            .unzip();
        Detached::new(async move {
            let n = pages.len() as u64;
            let result = inner
                .smgr
                .writev(first.rel, first.fork, first.block, pages)
                .await;
            if result.is_ok() {
                let counters = inner.stats.here();
                Counters::add(&counters.write_calls, 1);
                Counters::add(&counters.blocks_written, n);
                Counters::add(&counters.bytes_written, n * inner.block_size.bytes() as u64);
            }
            for guard in guards {
                guard.finish(result.is_ok());
            }
            result.map(drop).map_err(Into::into)
        })
        .await
    }
}

/// Ends a frame's write I/O exactly once. Finished after a successful write, it marks the page clean unless it was
/// dirtied again meanwhile; dropped unfinished, it leaves the page dirty
/// (nothing known written).
pub(crate) struct WriteGuard {
    inner: Arc<PoolInner>,
    frame: Option<u32>,
}

impl WriteGuard {
    fn finish(mut self, written: bool) {
        if let Some(frame) = self.frame.take() {
            self.end(frame, written);
        }
    }

    fn end(&self, frame: u32, written: bool) {
        let desc = &self.inner.frames[frame as usize];
        let waiters = desc.state.end_write(written);
        self.inner.wake_if(frame, waiters);
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if let Some(frame) = self.frame.take() {
            self.end(frame, false);
        }
    }
}
