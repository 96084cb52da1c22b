//! Every subcommand has `--help`; usage mistakes and unusable locations are
//! one line on stderr and exit status 2, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::smgr_run;

#[test]
fn every_subcommand_has_help() {
    for sub in ["demo", "verify", "scan", "upload", "bench"] {
        let run = smgr_run(&[sub, "--help"]);
        assert_eq!(run.code, 0, "{sub}: {run:?}");
        assert!(run.stdout.contains("Usage: smgr"), "{sub}: {run:?}");
    }
    let run = smgr_run(&["--help"]);
    assert!(run.stdout.contains("RUST_LOG"), "{run:?}");
}

#[test]
fn usage_errors_and_bad_locations_exit_2_in_one_line() {
    let missing = smgr_run(&["verify"]);
    assert_eq!(missing.code, 2, "{missing:?}");

    for args in [
        &["verify", "/nonexistent/pgdata"][..],
        &["verify", "s3://"],
        &["verify", "ftp://host/dir"],
        &["verify", "--block-size", "3000", "/tmp"],
        &["scan", "/tmp", "pg_wal/0001"],
    ] {
        let run = smgr_run(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("smgr: "), "{args:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
    }
}
