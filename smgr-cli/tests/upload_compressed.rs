//! `smgr upload --compress zstd[:LEVEL]` stores segments as zstd seekable
//! objects (`.zst`) that the real `zstd -d` turns back into the files byte
//! for byte, and `smgr verify` and `scan` read them unchanged: the same
//! findings as on the directory, with stored bytes below logical bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use common::{bad_blocks, flip, smgr, smgr_run, verify_json, write_fork};
use smgr_cli::location::LocationOptions;
use smgr_cli::upload::{upload, UploadOptions};

fn data_dir(dir: &std::path::Path) {
    write_fork(dir, "base/5/100", 300, 128);
    write_fork(dir, "base/5/100_fsm", 3, 128);
    write_fork(dir, "global/1262", 2, 128);
    std::fs::write(dir.join("base/5/PG_VERSION"), "15\n").unwrap();
}

/// `zstd -d` of `path` by the real command; `None` where it is not
/// installed, unless the test run requires it (`SMGR_REQUIRE_ZSTD=1`, as
/// `scripts/test` sets).
fn zstd_d(path: &std::path::Path) -> Option<Vec<u8>> {
    let out = match std::process::Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .arg(path)
        .output()
    {
        Ok(out) => out,
        Err(err) => {
            assert!(
                std::env::var("SMGR_REQUIRE_ZSTD").map_or(true, |v| v != "1"),
                "the zstd command is required (SMGR_REQUIRE_ZSTD=1) but cannot run: {err}"
            );
            eprintln!("SKIPPED: zstd -d ({err})");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "zstd -d {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

#[test]
fn compressed_uploads_verify_and_scan_like_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    data_dir(&data);
    flip(&data.join("base/5/100.1"), 7 * 8192 + 5000, 0x08);
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let url = format!("file://{}/z", bucket.display());

    let up = smgr_run(&[
        "upload",
        data.to_str().unwrap(),
        &url,
        "--segment-blocks",
        "128",
        "--compress",
        "zstd:3",
    ]);
    assert_eq!(up.code, 0, "{up:?}");
    // The five segments compressed, base/5/PG_VERSION as it is.
    assert!(
        up.stdout.contains("uploaded 6 files (5 relation segments"),
        "{up:?}"
    );
    assert_eq!(
        std::fs::read(bucket.join("z/base/5/PG_VERSION")).unwrap(),
        b"15\n"
    );
    for file in [
        "base/5/100",
        "base/5/100.1",
        "base/5/100.2",
        "base/5/100_fsm",
        "global/1262",
    ] {
        let object = bucket.join("z").join(format!("{file}.zst"));
        assert!(object.exists(), "{file}.zst missing");
        assert!(
            !bucket.join("z").join(file).exists(),
            "plain {file} uploaded too"
        );
        if let Some(plain) = zstd_d(&object) {
            assert!(
                plain == std::fs::read(data.join(file)).unwrap(),
                "zstd -d of {file} differs"
            );
        }
    }

    let (local_run, local) = verify_json(smgr().args([
        "verify",
        "--json",
        "--segment-blocks",
        "128",
        data.to_str().unwrap(),
    ]));
    let (remote_run, remote) =
        verify_json(smgr().args(["verify", "--json", "--segment-blocks", "128", &url]));
    assert_eq!(local_run.code, 1, "{local_run:?}");
    assert_eq!(remote_run.code, 1, "{remote_run:?}");
    assert_eq!(bad_blocks(&remote), bad_blocks(&local));
    assert_eq!(bad_blocks(&remote), vec![("base/5/100.1".to_owned(), 7)]);
    assert_eq!(remote["blocks"], local["blocks"]);
    assert_eq!(remote["bytes"], local["bytes"]);
    assert!(
        remote["stored_bytes"].as_u64().unwrap() < remote["bytes"].as_u64().unwrap() / 2,
        "{remote}"
    );
    let text = smgr_run(&["verify", "--segment-blocks", "128", &url]);
    assert!(text.stdout.contains("Stored:"), "{text:?}");

    let scan = smgr_run(&[
        "scan",
        "--json",
        "--segment-blocks",
        "128",
        &url,
        "base/5/100_fsm",
    ]);
    assert_eq!(scan.code, 0, "{scan:?}");
    let scan: serde_json::Value = serde_json::from_str(&scan.stdout).unwrap();
    assert_eq!(scan["blocks"], 3);

    // A damaged seek table (its frame count no longer adds up) fails its
    // own fork, named, with exit status 2; every other fork is still
    // checked and the bad page still found.
    let fsm = bucket.join("z/base/5/100_fsm.zst");
    let mut object = std::fs::read(&fsm).unwrap();
    let count_at = object.len() - 9;
    object[count_at] ^= 0x01;
    std::fs::write(&fsm, object).unwrap();
    let (damaged_run, damaged) =
        verify_json(smgr().args(["verify", "--json", "--segment-blocks", "128", &url]));
    assert_eq!(damaged_run.code, 2, "{damaged_run:?}");
    assert_eq!(bad_blocks(&damaged), vec![("base/5/100.1".to_owned(), 7)]);
    let problems = damaged["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{damaged}");
    assert_eq!(problems[0]["file"], "base/5/100_fsm", "{damaged}");
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("this fork is not checked"),
        "{damaged}"
    );
    assert_eq!(
        damaged["blocks"].as_u64().unwrap(),
        local["blocks"].as_u64().unwrap() - 3,
        "every other block still checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_compressed_uploads_are_whole_seekable_objects() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_fork(&data, "base/5/200", 100, 1000);
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let url = format!("file://{}/m", bucket.display());
    let options = LocationOptions {
        segment_blocks: 1000,
        ..LocationOptions::default()
    };
    // 800 KiB in parts of 32 KiB (rounded up to whole 16-block frames).
    let upload_options = UploadOptions {
        jobs: 1,
        multipart_above: 64 << 10,
        part_bytes: 32 << 10,
        parts_in_flight: 2,
        compress: Some(1),
        frame_blocks: 16,
        dry_run: false,
    };
    let report = upload(&data, &url, &options, upload_options, Arc::default())
        .await
        .unwrap();
    assert_eq!((report.files, report.multipart_files), (1, 1));
    assert!(report.stored_bytes < report.bytes, "{report:?}");
    let object = std::fs::read(bucket.join("m/base/5/200.zst")).unwrap();
    assert_eq!(object.len() as u64, report.stored_bytes);
    let plain = zstd::stream::decode_all(&object[..]).unwrap();
    assert!(plain == std::fs::read(data.join("base/5/200")).unwrap());
    // Its seek table describes it: 7 frames (6 of 16 blocks, one of 4).
    let smgr_object::seekable::Tail::Table(table) =
        smgr_object::seekable::SeekTable::parse_tail("k", &object, object.len() as u64, 16 * 8192)
            .unwrap()
    else {
        panic!("no seek table");
    };
    assert_eq!(table.frames().len(), 7);
}

#[test]
fn a_bad_compression_is_a_usage_error() {
    for bad in ["gzip", "zstd:0", "zstd:99", "zstd:x"] {
        let run = smgr_run(&["upload", "/tmp", "file:///tmp/x", "--compress", bad]);
        assert_eq!(run.code, 2, "{bad}: {run:?}");
    }
}
