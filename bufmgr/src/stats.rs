//! Pool-wide I/O statistics, like PostgreSQL's `pg_stat_io`.
//!
//! Plain relaxed atomics: each counter is exact, a snapshot is not taken at
//! one instant (as with `pg_stat_io`), and keeping them costs an
//! uncontended atomic add per event.

use std::sync::atomic::Ordering;

use crate::sync::AtomicU64;
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub blocks_read: AtomicU64,
    pub read_calls: AtomicU64,
    pub bytes_read: AtomicU64,
    pub blocks_written: AtomicU64,
    pub write_calls: AtomicU64,
    pub bytes_written: AtomicU64,
    pub evictions: AtomicU64,
    pub io_wait_nanos: AtomicU64,
    pub pages_zeroed_on_error: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PoolStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            blocks_read: get(&self.blocks_read),
            read_calls: get(&self.read_calls),
            bytes_read: get(&self.bytes_read),
            blocks_written: get(&self.blocks_written),
            write_calls: get(&self.write_calls),
            bytes_written: get(&self.bytes_written),
            evictions: get(&self.evictions),
            io_wait: Duration::from_nanos(get(&self.io_wait_nanos)),
            pages_zeroed_on_error: get(&self.pages_zeroed_on_error),
        }
    }
}

/// A snapshot of the pool's counters since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Lookups that found the page valid in the pool.
    pub hits: u64,
    /// Lookups that did not (a read was, or will be, needed).
    pub misses: u64,
    /// Blocks read from storage.
    pub blocks_read: u64,
    /// `readv` calls made (one per combined run).
    pub read_calls: u64,
    /// Bytes read from storage.
    pub bytes_read: u64,
    /// Blocks written to storage.
    pub blocks_written: u64,
    /// `writev` calls made.
    pub write_calls: u64,
    /// Bytes written to storage.
    pub bytes_written: u64,
    /// Frames taken from one page for another.
    pub evictions: u64,
    /// Time spent waiting for other tasks' I/O on the same pages.
    pub io_wait: Duration,
    /// Pages that failed verification and were zeroed (zero-on-error).
    pub pages_zeroed_on_error: u64,
}
