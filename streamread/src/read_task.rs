//! One run's read as the stream holds it: finished on the spot, or a task.
//!
//! The stream never moves a read out of its own state to wait for it: it
//! waits *in place* ([`ReadTask::poll_finished`]) and takes the outcome
//! synchronously once it is there ([`ReadTask::take`]). A wait that is
//! dropped (the caller's `next_buffer()` was cancelled) therefore leaves
//! the read where it was, still the stream's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{spawn, JoinError, JoinHandle};

/// How a read ended without an outcome: its task panicked (the message
/// says where) or was aborted.
pub(crate) type Ended = String;

fn ended(join: JoinError) -> Ended {
    join.to_string()
}

/// The message of a panic caught on the stream's own task.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> Ended {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("read panicked with message {message:?}")
}

/// Runs of at most this many blocks are tried inline first (see
/// [`ReadTask::start`]); longer ones get a task while the runtime has a
/// worker to spare for them (`cores.rs`), so that copying cached pages
/// into the pool runs on both cores.
pub(crate) const INLINE_MAX_BLOCKS: usize = 2;

/// A started read of one run.
pub(crate) enum ReadTask<T> {
    /// It finished; its outcome until taken.
    Done(Option<Result<T, Ended>>),
    /// It had to wait, so it runs as a task.
    Task(JoinHandle<T>),
}

impl<T: Send + 'static> ReadTask<T> {
    /// Starts `read`. A small read (`inline`) is polled once right here
    /// first: of pages the kernel holds it completes at once (smgr-md
    /// copies them with `RWF_NOWAIT`), and a task would cost more than the
    /// copy (warm sparse streams were half the speed of a one-block loop).
    /// If it has to wait, the same future, its I/O already started, moves
    /// into a task; the task's first poll registers its real waker.
    pub fn start(read: impl Future<Output = T> + Send + 'static, inline: bool) -> Self {
        if !inline {
            return ReadTask::Task(spawn(read));
        }
        let mut read = Box::pin(read);
        let mut cx = Context::from_waker(Waker::noop());
        // A panic in the read (a backend bug) becomes its outcome, as it
        // would in a task, instead of unwinding through the stream.
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read.as_mut().poll(&mut cx)));
        match polled {
            Ok(Poll::Ready(outcome)) => ReadTask::Done(Some(Ok(outcome))),
            Ok(Poll::Pending) => ReadTask::Task(spawn(read)),
            Err(panic) => ReadTask::Done(Some(Err(panic_message(&*panic)))),
        }
    }

    /// Whether it finished on its first poll, without a task.
    pub fn finished_inline(&self) -> bool {
        matches!(self, ReadTask::Done(_))
    }

    /// Whether its outcome is there (or was taken).
    pub fn is_finished(&self) -> bool {
        match self {
            ReadTask::Done(_) => true,
            ReadTask::Task(handle) => handle.is_finished(),
        }
    }

    /// Abandons the read: a task is aborted (the pool finishes its I/O, and
    /// the buffers it held are dropped with it).
    pub fn abort(&self) {
        if let ReadTask::Task(handle) = self {
            handle.abort();
        }
    }

    /// Ready once the read has finished; its outcome stays here for
    /// [`take`](Self::take). Cancel safe: polling only looks.
    pub fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let ReadTask::Task(handle) = self else {
            return Poll::Ready(());
        };
        let outcome = std::task::ready!(Pin::new(handle).poll(cx));
        *self = ReadTask::Done(Some(outcome.map_err(ended)));
        Poll::Ready(())
    }

    /// The outcome if the read has finished, without waiting; `None` if it
    /// has not (or the task budget asks a finished task's handle to yield),
    /// or if the outcome was taken already.
    pub fn take(&mut self) -> Option<Result<T, Ended>> {
        if let ReadTask::Task(handle) = self {
            if !handle.is_finished() {
                return None;
            }
            let mut cx = Context::from_waker(Waker::noop());
            if self.poll_finished(&mut cx).is_pending() {
                return None;
            }
        }
        match self {
            ReadTask::Done(outcome) => outcome.take(),
            ReadTask::Task(_) => None,
        }
    }
}
