//! The `Smgr` implementation: reads, prefetch, and segment rewrites.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use smgr_api::{
    block_run_end, BlockNumber, BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Result, Smgr,
};

use crate::meta::{nblocks32, ForkMeta};
use crate::seekable::Patch;
use crate::{Inner, ObjectSmgr};

/// Where a write may go: over existing blocks, or exactly at the end.
/// Writes page `i` of a write into the buffer given.
type FillPage<'a> = dyn Fn(usize, &mut [u8]) + Sync + 'a;

#[derive(Clone, Copy)]
enum Place {
    Inside,
    AtEnd,
}

/// The part of a block run inside one segment object.
#[derive(Clone, Copy)]
struct Piece {
    segno: u32,
    seg_block: u64,
    first_index: usize,
    count: usize,
}

impl Inner {
    fn pieces(&self, first: BlockNumber, count: usize) -> impl Iterator<Item = Piece> {
        let seg = u64::from(self.opts.segment_blocks);
        let mut index = 0usize;
        std::iter::from_fn(move || {
            if index >= count {
                return None;
            }
            let block = u64::from(first) + index as u64;
            let seg_block = block % seg;
            let n = ((seg - seg_block) as usize).min(count - index);
            let piece = Piece {
                segno: (block / seg) as u32,
                seg_block,
                first_index: index,
                count: n,
            };
            index += n;
            Some(piece)
        })
    }

    fn bs(&self) -> u64 {
        u64::from(self.opts.block_size.get())
    }

    async fn fork(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<Option<ForkMeta>> {
        self.meta
            .get(&self.store, &self.opts, &self.prefix, rel, fork)
            .await
    }

    async fn fork_required(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<ForkMeta> {
        match self.fork(rel, fork).await? {
            Some(meta) => Ok(meta),
            None => Err(Error::NotFound {
                path: self.opts.naming.relpath(rel, fork)?,
            }),
        }
    }

    fn check_bufs(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        bufs: &[PageBuf],
    ) -> Result<()> {
        let path = self.opts.naming.relpath(rel, fork)?;
        block_run_end(&path, first, bufs.len())?;
        let expected = self.opts.block_size.bytes();
        match bufs.iter().position(|b| b.len() != expected) {
            Some(index) => Err(Error::BufferSize {
                path,
                index,
                actual: bufs[index].len(),
                expected,
            }),
            None => Ok(()),
        }
    }

    /// One attempt at a read with the given metadata.
    async fn read_once(
        self: &Arc<Self>,
        meta: &ForkMeta,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        bufs: &mut [PageBuf],
    ) -> Result<()> {
        let nblocks = meta.nblocks(&self.opts);
        let end = u64::from(first) + bufs.len() as u64;
        if end > nblocks {
            let seg = (nblocks.max(1) - 1) / u64::from(self.opts.segment_blocks);
            return Err(Error::ShortRead {
                path: self.key(rel, fork, seg as u32)?,
                first,
                last: first + (bufs.len() as BlockNumber - 1),
                read: nblocks.saturating_sub(u64::from(first)) * self.bs(),
                expected: bufs.len() as u64 * self.bs(),
            });
        }
        let bs = self.bs();
        for piece in self.pieces(first, bufs.len()) {
            let seg = &meta.segments[piece.segno as usize];
            let key = seg.object_key(&self.key(rel, fork, piece.segno)?);
            let start = piece.seg_block * bs;
            let range = start..start + piece.count as u64 * bs;
            let pages = &mut bufs[piece.first_index..piece.first_index + piece.count];
            if let Some(table) = &seg.table {
                let first_block = u64::from(piece.segno) * u64::from(self.opts.segment_blocks);
                self.read_compressed(&key, seg, table, first_block, range, pages)
                    .await?;
            } else {
                let pieces = self.fetch(&key, seg, range).await?;
                crate::io::copy_to_pages(&pieces, pages);
            }
        }
        Ok(())
    }

    /// Writes `count` blocks from `first` (inside the fork or appended at
    /// its end), segment by segment, each a read-modify-write with a
    /// conditional put. `fill(i, page)` writes block `first + i`; no
    /// `fill` writes zeros (which growing a segment gives anyway, so
    /// nothing is copied for them).
    async fn write_blocks(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        meta: &mut ForkMeta,
        first: BlockNumber,
        count: usize,
        fill: Option<&FillPage<'_>>,
    ) -> Result<()> {
        let bs = self.bs() as usize;
        for piece in self.pieces(first, count) {
            let old = meta.segments.get(piece.segno as usize).cloned();
            let base = self.key(rel, fork, piece.segno)?;
            let key = match &old {
                Some(seg) => seg.object_key(&base),
                None => self.new_segment_key(base),
            };
            let start = piece.seg_block * bs as u64;
            let end = start + (piece.count * bs) as u64;
            let fill_piece = |i: usize, page: &mut [u8]| {
                if let Some(fill) = fill {
                    fill(piece.first_index + i, page);
                }
            };
            let patch = fill.map(|_| Patch {
                start,
                count: piece.count,
                page_bytes: bs,
                fill: &fill_piece,
            });
            let new_len = old.as_ref().map_or(0, |seg| seg.size).max(end);
            let new = self
                .rewrite_segment(&key, piece.segno, old.as_ref(), new_len, patch.as_ref())
                .await?;
            match meta.segments.get_mut(piece.segno as usize) {
                Some(slot) => *slot = new,
                None => meta.segments.push(new),
            }
        }
        Ok(())
    }

    /// The body of `writev`, `extend` and `zero_extend`: load the fork,
    /// check where the run goes, write it, and record the new segment
    /// versions even if a later segment failed (the earlier ones did land).
    async fn write_at(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        count: usize,
        place: Place,
        fill: Option<&FillPage<'_>>,
    ) -> Result<()> {
        let mut meta = self.fork_required(rel, fork).await?;
        let nblocks = meta.nblocks(&self.opts);
        let (fits, op) = match place {
            Place::Inside => (u64::from(first) + count as u64 <= nblocks, "write"),
            Place::AtEnd => (u64::from(first) == nblocks, "extend"),
        };
        if !fits {
            return Err(self.wrong_block(op, rel, fork, first, &meta)?);
        }
        let result = self
            .write_blocks(rel, fork, &mut meta, first, count, fill)
            .await;
        self.meta.set(rel, fork, Some(meta));
        result
    }

    fn wrong_block(
        &self,
        op: &'static str,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
        meta: &ForkMeta,
    ) -> Result<Error> {
        Ok(Error::WrongBlock {
            op,
            path: self.opts.naming.relpath(rel, fork)?,
            block,
            nblocks: nblocks32(meta, &self.opts),
        })
    }
}

impl ObjectSmgr {
    /// Runs a write as a task holding the fork's write lock, so it finishes
    /// (and the cached metadata stays true) even if the caller's future is
    /// dropped.
    async fn write<T, F, Fut>(&self, rel: RelFileLocator, fork: ForkNumber, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let lock = inner.write_lock(rel, fork);
        tokio::spawn(async move {
            let _guard = lock.lock_owned().await;
            op(inner).await
        })
        .await
        .map_err(|err| {
            Error::io(
                "write",
                rel.to_string(),
                std::io::Error::other(err.to_string()),
            )
        })?
    }

    /// The body of `writev` (`Place::Inside`) and `extend`
    /// (`Place::AtEnd`): the pages of `bufs` from `blocknum` on, handed back.
    async fn write_pages(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
        place: Place,
    ) -> Result<Vec<PageBuf>> {
        self.inner.check_bufs(rel, fork, blocknum, &bufs)?;
        self.write(rel, fork, move |inner| async move {
            let fill = |i: usize, page: &mut [u8]| page.copy_from_slice(&bufs[i]);
            inner
                .write_at(rel, fork, blocknum, bufs.len(), place, Some(&fill))
                .await?;
            Ok(bufs)
        })
        .await
    }
}

#[async_trait]
impl Smgr for ObjectSmgr {
    fn block_size(&self) -> BlockSize {
        self.inner.opts.block_size
    }

    /// Object stores have no read-ahead: streams should keep prefetching.
    fn reads_ahead_sequentially(&self) -> bool {
        false
    }

    async fn exists(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool> {
        self.inner.opts.naming.relpath(rel, fork)?;
        Ok(self.inner.fork(rel, fork).await?.is_some())
    }

    async fn create(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        let path = self.inner.opts.naming.relpath(rel, fork)?;
        self.write(rel, fork, move |inner| async move {
            if inner.fork(rel, fork).await?.is_some() {
                return Err(Error::AlreadyExists { path });
            }
            let key = inner.new_segment_key(inner.key(rel, fork, 0)?);
            let seg = inner
                .rewrite_segment(&key, 0, None, 0, None)
                .await
                .map_err(|err| match err {
                    Error::Conflict { .. } => Error::AlreadyExists { path: path.clone() },
                    other => other,
                })?;
            inner.meta.set(
                rel,
                fork,
                Some(ForkMeta {
                    segments: vec![seg],
                }),
            );
            Ok(())
        })
        .await
    }

    async fn unlink(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.inner.opts.naming.relpath(rel, fork)?;
        self.write(rel, fork, move |inner| async move {
            let Some(mut meta) = inner.fork(rel, fork).await? else {
                inner.meta.set(rel, fork, None);
                return Ok(());
            };
            // Highest first: a failure part-way leaves a shorter fork, and
            // what is recorded is what is left.
            while let Some(seg) = meta.segments.last() {
                let segno = meta.segments.len() as u32 - 1;
                let deleted = match inner.key(rel, fork, segno) {
                    Ok(key) => inner.delete_segment(&seg.object_key(&key)).await,
                    Err(err) => Err(err),
                };
                if let Err(err) = deleted {
                    inner.meta.set(rel, fork, Some(meta));
                    return Err(err);
                }
                meta.segments.pop();
            }
            inner.meta.set(rel, fork, None);
            Ok(())
        })
        .await
    }

    async fn nblocks(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<BlockNumber> {
        let meta = self.inner.fork_required(rel, fork).await?;
        Ok(nblocks32(&meta, &self.inner.opts))
    }

    async fn readv(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        mut bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.inner.check_bufs(rel, fork, blocknum, &bufs)?;
        if bufs.is_empty() {
            return Ok(bufs);
        }
        // A segment can be replaced while we read it: by this backend's own
        // write (then the cached metadata already names the new version)
        // or by someone else (then we list again). Either way the read is
        // redone whole from the new versions; never a mix.
        let mut attempts = 0;
        loop {
            let meta = self.inner.fork_required(rel, fork).await?;
            match self
                .inner
                .read_once(&meta, rel, fork, blocknum, &mut bufs)
                .await
            {
                Err(Error::Conflict { .. }) if attempts < 8 => {
                    attempts += 1;
                    // Our own write may have replaced the segment and not
                    // recorded its new version yet: let this fork's writes
                    // finish, then look again.
                    drop(self.inner.write_lock(rel, fork).lock().await);
                    let current = self.inner.fork_required(rel, fork).await?;
                    if current.segments == meta.segments {
                        // Someone else's write: learn this fork again.
                        self.inner.meta.forget(&self.inner.opts, rel, fork)?;
                    }
                }
                Err(err) => return Err(err),
                Ok(()) => return Ok(bufs),
            }
        }
    }

    async fn writev(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.write_pages(rel, fork, blocknum, bufs, Place::Inside)
            .await
    }

    async fn extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.write_pages(rel, fork, blocknum, bufs, Place::AtEnd)
            .await
    }

    async fn zero_extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        let path = self.inner.opts.naming.relpath(rel, fork)?;
        block_run_end(&path, blocknum, nblocks as usize)?;
        self.write(rel, fork, move |inner| async move {
            inner
                .write_at(rel, fork, blocknum, nblocks as usize, Place::AtEnd, None)
                .await
        })
        .await
    }

    async fn truncate(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        self.inner.opts.naming.relpath(rel, fork)?;
        self.write(rel, fork, move |inner| async move {
            let mut meta = inner.fork_required(rel, fork).await?;
            if u64::from(nblocks) > meta.nblocks(&inner.opts) {
                return Err(inner.wrong_block("truncate", rel, fork, nblocks, &meta)?);
            }
            let seg = inner.opts.segment_blocks;
            let (keep_segno, keep_blocks) = if nblocks == 0 {
                (0, 0)
            } else {
                ((nblocks - 1) / seg, (nblocks - 1) % seg + 1)
            };
            let result = async {
                while meta.segments.len() > keep_segno as usize + 1 {
                    let segno = meta.segments.len() as u32 - 1;
                    let key = inner.key(rel, fork, segno)?;
                    let key = meta.segments[segno as usize].object_key(&key);
                    inner.delete_segment(&key).await?;
                    meta.segments.pop();
                }
                let keep_bytes = u64::from(keep_blocks) * inner.bs();
                if let Some(old) = meta.segments.get(keep_segno as usize).cloned() {
                    if old.size != keep_bytes {
                        let key = old.object_key(&inner.key(rel, fork, keep_segno)?);
                        meta.segments[keep_segno as usize] = inner
                            .rewrite_segment(&key, keep_segno, Some(&old), keep_bytes, None)
                            .await?;
                    }
                }
                Ok(())
            }
            .await;
            inner.meta.set(rel, fork, Some(meta));
            result
        })
        .await
    }

    async fn prefetch(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> bool {
        if nblocks == 0 || blocknum.checked_add(nblocks).is_none() {
            return false;
        }
        let Ok(Some(meta)) = self.inner.fork(rel, fork).await else {
            return false;
        };
        let total = meta.nblocks(&self.inner.opts);
        let end = (u64::from(blocknum) + u64::from(nblocks)).min(total);
        if u64::from(blocknum) >= end {
            return false;
        }
        let bs = self.inner.bs();
        for piece in self
            .inner
            .pieces(blocknum, (end - u64::from(blocknum)) as usize)
        {
            let Some(seg) = meta.segments.get(piece.segno as usize).cloned() else {
                break;
            };
            let Ok(base) = self.inner.key(rel, fork, piece.segno) else {
                break;
            };
            let key = seg.object_key(&base);
            let start = piece.seg_block * bs;
            let mut range = start..start + piece.count as u64 * bs;
            // A compressed segment is fetched by whole frames: the same
            // stored range the read of these blocks will ask for.
            if let Some(table) = &seg.table {
                range = table.compressed_range(table.frames_for(range));
            }
            self.inner.advise(&key, &seg, range);
        }
        true
    }

    async fn immedsync(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        // A PUT is durable when it returns: nothing to flush.
        self.inner.fork_required(rel, fork).await.map(drop)
    }
}
