//! The cap on bytes of GETs in flight holds under many concurrent random
//! reads: the backend's own peak stays under it, the store never sees more
//! requests at once than the cap allows, and every read is right.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr, SmgrExt};
use smgr_object::testing::{Latency, LatencyStore};
use smgr_object::{BytesInFlight, ObjectOptions, ObjectSmgr};

const MAIN: ForkNumber = ForkNumber::Main;
const BS: usize = 8192;
const BLOCKS: u32 = 256;
const CAP: u64 = 64 << 10;

/// A relation of `BLOCKS` pattern pages, behind a store that waits 5 ms
/// before every first byte.
async fn relation() -> (Arc<LatencyStore>, ObjectOptions, RelFileLocator) {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let options = ObjectOptions::new(BlockSize::DEFAULT, 64);
    let writer = ObjectSmgr::new(memory.clone(), "cap", options.clone()).unwrap();
    let rel = RelFileLocator::in_database(5, 16396);
    writer.create(rel, MAIN).await.unwrap();
    let pages = (0..BLOCKS)
        .map(|b| PageBuf::copy_from(&pattern_page(BS, 3, b)))
        .collect();
    writer.extend(rel, MAIN, 0, pages).await.unwrap();
    let slow = Arc::new(LatencyStore::new(
        memory,
        Latency {
            first_byte: Duration::from_millis(5),
            ..Latency::default()
        },
    ));
    (slow, options, rel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_readers_stay_under_the_cap() {
    let (slow, options, rel) = relation().await;
    let reader = ObjectSmgr::new(slow.clone(), "cap", options.max_bytes_in_flight(CAP)).unwrap();
    reader.nblocks(rel, MAIN).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32u64 {
        let reader = reader.clone();
        tasks.spawn(async move {
            let mut seed = task.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..10 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let len = (seed % 4 + 1) as u32;
                let first = ((seed >> 8) % u64::from(BLOCKS - len)) as u32;
                let bytes = reader
                    .read_to_vec(rel, MAIN, first, len as usize)
                    .await
                    .unwrap();
                for (i, page) in bytes.chunks(BS).enumerate() {
                    let block = first + i as u32;
                    assert!(page == pattern_page(BS, 3, block), "block {block}");
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let stats = reader.stats();
    assert!(stats.peak_bytes_in_flight > 0, "{stats:?}");
    assert!(stats.peak_bytes_in_flight <= CAP, "{stats:?}");
    // Every GET is at least one block: never more than CAP / block at once.
    let counts = slow.counts();
    assert!(
        counts.most_in_flight as u64 <= CAP / BS as u64,
        "{counts:?}"
    );
    assert!(
        counts.most_in_flight >= 2,
        "no concurrency to cap: {counts:?}"
    );
    assert_eq!(counts.in_flight, 0);
}

/// Two backends given one cap (as every backend of a process shares
/// `BytesInFlight::process()` by default) stay under it together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_sharing_a_cap_stay_under_it_together() {
    let (slow, options, rel) = relation().await;
    let cap = BytesInFlight::new(CAP);
    let mut tasks = tokio::task::JoinSet::new();
    for backend in 0..2u64 {
        let reader = ObjectSmgr::new(
            slow.clone(),
            "cap",
            options.clone().bytes_in_flight(cap.clone()),
        )
        .unwrap();
        for task in 0..16u64 {
            let reader = reader.clone();
            tasks.spawn(async move {
                for i in 0..10u32 {
                    let first = ((backend * 16 + task) as u32 * 37 + i * 11) % (BLOCKS - 2);
                    let bytes = reader.read_to_vec(rel, MAIN, first, 2).await.unwrap();
                    assert!(bytes[..BS] == pattern_page(BS, 3, first), "block {first}");
                }
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert!(
        cap.peak() > 0 && cap.peak() <= CAP,
        "{cap:?}: peak {}",
        cap.peak()
    );
    let counts = slow.counts();
    // Every GET is at least one block (read-ahead may cut one that short).
    assert!(
        counts.most_in_flight as u64 <= CAP / BS as u64,
        "{counts:?}"
    );
    assert!(counts.most_in_flight >= 2, "no concurrency: {counts:?}");
}
