//! A real PostgreSQL 18 cluster uploaded compressed (relation segments as
//! seekable zstd objects) comes back from `smgr restore` byte for byte:
//! every file, every empty directory, the tablespace where it was mapped.
//! (Damage in the bucket: `restore_starts_postgres`, on the S3 server.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{contents, run, smgr};
use integration::pg18_clusters;

#[test]
fn a_compressed_upload_comes_back_byte_for_byte() {
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
}
