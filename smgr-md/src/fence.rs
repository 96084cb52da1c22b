//! Per-fork fences between writes and size changes.
//!
//! A write runs on the blocking pool and keeps running if its future is
//! dropped (the kernel call cannot be taken back). Without a fence, an
//! abandoned `extend` could land after a later `truncate` and leave a
//! segment past a short one. So every write-like operation holds a fork's
//! fence shared until its I/O ends (the guard travels with the blocking
//! job), and `create`, `truncate` and `unlink` take it exclusively, waiting
//! for every write still in flight. `immedsync` takes it exclusively and
//! lets go at once: a barrier, so that its fsync covers every earlier
//! write without holding later ones up. Forks hash onto a fixed set of fences;
//! two forks that share one only wait for each other's size changes.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use smgr_api::{ForkNumber, RelFileLocator};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

const STRIPES: usize = 64;

pub(crate) struct Fences {
    stripes: Vec<Arc<RwLock<()>>>,
    hasher: RandomState,
}

impl Fences {
    pub fn new() -> Self {
        Fences {
            stripes: (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect(),
            hasher: RandomState::new(),
        }
    }

    fn stripe(&self, rel: RelFileLocator, fork: ForkNumber) -> Arc<RwLock<()>> {
        let index = self.hasher.hash_one((rel, fork)) as usize % STRIPES;
        self.stripes[index].clone()
    }

    /// Held by a write, extend or zero-extend until its I/O ends.
    pub async fn write(&self, rel: RelFileLocator, fork: ForkNumber) -> OwnedRwLockReadGuard<()> {
        self.stripe(rel, fork).read_owned().await
    }

    /// Held by create, truncate and unlink: waits out writes in flight.
    pub async fn resize(&self, rel: RelFileLocator, fork: ForkNumber) -> OwnedRwLockWriteGuard<()> {
        self.stripe(rel, fork).write_owned().await
    }
}
