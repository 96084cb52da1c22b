//! A write, extension or truncation of a compressed segment compresses
//! again only the frames it touches: every other frame of the new object
//! is the old object's bytes, unchanged. A truncation fetches only the
//! frames it keeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::ops::Range;
use std::sync::Arc;

use common::{compressed_relation, damage_frame_1, get, options, page, read, BS, MAIN};
use object_store::memory::InMemory;
use smgr_api::{PageBuf, RelFileLocator, Smgr};
use smgr_object::seekable::{FrameCompressor, SeekTable, Tail};
use smgr_object::testing::FaultyStore;
use smgr_object::{Compression, ObjectSmgr};

/// The object of segment `segno` and its frames' compressed bytes.
async fn frames(
    store: &InMemory,
    smgr: &ObjectSmgr,
    rel: RelFileLocator,
    segno: u32,
) -> Vec<Vec<u8>> {
    let key = format!("{}.zst", smgr.segment_key(rel, MAIN, segno).unwrap());
    let object = get(store, &key).await.unwrap();
    let Tail::Table(table) =
        SeekTable::parse_tail(&key, &object, object.len() as u64, 16 * BS as u64).unwrap()
    else {
        panic!("{key} has no seek table");
    };
    (0..table.frames().len())
        .map(|i| {
            let c = table.compressed_range(i..i + 1);
            object[c.start as usize..c.end as usize].to_vec()
        })
        .collect()
}

/// Which frames differ between two versions (by index; frames only in
/// one of them count as changed).
fn changed(before: &[Vec<u8>], after: &[Vec<u8>]) -> Vec<usize> {
    (0..before.len().max(after.len()))
        .filter(|&i| before.get(i) != after.get(i))
        .collect()
}

async fn expect_pages(
    smgr: &ObjectSmgr,
    rel: RelFileLocator,
    blocks: Range<u32>,
    version: impl Fn(u32) -> u32,
) {
    let pages = read(smgr, rel, blocks.start, blocks.len()).await.unwrap();
    for (i, p) in pages.iter().enumerate() {
        let b = blocks.start + i as u32;
        assert!(*p == page(version(b), b), "block {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_touched_frames_change() {
    // 150 blocks, segments of 64 blocks, frames of 16: segment 2 holds
    // 22 blocks in frames of 16 and 6.
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let faulty = Arc::new(FaultyStore::new(store.clone()));
    // The relation was compressed at level 3; this backend compresses at
    // 19, so a frame it compressed again cannot pass for a kept one.
    let level = 19;
    let compression = Compression::Zstd {
        level,
        frame_blocks: 16,
    };
    let smgr = ObjectSmgr::new(faulty.clone(), "c", options().compression(compression)).unwrap();
    assert_eq!(smgr.nblocks(rel, MAIN).await.unwrap(), 150);
    let frame0 = &frames(&store, &smgr, rel, 0).await[0];
    let data = zstd::stream::decode_all(&frame0[..]).unwrap();
    let mut compressor = FrameCompressor::new(data.len(), level).unwrap();
    let (again, _) = compressor.compress_frame(&data).unwrap();
    assert_ne!(
        &again, frame0,
        "level {level} compresses frame 0 like level 3"
    );

    // One block inside frame 1 of segment 0: frame 1 alone changes, for
    // one GET of the object and one PUT.
    let before = frames(&store, &smgr, rel, 0).await;
    let counts = faulty.counts();
    let pages = vec![PageBuf::copy_from(&page(2, 21))];
    smgr.writev(rel, MAIN, 21, pages).await.unwrap();
    let after = frames(&store, &smgr, rel, 0).await;
    assert_eq!(changed(&before, &after), vec![1]);
    let now = faulty.counts();
    assert_eq!((now.gets - counts.gets, now.puts - counts.puts), (1, 1));

    // A run across the frame boundary 31|32: frames 1 and 2.
    let before = after;
    let pages = (30..34).map(|b| PageBuf::copy_from(&page(3, b))).collect();
    smgr.writev(rel, MAIN, 30, pages).await.unwrap();
    let after = frames(&store, &smgr, rel, 0).await;
    assert_eq!(changed(&before, &after), vec![1, 2]);

    // Extending segment 2 (frames of 16 and 6 blocks) by 13 blocks: its
    // short last frame grows to 16, one new frame of 3 follows; frame 0
    // keeps its bytes.
    let before = frames(&store, &smgr, rel, 2).await;
    let pages = (150..163)
        .map(|b| PageBuf::copy_from(&page(4, b)))
        .collect();
    smgr.extend(rel, MAIN, 150, pages).await.unwrap();
    let after = frames(&store, &smgr, rel, 2).await;
    assert_eq!(before.len(), 2);
    assert_eq!(changed(&before, &after), vec![1, 2]);

    // Truncating to 100 blocks: segment 1 keeps 36 blocks (frames 0 and
    // 1 whole, frame 2 cut to 4 blocks). Only those three frames are
    // fetched, and only frame 2 changes.
    let before = frames(&store, &smgr, rel, 1).await;
    let kept_bytes: usize = before[..3].iter().map(Vec::len).sum();
    let counts = faulty.counts();
    smgr.truncate(rel, MAIN, 100).await.unwrap();
    let after = frames(&store, &smgr, rel, 1).await;
    assert_eq!(changed(&before, &after), vec![2, 3]);
    assert_eq!(after.len(), 3);
    let now = faulty.counts();
    assert_eq!(now.gets - counts.gets, 1);
    assert_eq!(now.get_bytes - counts.get_bytes, kept_bytes as u64);

    // And the bytes are right, read by a backend that starts afresh.
    let fresh = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    assert_eq!(fresh.nblocks(rel, MAIN).await.unwrap(), 100);
    let version = |b: u32| match b {
        21 => 2,
        30..=33 => 3,
        _ => 1,
    };
    expect_pages(&fresh, rel, 0..100, version).await;
    // Segment 2 is gone; extend again over it to read the grown frame.
    let pages = (100..101)
        .map(|b| PageBuf::copy_from(&page(5, b)))
        .collect();
    fresh.extend(rel, MAIN, 100, pages).await.unwrap();
    expect_pages(&fresh, rel, 96..101, |b| if b == 100 { 5 } else { 1 }).await;
}

/// A compressed segment grown a block at a time still gets frames of
/// `frame_blocks` (its short last frame grows), not one frame per block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_grown_block_by_block_gets_full_frames() {
    let store = Arc::new(InMemory::new());
    let compression = Compression::Zstd {
        level: 3,
        frame_blocks: 4,
    };
    let smgr = ObjectSmgr::new(store.clone(), "c", options().compression(compression)).unwrap();
    let rel = RelFileLocator::in_database(5, 16500);
    smgr.create(rel, MAIN).await.unwrap();
    for b in 0..10 {
        let pages = vec![PageBuf::copy_from(&page(1, b))];
        smgr.extend(rel, MAIN, b, pages).await.unwrap();
    }
    let sizes: Vec<usize> = frames(&store, &smgr, rel, 0)
        .await
        .iter()
        .map(|f| zstd::stream::decode_all(&f[..]).unwrap().len() / BS)
        .collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    expect_pages(&smgr, rel, 0..10, |_| 1).await;
}

/// A write covering a damaged frame whole replaces it (nothing of the old
/// frame is needed); a write into part of it is an error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_frame_can_be_overwritten_whole() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let key = damage_frame_1(&store, rel).await;
    let smgr = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    let partial = vec![PageBuf::copy_from(&page(2, 20))];
    let err = smgr.writev(rel, MAIN, 20, partial).await.unwrap_err();
    assert!(
        err.to_string().contains(&key) && err.to_string().contains("frame 1"),
        "{err}"
    );
    let whole = (16..32).map(|b| PageBuf::copy_from(&page(2, b))).collect();
    smgr.writev(rel, MAIN, 16, whole).await.unwrap();
    expect_pages(
        &smgr,
        rel,
        0..64,
        |b| if (16..32).contains(&b) { 2 } else { 1 },
    )
    .await;
}
