//! Pool-wide I/O statistics, like PostgreSQL's `pg_stat_io`, kept per
//! thread and summed when read.
//!
//! Each thread counts into a slot of its own (padded to its own cache
//! lines), chosen once per thread; threads beyond the slot count share
//! slots. Counting is then a plain load and store on a line that no other
//! core touches, instead of an atomic add on a line every core fights
//! over. Counters are exact while at most `SLOTS` threads count (beyond
//! that, two threads sharing a slot may lose a count); a snapshot is not
//! taken at one instant (as with `pg_stat_io`).

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

// Counters stay std atomics under shuttle: nothing depends on their order.
use std::sync::atomic::AtomicU64;

/// Per-thread slots (statistics, clock-hand chunks, lending handles).
pub(crate) const SLOTS: usize = 64;

/// The current thread's slot, `0..SLOTS`.
pub(crate) fn thread_slot() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|slot| {
        let mut s = slot.get();
        if s == usize::MAX {
            s = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
            slot.set(s);
        }
        s
    })
}

#[derive(Default)]
#[repr(align(128))]
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
    /// Adds `n`: a plain load and store, not a read-modify-write (which
    /// costs a locked instruction on every hit). A slot belongs to one
    /// thread, so nothing is lost, unless more than `SLOTS` threads count
    /// at once and two of them share a slot: then a count may be missed,
    /// never invented.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
}

/// Every thread slot's counters.
pub(crate) struct Stats {
    slots: Box<[Counters]>,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            slots: (0..SLOTS).map(|_| Counters::default()).collect(),
        }
    }

    /// The counters of the current thread.
    pub fn here(&self) -> &Counters {
        &self.slots[thread_slot()]
    }

    pub fn snapshot(&self) -> PoolStats {
        let sum = |get: fn(&Counters) -> &AtomicU64| -> u64 {
            self.slots
                .iter()
                .map(|c| get(c).load(Ordering::Relaxed))
                .fold(0, u64::wrapping_add)
        };
        PoolStats {
            hits: sum(|c| &c.hits),
            misses: sum(|c| &c.misses),
            blocks_read: sum(|c| &c.blocks_read),
            read_calls: sum(|c| &c.read_calls),
            bytes_read: sum(|c| &c.bytes_read),
            blocks_written: sum(|c| &c.blocks_written),
            write_calls: sum(|c| &c.write_calls),
            bytes_written: sum(|c| &c.bytes_written),
            evictions: sum(|c| &c.evictions),
            io_wait: Duration::from_nanos(sum(|c| &c.io_wait_nanos)),
            pages_zeroed_on_error: sum(|c| &c.pages_zeroed_on_error),
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
