//! `next_buffer()` is cancel safe: a call dropped after any number of polls
//! (a caller's deadline, a `select!` that took another branch) loses no
//! block, no per-buffer data and no pin, and the next call goes on where it
//! left off. Reads are slow (injected latency, also on `prefetch`), so the
//! calls are dropped at every kind of suspension point: waiting for a run,
//! issuing advice, pinning, a synchronous read.
//!
//! A hang here used to spin a core inside one poll, where no timeout on the
//! same task can fire; each case therefore runs on its own thread and the
//! test fails if it does not finish in time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use common::*;
use smgr_api::testkit::{Fault, FaultOp};
use streamread::{ReadStream, StreamConfig, StreamFlags};

/// Polls `future` at most `polls` times; drops it (cancels it) at the next
/// wake-up if it has not finished by then.
async fn poll_at_most<F: Future>(future: F, polls: usize) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut done = 0;
    poll_fn(|cx| {
        if done == polls {
            return Poll::Ready(None);
        }
        done += 1;
        future.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Runs `case` on a thread of its own with a two-worker runtime; fails if
/// it does not finish within `limit` (a spinning call never yields, so a
/// timeout on its own task could not catch it).
fn run_with_deadline(
    name: String,
    limit: Duration,
    case: impl Future<Output = ()> + Send + 'static,
) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(case);
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: no answer within {limit:?} (hung)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name}: failed (see its panic above)"),
    }
}

/// The blocks read: three out of four, so runs are short and not
/// sequential (advice goes out), in 64-block segments' worth of blocks.
fn blocks() -> Vec<u32> {
    (0..160).filter(|b| b % 4 != 1).collect()
}

/// One case: a stream over `blocks()` whose every call is dropped after
/// `polls` polls until one gets through; per-buffer data is the block
/// number, so a lost or duplicated block shows.
async fn case(max_ios: usize, polls: usize, object_like: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (smgr, rel) = relation(dir.path(), 160, 21).await;
    smgr.inject(
        FaultOp::Read,
        Fault::Latency(Duration::from_micros(700)),
        100_000,
    );
    smgr.inject(
        FaultOp::Prefetch,
        Fault::Latency(Duration::from_micros(300)),
        100_000,
    );
    if object_like {
        // No kernel read-ahead: sequential runs are advised too, and the
        // look-ahead starts at the whole pin budget.
        smgr.set_reads_ahead_sequentially(Some(false));
    }
    let pool = pool(smgr.clone(), 256);
    let wanted = blocks();
    let mut source = wanted.clone().into_iter();
    let config = StreamConfig::default()
        .max_ios(max_ios)
        .io_combine_bytes(4 * BS);
    let mut stream = ReadStream::new(
        &pool,
        rel,
        MAIN,
        config,
        StreamFlags::default(),
        move |data: &mut u32| {
            let block = source.next()?;
            *data = block;
            Some(block)
        },
    );
    let mut seen = Vec::new();
    let mut cancels = 0;
    loop {
        match poll_at_most(stream.next_buffer(), polls).await {
            None => cancels += 1,
            Some(Ok(Some((buffer, data)))) => {
                let block = buffer.tag().block;
                assert_eq!(data, block, "per-buffer data of block {block}");
                assert_eq!(
                    *buffer.read().unwrap(),
                    page(21, block)[..],
                    "block {block}"
                );
                seen.push(block);
            }
            Some(Ok(None)) => break,
            Some(Err(err)) => panic!("after {} blocks: {err}", seen.len()),
        }
    }
    assert_eq!(seen, wanted, "max_ios {max_ios}, {polls} polls");
    drop(stream);
    // Reads the dropped calls left behind finish in the pool.
    assert_quiet_soon(&pool).await;
    cancels
}

#[test]
fn every_block_after_calls_dropped_at_each_poll() {
    for object_like in [false, true] {
        for max_ios in [0, 1, 4] {
            let mut cancels = 0;
            for polls in 1..=6 {
                let name = format!("max_ios {max_ios}, object-like {object_like}, {polls} polls");
                let (tx, rx) = mpsc::channel();
                run_with_deadline(name, Duration::from_secs(60), async move {
                    let _ = tx.send(case(max_ios, polls, object_like).await);
                });
                cancels += rx.recv().unwrap();
            }
            // The cases really dropped calls mid-read.
            eprintln!("max_ios {max_ios}, object-like {object_like}: {cancels} calls dropped");
            assert!(
                cancels > 20,
                "max_ios {max_ios}: only {cancels} calls dropped"
            );
        }
    }
}

/// The defect as a user met it: a deadline on `next_buffer()` while a read
/// is slow, then the next call.
#[test]
fn a_deadline_on_next_buffer_then_the_next_call() {
    run_with_deadline("timeout".into(), Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let (smgr, rel) = relation(dir.path(), 64, 22).await;
        smgr.inject(
            FaultOp::Read,
            Fault::Latency(Duration::from_millis(20)),
            100_000,
        );
        let pool = pool(smgr.clone(), 256);
        let mut stream = ReadStream::range(
            &pool,
            rel,
            MAIN,
            StreamConfig::default(),
            StreamFlags::default(),
            0..64,
        );
        let mut next = 0;
        let mut timeouts = 0;
        while next < 64 {
            match tokio::time::timeout(Duration::from_millis(5), stream.next_buffer()).await {
                Err(_) => timeouts += 1,
                Ok(result) => {
                    let (buffer, ()) = result.unwrap().unwrap();
                    assert_eq!(buffer.tag().block, next);
                    next += 1;
                }
            }
        }
        assert!(stream.next_buffer().await.unwrap().is_none());
        assert!(timeouts > 0, "no call timed out");
    });
}
