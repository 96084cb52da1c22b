//! Where a stream's read tasks run: on Tokio normally, on shuttle's
//! executor when built with `--cfg shuttle`, so that shuttle's schedulers
//! drive the real stream through its interleavings
//! (`tests/shuttle_stream.rs`), as `bufmgr`'s own shim does for the pool.

#[cfg(not(shuttle))]
pub(crate) use tokio::task::{spawn, JoinError, JoinHandle};

#[cfg(shuttle)]
pub(crate) use shuttle::future::{spawn, JoinError, JoinHandle};
