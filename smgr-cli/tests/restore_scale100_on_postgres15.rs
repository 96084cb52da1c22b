//! The scale-100 PostgreSQL 15 cluster (`scripts/pg-cluster.sh`, 1.5 GiB)
//! backed up to the S3 test server and restored elsewhere, stored plain
//! and compressed: both restores pass every file's CRC-32C and every
//! page's checksum (exit 0); PostgreSQL 15's `pg_verifybackup` accepts the
//! plain one with the manifest the restore leaves, and PostgreSQL 15
//! starts on it and counts the 10,000,000 rows of `pgbench_accounts`.

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

    let server = Server::start(Path::new(BIN), &restored, scratch.path(), &[]);
    let count = server.psql("bench", "SELECT count(*) FROM pgbench_accounts");
    server.stop();
    assert_eq!(count.stdout.trim(), "10000000", "{count:?}");
}
