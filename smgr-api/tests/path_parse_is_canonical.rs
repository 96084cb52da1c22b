//! Parsing accepts only the canonical names PostgreSQL writes: any string
//! that parses renders back to exactly itself, so `base/5/016396`,
//! `16396.0`, `+5` and friends can never alias a real file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use proptest::prelude::*;
use smgr_api::{ForkNumber, PathNaming, RelFileLocator};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn whatever_parses_round_trips(
        path in "(global|base|pg_tblspc|PG_15_202209061|[0-9+-]{1,4})(/(PG_15_202209061|[0-9]{0,11}|[0-9]{1,6}(_fsm|_vm|_init|_main|_)?(\\.[0-9+]{0,3})?|t[0-9]_[0-9]|\\.\\.)){0,4}"
    ) {
        let naming = PathNaming::default();
        if let Ok(seg) = naming.parse(&path) {
            prop_assert_eq!(naming.segment_path(seg.locator, seg.fork, seg.segno).unwrap(), path);
        }
    }

    #[test]
    fn every_valid_name_parses_back(
        spc in prop_oneof![Just(1663u32), Just(1664u32), 1u32..100_000],
        db in 1u32.., rel in 1u32.., fork in 0usize..4, segno in any::<u32>(),
    ) {
        let locator = RelFileLocator::new(spc, if spc == 1664 { 0 } else { db }, rel);
        prop_assume!(locator.validate().is_ok());
        let naming = PathNaming::default();
        let path = naming.segment_path(locator, ForkNumber::ALL[fork], segno).unwrap();
        let seg = naming.parse(&path).unwrap();
        prop_assert_eq!((seg.locator, seg.fork, seg.segno), (locator, ForkNumber::ALL[fork], segno));
    }
}

#[test]
fn leading_zeros_signs_and_zero_segments_are_refused() {
    let naming = PathNaming::default();
    for path in [
        "base/5/08192",
        "base/05/8192",
        "base/5/8192.00",
        "base/5/8192.0",
        "base/+5/8192",
        "base/5/8192.+1",
    ] {
        assert!(naming.parse(path).is_err(), "{path} accepted");
    }
}
