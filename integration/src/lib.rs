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
