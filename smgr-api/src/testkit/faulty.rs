//! A fault-injecting `Smgr` wrapper, for testing code above the trait.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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
/// - [`hold_writes`](Self::hold_writes) parks `writev` calls the same way;
/// - [`inject`](Self::inject) plans faults for the next calls of one kind:
///   `EIO` or `ENOSPC` errors, short reads, latency spikes (also on
///   `prefetch`), panics;
/// - [`set_reads_ahead_sequentially`](Self::set_reads_ahead_sequentially)
///   makes a local backend look like an object store to the layers above;
/// - [`yield_in_io`](Self::yield_in_io) makes reads and writes yield to the
///   scheduler before and after the data moves, so a model checker (or a
///   busy runtime) can run other tasks in the middle of an I/O.
///
/// Everything else passes straight through.
#[derive(Debug)]
pub struct FaultySmgr {
    inner: Arc<dyn Smgr>,
    state: Mutex<FaultState>,
    gate: watch::Sender<bool>,
    write_gate: watch::Sender<bool>,
}

/// The kinds of call a planned fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// `readv`.
    Read,
    /// `writev`.
    Write,
    /// `extend` and `zero_extend`.
    Extend,
    /// `immedsync`.
    Sync,
    /// `prefetch`: only [`Fault::Latency`] and [`Fault::Panic`] apply (advice
    /// never fails); other faults are delivered and ignored.
    Prefetch,
}

/// What a planned fault does to the call it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fails with `EIO` (an I/O error from the device), before touching
    /// anything.
    Eio,
    /// Fails with `ENOSPC` (no space left on the device).
    NoSpace,
    /// A read that got fewer bytes than it asked for (half): fails with
    /// [`Error::ShortRead`]. Other calls treat it as `Eio`.
    ShortRead,
    /// Waits this long, then passes the call through.
    Latency(Duration),
    /// Panics inside the call (a backend bug), with a message naming the
    /// call and the relation.
    Panic,
}

#[derive(Debug, Default)]
struct FaultState {
    reads: Vec<ReadCall>,
    /// The Tokio task each of `reads` was called from.
    read_tasks: Vec<Option<tokio::task::Id>>,
    writes: usize,
    failures_left: usize,
    foreign_left: usize,
    plan: Vec<(FaultOp, Fault, usize)>,
    delivered: usize,
    yield_in_io: bool,
    reads_ahead: Option<bool>,
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

    /// The Tokio task each read of [`reads`](Self::reads) was called
    /// from, in the same order (`None` outside any task, as in a runtime's
    /// `block_on`): whether a layer above ran the read in place or handed
    /// it to a task of its own.
    pub fn read_tasks(&self) -> Vec<Option<tokio::task::Id>> {
        self.state().read_tasks.clone()
    }

    /// Forgets the reads seen so far.
    pub fn clear_reads(&self) {
        let mut state = self.state();
        state.reads.clear();
        state.read_tasks.clear();
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

    /// Makes every read and write yield to the scheduler before and after
    /// it moves data (`tokio::task::yield_now`, which any executor honours).
    pub fn yield_in_io(&self, on: bool) {
        self.state().yield_in_io = on;
    }

    async fn maybe_yield(&self) {
        let on = self.state().yield_in_io;
        if on {
            tokio::task::yield_now().await;
        }
    }

    /// Makes the wrapper say whether it reads ahead sequentially
    /// ([`Smgr::reads_ahead_sequentially`]) instead of asking the wrapped
    /// backend: `Some(false)` makes a local backend look like an object
    /// store to the layers above (they then advise sequential runs too).
    pub fn set_reads_ahead_sequentially(&self, answer: Option<bool>) {
        self.state().reads_ahead = answer;
    }

    /// Plans `fault` for the next `times` calls of kind `op` (after any
    /// faults already planned for that kind).
    pub fn inject(&self, op: FaultOp, fault: Fault, times: usize) {
        self.state().plan.push((op, fault, times));
    }

    /// Faults planned with [`inject`](Self::inject) that have hit a call.
    pub fn faults_delivered(&self) -> usize {
        self.state().delivered
    }

    /// Faults planned but not delivered yet.
    pub fn faults_pending(&self) -> usize {
        self.state().plan.iter().map(|p| p.2).sum()
    }

    /// Takes the next planned fault for `op`, if any; sleeps for latency
    /// faults and returns the error for failing ones.
    async fn planned(
        &self,
        op: FaultOp,
        rel: RelFileLocator,
        blocknum: BlockNumber,
        nblocks: usize,
    ) -> Result<()> {
        let fault = {
            let mut state = self.state();
            let Some(slot) = state.plan.iter_mut().find(|p| p.0 == op && p.2 > 0) else {
                return Ok(());
            };
            slot.2 -= 1;
            let fault = slot.1;
            state.plan.retain(|p| p.2 > 0);
            state.delivered += 1;
            fault
        };
        let what = match op {
            FaultOp::Read => "read",
            FaultOp::Write => "write",
            FaultOp::Extend => "extend",
            FaultOp::Sync => "fsync",
            FaultOp::Prefetch => "prefetch",
        };
        let path = format!("{rel} (injected fault)");
        match fault {
            Fault::Latency(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Fault::Panic => panic!("injected panic in {what} of {path} block {blocknum}"),
            _ if op == FaultOp::Prefetch => Ok(()),
            Fault::ShortRead if op == FaultOp::Read => {
                let expected = nblocks as u64 * self.inner.block_size().bytes() as u64;
                Err(Error::ShortRead {
                    path,
                    first: blocknum,
                    last: blocknum.saturating_add(nblocks.saturating_sub(1) as BlockNumber),
                    read: expected / 2,
                    expected,
                })
            }
            Fault::NoSpace => Err(Error::io(what, path, std::io::Error::from_raw_os_error(28))),
            Fault::Eio | Fault::ShortRead => {
                Err(Error::io(what, path, std::io::Error::from_raw_os_error(5)))
            }
        }
    }
}

#[async_trait]
impl Smgr for FaultySmgr {
    fn block_size(&self) -> BlockSize {
        self.inner.block_size()
    }

    fn reads_ahead_sequentially(&self) -> bool {
        let answer = self.state().reads_ahead;
        answer.unwrap_or_else(|| self.inner.reads_ahead_sequentially())
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
            state.read_tasks.push(tokio::task::try_id());
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
        self.maybe_yield().await;
        if fail {
            return Err(Error::io(
                "read",
                format!("{rel} (injected fault)"),
                std::io::Error::other("injected read failure"),
            ));
        }
        self.planned(FaultOp::Read, rel, blocknum, bufs.len())
            .await?;
        let bufs = self.inner.readv(rel, fork, blocknum, bufs).await?;
        self.maybe_yield().await;
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
        self.planned(FaultOp::Write, rel, blocknum, bufs.len())
            .await?;
        self.maybe_yield().await;
        let bufs = self.inner.writev(rel, fork, blocknum, bufs).await;
        self.maybe_yield().await;
        bufs
    }

    async fn extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.planned(FaultOp::Extend, rel, blocknum, bufs.len())
            .await?;
        self.inner.extend(rel, fork, blocknum, bufs).await
    }

    async fn zero_extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        self.planned(FaultOp::Extend, rel, blocknum, nblocks as usize)
            .await?;
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
        if self
            .planned(FaultOp::Prefetch, rel, blocknum, nblocks as usize)
            .await
            .is_err()
        {
            return false;
        }
        self.inner.prefetch(rel, fork, blocknum, nblocks).await
    }

    async fn immedsync(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.planned(FaultOp::Sync, rel, 0, 0).await?;
        self.inner.immedsync(rel, fork).await
    }
}
