//! No relation identifier can make the object backend use a key outside
//! its prefix, and a prefix that could climb out (`..`, `.`, empty parts)
//! is refused when the backend is built.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use object_store::memory::InMemory;
use smgr_api::{ForkNumber, PathNaming, RelFileLocator};
use smgr_object::{ObjectOptions, ObjectSmgr};

fn backend(prefix: &str) -> smgr_api::Result<ObjectSmgr> {
    ObjectSmgr::new(Arc::new(InMemory::new()), prefix, ObjectOptions::default())
}

#[test]
fn hostile_prefixes_are_refused() {
    for prefix in [
        "..",
        "../escape",
        "a/../../b",
        "a/./b",
        "a//b",
        "./a",
        "backup/..",
    ] {
        let err = backend(prefix)
            .err()
            .unwrap_or_else(|| panic!("{prefix:?} accepted"));
        assert!(
            err.to_string().contains("plain components"),
            "{prefix:?}: {err}"
        );
    }
    for prefix in [
        "",
        "/",
        "backups",
        "/backups/2026-11-25/",
        "a/b/c",
        "with space",
    ] {
        backend(prefix).unwrap_or_else(|e| panic!("{prefix:?} refused: {e}"));
    }
}

#[test]
fn every_key_is_the_prefix_plus_the_segment_path() {
    let smgr = backend("backups/cluster-1").unwrap();
    let naming = PathNaming::default();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u32
    };
    let edge = [0u32, 1, 1663, 1664, 16384, u32::MAX - 1, u32::MAX];
    for i in 0..20_000 {
        let pick = |n: u32, i: usize| {
            if i % 3 == 0 {
                edge[n as usize % edge.len()]
            } else {
                n
            }
        };
        let locator =
            RelFileLocator::new(pick(next(), i), pick(next(), i + 1), pick(next(), i + 2));
        let fork = ForkNumber::ALL[next() as usize % 4];
        let segno = pick(next(), i);
        match smgr.segment_key(locator, fork, segno) {
            Ok(key) => {
                let rest = key
                    .strip_prefix("backups/cluster-1/")
                    .unwrap_or_else(|| panic!("{key}"));
                assert!(
                    rest.split('/')
                        .all(|c| !c.is_empty() && c != "." && c != ".."),
                    "{key}"
                );
                let parsed = naming.parse(rest).unwrap();
                assert_eq!(
                    (parsed.locator, parsed.fork, parsed.segno),
                    (locator, fork, segno),
                    "{key}"
                );
            }
            Err(_) => assert!(locator.validate().is_err(), "{locator:?} refused"),
        }
    }
}
