//! `smgr restore` checks what it writes: a real PostgreSQL 18 cluster
//! uploaded compressed comes back byte for byte (every file, every empty
//! directory); a page damaged in the bucket is reported as a bad page and
//! a damaged file (exit 1 is not enough: its CRC-32C differs, exit 2),
//! and an object removed from the bucket as missing, each naming the
//! file; `verify` of the bucket fails on both too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::path::Path;

use common::{contents, run, smgr, Run};
use integration::pg18_clusters;

/// Restores `url` into `into`, tablespace `oid` into `into` + `-spc`.
fn restore(url: &str, into: &Path, oid: &str) -> (Run, serde_json::Value) {
    let spc = format!("{oid}={}-spc", into.display());
    let done = run(smgr()
        .args(["restore", "--json", url])
        .arg(into)
        .args(["--tablespace", &spc]));
    let report = serde_json::from_str(&done.stdout).unwrap_or_default();
    (done, report)
}

#[test]
fn a_compressed_upload_comes_back_and_damage_is_named() {
    let Some(clusters) = pg18_clusters() else {
        return;
    };
    let data = clusters.data("tablespace");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/bucket/z", dir.path().display());
    let up = run(smgr()
        .arg("upload")
        .arg(&data)
        .arg(&url)
        .args(["--compress", "zstd"]));
    assert_eq!(up.code, 0, "{up:?}");

    let back = dir.path().join("back");
    let spc = dir.path().join("spc");
    let oid = common::tablespace_oid(&data);
    let done = run(smgr()
        .args(["restore", &url])
        .arg(&back)
        .arg("--tablespace")
        .arg(format!("{oid}={}", spc.display())));
    assert_eq!(done.code, 0, "{done:?}");
    let (mut ours, our_dirs) = contents(&back);
    let (theirs, their_dirs) = contents(&data);
    // The restore leaves the manifest, as pg_basebackup does.
    assert!(ours.remove("backup_manifest").is_some());
    assert_eq!(our_dirs, their_dirs);
    assert_eq!(ours.len(), theirs.len());
    for (path, bytes) in &theirs {
        assert!(ours.get(path) == Some(bytes), "{path} differs");
    }

    // A page of a table damaged in the bucket (its object is stored
    // compressed: damage it in a plain copy of the cluster instead).
    let plain_url = format!("file://{}/bucket/plain", dir.path().display());
    let up = run(smgr().arg("upload").arg(&data).arg(&plain_url));
    assert_eq!(up.code, 0, "{up:?}");
    let table = clusters.relpath("tablespace", "plain");
    let object = dir.path().join("bucket/plain").join(&table);
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[8192 + 4000] ^= 0x55;
    std::fs::write(&object, bytes).unwrap();
    // And a commit log segment gone.
    std::fs::remove_file(dir.path().join("bucket/plain/pg_xact/0000")).unwrap();

    let (damaged, report) = restore(&plain_url, &dir.path().join("damaged"), &oid);
    assert_eq!(damaged.code, 2, "{damaged:?}");
    let bad = &report["bad_blocks"];
    assert_eq!(bad.as_array().map(Vec::len), Some(1), "{damaged:?}");
    assert_eq!(bad[0]["file"], table.as_str());
    assert_eq!(bad[0]["block_in_file"], 1);
    let problems = report["problems"].to_string();
    assert!(
        problems.contains(&table) && problems.contains("CRC-32C"),
        "{problems}"
    );
    assert!(
        problems.contains("pg_xact/0000") && problems.contains("missing"),
        "{problems}"
    );

    let verify = run(smgr().args(["verify", &plain_url]));
    assert_eq!(verify.code, 2, "{verify:?}");
    assert!(verify.stdout.contains(&table), "{verify:?}");
    assert!(verify.stdout.contains("pg_xact/0000"), "{verify:?}");
}
