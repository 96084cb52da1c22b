//! A symbolic link that leads back to a directory above it is an error
//! naming the link, not a walk that descends until paths grow too long.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{pg15_control, smgr_run, write_cluster_files, write_fork};

#[test]
fn a_link_back_up_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_fork(data, "base/5/100", 3, 16);
    write_cluster_files(data, &pg15_control(16), "15");
    std::os::unix::fs::symlink("..", data.join("base/5/up")).unwrap();
    let run = smgr_run(&["verify", data.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("base/5/up") && run.stderr.contains("symbolic link loop"),
        "{run:?}"
    );
    // A link elsewhere (not an ancestor) is followed, as pg_checksums does.
    std::fs::remove_file(data.join("base/5/up")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    write_fork(outside.path(), "rel/200", 2, 16);
    std::os::unix::fs::symlink(outside.path().join("rel"), data.join("base/6")).unwrap();
    let run = smgr_run(&["verify", "--json", data.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["blocks"], 5, "{report}");
}
