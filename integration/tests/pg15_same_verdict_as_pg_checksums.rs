//! On a copy of a real cluster with bytes flipped in several pages, our
//! verifier reports exactly the blocks `pg_checksums --check` reports, no
//! more and no fewer. (PostgreSQL's 16-bit checksum misses about one flip
//! in 56,000; whatever it misses we must miss too, and the test insists at
//! least some flips are caught so it cannot pass vacuously.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use integration::{pg15_cluster, pg_checksums};
use smgr_api::{BlockSize, Error, PageFormat, PageVerifier, PathNaming};
use smgr_cli::verify::{verify_forks, VerifyOptions};
use smgr_md::{MdOptions, MdSmgr};

/// Copies `from` to `to`, skipping files whose path relative to the data
/// directory starts with one of `skip` (the big pgbench relations).
fn copy_tree(from: &Path, to: &Path, root: &Path, skip: &[String]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let source = entry.path();
        let relative = source
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if skip.iter().any(|s| {
            relative == *s
                || relative.starts_with(&format!("{s}."))
                || relative.starts_with(&format!("{s}_"))
        }) {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&source, &target, root, skip);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(&source, &target).unwrap();
        }
    }
}

fn flip(path: &Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_get_the_same_verdict_as_pg_checksums() {
    let Some(cluster) = pg15_cluster() else {
        return;
    };
    let Some(tool) = pg_checksums() else {
        eprintln!("SKIPPED: pg_checksums (postgresql-15) is not installed");
        return;
    };
    let copy = tempfile::tempdir().unwrap();
    let data = copy.path().join("data");
    let skip = [
        cluster.relpath("pgbench_accounts").to_owned(),
        cluster.relpath("pgbench_accounts_pkey").to_owned(),
    ];
    copy_tree(&cluster.data, &data, &cluster.data, &skip);

    // Flip bytes in data pages of three relations: headers, line pointers,
    // tuple data; one page gets two flips.
    let tellers = cluster.relpath("pgbench_tellers");
    let branches = cluster.relpath("pgbench_branches");
    let pg_class = cluster.relpath("pg_class");
    let flips = [
        (tellers, 0usize, 20usize, 0x01u8),
        (tellers, 2, 4000, 0x80),
        (tellers, 3, 8191, 0xFF),
        (branches, 0, 300, 0x10),
        (branches, 0, 7000, 0x02),
        (pg_class, 1, 12, 0x04),
    ];
    for &(file, block, offset, mask) in &flips {
        flip(&data.join(file), block * 8192 + offset, mask);
    }

    // PostgreSQL's verdict: lines like
    //   pg_checksums: error: checksum verification failed in file "D/base/1/2", block 3: ...
    let output = std::process::Command::new(tool)
        .arg("--check")
        .arg("-D")
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let prefix = format!("{}/", data.display());
    let theirs: BTreeSet<(String, u32)> = stderr
        .lines()
        .filter_map(|line| {
            line.split_once("checksum verification failed in file \"")
                .map(|(_, rest)| rest)
        })
        .map(|rest| {
            let (file, rest) = rest.split_once("\", block ").unwrap();
            let block: u32 = rest.split(':').next().unwrap().parse().unwrap();
            (file.strip_prefix(&prefix).unwrap().to_owned(), block)
        })
        .collect();

    // Ours, converted to (segment file, block in file) as pg_checksums says.
    let smgr = Arc::new(MdSmgr::open(&data, MdOptions::default().read_only()).unwrap());
    let forks = smgr.list_forks().await.unwrap();
    let verifier = PageVerifier::new(PageFormat::Postgres { checksums: true }, BlockSize::DEFAULT);
    let report = verify_forks(
        smgr.clone(),
        &smgr.options().naming,
        &forks,
        verifier,
        VerifyOptions::default(),
    )
    .await
    .unwrap();
    let naming = PathNaming::default();
    let ours: BTreeSet<(String, u32)> = report
        .failures
        .iter()
        .map(|failure| match failure {
            Error::CorruptPage { path, block, .. } => {
                let seg = naming.parse(path).unwrap();
                let file = naming
                    .segment_path(seg.locator, seg.fork, block / 131072)
                    .unwrap();
                (file, block % 131072)
            }
            other => panic!("unexpected failure {other}"),
        })
        .collect();

    assert!(!theirs.is_empty(), "pg_checksums found nothing: {stderr}");
    assert_eq!(
        ours, theirs,
        "our bad blocks vs pg_checksums' (stderr: {stderr})"
    );
    assert_eq!(output.status.success(), ours.is_empty());
}
