//! # bufmgr: the shared buffer pool
//!
//! A fixed pool of page frames shared by every task and thread of a
//! program, as PostgreSQL's shared buffers, over any [`smgr_api::Smgr`] (it
//! never names a concrete backend). Build one and share it: clones are
//! cheap, and the hot paths write no cache line other cores use for other
//! pages.
//!
//! - each frame's state is one atomic word (`state.rs`, the file to read
//!   first): pins, usage count, valid / dirty / I/O / error / lent flags,
//!   a waiter flag and the content lock, all changed by compare-and-swap;
//!   descriptors are padded to a cache line each;
//! - a page table from [`BufferTag`] (relation, fork, block) to frame,
//!   probed without a lock (pin the frame if it is mapped, then check its
//!   tag); clock-sweep eviction that skips pinned frames and writes a dirty
//!   victim back first; an error, not a hang, when every frame is pinned;
//! - [`Buffer`], a pin owned by a handle (drop unpins), with shared and
//!   exclusive content locks on its page; [`BufferPool::read_with`], an
//!   optimistic read with no pin and no lock, validated by a version;
//! - two-step reads as in the seed patch: [`BufferPool::prepare_read`]
//!   (pin, hit or miss, no I/O) and [`BufferPool::complete_read`] (a run
//!   of misses with as few `readv` calls as possible), and
//!   [`BufferPool::read_buffer`] built on them; pages initialized without
//!   a read and unseen until initialized ([`BufferPool::zero_and_lock`]);
//! - one [`smgr_api::PageVerifier`] for every block read, whatever the
//!   backend; zero-on-error mode;
//! - dirty pages written back with combined `writev`s, relation extension,
//!   bulk-read rings ([`BufferAccessStrategy`]), per-reader pin limits,
//!   and `pg_stat_io`-like counters ([`PoolStats`]), kept per thread.
//!
//! Frame memory is one mapping, advised for huge pages and populated at
//! construction. A read lends its frames to the backend as
//! [`smgr_api::PageBuf`]s, so the local backend reads straight into the
//! pool; the I/O of a read belongs to the pool, so dropping a waiting
//! future never leaves a frame stuck or reused while an I/O still writes
//! into it.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> bufmgr::Result<()> {
//! use std::sync::Arc;
//! use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
//! use smgr_api::testkit::MemSmgr;
//! use smgr_api::{BlockSize, ForkNumber, PageFormat, RelFileLocator, Smgr};
//!
//! let smgr = Arc::new(MemSmgr::new(BlockSize::DEFAULT));
//! let pool = BufferPool::new(smgr.clone(), PoolConfig::new(64, PageFormat::Native))?;
//! let rel = RelFileLocator::in_database(5, 16396);
//! smgr.create(rel, ForkNumber::Main).await?;
//!
//! // Extend by one page, change it, write it out.
//! let buffer = pool.extend_by(rel, ForkNumber::Main, 1).await?.remove(0);
//! let mut page = buffer.write()?;
//! page[100] = 42;
//! page.mark_dirty();
//! drop(page);
//! pool.flush_buffer(&buffer).await?;
//! drop(buffer);
//!
//! let again = pool.read_buffer(rel, ForkNumber::Main, 0, ReadBufferMode::Normal).await?;
//! assert_eq!(again.read()?[100], 42);
//! assert_eq!(pool.stats().hits, 1);
//! # Ok(())
//! # }
//! ```

mod buffer;
mod core;
mod damaged;
mod error;
mod frame;
mod memory;
mod optimistic;
mod page_table;
mod pool;
mod read;
mod ring;
mod state;
mod stats;
mod sync;
mod tag;
mod write;

pub use buffer::{Buffer, PageMut, PageRef};
pub use error::{Error, Result};
pub use optimistic::PageView;
pub use pool::{BufferPool, PoolCensus, PoolConfig, Reader};
pub use read::{PreparedRead, ReadBufferMode};
pub use ring::BufferAccessStrategy;
pub use stats::PoolStats;
pub use tag::BufferTag;
