//! Whether a stream's long reads get tasks of their own.
//!
//! Copying cached pages into the pool is CPU work. One stream alone on a
//! multi-worker runtime goes faster when its long reads run as tasks on
//! the other workers (the copy overlaps the consumer); but once there are
//! as many reading streams as workers, every core already has a consumer,
//! and a task per run only moves the copy to another core's caches and
//! adds a wake-up (two streams on two workers measured 1.16× one stream
//! with tasks, 1.8× when each polled its own reads). So a stream reads
//! in place while streams reading in the process are at least as many as
//! the runtime's workers. Reads that have to wait (pages not cached, an
//! object store) still become tasks when their first poll is pending.
//!
//! The count is process-wide and changes only when a stream starts or
//! ends, never per block.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Streams that have not reached their end, in the whole process.
static READING: AtomicUsize = AtomicUsize::new(0);

/// One stream's place in the count, given back when dropped.
#[derive(Debug)]
pub(crate) struct Reading(());

impl Reading {
    pub fn new() -> Self {
        READING.fetch_add(1, Relaxed);
        Reading(())
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READING.fetch_sub(1, Relaxed);
    }
}

/// Whether a worker is left for a stream's read tasks: fewer streams
/// read than the current runtime has workers.
pub(crate) fn spare_worker() -> bool {
    READING.load(Relaxed) < workers()
}

#[cfg(not(shuttle))]
fn workers() -> usize {
    tokio::runtime::Handle::try_current().map_or(1, |runtime| runtime.metrics().num_workers())
}

/// Under shuttle every run that waits is a task, so that schedules reach
/// the task paths whatever else the test runs.
#[cfg(shuttle)]
fn workers() -> usize {
    usize::MAX
}
