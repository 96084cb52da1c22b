//! The native format's promise: every single-byte change anywhere in a page
//! is detected (CRC-32C catches every burst of up to 32 bits).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, PageFormat, PageState, PageVerifier};

#[test]
fn every_single_byte_flip_is_detected() {
    for bytes in [1024u32, 8192, 32768] {
        let bs = BlockSize::new(bytes).unwrap();
        let v = PageVerifier::new(PageFormat::Native, bs);
        let mut page = pattern_page(bs.bytes(), 1, 77);
        v.set_checksum(&mut page, 77);
        assert_eq!(v.verify(&page, 77), Ok(PageState::Valid));
        // Every position with every single-bit flip and an all-bits flip;
        // at 1 KiB every possible value of every byte.
        let masks: Vec<u8> = if bytes == 1024 {
            (1..=255).collect()
        } else {
            vec![1, 2, 4, 8, 16, 32, 64, 128, 0xFF]
        };
        for at in 0..page.len() {
            for &mask in &masks {
                page[at] ^= mask;
                assert!(
                    v.verify(&page, 77).is_err(),
                    "flip {mask:#x} at byte {at} of a {bytes}-byte page went undetected"
                );
                page[at] ^= mask;
            }
        }
    }
}
