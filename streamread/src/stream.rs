//! `ReadStream`: pinned buffers in source order, read ahead of the caller.
//!
//! # How the look-ahead works
//!
//! The stream keeps a queue of *entries* in exactly the order the source
//! produced the blocks. Every entry holds a pin: either a buffer that is
//! ready (a hit, or a finished read), or a place in a *run*: consecutive
//! misses that will be read by one `readv` of up to `io_combine_limit`
//! blocks. A run is closed when the next block is not the next number, is
//! a hit, the run is full, or the source ends; closed runs are started as
//! separate tasks (`BufferPool::complete_read`), up to `max_ios` at once, so
//! their I/O really overlaps (and, for cached data, the copies run on both
//! cores). A small run (one or two blocks) is first polled right where it
//! starts: of pages the kernel holds it completes at once, cheaper than a
//! task; only if it has to wait does it become one (`read_task.rs`).
//! Whether small runs get advice follows how their reads went
//! (`advice.rs`). `next_buffer` hands out the front entry, waiting for its run
//! only if it is not done; hits are never delayed by reads behind them.
//!
//! # How far ahead
//!
//! The number of pinned entries ahead is the *distance*. Two parts, after
//! the lessons of PostgreSQL 17 and later:
//!
//! - a combine floor: while misses are recent, look ahead at least one full
//!   run, so sequential misses become full-sized reads;
//! - an I/O distance that doubles only when `next_buffer` actually had to
//!   wait for a read, and shrinks by one per hit only once a whole
//!   distance of blocks went by without any I/O. Alternating hits and
//!   misses therefore keep their look-ahead (the PostgreSQL 17 trap), and a
//!   fully cached scan settles at a distance of one (almost no overhead).
//!
//! Both are capped by the pin budget, `(max_ios + 1) × combine`, clamped to
//! the pool's per-reader share and re-checked before every pin.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use crate::advice::AdviceGate;
use crate::config::{StreamConfig, StreamFlags};
use crate::cores::{spare_worker, Reading};
use crate::read_task::{Ended, ReadTask, INLINE_MAX_BLOCKS};
use crate::stats::{Counters, StreamStats, StreamStatsHandle};
use bufmgr::{Buffer, BufferAccessStrategy, BufferPool, PreparedRead, ReadBufferMode, Reader};
use smgr_api::{BlockNumber, ForkNumber, RelFileLocator, INVALID_BLOCK_NUMBER};

/// The errors a stream returns: the buffer pool's.
pub type Error = bufmgr::Error;

type Source<D> = Box<dyn FnMut(&mut D) -> Option<BlockNumber> + Send>;
type ReadOutcome = (Vec<Buffer>, Result<(), Error>);

enum Slot {
    /// Valid and pinned.
    Ready(Buffer),
    /// Part of run `id`, being or to be read.
    InRun(u64),
    /// Its run failed before reaching it: read it again on its own.
    Retry(Buffer),
    /// Its read failed with this error.
    Failed(Error),
}

struct Entry<D> {
    data: D,
    slot: Slot,
}

struct Run {
    id: u64,
    first: BlockNumber,
    buffers: Vec<Buffer>,
}

/// A closed run not started yet.
struct Waiting {
    run: Run,
    /// `prefetch` advice is owed before the read starts.
    advise: bool,
    /// Counted in the stream's read statistics already (a synchronous read
    /// whose call was dropped is read again, but counted once).
    counted: bool,
}

struct InFlight {
    id: u64,
    read: ReadTask<ReadOutcome>,
}

/// A block taken from the source but not pinned yet (PostgreSQL's one-block
/// "unget"): kept across a pin that failed or whose call was dropped, and
/// tried again first.
struct Unpinned<D> {
    block: BlockNumber,
    data: D,
}

/// A stream of pinned buffers for blocks of one relation fork, read ahead
/// with combined, concurrent I/O (PostgreSQL's `ReadStream`).
///
/// `D` is per-buffer data: the source fills one `D` per block and
/// [`next_buffer`](Self::next_buffer) hands it back with that block's
/// buffer.
///
/// Dropping a stream at any point releases its pins: queued buffers at
/// once, buffers inside reads in flight as soon as those tasks see the
/// abort; the reads themselves finish in the pool, so no frame is left
/// stuck.
///
/// # Cancel safety
///
/// Every `.await` of [`next_buffer`](Self::next_buffer) and
/// [`reset`](Self::reset) is a point where the call may be dropped (a
/// deadline, a `select!`) without loss: the stream's state is changed only
/// between awaits, never carried across one in a local variable. A block
/// taken from the source stays the stream's until it is handed out; a run
/// stays in the stream until its outcome is given to its entries.
pub struct ReadStream<D: Send + 'static = ()> {
    pool: BufferPool,
    /// Every pin the stream takes counts as this reader's, also once the
    /// buffer is handed out and for as long as the caller keeps it.
    reader: Reader,
    rel: RelFileLocator,
    fork: ForkNumber,
    source: Source<D>,
    mode: ReadBufferMode,
    flags: StreamFlags,
    strategy: Option<BufferAccessStrategy>,
    combine: usize,
    max_ios: usize,
    queue: VecDeque<Entry<D>>,
    pending: Option<Run>,
    waiting: VecDeque<Waiting>,
    in_flight: VecDeque<InFlight>,
    /// Reads given up by `reset`, aborted; collected (their pins dropped)
    /// as they end.
    abandoned: Vec<ReadTask<ReadOutcome>>,
    /// The next block, taken from the source but not pinned yet.
    unpinned: Option<Unpinned<D>>,
    /// Pinning `unpinned` failed while blocks were queued ahead of it: the
    /// error comes out once those are handed out, in the source's order.
    pin_error: Option<Error>,
    next_run: u64,
    source_done: bool,
    distance: usize,
    blocks_since_miss: usize,
    hits_since_io: usize,
    /// Whether small runs get advice, from how small reads went.
    advice_gate: AdviceGate,
    last_run_end: Option<u64>,
    counters: Arc<Counters>,
    /// Counted among the process's reading streams until the end is
    /// reached (`cores.rs`: whether long reads get tasks).
    reading: Option<Reading>,
}

impl<D: Default + Send + 'static> ReadStream<D> {
    /// A stream whose blocks come from `source`, called with a fresh `D`
    /// for each block; `None` ends the stream.
    pub fn new(
        pool: &BufferPool,
        rel: RelFileLocator,
        fork: ForkNumber,
        config: StreamConfig,
        flags: StreamFlags,
        source: impl FnMut(&mut D) -> Option<BlockNumber> + Send + 'static,
    ) -> Self {
        let combine = config.combine_blocks(pool.block_size());
        let max_ios = if flags.maintenance {
            config.maintenance_max_ios
        } else {
            config.max_ios
        };
        // Where every read waits for a round trip, depth is what hides it.
        let max_ios = if max_ios > 0 && !pool.smgr().reads_ahead_sequentially() {
            config.remote_max_ios.max(1)
        } else {
            max_ios
        };
        ReadStream {
            pool: pool.clone(),
            reader: pool.reader(),
            rel,
            fork,
            source: Box::new(source),
            mode: ReadBufferMode::Normal,
            flags,
            strategy: None,
            combine,
            max_ios,
            queue: VecDeque::new(),
            pending: None,
            waiting: VecDeque::new(),
            in_flight: VecDeque::new(),
            abandoned: Vec::new(),
            unpinned: None,
            pin_error: None,
            next_run: 0,
            source_done: false,
            distance: initial_distance(pool, flags, combine, max_ios),
            blocks_since_miss: usize::MAX / 2,
            hits_since_io: 0,
            advice_gate: AdviceGate::new(),
            last_run_end: None,
            counters: Arc::new(Counters::default()),
            reading: Some(Reading::new()),
        }
    }
}

impl ReadStream<()> {
    /// A stream over the blocks an iterator yields, in its order.
    pub fn from_blocks<I>(
        pool: &BufferPool,
        rel: RelFileLocator,
        fork: ForkNumber,
        config: StreamConfig,
        flags: StreamFlags,
        blocks: I,
    ) -> Self
    where
        I: IntoIterator<Item = BlockNumber>,
        I::IntoIter: Send + 'static,
    {
        let mut blocks = blocks.into_iter();
        Self::new(pool, rel, fork, config, flags, move |_: &mut ()| {
            blocks.next()
        })
    }

    /// A stream over blocks `range.start .. range.end`.
    pub fn range(
        pool: &BufferPool,
        rel: RelFileLocator,
        fork: ForkNumber,
        config: StreamConfig,
        flags: StreamFlags,
        range: Range<BlockNumber>,
    ) -> Self {
        Self::from_blocks(pool, rel, fork, config, flags, range)
    }
}

/// What became of the next block from the source.
enum NextPin<D> {
    /// The source has ended.
    End,
    /// Pinned; the block is no longer `unpinned`.
    Pinned(PreparedRead, D),
    /// It cannot be pinned ever (an invalid block number): the block is
    /// consumed, the error is its outcome.
    Invalid(Error, D),
    /// Not pinned now: the block stays `unpinned`, to be tried again.
    Failed(Error),
}

impl<D: Default + Send + 'static> ReadStream<D> {
    /// Reads pages in `mode` instead of `Normal` (e.g. `ZeroOnError`).
    pub fn with_mode(mut self, mode: ReadBufferMode) -> Self {
        self.mode = mode;
        self
    }

    /// Takes frames through `strategy` (a bulk-read ring) instead of the
    /// whole pool. The ring also caps the stream's pins (PostgreSQL's
    /// `GetAccessStrategyPinLimit`): a stream never pins more buffers than
    /// its ring has frames, so it cannot sweep the rest of the pool.
    pub fn with_strategy(mut self, strategy: BufferAccessStrategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Takes frames through a bulk-read ring sized for this stream: twice
    /// its full pin budget, `2 × (max_ios + 1) × combine` frames, so that
    /// the frames it recycles are free again by the time it comes back to
    /// them. PostgreSQL scans tables larger than a quarter of shared
    /// buffers this way (`BAS_BULKREAD`): the scan does not push the rest
    /// of the pool out, and the few frames it recycles stay in the CPU's
    /// caches: a warm 1 GiB sequential stream ran at 0.86 of a raw
    /// `preadv` loop's speed this way, against 0.53 sweeping a 256 MiB
    /// pool (BENCHMARKS.md). Not for prewarming: the pages do not stay.
    pub fn with_bulk_read_ring(self) -> Self {
        let frames = 2 * (self.max_ios + 1) * self.combine;
        self.with_strategy(BufferAccessStrategy::bulk_read(frames))
    }

    /// The counters so far.
    pub fn stats(&self) -> StreamStats {
        self.counters.snapshot()
    }

    /// A handle to read the counters from another task while the stream
    /// runs.
    pub fn stats_handle(&self) -> StreamStatsHandle {
        StreamStatsHandle(self.counters.clone())
    }

    /// Buffers the stream holds pinned right now (queued or inside reads).
    pub fn pinned(&self) -> usize {
        self.queue.len()
    }

    /// The next buffer, pinned and valid, with its per-buffer data, in
    /// exactly the order the source produced the blocks; `None` at the end.
    ///
    /// # Errors
    ///
    /// The error of that block's read (a storage error, or a page failing
    /// verification, naming its block); the stream goes on with the next
    /// block after it. Errors come out in the source's order: a block
    /// that could not be pinned ahead (a failed write-back of a victim)
    /// reports its error once the blocks before it are handed out, and is
    /// tried again on the next call. [`Error::NoUnpinnedBuffers`] while the
    /// stream holds pins only shortens its look-ahead; it is returned only
    /// when the stream holds none (the pins are someone else's), and the
    /// block is tried again on the next call.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no block, no per-buffer data
    /// and no pin; the next call returns the block this one would have.
    pub async fn next_buffer(&mut self) -> Result<Option<(Buffer, D)>, Error> {
        self.collect_abandoned();
        // Fast path for a settled, fully cached stream: nothing queued or
        // in flight and a distance of one; a hit goes straight back.
        if self.queue.is_empty()
            && self.pending.is_none()
            && self.waiting.is_empty()
            && self.in_flight.is_empty()
            && self.pin_error.is_none()
            && self.target_distance() <= 1
        {
            // A hit is pinned without entering `pin_next`'s future.
            let next = match self.pin_next_if_cached() {
                Some(next) => next,
                None => self.pin_next_slowly().await,
            };
            match next {
                NextPin::End => {
                    self.reading = None;
                    return Ok(None);
                }
                NextPin::Pinned(prepared, data) if prepared.hit => {
                    self.counters.block(true);
                    self.note_hit();
                    return Ok(Some((prepared.buffer, data)));
                }
                NextPin::Pinned(prepared, data) => {
                    self.counters.block(false);
                    let block = prepared.buffer.tag().block;
                    self.admit_miss(block, prepared.buffer, data);
                }
                NextPin::Invalid(err, data) => {
                    drop(data);
                    return Err(err);
                }
                NextPin::Failed(err) => return Err(err),
            }
        }
        self.look_ahead().await?;
        loop {
            let Some(front) = self.queue.front_mut() else {
                return match self.pin_error.take() {
                    Some(err) => Err(err),
                    None => {
                        self.reading = None;
                        Ok(None)
                    }
                };
            };
            match &mut front.slot {
                Slot::Ready(_) | Slot::Failed(_) => break,
                Slot::InRun(id) => {
                    let id = *id;
                    if !self.run_ready(id) {
                        // About to wait for I/O: the look-ahead was too
                        // short. Lengthen it and start more reads first,
                        // so they overlap the one we wait for.
                        self.distance = (self.distance * 2).min(self.pin_budget());
                        self.look_ahead().await?;
                    }
                    self.finish_run(id).await;
                }
                Slot::Retry(buffer) => {
                    // The buffer stays in its entry while it is read: a
                    // dropped call leaves it there, its I/O finishing in
                    // the pool, and the next call reads (or finds) it.
                    let buffer = buffer.clone();
                    let result = self
                        .pool
                        .complete_read(std::slice::from_ref(&buffer), self.mode)
                        .await;
                    if let Some(front) = self.queue.front_mut() {
                        front.slot = match result {
                            Ok(()) => Slot::Ready(buffer),
                            Err(err) => Slot::Failed(err),
                        };
                    }
                }
            }
        }
        let Some(entry) = self.queue.pop_front() else {
            return Ok(None);
        };
        match entry.slot {
            Slot::Ready(buffer) => Ok(Some((buffer, entry.data))),
            Slot::Failed(err) => Err(err),
            // The loop above leaves only Ready or Failed at the front.
            Slot::InRun(_) | Slot::Retry(_) => Ok(None),
        }
    }

    /// Forgets the look-ahead: releases every pin, abandons reads in flight
    /// (they finish in the pool), and resumes pulling from the source,
    /// which may have been repositioned, at the initial distance.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the stream is reset before the first `.await`; the
    /// call only waits for the abandoned reads to drop their pins, and if
    /// it is dropped they drop them when they end.
    pub async fn reset(&mut self) {
        self.queue.clear();
        self.pending = None;
        self.waiting.clear();
        self.unpinned = None;
        self.pin_error = None;
        for in_flight in self.in_flight.drain(..) {
            in_flight.read.abort();
            self.abandoned.push(in_flight.read);
        }
        self.source_done = false;
        self.distance = initial_distance(&self.pool, self.flags, self.combine, self.max_ios);
        self.blocks_since_miss = usize::MAX / 2;
        self.hits_since_io = 0;
        self.advice_gate = AdviceGate::new();
        self.last_run_end = None;
        self.reading.get_or_insert_with(Reading::new);
        // Waiting for the aborted tasks drops their buffers (pins) now.
        while let Some(read) = self.abandoned.last_mut() {
            poll_fn(|cx| read.poll_finished(cx)).await;
            self.abandoned.pop();
        }
    }

    /// Drops the reads `reset` abandoned that have ended.
    fn collect_abandoned(&mut self) {
        self.abandoned.retain(|read| !read.is_finished());
    }

    /// Whether the stream may take one more pin (PostgreSQL's
    /// `GetAdditionalPinLimit`): its reader's pins, which include the
    /// buffers it handed out that the caller still holds, stay within the
    /// pool's per-reader share; always when the stream holds none of its
    /// own, so it makes progress.
    fn may_pin_more(&self) -> bool {
        self.queue.is_empty() || self.reader.pins() < self.pool.max_pins_per_reader()
    }

    /// The most pins the stream's look-ahead aims at: `(max_ios + 1) ×
    /// combine`, clamped to its ring if it has one (PostgreSQL's
    /// `GetAccessStrategyPinLimit`) and to the pool's per-reader share
    /// (re-evaluated each time, at least 1 so it can make progress).
    fn pin_budget(&self) -> usize {
        let wanted = (self.max_ios + 1) * self.combine;
        let ring = self
            .strategy
            .as_ref()
            .map_or(usize::MAX, BufferAccessStrategy::ring_size);
        self.pool.limit_additional_pins(0, wanted.min(ring))
    }

    fn target_distance(&self) -> usize {
        let combine_floor = if self.blocks_since_miss < 2 * self.combine {
            self.combine
        } else {
            1
        };
        self.distance.max(combine_floor).min(self.pin_budget())
    }

    /// Pins the next block: the one kept from an earlier attempt, else the
    /// source's next. The block is kept in `self.unpinned` across the
    /// await, so a dropped call or a failed pin loses nothing.
    async fn pin_next(&mut self) -> NextPin<D> {
        if let Some(pinned) = self.pin_next_if_cached() {
            return pinned;
        }
        self.pin_next_slowly().await
    }

    /// `pin_next` for a block already in the pool, without `.await`: a hit
    /// (the common case of a cached scan) skips the `async` machinery.
    fn pin_next_if_cached(&mut self) -> Option<NextPin<D>> {
        if self.unpinned.is_none() {
            if self.source_done {
                return Some(NextPin::End);
            }
            let mut data = D::default();
            let Some(block) = (self.source)(&mut data) else {
                self.source_done = true;
                return Some(NextPin::End);
            };
            self.unpinned = Some(Unpinned { block, data });
        }
        let block = self.unpinned.as_ref()?.block;
        let prepared =
            self.pool
                .prepare_read_if_cached_as(&self.reader, self.rel, self.fork, block)?;
        let next = self.unpinned.take()?;
        Some(NextPin::Pinned(prepared, next.data))
    }

    async fn pin_next_slowly(&mut self) -> NextPin<D> {
        if self.unpinned.is_none() {
            if self.source_done {
                return NextPin::End;
            }
            let mut data = D::default();
            let Some(block) = (self.source)(&mut data) else {
                self.source_done = true;
                return NextPin::End;
            };
            self.unpinned = Some(Unpinned { block, data });
        }
        let Some(block) = self.unpinned.as_ref().map(|next| next.block) else {
            return NextPin::End;
        };
        let result = self
            .pool
            .prepare_read_as(
                &self.reader,
                self.rel,
                self.fork,
                block,
                self.strategy.as_mut(),
            )
            .await;
        match result {
            Ok(prepared) => match self.unpinned.take() {
                Some(next) => NextPin::Pinned(prepared, next.data),
                None => NextPin::End,
            },
            Err(err) if block == INVALID_BLOCK_NUMBER => match self.unpinned.take() {
                Some(next) => NextPin::Invalid(err, next.data),
                None => NextPin::End,
            },
            Err(err) => NextPin::Failed(err),
        }
    }

    /// Pins blocks ahead up to the target distance, closing and starting
    /// runs as they form. Stops early, without an error, when a pin fails
    /// while the stream holds pins (the error waits its turn in
    /// `pin_error`; `NoUnpinnedBuffers` only means "not now").
    async fn look_ahead(&mut self) -> Result<(), Error> {
        self.reap_finished();
        while self.pin_error.is_none()
            && self.queue.len() < self.target_distance()
            && self.may_pin_more()
        {
            match self.pin_next().await {
                NextPin::End => break,
                NextPin::Pinned(prepared, data) => {
                    self.counters.block(prepared.hit);
                    if prepared.hit {
                        self.close_pending();
                        self.queue.push_back(Entry {
                            data,
                            slot: Slot::Ready(prepared.buffer),
                        });
                        self.note_hit();
                    } else {
                        let block = prepared.buffer.tag().block;
                        self.admit_miss(block, prepared.buffer, data);
                    }
                }
                NextPin::Invalid(err, data) => {
                    self.close_pending();
                    self.queue.push_back(Entry {
                        data,
                        slot: Slot::Failed(err),
                    });
                }
                NextPin::Failed(err) => {
                    if self.queue.is_empty() {
                        return Err(err);
                    }
                    if !matches!(err, Error::NoUnpinnedBuffers { .. }) {
                        self.pin_error = Some(err);
                    }
                    break;
                }
            }
            // Runs closed on the way start now, overlapping the pins
            // still to come.
            if !self.waiting.is_empty() {
                self.issue_advice().await;
                self.start_waiting();
            }
        }
        // Start the open run early only if it cannot grow any more (the
        // source ended, pins ran short, or it fills the whole distance) or
        // nothing else is queued ahead of it (the caller needs it next).
        // Otherwise it keeps growing as the caller frees room, so reads
        // stay full-sized.
        let pending = self.pending.as_ref().map_or(0, |run| run.buffers.len());
        let cannot_grow = (self.source_done && self.unpinned.is_none()) || self.pin_error.is_some();
        if pending > 0
            && (cannot_grow || pending == self.queue.len() || pending >= self.target_distance())
        {
            self.close_pending();
        }
        self.issue_advice().await;
        self.start_waiting();
        Ok(())
    }

    /// Distance bookkeeping for a hit: decay by one, but only once a whole
    /// distance of blocks has gone by without any I/O.
    fn note_hit(&mut self) {
        self.hits_since_io += 1;
        self.blocks_since_miss = self.blocks_since_miss.saturating_add(1);
        if self.hits_since_io > self.distance && self.distance > 1 {
            self.distance -= 1;
        }
    }

    /// Queues a pinned miss: it joins the open run if it is the next block
    /// and the run has room, else it opens a new run.
    fn admit_miss(&mut self, block: BlockNumber, buffer: Buffer, data: D) {
        self.hits_since_io = 0;
        self.blocks_since_miss = 0;
        let extends = self.pending.as_ref().is_some_and(|run| {
            run.buffers.len() < self.combine
                && u64::from(run.first) + run.buffers.len() as u64 == u64::from(block)
        });
        if !extends {
            self.close_pending();
        }
        let run = self.pending.get_or_insert_with(|| {
            let id = self.next_run;
            self.next_run += 1;
            Run {
                id,
                first: block,
                buffers: Vec::with_capacity(self.combine),
            }
        });
        run.buffers.push(buffer);
        let id = run.id;
        let full = run.buffers.len() == self.combine;
        self.queue.push_back(Entry {
            data,
            slot: Slot::InRun(id),
        });
        if full {
            self.close_pending();
        }
    }

    /// Closes the open run: it waits to start, with advice owed if useful.
    fn close_pending(&mut self) {
        let Some(run) = self.pending.take() else {
            return;
        };
        let len = run.buffers.len();
        let sequential = self.last_run_end == Some(u64::from(run.first));
        self.last_run_end = Some(u64::from(run.first) + len as u64);
        // Advice helps where nothing else reads ahead: always for runs that
        // are not sequential, and for sequential ones too on a backend
        // without kernel read-ahead (object stores). Small runs skip it
        // while small reads keep finding their pages cached (`advice.rs`).
        let smgr = self.pool.smgr();
        let wanted = !self.flags.sequential && (!sequential || !smgr.reads_ahead_sequentially());
        // The gate is asked last, so only runs that would be advised can be
        // its probes.
        let advise = wanted && (len > INLINE_MAX_BLOCKS || self.advice_gate.advise(run.id));
        self.waiting.push_back(Waiting {
            run,
            advise,
            counted: false,
        });
    }

    /// Issues the advice owed by waiting runs, before they start. The flag
    /// is cleared before the advice is awaited: a call dropped meanwhile
    /// loses that hint rather than issue it again on every call (a caller
    /// whose deadline is shorter than one `prefetch` would otherwise never
    /// get past it).
    async fn issue_advice(&mut self) {
        // Most calls owe nothing (sequential local scans never advise):
        // leave before touching anything shared.
        if !self.waiting.iter().any(|waiting| waiting.advise) {
            return;
        }
        for i in 0..self.waiting.len() {
            let Some((first, len)) = self
                .waiting
                .get(i)
                .filter(|waiting| waiting.advise)
                .map(|waiting| (waiting.run.first, waiting.run.buffers.len()))
            else {
                continue;
            };
            if let Some(waiting) = self.waiting.get_mut(i) {
                waiting.advise = false;
            }
            self.counters.advice();
            self.pool
                .smgr()
                .prefetch(self.rel, self.fork, first, len as BlockNumber)
                .await;
        }
    }

    /// Starts waiting runs (advised already) while fewer than `max_ios` are
    /// in flight.
    fn start_waiting(&mut self) {
        while self.max_ios > 0 && self.in_flight.len() < self.max_ios {
            if self.waiting.front().is_none_or(|waiting| waiting.advise) {
                break;
            }
            let Some(Waiting { run, .. }) = self.waiting.pop_front() else {
                break;
            };
            self.counters.read(run.buffers.len());
            let pool = self.pool.clone();
            let mode = self.mode;
            let id = run.id;
            // Small runs are tried in place first; long ones too once every
            // worker has a stream of its own (`cores.rs`).
            let small = run.buffers.len() <= INLINE_MAX_BLOCKS;
            let inline = small || !spare_worker();
            let read = ReadTask::start(
                async move {
                    let result = pool.complete_read(&run.buffers, mode).await;
                    (run.buffers, result)
                },
                inline,
            );
            if small {
                self.advice_gate.read_started(id, read.finished_inline());
            }
            self.in_flight.push_back(InFlight { id, read });
        }
    }

    /// Collects reads that finished on their own, freeing I/O slots.
    fn reap_finished(&mut self) {
        while let Some(in_flight) = self.in_flight.front_mut() {
            // Unfinished, or the task budget says to yield: collect it later.
            let Some(outcome) = in_flight.read.take() else {
                break;
            };
            let id = in_flight.id;
            self.in_flight.pop_front();
            self.distribute(id, outcome);
        }
    }

    /// Whether run `id` has finished reading.
    fn run_ready(&self, id: u64) -> bool {
        self.in_flight
            .iter()
            .any(|in_flight| in_flight.id == id && in_flight.read.is_finished())
    }

    /// Waits for run `id` (starting it first if it has not started) and
    /// hands its buffers to its entries. The run stays where it is while
    /// waited for, so a dropped call leaves it to the next one.
    async fn finish_run(&mut self, id: u64) {
        if self.pending.as_ref().is_some_and(|run| run.id == id) {
            self.close_pending();
        }
        self.issue_advice().await;
        if self.max_ios == 0 {
            // Synchronous streams read each run when it is needed, in
            // place: a dropped call leaves the run waiting, its I/O
            // finishing in the pool, and the next call completes it.
            let Some(waiting) = self.waiting.front_mut() else {
                return;
            };
            if !waiting.counted {
                waiting.counted = true;
                self.counters.read(waiting.run.buffers.len());
            }
            let started = Instant::now();
            let result = self
                .pool
                .complete_read(&waiting.run.buffers, self.mode)
                .await;
            self.counters.waited(started.elapsed());
            if let Some(waiting) = self.waiting.pop_front() {
                self.distribute(waiting.run.id, Ok((waiting.run.buffers, result)));
            }
            return;
        }
        self.start_waiting();
        let Some(position) = self.in_flight.iter().position(|read| read.id == id) else {
            return;
        };
        let blocked = !self.in_flight[position].read.is_finished();
        let started = Instant::now();
        poll_fn(|cx| self.in_flight[position].read.poll_finished(cx)).await;
        if blocked {
            self.counters.waited(started.elapsed());
        }
        let Some(mut in_flight) = self.in_flight.remove(position) else {
            return;
        };
        // Nothing only if the outcome was taken already, which `reap`
        // never leaves behind: its entries then fail, not hang.
        let outcome = in_flight
            .read
            .take()
            .unwrap_or_else(|| Ok((Vec::new(), Ok(()))));
        self.distribute(id, outcome);
        self.start_waiting();
    }

    /// Gives run `id`'s buffers back to its entries: valid ones are ready;
    /// the first one that is not carries the read's error; later ones that
    /// are not valid are read again on their own when their turn comes.
    ///
    /// A short read of a run of several blocks is not pinned on its first
    /// block: the run may reach past the end of the fork while its first
    /// blocks exist, so every block is read again alone and the error goes
    /// to the blocks that really cannot be read (found by fuzzing).
    fn distribute(&mut self, id: u64, outcome: Result<ReadOutcome, Ended>) {
        let (buffers, mut error, task_error) = match outcome {
            Ok((buffers, result)) => (buffers, result.err(), None),
            Err(ended) => (Vec::new(), None, Some(ended)),
        };
        if buffers.len() > 1
            && matches!(
                error,
                Some(Error::Storage(smgr_api::Error::ShortRead { .. }))
            )
        {
            error = None;
        }
        let mut buffers = buffers.into_iter();
        for entry in self.queue.iter_mut() {
            if !matches!(entry.slot, Slot::InRun(run) if run == id) {
                continue;
            }
            entry.slot = match buffers.next() {
                Some(buffer) if buffer.is_valid() => Slot::Ready(buffer),
                Some(buffer) => match error.take() {
                    Some(err) => Slot::Failed(err),
                    None => Slot::Retry(buffer),
                },
                // The read's task ended without handing its buffers back
                // (it panicked): every block of the run gets its message.
                None => Slot::Failed(task_failed(
                    self.rel,
                    task_error
                        .as_deref()
                        .unwrap_or("read task ended without its buffers"),
                )),
            };
        }
    }
}

/// Where the look-ahead starts: one block, or one full read for `full`
/// streams; on a backend without read-ahead of its own (an object store),
/// where every request waits a round trip, the whole pin budget at once,
/// so the first reads already overlap instead of ramping up wait by wait.
fn initial_distance(
    pool: &BufferPool,
    flags: StreamFlags,
    combine: usize,
    max_ios: usize,
) -> usize {
    if !pool.smgr().reads_ahead_sequentially() && max_ios > 0 {
        (max_ios + 1) * combine
    } else if flags.full {
        combine
    } else {
        1
    }
}

fn task_failed(rel: RelFileLocator, message: &str) -> Error {
    Error::Storage(smgr_api::Error::io(
        "read",
        rel.to_string(),
        std::io::Error::other(message.to_string()),
    ))
}

impl<D: Send + 'static> Drop for ReadStream<D> {
    fn drop(&mut self) {
        for in_flight in &self.in_flight {
            in_flight.read.abort();
        }
        for read in &self.abandoned {
            read.abort();
        }
        let stats = self.counters.snapshot();
        tracing::debug!(
            rel = %self.rel,
            fork = %self.fork,
            blocks = stats.blocks,
            hits = stats.hits,
            reads = stats.reads,
            advice = stats.advice,
            wait_us = stats.wait.as_micros() as u64,
            read_sizes = ?stats.read_sizes,
            "read stream finished"
        );
    }
}
