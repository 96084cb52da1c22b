//! One retry layer: `object_store`'s, with the limits of `StoreOptions`.
//! Faults injected on the wire between the backend and the real S3 server
//! (a proxy answering 503, cutting a body short, resetting a connection
//! mid-body) are retried there and give the right bytes; a GET failing
//! for good makes exactly `1 + max_retries` requests, counted at the
//! proxy. Once a second loop of our own ran over `object_store`'s: up to
//! 4 × 5 = 20 requests for one ranged GET.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use integration::wire::WireFault;
use integration::{s3_through_a_proxy, s3_url, RemoveOnDrop};
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt};
use smgr_object::{ObjectOptions, ObjectSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_the_wire_are_retried_once_over() {
    let Some((mut options, proxy)) = s3_through_a_proxy().await else {
        return;
    };
    options.retry_timeout = std::time::Duration::from_secs(30);
    let url = s3_url("retry-layer");
    let _cleanup = RemoveOnDrop(url.clone());
    let bs = BlockSize::new(1024).unwrap();
    // Hedging off: it would issue a late request once more, each with its
    // own retries (checked at the end).
    let unhedged = ObjectOptions::new(bs, 16).hedge_after(None);
    let smgr = ObjectSmgr::from_url(&url, &options, unhedged).unwrap();
    let rel = RelFileLocator::in_database(5, 16396);
    smgr.create(rel, MAIN).await.unwrap();
    let pages = (0..32)
        .map(|b| PageBuf::copy_from(&pattern_page(1024, 1, b)))
        .collect();
    smgr.extend(rel, MAIN, 0, pages).await.unwrap();
    smgr.nblocks(rel, MAIN).await.unwrap();
    let key = "base/5/16396";
    let check = |bytes: &[u8], first: u32| {
        for (i, page) in bytes.chunks(1024).enumerate() {
            let block = first + i as u32;
            assert!(page == pattern_page(1024, 1, block), "block {block}");
        }
    };

    // A burst of 503s: two failures, then the answer.
    let before = proxy.count("GET", key);
    proxy.fault_next_gets(key, WireFault::Unavailable, 2);
    check(&smgr.read_to_vec(rel, MAIN, 2, 8).await.unwrap(), 2);
    assert_eq!(proxy.pending(), 0);
    assert_eq!(
        proxy.count("GET", key) - before,
        3,
        "two 503s, then one answer"
    );

    // Bodies cut short, with a FIN or a reset: retried, never short.
    for fault in [WireFault::CutBody, WireFault::Reset] {
        proxy.fault_next_gets(key, fault, 1);
        check(&smgr.read_to_vec(rel, MAIN, 16, 8).await.unwrap(), 16);
        assert_eq!(proxy.pending(), 0, "{fault:?} not met");
    }

    // Failing for good: 1 + max_retries requests, then an error naming
    // the key.
    proxy.fault_every_get(key, Some(WireFault::Unavailable));
    let before = proxy.count("GET", key);
    let err = smgr.read_to_vec(rel, MAIN, 0, 4).await.unwrap_err();
    let requests = proxy.count("GET", key) - before;
    proxy.fault_every_get(key, None);
    assert!(err.to_string().contains(key), "{err}");
    assert_eq!(
        requests,
        1 + options.max_retries,
        "one GET failing for good made {requests} requests: {err}"
    );
    eprintln!("RELIABILITY | GET failing for good on the wire (SeaweedFS behind a proxy answering 503) | {requests} requests | {} retries by object_store, then an error naming the key | - |", options.max_retries);
    check(&smgr.read_to_vec(rel, MAIN, 0, 4).await.unwrap(), 0);

    // With hedging (the default), a request still failing after the
    // hedge threshold is issued once more: at most twice the requests.
    let hedged = ObjectSmgr::from_url(&url, &options, ObjectOptions::new(bs, 16)).unwrap();
    hedged.nblocks(rel, MAIN).await.unwrap();
    proxy.fault_every_get(key, Some(WireFault::Unavailable));
    let before = proxy.count("GET", key);
    let err = hedged.read_to_vec(rel, MAIN, 0, 4).await.unwrap_err();
    let requests = proxy.count("GET", key) - before;
    proxy.fault_every_get(key, None);
    assert!(err.to_string().contains(key), "{err}");
    assert!(
        (1 + options.max_retries..=2 * (1 + options.max_retries)).contains(&requests),
        "{requests} requests with hedging"
    );
}
