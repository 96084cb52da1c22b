//! Per-stream counters, readable while the stream runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Buckets of the read-size histogram: reads of 1, 2, 3–4, 5–8, 9–16,
/// 17–32, 33–64, 65–128 and more blocks.
pub const READ_SIZE_BUCKETS: usize = 9;

#[derive(Default)]
pub(crate) struct Counters {
    blocks: AtomicU64,
    hits: AtomicU64,
    reads: AtomicU64,
    blocks_read: AtomicU64,
    advice: AtomicU64,
    wait_nanos: AtomicU64,
    read_sizes: [AtomicU64; READ_SIZE_BUCKETS],
}

/// Adds `n`: only the stream writes its counters (others only read them
/// through a handle), so a plain load and store is exact and spares a
/// locked instruction per block.
fn add(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl Counters {
    pub fn block(&self, hit: bool) {
        add(&self.blocks, 1);
        if hit {
            add(&self.hits, 1);
        }
    }

    pub fn read(&self, blocks: usize) {
        add(&self.reads, 1);
        add(&self.blocks_read, blocks as u64);
        let bucket = (usize::BITS - blocks.saturating_sub(1).leading_zeros()) as usize;
        add(&self.read_sizes[bucket.min(READ_SIZE_BUCKETS - 1)], 1);
    }

    pub fn advice(&self) {
        add(&self.advice, 1);
    }

    pub fn waited(&self, time: Duration) {
        add(&self.wait_nanos, time.as_nanos() as u64);
    }

    pub fn snapshot(&self) -> StreamStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut read_sizes = [0; READ_SIZE_BUCKETS];
        for (out, counter) in read_sizes.iter_mut().zip(&self.read_sizes) {
            *out = get(counter);
        }
        StreamStats {
            blocks: get(&self.blocks),
            hits: get(&self.hits),
            reads: get(&self.reads),
            blocks_read: get(&self.blocks_read),
            advice: get(&self.advice),
            wait: Duration::from_nanos(get(&self.wait_nanos)),
            read_sizes,
        }
    }
}

/// A stream's counters so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Blocks taken from the source (pinned).
    pub blocks: u64,
    /// Of those, already valid in the pool.
    pub hits: u64,
    /// Combined reads started.
    pub reads: u64,
    /// Blocks in those reads.
    pub blocks_read: u64,
    /// `prefetch` calls made.
    pub advice: u64,
    /// Time `next_buffer` spent waiting for reads.
    pub wait: Duration,
    /// Combined read sizes: 1, 2, 3–4, 5–8, 9–16, 17–32, 33–64, 65–128,
    /// more blocks.
    pub read_sizes: [u64; READ_SIZE_BUCKETS],
}

/// A handle to read a stream's counters from elsewhere while it runs.
#[derive(Clone)]
pub struct StreamStatsHandle(pub(crate) Arc<Counters>);

impl StreamStatsHandle {
    /// The counters now.
    pub fn get(&self) -> StreamStats {
        self.0.snapshot()
    }
}

impl std::fmt::Debug for StreamStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}
