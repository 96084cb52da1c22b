//! The page verifiers, both formats, on arbitrary bytes and block numbers:
//! never a panic (wrong sizes are errors); a page checksummed for a block
//! verifies for that block; an all-zero page is new.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smgr_api::{BlockSize, PageFormat, PageState, PageVerifier};

fuzz_target!(|input: (Vec<u8>, u32, u8)| {
    let (bytes, block, format) = input;
    let format = match format % 3 {
        0 => PageFormat::Native,
        1 => PageFormat::Postgres { checksums: true },
        _ => PageFormat::Postgres { checksums: false },
    };
    let bs = BlockSize::new(1024).unwrap();
    let verifier = PageVerifier::new(format, bs);
    // Any length: an error or a verdict, never a panic.
    let _ = verifier.verify(&bytes, block);
    // One block's worth: after set_checksum it must verify, unless the
    // header is insane for PostgreSQL (then set_checksum cannot help).
    let mut page = bytes;
    page.resize(bs.bytes(), 0);
    verifier.set_checksum(&mut page, block);
    let verdict = verifier.verify(&page, block);
    if page.iter().all(|&b| b == 0) {
        assert_eq!(verdict, Ok(PageState::New));
    } else if format == PageFormat::Native {
        assert_eq!(verdict, Ok(PageState::Valid));
    }
});
