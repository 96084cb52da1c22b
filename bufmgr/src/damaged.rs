//! Zeroing pages whose stored bytes are damaged.
//!
//! A `readv` that fails because the stored data is damaged (a compressed
//! frame that does not decompress or fails its checksum) names no page:
//! the damage may hold some blocks of the run and not others. A read in
//! [`ReadBufferMode::ZeroOnError`] then reads the run again block by
//! block: a block that reads is verified as usual; one whose own read is
//! damaged becomes a page of zeros with a warning naming it, as
//! PostgreSQL's `zero_damaged_pages` does for a page that fails
//! verification. Only this error path pays for the extra reads.

use std::sync::Arc;

use smgr_api::{BlockNumber, PageBuf};

use crate::pool::PoolInner;
use crate::read::{buffers_not_returned, verify_page, IoGuard, ReadBufferMode};
use crate::stats::Counters;
use crate::{BufferTag, Result};

/// Finishes the read I/O of `guard`'s frames (blocks from `first` on)
/// after their `readv` failed with `err`, damaged data.
pub(crate) async fn zero_damaged_blocks(
    inner: Arc<PoolInner>,
    first: BufferTag,
    guard: IoGuard,
    err: smgr_api::Error,
) -> Result<()> {
    let frames = guard.frames.clone();
    let n = frames.len();
    let mut ok = vec![false; n];
    let mut first_error = None;
    tracing::debug!(page = %first, blocks = n, error = %err, "damaged run; reading its blocks one by one");
    // A run of one block needs no second read: its error is its own.
    let mut run_error = (n == 1).then_some(err);
    for (k, &frame) in frames.iter().enumerate() {
        let block = first.block + k as BlockNumber;
        let Some(page) = inner.relend(frame) else {
            first_error = Some(buffers_not_returned(&inner, first));
            break;
        };
        let result = match run_error.take() {
            Some(err) => Err((err, Some(page))),
            None => {
                Counters::add(&inner.stats.here().read_calls, 1);
                inner
                    .smgr
                    .readv(first.rel, first.fork, block, vec![page])
                    .await
                    .map_err(|err| (err, None))
            }
        };
        let outcome = match result {
            Ok(mut pages) => match pages.pop() {
                Some(page) if pages.is_empty() && is_frame(&inner, &page, frame) => {
                    let counters = inner.stats.here();
                    Counters::add(&counters.blocks_read, 1);
                    Counters::add(&counters.bytes_read, page.len() as u64);
                    verify_page(&inner, first, block, page, ReadBufferMode::ZeroOnError)
                }
                _ => Err(buffers_not_returned(&inner, first)),
            },
            Err((err, page)) if err.is_damaged_data() => {
                match page.or_else(|| inner.relend(frame)) {
                    Some(page) => {
                        zero(&inner, first, block, page, &err);
                        Ok(())
                    }
                    None => Err(buffers_not_returned(&inner, first)),
                }
            }
            Err((err, _)) => Err(err.into()),
        };
        match outcome {
            Ok(()) => ok[k] = true,
            Err(err) => {
                // Anything but damage (a failed or refused I/O) ends the
                // run: its other blocks stay not valid, for a later read.
                first_error = Some(err);
                break;
            }
        }
    }
    guard.finish(&ok);
    first_error.map_or(Ok(()), Err)
}

fn zero(
    inner: &PoolInner,
    first: BufferTag,
    block: BlockNumber,
    mut page: PageBuf,
    err: &smgr_api::Error,
) {
    let tag = BufferTag::new(first.rel, first.fork, block);
    tracing::warn!(page = %tag, error = %err, "page damaged in storage; zeroing it");
    page.fill(0);
    Counters::add(&inner.stats.here().pages_zeroed_on_error, 1);
}

fn is_frame(inner: &PoolInner, page: &PageBuf, frame: u32) -> bool {
    page.as_ptr() == inner.memory.frame_ptr(frame as usize).as_ptr().cast_const()
}
