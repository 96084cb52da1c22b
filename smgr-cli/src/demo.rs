//! `smgr demo`: the library doing real work with nothing but a temporary
//! directory. It writes a relation of checksummed PostgreSQL-format pages
//! in a data-directory layout, scans it through the buffer pool with a read
//! stream and with the one-block loop, verifies it as `smgr verify` does,
//! then flips one byte on disk and shows the page being caught.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bufmgr::{BufferPool, PoolConfig};
use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, PathNaming,
    RelFileLocator, Smgr,
};
use smgr_md::{MdOptions, MdSmgr};
use streamread::StreamConfig;

use crate::location::{Location, LocationOptions};
use crate::scan::{scan_one_block, scan_stream, table, ScanReport};
use crate::verify::{verify_location, VerifyOptions, VerifyReport};

/// Frames of the demo's buffer pool: 16 MiB, much smaller than the
/// relation, so every scan reads from storage.
const POOL_FRAMES: usize = 2048;

/// A PostgreSQL-format page for block `blkno` with a sane header, some
/// line pointers and varying tuple bytes, checksummed for `blkno`.
pub fn demo_page(verifier: &PageVerifier, bs: BlockSize, blkno: BlockNumber) -> PageBuf {
    let mut page = PageBuf::zeroed_block(bs);
    let size = bs.bytes();
    let lower: u16 = 24 + 4 * 40;
    let upper: u16 = lower + 64;
    page[0..8].copy_from_slice(&(0x0100_0000u64 + u64::from(blkno)).to_le_bytes());
    page[12..14].copy_from_slice(&lower.to_le_bytes());
    page[14..16].copy_from_slice(&upper.to_le_bytes());
    page[16..18].copy_from_slice(&(size as u16).to_le_bytes());
    page[18..20].copy_from_slice(&((size as u16) | 4).to_le_bytes());
    for (i, b) in page[usize::from(upper)..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(blkno) as u8;
    }
    verifier.set_checksum(&mut page, blkno);
    page
}

/// Writes `rel`'s main fork afresh (unlinking an old one) as `blocks`
/// checksummed PostgreSQL-format pages ([`demo_page`]), `batch` blocks per
/// `extend` (a segment at a time suits the object backend, which rewrites
/// a whole segment object per call).
pub async fn write_demo_relation(
    smgr: &dyn Smgr,
    rel: RelFileLocator,
    blocks: BlockNumber,
    batch: BlockNumber,
) -> smgr_api::Result<()> {
    let bs = smgr.block_size();
    let verifier = PageVerifier::new(PageFormat::Postgres { checksums: true }, bs);
    let main = ForkNumber::Main;
    if smgr.exists(rel, main).await? {
        smgr.unlink(rel, main).await?;
    }
    smgr.create(rel, main).await?;
    let mut next = 0;
    while next < blocks {
        let n = (blocks - next).min(batch.max(1));
        let pages = (next..next + n)
            .map(|blkno| demo_page(&verifier, bs, blkno))
            .collect();
        smgr.extend(rel, main, next, pages).await?;
        next += n;
    }
    Ok(())
}

/// Runs the demo in `dir` with a relation of `blocks` blocks split into
/// segment files of `segment_blocks`, and returns what it did as text.
pub async fn run_demo(
    dir: &Path,
    blocks: BlockNumber,
    segment_blocks: BlockNumber,
) -> bufmgr::Result<String> {
    let mut out = String::new();
    let bs = BlockSize::DEFAULT;
    let format = PageFormat::Postgres { checksums: true };
    let smgr = Arc::new(MdSmgr::open(dir, MdOptions::new(bs, segment_blocks))?);
    let rel = RelFileLocator::in_database(5, 16396);
    let main = ForkNumber::Main;
    let _ = writeln!(out, "data directory: {}", dir.display());

    let started = Instant::now();
    write_demo_relation(smgr.as_ref(), rel, blocks, 32).await?;
    smgr.immedsync(rel, main).await?;
    let _ = writeln!(
        out,
        "wrote {blocks} checksummed pages ({:.0} MiB) to {} in {} segment file(s), synced, in {:.2} s",
        f64::from(blocks) * bs.bytes() as f64 / (1 << 20) as f64,
        PathNaming::default().relpath(rel, main)?,
        blocks.div_ceil(segment_blocks),
        started.elapsed().as_secs_f64()
    );

    let smgr: Arc<dyn Smgr> = smgr;
    let fresh_pool = || BufferPool::new(smgr.clone(), PoolConfig::new(POOL_FRAMES, format));
    let streamed = scan_stream(&fresh_pool()?, rel, main, blocks, StreamConfig::default()).await?;
    let one_block = scan_one_block(&fresh_pool()?, rel, main, blocks).await?;

    let location = Location::Local(dir.to_path_buf());
    let options = LocationOptions {
        segment_blocks,
        ..LocationOptions::default()
    };
    let verified = verify_location(
        &location,
        &options,
        VerifyOptions::local(),
        Default::default(),
    )
    .await?;
    let mut rows = vec![streamed, one_block, verified_row(&verified)];
    rows[2].method = format!("verify ({} streams)", VerifyOptions::local().jobs);
    let _ = writeln!(
        out,
        "\nread through a {} MiB buffer pool (page cache warm):\n{}",
        (POOL_FRAMES * bs.bytes()) >> 20,
        table(&rows)
    );
    let _ = writeln!(
        out,
        "stream vs one block at a time: {:.1}x the speed, {:.0}x fewer read calls",
        rows[1].seconds / rows[0].seconds.max(1e-9),
        rows[1].reads as f64 / rows[0].reads.max(1) as f64
    );
    let _ = writeln!(
        out,
        "verified {} pages: {} bad",
        verified.blocks,
        verified.bad_blocks.len()
    );

    // Flip one byte of the last block on disk and verify again.
    let victim = blocks - 1;
    let relative = PathNaming::default().segment_path(rel, main, victim / segment_blocks)?;
    let path = dir.join(&relative);
    let mut bytes = std::fs::read(&path).map_err(|e| smgr_api::Error::io("read", &relative, e))?;
    let at = (victim % segment_blocks) as usize * bs.bytes() + 1000;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).map_err(|e| smgr_api::Error::io("write", &relative, e))?;
    let again = verify_location(
        &location,
        &options,
        VerifyOptions::local(),
        Default::default(),
    )
    .await?;
    let _ = writeln!(
        out,
        "after flipping one byte of block {victim} on disk: {} bad (exit status {})",
        again.bad_blocks.len(),
        again.exit_code()
    );
    for bad in &again.bad_blocks {
        let _ = writeln!(
            out,
            "  {} block {} (block {} of the fork): {}",
            bad.file, bad.block_in_file, bad.block, bad.detail
        );
    }
    Ok(out)
}

fn verified_row(report: &VerifyReport) -> ScanReport {
    ScanReport {
        method: "verify".to_owned(),
        blocks: report.blocks,
        bytes: report.bytes,
        seconds: report.seconds,
        hits: report.hits,
        reads: report.reads,
        blocks_read: report.blocks_read,
        wait_seconds: 0.0,
    }
}
