//! One run's read as the stream holds it: finished on the spot, or a task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::task::{JoinError, JoinHandle};

/// Runs of at most this many blocks are tried inline first (see
/// [`ReadTask::start`]); longer ones always get a task, so that copying
/// cached pages into the pool runs on both cores.
pub(crate) const INLINE_MAX_BLOCKS: usize = 2;

/// A started read of one run.
pub(crate) enum ReadTask<T> {
    /// It finished on its first poll; the outcome until it is taken.
    Done(Option<T>),
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
            return ReadTask::Task(tokio::spawn(read));
        }
        let mut read = Box::pin(read);
        let mut cx = Context::from_waker(Waker::noop());
        match read.as_mut().poll(&mut cx) {
            Poll::Ready(outcome) => ReadTask::Done(Some(outcome)),
            Poll::Pending => ReadTask::Task(tokio::spawn(read)),
        }
    }

    /// Whether it finished on its first poll, without a task.
    pub fn finished_inline(&self) -> bool {
        matches!(self, ReadTask::Done(_))
    }

    pub fn is_finished(&self) -> bool {
        match self {
            ReadTask::Done(_) => true,
            ReadTask::Task(handle) => handle.is_finished(),
        }
    }

    /// Abandons the read: a task is aborted (the pool finishes its I/O).
    pub fn abort(&self) {
        if let ReadTask::Task(handle) = self {
            handle.abort();
        }
    }

    /// The outcome if the read has finished, without waiting. `None` also
    /// when the task budget asks a finished task's handle to yield.
    pub fn try_take(&mut self) -> Option<Result<T, JoinError>> {
        match self {
            ReadTask::Done(outcome) => outcome.take().map(Ok),
            ReadTask::Task(handle) => {
                if !handle.is_finished() {
                    return None;
                }
                let mut cx = Context::from_waker(Waker::noop());
                match Pin::new(handle).poll(&mut cx) {
                    Poll::Ready(outcome) => Some(outcome),
                    Poll::Pending => None,
                }
            }
        }
    }

    /// Waits for the outcome; `None` if it was already taken.
    pub async fn join(self) -> Option<Result<T, JoinError>> {
        match self {
            ReadTask::Done(outcome) => outcome.map(Ok),
            ReadTask::Task(handle) => Some(handle.await),
        }
    }
}
