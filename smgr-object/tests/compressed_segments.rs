//! Segment objects stored compressed (`.zst`, zstd seekable format) are
//! read, written, extended and truncated like plain ones, stay compressed,
//! and damage is an error naming the key, never wrong bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use common::{compressed_relation, get, options, page, read, BS, MAIN};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use smgr_api::{Error, PageBuf, RelFileLocator, Smgr};
use smgr_object::seekable::{compress, SeekTable, Tail};
use smgr_object::ObjectSmgr;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_segments_read_write_extend_truncate() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let smgr = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 150);
    // Whole relation; a run inside one frame; across frames; across segments.
    for (first, n) in [(0u32, 150usize), (3, 5), (10, 30), (60, 10), (149, 1)] {
        let pages = read(&smgr, rel, first, n).await.unwrap();
        for (i, p) in pages.iter().enumerate() {
            assert!(
                *p == page(1, first + i as u32),
                "block {}",
                first + i as u32
            );
        }
    }

    // Rewrite blocks 5..8 of segment 0; it stays compressed.
    let new: Vec<PageBuf> = (5..8).map(|b| PageBuf::copy_from(&page(2, b))).collect();
    smgr.writev(rel, MAIN, 5, new).await.unwrap();
    let key0 = smgr.segment_key(rel, MAIN, 0).unwrap();
    assert!(get(&store, &key0).await.is_none(), "a plain copy appeared");
    let object = get(&store, &format!("{key0}.zst")).await.unwrap();
    let whole = zstd::stream::decode_all(&object[..]).unwrap();
    assert_eq!(whole.len(), 64 * BS);
    for b in 0..64u32 {
        let version = if (5..8).contains(&b) { 2 } else { 1 };
        assert!(
            whole[b as usize * BS..(b as usize + 1) * BS] == page(version, b)[..],
            "block {b}"
        );
    }
    let fresh = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    assert!(read(&fresh, rel, 6, 1).await.unwrap()[0] == page(2, 6));

    // Extend inside the compressed last segment (22 -> 32 blocks).
    let more: Vec<PageBuf> = (150..160)
        .map(|b| PageBuf::copy_from(&page(3, b)))
        .collect();
    smgr.extend(rel, MAIN, 150, more).await.unwrap();
    let fresh = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    assert_eq!(fresh.nblocks(rel, MAIN).await.unwrap(), 160);
    assert!(read(&fresh, rel, 159, 1).await.unwrap()[0] == page(3, 159));

    // Truncate to 100: segment 2 goes, segment 1 keeps 36 blocks, compressed.
    smgr.truncate(rel, MAIN, 100).await.unwrap();
    let key2 = smgr.segment_key(rel, MAIN, 2).unwrap();
    assert!(get(&store, &format!("{key2}.zst")).await.is_none());
    let fresh = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    assert_eq!(fresh.nblocks(rel, MAIN).await.unwrap(), 100);
    let pages = read(&fresh, rel, 60, 40).await.unwrap();
    for (i, p) in pages.iter().enumerate() {
        assert!(*p == page(1, 60 + i as u32), "block {}", 60 + i);
    }
    let key1 = smgr.segment_key(rel, MAIN, 1).unwrap();
    let object = get(&store, &format!("{key1}.zst")).await.unwrap();
    assert_eq!(
        zstd::stream::decode_all(&object[..]).unwrap().len(),
        36 * BS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_compressed_objects_are_errors_naming_the_key() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let key0 = format!(
        "{}.zst",
        ObjectSmgr::new(store.clone(), "c", options())
            .unwrap()
            .segment_key(rel, MAIN, 0)
            .unwrap()
    );
    let original = get(&store, &key0).await.unwrap();

    // A byte flipped inside the first frame.
    let mut damaged = original.to_vec();
    damaged[200] ^= 0x20;
    store
        .put(&Path::from(key0.as_str()), PutPayload::from(damaged))
        .await
        .unwrap();
    let smgr = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    let err = read(&smgr, rel, 0, 4).await.unwrap_err();
    assert!(matches!(err, Error::CorruptFrame { frame: 0, .. }), "{err}");
    assert!(
        err.to_string().contains(&key0) && err.to_string().contains("frame 0"),
        "{err}"
    );
    // Blocks of other frames still read.
    assert!(read(&smgr, rel, 20, 1).await.unwrap()[0] == page(1, 20));

    // A truncated object: its seek table no longer adds up.
    let cut = original.slice(..original.len() - 5);
    store
        .put(&Path::from(key0.as_str()), PutPayload::from(cut))
        .await
        .unwrap();
    let smgr = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    let err = smgr.nblocks(rel, MAIN).await.unwrap_err();
    assert!(err.to_string().contains(&key0), "{err}");
    // Only that fork: another relation in the same directory still reads.
    let other = RelFileLocator::in_database(5, 16397);
    smgr.create(other, MAIN).await.unwrap();
    let pages = vec![PageBuf::copy_from(&page(1, 0))];
    smgr.extend(other, MAIN, 0, pages).await.unwrap();
    // An empty object named .zst: the same, an error for its fork only.
    let empty = RelFileLocator::in_database(5, 16398);
    let empty_key = format!("{}.zst", smgr.segment_key(empty, MAIN, 0).unwrap());
    store
        .put(&Path::from(empty_key.as_str()), PutPayload::new())
        .await
        .unwrap();
    let fresh = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    assert!(fresh.nblocks(rel, MAIN).await.is_err());
    let err = fresh.nblocks(empty, MAIN).await.unwrap_err();
    assert!(
        matches!(err, Error::CorruptObject { ref key, .. } if *key == empty_key),
        "{err}"
    );
    assert!(read(&fresh, other, 0, 1).await.unwrap()[0] == page(1, 0));

    // Frames bigger than a reader accepts (32 blocks; it takes 16): an
    // error naming the key when listed, not a 256 KiB allocation per
    // frame; with the limit raised, the same object reads.
    let whole = zstd::stream::decode_all(&original[..]).unwrap();
    let big_frames = compress(&whole, 32 * BS, 3).unwrap();
    store
        .put(&Path::from(key0.as_str()), PutPayload::from(big_frames))
        .await
        .unwrap();
    let strict = ObjectSmgr::new(store.clone(), "c", options().max_frame_blocks(16)).unwrap();
    let err = strict.nblocks(rel, MAIN).await.unwrap_err();
    assert!(
        err.to_string().contains(&key0) && err.to_string().contains("more than a frame may hold"),
        "{err}"
    );
    let lenient = ObjectSmgr::new(store.clone(), "c", options().max_frame_blocks(32)).unwrap();
    assert!(read(&lenient, rel, 40, 1).await.unwrap()[0] == page(1, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_then_read_of_compressed_frames_costs_one_get() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let faulty = Arc::new(smgr_object::testing::FaultyStore::new(store.clone()));
    let smgr = ObjectSmgr::new(faulty.clone(), "c", options()).unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 150);
    for (first, n) in [(20u32, 1u32), (40, 3), (70, 20)] {
        let before = faulty.counts().gets;
        assert!(smgr.prefetch(rel, MAIN, first, n).await);
        let pages = read(&smgr, rel, first, n as usize).await.unwrap();
        for (i, p) in pages.iter().enumerate() {
            assert!(
                *p == page(1, first + i as u32),
                "block {}",
                first + i as u32
            );
        }
        // Let a late prefetch task finish, then count.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            faulty.counts().gets - before,
            1,
            "blocks {first}..{}",
            first + n
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_one_ranged_get_of_exactly_its_frames() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    // Segment 0's table, read here from the object itself.
    let key = format!("{}.zst", segment0_key(rel));
    let object = get(&store, &key).await.unwrap();
    let Tail::Table(table) =
        SeekTable::parse_tail(&key, &object, object.len() as u64, 1 << 20).unwrap()
    else {
        panic!("no seek table");
    };
    let faulty = Arc::new(smgr_object::testing::FaultyStore::new(store.clone()));
    let smgr = ObjectSmgr::new(faulty.clone(), "c", options()).unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 150);
    // Inside one frame; whole frames; parts of three frames (segment 0:
    // blocks 0..64, frames of 16 blocks).
    for (first, n) in [(20u32, 1u32), (16, 32), (10, 30)] {
        let before = faulty.counts();
        let pages = read(&smgr, rel, first, n as usize).await.unwrap();
        for (i, p) in pages.iter().enumerate() {
            assert!(
                *p == page(1, first + i as u32),
                "block {}",
                first + i as u32
            );
        }
        let after = faulty.counts();
        let bytes = u64::from(first) * BS as u64..u64::from(first + n) * BS as u64;
        let frames = table.compressed_range(table.frames_for(bytes));
        assert_eq!(after.gets - before.gets, 1, "blocks {first}..{}", first + n);
        assert_eq!(
            after.get_bytes - before.get_bytes,
            frames.end - frames.start,
            "blocks {first}..{}: the GET should cover exactly their frames",
            first + n
        );
    }
}

/// The key of segment 0 of `rel` (without `.zst`).
fn segment0_key(rel: RelFileLocator) -> String {
    ObjectSmgr::new(Arc::new(InMemory::new()), "c", options())
        .unwrap()
        .segment_key(rel, MAIN, 0)
        .unwrap()
}
