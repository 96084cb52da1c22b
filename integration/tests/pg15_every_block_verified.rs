//! `smgr-md` reads a real PostgreSQL 15 data directory as it is: every
//! block of every relation fork (pgbench at scale 100, so
//! `pgbench_accounts` has a `.1` segment) is read and passes PostgreSQL
//! checksum verification, and the block count equals what `pg_checksums`
//! itself scanned.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use integration::{pg15_cluster, pg_checksums};
use smgr_api::{ForkNumber, PathNaming, Smgr, SmgrExt};
use smgr_cli::location::{Location, LocationOptions};
use smgr_cli::verify::{verify_location, VerifyOptions};
use smgr_md::{MdOptions, MdSmgr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_block_of_a_real_cluster_verifies() {
    let Some(cluster) = pg15_cluster() else {
        return;
    };
    let smgr = Arc::new(MdSmgr::open(&cluster.data, MdOptions::default().read_only()).unwrap());
    let forks = smgr.list_forks().await.unwrap();
    assert!(forks.len() > 1000, "only {} forks found", forks.len());

    // Every page through the buffer pool and read streams, as `smgr verify`.
    let report = verify_location(
        &Location::Local(cluster.data.clone()),
        &LocationOptions::default(),
        VerifyOptions::local(),
        Default::default(),
    )
    .await
    .unwrap();
    assert!(
        report.bad_blocks.is_empty() && report.problems.is_empty(),
        "bad pages: {:?}, problems: {:?}",
        &report.bad_blocks[..report.bad_blocks.len().min(5)],
        report.problems
    );
    assert_eq!(report.forks, forks.len() as u64, "forks verified vs listed");

    // pgbench_accounts spans two segments and every block of both was read.
    let accounts = PathNaming::default()
        .parse(cluster.relpath("pgbench_accounts"))
        .unwrap();
    let nblocks = smgr
        .nblocks(accounts.locator, ForkNumber::Main)
        .await
        .unwrap();
    assert!(
        nblocks > 131072,
        "pgbench_accounts has {nblocks} blocks, no .1 segment"
    );
    // Block 131072 is the first block of the file `.1`, byte for byte.
    let seg1 = std::fs::read(
        cluster
            .data
            .join(format!("{}.1", cluster.relpath("pgbench_accounts"))),
    )
    .unwrap();
    let page = smgr
        .read_block(accounts.locator, ForkNumber::Main, 131072)
        .await
        .unwrap();
    assert_eq!(*page, seg1[..8192]);

    // The same number of blocks as PostgreSQL's own checker scans.
    if let Some(tool) = pg_checksums() {
        let output = std::process::Command::new(tool)
            .arg("--check")
            .arg("-D")
            .arg(&cluster.data)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_checksums failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let scanned: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Blocks scanned:"))
            .map(|n| n.trim().parse().unwrap())
            .expect("pg_checksums printed no block count");
        assert_eq!(
            report.blocks, scanned,
            "blocks verified vs pg_checksums' Blocks scanned"
        );
    } else {
        eprintln!("pg_checksums not installed: block count not cross-checked");
    }
}
