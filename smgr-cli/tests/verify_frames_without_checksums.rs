//! `smgr verify --require-frame-checksums` on a compressed copy whose
//! frames carry no checksum (as another writer may leave them): without
//! the flag it verifies clean; with it, the fork is a problem naming the
//! object and frame (exit status 2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{smgr, verify_json, write_fork};
use smgr_object::testing::seekable_without_checksums;

#[test]
fn bare_frames_are_refused_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    write_fork(&bucket.join("c"), "base/5/100", 40, 1000);
    // Segment 0 becomes frames of 16 blocks with no checksum anywhere.
    let plain_path = bucket.join("c/base/5/100");
    let plain = std::fs::read(&plain_path).unwrap();
    let object = seekable_without_checksums(&plain, 16 * 8192).unwrap();
    std::fs::write(bucket.join("c/base/5/100.zst"), object).unwrap();
    std::fs::remove_file(&plain_path).unwrap();

    let url = format!("file://{}/c", bucket.display());
    let verify = |extra: &[&str]| {
        let mut command = smgr();
        command.args(["verify", "--json", "--segment-blocks", "1000"]);
        command.args(extra).arg(&url);
        verify_json(&mut command)
    };
    let (run, report) = verify(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(report["blocks"], 40);

    let (run, report) = verify(&["--require-frame-checksums"]);
    assert_eq!(run.code, 2, "{run:?}");
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| {
            let message = p["message"].as_str().unwrap();
            message.contains("base/5/100.zst") && message.contains("no checksum")
        }),
        "{report}"
    );
}
