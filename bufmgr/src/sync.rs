//! The synchronization primitives of the pool's state machine, in one
//! place: `std`'s normally, `shuttle`'s when built with `--cfg shuttle`, so
//! that shuttle's schedulers drive the real code (not a copy) through its
//! interleavings (`tests/shuttle_state_machine.rs`). The I/O wait
//! (`tokio::sync::Notify`) and the extension lock (`tokio::sync::Mutex`)
//! stay tokio's: they are runtime-agnostic and work under shuttle's
//! executor; shuttle then switches tasks at their `.await`s rather than
//! inside them.

#[cfg(not(shuttle))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};
#[cfg(not(shuttle))]
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::{AtomicU64, AtomicUsize};
#[cfg(shuttle)]
pub(crate) use shuttle::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Runs `future` to completion in the background (the I/O of a waiter that
/// went away). Hands it back when there is no runtime to run it on (the
/// runtime is shutting down).
pub(crate) fn spawn_detached<F>(future: F) -> Result<(), F>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    #[cfg(not(shuttle))]
    {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(future);
                Ok(())
            }
            Err(_) => Err(future),
        }
    }
    #[cfg(shuttle)]
    {
        shuttle::future::spawn(future);
        Ok(())
    }
}
