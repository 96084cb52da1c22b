//! # smgr-object: relations in an object store
//!
//! The object-storage backend of [`smgr_api::Smgr`], on the `object_store`
//! crate (S3 and compatible servers, GCS, Azure, a local directory, memory).
//!
//! - **Layout**: the paths of [`smgr_api::PathNaming`] become keys under a
//!   prefix, one object per segment (`prefix/base/5/16396`,
//!   `prefix/base/5/16396.1`, `..._fsm`), so a PostgreSQL data directory
//!   copied into a bucket is readable as is.
//! - **Reads**: a run of blocks is one ranged GET per segment it touches,
//!   pinned to the segment's ETag (`If-Match`): all bytes of one read come
//!   from one object version, or the read fails with
//!   [`smgr_api::Error::Conflict`] (after up to 8 tries, each with the
//!   segment's current version: a version this backend wrote is waited
//!   for, one written elsewhere is learnt by listing that fork again).
//! - **Prefetch and read-ahead**: advice starts the GET now, into a
//!   *window* whose body is kept as it arrives; a later `readv` inside it
//!   takes its bytes as soon as they are in, so prefetch + read costs one
//!   GET. A sequential reader's windows grow to large requests
//!   ([`ObjectOptions::max_request_bytes`], 8 MiB) and run ahead of it
//!   ([`ObjectOptions::read_ahead_bytes`]), while the pool still gets its
//!   pages in `io_combine_limit` runs, in order. Streams keep advising
//!   sequential scans here
//!   ([`reads_ahead_sequentially`](smgr_api::Smgr::reads_ahead_sequentially)
//!   is false), which is what lets a bucket's latency be covered.
//! - **Sizes**: a fork's segments are learnt by listing its directory once
//!   (one LIST serves every fork in it) and kept current by this backend's
//!   own writes (a listing older than an own write never overrides it);
//!   [`ObjectSmgr::refresh`] forgets them.
//! - **Writes**: objects are immutable, so a write rewrites each segment
//!   object it touches: GET the segment, change it, PUT it back with a
//!   conditional put on the ETag read (or create-only for new segments), so
//!   a concurrent writer is detected as a conflict instead of being
//!   overwritten. Cost model: every `writev`, `extend` or `truncate` moves
//!   whole segment objects both ways, so relations written through this
//!   backend should use small segments (`segment_blocks`). Writes run as
//!   tasks that finish even if the caller's future is dropped, one at a
//!   time per fork.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> smgr_api::Result<()> {
//! use std::sync::Arc;
//! use object_store::memory::InMemory;
//! use smgr_api::{BlockSize, ForkNumber, RelFileLocator, Smgr, SmgrExt};
//! use smgr_object::{ObjectOptions, ObjectSmgr};
//!
//! let smgr = ObjectSmgr::new(Arc::new(InMemory::new()), "backups/1", ObjectOptions::new(BlockSize::DEFAULT, 64))?;
//! let rel = RelFileLocator::in_database(5, 16396);
//! smgr.create(rel, ForkNumber::Main).await?;
//! smgr.extend_block(rel, ForkNumber::Main, 0, &[7u8; 8192]).await?;
//! assert_eq!(smgr.read_block(rel, ForkNumber::Main, 0).await?[42], 7);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "aws-sdk")]
pub mod aws_sdk;
mod error;
mod hedge;
mod in_flight;
mod io;
mod meta;
mod options;
mod readahead;
pub mod seekable;
mod smgr;
pub mod testing;
mod url;

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use object_store::ObjectStore;
use smgr_api::{ForkNumber, RelFileLocator, Result};

pub use crate::in_flight::{BytesInFlight, DEFAULT_BYTES_IN_FLIGHT};
pub use crate::options::{
    Compression, ObjectOptions, DEFAULT_FRAME_BLOCKS, DEFAULT_ZSTD_LEVEL, ZSTD_LEVELS,
};
pub use crate::url::{store_from_url, StoreOptions};

/// The `object_store` path of a key as it is stored (`prefix/base/5/16396`):
/// taken as it is, never percent-encoded again (`Path::from` would turn a
/// prefix `pg~15` into keys under `pg%7E15`).
///
/// # Errors
///
/// [`smgr_api::Error::InvalidPath`] naming the key if it has an empty,
/// `.` or `..` part.
pub fn object_path(key: &str) -> Result<object_store::path::Path> {
    object_store::path::Path::parse(key).map_err(|_| smgr_api::Error::InvalidPath {
        input: key.to_owned(),
        reason: "not an object key: it has an empty, '.' or '..' part",
    })
}

/// A storage manager over an object store. Cheap to clone.
#[derive(Clone)]
pub struct ObjectSmgr {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
    pub opts: ObjectOptions,
    pub meta: meta::MetaCache,
    /// Windows of prefetched and read-ahead bytes (`readahead.rs`).
    pub read_ahead: readahead::ReadAhead,
    write_locks: Vec<Arc<tokio::sync::Mutex<()>>>,
    hasher: RandomState,
    pub hedging: hedge::Hedging,
    pub counts: Counts,
}

/// Requests this backend made, for [`ObjectSmgr::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub gets: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
}

/// What an [`ObjectSmgr`] did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectStats {
    /// Ranged GETs of segment data (hedges not counted).
    pub gets: u64,
    /// Bytes those GETs asked for: `bytes / gets` is the typical request
    /// (sequential reads grow theirs up to `max_request_bytes`).
    pub bytes: u64,
    /// GETs issued a second time because their first byte was late.
    pub hedged: u64,
    /// Of those, the ones whose second request answered first.
    pub hedges_won: u64,
    /// The first-byte wait after which a GET is hedged now.
    pub hedge_threshold: Option<std::time::Duration>,
    /// The most bytes of GETs that were in flight at once under this
    /// backend's cap (`ObjectOptions::bytes_in_flight`: by default the
    /// process-wide one, so this counts every backend sharing it).
    pub peak_bytes_in_flight: u64,
    /// The most bytes prefetch and read-ahead windows held at once (at
    /// most `ObjectOptions::prefetch_cache_bytes`).
    pub peak_window_bytes: u64,
    /// Bytes the windows hold now (0 once every window was read whole, or
    /// left idle for five seconds and swept).
    pub window_bytes: u64,
    /// Bytes of windows that left before they were read (idle five
    /// seconds when room was needed, or their GET failed): read ahead in
    /// vain.
    pub window_bytes_unread: u64,
}

impl fmt::Debug for ObjectSmgr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The store's Display names the kind and bucket, never credentials.
        f.debug_struct("ObjectSmgr")
            .field("store", &self.inner.store.to_string())
            .field("prefix", &self.inner.prefix)
            .field("options", &self.inner.opts)
            .finish()
    }
}

impl ObjectSmgr {
    /// A storage manager keeping its objects in `store` under `prefix`
    /// (`""` for the root of the store).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, options: ObjectOptions) -> Result<Self> {
        options.validate()?;
        let prefix = prefix.trim_matches('/').to_owned();
        // Keys are the prefix plus paths built from numbers; a prefix of
        // plain components keeps every key under it on every store (a
        // local directory store would otherwise see `..` as a parent).
        if !prefix.is_empty()
            && prefix
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(smgr_api::Error::InvalidPath {
                input: prefix,
                reason:
                    "an object key prefix must be plain components: no empty, '.' or '..' parts",
            });
        }
        object_path(&prefix)?;
        Ok(ObjectSmgr {
            inner: Arc::new(Inner {
                store,
                prefix,
                meta: meta::MetaCache::default(),
                read_ahead: readahead::ReadAhead::new(
                    options.prefetch_cache_bytes,
                    // A window's GET holds room for all of it.
                    options.max_request_bytes.min(options.bytes_in_flight.cap()),
                    options.read_ahead_bytes,
                ),
                write_locks: (0..64)
                    .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                    .collect(),
                hasher: RandomState::new(),
                hedging: hedge::Hedging::default(),
                counts: Counts::default(),
                opts: options,
            }),
        })
    }

    /// What it did so far: GETs, and how many were hedged.
    pub fn stats(&self) -> ObjectStats {
        use std::sync::atomic::Ordering::Relaxed;
        let inner = &self.inner;
        let windows = inner.read_ahead.bytes();
        ObjectStats {
            gets: inner.counts.gets.load(Relaxed),
            bytes: inner.counts.bytes.load(Relaxed),
            hedged: inner.hedging.hedged.load(Relaxed),
            hedges_won: inner.hedging.second_won.load(Relaxed),
            hedge_threshold: inner.opts.hedge_after.map(|f| inner.hedging.threshold(f)),
            peak_bytes_in_flight: inner.opts.bytes_in_flight.peak(),
            peak_window_bytes: windows.1,
            window_bytes: windows.0,
            window_bytes_unread: windows.2,
        }
    }

    /// The options it was built with.
    pub fn options(&self) -> &ObjectOptions {
        &self.inner.opts
    }

    /// The object key of segment `segno` of a fork.
    pub fn segment_key(&self, rel: RelFileLocator, fork: ForkNumber, segno: u32) -> Result<String> {
        self.inner.key(rel, fork, segno)
    }

    /// The seek table of the compressed object `key`, as a listing found
    /// it (`stored` bytes at version `e_tag`/`version`): one ranged GET of
    /// its tail, checked against this backend's limits. Remembered with
    /// its ETag, so this backend's own listing of the object's directory
    /// takes it instead of fetching it again while the object is
    /// unchanged: for callers that list objects themselves, as the `smgr`
    /// command does.
    pub async fn seek_table(
        &self,
        key: &str,
        stored: u64,
        e_tag: Option<String>,
        version: Option<String>,
    ) -> Result<Arc<seekable::SeekTable>> {
        let table = Arc::new(
            seekable::fetch_seek_table(
                self.inner.store.as_ref(),
                key,
                stored,
                e_tag.clone(),
                version,
                self.inner.opts.max_frame_bytes(),
                self.inner.opts.max_table_bytes(),
            )
            .await?,
        );
        if let Some(e_tag) = e_tag {
            self.inner.meta.remember_table(key, &e_tag, table.clone());
        }
        Ok(table)
    }

    /// Forgets what is known about segment objects, so the next access
    /// lists them again (after another program changed the bucket).
    pub fn refresh(&self) {
        self.inner.meta.clear();
    }
}

impl Inner {
    /// The lock serializing this backend's writes to one fork.
    pub fn write_lock(&self, rel: RelFileLocator, fork: ForkNumber) -> Arc<tokio::sync::Mutex<()>> {
        let index = self.hasher.hash_one((rel, fork)) as usize % self.write_locks.len();
        self.write_locks[index].clone()
    }
}
