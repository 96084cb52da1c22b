//! Construction options of the object-store backend.

use crate::BytesInFlight;
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
    /// Bytes the windows of prefetched and read-ahead data may hold
    /// together (default 256 MiB): a window that would not fit is not
    /// opened, and its read does a GET of its own.
    pub prefetch_cache_bytes: u64,
    /// The largest GET a sequential reader's requests grow to (default
    /// 8 MiB; Durner et al. found 8–16 MiB requests reach S3's bandwidth).
    /// The pool still gets its pages in `io_combine_limit` runs, each as
    /// soon as its bytes have arrived.
    pub max_request_bytes: u64,
    /// How far ahead of a sequential reader its windows run (default
    /// 128 MiB: sixteen 8 MiB requests in flight, about 1 GiB/s at S3's
    /// 60 MiB/s per request). 0: nothing ahead of an access but its own
    /// window (which still grows, up to `max_request_bytes`).
    pub read_ahead_bytes: u64,
    /// How new segment objects are stored. Existing objects keep their
    /// kind: a compressed one (`.zst`) stays compressed, a plain one plain,
    /// so a bucket may hold both and reading never needs to be told.
    pub compression: Compression,
    /// Use conditional puts (`If-Match` / `If-None-Match`) so that a
    /// concurrent writer is detected. Turn off only for stores that do not
    /// support them (a local directory); writes then overwrite blindly.
    pub conditional_writes: bool,
    /// The largest frame a compressed object may have, in blocks (default
    /// 256: 2 MiB of 8 KiB pages; never less than the `frame_blocks` of
    /// `compression`). A seek table with a bigger frame is refused as
    /// corrupt when the object is listed: decompressing a frame needs
    /// memory of its size, so a hostile or broken table must not choose it.
    pub max_frame_blocks: u32,
    /// Refuse compressed frames that carry no checksum at all (neither
    /// zstd's own nor one in the seek table) as `CorruptFrame`, on reads
    /// and before a rewrite compresses them again. Off by default: this
    /// backend always writes checksums, but other writers may leave both
    /// out, and the pool's page checksums still verify what such frames
    /// decode to. Turn it on for pages without checksums.
    pub require_frame_checksums: bool,
    /// Hedge GETs (`None`: never): one whose first byte has not come after
    /// the larger of this and four times the typical first-byte latency
    /// is issued once more, and the first answer wins (default 50 ms; on
    /// S3 in-region, with a typical 27 ms, that is about 110 ms: above the
    /// p99, so about one GET in a hundred is hedged).
    pub hedge_after: Option<std::time::Duration>,
    /// The cap on bytes of GETs in flight (default: the process-wide
    /// [`BytesInFlight::process`], 256 MiB, shared by every backend): a
    /// GET waits for room before it is issued, so deep streams over many
    /// forks cannot hold unbounded memory in bodies still arriving (bodies
    /// kept in windows are bounded by `prefetch_cache_bytes`, per
    /// backend). A GET larger than the cap waits for all of it; read-ahead
    /// requests are never larger.
    pub bytes_in_flight: BytesInFlight,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        ObjectOptions {
            block_size: BlockSize::DEFAULT,
            segment_blocks: DEFAULT_SEGMENT_BLOCKS,
            naming: PathNaming::default(),
            prefetch_cache_bytes: 256 << 20,
            max_request_bytes: 8 << 20,
            read_ahead_bytes: 128 << 20,
            compression: Compression::None,
            conditional_writes: true,
            max_frame_blocks: 256,
            require_frame_checksums: false,
            hedge_after: Some(std::time::Duration::from_millis(50)),
            bytes_in_flight: BytesInFlight::process(),
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

    /// The same storing new segments with `compression`.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The same accepting compressed frames of up to `blocks` blocks.
    pub fn max_frame_blocks(mut self, blocks: u32) -> Self {
        self.max_frame_blocks = blocks;
        self
    }

    /// The same refusing (`on`) or accepting compressed frames without
    /// any checksum.
    pub fn require_frame_checksums(mut self, on: bool) -> Self {
        self.require_frame_checksums = on;
        self
    }

    /// The same with a cap of `bytes` of GETs in flight of its own (not
    /// shared with the process's other backends).
    pub fn max_bytes_in_flight(mut self, bytes: u64) -> Self {
        self.bytes_in_flight = BytesInFlight::new(bytes);
        self
    }

    /// The same sharing `cap` (with whichever backends were given it).
    pub fn bytes_in_flight(mut self, cap: BytesInFlight) -> Self {
        self.bytes_in_flight = cap;
        self
    }

    /// The same hedging GETs after at least `floor` (`None`: never).
    pub fn hedge_after(mut self, floor: Option<std::time::Duration>) -> Self {
        self.hedge_after = floor;
        self
    }

    /// Bytes a compressed object's frame may decompress to: the larger of
    /// `max_frame_blocks` and the `frame_blocks` this backend writes.
    pub fn max_frame_bytes(&self) -> u64 {
        let writes = match self.compression {
            Compression::Zstd { frame_blocks, .. } => frame_blocks,
            Compression::None => 0,
        };
        u64::from(self.max_frame_blocks.max(writes).max(1)) * u64::from(self.block_size.get())
    }

    /// Bytes a compressed object's seek table may take: one frame per
    /// block of a segment at most (plus one), with checksums. Longer
    /// tables are refused before they are fetched.
    pub fn max_table_bytes(&self) -> u64 {
        let frames = u64::from(self.segment_blocks) + 1;
        crate::seekable::table_bytes(frames, true)
    }

    /// The same with sequential requests growing to at most `bytes`.
    pub fn max_request_bytes(mut self, bytes: u64) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// The same reading ahead of sequential readers by `bytes`.
    pub fn read_ahead_bytes(mut self, bytes: u64) -> Self {
        self.read_ahead_bytes = bytes;
        self
    }

    /// The same with another budget for prefetch and read-ahead windows.
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
        if let Compression::Zstd {
            level,
            frame_blocks,
        } = self.compression
        {
            if !ZSTD_LEVELS.contains(&level) {
                return Err(Error::InvalidSetting {
                    name: "compression level",
                    value: level.unsigned_abs().into(),
                    reason: "zstd levels run from 1 to 22",
                });
            }
            if frame_blocks == 0
                || u64::from(frame_blocks) * u64::from(self.block_size.get()) > 1 << 30
            {
                return Err(Error::InvalidSetting {
                    name: "frame_blocks",
                    value: frame_blocks.into(),
                    reason: "a frame holds at least one block and at most 1 GiB",
                });
            }
        }
        Ok(())
    }

    pub(crate) fn segment_bytes(&self) -> u64 {
        u64::from(self.segment_blocks) * u64::from(self.block_size.get())
    }
}

/// The zstd levels [`Compression::Zstd`] accepts.
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=22;
/// zstd's own default level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Blocks per compressed frame unless told otherwise (128 KiB of 8 KiB
/// pages).
pub const DEFAULT_FRAME_BLOCKS: u32 = 16;

/// How new segment objects are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain: the segment's bytes as they are (what PostgreSQL writes).
    #[default]
    None,
    /// The zstd seekable format (key suffix `.zst`): independent frames of
    /// `frame_blocks` blocks compressed at `level`, then a seek table, so a
    /// block run is still one ranged GET.
    Zstd {
        /// zstd level, 1 to 22 (3 is zstd's default).
        level: i32,
        /// Blocks per frame (16: 128 KiB of 8 KiB pages).
        frame_blocks: u32,
    },
}
