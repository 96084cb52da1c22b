//! `writev`, `extend` and `zero_extend`: vectored writes from the caller's
//! buffers, run on Tokio's blocking pool (a write may wait for the device
//! or for dirty-page throttling; it must not stall an async worker).

use std::io::{self, IoSlice};

use smgr_api::{BlockNumber, Error, ForkNumber, PageBuf, RelFileLocator, Result};

use crate::fs::{FileSystem, SegmentFile};
use crate::inner::{Inner, Piece};
use crate::read::MAX_IOVECS;

/// Zero-extends of more blocks than this use `fallocate` rather than
/// writing zeros (PostgreSQL's `mdzeroextend` makes the same choice at 8).
const FALLOCATE_MIN_BLOCKS: usize = 8;

impl<F: FileSystem> Inner<F> {
    /// Writes `bufs` at `first`, which must lie inside the fork.
    pub fn writev_blocking(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        bufs: &[PageBuf],
    ) -> Result<()> {
        // Check every segment is long enough before writing any of them, so
        // a refused write changes nothing. Handles are not kept across the
        // loop: a write over many small segments must not hold more files
        // open than the cache allows.
        for piece in self.pieces(first, bufs.len()) {
            let relative = self.seg_path(rel, fork, piece.segno)?;
            let file = match self.open_seg(rel, fork, piece.segno, false)? {
                Some(file) => file,
                None if piece.segno == 0 => return Err(Error::NotFound { path: relative }),
                None => return Err(self.past_end("write", rel, fork, first)?),
            };
            let blocks = self.file_blocks(&file, &relative, piece.segno)?;
            if blocks < u64::from(piece.seg_block) + piece.count as u64 {
                return Err(self.past_end("write", rel, fork, first)?);
            }
        }
        for piece in self.pieces(first, bufs.len()) {
            let file = self.create_seg(rel, fork, piece.segno)?;
            let slices = &bufs[piece.first_index..piece.first_index + piece.count];
            self.write_piece(rel, fork, &piece, &file, slices)?;
        }
        Ok(())
    }

    /// Appends `bufs` at `first`, which must be the fork's size.
    pub fn extend_blocking(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        bufs: &[PageBuf],
    ) -> Result<()> {
        self.check_at_end(rel, fork, first)?;
        for piece in self.pieces(first, bufs.len()) {
            let file = self.create_seg(rel, fork, piece.segno)?;
            let slices = &bufs[piece.first_index..piece.first_index + piece.count];
            self.write_piece(rel, fork, &piece, &file, slices)?;
        }
        Ok(())
    }

    /// Appends `count` zero blocks at `first`, the fork's size.
    pub fn zero_extend_blocking(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        first: BlockNumber,
        count: BlockNumber,
    ) -> Result<()> {
        self.check_at_end(rel, fork, first)?;
        let bs = self.block_bytes();
        for piece in self.pieces(first, count as usize) {
            let file = self.create_seg(rel, fork, piece.segno)?;
            let offset = u64::from(piece.seg_block) * bs;
            let len = piece.count as u64 * bs;
            // Bytes already past the fork's end (a partial block a power
            // loss left behind) go first: `fallocate` keeps bytes that are
            // there, and the new blocks must be zeros.
            let relative = self.seg_path(rel, fork, piece.segno)?;
            let size = file
                .size()
                .map_err(|err| Error::io("stat", relative.clone(), err))?;
            if size > offset {
                file.set_len(offset)
                    .map_err(|err| Error::io("truncate", relative, err))?;
            }
            if piece.count > FALLOCATE_MIN_BLOCKS {
                match file.allocate(offset, len) {
                    Ok(()) => continue,
                    // Not supported by this file system: write zeros.
                    Err(err) if err.kind() == io::ErrorKind::Unsupported => {}
                    Err(err) => {
                        return Err(Error::io(
                            "fallocate",
                            self.seg_path(rel, fork, piece.segno)?,
                            err,
                        ))
                    }
                }
            }
            self.write_zeros(rel, fork, piece.segno, &file, offset, len)?;
        }
        Ok(())
    }

    /// Opens a segment for writing, creating it if it is past the first
    /// (segment 0 is made by `create` only).
    fn create_seg(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
    ) -> Result<std::sync::Arc<F::File>> {
        match self.open_seg(rel, fork, segno, segno > 0)? {
            Some(file) => Ok(file),
            None => Err(Error::NotFound {
                path: self.relpath(rel, fork)?,
            }),
        }
    }

    fn write_piece(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        piece: &Piece,
        file: &F::File,
        bufs: &[PageBuf],
    ) -> Result<()> {
        let bs = self.block_bytes();
        let total = bufs.len() as u64 * bs;
        let base = u64::from(piece.seg_block) * bs;
        let mut done = 0u64;
        while done < total {
            let index = (done / bs) as usize;
            let within = (done % bs) as usize;
            let end = (index + MAX_IOVECS).min(bufs.len());
            let iovecs: Vec<IoSlice<'_>> = bufs[index..end]
                .iter()
                .enumerate()
                .map(|(i, buf)| IoSlice::new(if i == 0 { &buf[within..] } else { buf }))
                .collect();
            match file.write_at(&iovecs, base + done) {
                Ok(0) => {
                    return Err(Error::io(
                        "write",
                        self.seg_path(rel, fork, piece.segno)?,
                        io::Error::from(io::ErrorKind::WriteZero),
                    ))
                }
                Ok(n) => done += n as u64,
                Err(err) => {
                    return Err(Error::io(
                        "write",
                        self.seg_path(rel, fork, piece.segno)?,
                        err,
                    ))
                }
            }
        }
        Ok(())
    }

    fn write_zeros(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
        file: &F::File,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        const CHUNK: u64 = 256 * 1024;
        let zeros = vec![0u8; CHUNK.min(len) as usize];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK) as usize;
            match file.write_at(&[IoSlice::new(&zeros[..n])], offset + done) {
                Ok(0) => {
                    return Err(Error::io(
                        "write",
                        self.seg_path(rel, fork, segno)?,
                        io::Error::from(io::ErrorKind::WriteZero),
                    ))
                }
                Ok(written) => done += written as u64,
                Err(err) => return Err(Error::io("write", self.seg_path(rel, fork, segno)?, err)),
            }
        }
        Ok(())
    }

    fn past_end(
        &self,
        op: &'static str,
        rel: RelFileLocator,
        fork: ForkNumber,
        block: BlockNumber,
    ) -> Result<Error> {
        Ok(Error::WrongBlock {
            op,
            path: self.relpath(rel, fork)?,
            block,
            nblocks: self.nblocks(rel, fork)?,
        })
    }
}
