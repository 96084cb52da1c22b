//! `smgr verify` and `smgr scan` of a bucket read the `global/pg_control`
//! that `smgr upload` copies with the relation files, and refuse or adapt
//! exactly as they do for the directory: a cluster without data checksums
//! is refused by `verify` (every page once failed there: `upload` left the
//! control file behind and `verify` of a bucket read none) and scanned
//! without checksums; sizes not given are the cluster's; other sizes given,
//! a damaged control file and a prefix without one are refused, the last
//! unless the sizes are given.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::path::Path;

use object_store::{ObjectStoreExt, PutPayload};
use smgr_api::{BlockSize, PageFormat, PageVerifier};
use smgr_cli::control::{ControlFile, DbState};

use common::{pg15_control, run, smgr, with_s3, write_cluster_files, Run};

const SEGMENT: u32 = 8;

fn control(checksums: u32) -> ControlFile {
    ControlFile {
        data_checksum_version: checksums,
        ..pg15_control(SEGMENT)
    }
}

/// A cluster of one 20-block relation whose pages carry checksums only if
/// `checksums` (as `initdb` without `--data-checksums` leaves them: 0).
fn cluster(dir: &Path, checksums: bool) {
    let bs = BlockSize::DEFAULT;
    let verifier = PageVerifier::new(PageFormat::Postgres { checksums }, bs);
    std::fs::create_dir_all(dir.join("base/5")).unwrap();
    std::fs::create_dir_all(dir.join("global")).unwrap();
    for segno in 0..3u32 {
        let mut bytes = Vec::new();
        for block in segno * SEGMENT..((segno + 1) * SEGMENT).min(20) {
            bytes.extend_from_slice(&smgr_cli::demo::demo_page(&verifier, bs, block));
        }
        let name = if segno == 0 {
            "base/5/100".to_owned()
        } else {
            format!("base/5/100.{segno}")
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    write_cluster_files(dir, &control(u32::from(checksums)), "15");
}

fn smgr_s3(args: &[&str]) -> Run {
    let mut command = smgr();
    command.args(args);
    assert!(with_s3(&mut command));
    run(&mut command)
}

fn assert_refused(run: &Run, words: &str) {
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(words), "wanted {words:?}: {run:?}");
}

#[test]
fn a_bucket_is_refused_and_read_as_its_directory_is() {
    let Some(store) = integration::s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    cluster(dir.path(), false);
    let data = dir.path().to_str().unwrap();
    let url = integration::s3_url("control");
    let _cleanup = integration::RemoveOnDrop(url.clone());
    let seg = ["--segment-blocks", "8"];

    let up = smgr_s3(&["upload", data, &url, seg[0], seg[1]]);
    assert_eq!(up.code, 0, "{up:?}");
    // The three segments, PG_VERSION and pg_control.
    assert!(
        up.stdout.contains("uploaded 5 files (3 relation segments"),
        "{up:?}"
    );

    // Checksums off: refused in both places, with the same words, and
    // checked (headers only) with --no-checksums.
    let off = "data checksums are not enabled in the cluster";
    for location in [data, url.as_str()] {
        assert_refused(&smgr_s3(&["verify", location, seg[0], seg[1]]), off);
        let headers = smgr_s3(&[
            "verify",
            "--json",
            "--no-checksums",
            location,
            seg[0],
            seg[1],
        ]);
        assert_eq!(headers.code, 0, "{location}: {headers:?}");
        let report: serde_json::Value = serde_json::from_str(&headers.stdout).unwrap();
        assert_eq!(report["blocks"], 20, "{location}: {report}");
        // scan honours checksums off instead of failing every page.
        let scan = smgr_s3(&["scan", "--json", location, "base/5/100", seg[0], seg[1]]);
        assert_eq!(scan.code, 0, "{location}: {scan:?}");
        // Sizes not given are the cluster's; other ones given: refused.
        let sized = smgr_s3(&["verify", "--no-checksums", location]);
        assert_eq!(sized.code, 0, "{location}: {sized:?}");
        assert_refused(
            &smgr_s3(&[
                "verify",
                "--no-checksums",
                location,
                "--segment-blocks",
                "16",
            ]),
            "the cluster's segments hold 8 blocks (pg_control) but --segment-blocks is 16",
        );
    }

    // A damaged control file in the bucket is refused, naming it.
    let (bucket, prefix, _) = smgr_object::store_from_url(&url, &store).unwrap();
    let key = smgr_object::object_path(&format!("{prefix}/global/pg_control")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut damaged = control(0).to_bytes();
    damaged[20] ^= 0xff;
    runtime
        .block_on(bucket.put(&key, PutPayload::from(damaged)))
        .unwrap();
    let run = smgr_s3(&["verify", "--no-checksums", &url, seg[0], seg[1]]);
    assert_refused(&run, "global/pg_control");
    assert!(run.stderr.contains("CRC is incorrect"), "{run:?}");

    // Without one: refused unless the sizes are given.
    runtime.block_on(bucket.delete(&key)).unwrap();
    assert_refused(
        &smgr_s3(&["verify", "--no-checksums", &url]),
        "no global/pg_control under it",
    );
    let given = smgr_s3(&["verify", "--no-checksums", &url, seg[0], seg[1]]);
    assert_eq!(given.code, 2, "the manifest misses it: {given:?}");
    assert!(
        given.stdout.contains("global/pg_control: missing"),
        "{given:?}"
    );
    // Another tool's copy (no manifest) with the sizes given is checked.
    let manifest = smgr_object::object_path(&format!("{prefix}/smgr-manifest.json")).unwrap();
    runtime.block_on(bucket.delete(&manifest)).unwrap();
    let given = smgr_s3(&["verify", "--no-checksums", &url, seg[0], seg[1]]);
    assert_eq!(given.code, 0, "{given:?}");
}

#[test]
fn a_running_cluster_is_not_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    cluster(dir.path(), true);
    let running = ControlFile {
        state: DbState(6),
        ..control(1)
    };
    std::fs::write(dir.path().join("global/pg_control"), running.to_bytes()).unwrap();
    let target = tempfile::tempdir().unwrap();
    let url = format!("file://{}", target.path().display());
    let run = run(smgr().args(["upload", dir.path().to_str().unwrap(), &url]));
    assert_refused(&run, "the cluster must be shut down");
}
