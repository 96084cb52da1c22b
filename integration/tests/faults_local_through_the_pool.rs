//! Faults injected under the buffer pool and read streams, over real files
//! (`smgr-md` in a temporary directory wrapped in `FaultySmgr`): `EIO` on
//! read, write and fsync, short reads, `ENOSPC` on extend, latency spikes.
//!
//! For each: the caller gets a clear error naming what failed (or, for
//! latency, the right bytes); no pin leaks and no frame is left in I/O
//! (`BufferPool::census`); once the fault is gone the same operations
//! succeed and every byte read back is checked against what was written.
//! Each scenario prints one line for the table in RELIABILITY.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::sync::Arc;
use std::time::Duration;

use bufmgr::{BufferPool, PoolConfig};
use smgr_api::testkit::{Fault, FaultOp, FaultySmgr};
use smgr_api::{
    BlockNumber, BlockSize, Error, ForkNumber, PageFormat, PageVerifier, RelFileLocator, Smgr,
    SmgrExt,
};
use smgr_cli::demo::demo_page;
use smgr_md::{MdOptions, MdSmgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const MAIN: ForkNumber = ForkNumber::Main;
const BLOCKS: BlockNumber = 512;
const FORMAT: PageFormat = PageFormat::Postgres { checksums: true };

struct Setup {
    _dir: tempfile::TempDir,
    faulty: Arc<FaultySmgr>,
    pool: BufferPool,
    rel: RelFileLocator,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let md = Arc::new(MdSmgr::open(dir.path(), MdOptions::new(BlockSize::DEFAULT, 128)).unwrap());
    let rel = RelFileLocator::in_database(5, 16400);
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    md.create(rel, MAIN).await.unwrap();
    let pages = (0..BLOCKS)
        .map(|b| demo_page(&verifier, BlockSize::DEFAULT, b))
        .collect();
    md.extend(rel, MAIN, 0, pages).await.unwrap();
    let faulty = Arc::new(FaultySmgr::new(md));
    let pool = BufferPool::new(faulty.clone(), PoolConfig::new(256, FORMAT)).unwrap();
    Setup {
        _dir: dir,
        faulty,
        pool,
        rel,
    }
}

/// Scans every block with a stream; returns the errors met (the stream
/// goes on after each) and the bytes checked against the expected pages.
async fn scan(s: &Setup) -> (Vec<bufmgr::Error>, u64) {
    scan_with(s, StreamFlags::default()).await
}

async fn scan_with(s: &Setup, flags: StreamFlags) -> (Vec<bufmgr::Error>, u64) {
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    let mut stream = ReadStream::range(
        &s.pool,
        s.rel,
        MAIN,
        StreamConfig::default(),
        flags,
        0..BLOCKS,
    );
    let mut errors = Vec::new();
    let mut checked = 0u64;
    let mut block = 0;
    loop {
        match stream.next_buffer().await {
            Ok(Some((buffer, ()))) => {
                let expected = demo_page(&verifier, BlockSize::DEFAULT, buffer.tag().block);
                assert_eq!(&*buffer.read().unwrap(), &*expected, "block {block}");
                checked += expected.len() as u64;
            }
            Ok(None) => break,
            Err(err) => errors.push(err),
        }
        block += 1;
    }
    (errors, checked)
}

fn report(fault: &str, injected: usize, outcome: &str, bytes: u64) {
    eprintln!("RELIABILITY | {fault} | {injected} | {outcome} | {bytes} |");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eio_on_read_is_an_error_then_the_same_reads_succeed() {
    let s = setup().await;
    s.faulty.inject(FaultOp::Read, Fault::Eio, 3);
    let (errors, _) = scan(&s).await;
    assert_eq!(s.faulty.faults_delivered(), 3);
    assert_eq!(errors.len(), 3, "one error per failed read: {errors:?}");
    for err in &errors {
        let text = err.to_string();
        assert!(text.contains("base/5/16400"), "{text}");
        match err {
            bufmgr::Error::Storage(Error::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(5), "{text}");
            }
            _ => panic!("unexpected error {err:?}"),
        }
    }
    let census = s.pool.census();
    assert!(census.is_quiet(), "{census:?}");
    let (again, checked) = scan(&s).await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(checked, u64::from(BLOCKS) * 8192);
    assert!(s.pool.census().is_quiet());
    report(
        "EIO on read",
        3,
        "3 block errors naming the file (the stream goes on); then all blocks correct",
        checked,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_reads_of_runs_are_read_again_block_by_block() {
    // Full streams read 16 blocks at a time from the start; one short read
    // per scan, so the blocks read again alone meet no further fault.
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let mut checked = 0;
    for _ in 0..3 {
        let s = setup().await;
        s.faulty.inject(FaultOp::Read, Fault::ShortRead, 1);
        let (errors, bytes) = scan_with(&s, flags).await;
        assert_eq!(s.faulty.faults_delivered(), 1);
        // A run cut short may just reach past the end: its blocks are read
        // again one by one, and here every one of them exists.
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(bytes, u64::from(BLOCKS) * 8192);
        let singles = s.faulty.reads().iter().filter(|r| r.count == 1).count();
        assert!(
            singles >= 16,
            "the run was not read again block by block: {:?}",
            s.faulty.reads()
        );
        assert!(s.pool.census().is_quiet(), "{:?}", s.pool.census());
        checked += bytes;
    }
    report(
        "short read of a combined run",
        3,
        "the run's blocks read again one by one: correct bytes, no error",
        checked,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_spikes_only_slow_reads_down() {
    let s = setup().await;
    s.faulty
        .inject(FaultOp::Read, Fault::Latency(Duration::from_millis(40)), 5);
    let (errors, checked) = scan(&s).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.faulty.faults_delivered(), 5);
    assert_eq!(checked, u64::from(BLOCKS) * 8192);
    assert!(s.pool.census().is_quiet());
    report("latency spike (40 ms) on read", 5, "correct bytes", checked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_back_keeps_pages_dirty_until_a_flush_succeeds() {
    let s = setup().await;
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    // Change 10 pages: each becomes the page of block b + 1000.
    for block in 0..10 {
        let buffer = s.pool.read_for_update(s.rel, MAIN, block).await.unwrap();
        let mut page = buffer.write().unwrap();
        page.copy_from_slice(&demo_page(&verifier, BlockSize::DEFAULT, block + 1000));
        page.mark_dirty();
    }
    s.faulty.inject(FaultOp::Write, Fault::Eio, 1);
    let err = s.pool.flush_relation(s.rel, MAIN).await.unwrap_err();
    assert!(err.to_string().contains("base/5/16400"), "{err}");
    let census = s.pool.census();
    assert_eq!(
        census.dirty, 10,
        "a failed write must leave its pages dirty: {census:?}"
    );
    assert!(census.is_quiet(), "{census:?}");
    s.pool.flush_relation(s.rel, MAIN).await.unwrap();
    assert_eq!(s.pool.census().dirty, 0);

    s.faulty.inject(FaultOp::Sync, Fault::Eio, 1);
    let err = s.faulty.immedsync(s.rel, MAIN).await.unwrap_err();
    assert!(err.to_string().contains("fsync"), "{err}");
    s.faulty.immedsync(s.rel, MAIN).await.unwrap();

    // A fresh pool reads what was written, from the files: the new
    // contents, with the checksum the pool set for each page's own block.
    let fresh = BufferPool::new(s.faulty.clone(), PoolConfig::new(64, FORMAT)).unwrap();
    let mut checked = 0;
    for block in 0..10 {
        let buffer = fresh
            .read_buffer(s.rel, MAIN, block, bufmgr::ReadBufferMode::Normal)
            .await
            .unwrap();
        let mut expected = demo_page(&verifier, BlockSize::DEFAULT, block + 1000);
        verifier.set_checksum(&mut expected, block);
        assert_eq!(&*buffer.read().unwrap(), &*expected, "block {block}");
        checked += 8192;
    }
    assert!(fresh.census().is_quiet());
    report(
        "EIO on write-back, then EIO on fsync",
        2,
        "flush and fsync errors naming the file; pages stay dirty; next flush writes them",
        checked,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_back_during_eviction_fails_the_read_and_keeps_the_page() {
    let s = setup().await;
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    // A pool of 16 frames, every one holding a changed (dirty) page, so a
    // read of any other block must write one back to get a frame.
    let pool = BufferPool::new(s.faulty.clone(), PoolConfig::new(16, FORMAT)).unwrap();
    let changed = |block| {
        let mut page = demo_page(&verifier, BlockSize::DEFAULT, block + 2000);
        verifier.set_checksum(&mut page, block);
        page
    };
    for block in 0..16 {
        let buffer = pool.read_for_update(s.rel, MAIN, block).await.unwrap();
        let mut page = buffer.write().unwrap();
        page.copy_from_slice(&demo_page(&verifier, BlockSize::DEFAULT, block + 2000));
        page.mark_dirty();
    }
    assert_eq!(pool.census().dirty, 16);

    s.faulty.inject(FaultOp::Write, Fault::Eio, 1);
    let err = pool
        .read_buffer(s.rel, MAIN, 100, bufmgr::ReadBufferMode::Normal)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("base/5/16400"), "{err}");
    assert!(err.contains("Input/output error"), "{err}");
    let census = pool.census();
    assert!(census.is_quiet(), "{census:?}");
    assert_eq!(
        census.dirty, 16,
        "the page that failed to write stays dirty"
    );

    // The fault is gone: the same read evicts (writing the victim back)
    // and returns block 100 as stored; the pages written back on the way
    // and by a final flush are the changed ones, on disk.
    let buffer = pool
        .read_buffer(s.rel, MAIN, 100, bufmgr::ReadBufferMode::Normal)
        .await
        .unwrap();
    assert_eq!(
        &*buffer.read().unwrap(),
        &*demo_page(&verifier, BlockSize::DEFAULT, 100)
    );
    drop(buffer);
    pool.flush_all().await.unwrap();
    assert!(pool.census().is_quiet());
    let mut checked = 8192u64;
    for block in 0..16 {
        let page = s.faulty.read_block(s.rel, MAIN, block).await.unwrap();
        assert_eq!(&*page, &*changed(block), "block {block} on disk");
        checked += 8192;
    }
    report(
        "EIO on the write-back of an eviction",
        1,
        "the read that needed the frame fails naming the file; the victim stays dirty; then the read succeeds and every changed page reaches the file",
        checked,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_space_on_extend_changes_nothing() {
    let s = setup().await;
    s.faulty.inject(FaultOp::Extend, Fault::NoSpace, 1);
    let err = s.pool.extend_by(s.rel, MAIN, 8).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains("base/5/16400"), "{text}");
    assert_eq!(s.faulty.nblocks(s.rel, MAIN).await.unwrap(), BLOCKS);
    assert!(s.pool.census().is_quiet(), "{:?}", s.pool.census());
    let added = s.pool.extend_by(s.rel, MAIN, 8).await.unwrap();
    assert_eq!(added.len(), 8);
    assert_eq!(added[0].tag().block, BLOCKS);
    drop(added);
    assert_eq!(s.faulty.nblocks(s.rel, MAIN).await.unwrap(), BLOCKS + 8);
    let (errors, checked) = scan(&s).await;
    assert!(errors.is_empty(), "{errors:?}");
    report(
        "ENOSPC on extend",
        1,
        "error naming the file; size unchanged; the retry extends",
        checked,
    );
}
