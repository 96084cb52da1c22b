//! `prewarm`: the first user of streams, as PostgreSQL's `pg_prewarm`.

use bufmgr::BufferPool;
use smgr_api::{BlockNumber, ForkNumber, RelFileLocator};

use crate::{Error, ReadStream, StreamConfig, StreamFlags};

/// Reads blocks `first ..= last` of a fork into the pool through a stream
/// and returns how many blocks it read (`pg_prewarm` in `buffer` mode).
/// The buffers are released as they arrive; the pages stay in the pool as
/// long as it has room for them.
///
/// # Errors
///
/// The first error of any block (a failed read, a page failing
/// verification), after which prewarming stops.
pub async fn prewarm(
    pool: &BufferPool,
    rel: RelFileLocator,
    fork: ForkNumber,
    first: BlockNumber,
    last: BlockNumber,
) -> Result<u64, Error> {
    if first > last {
        return Ok(0);
    }
    let flags = StreamFlags {
        full: true,
        ..StreamFlags::default()
    };
    let blocks = first..=last;
    let mut stream =
        ReadStream::from_blocks(pool, rel, fork, StreamConfig::default(), flags, blocks);
    let mut count = 0;
    while let Some((buffer, ())) = stream.next_buffer().await? {
        drop(buffer);
        count += 1;
    }
    Ok(count)
}
