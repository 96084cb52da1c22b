//! Against a real S3 server: a writer working from an outdated version of a
//! segment is refused by the conditional put (a concurrent writer is
//! detected, not overwritten); a reader whose object was replaced between
//! two reads gets the new version whole, never a mix of versions. Both for
//! plain segment objects and compressed (`.zst`) ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use futures::TryStreamExt;
use integration::{s3_server, s3_url};
use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, Error, ForkNumber, RelFileLocator, Smgr, SmgrExt};
use smgr_object::{Compression, ObjectOptions, ObjectSmgr};

const MAIN: ForkNumber = ForkNumber::Main;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_is_detected_and_readers_never_mix_versions() {
    let options = ObjectOptions::new(BlockSize::new(1024).unwrap(), 8);
    concurrent_writer_and_stale_reader("consistency", options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_holds_for_compressed_segment_objects() {
    // Frames of 2 blocks: a write touches one frame, a read spans several.
    let options =
        ObjectOptions::new(BlockSize::new(1024).unwrap(), 8).compression(Compression::Zstd {
            level: 3,
            frame_blocks: 2,
        });
    concurrent_writer_and_stale_reader("consistency-zstd", options).await;
}

async fn concurrent_writer_and_stale_reader(test: &str, options: ObjectOptions) {
    let Some(store) = s3_server() else { return };
    let url = s3_url(test);
    let compressed = options.compression != Compression::None;
    let a = ObjectSmgr::from_url(&url, &store, options.clone()).unwrap();
    let b = ObjectSmgr::from_url(&url, &store, options).unwrap();
    let rel = RelFileLocator::in_database(5, 16396);
    a.create(rel, MAIN).await.unwrap();
    for block in 0..6 {
        a.extend_block(rel, MAIN, block, &pattern_page(1024, 1, block))
            .await
            .unwrap();
    }
    // Both have read the segment (and know its version).
    assert_eq!(
        a.read_to_vec(rel, MAIN, 0, 6).await.unwrap().len(),
        6 * 1024
    );
    assert_eq!(b.nblocks(rel, MAIN).await.unwrap(), 6);

    // B changes the segment; A, still holding the old version, must not
    // overwrite B's change.
    b.write_block(rel, MAIN, 2, &pattern_page(1024, 2, 2))
        .await
        .unwrap();
    let err = a
        .write_block(rel, MAIN, 4, &pattern_page(1024, 3, 4))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("base/5/16396"), "{err}");
    let fresh = b.read_to_vec(rel, MAIN, 0, 6).await.unwrap();
    assert_eq!(
        fresh[2 * 1024..3 * 1024],
        pattern_page(1024, 2, 2)[..],
        "B's change was lost"
    );
    assert_eq!(
        fresh[4 * 1024..5 * 1024],
        pattern_page(1024, 1, 4)[..],
        "A's refused write landed"
    );

    // A reads again: its cached version is stale, the ranged GET is refused
    // (If-Match), A relearns the segment and reads the new version whole.
    let seen = a.read_to_vec(rel, MAIN, 0, 6).await.unwrap();
    assert_eq!(seen, fresh);
    // After relearning, A's writes go through again.
    a.write_block(rel, MAIN, 4, &pattern_page(1024, 3, 4))
        .await
        .unwrap();
    b.refresh();
    assert_eq!(
        b.read_to_vec(rel, MAIN, 4, 1).await.unwrap(),
        pattern_page(1024, 3, 4)
    );
    // The segment object is of the kind asked for (`.zst` when compressed).
    let key = a.segment_key(rel, MAIN, 0).unwrap();
    let (objects, prefix, _) = smgr_object::store_from_url(&url, &store).unwrap();
    let listed: Vec<String> = objects
        .list(Some(&object_store::path::Path::from(prefix.as_str())))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let expected = if compressed {
        format!("{key}.zst")
    } else {
        key
    };
    assert!(listed.contains(&expected), "{expected} not in {listed:?}");
    a.unlink(rel, MAIN).await.unwrap();
}
