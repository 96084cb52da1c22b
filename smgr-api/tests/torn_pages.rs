//! Torn pages: a write interrupted part-way leaves the first sectors of the
//! new version in front of the rest of the old one. Each version is a
//! valid page for the block; every torn mix (cut at each 512-byte sector
//! boundary, including the half-and-half cut at 4 KiB) must fail
//! verification, in both page formats.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, PageFormat, PageVerifier};

/// A valid PostgreSQL page for `block`: sane header, tuple bytes from
/// `version`, checksummed.
fn pg_page(verifier: &PageVerifier, block: u32, version: u32) -> Vec<u8> {
    let mut page = pattern_page(8192, version, block);
    page[8..10].fill(0);
    page[10..12].fill(0); // pd_flags
    page[12..14].copy_from_slice(&184u16.to_le_bytes()); // pd_lower
    page[14..16].copy_from_slice(&(200 + (version % 64) as u16 * 8).to_le_bytes()); // pd_upper
    page[16..18].copy_from_slice(&8192u16.to_le_bytes()); // pd_special
    page[18..20].copy_from_slice(&(8192u16 | 4).to_le_bytes());
    verifier.set_checksum(&mut page, block);
    page
}

fn native_page(verifier: &PageVerifier, block: u32, version: u32) -> Vec<u8> {
    let mut page = pattern_page(8192, version, block);
    verifier.set_checksum(&mut page, block);
    page
}

/// Builds version `version` of the page of a block.
type MakePage = fn(&PageVerifier, u32, u32) -> Vec<u8>;

#[test]
fn every_torn_mix_of_two_valid_versions_is_detected() {
    let formats: [(PageFormat, MakePage); 2] = [
        (PageFormat::Native, native_page),
        (PageFormat::Postgres { checksums: true }, pg_page),
    ];
    for (format, make) in formats {
        let verifier = PageVerifier::new(format, BlockSize::DEFAULT);
        let mut torn_checked = 0;
        for block in [0u32, 1, 7, 131_071, 131_072, 4_000_000] {
            for version in 1..=20u32 {
                let old = make(&verifier, block, version);
                let new = make(&verifier, block, version + 1000);
                assert!(verifier.verify(&old, block).is_ok(), "{format:?}");
                assert!(verifier.verify(&new, block).is_ok(), "{format:?}");
                for sectors in 1..16 {
                    let cut = sectors * 512;
                    let mut torn = new[..cut].to_vec();
                    torn.extend_from_slice(&old[cut..]);
                    assert!(
                        verifier.verify(&torn, block).is_err(),
                        "{format:?}: block {block} torn at byte {cut} (versions {version}/{}) passed",
                        version + 1000
                    );
                    torn_checked += 1;
                }
            }
        }
        assert_eq!(torn_checked, 6 * 20 * 15);
    }
}

#[test]
fn all_zero_pages_are_new_not_corrupt_in_both_formats() {
    for format in [
        PageFormat::Native,
        PageFormat::Postgres { checksums: true },
        PageFormat::Postgres { checksums: false },
    ] {
        let verifier = PageVerifier::new(format, BlockSize::DEFAULT);
        for block in [0u32, 5, u32::MAX - 1] {
            assert_eq!(
                verifier.verify(&[0u8; 8192], block),
                Ok(smgr_api::PageState::New),
                "{format:?}"
            );
        }
    }
}
