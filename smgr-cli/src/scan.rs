//! `smgr scan`: one relation fork read start to end through the buffer
//! pool, by a read stream or by the one-block-at-a-time loop it replaces,
//! with the counters that show the difference.

use std::fmt::Write as _;
use std::time::Instant;

use bufmgr::{BufferPool, ReadBufferMode};
use serde::Serialize;
use smgr_api::{BlockNumber, ForkNumber, RelFileLocator};
use streamread::{ReadStream, StreamConfig, StreamFlags};

/// How a scan went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanReport {
    /// What read the blocks: `stream` or `one block at a time`.
    pub method: String,
    /// Blocks returned.
    pub blocks: u64,
    /// Bytes in those blocks.
    pub bytes: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Blocks found in the buffer pool.
    pub hits: u64,
    /// Read calls to the storage manager.
    pub reads: u64,
    /// Blocks those reads covered.
    pub blocks_read: u64,
    /// Time spent waiting for reads (streams only), in seconds.
    pub wait_seconds: f64,
}

impl ScanReport {
    /// MB/s (10^6 bytes per second).
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }

    /// Average blocks per read call.
    pub fn average_read(&self) -> f64 {
        self.blocks_read as f64 / self.reads.max(1) as f64
    }
}

/// Reads blocks `0..nblocks` of a fork through a [`ReadStream`], touching
/// each page under its shared lock. A fork larger than a quarter of the
/// pool is read through a bulk-read ring, as PostgreSQL scans such tables
/// (`ReadStream::with_bulk_read_ring`): the scan neither pushes the rest
/// of the pool out nor sweeps all of it for every block.
pub async fn scan_stream(
    pool: &BufferPool,
    rel: RelFileLocator,
    fork: ForkNumber,
    nblocks: BlockNumber,
    config: StreamConfig,
) -> bufmgr::Result<ScanReport> {
    let started = Instant::now();
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let stream = ReadStream::range(pool, rel, fork, config, flags, 0..nblocks);
    let mut stream = if nblocks as usize > pool.frames() / 4 {
        stream.with_bulk_read_ring()
    } else {
        stream
    };
    let mut blocks = 0u64;
    let mut sink = 0u8;
    while let Some((buffer, ())) = stream.next_buffer().await? {
        sink ^= buffer.read()?[blocks as usize % 64];
        blocks += 1;
    }
    std::hint::black_box(sink);
    let stats = stream.stats();
    Ok(ScanReport {
        method: "stream".to_owned(),
        blocks,
        bytes: blocks * pool.block_size().get() as u64,
        seconds: started.elapsed().as_secs_f64(),
        hits: stats.hits,
        reads: stats.reads,
        blocks_read: stats.blocks_read,
        wait_seconds: stats.wait.as_secs_f64(),
    })
}

/// Reads blocks `0..nblocks` one `read_buffer` at a time, as code did
/// before streams: every miss is a separate one-block read.
pub async fn scan_one_block(
    pool: &BufferPool,
    rel: RelFileLocator,
    fork: ForkNumber,
    nblocks: BlockNumber,
) -> bufmgr::Result<ScanReport> {
    let before = pool.stats();
    let started = Instant::now();
    let mut sink = 0u8;
    for block in 0..nblocks {
        let buffer = pool
            .read_buffer(rel, fork, block, ReadBufferMode::Normal)
            .await?;
        sink ^= buffer.read()?[block as usize % 64];
    }
    std::hint::black_box(sink);
    let seconds = started.elapsed().as_secs_f64();
    let after = pool.stats();
    let blocks = u64::from(nblocks);
    Ok(ScanReport {
        method: "one block at a time".to_owned(),
        blocks,
        bytes: blocks * pool.block_size().get() as u64,
        seconds,
        hits: after.hits - before.hits,
        reads: after.read_calls - before.read_calls,
        blocks_read: after.blocks_read - before.blocks_read,
        wait_seconds: 0.0,
    })
}

/// The reports as an aligned table.
pub fn table(reports: &[ScanReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "method", "blocks", "time s", "MB/s", "hits", "reads", "avg read"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>9.3} {:>9.0} {:>9} {:>9} {:>10.1}",
            r.method,
            r.blocks,
            r.seconds,
            r.mb_per_s(),
            r.hits,
            r.reads,
            r.average_read()
        );
    }
    out
}
