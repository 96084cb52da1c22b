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
    for args in [
        &["verify"][..],
        &["verify", "--jobs", "0", "/tmp"],
        &["verify", "--max-ios", "100000", "/tmp"],
        &["verify", "--threads", "2", "file:///tmp"],
        &["scan", "--pool-mib", "99999999", "/tmp", "base/1/2"],
        &["bench", "--mib", "5000"],
        &["upload", "--compress", "gzip", "/tmp", "file:///tmp/x"],
        &["frobnicate"],
        &["verify", "/nonexistent/pgdata"],
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

#[test]
fn a_location_without_a_cluster_is_an_error_not_an_empty_success() {
    // An existing directory with files but no base/ or global/ (a wrong
    // path or prefix): pg_checksums refuses it, and so do we, instead of
    // reporting "0 files, all good".
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pg_wal")).unwrap();
    std::fs::write(dir.path().join("PG_VERSION"), "15\n").unwrap();
    let path = dir.path().to_str().unwrap();
    let url = format!("file://{path}");
    let target = format!("file://{path}/copy");
    for args in [
        &["verify", path][..],
        &["verify", "--json", path],
        &["verify", &url],
        &["upload", path, &target],
    ] {
        let run = smgr_run(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run:?}");
        assert!(
            run.stderr
                .contains("could not find a PostgreSQL data directory in")
                && run.stderr.contains("nothing in it under base/ or global/"),
            "{args:?}: {run:?}"
        );
    }
    // Once it has one relation file, it is a (small) cluster.
    std::fs::create_dir_all(dir.path().join("global")).unwrap();
    std::fs::write(dir.path().join("global/1262"), [0u8; 8192]).unwrap();
    let run = smgr_run(&["verify", path]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Blocks scanned:  1"), "{run:?}");
}

#[test]
fn rust_log_turns_on_logging_and_it_is_off_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    common::write_fork(dir.path(), "base/5/100", 8, 4);
    let path = dir.path().to_str().unwrap();
    let quiet = smgr_run(&["verify", path, "--segment-blocks", "4"]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert_eq!(quiet.stderr, "", "{quiet:?}");

    let logged = common::run(
        common::smgr()
            .args(["verify", path, "--segment-blocks", "4"])
            .env("RUST_LOG", "smgr_cli=debug"),
    );
    assert_eq!(logged.code, 0, "{logged:?}");
    assert!(
        logged.stderr.contains("DEBUG") && logged.stderr.contains("verified"),
        "{logged:?}"
    );
    // Logs go to stderr: the report on stdout is the same.
    assert_eq!(
        logged
            .stdout
            .lines()
            .filter(|l| !l.starts_with("Read:"))
            .collect::<Vec<_>>(),
        quiet
            .stdout
            .lines()
            .filter(|l| !l.starts_with("Read:"))
            .collect::<Vec<_>>()
    );
}
