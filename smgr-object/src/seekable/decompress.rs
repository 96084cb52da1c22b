//! Frames decompressed straight into the caller's pages.

use std::ops::Range;

use smgr_api::{Error, Result};
use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer, ResetDirective};

/// Decompresses the frames of one segment object, one at a time, into
/// whatever slices the caller hands it (the pool's page buffers): libzstd
/// writes the bytes there itself, so no frame is decompressed into a
/// buffer of ours and copied again. Bytes of a frame the caller does not
/// want (a run that starts or ends inside a frame) are still decoded, into
/// a small scratch area, because the frame's checksum covers all of it.
///
/// Errors are [`Error::CorruptObject`] naming the key, the frame and the
/// blocks it holds; the pages handed in then hold unspecified bytes.
pub struct FrameDecompressor {
    dctx: DCtx<'static>,
    key: String,
    /// To name blocks in errors: the block size, and the fork block number
    /// of the segment's first block.
    block_bytes: u64,
    first_block: u64,
    scratch: Vec<u8>,
}

impl FrameDecompressor {
    /// A decompressor for the frames of object `key`, a segment whose first
    /// block is `first_block` of its fork, in blocks of `block_bytes`.
    pub fn new(key: &str, block_bytes: u64, first_block: u64) -> Self {
        FrameDecompressor {
            dctx: DCtx::create(),
            key: key.to_owned(),
            block_bytes: block_bytes.max(1),
            first_block,
            scratch: Vec::new(),
        }
    }

    /// The error for frame `index` (decompressed bytes `logical` of the
    /// segment).
    pub fn error(&self, index: usize, logical: &Range<u64>, what: String) -> Error {
        let first = self.first_block + logical.start / self.block_bytes;
        let last = self.first_block + logical.end.saturating_sub(1) / self.block_bytes;
        Error::CorruptObject {
            key: self.key.clone(),
            detail: format!("frame {index} (blocks {first}..={last}) {what}"),
        }
    }

    /// Decompresses frame `index`, its bytes `frame`, which the seek table
    /// says holds decompressed bytes `logical` of the segment. Its bytes
    /// `keep` (a part of `logical`) go to `out`, slices in order whose
    /// lengths add up to `keep`'s; the rest is decoded and dropped. The
    /// frame must decode to exactly `logical`'s length and pass its
    /// checksum.
    pub fn decompress(
        &mut self,
        index: usize,
        frame: &[u8],
        logical: Range<u64>,
        keep: Range<u64>,
        out: &mut [&mut [u8]],
    ) -> Result<()> {
        debug_assert!(logical.start <= keep.start && keep.end <= logical.end);
        let wanted: usize = out.iter().map(|s| s.len()).sum();
        if wanted as u64 != keep.end - keep.start {
            return Err(self.error(
                index,
                &logical,
                format!(
                    "was asked for {} bytes into buffers of {wanted}",
                    keep.end - keep.start
                ),
            ));
        }
        self.dctx
            .reset(ResetDirective::SessionOnly)
            .map_err(|code| self.zstd_error(index, &logical, frame, code))?;
        let mut input = InBuffer::around(frame);
        let mut written = 0u64;
        let mut finished = false;
        // Before the kept bytes, the kept bytes, after them.
        self.discard(
            index,
            &logical,
            frame,
            &mut input,
            keep.start - logical.start,
            &mut written,
            &mut finished,
        )?;
        for slice in out.iter_mut() {
            self.fill(
                index,
                &logical,
                frame,
                &mut input,
                slice,
                &mut written,
                &mut finished,
            )?;
        }
        self.discard(
            index,
            &logical,
            frame,
            &mut input,
            logical.end - keep.end,
            &mut written,
            &mut finished,
        )?;
        // Every byte is out; the frame must end here (libzstd checks its
        // checksum as it reads the end), with nothing after it.
        let mut extra = [0u8; 1];
        while !finished {
            let mut output = OutBuffer::around(&mut extra[..]);
            let before = input.pos;
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut input)
                .map_err(|code| self.zstd_error(index, &logical, frame, code))?;
            if output.pos() > 0 {
                return Err(self.error(
                    index,
                    &logical,
                    format!(
                        "decompresses to more than the {} bytes its seek table says",
                        logical.end - logical.start
                    ),
                ));
            }
            finished = hint == 0;
            if !finished && input.pos == before {
                return Err(self.truncated(index, &logical, frame));
            }
        }
        if input.pos != frame.len() {
            return Err(self.error(
                index,
                &logical,
                format!("ends after {} of its {} bytes", input.pos, frame.len()),
            ));
        }
        Ok(())
    }

    /// Decodes the next `len` bytes of the frame into the scratch area.
    #[allow(clippy::too_many_arguments)] // the state of one `decompress`
    fn discard(
        &mut self,
        index: usize,
        logical: &Range<u64>,
        frame: &[u8],
        input: &mut InBuffer<'_>,
        mut len: u64,
        written: &mut u64,
        finished: &mut bool,
    ) -> Result<()> {
        const SCRATCH: usize = 32 << 10;
        if len > 0 && self.scratch.len() < SCRATCH {
            self.scratch.resize(SCRATCH, 0);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = (|| {
            while len > 0 {
                let n = len.min(SCRATCH as u64) as usize;
                self.fill(
                    index,
                    logical,
                    frame,
                    input,
                    &mut scratch[..n],
                    written,
                    finished,
                )?;
                len -= n as u64;
            }
            Ok(())
        })();
        self.scratch = scratch;
        result
    }

    /// Decodes the next `slice.len()` bytes of the frame into `slice`.
    #[allow(clippy::too_many_arguments)] // the state of one `decompress`
    fn fill(
        &mut self,
        index: usize,
        logical: &Range<u64>,
        frame: &[u8],
        input: &mut InBuffer<'_>,
        slice: &mut [u8],
        written: &mut u64,
        finished: &mut bool,
    ) -> Result<()> {
        let mut filled = 0;
        while filled < slice.len() {
            if *finished {
                return Err(self.error(
                    index,
                    logical,
                    format!(
                        "decompresses to {} bytes, its seek table says {}",
                        *written,
                        logical.end - logical.start
                    ),
                ));
            }
            let mut output = OutBuffer::around(&mut slice[filled..]);
            let before = input.pos;
            let hint = self
                .dctx
                .decompress_stream(&mut output, input)
                .map_err(|code| self.zstd_error(index, logical, frame, code))?;
            let n = output.pos();
            filled += n;
            *written += n as u64;
            *finished = hint == 0;
            if n == 0 && input.pos == before && !*finished {
                return Err(self.truncated(index, logical, frame));
            }
        }
        Ok(())
    }

    fn truncated(&self, index: usize, logical: &Range<u64>, frame: &[u8]) -> Error {
        self.error(
            index,
            logical,
            format!("is cut short: its {} bytes end mid-frame", frame.len()),
        )
    }

    fn zstd_error(&self, index: usize, logical: &Range<u64>, frame: &[u8], code: usize) -> Error {
        self.error(
            index,
            logical,
            format!(
                "({} bytes) does not decompress: {}",
                frame.len(),
                zstd::zstd_safe::get_error_name(code)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::{compress, SeekTable, Tail};

    use crate::seekable::test_segment as segment;

    fn table(object: &[u8]) -> SeekTable {
        match SeekTable::parse_tail("k", object, object.len() as u64, 1 << 20).unwrap() {
            Tail::Table(table) => table,
            other => panic!("{other:?}"),
        }
    }

    /// Runs that start and end inside frames, across several frames, into
    /// pages of 8 KiB: exactly the segment's bytes.
    #[test]
    fn any_run_lands_in_its_pages() {
        let data = segment(16 * 8192 * 3 + 8192 * 5);
        let object = compress(&data, 16 * 8192, 3).unwrap();
        let table = table(&object);
        let mut d = FrameDecompressor::new("k", 8192, 0);
        for (first, count) in [
            (0usize, 1usize),
            (3, 20),
            (16, 16),
            (15, 2),
            (40, 13),
            (0, 53),
        ] {
            let run = (first * 8192) as u64..((first + count) * 8192) as u64;
            let mut pages = vec![vec![0u8; 8192]; count];
            let mut slices: Vec<&mut [u8]> = pages.iter_mut().map(|p| &mut p[..]).collect();
            let mut at = 0;
            for i in table.frames_for(run.clone()) {
                let logical = table.decompressed_range(i..i + 1);
                let keep = logical.start.max(run.start)..logical.end.min(run.end);
                let n = ((keep.end - keep.start) / 8192) as usize;
                let c = table.compressed_range(i..i + 1);
                d.decompress(
                    i,
                    &object[c.start as usize..c.end as usize],
                    logical,
                    keep,
                    &mut slices[at..at + n],
                )
                .unwrap();
                at += n;
            }
            assert_eq!(at, count);
            let got: Vec<u8> = pages.concat();
            assert_eq!(
                got,
                data[run.start as usize..run.end as usize],
                "{first}+{count}"
            );
        }
    }

    #[test]
    fn a_damaged_or_mislabelled_frame_is_an_error_naming_its_blocks() {
        let data = segment(8192 * 16);
        let object = compress(&data, 8 * 8192, 3).unwrap();
        let table = table(&object);
        let c = table.compressed_range(1..2);
        let good = object[c.start as usize..c.end as usize].to_vec();
        let logical = table.decompressed_range(1..2);
        let mut page = vec![0u8; 8 * 8192];
        let mut d = FrameDecompressor::new("base/5/1.1.zst", 8192, 131072);
        let mut run = |frame: &[u8], logical: Range<u64>| {
            let mut out = [&mut page[..(logical.end - logical.start) as usize]];
            d.decompress(1, frame, logical.clone(), logical, &mut out)
                .unwrap_err()
                .to_string()
        };
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        let cut = &good[..good.len() - 3];
        let short = logical.start..logical.end - 8192;
        for text in [
            run(&flipped, logical.clone()),
            run(cut, logical.clone()),
            run(&good, short),
        ] {
            assert!(
                text.contains("base/5/1.1.zst")
                    && text.contains("frame 1")
                    && text.contains("blocks 131080..="),
                "{text}"
            );
        }
    }
}
