//! Faults of the object store under the buffer pool and a read stream: a
//! burst of transient failures (503 answers), bodies cut short, connections
//! reset mid-body, latency spikes, and GETs failing for good.
//!
//! Transient faults are injected on the wire, between the backend and the
//! real S3 server (`integration::wire`), where `object_store`'s retry layer
//! (the backend's only one) meets them: every block comes back right. GETs
//! failing for good (`FaultyStore`, above that layer: what it hands up
//! after its retries), in memory and on the server, are errors naming the
//! object, the stream goes on; the pool is quiet afterwards and a new scan
//! returns every block right. Prints rows for RELIABILITY.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;
use std::time::Duration;

use bufmgr::{BufferPool, PoolConfig};
use integration::wire::{WireFault, WireProxy};
use integration::{s3_through_a_proxy, s3_url, write_demo_relation, RemoveOnDrop};
use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::ObjectStore;
use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageFormat, PageVerifier, RelFileLocator, Smgr,
};
use smgr_cli::demo::demo_page;
use smgr_object::testing::FaultyStore;
use smgr_object::{store_from_url, ObjectOptions, ObjectSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const BLOCKS: BlockNumber = 1024; // 8 MiB in 4 segment objects
const FORMAT: PageFormat = PageFormat::Postgres { checksums: true };

async fn load(store: Arc<dyn ObjectStore>, prefix: &str, rel: RelFileLocator) {
    let smgr = ObjectSmgr::new(store, prefix, ObjectOptions::new(BlockSize::DEFAULT, 256)).unwrap();
    write_demo_relation(&smgr, rel, BLOCKS, 256).await.unwrap();
}

/// A scan through a fresh pool: (blocks right, errors).
async fn scan(
    store: Arc<dyn ObjectStore>,
    prefix: &str,
    rel: RelFileLocator,
) -> (u64, Vec<String>, BufferPool) {
    let smgr = Arc::new(
        ObjectSmgr::new(store, prefix, ObjectOptions::new(BlockSize::DEFAULT, 256)).unwrap(),
    );
    let pool = BufferPool::new(smgr, PoolConfig::new(512, FORMAT)).unwrap();
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    let config = StreamConfig::default()
        .io_combine_bytes(128 << 10)
        .max_ios(4);
    let mut stream = ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..BLOCKS);
    let (mut good, mut errors) = (0, Vec::new());
    loop {
        match stream.next_buffer().await {
            Ok(Some((buffer, ()))) => {
                let block = buffer.tag().block;
                assert_eq!(
                    &*buffer.read().unwrap(),
                    &*demo_page(&verifier, BlockSize::DEFAULT, block),
                    "block {block}"
                );
                good += 1;
            }
            Ok(None) => break,
            Err(err) => errors.push(err.to_string()),
        }
    }
    drop(stream);
    (good, errors, pool)
}

async fn scenarios(
    base: Arc<dyn ObjectStore>,
    prefix: &str,
    place: &str,
    wire: Option<&WireProxy>,
) {
    let rel = RelFileLocator::in_database(5, 16800);
    load(base.clone(), prefix, rel).await;
    let faulty = Arc::new(FaultyStore::new(base.clone()));
    let store: Arc<dyn ObjectStore> = faulty.clone();
    let bytes = u64::from(BLOCKS) * 8192;

    // Transient faults on the wire, each retried below the pool by
    // object_store (a store in memory has no wire, and no retry layer).
    let transient = [
        ("503 burst on GET", WireFault::Unavailable),
        (
            "body cut short mid-GET (half the body, then FIN)",
            WireFault::CutBody,
        ),
        (
            "connection reset mid-body (half the body, then RST)",
            WireFault::Reset,
        ),
    ];
    for (fault, wire_fault) in transient {
        let Some(wire) = wire else { break };
        wire.fault_next_gets("base/5/16800", wire_fault, 3);
        let (good, errors, pool) = scan(store.clone(), prefix, rel).await;
        assert_eq!(wire.pending(), 0, "{fault}: not all met");
        assert!(errors.is_empty(), "{fault}: {errors:?}");
        assert_eq!(good, u64::from(BLOCKS), "{fault}");
        assert!(pool.census().is_quiet(), "{fault}: {:?}", pool.census());
        eprintln!("RELIABILITY | {fault} ({place}), through pool and stream | 3 | retried: all {good} blocks correct | {bytes} |");
    }

    // Failing for good: more failures than the backend retries.
    faulty.fail_next_gets(40);
    let (good, errors, pool) = scan(store.clone(), prefix, rel).await;
    assert_eq!(faulty.pending_faults(), 0, "the faults were not all met");
    assert!(!errors.is_empty());
    assert_eq!(good + errors.len() as u64, u64::from(BLOCKS));
    for err in &errors {
        assert!(
            err.contains("base/5/16800"),
            "error without the object's name: {err}"
        );
    }
    assert!(pool.census().is_quiet(), "{:?}", pool.census());
    faulty.fail_next_gets(0);
    let (again, errors_after, _) = scan(store.clone(), prefix, rel).await;
    assert!(errors_after.is_empty(), "{errors_after:?}");
    assert_eq!(again, u64::from(BLOCKS));
    eprintln!(
        "RELIABILITY | GETs failing for good ({place}), through pool and stream | 40 | {} errors naming the object, {good} blocks correct, pool quiet; then all {again} correct | {} |",
        errors.len(),
        (good + again) * 8192
    );

    // An object replaced between reads: another writer rewrites segment 1
    // while the reader's backend still knows the old version. Each read of
    // it is refused (If-Match), relearns the segment and returns the new
    // version whole; never a mix of versions within a read.
    let reader = Arc::new(
        ObjectSmgr::new(
            store.clone(),
            prefix,
            ObjectOptions::new(BlockSize::DEFAULT, 256),
        )
        .unwrap(),
    );
    let pool = BufferPool::new(reader.clone(), PoolConfig::new(64, FORMAT)).unwrap();
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    let before = pool
        .read_buffer(rel, MAIN, 300, bufmgr::ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(
        &*before.read().unwrap(),
        &*demo_page(&verifier, BlockSize::DEFAULT, 300)
    );
    drop(before);
    let writer = ObjectSmgr::new(
        store.clone(),
        prefix,
        ObjectOptions::new(BlockSize::DEFAULT, 256),
    )
    .unwrap();
    let new_pages: Vec<_> = (256..512)
        .map(|b| demo_page(&verifier, BlockSize::DEFAULT, b + 5000))
        .collect();
    let mut rewritten = Vec::new();
    for (i, mut page) in new_pages.into_iter().enumerate() {
        verifier.set_checksum(&mut page, 256 + i as u32);
        rewritten.push(page);
    }
    let expected: Vec<Vec<u8>> = rewritten.iter().map(|p| p.to_vec()).collect();
    writer.writev(rel, MAIN, 256, rewritten).await.unwrap();
    // A fresh pool (the first one still holds block 300 as it was: a
    // writer that bypasses the pool is not its business), over the same
    // backend, whose knowledge of the segment is now stale.
    drop(pool);
    let pool = BufferPool::new(reader.clone(), PoolConfig::new(64, FORMAT)).unwrap();
    let mut stream = ReadStream::range(
        &pool,
        rel,
        MAIN,
        StreamConfig::default(),
        StreamFlags::default(),
        256..512,
    );
    let mut replaced = 0u64;
    while let Some((buffer, ())) = stream.next_buffer().await.unwrap() {
        let block = buffer.tag().block;
        assert!(
            *buffer.read().unwrap() == expected[(block - 256) as usize][..],
            "block {block}: not the new version"
        );
        replaced += 1;
    }
    drop(stream);
    assert_eq!(replaced, 256);
    assert!(pool.census().is_quiet(), "{:?}", pool.census());
    eprintln!("RELIABILITY | object replaced between reads ({place}), through pool and stream | 1 | every block of the replaced object read whole in its new version | {} |", replaced * 8192);
    // Put the original pages back for the next scenario.
    let originals: Vec<_> = (256..512)
        .map(|b| demo_page(&verifier, BlockSize::DEFAULT, b))
        .collect();
    writer.writev(rel, MAIN, 256, originals).await.unwrap();

    // Latency spikes on every GET.
    let slow: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(
        base,
        ThrottleConfig {
            wait_get_per_call: Duration::from_millis(15),
            ..ThrottleConfig::default()
        },
    ));
    let (good, errors, pool) = scan(slow, prefix, rel).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(good, u64::from(BLOCKS));
    assert!(pool.census().is_quiet());
    eprintln!("RELIABILITY | 15 ms added to every GET ({place}), through pool and stream | all | all {good} blocks correct | {bytes} |");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_faults_through_the_pool_in_memory() {
    scenarios(Arc::new(InMemory::new()), "faults", "in memory", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_faults_through_the_pool_on_s3() {
    let Some((options, wire)) = s3_through_a_proxy().await else {
        return;
    };
    let url = s3_url("pool-faults");
    let _cleanup = RemoveOnDrop(url.clone());
    let (store, prefix, _) = store_from_url(&url, &options).unwrap();
    scenarios(store, &prefix, "SeaweedFS", Some(&wire)).await;
}
