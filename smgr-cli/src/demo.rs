//! The demo: write a relation through the local backend, read it back with
//! every page verified, then show that a flipped byte on disk is caught.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use smgr_api::{
    BlockNumber, BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Result,
    Smgr,
};
use smgr_md::{MdOptions, MdSmgr};

use crate::verify::{verify_forks, VerifyOptions};

/// Runs the demo in `dir` with a relation of `blocks` blocks split into
/// segments of `segment_blocks`, and returns what it did as text.
pub async fn run_demo(
    dir: &Path,
    blocks: BlockNumber,
    segment_blocks: BlockNumber,
) -> Result<String> {
    let mut out = String::new();
    let bs = BlockSize::DEFAULT;
    let smgr = Arc::new(MdSmgr::open(dir, MdOptions::new(bs, segment_blocks))?);
    let verifier = PageVerifier::new(PageFormat::Native, bs);
    let rel = RelFileLocator::in_database(5, 16396);
    let main = ForkNumber::Main;
    let _ = writeln!(out, "storage root: {}", dir.display());

    let started = Instant::now();
    if smgr.exists(rel, main).await? {
        smgr.unlink(rel, main).await?;
    }
    smgr.create(rel, main).await?;
    let mut next = 0;
    while next < blocks {
        let n = (blocks - next).min(16);
        let bufs = (next..next + n)
            .map(|blkno| {
                let mut page = PageBuf::zeroed_block(bs);
                page[8..16].copy_from_slice(&u64::from(blkno).to_le_bytes());
                page[16..]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = (i as u32 ^ blkno) as u8);
                verifier.set_checksum(&mut page, blkno);
                page
            })
            .collect();
        smgr.extend(rel, main, next, bufs).await?;
        next += n;
    }
    smgr.immedsync(rel, main).await?;
    let wrote = started.elapsed();
    let segments = blocks.div_ceil(segment_blocks);
    let _ = writeln!(
        out,
        "wrote {blocks} blocks of {bs} to {rel} in {segments} segment file(s), synced, in {:.3} s",
        wrote.as_secs_f64()
    );

    let started = Instant::now();
    let report = verify_forks(
        smgr.clone(),
        &smgr.options().naming,
        &[(rel, main)],
        verifier,
        VerifyOptions::default(),
    )
    .await?;
    let read = started.elapsed();
    let mib = blocks as f64 * bs.get() as f64 / (1024.0 * 1024.0);
    let _ = writeln!(
        out,
        "read and verified {} blocks in {:.3} s ({:.0} MiB/s): {} bad",
        report.blocks,
        read.as_secs_f64(),
        mib / read.as_secs_f64().max(1e-9),
        report.failures.len()
    );

    // Flip one byte of the last block on disk and check again.
    let victim = blocks - 1;
    let path = smgr.segment_path(rel, main, victim / segment_blocks)?;
    let mut bytes = std::fs::read(&path)
        .map_err(|e| smgr_api::Error::io("read", path.display().to_string(), e))?;
    let at = (victim % segment_blocks) as usize * bs.bytes() + 1000;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes)
        .map_err(|e| smgr_api::Error::io("write", path.display().to_string(), e))?;
    let report = verify_forks(
        smgr.clone(),
        &smgr.options().naming,
        &[(rel, main)],
        verifier,
        VerifyOptions::default(),
    )
    .await?;
    let _ = writeln!(
        out,
        "after flipping one byte of block {victim} on disk: {} bad",
        report.failures.len()
    );
    for failure in &report.failures {
        let _ = writeln!(out, "  {failure}");
    }
    Ok(out)
}
