//! The native page format: a crc32c of the page in its first four bytes.
//!
//! Layout: bytes `0..4` hold, little-endian, the CRC-32C (Castagnoli) of the
//! block number (4 bytes, little-endian) followed by bytes `4..` of the page.
//! Mixing in the block number catches a page written to the wrong place. A
//! CRC detects every error burst of up to 32 bits, so every single flipped
//! byte is caught, which PostgreSQL's 16-bit checksum cannot promise. The
//! `crc32c` crate uses SSE4.2 / ARMv8 CRC instructions where present.

use crate::BlockNumber;

/// Bytes at the start of a native page taken by its checksum.
pub const NATIVE_HEADER_BYTES: usize = 4;

/// The checksum a native page stored as block `blkno` must carry.
pub fn native_checksum(page: &[u8], blkno: BlockNumber) -> u32 {
    let seed = crc32c::crc32c(&blkno.to_le_bytes());
    crc32c::crc32c_append(seed, page.get(NATIVE_HEADER_BYTES..).unwrap_or_default())
}

/// The checksum stored in a native page.
pub(crate) fn stored_native_checksum(page: &[u8]) -> u32 {
    u32::from_le_bytes([page[0], page[1], page[2], page[3]])
}
