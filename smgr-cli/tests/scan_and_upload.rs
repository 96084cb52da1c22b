//! `smgr scan` reads one fork through a stream (combined reads, counters)
//! or one block at a time (`--naive`), from a directory and from the
//! object-store copy `smgr upload` made of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{run, smgr, smgr_run, write_fork};

fn scan_json(args: &[&str]) -> serde_json::Value {
    let run = run(smgr().arg("scan").arg("--json").args(args));
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_stream_combines_reads_and_the_naive_loop_does_not() {
    let dir = tempfile::tempdir().unwrap();
    write_fork(dir.path(), "base/5/100", 600, 256);
    let data = dir.path().to_str().unwrap();
    let args = [data, "base/5/100", "--segment-blocks", "256"];

    let stream = scan_json(&args);
    assert_eq!(stream["method"], "stream");
    assert_eq!(stream["blocks"], 600);
    assert_eq!(stream["hits"], 0);
    let reads = stream["reads"].as_u64().unwrap();
    // 128 KiB reads that never cross a segment boundary: 16 + 16 + 6 per
    // 256-block segment at most.
    assert!((38..=45).contains(&reads), "{stream}");
    assert_eq!(stream["blocks_read"], 600);

    let naive = scan_json(&[data, "base/5/100", "--segment-blocks", "256", "--naive"]);
    assert_eq!(naive["blocks"], 600);
    assert_eq!(naive["reads"], 600);

    let text = smgr_run(&["scan", data, "base/5/100", "--segment-blocks", "256"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.contains("avg read"), "{text:?}");
}

#[test]
fn upload_then_scan_and_verify_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_fork(&data, "base/5/100", 300, 128);
    write_fork(&data, "base/5/100_vm", 1, 128);
    std::fs::write(data.join("base/5/PG_VERSION"), "15\n").unwrap();
    std::fs::write(data.join("notes.txt"), "not a relation").unwrap();
    std::fs::create_dir_all(data.join("pg_notify")).unwrap();
    let target = dir.path().join("bucket");
    std::fs::create_dir_all(&target).unwrap();
    let url = format!("file://{}/copy", target.display());

    let up = smgr_run(&[
        "upload",
        data.to_str().unwrap(),
        &url,
        "--segment-blocks",
        "128",
    ]);
    assert_eq!(up.code, 0, "{up:?}");
    // Every file, relation or not; the empty directory is recorded.
    assert!(
        up.stdout
            .contains("uploaded 6 files (4 relation segments, 0 in parts; 3 directories"),
        "{up:?}"
    );
    // Byte for byte, under the same relative paths.
    for file in [
        "base/5/100",
        "base/5/100.1",
        "base/5/100.2",
        "base/5/100_vm",
        "base/5/PG_VERSION",
        "notes.txt",
    ] {
        assert_eq!(
            std::fs::read(target.join("copy").join(file)).unwrap(),
            std::fs::read(data.join(file)).unwrap(),
            "{file}"
        );
    }

    let scanned = scan_json(&[&url, "base/5/100", "--segment-blocks", "128"]);
    assert_eq!(scanned["blocks"], 300);
    let verified = smgr_run(&["verify", &url, "--segment-blocks", "128"]);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified.stdout.contains("Blocks scanned:  301"),
        "{verified:?}"
    );

    // The same upload's report as JSON.
    let again = format!("file://{}/json", target.display());
    let up = smgr_run(&[
        "upload",
        "--json",
        data.to_str().unwrap(),
        &again,
        "--segment-blocks",
        "128",
    ]);
    assert_eq!(up.code, 0, "{up:?}");
    let report: serde_json::Value = serde_json::from_str(&up.stdout).unwrap();
    assert_eq!(report["files"], 6, "{report}");
    assert_eq!(report["relation_files"], 4, "{report}");
    assert_eq!(report["directories"], 3, "{report}");
    assert_eq!(report["bytes"], 301 * 8192 + 3 + 14, "{report}");
    assert_eq!(report["stored_bytes"], report["bytes"], "{report}");
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
}

#[test]
fn a_relation_that_is_not_a_first_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_fork(dir.path(), "base/5/100", 4, 4);
    let data = dir.path().to_str().unwrap();
    let run = smgr_run(&["scan", data, "base/5/100.1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("smgr: "), "{run:?}");
    assert!(run.stderr.contains("base/5/100.1"), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}
