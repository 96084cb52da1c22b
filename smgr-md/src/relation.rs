//! Whole-fork operations: create, unlink, truncate, sync, prefetch.

use std::io;
use std::path::Path;

use smgr_api::{BlockNumber, Error, ForkNumber, RelFileLocator, Result};

use crate::fs::{FileSystem, OpenMode, SegmentFile};
use crate::inner::Inner;

impl<F: FileSystem> Inner<F> {
    pub fn exists_blocking(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool> {
        let relative = self.relpath(rel, fork)?;
        match self.fs.file_len(&self.full_path(&relative)) {
            Ok(len) => Ok(len.is_some()),
            Err(err) => Err(Error::io("stat", relative, err)),
        }
    }

    /// Creates segment 0, and the directories above it if missing (so a
    /// fresh root works without PostgreSQL's `CREATE DATABASE` having made
    /// `base/DB`).
    pub fn create_blocking(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.check_writable("create", rel, fork)?;
        let relative = self.relpath(rel, fork)?;
        let path = self.full_path(&relative);
        if let Some(parent) = path.parent() {
            self.create_dirs(parent)
                .map_err(|err| Error::io("create directory for", relative.clone(), err))?;
        }
        self.files.forget(rel, fork, 0);
        let mode = OpenMode {
            write: true,
            create: true,
            create_new: true,
        };
        match self.fs.open(&path, mode) {
            Ok(_) => {
                tracing::debug!(path = relative, "created relation fork");
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists { path: relative })
            }
            Err(err) => Err(Error::io("create", relative, err)),
        }
    }

    /// Removes every segment, highest first and segment 0 last, so that a
    /// crash part-way leaves a shorter but well-formed fork, never later
    /// segments without a first one.
    pub fn unlink_blocking(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.check_writable("unlink", rel, fork)?;
        self.files.forget(rel, fork, 0);
        let last = self.last_existing_segment(rel, fork)?;
        if let Some(last) = last {
            self.remove_segments(rel, fork, 0, last)?;
            tracing::debug!(path = self.relpath(rel, fork)?, "unlinked relation fork");
        }
        // Again after the files are gone: an open that raced with the
        // removal must not leave a handle of a deleted file cached.
        self.files.forget(rel, fork, 0);
        Ok(())
    }

    /// The highest segment number whose file exists, probing upwards from
    /// 0 (files beyond a missing one are not part of the fork).
    fn last_existing_segment(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<Option<u32>> {
        let mut last = None;
        let mut segno = 0u32;
        loop {
            let relative = self.seg_path(rel, fork, segno)?;
            match self.fs.exists(&self.full_path(&relative)) {
                Ok(true) => last = Some(segno),
                Ok(false) => return Ok(last),
                Err(err) => return Err(Error::io("stat", relative, err)),
            }
            match segno.checked_add(1) {
                Some(next) => segno = next,
                None => return Ok(last),
            }
        }
    }

    /// Removes segments `last` down to `first`.
    fn remove_segments(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: u32,
        last: u32,
    ) -> Result<()> {
        for segno in (first..=last).rev() {
            let relative = self.seg_path(rel, fork, segno)?;
            match self.fs.remove_file(&self.full_path(&relative)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io("unlink", relative, err)),
            }
        }
        Ok(())
    }

    /// Shrinks the fork to `nblocks` (PostgreSQL's `mdtruncate`): segments
    /// wholly past the new end are removed, highest first, then the last
    /// remaining one is cut. Segment 0 always stays.
    ///
    /// A fork that is not well formed past `nblocks` (a power loss during
    /// an extend across a segment boundary can leave a later segment with
    /// data after a short one) is repaired the same way: what lies past
    /// `nblocks` goes, and the fork must then have exactly `nblocks`
    /// blocks, or the truncate fails saying how many it has.
    pub fn truncate_blocking(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        self.check_writable("truncate", rel, fork)?;
        let well_formed = match self.nblocks(rel, fork) {
            Ok(current) if nblocks > current => {
                return Err(Error::WrongBlock {
                    op: "truncate",
                    path: self.relpath(rel, fork)?,
                    block: nblocks,
                    nblocks: current,
                })
            }
            Ok(_) => true,
            Err(Error::CorruptSegment { .. }) => {
                // Refused before anything is removed if the blocks asked
                // for are not all there.
                let there = self.readable_prefix(rel, fork)?;
                if u64::from(nblocks) > there {
                    return Err(Error::WrongBlock {
                        op: "truncate",
                        path: self.relpath(rel, fork)?,
                        block: nblocks,
                        nblocks: there as BlockNumber,
                    });
                }
                false
            }
            Err(err) => return Err(err),
        };
        let seg = self.segment_blocks();
        // The segment that holds the new last block keeps `keep_blocks`;
        // every segment after it goes.
        let (keep_segno, keep_blocks) = if nblocks == 0 {
            (0, 0)
        } else {
            ((nblocks - 1) / seg, (nblocks - 1) % seg + 1)
        };
        self.files.forget(rel, fork, keep_segno + 1);
        if let Some(last) = self.last_existing_segment(rel, fork)? {
            if last > keep_segno {
                self.remove_segments(rel, fork, keep_segno + 1, last)?;
            }
        }
        // Again after the removal, for opens that raced with it.
        self.files.forget(rel, fork, keep_segno + 1);
        let relative = self.seg_path(rel, fork, keep_segno)?;
        let file = self
            .open_seg_unchecked(rel, fork, keep_segno)?
            .ok_or_else(|| Error::NotFound {
                path: relative.clone(),
            })?;
        let keep_bytes = u64::from(keep_blocks) * self.block_bytes();
        let size = file
            .size()
            .map_err(|err| Error::io("stat", relative.clone(), err))?;
        // Only ever shorter: a repair must not invent blocks.
        if well_formed || size > keep_bytes {
            file.set_len(keep_bytes)
                .map_err(|err| Error::io("truncate", relative, err))?;
        }
        if !well_formed {
            let now = self.nblocks(rel, fork)?;
            if now != nblocks {
                return Err(Error::WrongBlock {
                    op: "truncate",
                    path: self.relpath(rel, fork)?,
                    block: nblocks,
                    nblocks: now,
                });
            }
        }
        Ok(())
    }

    /// `fsync` of every segment, then of the directory holding them (so
    /// that segment files created since are durable too). Errors are
    /// returned as they come: after a failed fsync the kernel may have
    /// dropped the dirty pages, and reports the failure once per open file,
    /// so a caller must treat the first failure as data loss (PostgreSQL
    /// PANICs here), not retry until it passes.
    pub fn immedsync_blocking(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        let mut segno = 0u32;
        loop {
            let relative = self.seg_path(rel, fork, segno)?;
            let Some(file) = self.open_seg_unchecked(rel, fork, segno)? else {
                if segno == 0 {
                    return Err(Error::NotFound { path: relative });
                }
                return self.sync_directory_of(&self.relpath(rel, fork)?);
            };
            file.sync()
                .map_err(|err| Error::io("fsync", relative, err))?;
            match segno.checked_add(1) {
                Some(next) => segno = next,
                None => return self.sync_directory_of(&self.relpath(rel, fork)?),
            }
        }
    }

    fn sync_directory_of(&self, relative: &str) -> Result<()> {
        let dir = match relative.rsplit_once('/') {
            Some((dir, _)) => dir,
            None => return Ok(()),
        };
        self.fs
            .sync_dir(&self.full_path(dir))
            .map_err(|err| Error::io("fsync directory", dir, err))
    }

    /// Blocks of a fork up to its first short segment (a segment longer
    /// than a segment counts as full): what a fork that is not well formed
    /// still has in order.
    fn readable_prefix(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<u64> {
        let seg = u64::from(self.segment_blocks());
        let mut blocks = 0;
        for segno in 0..=u32::MAX {
            let relative = self.seg_path(rel, fork, segno)?;
            let len = self
                .fs
                .file_len(&self.full_path(&relative))
                .map_err(|err| Error::io("stat", relative, err))?;
            let here = len.unwrap_or(0) / self.block_bytes();
            blocks += here.min(seg);
            if here < seg {
                break;
            }
        }
        Ok(blocks)
    }

    /// Makes `dir` and any missing directories above it (under the root),
    /// each made durable in its parent at once (`fsync` of the parent): a
    /// directory entry nobody synced can vanish at power loss with every
    /// file below it, however often those files were synced.
    fn create_dirs(&self, dir: &Path) -> io::Result<()> {
        if dir == self.root || self.fs.is_dir(dir) {
            return Ok(());
        }
        let Some(parent) = dir.parent() else {
            return Ok(());
        };
        self.create_dirs(parent)?;
        match self.fs.create_dir(dir) {
            // Made just now by another creator, which may not have synced
            // it yet: sync it here too.
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(err),
            _ => self.fs.sync_dir(parent),
        }
    }

    /// `posix_fadvise(WILLNEED)` over the run, per segment. Any failure
    /// only means no hint; returns whether one was given.
    pub fn prefetch_inline(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        count: BlockNumber,
    ) -> bool {
        if first.checked_add(count).is_none() || count == 0 {
            return false;
        }
        let bs = self.block_bytes();
        let mut advised = false;
        for piece in self.pieces(first, count as usize) {
            let Ok(Some(file)) = self.open_seg(rel, fork, piece.segno, false) else {
                break;
            };
            let offset = u64::from(piece.seg_block) * bs;
            if file.will_need(offset, piece.count as u64 * bs) {
                advised = true;
            }
        }
        advised
    }
}
