//! The page table: which frame holds which page.
//!
//! Partitioned as PostgreSQL's buffer mapping (128 partitions, each with its
//! own lock), so concurrent lookups of different pages rarely meet on a
//! lock.

use crate::sync::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::BufferTag;

/// PostgreSQL's `NUM_BUFFER_PARTITIONS`.
const PARTITIONS: usize = 128;

/// A fast multiplicative hash for buffer tags: a handful of integers per
/// lookup, on the hottest path of the pool. Tags come from the embedding
/// program, not from an attacker, so SipHash's flooding resistance buys
/// nothing here (PostgreSQL likewise hashes tags with its own fast hash).
#[derive(Default)]
pub(crate) struct TagHasher(u64);

impl Hasher for TagHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // Fold the high bits down: partitions use the low ones.
        self.0 ^ (self.0 >> 29)
    }
}

type TagMap = HashMap<BufferTag, u32, BuildHasherDefault<TagHasher>>;

pub(crate) struct PageTable {
    partitions: Vec<Mutex<TagMap>>,
    hasher: BuildHasherDefault<TagHasher>,
}

pub(crate) type Partition<'a> = MutexGuard<'a, TagMap>;

impl PageTable {
    pub fn new(frames: usize) -> Self {
        let per_partition = frames / PARTITIONS + 1;
        PageTable {
            partitions: (0..PARTITIONS)
                .map(|_| {
                    Mutex::new(HashMap::with_capacity_and_hasher(
                        per_partition,
                        Default::default(),
                    ))
                })
                .collect(),
            hasher: BuildHasherDefault::default(),
        }
    }

    /// Locks the partition that `tag` belongs to.
    pub fn lock(&self, tag: &BufferTag) -> Partition<'_> {
        // Use other bits than the map inside the partition does.
        let index = (self.hasher.hash_one(tag) >> 40) as usize % PARTITIONS;
        // A map is never left half-updated by a panic in our code paths.
        self.partitions[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
