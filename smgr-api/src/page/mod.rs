//! Page verification, shared by every read whatever the backend.
//!
//! Two page formats are understood:
//!
//! - [`PageFormat::Native`]: a crc32c of the block number and the page in
//!   the page's first four bytes (see [`native_checksum`]);
//! - [`PageFormat::Postgres`]: PostgreSQL's page header, checked as
//!   `PageIsVerifiedExtended` does, and, when the cluster was created with
//!   `initdb --data-checksums`, its 16-bit checksum ([`pg_checksum_page`]).
//!
//! In both formats a page of all zeros is valid: it is what extending a
//! relation writes before the page is first initialized. The verifier says
//! so ([`PageState::New`]) so that reports can count such pages.

mod native;
mod pg_checksum;

use std::fmt;

pub use native::{native_checksum, NATIVE_HEADER_BYTES};
pub use pg_checksum::{pg_checksum_page, pg_checksum_page_portable};

use crate::{BlockNumber, BlockSize};

/// How the pages of a storage manager are laid out and checksummed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageFormat {
    /// This library's own format: a crc32c in the first four bytes.
    Native,
    /// PostgreSQL's page format.
    Postgres {
        /// Whether the cluster has data checksums (`initdb -k`); without
        /// them only the header is checked.
        checksums: bool,
    },
}

/// A page that passed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// An initialized page whose checksum and header are right.
    Valid,
    /// A page of all zeros: never written since the relation was extended.
    New,
}

/// What is wrong with a page that failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageCorruption {
    /// The stored checksum differs from the one computed.
    ChecksumMismatch {
        /// Checksum stored in the page.
        stored: u32,
        /// Checksum computed from the page's bytes and block number.
        computed: u32,
    },
    /// A PostgreSQL page header that `PageIsVerifiedExtended` rejects.
    BadHeader {
        /// `pd_flags`.
        flags: u16,
        /// `pd_lower`.
        lower: u16,
        /// `pd_upper`.
        upper: u16,
        /// `pd_special`.
        special: u16,
    },
    /// The buffer is not one block long.
    WrongSize {
        /// Its length.
        len: usize,
        /// The block size.
        block_size: usize,
    },
}

impl fmt::Display for PageCorruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PageCorruption::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: calculated checksum {computed:#X} but block has {stored:#X}"
            ),
            PageCorruption::BadHeader {
                flags,
                lower,
                upper,
                special,
            } => write!(
                f,
                "page header is insane: pd_flags {flags:#X}, pd_lower {lower}, pd_upper {upper}, pd_special {special}"
            ),
            PageCorruption::WrongSize { len, block_size } => {
                write!(f, "page is {len} bytes, block size is {block_size}")
            }
        }
    }
}

/// `PD_VALID_FLAG_BITS`: the only `pd_flags` bits PostgreSQL sets.
const PD_VALID_FLAG_BITS: u16 = 0x0007;
/// PostgreSQL's `MAXIMUM_ALIGNOF` on 64-bit platforms.
const MAXALIGN: u16 = 8;

/// Verifies pages and stamps their checksums, for one format and block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageVerifier {
    format: PageFormat,
    block_size: BlockSize,
}

impl PageVerifier {
    /// A verifier for pages of `format` and `block_size`.
    pub const fn new(format: PageFormat, block_size: BlockSize) -> Self {
        PageVerifier { format, block_size }
    }

    /// The page format verified.
    pub const fn format(&self) -> PageFormat {
        self.format
    }

    /// The block size verified.
    pub const fn block_size(&self) -> BlockSize {
        self.block_size
    }

    /// Verifies `page`, read from absolute block `blkno` of its fork.
    pub fn verify(&self, page: &[u8], blkno: BlockNumber) -> Result<PageState, PageCorruption> {
        if page.len() != self.block_size.bytes() {
            return Err(PageCorruption::WrongSize {
                len: page.len(),
                block_size: self.block_size.bytes(),
            });
        }
        match self.format {
            PageFormat::Native => {
                let stored = native::stored_native_checksum(page);
                let computed = native_checksum(page, blkno);
                if stored == computed {
                    Ok(PageState::Valid)
                } else if is_all_zero(page) {
                    Ok(PageState::New)
                } else {
                    Err(PageCorruption::ChecksumMismatch { stored, computed })
                }
            }
            PageFormat::Postgres { checksums } => verify_postgres(page, blkno, checksums),
        }
    }

    /// Writes the checksum of `page` for block `blkno` into the page, as a
    /// writer must before the page goes to storage (PostgreSQL's
    /// `PageSetChecksumInplace`). New (all-zero) pages and PostgreSQL pages
    /// of a cluster without checksums are left alone.
    pub fn set_checksum(&self, page: &mut [u8], blkno: BlockNumber) {
        if page.len() != self.block_size.bytes() {
            return;
        }
        match self.format {
            PageFormat::Native => {
                if !is_all_zero(page) {
                    let sum = native_checksum(page, blkno);
                    page[..NATIVE_HEADER_BYTES].copy_from_slice(&sum.to_le_bytes());
                }
            }
            PageFormat::Postgres { checksums: true } => {
                if header_field(page, PD_UPPER) != 0 {
                    let sum = pg_checksum_page(page, blkno);
                    page[8..10].copy_from_slice(&sum.to_le_bytes());
                }
            }
            PageFormat::Postgres { checksums: false } => {}
        }
    }
}

const PD_FLAGS: usize = 10;
const PD_LOWER: usize = 12;
const PD_UPPER: usize = 14;
const PD_SPECIAL: usize = 16;

fn header_field(page: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([page[offset], page[offset + 1]])
}

/// `PageIsVerifiedExtended`: a page that is not new must have a sane header
/// and (with checksums) the right checksum; otherwise only all zeros pass.
fn verify_postgres(
    page: &[u8],
    blkno: BlockNumber,
    checksums: bool,
) -> Result<PageState, PageCorruption> {
    let flags = header_field(page, PD_FLAGS);
    let lower = header_field(page, PD_LOWER);
    let upper = header_field(page, PD_UPPER);
    let special = header_field(page, PD_SPECIAL);
    let mut mismatch = None;
    // PageIsNew: pd_upper == 0.
    if upper != 0 {
        if checksums {
            let stored = pg_checksum::stored_checksum(page);
            let computed = pg_checksum_page(page, blkno);
            if stored != computed {
                mismatch = Some(PageCorruption::ChecksumMismatch {
                    stored: stored.into(),
                    computed: computed.into(),
                });
            }
        }
        let header_sane = flags & !PD_VALID_FLAG_BITS == 0
            && lower <= upper
            && upper <= special
            && usize::from(special) <= page.len()
            && special % MAXALIGN == 0;
        if header_sane && mismatch.is_none() {
            return Ok(PageState::Valid);
        }
    }
    if is_all_zero(page) {
        return Ok(PageState::New);
    }
    Err(mismatch.unwrap_or(PageCorruption::BadHeader {
        flags,
        lower,
        upper,
        special,
    }))
}

/// Whether every byte is zero, a word at a time.
pub fn is_all_zero(page: &[u8]) -> bool {
    let mut words = page.chunks_exact(8);
    let words_zero = words
        .by_ref()
        .all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0);
    words_zero && words.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs() -> BlockSize {
        BlockSize::DEFAULT
    }

    fn pg_page() -> Vec<u8> {
        let mut page = vec![0u8; 8192];
        page[PD_LOWER..PD_LOWER + 2].copy_from_slice(&32u16.to_le_bytes());
        page[PD_UPPER..PD_UPPER + 2].copy_from_slice(&8000u16.to_le_bytes());
        page[PD_SPECIAL..PD_SPECIAL + 2].copy_from_slice(&8192u16.to_le_bytes());
        page[18..20].copy_from_slice(&0x2004u16.to_le_bytes());
        for (i, b) in page[8000..].iter_mut().enumerate() {
            *b = i as u8;
        }
        page
    }

    #[test]
    fn zero_pages_are_new_in_every_format() {
        let zero = vec![0u8; 8192];
        for format in [
            PageFormat::Native,
            PageFormat::Postgres { checksums: true },
            PageFormat::Postgres { checksums: false },
        ] {
            let v = PageVerifier::new(format, bs());
            assert_eq!(v.verify(&zero, 17).unwrap(), PageState::New, "{format:?}");
        }
    }

    #[test]
    fn native_pages_round_trip_and_catch_moves() {
        let v = PageVerifier::new(PageFormat::Native, bs());
        let mut page = vec![7u8; 8192];
        v.set_checksum(&mut page, 9);
        assert_eq!(v.verify(&page, 9).unwrap(), PageState::Valid);
        let err = v.verify(&page, 10).unwrap_err();
        assert!(matches!(err, PageCorruption::ChecksumMismatch { .. }));
        assert!(err.to_string().starts_with("checksum mismatch"), "{err}");
    }

    #[test]
    fn postgres_header_checks_follow_page_is_verified() {
        let v = PageVerifier::new(PageFormat::Postgres { checksums: false }, bs());
        let good = pg_page();
        assert_eq!(v.verify(&good, 0).unwrap(), PageState::Valid);
        let mut bad_flags = good.clone();
        bad_flags[PD_FLAGS] = 0x08;
        assert!(matches!(
            v.verify(&bad_flags, 0),
            Err(PageCorruption::BadHeader { .. })
        ));
        let mut lower_above_upper = good.clone();
        lower_above_upper[PD_LOWER..PD_LOWER + 2].copy_from_slice(&8100u16.to_le_bytes());
        assert!(v.verify(&lower_above_upper, 0).is_err());
        let mut unaligned_special = good.clone();
        unaligned_special[PD_SPECIAL..PD_SPECIAL + 2].copy_from_slice(&8190u16.to_le_bytes());
        assert!(v.verify(&unaligned_special, 0).is_err());
        let mut special_past_end = good.clone();
        special_past_end[PD_SPECIAL..PD_SPECIAL + 2].copy_from_slice(&8200u16.to_le_bytes());
        assert!(v.verify(&special_past_end, 0).is_err());
        // pd_upper == 0 but not all zeros: "new" only if really empty.
        let mut upper_zero = vec![0u8; 8192];
        upper_zero[100] = 1;
        assert!(v.verify(&upper_zero, 0).is_err());
    }

    #[test]
    fn postgres_checksums_are_set_and_checked() {
        let v = PageVerifier::new(PageFormat::Postgres { checksums: true }, bs());
        let mut page = pg_page();
        assert!(matches!(
            v.verify(&page, 5),
            Err(PageCorruption::ChecksumMismatch { .. })
        ));
        v.set_checksum(&mut page, 5);
        assert_eq!(v.verify(&page, 5).unwrap(), PageState::Valid);
        assert!(v.verify(&page, 6).is_err());
    }

    #[test]
    fn wrong_sizes_are_reported_not_panicked() {
        let v = PageVerifier::new(PageFormat::Native, bs());
        assert_eq!(
            v.verify(&[0u8; 100], 0),
            Err(PageCorruption::WrongSize {
                len: 100,
                block_size: 8192
            })
        );
        let mut short = vec![1u8; 3];
        v.set_checksum(&mut short, 0);
        assert_eq!(short, vec![1u8; 3]);
    }

    #[test]
    fn all_zero_detection() {
        assert!(is_all_zero(&[0u8; 8192]));
        for at in [0, 7, 8, 4095, 8191] {
            let mut page = vec![0u8; 8192];
            page[at] = 1;
            assert!(!is_all_zero(&page), "{at}");
        }
        assert!(!is_all_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
