//! Frames decompressed straight into the caller's pages.

use std::cell::RefCell;
use std::ops::Range;

use smgr_api::{Error, Result};
use xxhash_rust::xxh64::Xxh64;
use zstd::zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer, ResetDirective};

thread_local! {
    /// One decompression context per thread, reused by every frame
    /// decompressed on it: making a context costs about a third of
    /// decompressing a 128 KiB frame (BENCHMARKS.md), and a read is often
    /// one frame.
    static CONTEXT: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// Scratch for the bytes of a frame outside the run being read.
const SCRATCH: usize = 32 << 10;

/// Decompresses the frames of one segment object, one at a time, into
/// whatever slices the caller hands it (the pool's page buffers): libzstd
/// writes the bytes there itself, so no frame is decompressed into a
/// buffer of ours and copied again. Bytes of a frame the caller does not
/// want (a run that starts or ends inside a frame) are still decoded, into
/// a small scratch area, because the frame's checksum covers all of it.
///
/// Errors are [`Error::CorruptFrame`] naming the key, the frame and the
/// blocks it holds; the pages handed in then hold unspecified bytes.
pub struct FrameDecompressor {
    key: String,
    /// To name blocks in errors: the block size, and the fork block number
    /// of the segment's first block.
    block_bytes: u64,
    first_block: u64,
    /// log2 of the largest window libzstd may allocate for a frame.
    window_log_max: u32,
    /// Refuse frames that carry no checksum at all.
    require_checksum: bool,
    scratch: Vec<u8>,
}

/// The magic number every zstd frame starts with.
const ZSTD_FRAME_MAGIC: u32 = 0xFD2F_B528;

/// Whether `frame` is a zstd frame whose header says it ends with no
/// checksum of its content (`Content_Checksum_flag`, bit 2 of the frame
/// header descriptor, the byte after the magic number). Anything that is
/// not a zstd frame is left for libzstd to refuse in its own words.
fn lacks_own_checksum(frame: &[u8]) -> bool {
    frame.len() > 4 && frame[..4] == ZSTD_FRAME_MAGIC.to_le_bytes() && frame[4] & 0x04 == 0
}

impl FrameDecompressor {
    /// A decompressor for the frames of object `key`, a segment whose first
    /// block is `first_block` of its fork, in blocks of `block_bytes`.
    ///
    /// `max_frame_bytes` (the largest frame the seek table was allowed)
    /// bounds the memory a frame's header can make libzstd allocate: the
    /// window may be no larger than that, or 8 MiB, whichever is more (a
    /// frame written without its content size, as streaming writers do,
    /// asks for a window by level, up to 8 MiB at level 19).
    pub fn new(key: &str, block_bytes: u64, first_block: u64, max_frame_bytes: u64) -> Self {
        let log2 = u64::BITS - max_frame_bytes.max(1).saturating_sub(1).leading_zeros();
        FrameDecompressor {
            key: key.to_owned(),
            block_bytes: block_bytes.max(1),
            first_block,
            window_log_max: log2.clamp(23, 30),
            require_checksum: false,
            scratch: Vec::new(),
        }
    }

    /// The same refusing (`on`) or accepting frames with no checksum at
    /// all, neither their own nor the seek table's. Other writers may
    /// leave both out; such a frame's damage can then decode to wrong
    /// bytes that only page checksums would catch.
    pub fn require_checksum(mut self, on: bool) -> Self {
        self.require_checksum = on;
        self
    }

    /// The error for frame `index` (decompressed bytes `logical` of the
    /// segment).
    fn error(&self, index: usize, logical: &Range<u64>, what: String) -> Error {
        Error::CorruptFrame {
            key: self.key.clone(),
            frame: index,
            first_block: self.first_block + logical.start / self.block_bytes,
            last_block: self.first_block + logical.end.saturating_sub(1) / self.block_bytes,
            detail: what,
        }
    }

    /// Decompresses frame `index`, its bytes `frame`, which the seek table
    /// says holds decompressed bytes `logical` of the segment. Its bytes
    /// `keep` (a part of `logical`) go to `out`, slices in order whose
    /// lengths add up to `keep`'s; the rest is decoded and dropped. The
    /// frame must decode to exactly `logical`'s length and pass its own
    /// checksum (if it has one: libzstd checks it) and `checksum`, the seek
    /// table's (if it has one: the low 32 bits of the XXH64 of every byte
    /// of the frame, checked here).
    pub fn decompress(
        &mut self,
        index: usize,
        frame: &[u8],
        logical: Range<u64>,
        keep: Range<u64>,
        checksum: Option<u32>,
        out: &mut [&mut [u8]],
    ) -> Result<()> {
        let wanted: usize = out.iter().map(|s| s.len()).sum();
        if keep.start < logical.start
            || keep.end > logical.end
            || keep.start > keep.end
            || wanted as u64 != keep.end - keep.start
        {
            return Err(self.error(
                index,
                &logical,
                format!(
                    "was asked for bytes {}..{} of {}..{} into buffers of {wanted}",
                    keep.start, keep.end, logical.start, logical.end
                ),
            ));
        }
        if self.require_checksum && checksum.is_none() && lacks_own_checksum(frame) {
            return Err(self.error(
                index,
                &logical,
                "has no checksum, neither its own nor the seek table's, and the reader \
                 requires one"
                    .to_owned(),
            ));
        }
        if self.scratch.len() < SCRATCH && keep != logical {
            self.scratch.resize(SCRATCH, 0);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = CONTEXT.with(|cell| {
            let mut slot = cell.borrow_mut();
            let dctx = slot.get_or_insert_with(DCtx::create);
            let mut state = Frame {
                dctx,
                input: InBuffer::around(frame),
                written: 0,
                finished: false,
                hasher: checksum.map(|_| Xxh64::new(0)),
            };
            state
                .start(self.window_log_max)
                .and_then(|()| state.discard(&mut scratch, keep.start - logical.start))
                .and_then(|()| out.iter_mut().try_for_each(|slice| state.fill(slice)))
                .and_then(|()| state.discard(&mut scratch, logical.end - keep.end))
                .and_then(|()| state.finish(frame.len(), logical.end - logical.start, checksum))
        });
        self.scratch = scratch;
        result.map_err(|what| self.error(index, &logical, what))
    }
}

/// The decoding of one frame; errors say what is wrong with it.
struct Frame<'a, 'f> {
    dctx: &'a mut DCtx<'static>,
    input: InBuffer<'f>,
    written: u64,
    finished: bool,
    /// XXH64 of the bytes decoded so far, when the seek table has a
    /// checksum for the frame.
    hasher: Option<Xxh64>,
}

impl Frame<'_, '_> {
    fn start(&mut self, window_log_max: u32) -> std::result::Result<(), String> {
        self.dctx
            .reset(ResetDirective::SessionOnly)
            .map_err(zstd_error)?;
        self.dctx
            .set_parameter(DParameter::WindowLogMax(window_log_max))
            .map_err(zstd_error)
            .map(drop)
    }

    /// Decodes the next `len` bytes of the frame into `scratch`, dropped.
    fn discard(&mut self, scratch: &mut [u8], mut len: u64) -> std::result::Result<(), String> {
        while len > 0 {
            let n = len.min(scratch.len() as u64) as usize;
            self.fill(&mut scratch[..n])?;
            len -= n as u64;
        }
        Ok(())
    }

    /// Decodes the next `slice.len()` bytes of the frame into `slice`.
    fn fill(&mut self, slice: &mut [u8]) -> std::result::Result<(), String> {
        let mut filled = 0;
        while filled < slice.len() {
            if self.finished {
                return Err(format!(
                    "decompresses to {} bytes, fewer than its seek table says",
                    self.written
                ));
            }
            let mut output = OutBuffer::around(&mut slice[filled..]);
            let before = self.input.pos;
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut self.input)
                .map_err(zstd_error)?;
            let n = output.pos();
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&slice[filled..filled + n]);
            }
            filled += n;
            self.written += n as u64;
            self.finished = hint == 0;
            if n == 0 && self.input.pos == before && !self.finished {
                return Err(self.truncated());
            }
        }
        Ok(())
    }

    /// After every byte is out, the frame must end (libzstd checks its
    /// checksum as it reads the end), with nothing after it.
    fn finish(
        &mut self,
        frame_len: usize,
        expected: u64,
        checksum: Option<u32>,
    ) -> std::result::Result<(), String> {
        let mut extra = [0u8; 1];
        while !self.finished {
            let mut output = OutBuffer::around(&mut extra[..]);
            let before = self.input.pos;
            let hint = self
                .dctx
                .decompress_stream(&mut output, &mut self.input)
                .map_err(zstd_error)?;
            if output.pos() > 0 {
                return Err(format!(
                    "decompresses to more than the {expected} bytes its seek table says"
                ));
            }
            self.finished = hint == 0;
            if !self.finished && self.input.pos == before {
                return Err(self.truncated());
            }
        }
        if self.input.pos != frame_len {
            return Err(format!(
                "ends after {} of its {frame_len} bytes",
                self.input.pos
            ));
        }
        if let (Some(hasher), Some(want)) = (&self.hasher, checksum) {
            let got = hasher.digest() as u32;
            if got != want {
                return Err(format!(
                    "fails its seek table checksum: {got:#010x}, the table says {want:#010x}"
                ));
            }
        }
        Ok(())
    }

    fn truncated(&self) -> String {
        format!(
            "is cut short: its {} bytes end mid-frame",
            self.input.src.len()
        )
    }
}

fn zstd_error(code: usize) -> String {
    format!(
        "does not decompress: {}",
        zstd::zstd_safe::get_error_name(code)
    )
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
        let mut d = FrameDecompressor::new("k", 8192, 0, 1 << 20);
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
                    None,
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
        let mut d = FrameDecompressor::new("base/5/1.1.zst", 8192, 131072, 1 << 20);
        let mut run = |frame: &[u8], logical: Range<u64>| {
            let mut out = [&mut page[..(logical.end - logical.start) as usize]];
            d.decompress(1, frame, logical.clone(), logical, None, &mut out)
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

    /// A frame whose header asks for a window bigger than the reader
    /// allows (here 128 MiB, written by a streaming encoder that did not
    /// know the size) is refused, not allocated.
    #[test]
    fn a_frame_cannot_choose_a_huge_window() {
        let data = segment(8192 * 4);
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(27).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &data).unwrap();
        let frame = encoder.finish().unwrap();
        let logical = 0..data.len() as u64;
        let mut out = vec![0u8; data.len()];
        let mut strict = FrameDecompressor::new("k", 8192, 0, 1 << 20);
        let err = strict
            .decompress(
                0,
                &frame,
                logical.clone(),
                logical.clone(),
                None,
                &mut [&mut out[..]],
            )
            .unwrap_err();
        assert!(err.to_string().contains("frame 0"), "{err}");
        let mut lenient = FrameDecompressor::new("k", 8192, 0, 1 << 27);
        lenient
            .decompress(
                0,
                &frame,
                logical.clone(),
                logical,
                None,
                &mut [&mut out[..]],
            )
            .unwrap();
        assert_eq!(out, data);
    }

    /// Frames as other writers make them (no checksum inside, one in the
    /// seek table): the table's checksum is checked, over every byte of the
    /// frame, also those outside the run read.
    #[test]
    fn the_seek_tables_checksums_are_checked() {
        // Incompressible, so zstd stores it raw and a flipped byte still
        // decodes: only a checksum can tell.
        let data = smgr_api::testkit::pattern_page(4 * 8192, 1, 2);
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        let sum = xxhash_rust::xxh64::xxh64(&data, 0) as u32;
        let logical = 0..data.len() as u64;
        let keep = 8192..16384;
        let mut out = vec![0u8; 8192];
        let mut d = FrameDecompressor::new("k", 8192, 0, 1 << 20);
        d.decompress(
            0,
            &frame,
            logical.clone(),
            keep.clone(),
            Some(sum),
            &mut [&mut out[..]],
        )
        .unwrap();
        assert_eq!(out, data[8192..16384]);
        let mut flipped = frame.clone();
        let at = flipped.len() - 100; // in the last page, outside the run
        flipped[at] ^= 0x01;
        assert!(zstd::bulk::decompress(&flipped, data.len()).is_ok());
        let err = d
            .decompress(
                0,
                &flipped,
                logical.clone(),
                keep,
                Some(sum),
                &mut [&mut out[..]],
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("seek table checksum") && err.to_string().contains("frame 0"),
            "{err}"
        );
    }

    /// A frame with no checksum anywhere is accepted unless checksums are
    /// required; one with its own or the table's passes either way.
    #[test]
    fn frames_without_any_checksum_can_be_refused() {
        let data = smgr_api::testkit::pattern_page(2 * 8192, 1, 2);
        let bare = zstd::bulk::compress(&data, 3).unwrap();
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.include_checksum(true).unwrap();
        let own = c.compress(&data).unwrap();
        assert!(lacks_own_checksum(&bare) && !lacks_own_checksum(&own));
        let sum = xxhash_rust::xxh64::xxh64(&data, 0) as u32;
        let logical = 0..data.len() as u64;
        let mut out = vec![0u8; data.len()];
        let mut run = |d: &mut FrameDecompressor, frame: &[u8], table: Option<u32>| {
            d.decompress(
                3,
                frame,
                logical.clone(),
                logical.clone(),
                table,
                &mut [&mut out[..]],
            )
        };
        let mut lenient = FrameDecompressor::new("k", 8192, 64, 1 << 20);
        run(&mut lenient, &bare, None).unwrap();
        let mut strict = FrameDecompressor::new("k", 8192, 64, 1 << 20).require_checksum(true);
        run(&mut strict, &own, None).unwrap();
        run(&mut strict, &bare, Some(sum)).unwrap();
        let err = run(&mut strict, &bare, None).unwrap_err().to_string();
        assert!(
            err.contains("no checksum") && err.contains("frame 3") && err.contains("blocks 64"),
            "{err}"
        );
    }
}
