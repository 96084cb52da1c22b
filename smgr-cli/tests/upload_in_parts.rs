//! `upload` sends files above the multipart threshold in parts, a few in
//! flight, and the object it assembles is the file byte for byte; files
//! below it go up whole.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use common::write_fork;
use smgr_cli::location::LocationOptions;
use smgr_cli::upload::{upload, UploadOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_go_up_in_parts_and_arrive_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 100 blocks = 800 KiB: 25 parts of 32 KiB; the FSM fork (3 blocks) is
    // below the threshold.
    write_fork(&data, "base/5/100", 100, 1000);
    write_fork(&data, "base/5/100_fsm", 3, 1000);
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let url = format!("file://{}/up", bucket.display());
    let options = LocationOptions {
        segment_blocks: 1000,
        ..LocationOptions::default()
    };
    let upload_options = UploadOptions {
        jobs: 2,
        multipart_above: 64 << 10,
        part_bytes: 32 << 10,
        parts_in_flight: 3,
        ..UploadOptions::default()
    };
    let progress = Arc::new(smgr_cli::verify::Progress::default());
    let report = upload(&data, &url, &options, upload_options, progress.clone())
        .await
        .unwrap();
    assert_eq!(report.files, 2);
    assert_eq!(report.multipart_files, 1);
    assert_eq!(report.bytes, 103 * 8192);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let done = progress.done.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(done, 103 * 8192, "progress counts every byte");
    for file in ["base/5/100", "base/5/100_fsm"] {
        assert_eq!(
            std::fs::read(bucket.join("up").join(file)).unwrap(),
            std::fs::read(data.join(file)).unwrap(),
            "{file}"
        );
    }
}
