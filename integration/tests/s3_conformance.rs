//! The conformance kit passes against a real S3 server (SeaweedFS started
//! by `scripts/seaweedfs.sh`), and nothing prints the secret key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use integration::{s3_server, s3_url};
use smgr_api::testkit::{run_all, Kit};
use smgr_api::BlockSize;
use smgr_object::{ObjectOptions, ObjectSmgr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_against_a_real_s3_server() {
    let Some(store) = s3_server() else { return };
    let smgr = ObjectSmgr::from_url(
        &s3_url("kit"),
        &store,
        ObjectOptions::new(BlockSize::new(1024).unwrap(), 4),
    )
    .unwrap();
    let secret = store.secret_access_key.clone().unwrap();
    assert!(
        !format!("{smgr:?}").contains(&secret),
        "Debug shows the secret"
    );
    assert!(
        !format!("{store:?}").contains(&secret),
        "Debug shows the secret"
    );
    run_all(&Kit::new(Arc::new(smgr), 4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_passes_against_a_real_s3_server_with_compressed_segments() {
    let Some(store) = s3_server() else { return };
    let options = ObjectOptions::new(BlockSize::new(1024).unwrap(), 6).compression(
        smgr_object::Compression::Zstd {
            level: 3,
            frame_blocks: 2,
        },
    );
    let smgr = ObjectSmgr::from_url(&s3_url("kit-zstd"), &store, options).unwrap();
    run_all(&Kit::new(Arc::new(smgr), 6)).await;
}
