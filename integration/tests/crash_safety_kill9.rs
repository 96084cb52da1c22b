//! Crash safety of writes through the buffer pool on `smgr-md`: a child
//! process extends a relation through the pool, flushes, `immedsync`s and
//! only then records in a journal (itself synced) how many blocks are
//! durable; it is killed with SIGKILL at a random moment, many times.
//!
//! After every kill, every block the journal calls durable is intact (its
//! exact bytes, valid PostgreSQL checksum for its block number), the
//! relation's files have whole blocks up to the durable ones (a kill during
//! a write that grows a file may leave part of a block past them, as with
//! PostgreSQL), and the relation is at least as
//! long as the journal says. The next child starts as recovery would: it
//! truncates the relation back to its durable length (blocks past it may
//! have been torn by the kill) and goes on writing.
//!
//! The same test binary is the child: run with `SMGR_CRASH_CHILD_DIR` set,
//! the test body writes forever instead of checking.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bufmgr::{BufferPool, PoolConfig};
use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageFormat, PageVerifier, RelFileLocator, Smgr,
};
use smgr_cli::demo::demo_page;
use smgr_md::{MdOptions, MdSmgr};

const CHILD_ENV: &str = "SMGR_CRASH_CHILD_DIR";
const TEST_NAME: &str = "synced_blocks_survive_sigkill";
const MAIN: ForkNumber = ForkNumber::Main;
const FORMAT: PageFormat = PageFormat::Postgres { checksums: true };
/// Small segments, so relations cross segment files within a run.
const SEGMENT_BLOCKS: BlockNumber = 64;

fn rel() -> RelFileLocator {
    RelFileLocator::in_database(5, 16700)
}

fn options() -> MdOptions {
    MdOptions::new(BlockSize::DEFAULT, SEGMENT_BLOCKS)
}

/// The durable block count: the last complete line of the journal.
fn durable(dir: &Path) -> BlockNumber {
    let text = std::fs::read_to_string(dir.join("journal")).unwrap_or_default();
    text.split_inclusive('\n')
        .rev()
        .filter(|line| line.ends_with('\n'))
        .find_map(|line| line.trim().parse().ok())
        .unwrap_or(0)
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The child: write, flush, sync, journal; forever (until killed).
async fn child(dir: &Path) {
    let smgr = Arc::new(MdSmgr::open(dir, options()).unwrap());
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    let rel = rel();
    if !smgr.exists(rel, MAIN).await.unwrap() {
        smgr.create(rel, MAIN).await.unwrap();
    }
    // Recovery: forget what was never made durable.
    let mut durable_blocks = durable(dir);
    smgr.truncate(rel, MAIN, durable_blocks).await.unwrap();
    smgr.immedsync(rel, MAIN).await.unwrap();
    let pool = BufferPool::new(smgr.clone(), PoolConfig::new(128, FORMAT)).unwrap();
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("journal"))
        .unwrap();
    let mut seed = u64::from(std::process::id()) | 1;
    loop {
        let count = (xorshift(&mut seed) % 12 + 1) as BlockNumber;
        let buffers = pool.extend_by(rel, MAIN, count).await.unwrap();
        for buffer in &buffers {
            let mut page = buffer.write().unwrap();
            page.copy_from_slice(&demo_page(
                &verifier,
                BlockSize::DEFAULT,
                buffer.tag().block,
            ));
            page.mark_dirty();
        }
        let end = buffers.last().map_or(durable_blocks, |b| b.tag().block + 1);
        drop(buffers);
        pool.flush_relation(rel, MAIN).await.unwrap();
        smgr.immedsync(rel, MAIN).await.unwrap();
        durable_blocks = end;
        writeln!(journal, "{durable_blocks}").unwrap();
        journal.sync_data().unwrap();
    }
}

#[test]
fn synced_blocks_survive_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(child(Path::new(&dir)));
        return;
    }
    let runs: usize = std::env::var("SMGR_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let dir = tempfile::tempdir().unwrap();
    let verifier = PageVerifier::new(FORMAT, BlockSize::DEFAULT);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut blocks_checked = 0u64;
    let mut last_durable = 0;
    let mut torn_tails = 0;
    for run in 0..runs {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pause = Duration::from_millis(30 + xorshift(&mut seed) % 250);
        runtime.block_on(async { tokio::time::sleep(pause).await });
        assert!(
            child.try_wait().unwrap().is_none(),
            "run {run}: the child exited by itself (it should write until killed)"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let durable_blocks = durable(dir.path());
        assert!(
            durable_blocks >= last_durable,
            "run {run}: the journal went back"
        );
        last_durable = durable_blocks;
        // Whole blocks in every segment file, but for a torn extension: the
        // kernel stops a write between pages when SIGKILL arrives, so a
        // kill while a write grows the file can leave part of a block at
        // its end. That can only be past the durable blocks (they were
        // whole before their sync); md.c ignores such a tail, and recovery
        // truncates it away.
        for entry in std::fs::read_dir(dir.path().join("base/5")).unwrap() {
            let entry = entry.unwrap();
            let len = entry.metadata().unwrap().len();
            if len % 8192 != 0 {
                let name = entry.file_name().into_string().unwrap();
                let segno: BlockNumber =
                    name.split_once('.').map_or(0, |(_, n)| n.parse().unwrap());
                let whole_end = segno * SEGMENT_BLOCKS + (len / 8192) as BlockNumber;
                assert!(
                    whole_end >= durable_blocks,
                    "run {run}: {name} is {len} bytes: a partial block inside the durable ones ({durable_blocks})"
                );
                torn_tails += 1;
            }
        }
        runtime.block_on(async {
            let smgr = MdSmgr::open(dir.path(), options().read_only()).unwrap();
            let nblocks = smgr.nblocks(rel(), MAIN).await.unwrap();
            assert!(
                nblocks >= durable_blocks,
                "run {run}: {nblocks} blocks but {durable_blocks} were durable"
            );
            let mut block = 0;
            while block < durable_blocks {
                let n = (durable_blocks - block).min(32);
                let pages = smgr
                    .readv(
                        rel(),
                        MAIN,
                        block,
                        smgr_api::PageBuf::zeroed_blocks(BlockSize::DEFAULT, n as usize),
                    )
                    .await
                    .unwrap();
                for (i, page) in pages.iter().enumerate() {
                    let b = block + i as BlockNumber;
                    verifier
                        .verify(page, b)
                        .unwrap_or_else(|e| panic!("run {run}: durable block {b}: {e}"));
                    assert_eq!(
                        &**page,
                        &*demo_page(&verifier, BlockSize::DEFAULT, b),
                        "run {run}: block {b}"
                    );
                }
                block += n;
            }
        });
        blocks_checked += u64::from(durable_blocks);
    }
    assert!(last_durable > 0, "no child ever made a block durable");
    eprintln!(
        "RELIABILITY | SIGKILL of a process writing through the pool | {runs} | every durable block intact and checksum-valid, whole blocks up to the durable ones ({torn_tails} runs left a torn tail past them), size >= durable ({last_durable} blocks at the end) | {} |",
        blocks_checked * 8192
    );
}
