//! A stream's long reads of cached pages get tasks of their own only while
//! the runtime has a worker to spare: on a current-thread runtime, or when
//! another stream is reading too on two workers, they run in place, in the
//! consumer's task (a task there only moves the copy to another core's
//! caches, or to the same core later).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::sync::Arc;

use smgr_api::testkit::FaultySmgr;
use smgr_api::RelFileLocator;
use streamread::{ReadStream, StreamConfig, StreamFlags};
use tokio::runtime::{Builder, Runtime};

use common::*;

const BLOCKS: u32 = 512;

fn stream(pool: &bufmgr::BufferPool, rel: RelFileLocator) -> ReadStream<()> {
    let config = StreamConfig::default().max_ios(4);
    ReadStream::range(pool, rel, MAIN, config, StreamFlags::default(), 0..BLOCKS)
}

/// Drains a stream of `rel` in `runtime.block_on` (outside any task), with
/// `others` more streams open meanwhile, and returns how many of its long
/// reads (over two blocks) ran in place and how many in tasks.
fn long_reads(
    runtime: &Runtime,
    smgr: &Arc<FaultySmgr>,
    rel: RelFileLocator,
    others: usize,
) -> (usize, usize) {
    smgr.clear_reads();
    runtime.block_on(async {
        let pool = pool(smgr.clone(), 64);
        let _others: Vec<_> = (0..others).map(|_| stream(&pool, rel)).collect();
        assert_eq!(
            drain(&mut stream(&pool, rel), 1).await,
            (0..BLOCKS).collect::<Vec<_>>()
        );
    });
    let calls = smgr.reads().into_iter().zip(smgr.read_tasks());
    let (mut in_place, mut in_tasks) = (0, 0);
    for (_, task) in calls.filter(|(call, _)| call.count > 2) {
        match task {
            None => in_place += 1,
            Some(_) => in_tasks += 1,
        }
    }
    (in_place, in_tasks)
}

#[test]
fn long_reads_get_tasks_only_with_a_worker_to_spare() {
    let dir = tempfile::tempdir().unwrap();
    let two_workers = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (smgr, rel) = two_workers.block_on(relation(dir.path(), BLOCKS, 1));
    let runs = (BLOCKS / 16) as usize;

    // Alone on two workers: its long runs become tasks.
    let (_, in_tasks) = long_reads(&two_workers, &smgr, rel, 0);
    assert!(in_tasks > 0, "a lone stream on two workers used no tasks");

    // Another stream open on two workers: every long read in place.
    let (in_place, in_tasks) = long_reads(&two_workers, &smgr, rel, 1);
    assert_eq!(in_tasks, 0, "tasks while two streams read on two workers");
    assert!(in_place >= runs - 1, "{in_place} of about {runs} runs");

    // One worker: nothing to spare.
    let current = Builder::new_current_thread().enable_all().build().unwrap();
    let (in_place, in_tasks) = long_reads(&current, &smgr, rel, 0);
    assert_eq!(in_tasks, 0, "tasks on a current-thread runtime");
    assert!(in_place >= runs - 1, "{in_place} of about {runs} runs");
}
