//! PostgreSQL's data page checksum (`pg_checksum_page`).
//!
//! The page is seen as rows of 32 little-endian `u32` lanes. Each lane keeps
//! its own FNV-1a-like hash (`h = (h ^ v) * FNV_PRIME ^ ((h ^ v) >> 17)`)
//! started from a fixed per-lane offset; two rounds of zeros mix the lanes
//! once more; the lanes are xor-folded, the block number is xored in so that
//! a page written to the wrong place fails, and the result is reduced to 16
//! bits as `(sum % 65535) + 1` so that 0 never appears. The `pd_checksum`
//! field (bytes 8..10) counts as zero while summing.
//!
//! Written as fixed-size 32-lane arrays so that LLVM vectorizes the lanes
//! (the multiplication latency is what 32 independent lanes hide). The lane
//! count and offsets are part of the on-disk format: changing them changes
//! every checksum. Pages are read as little-endian, which is what PostgreSQL
//! writes on every little-endian machine (x86-64, AArch64).

use crate::BlockNumber;

const N_SUMS: usize = 32;
const ROW_BYTES: usize = N_SUMS * 4;
const FNV_PRIME: u32 = 16_777_619;

/// The initial state of each lane (PostgreSQL's `checksumBaseOffsets`).
const BASE_OFFSETS: [u32; N_SUMS] = [
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
];

/// Byte offset of `pd_checksum` in the page header.
pub(crate) const PD_CHECKSUM_OFFSET: usize = 8;

#[inline(always)]
fn mix(sum: u32, value: u32) -> u32 {
    let tmp = sum ^ value;
    tmp.wrapping_mul(FNV_PRIME) ^ (tmp >> 17)
}

#[inline(always)]
fn mix_row(sums: &mut [u32; N_SUMS], row: &[u8; ROW_BYTES], checksum_mask: u32) {
    let mut values = [0u32; N_SUMS];
    for (value, bytes) in values.iter_mut().zip(row.chunks_exact(4)) {
        *value = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    // Lane 2 of row 0 holds pd_checksum in its low half (little-endian).
    values[PD_CHECKSUM_OFFSET / 4] &= checksum_mask;
    for (sum, value) in sums.iter_mut().zip(values) {
        *sum = mix(*sum, value);
    }
}

/// The 32-bit block hash of `page`, with `pd_checksum` taken as zero
/// (`pg_checksum_block`). `page.len()` must be a multiple of 128; the caller
/// (the verifier) has checked it is one block.
///
/// On x86-64 with AVX2 (checked once, at run time) the same code compiled
/// for AVX2 runs: 32-bit lane multiplies are one instruction there, while
/// the SSE2 baseline has to emulate them, so the checksum about doubles in
/// speed (see BENCHMARKS.md).
fn checksum_block(page: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(sum) = avx2::checksum_block(page) {
            return sum;
        }
    }
    checksum_block_portable(page)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::sync::OnceLock;

    pub fn available() -> bool {
        static AVX2: OnceLock<bool> = OnceLock::new();
        *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
    }

    #[target_feature(enable = "avx2")]
    fn checksum_block_avx2(page: &[u8]) -> u32 {
        super::checksum_block_portable(page)
    }

    /// The checksum computed with AVX2, or `None` if this CPU lacks it.
    pub fn checksum_block(page: &[u8]) -> Option<u32> {
        if !available() {
            return None;
        }
        // SAFETY: the only requirement of calling a `target_feature`
        // function is that the CPU has the feature, and `available()` has
        // just confirmed (through cpuid) that it has AVX2.
        Some(unsafe { checksum_block_avx2(page) })
    }
}

/// [`checksum_block`] for any CPU; inlined into the AVX2 version so that
/// LLVM vectorizes it with that instruction set.
#[inline(always)]
fn checksum_block_portable(page: &[u8]) -> u32 {
    let mut sums = BASE_OFFSETS;
    let mut rows = page.chunks_exact(ROW_BYTES);
    if let Some(first) = rows.next() {
        if let Ok(first) = <&[u8; ROW_BYTES]>::try_from(first) {
            mix_row(&mut sums, first, 0xFFFF_0000);
        }
    }
    for row in rows {
        if let Ok(row) = <&[u8; ROW_BYTES]>::try_from(row) {
            mix_row(&mut sums, row, u32::MAX);
        }
    }
    for _ in 0..2 {
        for sum in sums.iter_mut() {
            *sum = mix(*sum, 0);
        }
    }
    sums.iter().fold(0, |acc, sum| acc ^ sum)
}

/// PostgreSQL's checksum of a page stored as block `blkno` of its fork
/// (absolute: segment number × segment size + block within the segment).
///
/// Like PostgreSQL's function it is only meaningful for initialized pages;
/// the verifier never asks it about a new (all-zero) page.
pub fn pg_checksum_page(page: &[u8], blkno: BlockNumber) -> u16 {
    let sum = checksum_block(page) ^ blkno;
    ((sum % 65535) + 1) as u16
}

/// [`pg_checksum_page`] without the AVX2 version: the baseline the
/// checksum benchmark compares against.
#[doc(hidden)]
pub fn pg_checksum_page_portable(page: &[u8], blkno: BlockNumber) -> u16 {
    let sum = checksum_block_portable(page) ^ blkno;
    ((sum % 65535) + 1) as u16
}

/// The `pd_checksum` stored in a page header.
pub(crate) fn stored_checksum(page: &[u8]) -> u16 {
    u16::from_le_bytes([page[PD_CHECKSUM_OFFSET], page[PD_CHECKSUM_OFFSET + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct transcription of the definition, lane by lane and row by
    /// row, without the array tricks: the fast version must agree with it.
    fn reference(page: &[u8], blkno: u32) -> u16 {
        let mut sums = BASE_OFFSETS;
        let rows = page.len() / ROW_BYTES;
        for i in 0..rows {
            for (j, sum) in sums.iter_mut().enumerate() {
                let at = i * ROW_BYTES + j * 4;
                let mut value = u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
                if at == PD_CHECKSUM_OFFSET {
                    value &= 0xFFFF_0000;
                }
                *sum = mix(*sum, value);
            }
        }
        for _ in 0..2 {
            for sum in sums.iter_mut() {
                *sum = mix(*sum, 0);
            }
        }
        let folded = sums.iter().fold(0u32, |a, s| a ^ s) ^ blkno;
        ((folded % 65535) + 1) as u16
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_plain_definition(
            seed in proptest::prelude::any::<u64>(),
            shift in 10u32..=15,
            blkno in proptest::prelude::any::<u32>(),
        ) {
            let mut state = seed | 1;
            let page: Vec<u8> = (0..1usize << shift)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            proptest::prop_assert_eq!(pg_checksum_page(&page, blkno), reference(&page, blkno));
            // The portable build and the AVX2 one (if this CPU has it) agree.
            proptest::prop_assert_eq!(
                pg_checksum_page_portable(&page, blkno),
                reference(&page, blkno)
            );
        }
    }

    #[test]
    fn stored_checksum_is_ignored() {
        let mut page = vec![0x5Au8; 8192];
        let before = pg_checksum_page(&page, 3);
        page[8] = 0x12;
        page[9] = 0x34;
        assert_eq!(pg_checksum_page(&page, 3), before);
        page[10] ^= 1;
        assert_ne!(pg_checksum_page(&page, 3), before);
    }
}
