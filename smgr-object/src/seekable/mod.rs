//! The zstd seekable format (`contrib/seekable_format` in the zstd
//! project): a segment cut into independent zstd frames of `frame_blocks`
//! blocks, followed by a skippable frame holding the seek table, so any
//! block run is one ranged GET of the frames it touches. The object stays
//! a valid zstd stream: `zstd -d` gives back the segment byte for byte.
//!
//! Layout of the seek table (little-endian):
//!
//! ```text
//! skippable magic 0x184D2A5E (4) | frame size (4) | entries | footer (9)
//! entry:  compressed size (4) | decompressed size (4) [| checksum (4)]
//! footer: number of frames (4) | descriptor (1) | seekable magic 0x8F92EAB1 (4)
//! ```
//!
//! Compression and decompression are the `zstd` crate's (libzstd); only the
//! seek table is read and written here: it is a few fixed-size fields, and
//! what the backend needs (the table from the object's tail alone, frames
//! decompressed into the pool's pages) is plainer written than adapted.
//! Every frame carries zstd's own content checksum (XXH64), which libzstd
//! checks while decompressing, so the seek table's optional checksums are
//! not written; tables that have them (other writers') are checked and
//! kept through rewrites.
//!
//! This is the format layer of compressed segment objects: the backend
//! creates them when `ObjectOptions::compression` says so and reads,
//! rewrites, extends and truncates every `.zst` object it finds.
//!
//! - [`table`]: the seek table, parsed from an object's tail and checked;
//! - [`compress`](mod@compress): a segment into frames ([`FrameCompressor`]);
//! - [`decompress`]: frames into the caller's pages ([`FrameDecompressor`]);
//! - [`rewrite`]: a write, extension or truncation that compresses again
//!   only the frames it touches ([`Rewrite`]).
//!
//! Why the table is written on the `zstd` crate rather than `zeekstd`:
//! `docs/compression.md`.

pub mod compress;
pub mod decompress;
pub mod rewrite;
pub mod table;

use smgr_api::{Error, Result};

pub use compress::{compress, compress_with_table, FrameCompressor};
pub use decompress::FrameDecompressor;
pub use rewrite::{Patch, Rewrite};
pub use table::{
    table_bytes, FrameEntry, SeekTable, Tail, FOOTER_BYTES, MAX_FRAMES, MIN_FRAME_BYTES,
    SEEKABLE_MAGIC, SKIPPABLE_MAGIC,
};

/// Key suffix of compressed segment objects: visible in a LIST, so no
/// request per object is needed to tell them apart (docs/compression.md).
pub const COMPRESSED_SUFFIX: &str = ".zst";

/// Reads the seek table of the compressed object `key` (`object_len`
/// bytes) from its tail: one ranged GET of the last 64 KiB, one more if
/// the table is longer but within `max_table_bytes` (a forged frame count
/// costs an error, not a fetch of gigabytes); pinned to `if_match` when
/// given.
pub async fn fetch_seek_table(
    store: &dyn object_store::ObjectStore,
    key: &str,
    object_len: u64,
    if_match: Option<String>,
    version: Option<String>,
    max_frame_bytes: u64,
    max_table_bytes: u64,
) -> Result<SeekTable> {
    let not_seekable = || Error::CorruptObject {
        key: key.to_owned(),
        detail: "named .zst but not in the zstd seekable format (no seek table at its end)"
            .to_owned(),
    };
    if object_len < FOOTER_BYTES as u64 {
        return Err(not_seekable());
    }
    let mut want = object_len.min(64 << 10);
    loop {
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(
                object_len - want..object_len,
            )),
            if_match: if_match.clone(),
            version: version.clone(),
            ..object_store::GetOptions::default()
        };
        let tail = store
            .get_opts(&crate::object_path(key)?, options)
            .await
            .map_err(|err| crate::error::from_store("read seek table of", key, err))?
            .bytes()
            .await
            .map_err(|err| crate::error::from_store("read seek table of", key, err))?;
        match SeekTable::parse_tail(key, &tail, object_len, max_frame_bytes)? {
            Tail::Table(table) => return Ok(table),
            Tail::NeedBytes(n) if n > max_table_bytes => {
                return Err(Error::CorruptObject {
                    key: key.to_owned(),
                    detail: format!(
                        "its seek table claims {n} bytes, more than a segment's table can need ({max_table_bytes}: one frame per block); not fetched"
                    ),
                })
            }
            Tail::NeedBytes(n) if n > want && n <= object_len => want = n,
            Tail::NeedBytes(_) | Tail::Plain => return Err(not_seekable()),
        }
    }
}

/// Bytes that compress somewhat, different at every offset, for tests.
#[cfg(test)]
pub(crate) fn test_segment(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 7) as u8).wrapping_mul(13) ^ (i % 251) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    #[tokio::test]
    async fn a_forged_frame_count_costs_an_error_not_a_long_fetch() {
        // 4 MiB whose footer claims 150,000 frames: the object could hold
        // them (1.8 MB of table, 1.35 MB of minimal frames), but a segment
        // of 16 blocks never needs a table of more than 17 frames.
        let store = InMemory::new();
        let mut object = vec![0u8; 4 << 20];
        let at = object.len() - FOOTER_BYTES;
        object[at..at + 4].copy_from_slice(&150_000u32.to_le_bytes());
        object[at + 5..].copy_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        let len = object.len() as u64;
        store
            .put(&"base/5/1.zst".into(), PutPayload::from(object))
            .await
            .unwrap();
        let max_table = table_bytes(17, true);
        let err = fetch_seek_table(&store, "base/5/1.zst", len, None, None, 1 << 20, max_table)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("base/5/1.zst") && text.contains("not fetched"),
            "{text}"
        );
    }
}
