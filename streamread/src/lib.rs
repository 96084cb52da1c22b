//! # streamread: streaming reads
//!
//! PostgreSQL's read stream over the buffer pool ([`bufmgr`]): a source of
//! block numbers in, pinned buffers out, in the source's order. Behind that
//! the stream reads ahead: consecutive misses become one `readv` of up to
//! `io_combine_limit` blocks, up to `max_ios` reads run at the same time (as
//! separate tasks, so their I/O truly overlaps), `prefetch` advice goes out
//! where nothing else reads ahead, and the look-ahead distance adapts to
//! hits and misses. See [`ReadStream`] for the details and
//! [`prewarm`] for its first user. It depends on `bufmgr` and `smgr-api`
//! only.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), streamread::Error> {
//! use std::sync::Arc;
//! use bufmgr::{BufferPool, PoolConfig};
//! use smgr_api::testkit::MemSmgr;
//! use smgr_api::{BlockSize, ForkNumber, PageFormat, RelFileLocator, Smgr};
//! use streamread::{ReadStream, StreamConfig, StreamFlags};
//!
//! let smgr = Arc::new(MemSmgr::new(BlockSize::DEFAULT));
//! let rel = RelFileLocator::in_database(5, 16396);
//! smgr.create(rel, ForkNumber::Main).await?;
//! smgr.zero_extend(rel, ForkNumber::Main, 0, 100).await?;
//! let pool = BufferPool::new(smgr, PoolConfig::new(256, PageFormat::Native))?;
//!
//! // Every other block, with the block number as per-buffer data.
//! let mut next = 0u32;
//! let mut stream = ReadStream::new(&pool, rel, ForkNumber::Main, StreamConfig::default(), StreamFlags::default(),
//!     move |data: &mut u32| {
//!         (next < 100).then(|| { *data = next; next += 2; *data })
//!     });
//! let mut seen = Vec::new();
//! while let Some((buffer, block)) = stream.next_buffer().await? {
//!     assert_eq!(buffer.tag().block, block);
//!     seen.push(block);
//! }
//! assert_eq!(seen, (0..100).step_by(2).collect::<Vec<_>>());
//! # Ok(())
//! # }
//! ```

mod advice;
mod config;
mod cores;
mod prewarm;
mod read_task;
mod stats;
mod stream;
mod sync;

pub use config::{StreamConfig, StreamFlags};
pub use prewarm::prewarm;
pub use stats::{StreamStats, StreamStatsHandle, READ_SIZE_BUCKETS};
pub use stream::{Error, ReadStream};
