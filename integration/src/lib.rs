//! # integration: end-to-end tests
//!
//! Tests of the whole stack live under `tests/`, one scenario per file.
//! This library holds what they share: finding the real PostgreSQL 15
//! cluster that `scripts/pg-cluster.sh` builds (pgbench at scale 100, data
//! checksums on, `pgbench_accounts` spilling into a `.1` segment).
//!
//! A test that needs the cluster calls [`pg15_cluster`]. Without it the
//! test prints how to get it and passes as skipped, unless
//! `SMGR_REQUIRE_PG15=1` is set (as `.ci/run` sets it), in which case a
//! missing cluster is a failure.

use std::collections::HashMap;
use std::path::PathBuf;

/// A built PostgreSQL 15 cluster.
#[derive(Debug)]
pub struct PgCluster {
    /// The directory `scripts/pg-cluster.sh` built (holds `data/`).
    pub dir: PathBuf,
    /// The data directory (PGDATA).
    pub data: PathBuf,
    /// `name -> value` from its `MANIFEST` (relation paths relative to
    /// `data`, e.g. `pgbench_accounts -> base/16384/16397`).
    pub manifest: HashMap<String, String>,
}

impl PgCluster {
    /// A manifest entry, or a panic naming it (tests only).
    pub fn relpath(&self, name: &str) -> &str {
        match self.manifest.get(name) {
            Some(path) => path,
            None => panic!("{name} missing from {}/MANIFEST", self.dir.display()),
        }
    }
}

/// Where `scripts/pg-cluster.sh` builds the cluster by default.
pub const DEFAULT_CLUSTER_DIR: &str = "/var/tmp/smgr-pg15-scale100";

/// The cluster named by `SMGR_PG15_CLUSTER`, else [`DEFAULT_CLUSTER_DIR`];
/// `None` (with a message) if it is not built.
pub fn pg15_cluster() -> Option<PgCluster> {
    let dir = std::env::var_os("SMGR_PG15_CLUSTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CLUSTER_DIR));
    let required = std::env::var("SMGR_REQUIRE_PG15").is_ok_and(|v| v == "1");
    if !dir.join("READY").exists() {
        let message = format!(
            "no PostgreSQL 15 cluster at {}: run scripts/pg-cluster.sh (or set SMGR_PG15_CLUSTER)",
            dir.display()
        );
        if required {
            panic!("{message}; SMGR_REQUIRE_PG15=1 makes this a failure");
        }
        eprintln!("SKIPPED: {message}");
        return None;
    }
    let manifest = std::fs::read_to_string(dir.join("MANIFEST"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(PgCluster {
        data: dir.join("data"),
        dir,
        manifest,
    })
}

/// The `pg_checksums` binary of PostgreSQL 15, if installed. When
/// `SMGR_REQUIRE_PG15=1`, a missing binary is a failure, not a skip.
pub fn pg_checksums() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/lib/postgresql/15/bin/pg_checksums");
    if path.exists() {
        return Some(path);
    }
    if std::env::var("SMGR_REQUIRE_PG15").is_ok_and(|v| v == "1") {
        panic!(
            "{} is missing; SMGR_REQUIRE_PG15=1 makes this a failure",
            path.display()
        );
    }
    None
}

/// The README's Rust example, compiled as a doc test so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Where the S3 test server is, from the variables `scripts/seaweedfs.sh
/// env` prints (`SMGR_S3_ENDPOINT`, `SMGR_S3_BUCKET`,
/// `SMGR_S3_ACCESS_KEY_ID`, `SMGR_S3_SECRET_ACCESS_KEY`, `SMGR_S3_REGION`).
/// `None` (with a message) when they are not set, unless
/// `SMGR_REQUIRE_S3=1`, which makes that a failure.
pub fn s3_server() -> Option<smgr_object::StoreOptions> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let required = std::env::var("SMGR_REQUIRE_S3").is_ok_and(|v| v == "1");
    let Some(endpoint) = var("SMGR_S3_ENDPOINT") else {
        let message = "no S3 server: run `scripts/seaweedfs.sh start` and `eval \"$(scripts/seaweedfs.sh env)\"`";
        if required {
            panic!("{message}; SMGR_REQUIRE_S3=1 makes this a failure");
        }
        eprintln!("SKIPPED: {message}");
        return None;
    };
    let mut options = smgr_object::StoreOptions::new();
    options.endpoint = Some(endpoint);
    options.region = var("SMGR_S3_REGION").or(Some("us-east-1".to_owned()));
    options.access_key_id = var("SMGR_S3_ACCESS_KEY_ID");
    options.secret_access_key = var("SMGR_S3_SECRET_ACCESS_KEY");
    options.allow_http = true;
    options.path_style = true;
    Some(options)
}

/// `s3://BUCKET/PREFIX` with a prefix unique to this test run, so tests
/// sharing one bucket never see each other's objects.
pub fn s3_url(test: &str) -> String {
    let bucket = std::env::var("SMGR_S3_BUCKET").unwrap_or_else(|_| "smgr-test".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("s3://{bucket}/runs/{test}-{}-{nanos}", std::process::id())
}
