//! Rewriting a compressed segment: only the frames a write touches are
//! decompressed and compressed again; every other frame keeps its
//! compressed bytes, passed on without a copy.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use smgr_api::{Error, Result};

use super::compress::FrameCompressor;
use super::decompress::FrameDecompressor;
use super::SeekTable;

/// The pages a write puts into a segment: `count` pages of `page_bytes`
/// from segment byte `start`; `fill(i, page)` writes page `i`.
pub struct Patch<'a> {
    /// Segment byte where the first page goes.
    pub start: u64,
    /// Pages written.
    pub count: usize,
    /// Bytes of a page.
    pub page_bytes: usize,
    /// Writes page `i` of the patch into the buffer given.
    pub fill: &'a (dyn Fn(usize, &mut [u8]) + Sync),
}

impl Patch<'_> {
    fn range(&self) -> Range<u64> {
        self.start..self.start + (self.count * self.page_bytes) as u64
    }

    /// Writes the patch's bytes that fall in `logical` (segment bytes)
    /// into `buf`, which holds exactly those segment bytes.
    pub fn apply_to(&self, logical: &Range<u64>, buf: &mut [u8]) {
        let bs = self.page_bytes as u64;
        let range = self.range();
        let (lo, hi) = (logical.start.max(range.start), logical.end.min(range.end));
        if lo >= hi {
            return;
        }
        let mut scratch = Vec::new();
        for i in ((lo - range.start) / bs)..((hi - range.start).div_ceil(bs)) {
            let page = range.start + i * bs..range.start + (i + 1) * bs;
            let at = |b: u64| (b - logical.start) as usize;
            if page.start >= logical.start && page.end <= logical.end {
                (self.fill)(i as usize, &mut buf[at(page.start)..at(page.end)]);
            } else {
                // A page across a frame boundary (frames of other tools
                // need not be whole pages).
                scratch.resize(self.page_bytes, 0);
                (self.fill)(i as usize, &mut scratch);
                let (a, b) = (page.start.max(logical.start), page.end.min(logical.end));
                let from = (a - page.start) as usize..(b - page.start) as usize;
                buf[at(a)..at(b)].copy_from_slice(&scratch[from]);
            }
        }
    }
}

/// What a rewrite starts from and how it lays out new frames. It owns
/// what it reads (all cheap to clone), so that a big rewrite can run on
/// the blocking pool.
pub struct Rewrite {
    /// The object being rewritten, for errors.
    pub key: String,
    /// The old object's seek table (empty for a new object).
    pub old: Arc<SeekTable>,
    /// The old object's bytes from offset 0 up to at least the end of the
    /// last frame the new segment keeps.
    pub old_bytes: Bytes,
    /// Decompressed bytes of frames created past the old end.
    pub frame_bytes: usize,
    /// zstd level of frames compressed now.
    pub level: i32,
    /// Block size, to name blocks in errors.
    pub block_bytes: u64,
    /// Fork block number of the segment's first block, likewise.
    pub first_block: u64,
    /// The largest frame the old object may have (bounds decompression
    /// memory; see [`FrameDecompressor::new`]).
    pub max_frame_bytes: u64,
    /// Refuse old frames with no checksum at all before compressing them
    /// again (see [`FrameDecompressor::require_checksum`]): a new
    /// checksum over wrongly decoded bytes would hide the damage.
    pub require_checksums: bool,
}

/// The frames of a rewritten segment of `new_len` bytes: the old frame
/// boundaries where the old data reaches (the last one cut at `new_len`),
/// then a short old last frame grown up to `frame_bytes`, then frames of
/// `frame_bytes`.
pub fn layout(old: &SeekTable, frame_bytes: usize, new_len: u64) -> Vec<Range<u64>> {
    let frame_bytes = frame_bytes.max(1) as u64;
    let mut frames: Vec<Range<u64>> = Vec::new();
    for i in 0..old.frames().len() {
        let d = old.decompressed_range(i..i + 1);
        if d.start >= new_len {
            break;
        }
        frames.push(d.start..d.end.min(new_len));
    }
    let mut end = frames.last().map_or(0, |f| f.end);
    if end < new_len {
        if let Some(last) = frames.last_mut() {
            if last.end - last.start < frame_bytes {
                last.end = (last.start + frame_bytes).min(new_len);
                end = last.end;
            }
        }
    }
    while end < new_len {
        let next = (end + frame_bytes).min(new_len);
        frames.push(end..next);
        end = next;
    }
    frames
}

impl Rewrite {
    /// Whether new frame `i`, at segment bytes `logical`, is old frame `i`
    /// unchanged, so its compressed bytes are kept: the patch (segment
    /// bytes `touched`) misses it and its extent is the same.
    fn keeps(&self, i: usize, logical: &Range<u64>, touched: &Range<u64>) -> bool {
        let overlaps = touched.start < logical.end && logical.start < touched.end;
        !overlaps
            && i < self.old.frames().len()
            && self.old.decompressed_range(i..i + 1) == *logical
    }

    /// Bytes `apply(new_len, patch)` compresses: those of the frames it
    /// does not keep. Says whether a rewrite is worth moving off an async
    /// worker.
    pub fn bytes_to_compress(&self, new_len: u64, patch: Option<&Patch<'_>>) -> u64 {
        let touched = patch.map_or(0..0, Patch::range);
        layout(&self.old, self.frame_bytes, new_len)
            .iter()
            .enumerate()
            .filter(|(i, logical)| !self.keeps(*i, logical, &touched))
            .map(|(_, logical)| logical.end - logical.start)
            .sum()
    }

    /// The new object, as chunks to PUT, and its seek table: the segment
    /// cut or grown to `new_len` bytes (zeros where neither the old data
    /// nor the patch reach) with `patch` written over it. A frame is
    /// compressed again only if the patch touches it or its extent
    /// changed; the others are the old object's bytes, checked by nothing
    /// here (reads check them).
    pub fn apply(
        &self,
        new_len: u64,
        patch: Option<&Patch<'_>>,
    ) -> Result<(Vec<Bytes>, SeekTable)> {
        let touched = patch.map_or(0..0, Patch::range);
        let mut compressor = FrameCompressor::new(self.frame_bytes, self.level)?;
        let mut decompressor = FrameDecompressor::new(
            &self.key,
            self.block_bytes,
            self.first_block,
            self.max_frame_bytes,
        )
        .require_checksum(self.require_checksums);
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut kept = Vec::new();
        let mut buf = Vec::new();
        for (i, logical) in layout(&self.old, self.frame_bytes, new_len)
            .into_iter()
            .enumerate()
        {
            if self.keeps(i, &logical, &touched) {
                let c = self.old_frame(i)?;
                chunks.push(self.old_bytes.slice(c.start as usize..c.end as usize));
                kept.push(self.old.frames()[i]);
                continue;
            }
            buf.clear();
            buf.resize((logical.end - logical.start) as usize, 0);
            let covered = touched.start <= logical.start && logical.end <= touched.end;
            let old_logical =
                (i < self.old.frames().len()).then(|| self.old.decompressed_range(i..i + 1));
            if let Some(old_logical) = old_logical.filter(|_| !covered) {
                // The part of the old frame still in the segment (not
                // needed when the patch covers the frame: then a damaged
                // old frame can be overwritten).
                let c = self.old_frame(i)?;
                let keep = old_logical.start..old_logical.end.min(logical.end);
                let n = (keep.end - keep.start) as usize;
                decompressor.decompress(
                    i,
                    &self.old_bytes[c.start as usize..c.end as usize],
                    old_logical,
                    keep,
                    self.old.frames()[i].checksum,
                    &mut [&mut buf[..n]],
                )?;
            }
            if let Some(patch) = patch {
                patch.apply_to(&logical, &mut buf);
            }
            let (frame, mut entry) = compressor.compress_frame(&buf)?;
            if self.old.has_checksums() {
                // Keep the table's checksums for every frame.
                entry.checksum = Some(xxhash_rust::xxh64::xxh64(&buf, 0) as u32);
            }
            chunks.push(Bytes::from(frame));
            kept.push(entry);
        }
        let table = SeekTable::new(kept);
        chunks.push(Bytes::from(table.to_bytes()));
        Ok((chunks, table))
    }

    /// Where old frame `i` is in `old_bytes`.
    fn old_frame(&self, i: usize) -> Result<Range<u64>> {
        let c = self.old.compressed_range(i..i + 1);
        if c.end > self.old_bytes.len() as u64 {
            return Err(Error::CorruptObject {
                key: self.key.clone(),
                detail: format!(
                    "frame {i} ends at byte {} but only {} bytes of the object were read",
                    c.end,
                    self.old_bytes.len()
                ),
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::{compress_with_table, SeekTable, Tail};

    const BS: usize = 1024;
    const FRAME: usize = 4 * BS;

    fn segment(blocks: usize, seed: u8) -> Vec<u8> {
        (0..blocks * BS)
            .map(|i| ((i / 5) as u8).wrapping_mul(seed) ^ (i % 241) as u8)
            .collect()
    }

    fn rewrite_of(
        key: &str,
        old: &SeekTable,
        old_bytes: &Bytes,
        frame_bytes: usize,
        level: i32,
    ) -> Rewrite {
        Rewrite {
            key: key.to_owned(),
            old: Arc::new(old.clone()),
            old_bytes: old_bytes.clone(),
            frame_bytes,
            level,
            block_bytes: BS as u64,
            first_block: 0,
            max_frame_bytes: 1 << 20,
            require_checksums: false,
        }
    }

    fn decompress_all(object: &[u8]) -> Vec<u8> {
        zstd::stream::decode_all(object).unwrap()
    }

    fn parse(object: &[u8]) -> SeekTable {
        match SeekTable::parse_tail("k", object, object.len() as u64, FRAME as u64).unwrap() {
            Tail::Table(t) => t,
            other => panic!("{other:?}"),
        }
    }

    /// Writes, extensions (from a partial last frame and from a full one)
    /// and truncations give the same bytes as doing them on the plain
    /// segment, and keep the compressed bytes of every frame they do not
    /// touch.
    #[test]
    fn only_touched_frames_are_compressed_again() {
        let old_data = segment(10, 7); // frames of 4, 4, 2 blocks
        let (old_object, old_table) = compress_with_table(&old_data, FRAME, 3).unwrap();
        let old_bytes = Bytes::from(old_object.clone());
        let rewrite = rewrite_of("k", &old_table, &old_bytes, FRAME, 3);
        let new_pages = segment(9, 31);
        let fill =
            |i: usize, page: &mut [u8]| page.copy_from_slice(&new_pages[i * BS..(i + 1) * BS]);
        // (new length in blocks, patch start block, patch blocks, frames kept)
        for (blocks, start, count, kept) in [
            (10, 5, 1, vec![0, 2]),  // one block inside frame 1
            (10, 3, 2, vec![2]),     // across frames 0 and 1
            (13, 10, 3, vec![0, 1]), // extend from the partial frame 2
            (16, 10, 6, vec![0, 1]), // extend past it into a new frame
            (7, 0, 0, vec![0]),      // truncate inside frame 1
            (8, 0, 0, vec![0, 1]),   // truncate at a frame boundary
            (0, 0, 0, vec![]),       // truncate to nothing
        ] {
            let patch = Patch {
                start: (start * BS) as u64,
                count,
                page_bytes: BS,
                fill: &fill,
            };
            let (chunks, table) = rewrite
                .apply((blocks * BS) as u64, (count > 0).then_some(&patch))
                .unwrap();
            let object: Vec<u8> = chunks.concat();
            let mut expected = old_data.clone();
            expected.resize(blocks * BS, 0);
            expected[start * BS..(start + count) * BS].copy_from_slice(&new_pages[..count * BS]);
            assert_eq!(
                decompress_all(&object),
                expected,
                "{blocks} {start} {count}"
            );
            assert_eq!(parse(&object), table);
            for &i in &kept {
                let old = old_table.compressed_range(i..i + 1);
                let new = table.compressed_range(i..i + 1);
                assert_eq!(
                    object[new.start as usize..new.end as usize],
                    old_object[old.start as usize..old.end as usize],
                    "frame {i} should be kept ({blocks} {start} {count})"
                );
            }
            // What it said it would compress: every frame it did not keep.
            let kept_bytes: u64 = kept
                .iter()
                .map(|&i| table.decompressed_range(i..i + 1))
                .map(|d| d.end - d.start)
                .sum();
            assert_eq!(
                rewrite.bytes_to_compress((blocks * BS) as u64, (count > 0).then_some(&patch)),
                table.decompressed_len() - kept_bytes,
                "{blocks} {start} {count}"
            );
        }
    }

    #[test]
    fn frames_that_are_not_whole_pages_are_patched_bytewise() {
        let old_data = segment(6, 3);
        // Frames of 2.5 blocks.
        let (old_object, old_table) = compress_with_table(&old_data, 2 * BS + BS / 2, 1).unwrap();
        let old_bytes = Bytes::from(old_object);
        let rewrite = rewrite_of("k", &old_table, &old_bytes, 2 * BS + BS / 2, 1);
        let new_pages = segment(2, 99);
        let fill =
            |i: usize, page: &mut [u8]| page.copy_from_slice(&new_pages[i * BS..(i + 1) * BS]);
        let patch = Patch {
            start: 2 * BS as u64,
            count: 2,
            page_bytes: BS,
            fill: &fill,
        };
        let (chunks, _) = rewrite.apply(6 * BS as u64, Some(&patch)).unwrap();
        let mut expected = old_data;
        expected[2 * BS..4 * BS].copy_from_slice(&new_pages);
        assert_eq!(decompress_all(&chunks.concat()), expected);
    }

    #[test]
    fn a_damaged_frame_that_must_be_rewritten_is_an_error() {
        let old_data = segment(8, 5);
        let (mut old_object, old_table) = compress_with_table(&old_data, FRAME, 3).unwrap();
        let c = old_table.compressed_range(1..2);
        old_object[(c.start + c.end) as usize / 2] ^= 0x10;
        let old_bytes = Bytes::from(old_object);
        let rewrite = rewrite_of("base/1/2.zst", &old_table, &old_bytes, FRAME, 3);
        let fill = |_: usize, page: &mut [u8]| page.fill(1);
        let patch = Patch {
            start: 5 * BS as u64,
            count: 1,
            page_bytes: BS,
            fill: &fill,
        };
        let err = rewrite.apply(8 * BS as u64, Some(&patch)).unwrap_err();
        assert!(
            err.to_string().contains("base/1/2.zst") && err.to_string().contains("frame 1"),
            "{err}"
        );
    }

    /// An object whose seek table has checksums (as other writers make
    /// them) keeps a checksum for every frame after a rewrite, and they
    /// match the frames.
    #[test]
    fn table_checksums_survive_a_rewrite() {
        let data = segment(10, 11);
        let mut object = Vec::new();
        let mut entries = Vec::new();
        for chunk in data.chunks(FRAME) {
            let frame = zstd::bulk::compress(chunk, 1).unwrap();
            entries.push(crate::seekable::FrameEntry {
                compressed: frame.len() as u32,
                decompressed: chunk.len() as u32,
                checksum: Some(xxhash_rust::xxh64::xxh64(chunk, 0) as u32),
            });
            object.extend_from_slice(&frame);
        }
        let old_table = SeekTable::new(entries);
        object.extend_from_slice(&old_table.to_bytes());
        assert_eq!(parse(&object), old_table);
        assert!(old_table.has_checksums());
        let old_bytes = Bytes::from(object);
        let rewrite = rewrite_of("k", &old_table, &old_bytes, FRAME, 3);
        let fill = |_: usize, page: &mut [u8]| page.fill(7);
        let patch = Patch {
            start: 9 * BS as u64,
            count: 3,
            page_bytes: BS,
            fill: &fill,
        };
        let (chunks, table) = rewrite.apply(12 * BS as u64, Some(&patch)).unwrap();
        let object = chunks.concat();
        assert_eq!(parse(&object), table);
        assert!(table.has_checksums());
        let mut d = FrameDecompressor::new("k", BS as u64, 0, 1 << 20);
        for (i, entry) in table.frames().iter().enumerate() {
            let c = table.compressed_range(i..i + 1);
            let l = table.decompressed_range(i..i + 1);
            let mut buf = vec![0u8; (l.end - l.start) as usize];
            d.decompress(
                i,
                &object[c.start as usize..c.end as usize],
                l.clone(),
                l,
                entry.checksum,
                &mut [&mut buf[..]],
            )
            .unwrap();
        }
    }
}
