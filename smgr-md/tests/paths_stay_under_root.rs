//! No relation identifier can make the backend touch a path outside its
//! root: every path it builds is the root plus plain components, and the
//! only configurable component (the tablespace version directory) refuses
//! anything that could climb out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::path::Component;

use proptest::prelude::*;
use smgr_api::{ForkNumber, PathNaming, RelFileLocator};
use smgr_md::{MdOptions, MdSmgr};

proptest! {
    #[test]
    fn every_segment_path_is_inside_the_root(
        spc in any::<u32>(), db in any::<u32>(), rel in any::<u32>(),
        fork in 0usize..4, segno in any::<u32>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let smgr = MdSmgr::open(dir.path(), MdOptions::default()).unwrap();
        let locator = RelFileLocator::new(spc, db, rel);
        match smgr.segment_path(locator, ForkNumber::ALL[fork], segno) {
            Ok(path) => {
                let rest = path.strip_prefix(dir.path()).unwrap();
                prop_assert!(rest.components().all(|c| matches!(c, Component::Normal(_))), "{path:?}");
                prop_assert!(locator.validate().is_ok());
            }
            Err(_) => prop_assert!(locator.validate().is_err()),
        }
    }
}

#[test]
fn version_directories_that_could_escape_are_refused() {
    for bad in ["..", ".", "../../etc", "a/b", "", "/tmp", "x\0y"] {
        assert!(PathNaming::new(bad).is_err(), "{bad:?} accepted");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_root_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let err = MdSmgr::open(dir.path().join("nope"), MdOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(MdSmgr::open(&file, MdOptions::default()).is_err());
    let mut options = MdOptions::default();
    options.segment_blocks = 0;
    assert!(MdSmgr::open(dir.path(), options).is_err());
    assert!(MdSmgr::open(dir.path(), MdOptions::default().max_open_files(0)).is_err());
}
