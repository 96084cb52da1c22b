//! `smgr bench`'s rows for one buffer pool shared by every core: hits from
//! two tasks against one, optimistic reads of the same pages, two streams
//! sharing a pool against two raw readers, and a prewarm against a raw
//! read (all on the generated relation, page cache warm). The same on the
//! real cluster, with medians: `cargo bench -p streamread --bench
//! shared_pool`.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Instant;

use bufmgr::{BufferPool, ReadBufferMode};
use smgr_api::{BlockNumber, ForkNumber, RelFileLocator};
use streamread::{ReadStream, StreamConfig, StreamFlags};

use crate::bench::Row;

/// Hits per task in the hit rows.
const HITS: u64 = 2_000_000;

/// The shared-pool rows; `pool(frames)` builds a pool over the relation's
/// storage manager, `files` are its segment files in order.
pub(crate) async fn shared_pool_rows(
    pool: impl Fn(usize) -> bufmgr::Result<BufferPool>,
    rel: RelFileLocator,
    blocks: BlockNumber,
    files: &[PathBuf],
) -> bufmgr::Result<Vec<Row>> {
    let main = ForkNumber::Main;
    let mut rows = Vec::new();

    // 64 hot pages: one task, then two tasks on other pages; the same with
    // optimistic reads of the same pages.
    let hot = pool(1024)?;
    for block in 0..64 {
        hot.read_buffer(rel, main, block, ReadBufferMode::Normal)
            .await?;
    }
    let one = hits(&hot, rel, &[(1, 0, 2 * HITS)], false).await?;
    let two = hits(&hot, rel, &[(2, 0, HITS), (2, 1, HITS)], false).await?;
    rows.push(Row {
        what: "hits, 2 tasks, other pages",
        baseline: "hits, 1 task (64 pages)",
        baseline_s: one,
        ours_s: two,
        target: ">=1.8",
    });
    let one = hits(&hot, rel, &[(1, 0, 2 * HITS)], true).await?;
    let two = hits(&hot, rel, &[(1, 0, HITS), (1, 0, HITS)], true).await?;
    rows.push(Row {
        what: "read_with, 2 tasks, same pages",
        baseline: "read_with, 1 task",
        baseline_s: one,
        ours_s: two,
        target: ">=1.5",
    });

    // Two streams (bulk-read rings) over the two halves, one pool, against
    // two threads reading the halves raw.
    // Best of three each: the runs are short.
    let half = blocks / 2;
    let shared = pool(32768)?;
    let (mut streams, mut raw) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let started = Instant::now();
        let a = tokio::spawn(scan(shared.clone(), rel, 0..half));
        let b = tokio::spawn(scan(shared.clone(), rel, half..blocks));
        for task in [a, b] {
            task.await.map_err(|err| io_error("stream task", err))??;
        }
        streams = streams.min(started.elapsed().as_secs_f64());
        raw = raw.min(raw_halves(files, u64::from(half) * 8192)?);
    }
    rows.push(Row {
        what: "2 streams, one shared pool",
        baseline: "2 raw 128 KiB readers",
        baseline_s: raw,
        ours_s: streams,
        target: ">=0.7",
    });

    // A prewarm into a pool that holds the relation, from a task, against
    // one raw reader. (Building the pool is not compared here: on these
    // virtual machines its time is mostly the host backing memory the
    // guest touches for the first time, BENCHMARKS.md.)
    let big = pool(blocks as usize + 64)?;
    let started = Instant::now();
    let task = tokio::spawn({
        let big = big.clone();
        async move { streamread::prewarm(&big, rel, main, 0, blocks - 1).await }
    });
    task.await.map_err(|err| io_error("prewarm task", err))??;
    let prewarm = started.elapsed().as_secs_f64();
    let raw = raw_halves(files, u64::MAX)?;
    rows.push(Row {
        what: "prewarm into a pool that holds it",
        baseline: "raw 128 KiB reader",
        baseline_s: raw,
        ours_s: prewarm,
        target: ">=1.0",
    });
    Ok(rows)
}

/// Seconds for tasks `(stride, offset, n)`, each reading `n` hits of
/// blocks `(i * stride + offset) % 64`, all at once.
async fn hits(
    pool: &BufferPool,
    rel: RelFileLocator,
    tasks: &[(u32, u32, u64)],
    optimistic: bool,
) -> bufmgr::Result<f64> {
    let started = Instant::now();
    let handles: Vec<_> = tasks
        .iter()
        .map(|&(stride, offset, n)| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut sum = 0u64;
                for i in 0..n {
                    let block = (i as u32).wrapping_mul(stride).wrapping_add(offset) % 64;
                    sum += u64::from(if optimistic {
                        pool.read_with(rel, ForkNumber::Main, block, ReadBufferMode::Normal, |p| {
                            p.u8_at(100).unwrap_or(0)
                        })
                        .await?
                    } else {
                        let buffer = pool
                            .read_buffer(rel, ForkNumber::Main, block, ReadBufferMode::Normal)
                            .await?;
                        let byte = buffer.read()?[100];
                        byte
                    });
                }
                Ok::<u64, bufmgr::Error>(sum)
            })
        })
        .collect();
    for handle in handles {
        std::hint::black_box(handle.await.map_err(|err| io_error("hit task", err))??);
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn scan(
    pool: BufferPool,
    rel: RelFileLocator,
    blocks: std::ops::Range<u32>,
) -> bufmgr::Result<()> {
    let flags = StreamFlags {
        full: true,
        sequential: true,
        ..StreamFlags::default()
    };
    let mut stream = ReadStream::range(
        &pool,
        rel,
        ForkNumber::Main,
        StreamConfig::default(),
        flags,
        blocks,
    )
    .with_bulk_read_ring();
    while let Some((buffer, ())) = stream.next_buffer().await? {
        std::hint::black_box(buffer.read()?[0]);
    }
    Ok(())
}

/// Seconds to read the relation's bytes `0..split` and `split..` with one
/// thread each (`split` past the end: one thread reads it all), 128 KiB at
/// a time.
fn raw_halves(files: &[PathBuf], split: u64) -> bufmgr::Result<f64> {
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| f.metadata().map(|m| m.len()))
        .collect::<Result<_, _>>()
        .map_err(|err| io_error("stat", err))?;
    let total: u64 = sizes.iter().sum();
    let read = |range: std::ops::Range<u64>| -> std::io::Result<()> {
        let mut buf = vec![0u8; 128 << 10];
        let mut start = 0u64;
        for (path, &size) in files.iter().zip(&sizes) {
            let (from, to) = (range.start.max(start), range.end.min(start + size));
            if from < to {
                let file = std::fs::File::open(path)?;
                let mut at = from - start;
                while at < to - start {
                    let want = (buf.len() as u64).min(to - start - at) as usize;
                    let n = file.read_at(&mut buf[..want], at)?;
                    if n == 0 {
                        break;
                    }
                    at += n as u64;
                }
            }
            start += size;
        }
        Ok(())
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        let second = (split < total).then(|| scope.spawn(|| read(split..total)));
        let first = read(0..split.min(total));
        let second = second.map_or(Ok(()), |h| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("reader panicked")))
        });
        first.and(second)
    })
    .map_err(|err| io_error("read", err))?;
    Ok(started.elapsed().as_secs_f64())
}

fn io_error(what: &'static str, err: impl std::fmt::Display) -> bufmgr::Error {
    bufmgr::Error::Storage(smgr_api::Error::io(
        what,
        "(bench)",
        std::io::Error::other(err.to_string()),
    ))
}
