//! A fault-injecting `Smgr` wrapper, for testing code above the trait.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{BlockNumber, BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Result, Smgr};

/// One `readv` that reached the wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCall {
    /// The relation.
    pub rel: RelFileLocator,
    /// The fork.
    pub fork: ForkNumber,
    /// First block.
    pub first: BlockNumber,
    /// Number of blocks.
    pub count: usize,
}

/// Wraps any `Smgr` and lets a test log, hold, and fail its reads.
///
/// - every `readv` is recorded ([`reads`](Self::reads));
/// - [`hold_reads`](Self::hold_reads) makes reads wait (after being
///   recorded) until [`release_reads`](Self::release_reads), so a test can
///   have a read truly in flight while it does something else;
/// - [`fail_reads`](Self::fail_reads) makes the next `n` reads fail with an
///   I/O error, without touching the buffers' contents;
/// - [`hold_writes`](Self::hold_writes) parks `writev` calls the same way.
///
/// Everything else passes straight through.
#[derive(Debug)]
pub struct FaultySmgr {
    inner: Arc<dyn Smgr>,
    state: Mutex<FaultState>,
    gate: watch::Sender<bool>,
    write_gate: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct FaultState {
    reads: Vec<ReadCall>,
    writes: usize,
    failures_left: usize,
    foreign_left: usize,
}

impl FaultySmgr {
    /// Wraps `inner`; nothing is held or failed until asked.
    pub fn new(inner: Arc<dyn Smgr>) -> Self {
        FaultySmgr {
            inner,
            state: Mutex::new(FaultState::default()),
            gate: watch::Sender::new(true),
            write_gate: watch::Sender::new(true),
        }
    }

    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reads seen so far, in arrival order.
    pub fn reads(&self) -> Vec<ReadCall> {
        self.state().reads.clone()
    }

    /// Forgets the reads seen so far.
    pub fn clear_reads(&self) {
        self.state().reads.clear();
    }

    /// From now on, reads wait before doing any I/O.
    pub fn hold_reads(&self) {
        self.gate.send_replace(false);
    }

    /// Lets held and future reads proceed.
    pub fn release_reads(&self) {
        self.gate.send_replace(true);
    }

    /// From now on, `writev` calls wait before doing any I/O.
    pub fn hold_writes(&self) {
        self.write_gate.send_replace(false);
    }

    /// Lets held and future writes proceed.
    pub fn release_writes(&self) {
        self.write_gate.send_replace(true);
    }

    /// `writev` calls seen so far.
    pub fn writes(&self) -> usize {
        self.state().writes
    }

    /// The next `n` reads behave like a buggy backend: they fill the given
    /// buffers but hand back heap copies instead (dropping the originals).
    pub fn return_foreign_buffers(&self, n: usize) {
        self.state().foreign_left = n;
    }

    /// The next `n` reads fail with an I/O error.
    pub fn fail_reads(&self, n: usize) {
        self.state().failures_left = n;
    }
}

#[async_trait]
impl Smgr for FaultySmgr {
    fn block_size(&self) -> BlockSize {
        self.inner.block_size()
    }

    fn reads_ahead_sequentially(&self) -> bool {
        self.inner.reads_ahead_sequentially()
    }

    async fn exists(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool> {
        self.inner.exists(rel, fork).await
    }

    async fn create(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.inner.create(rel, fork).await
    }

    async fn unlink(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.inner.unlink(rel, fork).await
    }

    async fn nblocks(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<BlockNumber> {
        self.inner.nblocks(rel, fork).await
    }

    async fn readv(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        let fail = {
            let mut state = self.state();
            state.reads.push(ReadCall {
                rel,
                fork,
                first: blocknum,
                count: bufs.len(),
            });
            let fail = state.failures_left > 0;
            state.failures_left = state.failures_left.saturating_sub(1);
            let foreign = state.foreign_left > 0;
            state.foreign_left = state.foreign_left.saturating_sub(1);
            (fail, foreign)
        };
        let (fail, foreign) = fail;
        let mut gate = self.gate.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = gate.wait_for(|open| *open).await;
        if fail {
            return Err(Error::io(
                "read",
                format!("{rel} (injected fault)"),
                std::io::Error::other("injected read failure"),
            ));
        }
        let bufs = self.inner.readv(rel, fork, blocknum, bufs).await?;
        if foreign {
            return Ok(bufs.iter().map(|buf| PageBuf::copy_from(buf)).collect());
        }
        Ok(bufs)
    }

    async fn writev(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.state().writes += 1;
        let mut gate = self.write_gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
        self.inner.writev(rel, fork, blocknum, bufs).await
    }

    async fn extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.inner.extend(rel, fork, blocknum, bufs).await
    }

    async fn zero_extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        self.inner.zero_extend(rel, fork, blocknum, nblocks).await
    }

    async fn truncate(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        self.inner.truncate(rel, fork, nblocks).await
    }

    async fn prefetch(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> bool {
        self.inner.prefetch(rel, fork, blocknum, nblocks).await
    }

    async fn immedsync(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.inner.immedsync(rel, fork).await
    }
}
