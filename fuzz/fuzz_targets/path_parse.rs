//! Relation paths and object keys: `PathNaming::parse` never panics, and
//! whatever it accepts names a segment whose canonical path is exactly the
//! input (so no two inputs name one file, and nothing it accepts can climb
//! out of the data directory or key prefix).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smgr_api::PathNaming;

fuzz_target!(|input: (&str, &str)| {
    let (path, version) = input;
    let naming = PathNaming::default();
    if let Ok(seg) = naming.parse(path) {
        let again = naming
            .segment_path(seg.locator, seg.fork, seg.segno)
            .unwrap();
        assert_eq!(again, path);
        assert!(path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".."));
    }
    // A custom tablespace version directory: accepted only as one plain
    // component, and then it round-trips too.
    if let Ok(custom) = PathNaming::new(version) {
        assert!(!version.contains('/') && version != "." && version != "..");
        if let Ok(seg) = custom.parse(path) {
            assert_eq!(
                custom
                    .segment_path(seg.locator, seg.fork, seg.segno)
                    .unwrap(),
                path
            );
        }
    }
});
