//! Fault handling of the object backend: retries of transient failures and
//! cut bodies, bounded; permanent failures reported at once; prefetch then
//! read costs one GET. Against the in-memory store and a real S3 server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use integration::{object_fault_scenarios, s3_server, s3_url};
use object_store::memory::InMemory;
use smgr_object::store_from_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_over_the_in_memory_store() {
    object_fault_scenarios(Arc::new(InMemory::new()), "faults").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_over_a_real_s3_server() {
    let Some(options) = s3_server() else { return };
    let (store, prefix, _) = store_from_url(&s3_url("faults"), &options).unwrap();
    object_fault_scenarios(store, &prefix).await;
}
