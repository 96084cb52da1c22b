//! The page table: which frame holds which page.
//!
//! Partitioned as PostgreSQL's buffer mapping (128 partitions, each with its
//! own lock), so concurrent lookups of different pages rarely meet on a
//! lock.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

use crate::BufferTag;

/// PostgreSQL's `NUM_BUFFER_PARTITIONS`.
const PARTITIONS: usize = 128;

pub(crate) struct PageTable {
    partitions: Vec<Mutex<HashMap<BufferTag, u32>>>,
    hasher: RandomState,
}

pub(crate) type Partition<'a> = MutexGuard<'a, HashMap<BufferTag, u32>>;

impl PageTable {
    pub fn new(frames: usize) -> Self {
        let per_partition = frames / PARTITIONS + 1;
        PageTable {
            partitions: (0..PARTITIONS)
                .map(|_| Mutex::new(HashMap::with_capacity(per_partition)))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// Locks the partition that `tag` belongs to.
    pub fn lock(&self, tag: &BufferTag) -> Partition<'_> {
        let index = self.hasher.hash_one(tag) as usize % PARTITIONS;
        // A map is never left half-updated by a panic in our code paths.
        self.partitions[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
