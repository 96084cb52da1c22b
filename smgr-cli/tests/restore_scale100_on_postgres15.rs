//! The scale-100 PostgreSQL 15 cluster (`scripts/pg-cluster.sh`, 1.5 GiB)
//! backed up to the S3 test server and restored elsewhere, stored plain
//! and compressed: both restores pass every file's CRC-32C and every
//! page's checksum (exit 0); PostgreSQL 15's `pg_verifybackup` accepts the
//! plain one with the manifest the restore leaves, and PostgreSQL 15
//! starts on it and counts the 10,000,000 rows of `pgbench_accounts`.
//! Then 100 rows change there: uploaded again into the same prefix,
//! exactly the files whose bytes changed go up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, smgr, upload, with_s3, Server};

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn restore(url: &str, into: &Path) -> serde_json::Value {
    let mut command = smgr();
    command.args(["restore", "--json", url]).arg(into);
    assert!(with_s3(&mut command));
    let done = run(&mut command);
    assert_eq!(done.code, 0, "{done:?}");
    serde_json::from_str(&done.stdout).unwrap()
}

#[test]
fn scale100_comes_back_and_postgres15_counts_its_rows() {
    let Some(cluster) = integration::pg15_cluster() else {
        return;
    };
    if integration::pg_checksums().is_none() {
        return;
    }
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    // Compressed: restored with every file and page checked.
    let Some((zst, _, _removal)) = upload(&cluster.data, "scale100-zst", &["--compress", "zstd"])
    else {
        return;
    };
    let report = restore(&zst, &scratch.path().join("from-zst"));
    assert!(report["files"].as_u64().unwrap() > 1000, "{report}");
    let accounts = cluster.relpath("pgbench_accounts");
    assert_eq!(
        std::fs::read(scratch.path().join("from-zst").join(accounts)).unwrap(),
        std::fs::read(cluster.data.join(accounts)).unwrap()
    );
    std::fs::remove_dir_all(scratch.path().join("from-zst")).unwrap();

    // Plain: restored, verified by PostgreSQL's tool, started.
    let Some((url, _, _removal)) = upload(&cluster.data, "scale100", &[]) else {
        return;
    };
    let restored = scratch.path().join("restored");
    let report = restore(&url, &restored);
    assert_eq!(report["bad_blocks"], serde_json::json!([]), "{report}");
    let verified = run(Command::new(Path::new(BIN).join("pg_verifybackup"))
        .arg("--no-parse-wal")
        .arg(&restored));
    assert_eq!(verified.code, 0, "{verified:?}");

    // What the bucket holds, as the restore wrote it.
    let before = digests(&restored);
    let server = Server::start(Path::new(BIN), &restored, scratch.path(), &[]);
    let count = server.psql("bench", "SELECT count(*) FROM pgbench_accounts");
    assert_eq!(count.stdout.trim(), "10000000", "{count:?}");

    // A few pages change (100 rows, a checkpoint; the server's own start
    // and stop change a few files too): uploaded again into the same
    // prefix, exactly the changed files move and the files gone go.
    let updated = server.psql(
        "bench",
        "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100; CHECKPOINT",
    );
    server.stop();
    assert_eq!(updated.code, 0, "{updated:?}");
    let after = digests(&restored);
    let changed = after
        .iter()
        .filter(|(path, digest)| before.get(*path) != Some(digest))
        .count() as u64;
    let gone: Vec<&String> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    let mut command = smgr();
    command.args(["upload", "--json"]).arg(&restored).arg(&url);
    assert!(with_s3(&mut command));
    let again = run(&mut command);
    assert_eq!(again.code, 0, "{again:?}");
    let again: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert!(changed > 0 && changed < 40, "{changed} files changed");
    assert_eq!(again["files"].as_u64(), Some(changed), "{again}");
    assert_eq!(
        again["unchanged"].as_u64(),
        Some(after.len() as u64 - changed),
        "{again}"
    );
    assert_eq!(again["deleted"], serde_json::json!(gone), "{again}");
}

/// Size and XXH3 of every file under `root` (the restore's
/// `backup_manifest` left out, as an upload leaves it out).
fn digests(root: &Path) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    common::each_entry(
        root,
        &mut |path, bytes| {
            if path != "backup_manifest" {
                let digest = (bytes.len() as u64, xxhash_rust::xxh3::xxh3_64(&bytes));
                out.insert(path, digest);
            }
        },
        &mut |_| {},
    );
    out
}
