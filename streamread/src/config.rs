//! How a stream reads: combine limit, I/O concurrency, flags.

use smgr_api::BlockSize;

/// Behaviour switches of a stream (PostgreSQL's `READ_STREAM_*` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamFlags {
    /// The caller knows access is sequential: never issue `prefetch`
    /// advice (`READ_STREAM_SEQUENTIAL`).
    pub sequential: bool,
    /// The caller will read everything: start with the look-ahead at the
    /// combine limit instead of 1 (`READ_STREAM_FULL`).
    pub full: bool,
    /// Bulk maintenance work: use the maintenance I/O concurrency
    /// (`READ_STREAM_MAINTENANCE`).
    pub maintenance: bool,
}

/// Limits of a stream's look-ahead.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct StreamConfig {
    /// Most bytes combined into one `readv` (PostgreSQL's
    /// `io_combine_limit`, 128 KiB by default; up to 1 MiB and more suits
    /// object stores, where one request costs milliseconds).
    pub io_combine_bytes: usize,
    /// Reads in flight at once (`effective_io_concurrency`, 16 by default,
    /// as PostgreSQL 18). 0 means synchronous reads, one at a time. On a
    /// backend without read-ahead (an object store) `remote_max_ios`
    /// applies instead, unless this is 0.
    pub max_ios: usize,
    /// Reads in flight at once for `maintenance` streams
    /// (`maintenance_io_concurrency`).
    pub maintenance_max_ios: usize,
    /// Reads in flight at once on a backend without read-ahead (an object
    /// store, `Smgr::reads_ahead_sequentially` false), where every read
    /// waits tens of milliseconds for its first byte: enough to cover
    /// latency × bandwidth (64 by default: 64 reads of 1 MiB at 20 ms keep
    /// 3 GiB/s coming). Used in place of `max_ios` there, unless that is 0
    /// (synchronous). The pool's per-reader pin limit still bounds it.
    pub remote_max_ios: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            io_combine_bytes: 128 * 1024,
            max_ios: 16,
            maintenance_max_ios: 16,
            remote_max_ios: 64,
        }
    }
}

impl StreamConfig {
    /// The same with another combine limit, in bytes.
    pub fn io_combine_bytes(mut self, bytes: usize) -> Self {
        self.io_combine_bytes = bytes;
        self
    }

    /// The same with another I/O concurrency (0: synchronous).
    pub fn max_ios(mut self, n: usize) -> Self {
        self.max_ios = n;
        self
    }

    /// The same with another I/O concurrency for backends without
    /// read-ahead.
    pub fn remote_max_ios(mut self, n: usize) -> Self {
        self.remote_max_ios = n;
        self
    }

    /// The same with another maintenance I/O concurrency.
    pub fn maintenance_max_ios(mut self, n: usize) -> Self {
        self.maintenance_max_ios = n;
        self
    }

    /// Blocks per combined read for `block_size` (at least 1).
    pub(crate) fn combine_blocks(&self, block_size: BlockSize) -> usize {
        (self.io_combine_bytes / block_size.bytes()).max(1)
    }
}
