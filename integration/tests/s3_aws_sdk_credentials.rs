//! With the `aws-sdk` feature, the backend takes its credentials from the
//! AWS SDK's default chain (here a named profile in a shared credentials
//! file) and passes the whole conformance kit against the real S3 server.

#![cfg(feature = "aws-sdk")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use integration::{s3_server, s3_url};
use smgr_api::testkit::{run_all, Kit};
use smgr_api::BlockSize;
use smgr_object::{ObjectOptions, ObjectSmgr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_with_sdk_credentials() {
    let Some(mut store) = s3_server() else { return };
    // The keys are only in a profile file: object_store cannot read those,
    // the SDK's chain can, so a passing kit proves the chain was used.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[smgr-test-profile]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            store.access_key_id.take().unwrap(),
            store.secret_access_key.take().unwrap()
        ),
    )
    .unwrap();
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &file);
    std::env::set_var("AWS_CONFIG_FILE", dir.path().join("no-config"));
    std::env::set_var("AWS_PROFILE", "smgr-test-profile");
    // Never ask a metadata service (it is not on this machine).
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    store.aws_sdk_credentials = true;
    let smgr = ObjectSmgr::from_url(
        &s3_url("sdk"),
        &store,
        ObjectOptions::new(BlockSize::new(1024).unwrap(), 4),
    )
    .unwrap();
    run_all(&Kit::new(Arc::new(smgr), 4)).await;
}
