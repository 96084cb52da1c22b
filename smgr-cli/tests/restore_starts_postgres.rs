//! `smgr restore` of a real PostgreSQL 18 cluster with a user tablespace,
//! uploaded to the S3 test server: the restored directory (its tablespace
//! mapped elsewhere with `--tablespace`) passes PostgreSQL 18's own
//! `pg_verifybackup` with the manifest the restore leaves there, and
//! PostgreSQL 18 starts on it and answers with the rows the cluster had.
//! A page damaged and an object removed in the bucket make restore and
//! verify fail, naming each. A restore into a directory that is not empty
//! is refused and touches nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::process::Command;

use common::{run, smgr, upload, with_s3, Server};
use integration::pg18_clusters;

#[test]
fn a_restored_cluster_starts_and_passes_pg_verifybackup() {
    let Some(clusters) = pg18_clusters() else {
        return;
    };
    let data = clusters.data("tablespace");
    let Some((url, _, _removal)) = upload(&data, "restore-pg18", &[]) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    // PostgreSQL (as its own user) must reach what is below.
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let restored = scratch.path().join("restored");
    let spc = scratch.path().join("spc");
    let oid = common::tablespace_oid(&data);
    let mut command = smgr();
    command
        .args(["restore", "--json", &url])
        .arg(&restored)
        .arg("--tablespace")
        .arg(format!("{oid}={}", spc.display()));
    assert!(with_s3(&mut command));
    let done = run(&mut command);
    assert_eq!(done.code, 0, "{done:?}");
    let report: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(report["bad_blocks"], serde_json::json!([]), "{report}");
    assert!(report["files"].as_u64().unwrap() > 900, "{report}");
    assert_eq!(
        std::fs::read_link(restored.join("pg_tblspc").join(&oid)).unwrap(),
        spc
    );
    // Byte for byte: a table's file in the tablespace and a catalog file.
    let spread = clusters.relpath("tablespace", "spread");
    for file in [spread.as_str(), "global/1262", "PG_VERSION"] {
        assert_eq!(
            std::fs::read(restored.join(file)).unwrap(),
            std::fs::read(data.join(file)).unwrap(),
            "{file}"
        );
    }

    let verified = run(Command::new(clusters.bin.join("pg_verifybackup"))
        .arg("--no-parse-wal")
        .arg(&restored));
    assert_eq!(verified.code, 0, "{verified:?}");

    // PostgreSQL starts on it and has the rows.
    let server = Server::start(&clusters.bin, &restored, scratch.path(), &[&spc]);
    let spread_rows = server.psql("postgres", "SELECT count(*) FROM spread");
    let plain_rows = server.psql("postgres", "SELECT count(*) FROM plain");
    server.stop();
    assert_eq!(spread_rows.stdout.trim(), "20000", "{spread_rows:?}");
    assert_eq!(plain_rows.stdout.trim(), "5000", "{plain_rows:?}");

    // In the bucket, a page of a table in the tablespace damaged and a
    // commit log segment removed: restore and verify both fail, naming
    // each (the page found by its checksum too).
    let table = clusters.relpath("tablespace", "spread");
    damage_on_s3(&url, &table, "pg_xact/0000");
    let mut command = smgr();
    command
        .args(["restore", "--json", &url])
        .arg(scratch.path().join("damaged"))
        .arg("--tablespace")
        .arg(format!(
            "{oid}={}",
            scratch.path().join("damaged-spc").display()
        ));
    assert!(with_s3(&mut command));
    let damaged = run(&mut command);
    assert_eq!(damaged.code, 2, "{damaged:?}");
    let report: serde_json::Value = serde_json::from_str(&damaged.stdout).unwrap();
    assert_eq!(report["bad_blocks"][0]["file"], table.as_str(), "{report}");
    let problems = report["problems"].to_string();
    assert!(
        problems.contains(&table) && problems.contains("CRC-32C"),
        "{problems}"
    );
    assert!(
        problems.contains("pg_xact/0000") && problems.contains("missing"),
        "{problems}"
    );
    let mut command = smgr();
    command.args(["verify", &url]);
    assert!(with_s3(&mut command));
    let verified = run(&mut command);
    assert_eq!(verified.code, 2, "{verified:?}");
    assert!(verified.stdout.contains(&table), "{verified:?}");
    assert!(verified.stdout.contains("pg_xact/0000"), "{verified:?}");

    // Into a directory that is not empty: refused, nothing touched.
    let busy = scratch.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep"), "mine").unwrap();
    let mut command = smgr();
    command.args(["restore", &url]).arg(&busy);
    assert!(with_s3(&mut command));
    let refused = run(&mut command);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("not empty"), "{refused:?}");
    let left: Vec<_> = std::fs::read_dir(&busy).unwrap().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(std::fs::read(busy.join("keep")).unwrap(), b"mine");
}

/// Flips a byte in the second page of object `page_of` and deletes
/// object `gone`, under the upload at `url` on the S3 test server.
fn damage_on_s3(url: &str, page_of: &str, gone: &str) {
    use object_store::ObjectStoreExt;

    let options = integration::s3_server().unwrap();
    let (store, prefix, _) = smgr_object::store_from_url(url, &options).unwrap();
    let path = |key: &str| smgr_object::object_path(&format!("{prefix}/{key}")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut bytes = store
            .get(&path(page_of))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        bytes[8192 + 4000] ^= 0x55;
        store.put(&path(page_of), bytes.into()).await.unwrap();
        store.delete(&path(gone)).await.unwrap();
    });
}
