//! `smgr demo` and `smgr bench` run end to end on generated data and print
//! their tables.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::smgr_run;

#[test]
fn the_demo_scans_verifies_and_catches_a_flipped_byte() {
    let run = smgr_run(&["demo", "--blocks", "1024", "--segment-blocks", "256"]);
    assert_eq!(run.code, 0, "{run:?}");
    for row in ["stream ", "one block at a time", "verify (4 streams)"] {
        assert!(run.stdout.contains(row), "{row}: {run:?}");
    }
    assert!(run.stdout.contains("verified 1024 pages: 0 bad"), "{run:?}");
    assert!(
        run.stdout
            .contains("base/5/16396.3 block 255 (block 1023 of the fork): checksum mismatch"),
        "{run:?}"
    );
}

#[test]
fn the_bench_prints_a_table_of_ratios() {
    let run = smgr_run(&["bench", "--mib", "16"]);
    assert_eq!(run.code, 0, "{run:?}");
    for baseline in [
        "raw 128 KiB preadv loop",
        "read_buffer loop",
        "read_buffer hits",
        "pg_checksums-style loop",
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains(baseline))
            .unwrap_or_else(|| panic!("no row for {baseline}: {run:?}"));
        let ratio: f64 = line
            .split_whitespace()
            .rev()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(ratio > 0.0, "{line}");
    }
}
