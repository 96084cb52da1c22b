//! The synchronization primitives of the pool's state machine, in one
//! place: `std`'s normally, `shuttle`'s when built with `--cfg shuttle`, so
//! that shuttle's schedulers drive the real code (not a copy) through its
//! interleavings (`tests/shuttle_state_machine.rs`). The I/O wait
//! (`tokio::sync::Notify`) and the extension lock (`tokio::sync::Mutex`)
//! stay tokio's: they are runtime-agnostic and work under shuttle's
//! executor; shuttle then switches tasks at their `.await`s rather than
//! inside them.

#[cfg(not(shuttle))]
pub(crate) use std::sync::atomic::AtomicU64;
#[cfg(not(shuttle))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::AtomicU64;
#[cfg(shuttle)]
pub(crate) use shuttle::sync::{Mutex, MutexGuard};

/// One round of waiting for a content lock that someone else holds: spin
/// briefly (it is held for a few instructions' worth of page access), then
/// give the thread away. Under shuttle, always a yield, so its scheduler
/// can run the holder.
pub(crate) fn spin_wait(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    #[cfg(not(shuttle))]
    {
        if *spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    #[cfg(shuttle)]
    shuttle::thread::yield_now();
}

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
