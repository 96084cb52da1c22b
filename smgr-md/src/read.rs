//! `readv`: vectored reads straight into the caller's buffers.
//!
//! A read first runs inline with `preadv2(RWF_NOWAIT)`: when the pages are
//! in the kernel's page cache this copies them at memory speed without
//! handing the read to another thread (a `spawn_blocking` round trip costs
//! 17–29 µs here, more than copying 128 KiB). Whatever is not cached (the
//! call fails with `EAGAIN` or returns short) is finished on Tokio's
//! blocking pool with plain `preadv`, which owns the buffers until it ends,
//! so dropping the future cannot free memory under the kernel's feet.

use std::io::{ErrorKind, IoSliceMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use smgr_api::{BlockNumber, Error, ForkNumber, PageBuf, RelFileLocator, Result};

use crate::fs::{FileSystem, SegmentFile};
use crate::inner::Inner;

/// The kernel's limit on iovecs per call (`IOV_MAX`).
pub(crate) const MAX_IOVECS: usize = 1024;

/// A read in progress: where it is and the buffers it owns.
pub(crate) struct ReadJob<F: FileSystem> {
    inner: Arc<Inner<F>>,
    rel: RelFileLocator,
    fork: ForkNumber,
    first: BlockNumber,
    pub bufs: Vec<PageBuf>,
    /// Bytes of the run read so far.
    done: u64,
}

/// How far a pass of the job got.
pub(crate) enum Progress {
    Done,
    WouldBlock,
}

impl<F: FileSystem> ReadJob<F> {
    pub fn new(
        inner: Arc<Inner<F>>,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Self {
        ReadJob {
            inner,
            rel,
            fork,
            first,
            bufs,
            done: 0,
        }
    }

    fn total(&self) -> u64 {
        self.bufs.len() as u64 * self.inner.block_bytes()
    }

    /// Reads until done, an error, or (with `nowait`) until the kernel
    /// would have to wait for the device.
    pub fn run(&mut self, nowait: bool) -> Result<Progress> {
        let bs = self.inner.block_bytes();
        let seg = u64::from(self.inner.segment_blocks());
        while self.done < self.total() {
            let index = (self.done / bs) as usize;
            let within = (self.done % bs) as usize;
            let block = u64::from(self.first) + index as u64;
            let segno = (block / seg) as u32;
            let seg_block = block % seg;
            let in_segment = ((seg - seg_block) as usize).min(self.bufs.len() - index);
            let offset = seg_block * bs + within as u64;

            let Some(file) = self.inner.open_seg(self.rel, self.fork, segno, false)? else {
                let fork_exists = segno > 0
                    && self
                        .inner
                        .open_seg_unchecked(self.rel, self.fork, 0)?
                        .is_some();
                return Err(if !fork_exists {
                    Error::NotFound {
                        path: self.inner.relpath(self.rel, self.fork)?,
                    }
                } else {
                    self.short_read(segno)?
                });
            };
            let end = index + in_segment.min(MAX_IOVECS);
            let mut iovecs: Vec<IoSliceMut<'_>> = Vec::with_capacity(end - index);
            for (i, buf) in self.bufs[index..end].iter_mut().enumerate() {
                let slice: &mut [u8] = if i == 0 { &mut buf[within..] } else { buf };
                iovecs.push(IoSliceMut::new(slice));
            }
            match file.read_at(&mut iovecs, offset, nowait) {
                Ok(0) if nowait => return Ok(Progress::WouldBlock),
                Ok(0) => return Err(self.short_read(segno)?),
                Ok(n) => self.done += n as u64,
                Err(err) if nowait && err.kind() == ErrorKind::WouldBlock => {
                    return Ok(Progress::WouldBlock)
                }
                Err(err) if nowait && err.kind() == ErrorKind::Unsupported => {
                    // RWF_NOWAIT not supported here: stop trying.
                    self.inner.nowait_reads.store(false, Ordering::Relaxed);
                    return Ok(Progress::WouldBlock);
                }
                Err(err) => {
                    return Err(Error::io(
                        "read",
                        self.inner.seg_path(self.rel, self.fork, segno)?,
                        err,
                    ))
                }
            }
        }
        Ok(Progress::Done)
    }

    fn short_read(&self, segno: u32) -> Result<Error> {
        Ok(Error::ShortRead {
            path: self.inner.seg_path(self.rel, self.fork, segno)?,
            first: self.first,
            last: self.first + (self.bufs.len() as BlockNumber).saturating_sub(1),
            read: self.done,
            expected: self.total(),
        })
    }
}
