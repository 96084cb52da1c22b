//! The storage manager trait and its extension trait.

use std::fmt;

use async_trait::async_trait;

use crate::{BlockNumber, BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Result};

/// A storage manager: block-level storage of relation forks (PostgreSQL's
/// `smgr`), implemented by the local segmented-file backend (`smgr-md`) and
/// the object-store backend (`smgr-object`).
///
/// Every operation names a fork of a relation. Blocks are numbered from 0
/// across all segment files of the fork; every block is exactly
/// [`block_size`](Self::block_size) bytes.
///
/// # Buffer ownership
///
/// Operations that move page bytes take their buffers **by value** as
/// [`PageBuf`]s and return them when done. A future that is dropped before
/// it completes never leaves an I/O writing into memory the caller can
/// reach: whoever performs the I/O owns the buffers until it is over, then
/// drops them. Buffers lent by a pool ([`PageBuf::from_lent`]) go back to
/// the pool through [`PageLender`](crate::PageLender) at that moment, so the
/// pool knows when a frame is free to reuse. The local backend reads into and
/// writes from the buffers' memory directly (`preadv`/`pwritev`), so page
/// bytes go between the kernel and a pool frame with no copy.
///
/// Each buffer must be exactly one block long; a vector of `n` buffers
/// covers blocks `blocknum .. blocknum + n`.
///
/// # Errors
///
/// Errors are [`Error`]s whose messages name the relation path, fork, block
/// and byte counts involved. A run of blocks reaching past
/// [`MAX_BLOCK_NUMBER`](crate::MAX_BLOCK_NUMBER) is
/// [`Error::BlockOutOfRange`], before any I/O is done.
///
/// # Concurrency
///
/// Implementations are `Send + Sync` and may be called from many tasks at
/// once. They do not order concurrent operations on the same blocks: a read
/// racing a write of the same block may see the old bytes, the new ones, or
/// a mix of both (as with PostgreSQL's md.c, where the page cache does not
/// make copies atomic; the buffer manager never lets the two overlap), and a caller
/// (the buffer manager) must not write, extend or truncate a fork while
/// another task changes its size. Implementations need a Tokio runtime.
#[async_trait]
pub trait Smgr: Send + Sync + fmt::Debug {
    /// The size of every block, fixed at construction.
    fn block_size(&self) -> BlockSize;

    /// Whether the storage below reads ahead on its own for sequential
    /// access (the kernel does for local files). A stream reader skips
    /// [`prefetch`](Self::prefetch) advice for sequential runs only when
    /// this is true; a remote backend returns false so that sequential
    /// scans keep their prefetching.
    fn reads_ahead_sequentially(&self) -> bool {
        false
    }

    /// Whether the fork exists.
    async fn exists(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool>;

    /// Creates the fork, empty (0 blocks).
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`] if it exists (see
    /// [`SmgrExt::create_if_missing`]).
    async fn create(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()>;

    /// Removes the fork and all its segments. Removing a fork that does
    /// not exist succeeds (as PostgreSQL's `mdunlink`, so that redo and
    /// cleanup can repeat it).
    async fn unlink(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()>;

    /// The number of blocks in the fork.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the fork does not exist;
    /// [`Error::CorruptSegment`] if its segment files have an impossible
    /// shape (an overlong segment, or a short one followed by another).
    async fn nblocks(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<BlockNumber>;

    /// Reads blocks `blocknum ..` into `bufs`, one block per buffer, and
    /// returns the filled buffers in the same order. The read may be split
    /// at segment boundaries but is all or nothing for the caller.
    ///
    /// Pages are returned as stored: verification is the caller's (the
    /// buffer manager verifies every page with one
    /// [`PageVerifier`](crate::PageVerifier) whatever the backend).
    ///
    /// # Errors
    ///
    /// [`Error::ShortRead`] if any block lies beyond the end of the fork
    /// (naming the file, blocks and bytes read), [`Error::NotFound`] if the
    /// fork does not exist, [`Error::BufferSize`] for a buffer that is not
    /// one block.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the read; the buffers are dropped once
    /// the I/O in progress has finished with them, never before.
    async fn readv(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>>;

    /// Writes `bufs` over existing blocks `blocknum ..` and returns the
    /// buffers. The blocks must already exist; use
    /// [`extend`](Self::extend) to add blocks. Not durable until
    /// [`immedsync`](Self::immedsync).
    ///
    /// # Errors
    ///
    /// [`Error::WrongBlock`] if the run reaches past the end of the fork.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not take back a write that has started: it
    /// completes (or fails) in the background, owning its buffers until
    /// then, so any subset of the blocks may end up written, possibly after
    /// the drop. A later `create`, `truncate` or `unlink` of the fork waits
    /// for such writes; ordering overlapping writes of the same blocks is
    /// the caller's (a buffer manager never has two writes of one page in
    /// flight).
    async fn writev(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>>;

    /// Appends `bufs` as blocks `blocknum ..`, where `blocknum` must be the
    /// fork's current size, and returns the buffers.
    ///
    /// # Errors
    ///
    /// [`Error::WrongBlock`] if `blocknum` is not the current size,
    /// [`Error::BlockOutOfRange`] if the fork would grow past
    /// [`MAX_BLOCK_NUMBER`](crate::MAX_BLOCK_NUMBER).
    ///
    /// # Cancel safety
    ///
    /// As for `writev`: an extend that has started completes in the
    /// background, and the fork may end up extended by any prefix of the
    /// blocks; a later `truncate` or `unlink` waits for it.
    async fn extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>>;

    /// Appends `nblocks` all-zero blocks at `blocknum`, which must be the
    /// fork's current size (PostgreSQL's `smgrzeroextend`). Zero pages are
    /// valid pages in every format.
    ///
    /// # Errors
    ///
    /// As for [`extend`](Self::extend).
    async fn zero_extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> Result<()>;

    /// Shrinks the fork to `nblocks` blocks, removing whole segments past
    /// the new end and shortening the last one (PostgreSQL's `mdtruncate`).
    ///
    /// # Errors
    ///
    /// [`Error::WrongBlock`] if the fork has fewer than `nblocks` blocks.
    async fn truncate(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: BlockNumber,
    ) -> Result<()>;

    /// Hints that blocks `blocknum .. blocknum + nblocks` will be read soon,
    /// so the backend can start fetching them (`posix_fadvise(WILLNEED)`, or
    /// a GET parked in a cache). Never fails the caller: a missing fork, a
    /// run past the end or an I/O error only make the hint useless. Returns
    /// whether a hint was actually issued.
    async fn prefetch(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> bool;

    /// Makes every earlier write and extend of the fork durable (`fsync` of
    /// every segment). A failure is always returned, never swallowed: after
    /// a failed sync the written data may be lost.
    async fn immedsync(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()>;
}

/// Conveniences built once on top of any [`Smgr`].
#[async_trait]
pub trait SmgrExt: Smgr {
    /// Reads one block into a new heap buffer.
    async fn read_block(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
    ) -> Result<PageBuf> {
        let mut bufs = self
            .readv(
                rel,
                fork,
                blocknum,
                vec![PageBuf::zeroed_block(self.block_size())],
            )
            .await?;
        bufs.pop().ok_or_else(|| unreachable_empty(rel, fork))
    }

    /// Reads `count` blocks from `blocknum` into one contiguous vector,
    /// in `readv` calls of at most 64 blocks.
    ///
    /// # Errors
    ///
    /// As for `readv`; an [`Error::Io`] of kind `OutOfMemory` if the
    /// result cannot be allocated (it is reserved before any read).
    async fn read_to_vec(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        count: usize,
    ) -> Result<Vec<u8>> {
        const CHUNK: usize = 64;
        let path = crate::PathNaming::default().relpath(rel, fork)?;
        crate::block_run_end(&path, blocknum, count)?;
        let bs = self.block_size();
        let mut out = Vec::new();
        let total = count.saturating_mul(bs.bytes());
        out.try_reserve_exact(total).map_err(|err| {
            Error::io(
                "allocate",
                path.clone(),
                std::io::Error::new(std::io::ErrorKind::OutOfMemory, err),
            )
        })?;
        let mut bufs = PageBuf::zeroed_blocks(bs, count.min(CHUNK));
        let mut done = 0usize;
        while done < count {
            let n = (count - done).min(CHUNK);
            bufs.truncate(n);
            bufs = self
                .readv(rel, fork, blocknum + done as BlockNumber, bufs)
                .await?;
            for buf in &bufs {
                out.extend_from_slice(buf);
            }
            done += n;
        }
        Ok(out)
    }

    /// Overwrites one existing block with a copy of `page`.
    async fn write_block(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        page: &[u8],
    ) -> Result<()> {
        self.writev(rel, fork, blocknum, vec![PageBuf::copy_from(page)])
            .await
            .map(drop)
    }

    /// Appends one block holding a copy of `page` at `blocknum`, the
    /// fork's current size.
    async fn extend_block(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        page: &[u8],
    ) -> Result<()> {
        self.extend(rel, fork, blocknum, vec![PageBuf::copy_from(page)])
            .await
            .map(drop)
    }

    /// Creates the fork unless it exists. Returns whether it was created.
    async fn create_if_missing(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool> {
        match self.create(rel, fork).await {
            Ok(()) => Ok(true),
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Removes every fork of the relation.
    async fn unlink_all_forks(&self, rel: RelFileLocator) -> Result<()> {
        for fork in ForkNumber::ALL {
            self.unlink(rel, fork).await?;
        }
        Ok(())
    }
}

impl<T: Smgr + ?Sized> SmgrExt for T {}

/// `readv` returned no buffer for a one-buffer read: a backend bug, reported
/// as a short read rather than a panic.
fn unreachable_empty(rel: RelFileLocator, fork: ForkNumber) -> Error {
    Error::ShortRead {
        path: crate::PathNaming::default()
            .relpath(rel, fork)
            .unwrap_or_else(|_| rel.to_string()),
        first: 0,
        last: 0,
        read: 0,
        expected: 0,
    }
}
