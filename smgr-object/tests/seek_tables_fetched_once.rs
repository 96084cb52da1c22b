//! A caller that lists objects itself (the `smgr` command) fetches seek
//! tables through `ObjectSmgr::seek_table`; the backend's own listing then
//! takes them instead of fetching them again, but only while the object is
//! the version whose table it was (same ETag).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use common::{compressed_relation, get, options, MAIN};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use smgr_api::Smgr;
use smgr_object::seekable::compress;
use smgr_object::testing::FaultyStore;
use smgr_object::ObjectSmgr;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_reuses_the_tables_its_caller_fetched() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let faulty = Arc::new(FaultyStore::new(store.clone()));
    let smgr = ObjectSmgr::new(faulty.clone(), "c", options()).unwrap();

    // The caller's own listing, and a table per compressed object.
    let listed: Vec<_> = store
        .list(Some(&Path::from("c")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    let before = faulty.counts();
    let mut logical = 0;
    for meta in &listed {
        let table = smgr
            .seek_table(
                meta.location.as_ref(),
                meta.size,
                meta.e_tag.clone(),
                meta.version.clone(),
            )
            .await
            .unwrap();
        logical += table.decompressed_len();
    }
    assert_eq!(logical, 150 * 8192);
    assert_eq!(faulty.counts().gets - before.gets, 3);

    // The backend's listing: one LIST, no tail GET.
    let before = faulty.counts();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 150);
    let now = faulty.counts();
    assert_eq!((now.lists - before.lists, now.gets - before.gets), (1, 0));

    // A table remembered for a version that was then replaced is not used:
    // the listing sees another ETag and fetches the new table.
    let fresh = ObjectSmgr::new(faulty.clone(), "c", options()).unwrap();
    let key0 = format!("{}.zst", fresh.segment_key(rel, MAIN, 0).unwrap());
    let meta0 = store.head(&Path::from(key0.as_str())).await.unwrap();
    fresh
        .seek_table(
            &key0,
            meta0.size,
            meta0.e_tag.clone(),
            meta0.version.clone(),
        )
        .await
        .unwrap();
    let whole = zstd::stream::decode_all(&get(&store, &key0).await.unwrap()[..]).unwrap();
    let shorter = compress(&whole[..32 * 8192], 16 * 8192, 3).unwrap();
    store
        .put(&Path::from(key0.as_str()), PutPayload::from(shorter))
        .await
        .unwrap();
    let before = faulty.counts();
    // Segment 0 is now short (32 blocks) with later segments after it: the
    // fork is corrupt, which only the new table can tell.
    let err = fresh.nblocks(rel, MAIN).await.unwrap_err();
    assert!(err.to_string().contains("segment"), "{err}");
    assert_eq!(faulty.counts().gets - before.gets, 3);
}
