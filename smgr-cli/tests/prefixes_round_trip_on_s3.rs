//! A key prefix with characters URLs encode (`~`, spaces, `%`, unicode)
//! names the same keys in `upload`, `verify` and `scan`, on the real S3
//! server: the URL's path is percent-decoded once, as `object_store`
//! does, and keys are stored as they are (once the prefix was encoded
//! twice, and `verify` of the copy found "nothing in it").

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use futures::TryStreamExt;

use common::{pg15_control, run, smgr, with_s3, write_cluster_files, write_fork};

#[test]
fn odd_prefixes_round_trip_through_upload_verify_and_scan() {
    let Some(store) = integration::s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_fork(dir.path(), "base/5/100", 40, 16);
    write_cluster_files(dir.path(), &pg15_control(16), "15");
    let data = dir.path().to_str().unwrap();
    let base = integration::s3_url("prefixes");
    let _cleanup = integration::RemoveOnDrop(base.clone());

    // (what the URL says, the key prefix it stands for)
    for (written, stored) in [
        ("pg~15", "pg~15"),
        ("a b", "a b"),
        ("x%41", "xA"),
        ("100%", "100%"),
        ("déjà vu", "déjà vu"),
    ] {
        let url = format!("{base}/{written}");
        let segments = ["--segment-blocks", "16"];
        let mut upload = smgr();
        upload.args(["upload", data, &url]).args(segments);
        assert!(with_s3(&mut upload));
        let up = run(&mut upload);
        assert_eq!(up.code, 0, "{written}: {up:?}");

        // The keys are the prefix as stored, plus the file's path.
        let (bucket, prefix, _) = smgr_object::store_from_url(&base, &store).unwrap();
        let wanted = format!("{prefix}/{stored}/base/5/100.2");
        let keys: Vec<String> = tokio::runtime::Runtime::new().unwrap().block_on(async {
            let root = smgr_object::object_path(&prefix).unwrap();
            let metas: Vec<_> = bucket.list(Some(&root)).try_collect().await.unwrap();
            metas.into_iter().map(|m| m.location.to_string()).collect()
        });
        assert!(keys.contains(&wanted), "{written}: no {wanted} in {keys:?}");

        let mut verify = smgr();
        verify.args(["verify", "--json", &url]).args(segments);
        assert!(with_s3(&mut verify));
        let checked = run(&mut verify);
        assert_eq!(checked.code, 0, "{written}: {checked:?}");
        let report: serde_json::Value = serde_json::from_str(&checked.stdout).unwrap();
        assert_eq!(report["blocks"], 40, "{written}: {report}");

        let mut scan = smgr();
        scan.args(["scan", "--json", &url, "base/5/100"])
            .args(segments);
        assert!(with_s3(&mut scan));
        let scanned = run(&mut scan);
        assert_eq!(scanned.code, 0, "{written}: {scanned:?}");
        let report: serde_json::Value = serde_json::from_str(&scanned.stdout).unwrap();
        assert_eq!(report["blocks"], 40, "{written}: {report}");
    }
}
