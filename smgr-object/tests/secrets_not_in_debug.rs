//! No `Debug` output of the S3 settings, the store built from them or the
//! backend shows the secret key (object_store's own builder would: its
//! `Debug` prints it). No server is needed: building them makes no request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_api::BlockSize;
use smgr_object::{store_from_url, ObjectOptions, ObjectSmgr, StoreOptions};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

fn options() -> StoreOptions {
    let mut options = StoreOptions::new();
    options.endpoint = Some("http://127.0.0.1:1".to_owned());
    options.region = Some("us-east-1".to_owned());
    options.access_key_id = Some("AKIAEXAMPLE".to_owned());
    options.secret_access_key = Some(SECRET.to_owned());
    options.allow_http = true;
    options.path_style = true;
    options
}

#[test]
fn debug_never_shows_the_secret_key() {
    let options = options();
    let shown = format!("{options:?} {options:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        shown.contains("AKIAEXAMPLE"),
        "the key id may show: {shown}"
    );

    let (store, prefix, _) = store_from_url("s3://bucket/some/prefix", &options).unwrap();
    let shown = format!("{store:?} {store}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert_eq!(prefix, "some/prefix");

    let smgr = ObjectSmgr::from_url(
        "s3://bucket/some/prefix",
        &options,
        ObjectOptions::new(BlockSize::DEFAULT, 16),
    )
    .unwrap();
    let shown = format!("{smgr:?} {smgr:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
}
