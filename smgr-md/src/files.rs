//! A bounded cache of open segment files.
//!
//! Opening a file per read would cost a path lookup each time, and keeping
//! every segment of every relation open would run out of descriptors (a
//! 1 TiB relation has 1024 segments). So open files are kept in an LRU of
//! bounded size; dropping the last `Arc` of a file closes the descriptor, so a
//! file evicted while an I/O still uses it stays open until that I/O ends.
//!
//! Unlink and truncate remove a fork's entries. An open that raced with
//! such a removal must not put a handle of a deleted file back: every
//! removal bumps an epoch, and an open only caches its handle if the epoch
//! did not move while it was opening.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use smgr_api::{ForkNumber, RelFileLocator};

/// One segment file of one fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SegKey {
    pub rel: RelFileLocator,
    pub fork: ForkNumber,
    pub segno: u32,
}

pub(crate) struct FileCache<T> {
    state: Mutex<CacheState<T>>,
}

struct CacheState<T> {
    files: LruCache<SegKey, Arc<T>>,
    epoch: u64,
}

impl<T> FileCache<T> {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        FileCache {
            state: Mutex::new(CacheState {
                files: LruCache::new(capacity),
                epoch: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, CacheState<T>> {
        // The state is a cache: after a panic elsewhere it is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached handle and the current epoch (to pass to `insert`).
    pub fn get(&self, key: &SegKey) -> (Option<Arc<T>>, u64) {
        let mut state = self.state();
        let file = state.files.get(key).cloned();
        (file, state.epoch)
    }

    /// Caches a freshly opened handle unless a removal happened since
    /// `epoch`; returns the handle to use (an existing one if another task
    /// cached the same file meanwhile).
    pub fn insert(&self, key: SegKey, file: T, epoch: u64) -> Arc<T> {
        let mut state = self.state();
        if let Some(existing) = state.files.get(&key) {
            return existing.clone();
        }
        let file = Arc::new(file);
        if state.epoch == epoch {
            state.files.put(key, file.clone());
        }
        file
    }

    /// Forgets the segments `from_segno..` of a fork.
    pub fn forget(&self, rel: RelFileLocator, fork: ForkNumber, from_segno: u32) {
        let mut state = self.state();
        state.epoch += 1;
        let doomed: Vec<SegKey> = state
            .files
            .iter()
            .map(|(key, _)| *key)
            .filter(|key| key.rel == rel && key.fork == fork && key.segno >= from_segno)
            .collect();
        for key in doomed {
            state.files.pop(&key);
        }
    }

    /// Whether `key` is open in the cache (its LRU place unchanged).
    pub fn contains(&self, key: &SegKey) -> bool {
        self.state().files.contains(key)
    }

    /// How many files are open through the cache.
    pub fn len(&self) -> usize {
        self.state().files.len()
    }
}
