//! `smgr verify` on a real PostgreSQL 15 cluster (pgbench scale 100, with
//! data checksums; `.1` segments, FSM, VM and init forks) gives the same
//! findings as `pg_checksums --check`: the same files and blocks scanned
//! and nothing bad on the clean cluster; exactly the same bad blocks on a
//! copy with flipped bytes (in heap, index, catalog, second-segment, FSM,
//! VM and init-fork pages), where two more pages pass `pg_checksums` but
//! not the server (reported as warnings; counted with `--strict`). Both
//! hold again after `smgr upload` copies the directory to the S3 test
//! server and `smgr verify` reads it there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{
    bad_blocks, blocks_listed, edit_page, flip, pg_checksums_check, run, smgr, smgr_verify, upload,
    verify_json, with_s3,
};
use integration::{pg15_cluster, pg_checksums};

#[test]
fn the_clean_cluster_verifies_like_pg_checksums_locally_and_on_s3() {
    let Some(cluster) = pg15_cluster() else {
        return;
    };
    let Some(tool) = pg_checksums() else {
        eprintln!("SKIPPED: pg_checksums (postgresql-15) is not installed");
        return;
    };
    let (theirs, files, blocks, bad) = pg_checksums_check(&tool, &cluster.data);
    assert_eq!(theirs.code, 0, "{theirs:?}");
    assert!(bad.is_empty());
    // Its pg_control read as pg_controldata prints it.
    let control = smgr_cli::control::ControlFile::parse(
        &std::fs::read(cluster.data.join(smgr_cli::cluster::CONTROL_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            control.version,
            control.block_size,
            control.segment_blocks,
            control.data_checksum_version
        ),
        (1300, 8192, 131072, 1),
        "{control:?}"
    );
    assert_eq!(control.state.name(), "shut down");
    // With PG_VERSION, the tablespace directory PostgreSQL 15 uses.
    assert_eq!(control.catalog_version, 202209061, "{control:?}");

    let data = cluster.data.to_str().unwrap();
    let (ours, report) = smgr_verify(data, false);
    assert_eq!(ours.code, 0, "{ours:?}");
    assert_eq!(report["files"], files, "files vs pg_checksums");
    assert_eq!(report["blocks"], blocks, "blocks vs pg_checksums");
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");

    let Some((url, in_parts, _removal)) = upload(&cluster.data, "pg15-clean", &[]) else {
        return;
    };
    // The 1 GiB segment of pgbench_accounts (and its index) went up in parts.
    assert!(in_parts >= 2, "{in_parts} files uploaded in parts");
    let (ours, report) = smgr_verify(&url, true);
    assert_eq!(ours.code, 0, "{ours:?}");
    assert_eq!(report["files"], files, "files on S3 vs pg_checksums");
    assert_eq!(report["blocks"], blocks, "blocks on S3 vs pg_checksums");
    assert!(report["reads"].as_u64().unwrap() > 0);

    // One relation fork scanned by a stream from S3, as from the directory.
    let index = cluster.relpath("pgbench_accounts_pkey");
    let scan = |location: &str, s3: bool| {
        let mut command = smgr();
        command.args(["scan", "--json", location, index]);
        if s3 {
            assert!(with_s3(&mut command));
        }
        let run = run(&mut command);
        assert_eq!(run.code, 0, "{run:?}");
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    let (local, remote) = (scan(data, false), scan(&url, true));
    assert!(local["blocks"].as_u64().unwrap() > 10_000, "{local}");
    assert_eq!(remote["blocks"], local["blocks"], "{remote} vs {local}");
    assert!(
        remote["reads"].as_u64().unwrap() < local["blocks"].as_u64().unwrap() / 8,
        "the stream combined its reads: {remote}"
    );
}

/// Copies `from` to `to`; the files named in `link` (paths relative to
/// `root`), which the test leaves as they are, are hard links instead of
/// copies (a copy where links cannot be made), to spare time and disk.
fn copy_tree(from: &Path, to: &Path, root: &Path, link: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let source = entry.path();
        let relative = source.strip_prefix(root).unwrap().to_string_lossy();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&source, &target, root, link);
        } else if entry.file_type().unwrap().is_file()
            && !(link.contains(&relative.as_ref()) && std::fs::hard_link(&source, &target).is_ok())
        {
            std::fs::copy(&source, &target).unwrap();
        }
    }
}

#[test]
fn flipped_bytes_get_the_same_verdict_as_pg_checksums_locally_and_on_s3() {
    let Some(cluster) = pg15_cluster() else {
        return;
    };
    let Some(tool) = pg_checksums() else {
        eprintln!("SKIPPED: pg_checksums (postgresql-15) is not installed");
        return;
    };
    // A copy of the whole cluster, beside it on the same file system so
    // that the big files no byte is flipped in can be hard links.
    let copy = tempfile::tempdir_in(cluster.data.parent().unwrap()).unwrap();
    let data = copy.path().join("data");
    let accounts = cluster.relpath("pgbench_accounts");
    let untouched = [accounts, cluster.relpath("pgbench_accounts_pkey")];
    copy_tree(&cluster.data, &data, &cluster.data, &untouched);

    // Flips in headers, line pointers and tuple data of three relations;
    // one page gets two. (PostgreSQL's 16-bit checksum misses about one
    // flip in 56,000: whatever it misses we must miss too, and the test
    // insists some are caught so it cannot pass vacuously.)
    let tellers = cluster.relpath("pgbench_tellers").to_owned();
    let branches = cluster.relpath("pgbench_branches").to_owned();
    let pg_class = cluster.relpath("pg_class").to_owned();
    // And one page in each other kind of file: the second segment of
    // pgbench_accounts (block 5 of `.1` is block 131077 of the fork), its
    // free space map and visibility map, and the metapage in the init
    // fork of an unlogged table's index.
    let second_segment = format!("{accounts}.1");
    let fsm = format!("{accounts}_fsm");
    let vm = format!("{accounts}_vm");
    let init = format!("{}_init", cluster.relpath("unlogged_notes_id"));
    for (file, block, offset, mask) in [
        (&tellers, 0usize, 20usize, 0x01u8),
        (&tellers, 2, 4000, 0x80),
        (&tellers, 3, 8191, 0xFF),
        (&branches, 0, 300, 0x10),
        (&branches, 0, 7000, 0x02),
        (&pg_class, 1, 12, 0x04),
        (&second_segment, 5, 1000, 0x08),
        (&fsm, 2, 600, 0x40),
        (&vm, 0, 100, 0x01),
        (&init, 0, 40, 0x20),
    ] {
        flip(&data.join(file), block * 8192 + offset, mask);
    }
    // Two pages pg_checksums passes but the server would refuse: one
    // whose pd_upper is zero though it is not all zeros (pg_checksums
    // skips it as new), one with an impossible pd_flags bit under a
    // checksum made to match. By default they are warnings, so the
    // verdict stays pg_checksums'; --strict counts them.
    let lenient = [
        (cluster.relpath("pgbench_tellers").to_owned(), 1u64),
        (cluster.relpath("pg_class").to_owned(), 3),
    ];
    edit_page(&data.join(&lenient[0].0), 1, |page| page[14..16].fill(0));
    edit_page(&data.join(&lenient[1].0), 3, |page| {
        page[10..12].copy_from_slice(&0x0100u16.to_le_bytes());
        let sum = smgr_api::pg_checksum_page(page, 3);
        page[8..10].copy_from_slice(&sum.to_le_bytes());
    });

    let (theirs_run, files, blocks, theirs) = pg_checksums_check(&tool, &data);
    assert!(
        !theirs.is_empty(),
        "pg_checksums found nothing: {theirs_run:?}"
    );
    assert_eq!(theirs_run.code, 1, "{theirs_run:?}");

    for page in &lenient {
        assert!(!theirs.contains(page), "pg_checksums refused {page:?}");
    }
    for page in [(&second_segment, 5), (&fsm, 2), (&vm, 0), (&init, 0)] {
        let page = (page.0.clone(), page.1);
        assert!(theirs.contains(&page), "pg_checksums missed {page:?}");
    }

    let (ours_run, report) = smgr_verify(data.to_str().unwrap(), false);
    let ours: BTreeSet<_> = bad_blocks(&report).into_iter().collect();
    assert_eq!(
        ours, theirs,
        "our bad blocks vs pg_checksums' ({ours_run:?})"
    );
    assert_eq!(ours_run.code, 1, "{ours_run:?}");
    assert_eq!(report["files"], files);
    assert_eq!(report["blocks"], blocks);
    let warned: BTreeSet<_> = blocks_listed(&report, "server_rejects")
        .into_iter()
        .collect();
    assert_eq!(warned, lenient.iter().cloned().collect(), "{report}");
    // The page in the second segment is named by the block of its fork too.
    let in_second_segment = report["bad_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["file"] == second_segment.as_str())
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(in_second_segment["block_in_file"], 5);
    assert_eq!(in_second_segment["block"], 131072 + 5);

    let (strict_run, strict) =
        verify_json(smgr().args(["verify", "--json", "--strict"]).arg(&data));
    assert_eq!(strict_run.code, 1, "{strict_run:?}");
    let strict: BTreeSet<_> = bad_blocks(&strict).into_iter().collect();
    assert_eq!(
        strict,
        theirs.iter().chain(&lenient).cloned().collect(),
        "--strict: pg_checksums' bad blocks and the two the server refuses"
    );

    let Some((url, _, _removal)) = upload(&data, "pg15-corrupt", &[]) else {
        return;
    };
    let (s3_run, report) = smgr_verify(&url, true);
    let on_s3: BTreeSet<_> = bad_blocks(&report).into_iter().collect();
    assert_eq!(
        on_s3, theirs,
        "bad blocks on S3 vs pg_checksums' ({s3_run:?})"
    );
    assert_eq!(s3_run.code, 1, "{s3_run:?}");
    assert_eq!(report["blocks"], blocks);
    let warned: BTreeSet<_> = blocks_listed(&report, "server_rejects")
        .into_iter()
        .collect();
    assert_eq!(warned, lenient.iter().cloned().collect(), "on S3: {report}");

    // Uploaded compressed: the same findings, in fewer bytes.
    let (url, _, _removal_zstd) =
        upload(&data, "pg15-corrupt-zstd", &["--compress", "zstd:3"]).unwrap();
    let (zstd_run, report) = smgr_verify(&url, true);
    let compressed: BTreeSet<_> = bad_blocks(&report).into_iter().collect();
    assert_eq!(
        compressed, theirs,
        "bad blocks of the compressed upload ({zstd_run:?})"
    );
    assert_eq!(zstd_run.code, 1, "{zstd_run:?}");
    assert_eq!(report["blocks"], blocks);
    let warned: BTreeSet<_> = blocks_listed(&report, "server_rejects")
        .into_iter()
        .collect();
    assert_eq!(
        warned,
        lenient.iter().cloned().collect(),
        "compressed: {report}"
    );
    assert!(
        report["stored_bytes"].as_u64().unwrap() < report["bytes"].as_u64().unwrap(),
        "{report}"
    );
}
