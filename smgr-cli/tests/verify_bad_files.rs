//! `smgr verify` on small data directories with one thing wrong each: a bad
//! page is exit status 1 with the file, block in file and block of the
//! fork; pages `pg_checksums` passes but the server would refuse are
//! warnings with exit status 0, and bad with `--strict`; a truncated segment, a partial last block, an unexpected file name
//! and an unreadable file are each a one-line message naming the file and
//! exit status 2, and the rest of the directory is still checked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use smgr_cli::control::{ControlFile, DbState};

use common::{
    bad_blocks, blocks_listed, edit_page, flip, smgr, smgr_run, verify_json, write_fork, Run,
};

/// A data directory: relation 100 in two segments (4 + 2 blocks, segments
/// of 4 blocks), relation 200 with an FSM fork, and the files pg_checksums
/// skips.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fork(dir.path(), "base/5/100", 6, 4);
    write_fork(dir.path(), "base/5/200", 3, 4);
    write_fork(dir.path(), "base/5/200_fsm", 2, 4);
    write_fork(dir.path(), "global/1262", 1, 4);
    std::fs::write(dir.path().join("base/5/PG_VERSION"), "15\n").unwrap();
    std::fs::write(dir.path().join("base/5/pg_filenode.map"), [0u8; 512]).unwrap();
    std::fs::write(
        dir.path().join("global/pg_control"),
        control(1, 1).to_bytes(),
    )
    .unwrap();
    std::fs::write(dir.path().join("base/5/pg_internal.init"), [2u8; 100]).unwrap();
    std::fs::create_dir_all(dir.path().join("base/pgsql_tmp")).unwrap();
    std::fs::write(dir.path().join("base/pgsql_tmp/pgsql_tmp1.0"), [3u8; 10]).unwrap();
    dir
}

/// A control file for a cluster of 4-block segments in `state` (1 is
/// shut down), with data checksums version `checksums` (0: off).
fn control(state: u32, checksums: u32) -> ControlFile {
    ControlFile {
        version: 1300,
        catalog_version: 202209061,
        state: DbState(state),
        block_size: 8192,
        segment_blocks: 4,
        system_identifier: 7_000_000_000_000_000_001,
        checkpoint: 0x0200_0060,
        redo: 0x0200_0028,
        timeline: 1,
        data_checksum_version: checksums,
    }
}

fn verify(dir: &Path) -> Run {
    smgr_run(&["verify", dir.to_str().unwrap(), "--segment-blocks", "4"])
}

fn assert_problem(run: &Run, file: &str, words: &str) {
    assert_eq!(run.code, 2, "{run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("error: {file}: ")))
        .unwrap_or_else(|| panic!("no error line for {file}: {run:?}"));
    assert!(line.contains(words), "{line:?} should say {words:?}");
}

#[test]
fn a_clean_directory_passes_quietly() {
    let dir = data_dir();
    let run = verify(dir.path());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Files scanned:   5"), "{run:?}");
    assert!(run.stdout.contains("Blocks scanned:  12"), "{run:?}");
    assert!(run.stdout.contains("Bad checksums:   0"), "{run:?}");
    // Not a terminal: no progress bar, nothing on stderr.
    assert_eq!(run.stderr, "", "{run:?}");

    let (run, report) = verify_json(smgr().args([
        "verify",
        "--json",
        "--segment-blocks",
        "4",
        dir.path().to_str().unwrap(),
    ]));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(report["blocks"], 12);
    assert_eq!(report["files"], 5);
    assert_eq!(report["forks"], 4);
    assert_eq!(report["skipped_files"], 4);
    assert_eq!(report["bad_blocks"].as_array().unwrap().len(), 0);
}

#[test]
fn a_bad_page_is_exit_1_with_file_block_and_fork_block() {
    let dir = data_dir();
    // Block 1 of base/5/100.1 is block 5 of the fork.
    flip(&dir.path().join("base/5/100.1"), 8192 + 3000, 0x20);
    let run = verify(dir.path());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(
            "checksum verification failed in file \"base/5/100.1\", block 1 (block 5 of the fork)"
        ),
        "{run:?}"
    );
    let (_, report) = verify_json(smgr().args([
        "verify",
        "--json",
        "--segment-blocks",
        "4",
        dir.path().to_str().unwrap(),
    ]));
    assert_eq!(bad_blocks(&report), vec![("base/5/100.1".to_owned(), 1)]);
    assert_eq!(report["bad_blocks"][0]["block"], 5);
    assert_eq!(report["blocks"], 12, "the bad block is counted as scanned");
}

#[test]
fn pg_control_decides_whether_the_cluster_can_be_checked_or_uploaded() {
    let dir = data_dir();
    let pg_control = dir.path().join("global/pg_control");
    let refused = |words: &str| {
        let run = verify(dir.path());
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
        assert!(run.stderr.contains(words), "{words:?}: {run:?}");
        assert!(run.stdout.is_empty(), "nothing checked: {run:?}");
    };
    // A running server (its pages may be mid-write), as pg_checksums.
    std::fs::write(&pg_control, control(6, 1).to_bytes()).unwrap();
    refused("must be shut down (pg_control says: in production)");
    // Checksums off: every page would look bad; say so instead.
    std::fs::write(&pg_control, control(1, 0).to_bytes()).unwrap();
    refused("data checksums are not enabled");
    let headers_only = smgr_run(&[
        "verify",
        "--no-checksums",
        "--segment-blocks",
        "4",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(headers_only.code, 0, "{headers_only:?}");
    // Sizes not given are the cluster's; given ones must be its own.
    std::fs::write(&pg_control, control(1, 1).to_bytes()).unwrap();
    let data = dir.path().to_str().unwrap();
    let cluster_sizes = smgr_run(&["verify", data]);
    assert_eq!(cluster_sizes.code, 0, "{cluster_sizes:?}");
    let other_segments = smgr_run(&["verify", data, "--segment-blocks", "8"]);
    assert_eq!(other_segments.code, 2, "{other_segments:?}");
    assert!(
        other_segments
            .stderr
            .contains("segments hold 4 blocks (pg_control) but --segment-blocks is 8"),
        "{other_segments:?}"
    );
    // A damaged control file.
    let mut bytes = control(1, 1).to_bytes();
    bytes[100] ^= 0x10;
    std::fs::write(&pg_control, bytes).unwrap();
    refused("control file CRC is incorrect");
    // Shut down in recovery (a stopped standby) is fine.
    std::fs::write(&pg_control, control(2, 1).to_bytes()).unwrap();
    assert_eq!(verify(dir.path()).code, 0);

    // upload refuses a running cluster too (its copy could hold torn
    // pages), and takes a stopped one.
    let bucket = tempfile::tempdir().unwrap();
    let url = format!("file://{}/copy", bucket.path().display());
    let data = dir.path().to_str().unwrap();
    std::fs::write(&pg_control, control(6, 1).to_bytes()).unwrap();
    let up = smgr_run(&["upload", data, &url, "--segment-blocks", "4"]);
    assert_eq!(up.code, 2, "{up:?}");
    assert!(up.stderr.contains("must be shut down"), "{up:?}");
    assert!(
        !bucket.path().join("copy").exists(),
        "nothing uploaded: {up:?}"
    );
    std::fs::write(&pg_control, control(1, 1).to_bytes()).unwrap();
    let up = smgr_run(&["upload", data, &url, "--segment-blocks", "4"]);
    assert_eq!(up.code, 0, "{up:?}");
}

#[test]
fn one_thread_and_several_find_the_same() {
    let dir = data_dir();
    // Bad pages in three forks, so that each thread gets some.
    flip(&dir.path().join("base/5/100"), 2 * 8192 + 100, 0x01);
    flip(&dir.path().join("base/5/100.1"), 8192 + 3000, 0x20);
    flip(&dir.path().join("base/5/200_fsm"), 5000, 0x80);
    flip(&dir.path().join("global/1262"), 7000, 0x04);
    let run = |threads: &str, jobs: &str| {
        let (run, report) = verify_json(smgr().args([
            "verify",
            "--json",
            "--segment-blocks",
            "4",
            "--threads",
            threads,
            "--jobs",
            jobs,
            dir.path().to_str().unwrap(),
        ]));
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(report["blocks"], 12, "{run:?}");
        bad_blocks(&report)
    };
    let one = run("1", "1");
    assert_eq!(
        one,
        vec![
            ("base/5/100".to_owned(), 2),
            ("base/5/100.1".to_owned(), 1),
            ("base/5/200_fsm".to_owned(), 0),
            ("global/1262".to_owned(), 0),
        ]
    );
    assert_eq!(run("2", "4"), one);
    assert_eq!(run("3", "3"), one);
}

#[test]
fn pages_only_the_server_refuses_are_warnings_unless_strict() {
    let dir = data_dir();
    // Block 1 of base/5/100.1 (block 5 of the fork): pd_upper zeroed, so
    // pg_checksums takes it for a new page and skips it.
    edit_page(&dir.path().join("base/5/100.1"), 1, |page| {
        page[14..16].fill(0)
    });
    // Block 2 of base/5/200: an impossible pd_flags bit under a checksum
    // made to match.
    edit_page(&dir.path().join("base/5/200"), 2, |page| {
        page[10..12].copy_from_slice(&0x0100u16.to_le_bytes());
        let sum = smgr_api::pg_checksum_page(page, 2);
        page[8..10].copy_from_slice(&sum.to_le_bytes());
    });
    let run = verify(dir.path());
    assert_eq!(run.code, 0, "{run:?}");
    for (file, block, fork_block) in [("base/5/100.1", 1, 5), ("base/5/200", 2, 2)] {
        let warning = format!(
            "warning: page passes pg_checksums but PostgreSQL would refuse to read it: \
             file \"{file}\", block {block} (block {fork_block} of the fork)"
        );
        assert!(run.stdout.contains(&warning), "{warning:?} in {run:?}");
    }
    assert!(run.stdout.contains("Bad checksums:   0"), "{run:?}");
    assert!(run.stdout.contains("Server rejects:  2"), "{run:?}");

    let strict = |json: bool| {
        let mut command = smgr();
        command.args(["verify", "--strict", "--segment-blocks", "4"]);
        if json {
            command.arg("--json");
        }
        command.arg(dir.path());
        command
    };
    let (run, report) = verify_json(&mut strict(true));
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        bad_blocks(&report),
        vec![("base/5/100.1".to_owned(), 1), ("base/5/200".to_owned(), 2)]
    );
    assert!(blocks_listed(&report, "server_rejects").is_empty());
    let run = common::run(&mut strict(false));
    assert_eq!(run.code, 1, "{run:?}");
}

#[test]
fn a_truncated_segment_is_named() {
    let dir = data_dir();
    let first = dir.path().join("base/5/100");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(3 * 8192)
        .unwrap();
    let run = verify(dir.path());
    assert_problem(
        &run,
        "base/5/100",
        "truncated: 24576 bytes (3 whole blocks)",
    );
}

#[test]
fn a_partial_last_block_is_named() {
    let dir = data_dir();
    let last = dir.path().join("base/5/100.1");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(2 * 8192 + 100)
        .unwrap();
    let run = verify(dir.path());
    assert_problem(&run, "base/5/100.1", "partial last block");
    assert!(run.stdout.contains("Blocks scanned:  12"), "{run:?}");
}

#[test]
fn an_unexpected_file_name_is_named_and_the_rest_still_checked() {
    let dir = data_dir();
    std::fs::write(dir.path().join("base/5/notes.txt"), [7u8; 8192]).unwrap();
    flip(&dir.path().join("base/5/200"), 2 * 8192 + 500, 0x01);
    let run = verify(dir.path());
    assert_problem(&run, "base/5/notes.txt", "unexpected file");
    assert!(
        run.stdout
            .contains("checksum verification failed in file \"base/5/200\", block 2"),
        "{run:?}"
    );
}

#[test]
fn an_unreadable_file_is_named() {
    let dir = data_dir();
    let victim = dir.path().join("base/5/100.1");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = if is_root() {
        // Root reads any file: run the check as `nobody`, from a copy of
        // the binary it can execute, over directories it can enter.
        for dir in [
            dir.path().to_owned(),
            dir.path().join("base"),
            dir.path().join("base/5"),
            dir.path().join("global"),
        ] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for file in [
            "base/5/100",
            "base/5/200",
            "base/5/200_fsm",
            "global/1262",
            "base/5/PG_VERSION",
            "base/5/pg_filenode.map",
            "global/pg_control",
            "base/5/pg_internal.init",
        ] {
            std::fs::set_permissions(
                dir.path().join(file),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        let bin = dir.path().join("smgr-copy");
        std::fs::copy(env!("CARGO_BIN_EXE_smgr"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        common::run(
            std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin)
                .args(["verify", "--segment-blocks", "4"])
                .arg(dir.path())
                .env_remove("RUST_LOG"),
        )
    } else {
        verify(dir.path())
    };
    assert_problem(&run, "base/5/100.1", "Permission denied");
    assert!(run.stdout.contains("Bad checksums:   0"), "{run:?}");
}

fn is_root() -> bool {
    // The owner of a file we just created is our effective user.
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().metadata().unwrap().uid() == 0
}
