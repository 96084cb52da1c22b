//! Reading every block of a set of forks and verifying each page.
//!
//! This is the whole-relation check an operator runs on a data directory
//! (what `pg_checksums --check` does), over any `Smgr`. Forks are cut into
//! chunks that run as concurrent tasks so that both reading and checksum
//! work spread over all cores; each chunk reads runs of `combine_blocks`
//! blocks with one `readv` each.

use std::sync::Arc;

use smgr_api::{
    BlockNumber, Error, ForkNumber, PageBuf, PageState, PageVerifier, PathNaming, RelFileLocator,
    Result, Smgr,
};
use tokio::task::JoinSet;

/// How to verify.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions {
    /// Blocks per `readv` (16 = 128 KiB at 8 KiB blocks).
    pub combine_blocks: usize,
    /// Blocks per task; forks larger than this are checked in parallel
    /// pieces.
    pub chunk_blocks: BlockNumber,
    /// Chunks checked at the same time.
    pub jobs: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            combine_blocks: 16,
            chunk_blocks: 4096,
            jobs: 4,
        }
    }
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Forks checked.
    pub forks: u64,
    /// Blocks read and verified.
    pub blocks: u64,
    /// Of those, all-zero (new) pages, which are valid but carry no
    /// checksum.
    pub new_pages: u64,
    /// Every page that failed, as `Error::CorruptPage`, in fork and block
    /// order.
    pub failures: Vec<Error>,
}

/// Reads every block of `forks` and verifies it with `verifier`. I/O errors
/// (a short read, a missing file) stop the check and are returned; pages
/// that fail verification are collected in the report.
pub async fn verify_forks(
    smgr: Arc<dyn Smgr>,
    naming: &PathNaming,
    forks: &[(RelFileLocator, ForkNumber)],
    verifier: PageVerifier,
    options: VerifyOptions,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut chunks = Vec::new();
    for &(rel, fork) in forks {
        let nblocks = smgr.nblocks(rel, fork).await?;
        report.forks += 1;
        let step = options.chunk_blocks.max(1);
        let mut first = 0;
        while first < nblocks {
            let end = first.saturating_add(step).min(nblocks);
            chunks.push((rel, fork, first, end));
            first = end;
        }
    }
    let mut results = Vec::with_capacity(chunks.len());
    let mut tasks = JoinSet::new();
    let mut pending = chunks.into_iter().enumerate();
    loop {
        while tasks.len() < options.jobs.max(1) {
            let Some((index, (rel, fork, first, end))) = pending.next() else {
                break;
            };
            let smgr = smgr.clone();
            let path = naming.relpath(rel, fork)?;
            tasks.spawn(async move {
                let chunk = verify_chunk(
                    &*smgr,
                    path,
                    rel,
                    fork,
                    first,
                    end,
                    verifier,
                    options.combine_blocks,
                )
                .await;
                (index, chunk)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, chunk) =
            joined.map_err(|err| Error::io("verify", "task", std::io::Error::other(err)))?;
        results.push((index, chunk?));
    }
    results.sort_by_key(|(index, _)| *index);
    for (_, chunk) in results {
        report.blocks += chunk.blocks;
        report.new_pages += chunk.new_pages;
        report.failures.extend(chunk.failures);
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn verify_chunk(
    smgr: &dyn Smgr,
    path: String,
    rel: RelFileLocator,
    fork: ForkNumber,
    first: BlockNumber,
    end: BlockNumber,
    verifier: PageVerifier,
    combine: usize,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let bs = smgr.block_size();
    let mut bufs = PageBuf::zeroed_blocks(bs, combine.max(1));
    let mut block = first;
    while block < end {
        let n = ((end - block) as usize).min(combine.max(1));
        bufs.truncate(n);
        bufs = smgr.readv(rel, fork, block, bufs).await?;
        for (i, page) in bufs.iter().enumerate() {
            let blkno = block + i as BlockNumber;
            match verifier.verify(page, blkno) {
                Ok(PageState::Valid) => {}
                Ok(PageState::New) => report.new_pages += 1,
                Err(detail) => report.failures.push(Error::CorruptPage {
                    path: path.clone(),
                    block: blkno,
                    detail,
                }),
            }
        }
        report.blocks += n as u64;
        block += n as BlockNumber;
        while bufs.len() < combine.max(1) {
            bufs.push(PageBuf::zeroed_block(bs));
        }
    }
    Ok(report)
}
