//! A compressed frame that does not decompress, read through the pool:
//! normally an error naming the object, the frame and its blocks, with no
//! frame left pinned or in I/O; with `ZeroOnError` the frame's pages, and
//! only those, become zeros, each with a warning, and the rest of the
//! relation reads right.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use bufmgr::{BufferPool, PoolConfig, ReadBufferMode};
use common::{compressed_relation, damage_frame_1, get, options, page, MAIN};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use smgr_api::{PageFormat, RelFileLocator};
use smgr_object::ObjectSmgr;
use streamread::{ReadStream, StreamConfig, StreamFlags};

/// Scans blocks 0..150 in `mode`: the pages (None where the stream gave
/// an error) and the pool.
async fn scan(
    store: Arc<InMemory>,
    mode: ReadBufferMode,
) -> (Vec<Option<Vec<u8>>>, Vec<String>, BufferPool) {
    let smgr = Arc::new(ObjectSmgr::new(store, "c", options()).unwrap());
    let pool = BufferPool::new(smgr, PoolConfig::new(64, PageFormat::Native)).unwrap();
    let rel = RelFileLocator::in_database(5, 16396);
    let config = StreamConfig::default()
        .io_combine_bytes(128 << 10)
        .max_ios(4);
    let mut stream =
        ReadStream::range(&pool, rel, MAIN, config, StreamFlags::default(), 0..150).with_mode(mode);
    let (mut pages, mut errors) = (Vec::new(), Vec::new());
    loop {
        match stream.next_buffer().await {
            Ok(Some((buffer, ()))) => pages.push(Some(buffer.read().unwrap().to_vec())),
            Ok(None) => break,
            Err(err) => {
                errors.push(err.to_string());
                pages.push(None);
            }
        }
    }
    drop(stream);
    (pages, errors, pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_is_an_error_or_zeros_and_nothing_else() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let key = damage_frame_1(&store, rel).await;

    // Normal: the blocks of frame 1 fail, naming it; every other block
    // reads right.
    let (pages, errors, pool) = scan(store.clone(), ReadBufferMode::Normal).await;
    assert_eq!(pages.len(), 150);
    assert!(!errors.is_empty());
    for err in &errors {
        assert!(
            err.contains(&key) && err.contains("frame 1 (blocks 16..=31)"),
            "{err}"
        );
    }
    for (b, p) in pages.iter().enumerate() {
        match p {
            Some(p) => {
                assert!(!(16..32).contains(&b), "block {b} of the bad frame read");
                assert!(*p == page(1, b as u32), "block {b}");
            }
            None => assert!((16..32).contains(&b), "block {b} failed"),
        }
    }
    assert!(pool.census().is_quiet(), "{:?}", pool.census());

    // ZeroOnError: frame 1's sixteen pages are zeros, counted; the rest
    // reads right.
    let (pages, errors, pool) = scan(store, ReadBufferMode::ZeroOnError).await;
    assert!(errors.is_empty(), "{errors:?}");
    for (b, p) in pages.iter().enumerate() {
        let p = p.as_ref().unwrap();
        if (16..32).contains(&b) {
            assert!(p.iter().all(|&x| x == 0), "block {b} not zeroed");
        } else {
            assert!(*p == page(1, b as u32), "block {b}");
        }
    }
    assert_eq!(pool.stats().pages_zeroed_on_error, 16);
    assert!(pool.census().is_quiet(), "{:?}", pool.census());
}

/// A damaged seek table is not damaged pages: it says nothing about which
/// blocks exist, so even `ZeroOnError` reads fail, and nothing is zeroed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_seek_table_is_an_error_even_when_zeroing() {
    let store = Arc::new(InMemory::new());
    let rel = compressed_relation(&store).await;
    let smgr = ObjectSmgr::new(Arc::new(InMemory::new()), "c", options()).unwrap();
    let key = format!("{}.zst", smgr.segment_key(rel, MAIN, 0).unwrap());
    let mut object = get(&store, &key).await.unwrap().to_vec();
    // The frame count in the footer, one too many.
    let at = object.len() - 9;
    let frames = u32::from_le_bytes(object[at..at + 4].try_into().unwrap());
    object[at..at + 4].copy_from_slice(&(frames + 1).to_le_bytes());
    store
        .put(&Path::from(key.as_str()), PutPayload::from(object))
        .await
        .unwrap();
    let (pages, errors, pool) = scan(store, ReadBufferMode::ZeroOnError).await;
    assert!(pages.iter().all(Option::is_none), "a block was served");
    assert!(
        !errors.is_empty() && errors.iter().all(|e| e.contains(&key)),
        "{errors:?}"
    );
    assert_eq!(pool.stats().pages_zeroed_on_error, 0);
    assert!(pool.census().is_quiet(), "{:?}", pool.census());
}
