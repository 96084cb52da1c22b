//! Construction options of the object-store backend.

use smgr_api::{BlockNumber, BlockSize, Error, PathNaming, Result, DEFAULT_SEGMENT_BLOCKS};

/// How an [`ObjectSmgr`](crate::ObjectSmgr) lays out and caches objects.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ObjectOptions {
    /// Bytes per block (default 8 KiB).
    pub block_size: BlockSize,
    /// Blocks per segment object (default PostgreSQL's 131072: 1 GiB).
    /// Every write rewrites a whole segment object, so relations written
    /// through this backend want much smaller segments.
    pub segment_blocks: BlockNumber,
    /// File naming (tablespace version directory).
    pub naming: PathNaming,
    /// Bytes the prefetch cache may hold (default 256 MiB).
    pub prefetch_cache_bytes: u64,
    /// Use conditional puts (`If-Match` / `If-None-Match`) so that a
    /// concurrent writer is detected. Turn off only for stores that do not
    /// support them (a local directory); writes then overwrite blindly.
    pub conditional_writes: bool,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        ObjectOptions {
            block_size: BlockSize::DEFAULT,
            segment_blocks: DEFAULT_SEGMENT_BLOCKS,
            naming: PathNaming::default(),
            prefetch_cache_bytes: 256 << 20,
            conditional_writes: true,
        }
    }
}

impl ObjectOptions {
    /// Options with this block size and segment size, others default.
    pub fn new(block_size: BlockSize, segment_blocks: BlockNumber) -> Self {
        ObjectOptions {
            block_size,
            segment_blocks,
            ..Self::default()
        }
    }

    /// The same with conditional writes on or off.
    pub fn conditional_writes(mut self, on: bool) -> Self {
        self.conditional_writes = on;
        self
    }

    /// The same with another prefetch cache size.
    pub fn prefetch_cache_bytes(mut self, bytes: u64) -> Self {
        self.prefetch_cache_bytes = bytes;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.segment_blocks == 0 {
            return Err(Error::InvalidSetting {
                name: "segment_blocks",
                value: 0,
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    pub(crate) fn segment_bytes(&self) -> u64 {
        u64::from(self.segment_blocks) * u64::from(self.block_size.get())
    }
}
