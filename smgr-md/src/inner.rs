//! The shared state of an `MdSmgr` and the segment arithmetic every
//! operation uses.
//!
//! On disk a fork is, as in PostgreSQL's `md.c`: zero or more full segments
//! of exactly `segment_blocks` blocks, then one partial segment (possibly
//! empty), then nothing, or inactive segments of length zero. Anything else
//! (an overlong segment, a non-empty segment after a partial one) is
//! reported as corruption rather than read around.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use smgr_api::{BlockNumber, Error, ForkNumber, RelFileLocator, Result, MAX_BLOCK_NUMBER};

use crate::files::{FileCache, SegKey};
use crate::fs::{FileSystem, OpenMode, SegmentFile};
use crate::MdOptions;

pub(crate) struct Inner<F: FileSystem> {
    pub fs: F,
    pub root: PathBuf,
    pub opts: MdOptions,
    pub files: FileCache<F::File>,
    pub fences: crate::fence::Fences,
    /// Whether `preadv2(RWF_NOWAIT)` works here; cleared the first time the
    /// kernel or file system says it does not.
    pub nowait_reads: AtomicBool,
}

/// The part of a run of blocks that falls in one segment file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Piece {
    pub segno: u32,
    /// Block within the segment where the piece starts.
    pub seg_block: u32,
    /// Index of the piece's first block in the run.
    pub first_index: usize,
    /// Number of blocks in the piece.
    pub count: usize,
}

impl<F: FileSystem> Inner<F> {
    pub fn block_bytes(&self) -> u64 {
        u64::from(self.opts.block_size.get())
    }

    pub fn segment_blocks(&self) -> u32 {
        self.opts.segment_blocks
    }

    /// Relative path of a segment, as errors name it.
    pub fn seg_path(&self, rel: RelFileLocator, fork: ForkNumber, segno: u32) -> Result<String> {
        self.opts.naming.segment_path(rel, fork, segno)
    }

    /// Relative path of a fork.
    pub fn relpath(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<String> {
        self.seg_path(rel, fork, 0)
    }

    /// Absolute path of a relative one. Relative paths come from
    /// `PathNaming`, which only produces numeric components and a validated
    /// version directory, so the result is always under `root`.
    pub fn full_path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Splits the run `first .. first + count` at segment boundaries,
    /// lazily (a huge run costs nothing until it is walked).
    pub fn pieces(&self, first: BlockNumber, count: usize) -> impl Iterator<Item = Piece> {
        let seg = u64::from(self.segment_blocks());
        let mut index = 0usize;
        std::iter::from_fn(move || {
            if index >= count {
                return None;
            }
            let block = u64::from(first) + index as u64;
            let seg_block = block % seg;
            let n = ((seg - seg_block) as usize).min(count - index);
            let piece = Piece {
                segno: (block / seg) as u32,
                seg_block: seg_block as u32,
                first_index: index,
                count: n,
            };
            index += n;
            Some(piece)
        })
    }

    fn open_mode(&self, create: bool) -> OpenMode {
        OpenMode {
            write: !self.opts.read_only,
            create: create && !self.opts.read_only,
            create_new: false,
        }
    }

    /// Opens segment `segno` of a fork through the cache. `Ok(None)` if the
    /// file does not exist (and `create` is false).
    ///
    /// A non-empty segment after the first is only used if every earlier
    /// segment is full: otherwise the fork has data after a partial
    /// segment, which is corruption (as `_mdfd_getseg` reports it outside
    /// recovery). The check runs when the file is first opened (a length
    /// per earlier segment); a segment that fails it is not kept open, so
    /// it is checked again next time.
    pub fn open_seg(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
        create: bool,
    ) -> Result<Option<Arc<F::File>>> {
        let Some((file, fresh)) = self.open_cached(rel, fork, segno, create)? else {
            return Ok(None);
        };
        if fresh && segno > 0 && !create {
            let relative = self.seg_path(rel, fork, segno)?;
            if self.file_blocks(&file, &relative, segno)? > 0 {
                if let Err(err) = self.check_full_before(rel, fork, segno) {
                    self.files.forget(rel, fork, segno);
                    return Err(err);
                }
            }
        }
        Ok(Some(file))
    }

    /// Opens a segment through the cache without the earlier-segments
    /// check (`nblocks` walks segments in order itself).
    pub fn open_seg_unchecked(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
    ) -> Result<Option<Arc<F::File>>> {
        Ok(self
            .open_cached(rel, fork, segno, false)?
            .map(|(file, _)| file))
    }

    /// The cached handle, or a newly opened one (`true`: just opened).
    fn open_cached(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
        create: bool,
    ) -> Result<Option<(Arc<F::File>, bool)>> {
        let key = SegKey { rel, fork, segno };
        let (cached, epoch) = self.files.get(&key);
        if let Some(file) = cached {
            return Ok(Some((file, false)));
        }
        let relative = self.seg_path(rel, fork, segno)?;
        match self
            .fs
            .open(&self.full_path(&relative), self.open_mode(create))
        {
            Ok(file) => Ok(Some((self.files.insert(key, file, epoch), true))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::io("open", relative, err)),
        }
    }

    /// Checks that every segment before `segno` holds exactly a segment.
    /// All of them, not just the one before: a read may jump straight to a
    /// late segment, so the earlier ones need not have been opened (and
    /// checked) before. If the one before is open, the ones before it
    /// were checked when it was opened (as here, or by `nblocks` walking
    /// them in order; a truncate or unlink closes what it changes), so a
    /// length each is paid once, not on every open.
    fn check_full_before(&self, rel: RelFileLocator, fork: ForkNumber, segno: u32) -> Result<()> {
        let Some(previous) = segno.checked_sub(1) else {
            return Ok(());
        };
        self.check_full(rel, fork, previous)?;
        let checked = self.files.contains(&SegKey {
            rel,
            fork,
            segno: previous,
        });
        if !checked {
            for earlier in 0..previous {
                self.check_full(rel, fork, earlier)?;
            }
        }
        Ok(())
    }

    /// Checks that segment `earlier` holds exactly a segment.
    fn check_full(&self, rel: RelFileLocator, fork: ForkNumber, earlier: u32) -> Result<()> {
        let relative = self.seg_path(rel, fork, earlier)?;
        let blocks = match self.fs.file_len(&self.full_path(&relative)) {
            Ok(len) => len.unwrap_or(0) / self.block_bytes(),
            Err(err) => return Err(Error::io("stat", relative, err)),
        };
        if blocks != u64::from(self.segment_blocks()) {
            return Err(Error::CorruptSegment {
                path: relative,
                segno: earlier,
                segment_blocks_found: blocks,
                detail: if blocks < u64::from(self.segment_blocks()) {
                    " but a later segment is not empty"
                } else {
                    ", more than a segment holds"
                },
            });
        }
        Ok(())
    }

    /// Whole blocks in an open segment file (a trailing partial block is
    /// not counted, as in `mdnblocks`), checked against the segment size.
    pub fn file_blocks(&self, file: &F::File, relative: &str, segno: u32) -> Result<u64> {
        let len = file
            .size()
            .map_err(|err| Error::io("stat", relative, err))?;
        let blocks = len / self.block_bytes();
        if blocks > u64::from(self.segment_blocks()) {
            return Err(Error::CorruptSegment {
                path: relative.to_owned(),
                segno,
                segment_blocks_found: blocks,
                detail: ", more than a segment holds",
            });
        }
        Ok(blocks)
    }

    /// The size of a fork in blocks (PostgreSQL's `mdnblocks`): full
    /// segments then the first partial one. Later segments must be absent
    /// or empty.
    pub fn nblocks(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<BlockNumber> {
        let seg = u64::from(self.segment_blocks());
        let mut segno = 0u32;
        loop {
            let relative = self.seg_path(rel, fork, segno)?;
            let Some(file) = self.open_seg_unchecked(rel, fork, segno)? else {
                if segno == 0 {
                    return Err(Error::NotFound { path: relative });
                }
                return self.total(segno, 0, &relative);
            };
            let blocks = self.file_blocks(&file, &relative, segno)?;
            if blocks < seg {
                self.check_empty_after(rel, fork, segno, blocks)?;
                return self.total(segno, blocks, &relative);
            }
            segno = segno
                .checked_add(1)
                .ok_or_else(|| too_big(relative.clone(), segno, blocks))?;
        }
    }

    fn total(&self, segno: u32, blocks: u64, relative: &str) -> Result<BlockNumber> {
        let total = u64::from(segno) * u64::from(self.segment_blocks()) + blocks;
        if total > u64::from(MAX_BLOCK_NUMBER) + 1 {
            return Err(too_big(relative.to_owned(), segno, blocks));
        }
        Ok(total as BlockNumber)
    }

    /// After a partial segment only empty (inactive) segments may follow.
    fn check_empty_after(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
        blocks: u64,
    ) -> Result<()> {
        let mut later = segno;
        while let Some(next) = later.checked_add(1) {
            later = next;
            let relative = self.seg_path(rel, fork, later)?;
            match self.fs.file_len(&self.full_path(&relative)) {
                Ok(Some(0)) => continue,
                Ok(Some(_)) => {
                    return Err(Error::CorruptSegment {
                        path: self.seg_path(rel, fork, segno)?,
                        segno,
                        segment_blocks_found: blocks,
                        detail: " but a later segment is not empty",
                    })
                }
                Ok(None) => return Ok(()),
                Err(err) => return Err(Error::io("stat", relative, err)),
            }
        }
        Ok(())
    }

    /// Refuses writes on a read-only backend.
    pub fn check_writable(
        &self,
        op: &'static str,
        rel: RelFileLocator,
        fork: ForkNumber,
    ) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::ReadOnly {
                op,
                path: self.relpath(rel, fork)?,
            });
        }
        Ok(())
    }

    /// Checks, in O(1) file operations, that `blocknum` is where the fork
    /// ends, as `extend` requires. On a mismatch the error carries the
    /// actual size.
    pub fn check_at_end(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
    ) -> Result<()> {
        let seg = self.segment_blocks();
        let segno = blocknum / seg;
        let seg_block = u64::from(blocknum % seg);
        let at_end = if seg_block > 0 || segno == 0 {
            // The segment holding `blocknum` must exist with exactly the
            // blocks before it.
            match self.open_seg(rel, fork, segno, false)? {
                Some(file) => {
                    self.file_blocks(&file, &self.seg_path(rel, fork, segno)?, segno)? == seg_block
                }
                None => false,
            }
        } else {
            // A boundary: the previous segment is full, this one is absent
            // or empty.
            let previous_full = match self.open_seg(rel, fork, segno - 1, false)? {
                Some(file) => {
                    self.file_blocks(&file, &self.seg_path(rel, fork, segno - 1)?, segno - 1)?
                        == u64::from(seg)
                }
                None => false,
            };
            previous_full
                && match self.open_seg(rel, fork, segno, false)? {
                    Some(file) => {
                        self.file_blocks(&file, &self.seg_path(rel, fork, segno)?, segno)? == 0
                    }
                    None => true,
                }
        };
        if at_end {
            return Ok(());
        }
        let nblocks = self.nblocks(rel, fork)?;
        Err(Error::WrongBlock {
            op: "extend",
            path: self.relpath(rel, fork)?,
            block: blocknum,
            nblocks,
        })
    }
}

fn too_big(path: String, segno: u32, blocks: u64) -> Error {
    Error::CorruptSegment {
        path,
        segno,
        segment_blocks_found: blocks,
        detail: ", making the fork larger than the largest block number allows",
    }
}

/// Whether `path` is `root` or below it, by components (used in tests and
/// debug assertions).
pub(crate) fn is_under(root: &Path, path: &Path) -> bool {
    path.starts_with(root)
        && path
            .strip_prefix(root)
            .map(|rest| {
                rest.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
            })
            .unwrap_or(false)
}
