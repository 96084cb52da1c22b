//! The seek table: where each frame is, in the object and decompressed.

use std::ops::Range;

use smgr_api::{Error, Result};

/// Magic number of a zstd skippable frame (the variant the format uses).
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number ending a seek table.
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Bytes of the seek table's footer.
pub const FOOTER_BYTES: usize = 9;
/// Bytes of the skippable frame header (magic and size).
const HEADER_BYTES: usize = 8;
/// The format's limit on frames per object.
pub const MAX_FRAMES: u32 = 0x0800_0000;
/// Descriptor bit: entries carry a checksum.
const CHECKSUM_FLAG: u8 = 0x80;
/// Descriptor bits that must be zero.
const RESERVED_BITS: u8 = 0x7C;
/// The smallest zstd frame: magic (4), frame header descriptor (1), a
/// window descriptor or content size byte (1), one block header (3).
pub const MIN_FRAME_BYTES: u64 = 9;

/// Bytes of a seek table of `frames` frames, with or without checksums.
pub fn table_bytes(frames: u64, checksums: bool) -> u64 {
    let entry = if checksums { 12 } else { 8 };
    HEADER_BYTES as u64 + frames * entry + FOOTER_BYTES as u64
}

/// One frame of a seekable object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEntry {
    /// Its bytes in the object.
    pub compressed: u32,
    /// The bytes it decompresses to.
    pub decompressed: u32,
    /// The seek table's checksum of the frame (low 32 bits of the XXH64
    /// of its decompressed bytes), when the table has them. Frames written
    /// here carry zstd's own checksum inside instead.
    pub checksum: Option<u32>,
}

/// The frames of a seekable object, with their offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeekTable {
    frames: Vec<FrameEntry>,
    /// Start of frame i in the object, and of frame i in the decompressed
    /// data; one more entry than frames (the ends).
    compressed_starts: Vec<u64>,
    decompressed_starts: Vec<u64>,
}

/// What the tail of an object says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Not a seekable object (no seekable magic at its end): a plain one.
    Plain,
    /// A seekable object whose table needs the last `bytes` bytes; the tail
    /// given was shorter.
    NeedBytes(u64),
    /// The parsed table.
    Table(SeekTable),
}

impl SeekTable {
    /// A table of these frames, in order.
    pub fn new(frames: Vec<FrameEntry>) -> Self {
        let mut compressed_starts = Vec::with_capacity(frames.len() + 1);
        let mut decompressed_starts = Vec::with_capacity(frames.len() + 1);
        let (mut c, mut d) = (0u64, 0u64);
        for frame in &frames {
            compressed_starts.push(c);
            decompressed_starts.push(d);
            c += u64::from(frame.compressed);
            d += u64::from(frame.decompressed);
        }
        compressed_starts.push(c);
        decompressed_starts.push(d);
        SeekTable {
            frames,
            compressed_starts,
            decompressed_starts,
        }
    }

    /// The frames, in order.
    pub fn frames(&self) -> &[FrameEntry] {
        &self.frames
    }

    /// Bytes of all frames (the object without its seek table).
    pub fn compressed_len(&self) -> u64 {
        self.compressed_starts.last().copied().unwrap_or(0)
    }

    /// Bytes the object decompresses to (the segment's logical size).
    pub fn decompressed_len(&self) -> u64 {
        self.decompressed_starts.last().copied().unwrap_or(0)
    }

    /// Whether the table carries a checksum for every frame (then it is
    /// written with them, so a rewrite keeps them).
    pub fn has_checksums(&self) -> bool {
        !self.frames.is_empty() && self.frames.iter().all(|f| f.checksum.is_some())
    }

    fn entry_bytes(&self) -> usize {
        if self.has_checksums() {
            12
        } else {
            8
        }
    }

    /// Bytes of the seek table as [`to_bytes`](Self::to_bytes) writes it.
    pub fn table_len(&self) -> u64 {
        (HEADER_BYTES + self.frames.len() * self.entry_bytes() + FOOTER_BYTES) as u64
    }

    /// Frames holding decompressed bytes `range` (empty for an empty range).
    pub fn frames_for(&self, range: Range<u64>) -> Range<usize> {
        if range.start >= range.end {
            return 0..0;
        }
        // The last frame starting at or before the byte.
        let first = self
            .decompressed_starts
            .partition_point(|&s| s <= range.start)
            - 1;
        let last = self.decompressed_starts.partition_point(|&s| s < range.end);
        first.min(self.frames.len())..last.min(self.frames.len())
    }

    /// Where frames `frames` are in the object.
    pub fn compressed_range(&self, frames: Range<usize>) -> Range<u64> {
        self.compressed_starts[frames.start]..self.compressed_starts[frames.end]
    }

    /// Where frames `frames` are in the decompressed data.
    pub fn decompressed_range(&self, frames: Range<usize>) -> Range<u64> {
        self.decompressed_starts[frames.start]..self.decompressed_starts[frames.end]
    }

    /// The seek table as a skippable frame, with checksums if every frame
    /// has one.
    pub fn to_bytes(&self) -> Vec<u8> {
        let checksums = self.has_checksums();
        let entries = self.frames.len() * self.entry_bytes();
        let mut out = Vec::with_capacity(HEADER_BYTES + entries + FOOTER_BYTES);
        out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        out.extend_from_slice(&((entries + FOOTER_BYTES) as u32).to_le_bytes());
        for frame in &self.frames {
            out.extend_from_slice(&frame.compressed.to_le_bytes());
            out.extend_from_slice(&frame.decompressed.to_le_bytes());
            if let (true, Some(sum)) = (checksums, frame.checksum) {
                out.extend_from_slice(&sum.to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.frames.len() as u32).to_le_bytes());
        out.push(if checksums { CHECKSUM_FLAG } else { 0 });
        out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        out
    }

    /// Reads the seek table from `tail`, the last bytes of the object `key`
    /// of `object_len` bytes, and checks that it describes the object: the
    /// frames and the table add up to the object's length exactly, and no
    /// frame decompresses to more than `max_frame_bytes`.
    pub fn parse_tail(
        key: &str,
        tail: &[u8],
        object_len: u64,
        max_frame_bytes: u64,
    ) -> Result<Tail> {
        let bad = |detail: String| Error::CorruptObject {
            key: key.to_owned(),
            detail,
        };
        if (tail.len() as u64) > object_len {
            return Err(bad(format!(
                "{} tail bytes given for an object of {object_len} bytes",
                tail.len()
            )));
        }
        if tail.len() < FOOTER_BYTES {
            return Ok(if object_len < FOOTER_BYTES as u64 {
                Tail::Plain
            } else {
                Tail::NeedBytes(FOOTER_BYTES as u64)
            });
        }
        let footer = &tail[tail.len() - FOOTER_BYTES..];
        if read_u32(footer, 5) != SEEKABLE_MAGIC {
            return Ok(Tail::Plain);
        }
        let frames = read_u32(footer, 0);
        let descriptor = footer[4];
        if descriptor & RESERVED_BITS != 0 {
            return Err(bad(format!(
                "seek table descriptor {descriptor:#04x} sets reserved bits"
            )));
        }
        if frames > MAX_FRAMES {
            return Err(bad(format!(
                "seek table lists {frames} frames, more than the format's {MAX_FRAMES}"
            )));
        }
        let entry_bytes: u64 = if descriptor & CHECKSUM_FLAG != 0 {
            12
        } else {
            8
        };
        let table_len = table_bytes(u64::from(frames), entry_bytes == 12);
        // Every frame takes at least a minimal zstd frame besides its
        // entry: a count the object cannot hold is refused before the
        // table is fetched.
        let least = table_len + u64::from(frames) * MIN_FRAME_BYTES;
        if least > object_len {
            return Err(bad(format!(
                "seek table of {frames} frames needs {table_len} bytes and its frames at least {} more, but the object has {object_len}",
                least - table_len
            )));
        }
        if (tail.len() as u64) < table_len {
            return Ok(Tail::NeedBytes(table_len));
        }
        let table = &tail[tail.len() - table_len as usize..];
        let frame_size = read_u32(table, 4);
        if read_u32(table, 0) != SKIPPABLE_MAGIC
            || u64::from(frame_size) != table_len - HEADER_BYTES as u64
        {
            return Err(bad(format!(
                "seek table of {frames} frames does not start with a skippable frame header of size {}",
                table_len - HEADER_BYTES as u64
            )));
        }
        let mut entries = Vec::with_capacity(frames as usize);
        for i in 0..frames as usize {
            let at = HEADER_BYTES + i * entry_bytes as usize;
            entries.push(FrameEntry {
                compressed: read_u32(table, at),
                decompressed: read_u32(table, at + 4),
                checksum: (entry_bytes == 12).then(|| read_u32(table, at + 8)),
            });
        }
        let parsed = SeekTable::new(entries);
        if parsed.compressed_len() + table_len != object_len {
            return Err(bad(format!(
                "frame sizes add up to {} bytes and the seek table to {table_len}, but the object holds {object_len}",
                parsed.compressed_len()
            )));
        }
        if let Some((i, frame)) = parsed
            .frames
            .iter()
            .enumerate()
            .find(|(_, f)| u64::from(f.decompressed) > max_frame_bytes)
        {
            return Err(bad(format!(
                "frame {i} decompresses to {} bytes, more than a frame may hold ({max_frame_bytes})",
                frame.decompressed
            )));
        }
        // zstd never stores a frame in more than its bound for the bytes
        // it holds (plus the frame's own header and checksum).
        if let Some((i, frame)) = parsed.frames.iter().enumerate().find(|(_, f)| {
            let bound = zstd::zstd_safe::compress_bound(f.decompressed as usize) as u64 + 32;
            u64::from(f.compressed) > bound || u64::from(f.compressed) < MIN_FRAME_BYTES
        }) {
            return Err(bad(format!(
                "frame {i} is stored in {} bytes, outside what zstd can make of {} bytes ({} to {})",
                frame.compressed,
                frame.decompressed,
                MIN_FRAME_BYTES,
                zstd::zstd_safe::compress_bound(frame.decompressed as usize) + 32
            )));
        }
        Ok(Tail::Table(parsed))
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::compress;

    use crate::seekable::test_segment as segment;

    #[test]
    fn frames_are_found_by_decompressed_range() {
        let data = segment(16 * 8192 * 5 + 8192 * 3);
        let object = compress(&data, 16 * 8192, 3).unwrap();
        let Tail::Table(table) =
            SeekTable::parse_tail("k", &object, object.len() as u64, 16 * 8192).unwrap()
        else {
            panic!("not parsed");
        };
        assert_eq!(table.frames().len(), 6);
        assert_eq!(table.decompressed_len(), data.len() as u64);
        // Blocks 70..90 (8 KiB) span frames 4 and 5.
        assert_eq!(table.frames_for(70 * 8192..90 * 8192), 4..6);
        assert_eq!(table.frames_for(0..1), 0..1);
        assert_eq!(table.frames_for(16 * 8192..32 * 8192), 1..2);
        assert_eq!(table.frames_for(5..5), 0..0);
        assert_eq!(
            table.compressed_len() + table.table_len(),
            object.len() as u64
        );
    }

    #[test]
    fn the_table_is_read_from_the_tail_alone() {
        let data = segment(8192 * 40);
        let object = compress(&data, 8 * 8192, 1).unwrap();
        let len = object.len() as u64;
        assert!(matches!(
            SeekTable::parse_tail("k", &object[object.len() - 9..], len, 1 << 20).unwrap(),
            Tail::NeedBytes(n) if n == 8 + 5 * 8 + 9
        ));
        let tail = &object[object.len() - 57..];
        assert!(matches!(
            SeekTable::parse_tail("k", tail, len, 1 << 20).unwrap(),
            Tail::Table(_)
        ));
        assert_eq!(
            SeekTable::parse_tail("k", &data[..100], 100, 1 << 20).unwrap(),
            Tail::Plain
        );
    }

    #[test]
    fn bad_tables_are_errors_naming_the_key() {
        let data = segment(8192 * 20);
        let object = compress(&data, 8 * 8192, 1).unwrap();
        let len = object.len() as u64;
        let check = |bytes: &[u8], len: u64, max: u64, words: &str| {
            let err = SeekTable::parse_tail("base/5/1.2", bytes, len, max).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("base/5/1.2") && text.contains(words),
                "{text}"
            );
        };
        // Truncated object: the frames no longer add up.
        check(&object[..], len + 10, 1 << 20, "add up");
        // A frame count that disagrees with the object length.
        let mut more = object.clone();
        let at = more.len() - 9;
        more[at..at + 4].copy_from_slice(&300u32.to_le_bytes());
        check(&more, len, 1 << 20, "seek table");
        let mut huge = object.clone();
        huge[at..at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        check(&huge, len, 1 << 20, "needs");
        // A frame bigger than frame_blocks blocks.
        check(&object, len, 4 * 8192, "more than a frame may hold");
        // Reserved descriptor bits.
        let mut reserved = object.clone();
        reserved[at + 4] = 0x04;
        check(&reserved, len, 1 << 20, "reserved bits");
        // A frame stored in more bytes than zstd can make of what it
        // holds: frame 0 now claims to decompress to one byte.
        let mut inflated = object.clone();
        let entries = inflated.len() - 9 - 3 * 8;
        inflated[entries + 4..entries + 8].copy_from_slice(&1u32.to_le_bytes());
        check(&inflated, len, 1 << 20, "outside what zstd can make");
    }

    #[test]
    fn a_frame_count_the_object_cannot_hold_is_refused_from_the_footer() {
        // 12 frames: a table of 113 bytes fits in 200, but 12 frames of
        // at least 9 bytes each do not fit beside it.
        let mut object = [0u8; 200];
        let at = object.len() - 9;
        object[at..at + 4].copy_from_slice(&12u32.to_le_bytes());
        object[at + 5..].copy_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        let err = SeekTable::parse_tail("base/5/1.zst", &object[at..], 200, 1 << 20).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("base/5/1.zst") && text.contains("at least 108 more"),
            "{text}"
        );
    }
}
