//! The file-system calls this backend makes, behind one small interface.
//!
//! Every system call `MdSmgr` makes goes through [`FileSystem`] and
//! [`SegmentFile`]: opening, vectored reads and writes, `fallocate`,
//! `ftruncate`, `fsync` of files and directories, `unlink`, `mkdir`, and
//! listing. [`OsFileSystem`] is the real one; `MdSmgr` is generic over the
//! file system and statically dispatched, so the real one costs nothing.
//! The other implementation is [`crate::testing::CrashFs`], a simulated
//! disk that can lose power.
//!
//! Errors are `std::io::Error`s with the kinds this backend acts on:
//! `NotFound`, `AlreadyExists`, `WouldBlock` (a `nowait` read that would
//! wait for the device) and `Unsupported` (a `nowait` read or `allocate`
//! the file system does not do). `EINTR` is retried inside.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut};
use std::num::NonZeroU64;
use std::path::Path;

use rustix::io::{Errno, ReadWriteFlags};

/// How to open a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenMode {
    /// Open for writing too.
    pub write: bool,
    /// Create it if missing.
    pub create: bool,
    /// Fail with `AlreadyExists` if it exists (with `create`).
    pub create_new: bool,
}

/// A file system holding segment files and their directories.
pub trait FileSystem: Send + Sync + 'static {
    /// An open segment file.
    type File: SegmentFile;

    /// Opens the file at `path`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;

    /// The length of the file at `path` (following symbolic links), or
    /// `None` if nothing is there.
    fn file_len(&self, path: &Path) -> io::Result<Option<u64>>;

    /// Whether anything (a file, a directory, a dangling link) is at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Whether `path` is a directory (following symbolic links).
    fn is_dir(&self, path: &Path) -> bool;

    /// Makes the directory `path`; `AlreadyExists` if it is there.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// The names in directory `path`.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Makes the entries of directory `path` durable (`fsync` of the
    /// directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// One open segment file.
pub trait SegmentFile: Send + Sync + 'static {
    /// Its length in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Reads into `bufs` from `offset`; returns the bytes read (0 at the
    /// end). With `nowait`, fails with `WouldBlock` rather than wait for
    /// the device (or `Unsupported` if it cannot tell).
    fn read_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64, nowait: bool) -> io::Result<usize>;

    /// Writes `bufs` at `offset`; returns the bytes written.
    fn write_at(&self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<usize>;

    /// Cuts or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Reserves `offset..offset + len`, extending the file with zeros if it
    /// ends before (`fallocate` mode 0: bytes already there are kept);
    /// `Unsupported` if the file system cannot.
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()>;

    /// Makes its data and size durable (`fsync`).
    fn sync(&self) -> io::Result<()>;

    /// Hints that `offset..offset + len` will be read soon; whether the
    /// hint was taken.
    fn will_need(&self, offset: u64, len: u64) -> bool;
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFileSystem;

fn retry<T>(mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match call() {
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

impl FileSystem for OsFileSystem {
    type File = File;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(mode.write);
        if mode.create_new {
            options.create_new(true);
        } else {
            options.create(mode.create);
        }
        options.open(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        match std::fs::metadata(path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

impl SegmentFile for File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64, nowait: bool) -> io::Result<usize> {
        let result = if nowait {
            retry(|| rustix::io::preadv2(self, bufs, offset, ReadWriteFlags::NOWAIT))
        } else {
            retry(|| rustix::io::preadv(self, bufs, offset))
        };
        result.map_err(|errno| match errno {
            Errno::AGAIN if nowait => io::ErrorKind::WouldBlock.into(),
            Errno::OPNOTSUPP | Errno::INVAL if nowait => io::ErrorKind::Unsupported.into(),
            other => io::Error::from(other),
        })
    }

    fn write_at(&self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<usize> {
        retry(|| rustix::io::pwritev(self, bufs, offset)).map_err(io::Error::from)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        retry(|| rustix::fs::fallocate(self, rustix::fs::FallocateFlags::empty(), offset, len))
            .map_err(|errno| match errno {
                Errno::OPNOTSUPP | Errno::INVAL => io::ErrorKind::Unsupported.into(),
                other => io::Error::from(other),
            })
    }

    fn sync(&self) -> io::Result<()> {
        self.sync_all()
    }

    fn will_need(&self, offset: u64, len: u64) -> bool {
        rustix::fs::fadvise(
            self,
            offset,
            NonZeroU64::new(len),
            rustix::fs::Advice::WillNeed,
        )
        .is_ok()
    }
}
