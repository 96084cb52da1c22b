//! A segment compressed into frames.

use smgr_api::{Error, Result};

use super::{FrameEntry, SeekTable};

/// Compresses `data` (a segment) into a seekable object: frames of
/// `frame_bytes` decompressed bytes each (the last may be shorter), each
/// with zstd's content checksum, then the seek table.
pub fn compress(data: &[u8], frame_bytes: usize, level: i32) -> Result<Vec<u8>> {
    compress_with_table(data, frame_bytes, level).map(|(object, _)| object)
}

/// [`compress`], also returning the seek table written.
pub fn compress_with_table(
    data: &[u8],
    frame_bytes: usize,
    level: i32,
) -> Result<(Vec<u8>, SeekTable)> {
    let mut compressor = FrameCompressor::new(frame_bytes, level)?;
    let mut out = compressor.push(data)?;
    let (tail, table) = compressor.finish();
    out.extend_from_slice(&tail);
    Ok((out, table))
}

/// Compresses a segment piece by piece (for uploads that stream a file):
/// `push` whole frames' worth of bytes (any multiple of `frame_bytes`, and
/// anything at the very end), then `finish` for the seek table.
pub struct FrameCompressor {
    compressor: zstd::bulk::Compressor<'static>,
    frame_bytes: usize,
    frames: Vec<FrameEntry>,
}

impl FrameCompressor {
    /// Frames of `frame_bytes` bytes at zstd `level`, each with a content
    /// checksum.
    pub fn new(frame_bytes: usize, level: i32) -> Result<Self> {
        let failed = |e: std::io::Error| Error::io("start zstd", "compressor", e);
        let mut compressor = zstd::bulk::Compressor::new(level).map_err(failed)?;
        compressor
            .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .map_err(failed)?;
        Ok(FrameCompressor {
            compressor,
            frame_bytes: frame_bytes.max(1),
            frames: Vec::new(),
        })
    }

    /// The compressed frames of `data`.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() / 2);
        for chunk in data.chunks(self.frame_bytes) {
            let (frame, entry) = self.compress_frame(chunk)?;
            self.frames.push(entry);
            out.extend_from_slice(&frame);
        }
        Ok(out)
    }

    /// `data` as one frame, and its seek table entry, without adding it to
    /// the table `finish` writes (for callers that keep their own).
    pub fn compress_frame(&mut self, data: &[u8]) -> Result<(Vec<u8>, FrameEntry)> {
        let frame = self
            .compressor
            .compress(data)
            .map_err(|e| Error::io("zstd compress", "segment", e))?;
        let entry = FrameEntry {
            compressed: frame.len() as u32,
            decompressed: data.len() as u32,
            checksum: None,
        };
        Ok((frame, entry))
    }

    /// The seek table to append, and the table itself.
    pub fn finish(self) -> (Vec<u8>, SeekTable) {
        let table = SeekTable::new(self.frames);
        (table.to_bytes(), table)
    }
}
