//! `smgr upload` writes, last, a manifest of every object it put (key,
//! size, CRC-32C); `verify` of the bucket reports objects missing, added
//! or changed against it, and a segment stored both plain and `.zst`, as
//! problems (exit status 2). Once a deleted pg_class main fork went
//! unnoticed: exit 0. Without a manifest, verify warns that completeness
//! was not checked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{pg15_control, run, smgr, with_s3, write_cluster_files, write_fork, Run};
use object_store::{ObjectStoreExt, PutPayload};

fn verify(url: &str) -> (Run, serde_json::Value) {
    let mut command = smgr();
    command.args(["verify", "--json", url]);
    assert!(with_s3(&mut command));
    let run = run(&mut command);
    let report = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{run:?}"));
    (run, report)
}

/// (file, message) of each problem in a report.
fn problems(report: &serde_json::Value) -> Vec<(String, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let field = |name: &str| p[name].as_str().unwrap().to_owned();
            (field("file"), field("message"))
        })
        .collect()
}

fn has_problem(report: &serde_json::Value, file: &str, words: &str) -> bool {
    problems(report)
        .iter()
        .any(|(f, message)| f == file && message.contains(words))
}

#[test]
fn missing_added_and_changed_objects_are_problems() {
    let Some(store) = integration::s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    write_fork(data, "base/5/100", 20, 16);
    write_fork(data, "base/5/1259", 4, 16);
    write_cluster_files(data, &pg15_control(16), "15");
    let url = integration::s3_url("manifest");
    let _cleanup = integration::RemoveOnDrop(url.clone());
    let mut upload = smgr();
    upload.args([
        "upload",
        data.to_str().unwrap(),
        &url,
        "--segment-blocks",
        "16",
    ]);
    assert!(with_s3(&mut upload));
    let up = run(&mut upload);
    assert_eq!(up.code, 0, "{up:?}");

    let (clean, report) = verify(&url);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert_eq!(report["warnings"].as_array().unwrap().len(), 0, "{report}");

    let (bucket, prefix, _) = smgr_object::store_from_url(&url, &store).unwrap();
    let key = |relative: &str| smgr_object::object_path(&format!("{prefix}/{relative}")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let put = |relative: &str, bytes: Vec<u8>| {
        runtime
            .block_on(bucket.put(&key(relative), PutPayload::from(bytes)))
            .unwrap();
    };
    let page = std::fs::read(data.join("base/5/1259")).unwrap()[..8192].to_vec();

    // pg_class's main fork gone: once exit 0.
    runtime
        .block_on(bucket.delete(&key("base/5/1259")))
        .unwrap();
    let (missing, report) = verify(&url);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(has_problem(&report, "base/5/1259", "missing"), "{report}");

    // One added, one changed in place (same size), one cut short, one
    // segment stored twice.
    put(
        "base/5/1259",
        std::fs::read(data.join("base/5/1259")).unwrap(),
    );
    put("base/5/999", page.clone());
    put("PG_VERSION", b"16\n".to_vec());
    put("base/5/100.1", page.clone());
    put("base/5/100.zst", page);
    let (changed, report) = verify(&url);
    assert_eq!(changed.code, 2, "{changed:?}");
    assert!(!has_problem(&report, "base/5/1259", "missing"), "{report}");
    assert!(
        has_problem(&report, "base/5/999", "not in the upload's manifest"),
        "{report}"
    );
    assert!(has_problem(&report, "PG_VERSION", "CRC-32C"), "{report}");
    assert!(
        has_problem(&report, "base/5/100.1", "size changed"),
        "{report}"
    );
    assert!(
        has_problem(&report, "base/5/100", "base/5/100.zst"),
        "{report}"
    );

    // Without the manifest: what is there is verified, with a warning.
    for relative in ["base/5/999", "base/5/100.zst", "smgr-manifest.json"] {
        runtime.block_on(bucket.delete(&key(relative))).unwrap();
    }
    put(
        "base/5/100.1",
        std::fs::read(data.join("base/5/100.1")).unwrap(),
    );
    let (unknown, report) = verify(&url);
    assert_eq!(unknown.code, 0, "{unknown:?}");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("cannot be told from ones never uploaded"),
        "{report}"
    );
}
