//! A second `smgr upload` into a prefix holding a finished upload sends
//! only what changed: a real PostgreSQL 18 cluster is uploaded to the S3
//! test server, then started, a few rows updated and a file of ours
//! removed, stopped, and uploaded again. The files that went up are
//! exactly the files whose bytes changed or that are new (counted against
//! the two copies of the directory), the rest stay, the removed file's
//! object is deleted, `--dry-run` then finds nothing to do, and a restore
//! gives the cluster as it is now, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::process::Command;

use common::{contents, run, smgr, with_s3, Server};
use integration::pg18_clusters;

fn upload_json(data: &std::path::Path, url: &str, extra: &[&str]) -> serde_json::Value {
    let mut command = smgr();
    command
        .args(["upload", "--json"])
        .arg(data)
        .arg(url)
        .args(extra);
    assert!(with_s3(&mut command));
    let up = run(&mut command);
    assert_eq!(up.code, 0, "{up:?}");
    serde_json::from_str(&up.stdout).unwrap()
}

#[test]
fn a_second_upload_sends_only_what_changed() {
    let Some(clusters) = pg18_clusters() else {
        return;
    };
    if integration::s3_server().is_none() {
        return;
    }
    let url = integration::s3_url("incremental");
    let _removal = integration::RemoveOnDrop(url.clone());
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // A copy of the cluster without a tablespace, to change.
    let data = scratch.path().join("data");
    let copied = run(Command::new("cp")
        .args(["-a", "--"])
        .arg(clusters.data("nochecksums"))
        .arg(&data));
    assert_eq!(copied.code, 0, "{copied:?}");
    std::fs::write(data.join("notes-of-ours.txt"), "to be removed").unwrap();
    let first = upload_json(&data, &url, &[]);
    let (before, _) = contents(&data);
    assert_eq!(first["files"].as_u64(), Some(before.len() as u64));

    // Change a few rows through PostgreSQL itself; remove our file.
    let server = Server::start(&clusters.bin, &data, scratch.path(), &[]);
    let updated = server.psql(
        "postgres",
        "UPDATE plain SET note = 'changed' WHERE id <= 3",
    );
    server.stop();
    assert_eq!(updated.code, 0, "{updated:?}");
    std::fs::remove_file(data.join("notes-of-ours.txt")).unwrap();

    let (after, _) = contents(&data);
    let changed_files: Vec<&String> = after
        .iter()
        .filter(|(path, bytes)| before.get(*path) != Some(bytes))
        .map(|(path, _)| path)
        .collect();
    let changed = changed_files.len() as u64;
    assert!(
        changed > 0 && changed < after.len() as u64 / 4,
        "{changed} of {}",
        after.len()
    );

    let dry = upload_json(&data, &url, &["--dry-run"]);
    assert_eq!(
        dry["to_upload"].as_array().map(|a| a.len() as u64),
        Some(changed),
        "{dry}\nchanged: {changed_files:?}"
    );
    let second = upload_json(&data, &url, &[]);
    assert_eq!(second["files"].as_u64(), Some(changed), "{second}");
    assert_eq!(
        second["unchanged"].as_u64(),
        Some(after.len() as u64 - changed),
        "{second}"
    );
    assert_eq!(
        second["deleted"],
        serde_json::json!(["notes-of-ours.txt"]),
        "{second}"
    );
    let again = upload_json(&data, &url, &["--dry-run"]);
    assert_eq!(again["to_upload"], serde_json::json!([]), "{again}");
    assert_eq!(again["deleted"], serde_json::json!([]), "{again}");

    // What is there now is the cluster as it is now.
    let back = scratch.path().join("back");
    let mut command = smgr();
    command.args(["restore", &url]).arg(&back);
    assert!(with_s3(&mut command));
    let restored = run(&mut command);
    assert_eq!(restored.code, 0, "{restored:?}");
    let (mut ours, _) = contents(&back);
    ours.remove("backup_manifest");
    assert_eq!(ours.len(), after.len());
    for (path, bytes) in &after {
        assert!(ours.get(path) == Some(bytes), "{path} differs");
    }
}
