//! `smgr upload` copies a whole stopped cluster (every file and
//! directory, the tablespace's files under `pg_tblspc/OID/`) and writes
//! PostgreSQL's `backup_manifest` of it: on a real PostgreSQL 18 cluster
//! with a user tablespace, uploaded to a `file://` store (whose objects are
//! files laid out as the keys say), PostgreSQL 18's own `pg_verifybackup`
//! accepts the copy with that manifest: every file there, sizes and
//! CRC-32Cs right, the manifest's own checksum and the system identifier
//! right. A copy with one byte changed is refused, naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{run, smgr};
use integration::pg18_clusters;

#[test]
fn pg_verifybackup_accepts_the_uploaded_cluster() {
    let Some(clusters) = pg18_clusters() else {
        return;
    };
    let data = clusters.data("tablespace");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/copy", dir.path().display());
    let up = run(smgr().arg("upload").arg("--json").arg(&data).arg(&url));
    assert_eq!(up.code, 0, "{up:?}");
    let report: serde_json::Value = serde_json::from_str(&up.stdout).unwrap();
    assert_eq!(report["tablespaces"], 1, "{report}");
    let copy = dir.path().join("copy");
    let manifest = std::fs::read_to_string(copy.join("backup_manifest")).unwrap();
    assert!(
        manifest.contains("\"Path\": \"pg_tblspc/"),
        "no tablespace files"
    );

    let verifybackup = |copy: &std::path::Path| {
        run(
            std::process::Command::new(clusters.bin.join("pg_verifybackup"))
                .args(["--no-parse-wal", "--ignore", "smgr-manifest.json"])
                .arg(copy),
        )
    };
    let ok = verifybackup(&copy);
    assert_eq!(ok.code, 0, "{ok:?}");

    // One byte changed in the copy of a catalog file: refused, named.
    let victim = copy.join("global/1262");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let bad = verifybackup(&copy);
    assert_ne!(bad.code, 0, "{bad:?}");
    assert!(bad.stderr.contains("global/1262"), "{bad:?}");
}
