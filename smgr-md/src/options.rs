//! Construction options of the local backend.

use smgr_api::{BlockNumber, BlockSize, Error, PathNaming, Result, DEFAULT_SEGMENT_BLOCKS};

/// How an [`MdSmgr`](crate::MdSmgr) lays out and opens its files.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MdOptions {
    /// Bytes per block (default 8 KiB).
    pub block_size: BlockSize,
    /// Blocks per segment file (PostgreSQL's `RELSEG_SIZE`; default 131072,
    /// 1 GiB at 8 KiB). Small values are for tests.
    pub segment_blocks: BlockNumber,
    /// File naming under the root (tablespace version directory).
    pub naming: PathNaming,
    /// At most this many segment files are kept open at once (least
    /// recently used are closed first).
    pub max_open_files: usize,
    /// Open files read-only and refuse every operation that writes; for
    /// checking a data directory that must not change.
    pub read_only: bool,
    /// Try each read inline with `preadv2(RWF_NOWAIT)` first, so cached
    /// pages are copied without a trip to the blocking pool (default).
    /// Turn off to send every read to the blocking pool.
    pub nowait_reads: bool,
}

/// The largest segment file allowed, 16 TiB: ext4's largest file.
const MAX_SEGMENT_BYTES: u64 = 1 << 44;

impl Default for MdOptions {
    fn default() -> Self {
        MdOptions {
            block_size: BlockSize::DEFAULT,
            segment_blocks: DEFAULT_SEGMENT_BLOCKS,
            naming: PathNaming::default(),
            max_open_files: 256,
            read_only: false,
            nowait_reads: true,
        }
    }
}

impl MdOptions {
    /// Options with the given block size and segment size, other fields
    /// default.
    pub fn new(block_size: BlockSize, segment_blocks: BlockNumber) -> Self {
        MdOptions {
            block_size,
            segment_blocks,
            ..Self::default()
        }
    }

    /// The same options, read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The same options with at most `n` files open.
    pub fn max_open_files(mut self, n: usize) -> Self {
        self.max_open_files = n;
        self
    }

    /// The same options with the inline `RWF_NOWAIT` read path on or off.
    pub fn nowait_reads(mut self, on: bool) -> Self {
        self.nowait_reads = on;
        self
    }

    /// The same options with another file naming.
    pub fn naming(mut self, naming: PathNaming) -> Self {
        self.naming = naming;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let segment_bytes = u64::from(self.segment_blocks) * u64::from(self.block_size.get());
        if self.segment_blocks == 0 || segment_bytes > MAX_SEGMENT_BYTES {
            return Err(Error::InvalidSetting {
                name: "segment_blocks",
                value: self.segment_blocks.into(),
                reason: "must be at least 1 and make segments of at most 16 TiB",
            });
        }
        if self.max_open_files == 0 {
            return Err(Error::InvalidSetting {
                name: "max_open_files",
                value: 0,
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}
