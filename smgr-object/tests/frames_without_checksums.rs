//! A compressed segment written by another tool with no checksums at all
//! (frames without zstd's, a seek table without its own) reads by default;
//! with `require_frame_checksums` its frames are refused as `CorruptFrame`,
//! on reads and before a write would compress them again under a fresh
//! checksum.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use common::{options, page, read, BS, MAIN};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use smgr_api::{Error, PageBuf, RelFileLocator, Smgr};
use smgr_object::testing::seekable_without_checksums;
use smgr_object::ObjectSmgr;

/// Segment 0 of a 32-block relation as a seekable object in frames of 8
/// blocks, none of them checksummed.
async fn bare_relation(store: &Arc<InMemory>) -> RelFileLocator {
    let rel = RelFileLocator::in_database(5, 16420);
    let plain = ObjectSmgr::new(store.clone(), "bare", options()).unwrap();
    let key = plain.segment_key(rel, MAIN, 0).unwrap();
    let data: Vec<u8> = (0..32).flat_map(|b| page(1, b)).collect();
    let object = seekable_without_checksums(&data, 8 * BS).unwrap();
    store
        .put(&Path::from(format!("{key}.zst")), PutPayload::from(object))
        .await
        .unwrap();
    rel
}

#[tokio::test(flavor = "current_thread")]
async fn unchecksummed_frames_are_refused_when_checksums_are_required() {
    let store = Arc::new(InMemory::new());
    let rel = bare_relation(&store).await;

    let lenient = ObjectSmgr::new(store.clone(), "bare", options()).unwrap();
    let pages = read(&lenient, rel, 0, 32).await.unwrap();
    for (b, p) in pages.iter().enumerate() {
        assert!(*p == page(1, b as u32), "block {b}");
    }

    let strict = ObjectSmgr::new(
        store.clone(),
        "bare",
        options().require_frame_checksums(true),
    )
    .unwrap();
    let err = read(&strict, rel, 9, 2).await.unwrap_err();
    assert!(
        matches!(&err, Error::CorruptFrame { frame: 1, .. })
            && err.to_string().contains("no checksum"),
        "{err}"
    );
    // A one-block write must decompress its frame to keep the other seven
    // blocks: refused too, and nothing is written.
    let err = strict
        .writev(rel, MAIN, 17, vec![PageBuf::copy_from(&page(2, 17))])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::CorruptFrame { frame: 2, .. }),
        "{err}"
    );
    let pages = read(&lenient, rel, 16, 8).await.unwrap();
    for (i, p) in pages.iter().enumerate() {
        let b = 16 + i as u32;
        assert!(*p == page(1, b), "block {b} changed by a refused write");
    }
    // A write covering a frame whole does not decompress it: allowed, and
    // the new frame carries a checksum, so strict reads take it.
    let whole: Vec<PageBuf> = (24..32).map(|b| PageBuf::copy_from(&page(3, b))).collect();
    strict.writev(rel, MAIN, 24, whole).await.unwrap();
    let pages = read(&strict, rel, 24, 8).await.unwrap();
    for (i, p) in pages.iter().enumerate() {
        let b = 24 + i as u32;
        assert!(*p == page(3, b), "block {b}");
    }
}
