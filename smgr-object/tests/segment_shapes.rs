//! Segment objects of impossible shapes in a bucket (a short segment
//! followed by data, an overlong one, a gap) are reported as corruption
//! naming the key, while empty trailing segments are accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use smgr_api::{BlockSize, Error, ForkNumber, RelFileLocator, Smgr};
use smgr_object::{ObjectOptions, ObjectSmgr};

async fn bucket(objects: &[(&str, usize)]) -> ObjectSmgr {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    for (key, blocks) in objects {
        store
            .put(
                &Path::from(format!("p/{key}")),
                PutPayload::from(vec![1u8; blocks * 1024]),
            )
            .await
            .unwrap();
    }
    ObjectSmgr::new(
        store,
        "p",
        ObjectOptions::new(BlockSize::new(1024).unwrap(), 4),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_shapes_are_corruption() {
    let rel = RelFileLocator::in_database(5, 16396);
    for (objects, segno) in [
        (vec![("base/5/16396", 2), ("base/5/16396.1", 1)], 0),
        (vec![("base/5/16396", 5)], 0),
        (vec![("base/5/16396", 4), ("base/5/16396.2", 1)], 2),
    ] {
        let smgr = bucket(&objects).await;
        let err = smgr.nblocks(rel, ForkNumber::Main).await.unwrap_err();
        match &err {
            Error::CorruptSegment {
                segno: found, path, ..
            } => {
                assert_eq!(*found, segno, "{err}");
                assert!(path.contains("base/5/16396"), "{err}");
            }
            other => panic!("{objects:?}: expected CorruptSegment, got {other}"),
        }
    }
    let fine = bucket(&[
        ("base/5/16396", 4),
        ("base/5/16396.1", 3),
        ("base/5/16396.2", 0),
        ("base/5/163961", 9),
    ])
    .await;
    assert_eq!(fine.nblocks(rel, ForkNumber::Main).await.unwrap(), 7);
}
