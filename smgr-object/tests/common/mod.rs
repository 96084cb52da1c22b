//! A relation stored as compressed segment objects, for the tests of
//! compressed segments.

#![allow(dead_code)] // each test file uses part of this

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use smgr_api::{BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr};
use smgr_object::seekable::{compress, SeekTable, Tail};
use smgr_object::{ObjectOptions, ObjectSmgr};

pub const MAIN: ForkNumber = ForkNumber::Main;
pub const BS: usize = 8192;

pub fn options() -> ObjectOptions {
    ObjectOptions::new(BlockSize::DEFAULT, 64)
}

/// A page that compresses like real ones (runs and repeats), distinct per
/// block and version.
pub fn page(version: u32, block: u32) -> Vec<u8> {
    let mut page: Vec<u8> = (0..BS)
        .map(|i| ((i / 64) as u8).wrapping_add(version as u8))
        .collect();
    page[4..8].copy_from_slice(&block.to_le_bytes());
    page[8..12].copy_from_slice(&version.to_le_bytes());
    // A valid page in the library's own format, for reads through a pool.
    PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT).set_checksum(&mut page, block);
    page
}

pub async fn get(store: &InMemory, key: &str) -> Option<Bytes> {
    match store.get(&Path::from(key)).await {
        Ok(result) => Some(result.bytes().await.unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(err) => panic!("{err}"),
    }
}

/// A 150-block relation in three segments, then every segment object
/// replaced by its compressed form.
pub async fn compressed_relation(store: &Arc<InMemory>) -> RelFileLocator {
    let rel = RelFileLocator::in_database(5, 16396);
    let plain = ObjectSmgr::new(store.clone(), "c", options()).unwrap();
    plain.create(rel, MAIN).await.unwrap();
    let pages = (0..150).map(|b| PageBuf::copy_from(&page(1, b))).collect();
    plain.extend(rel, MAIN, 0, pages).await.unwrap();
    for segno in 0..3 {
        let key = plain.segment_key(rel, MAIN, segno).unwrap();
        let bytes = get(store, &key).await.unwrap();
        let object = compress(&bytes, 16 * BS, 3).unwrap();
        assert!(
            object.len() < bytes.len() / 2,
            "segment {segno} hardly compressed"
        );
        store
            .put(&Path::from(format!("{key}.zst")), PutPayload::from(object))
            .await
            .unwrap();
        store.delete(&Path::from(key)).await.unwrap();
    }
    rel
}

pub async fn read(
    smgr: &ObjectSmgr,
    rel: RelFileLocator,
    first: u32,
    n: usize,
) -> smgr_api::Result<Vec<Vec<u8>>> {
    let bufs = smgr
        .readv(
            rel,
            MAIN,
            first,
            PageBuf::zeroed_blocks(BlockSize::DEFAULT, n),
        )
        .await?;
    Ok(bufs.iter().map(|b| b.to_vec()).collect())
}

/// Flips a byte in the middle of frame 1 (blocks 16..=31) of segment 0.
pub async fn damage_frame_1(store: &InMemory, rel: RelFileLocator) -> String {
    let smgr = ObjectSmgr::new(Arc::new(InMemory::new()), "c", options()).unwrap();
    let key = format!("{}.zst", smgr.segment_key(rel, MAIN, 0).unwrap());
    let mut object = get(store, &key).await.unwrap().to_vec();
    let Tail::Table(table) =
        SeekTable::parse_tail(&key, &object, object.len() as u64, 1 << 20).unwrap()
    else {
        panic!("no seek table");
    };
    let c = table.compressed_range(1..2);
    object[((c.start + c.end) / 2) as usize] ^= 0x55;
    store
        .put(&Path::from(key.as_str()), PutPayload::from(object))
        .await
        .unwrap();
    key
}
