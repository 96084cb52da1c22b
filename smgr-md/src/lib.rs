//! # smgr-md: relations in local segmented files
//!
//! The local backend of [`smgr_api::Smgr`], with PostgreSQL's `md.c`
//! semantics, so it reads the files of a real PostgreSQL data directory as
//! they are and writes files PostgreSQL could read:
//!
//! - files are named as PostgreSQL names them (`base/DB/REL`, `global/REL`,
//!   `pg_tblspc/SPC/PG_15_…/DB/REL`, fork suffixes, `.N` segments) under a
//!   root directory, through [`smgr_api::PathNaming`];
//! - each segment file holds `segment_blocks` blocks (1 GiB by default); a
//!   run of blocks that crosses a boundary is split into one vectored call
//!   per segment;
//! - `readv` reads with `preadv` straight into the caller's [`PageBuf`]s
//!   (no copy; cached pages are read inline with `RWF_NOWAIT`, the rest on
//!   Tokio's blocking pool); `writev`/`extend` use `pwritev`; `prefetch` is
//!   `posix_fadvise(WILLNEED)`; `immedsync` is `fsync` of every segment;
//! - a short read inside the fork is an error naming the file, blocks and
//!   bytes; a segment of impossible length is reported as corruption; an
//!   `fsync` failure is returned, never swallowed;
//! - open files are cached in a bounded LRU, so a relation with many
//!   segments cannot exhaust descriptors.
//!
//! Identifiers are numbers, so no `RelFileLocator` can name a path outside
//! the root. Symbolic links the administrator placed inside it (PostgreSQL's
//! `pg_tblspc/SPC` links to tablespace directories) are followed, as
//! PostgreSQL follows them.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> smgr_api::Result<()> {
//! use smgr_api::{ForkNumber, RelFileLocator, SmgrExt, Smgr};
//! use smgr_md::{MdOptions, MdSmgr};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let smgr = MdSmgr::open(dir.path(), MdOptions::default())?;
//! let rel = RelFileLocator::in_database(5, 16396);
//! smgr.create(rel, ForkNumber::Main).await?;
//! smgr.extend_block(rel, ForkNumber::Main, 0, &[7u8; 8192]).await?;
//! assert_eq!(smgr.nblocks(rel, ForkNumber::Main).await?, 1);
//! assert_eq!(smgr.read_block(rel, ForkNumber::Main, 0).await?[100], 7);
//! assert!(dir.path().join("base/5/16396").exists());
//! # Ok(())
//! # }
//! ```

mod fence;
mod files;
pub mod fs;
mod inner;
mod list;
mod options;
mod read;
mod relation;
pub mod testing;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use smgr_api::{
    block_run_end, BlockNumber, BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Result, Smgr,
};

use crate::files::FileCache;
use crate::fs::{FileSystem, OsFileSystem};
use crate::inner::Inner;
pub use crate::options::MdOptions;
use crate::read::{Progress, ReadJob};

/// A storage manager over PostgreSQL-style segment files under one root
/// directory. Cheap to clone; clones share open files.
///
/// `F` is the file system its calls go to: the operating system's unless
/// built with [`MdSmgr::with_file_system`] (the simulated disk of
/// [`testing::CrashFs`], for power-loss tests).
pub struct MdSmgr<F: FileSystem = OsFileSystem> {
    inner: Arc<Inner<F>>,
}

impl<F: FileSystem> Clone for MdSmgr<F> {
    fn clone(&self) -> Self {
        MdSmgr {
            inner: self.inner.clone(),
        }
    }
}

impl<F: FileSystem> fmt::Debug for MdSmgr<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdSmgr")
            .field("root", &self.inner.root)
            .field("options", &self.inner.opts)
            .finish()
    }
}

impl MdSmgr {
    /// A storage manager over the existing directory `root` (a PostgreSQL
    /// data directory, or any directory for new relations).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for bad options, [`Error::Io`] if `root`
    /// is not a readable directory.
    pub fn open(root: impl AsRef<Path>, options: MdOptions) -> Result<Self> {
        let root = root.as_ref();
        std::fs::metadata(root)
            .map_err(|err| Error::io("open root directory", root.display().to_string(), err))?;
        Self::with_file_system(root, options, OsFileSystem)
    }
}

impl<F: FileSystem> MdSmgr<F> {
    /// A storage manager over directory `root` of the file system `fs`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for bad options, [`Error::Io`] if `root`
    /// is not a directory there.
    pub fn with_file_system(root: impl AsRef<Path>, options: MdOptions, fs: F) -> Result<Self> {
        options.validate()?;
        let root: PathBuf = root.as_ref().to_path_buf();
        if !fs.is_dir(&root) {
            return Err(Error::io(
                "open root directory",
                root.display().to_string(),
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Ok(MdSmgr {
            inner: Arc::new(Inner {
                fs,
                files: FileCache::new(options.max_open_files),
                fences: crate::fence::Fences::new(),
                nowait_reads: AtomicBool::new(options.nowait_reads),
                root,
                opts: options,
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The options it was opened with.
    pub fn options(&self) -> &MdOptions {
        &self.inner.opts
    }

    /// The absolute path of segment `segno` of a fork. Always inside
    /// [`root`](Self::root).
    pub fn segment_path(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
    ) -> Result<PathBuf> {
        let path = self
            .inner
            .full_path(&self.inner.seg_path(rel, fork, segno)?);
        debug_assert!(inner::is_under(&self.inner.root, &path));
        Ok(path)
    }

    /// Every relation fork stored under the root, found by listing
    /// `global/`, `base/*/` and `pg_tblspc/*/VERSION/*/` as PostgreSQL lays
    /// them out, in (locator, fork) order.
    pub async fn list_forks(&self) -> Result<Vec<(RelFileLocator, ForkNumber)>> {
        self.blocking("list", |inner| inner.list_forks_blocking())
            .await
    }

    /// How many segment files are open right now (at most
    /// `max_open_files`).
    pub fn open_files(&self) -> usize {
        self.inner.files.len()
    }

    /// Runs `op` on Tokio's blocking pool.
    async fn blocking<T, G>(&self, what: &'static str, op: G) -> Result<T>
    where
        T: Send + 'static,
        G: FnOnce(&Inner<F>) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|err| {
                Error::io(
                    what,
                    self.inner.root.display().to_string(),
                    std::io::Error::other(err),
                )
            })?
    }

    fn check_bufs(&self, path: impl FnOnce() -> Result<String>, bufs: &[PageBuf]) -> Result<()> {
        let expected = self.inner.opts.block_size.bytes();
        match bufs.iter().position(|b| b.len() != expected) {
            Some(index) => Err(Error::BufferSize {
                path: path()?,
                index,
                actual: bufs[index].len(),
                expected,
            }),
            None => Ok(()),
        }
    }

    /// Validation shared by the operations that take buffers.
    fn check_run(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        bufs: &[PageBuf],
    ) -> Result<()> {
        let path = self.inner.relpath(rel, fork)?;
        block_run_end(&path, first, bufs.len())?;
        self.check_bufs(|| Ok(path), bufs)
    }
}

#[async_trait]
impl<F: FileSystem> Smgr for MdSmgr<F> {
    fn block_size(&self) -> BlockSize {
        self.inner.opts.block_size
    }

    /// The kernel reads ahead on sequential file access.
    fn reads_ahead_sequentially(&self) -> bool {
        true
    }

    async fn exists(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool> {
        self.blocking("stat", move |inner| inner.exists_blocking(rel, fork))
            .await
    }

    async fn create(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.inner.relpath(rel, fork)?;
        let fence = self.inner.fences.resize(rel, fork).await;
        self.blocking("create", move |inner| {
            let _fence = fence;
            inner.create_blocking(rel, fork)
        })
        .await
    }

    async fn unlink(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.inner.relpath(rel, fork)?;
        let fence = self.inner.fences.resize(rel, fork).await;
        self.blocking("unlink", move |inner| {
            let _fence = fence;
            inner.unlink_blocking(rel, fork)
        })
        .await
    }

    async fn nblocks(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<BlockNumber> {
        self.blocking("stat", move |inner| inner.nblocks(rel, fork))
            .await
    }

    async fn readv(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.check_run(rel, fork, blocknum, &bufs)?;
        if bufs.is_empty() {
            return Ok(bufs);
        }
        let mut job = ReadJob::new(self.inner.clone(), rel, fork, blocknum, bufs);
        if self.inner.nowait_reads.load(Ordering::Relaxed) {
            if let Progress::Done = job.run(true)? {
                return Ok(job.bufs);
            }
        }
        // The job, and with it the buffers, moves to the blocking thread:
        // if this future is dropped, the read still owns them until it ends.
        self.blocking("read", move |_| {
            job.run(false)?;
            Ok(job.bufs)
        })
        .await
    }

    async fn writev(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.check_run(rel, fork, blocknum, &bufs)?;
        self.inner.check_writable("write", rel, fork)?;
        // The fence guard moves into the job: a dropped future's write still
        // holds it until the write is over.
        let fence = self.inner.fences.write(rel, fork).await;
        self.blocking("write", move |inner| {
            let _fence = fence;
            if bufs.is_empty() {
                // Nothing to write, but the position must exist.
                let nblocks = inner.nblocks(rel, fork)?;
                if blocknum > nblocks {
                    return Err(Error::WrongBlock {
                        op: "write",
                        path: inner.relpath(rel, fork)?,
                        block: blocknum,
                        nblocks,
                    });
                }
                return Ok(bufs);
            }
            inner.writev_blocking(rel, fork, blocknum, &bufs)?;
            Ok(bufs)
        })
        .await
    }

    async fn extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        self.check_run(rel, fork, blocknum, &bufs)?;
        self.inner.check_writable("extend", rel, fork)?;
        let fence = self.inner.fences.write(rel, fork).await;
        self.blocking("extend", move |inner| {
            let _fence = fence;
            if bufs.is_empty() {
                inner.check_at_end(rel, fork, blocknum)?;
                return Ok(bufs);
            }
            inner.extend_blocking(rel, fork, blocknum, &bufs)?;
            Ok(bufs)
        })
        .await
    }

    async fn zero_extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        let path = self.inner.relpath(rel, fork)?;
        block_run_end(&path, blocknum, nblocks as usize)?;
        self.inner.check_writable("extend", rel, fork)?;
        let fence = self.inner.fences.write(rel, fork).await;
        self.blocking("extend", move |inner| {
            let _fence = fence;
            if nblocks == 0 {
                // Nothing to add, but the fork must exist and end there.
                return inner.check_at_end(rel, fork, blocknum);
            }
            inner.zero_extend_blocking(rel, fork, blocknum, nblocks)
        })
        .await
    }

    async fn truncate(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        self.inner.relpath(rel, fork)?;
        let fence = self.inner.fences.resize(rel, fork).await;
        self.blocking("truncate", move |inner| {
            let _fence = fence;
            inner.truncate_blocking(rel, fork, nblocks)
        })
        .await
    }

    async fn prefetch(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> bool {
        // fadvise of cached ranges costs under a microsecond: no thread hop.
        self.inner.prefetch_inline(rel, fork, blocknum, nblocks)
    }

    async fn immedsync(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        // Every earlier write, even one whose future was dropped and which
        // is still running on the blocking pool: they hold the fork's fence
        // until their I/O ends, so taking it exclusively (and letting go at
        // once: writes need not wait for the fsync) waits them out.
        drop(self.inner.fences.resize(rel, fork).await);
        self.blocking("fsync", move |inner| inner.immedsync_blocking(rel, fork))
            .await
    }
}
