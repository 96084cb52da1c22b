//! The tablespace version directory (`PG_18_202506291`) comes from the
//! cluster, as `pg_checksums` finds it: `PG_VERSION` and the catalog
//! version in `pg_control`, in a directory and in a bucket. Once a
//! PostgreSQL 18 cluster with a user tablespace was refused unless the user
//! knew to pass `--tablespace-version-dir`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use smgr_cli::control::ControlFile;

use common::{pg15_control, run, smgr, with_s3, write_cluster_files, write_fork};

#[test]
fn verify_finds_the_tablespace_directory_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_fork(data, "base/5/100", 3, 131072);
    write_fork(data, "pg_tblspc/16400/PG_18_202506291/5/200", 5, 131072);
    let control = ControlFile {
        version: 1800,
        catalog_version: 202506291,
        ..pg15_control(131072)
    };
    write_cluster_files(data, &control, "18");
    let data = data.to_str().unwrap();

    let verify = |location: &str, s3: bool| {
        let mut command = smgr();
        command.args(["verify", "--json", location]);
        if s3 {
            assert!(with_s3(&mut command));
        }
        let run = run(&mut command);
        assert_eq!(run.code, 0, "{location}: {run:?}");
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(report["blocks"], 8, "{location}: {report}");
        assert_eq!(report["files"], 2, "{location}: {report}");
    };
    verify(data, false);

    // A stated directory still wins (and this one is wrong).
    let wrong = run(smgr().args([
        "verify",
        data,
        "--tablespace-version-dir",
        "PG_15_202209061",
    ]));
    assert_eq!(wrong.code, 2, "{wrong:?}");

    let Some(_) = integration::s3_server() else {
        return;
    };
    let url = integration::s3_url("tablespace");
    let _cleanup = integration::RemoveOnDrop(url.clone());
    let mut upload = smgr();
    upload.args(["upload", data, &url]);
    assert!(with_s3(&mut upload));
    let up = run(&mut upload);
    assert_eq!(up.code, 0, "{up:?}");
    verify(&url, true);
}
