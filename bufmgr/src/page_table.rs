//! The page table: which frame holds which page, probed without a lock.
//!
//! Partitioned as PostgreSQL's buffer mapping (128 partitions), each padded
//! to its own cache lines. A partition is an open-addressing array of
//! atomic entries, `(fingerprint << 32) | (frame + 1)`, written only under
//! the partition's mutex and read by anyone without it:
//!
//! - a hit probes the array, pins the candidate frame if it is `MAPPED`
//!   (`state.rs`) and compares the frame's tag; no lock, no shared write
//!   but the pin itself;
//! - a probe may miss an entry that a writer is moving (deletion shifts
//!   later entries back); a miss is therefore only a hint, and the caller
//!   looks again under the lock before it maps the page anywhere else.
//!
//! A partition that fills up past three quarters keeps further entries in
//! an ordinary map under its mutex (found by the locked look-up only); with
//! four slots per frame on average this is for skewed hashes, not the
//! normal case.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::frame::FrameDesc;
use crate::memory::{array, Array};
use crate::sync::{AtomicU64, Mutex, MutexGuard};
use crate::{BufferTag, Result};

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
        self.0 ^ (self.0 >> 29)
    }
}

type TagMap = HashMap<BufferTag, u32, BuildHasherDefault<TagHasher>>;

/// The page table's hash of a tag. (A two-multiply hash of the tag's two
/// halves was tried: as well spread on paper, but random hits over 128 MiB
/// scaled 1.49x on two cores against 1.60x with this one, same run.)
fn hash_tag(tag: &BufferTag) -> u64 {
    BuildHasherDefault::<TagHasher>::default().hash_one(tag)
}

/// Where a tag lives: its partition, and its fingerprint (the hash's high
/// half, which also gives its home slot).
#[derive(Clone, Copy)]
struct Key {
    partition: usize,
    fingerprint: u64,
}

#[repr(align(128))]
struct Partition {
    /// Where its slots start in the table's one array.
    base: usize,
    mask: usize,
    /// Some entry ever went to the overflow map: lock-free misses must be
    /// confirmed under the lock. Set under the lock, never cleared.
    overflowed: std::sync::atomic::AtomicBool,
    writer: Mutex<Overflow>,
}

#[derive(Default)]
struct Overflow {
    /// Entries in `slots`.
    used: usize,
    map: TagMap,
}

pub(crate) struct PageTable {
    /// Every partition's slots, in one array (in huge pages: probes touch
    /// it at random).
    slots: Array<AtomicU64>,
    partitions: Box<[Partition]>,
}

impl PageTable {
    pub fn new(frames: usize) -> Result<Self> {
        let per_partition = (frames * 4 / PARTITIONS + 8).next_power_of_two();
        Ok(PageTable {
            slots: array(per_partition * PARTITIONS, || AtomicU64::new(0))?,
            partitions: (0..PARTITIONS)
                .map(|p| Partition {
                    base: p * per_partition,
                    mask: per_partition - 1,
                    overflowed: std::sync::atomic::AtomicBool::new(false),
                    writer: Mutex::new(Overflow::default()),
                })
                .collect(),
        })
    }

    /// Slot `i` (taken modulo the partition's size) of `part`.
    fn slot(&self, part: &Partition, i: usize) -> &AtomicU64 {
        &self.slots[part.base + (i & part.mask)]
    }

    fn key(&self, tag: &BufferTag) -> Key {
        let h = hash_tag(tag);
        Key {
            partition: (h >> 25) as usize % PARTITIONS,
            fingerprint: h >> 32,
        }
    }

    /// Calls `accept` with each frame the lock-free probe finds for `tag`
    /// until it returns true (it pins the frame and checks its tag). False
    /// if none was accepted: the page is probably not in the pool.
    pub fn probe(&self, tag: &BufferTag, mut accept: impl FnMut(u32) -> bool) -> bool {
        let key = self.key(tag);
        let part = &self.partitions[key.partition];
        let home = key.fingerprint as usize & part.mask;
        for i in 0..=part.mask {
            let entry = self.slot(part, home + i).load(Acquire);
            if entry == 0 {
                return false;
            }
            if entry >> 32 == key.fingerprint && accept((entry as u32).wrapping_sub(1)) {
                return true;
            }
        }
        false
    }

    /// Whether `tag`'s partition keeps entries the lock-free probe cannot
    /// see (its array overflowed once).
    pub fn has_overflow(&self, tag: &BufferTag) -> bool {
        self.partitions[self.key(tag).partition]
            .overflowed
            .load(Acquire)
    }

    /// Locks the partition that `tag` belongs to, for a look-up that
    /// cannot miss and for changes.
    pub fn lock(&self, tag: &BufferTag) -> Locked<'_> {
        let key = self.key(tag);
        let part = &self.partitions[key.partition];
        // A partition is never left half-updated by a panic in our code.
        let overflow = part.writer.lock().unwrap_or_else(|p| p.into_inner());
        Locked {
            table: self,
            part,
            overflow,
            key,
            tag: *tag,
        }
    }
}

/// One partition, locked, for one tag.
pub(crate) struct Locked<'a> {
    table: &'a PageTable,
    part: &'a Partition,
    overflow: MutexGuard<'a, Overflow>,
    key: Key,
    tag: BufferTag,
}

impl Locked<'_> {
    fn home(&self, entry: u64) -> usize {
        (entry >> 32) as usize & self.part.mask
    }

    /// The frame mapped to the tag. Under the lock the tags of mapped
    /// frames are stable (they change only after their entry is removed,
    /// under this lock), so comparing them is exact.
    pub fn get(&self, frames: &[FrameDesc]) -> Option<u32> {
        let part = self.part;
        let home = self.key.fingerprint as usize & part.mask;
        for i in 0..=part.mask {
            let entry = self.table.slot(part, home + i).load(Relaxed);
            if entry == 0 {
                break;
            }
            let frame = (entry as u32).wrapping_sub(1);
            if entry >> 32 == self.key.fingerprint
                && frames
                    .get(frame as usize)
                    .is_some_and(|d| d.has_tag(&self.tag))
            {
                return Some(frame);
            }
        }
        self.overflow.map.get(&self.tag).copied()
    }

    /// Maps the tag to `frame` (it must not be mapped yet).
    pub fn insert(&mut self, frame: u32) {
        let part = self.part;
        if (self.overflow.used + 1) * 4 > (part.mask + 1) * 3 {
            part.overflowed.store(true, Release);
            self.overflow.map.insert(self.tag, frame);
            return;
        }
        let entry = (self.key.fingerprint << 32) | u64::from(frame + 1);
        let home = self.key.fingerprint as usize & part.mask;
        for i in 0..=part.mask {
            let slot = self.table.slot(part, home + i);
            if slot.load(Relaxed) == 0 {
                slot.store(entry, Release);
                self.overflow.used += 1;
                return;
            }
        }
        part.overflowed.store(true, Release);
        self.overflow.map.insert(self.tag, frame);
    }

    /// Removes the tag's mapping to `frame`.
    pub fn remove(&mut self, frame: u32) {
        if self.overflow.map.remove(&self.tag).is_some() {
            return;
        }
        let part = self.part;
        let entry = (self.key.fingerprint << 32) | u64::from(frame + 1);
        let home = self.key.fingerprint as usize & part.mask;
        let slot = |i: usize| self.table.slot(part, i);
        let Some(mut hole) = (0..=part.mask)
            .map(|i| (home + i) & part.mask)
            .take_while(|&i| slot(i).load(Relaxed) != 0)
            .find(|&i| slot(i).load(Relaxed) == entry)
        else {
            return;
        };
        self.overflow.used -= 1;
        // Backward-shift deletion: later entries of the cluster whose home
        // is not between the hole and themselves move into the hole, so
        // probes never meet a gap before their entry (no tombstones). A
        // lock-free probe running meanwhile may miss a moving entry; it
        // then looks again under the lock.
        let mut next = hole;
        loop {
            next = (next + 1) & part.mask;
            let moved = slot(next).load(Relaxed);
            if moved == 0 {
                slot(hole).store(0, Release);
                return;
            }
            let home = self.home(moved);
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                slot(hole).store(moved, Release);
                hole = next;
            }
        }
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use smgr_api::{ForkNumber, RelFileLocator};

    #[test]
    fn inserts_and_removes_keep_every_other_entry_findable() {
        let frames: Vec<FrameDesc> = (0..600).map(|_| FrameDesc::new()).collect();
        let table = PageTable::new(64).unwrap();
        let tag = |i: u32| {
            BufferTag::new(
                RelFileLocator::in_database(5, 16396 + i % 3),
                ForkNumber::Main,
                i,
            )
        };
        let mut mapped = std::collections::BTreeMap::new();
        // More entries than the partitions' arrays hold: some overflow.
        for i in 0..600u32 {
            frames[i as usize].set_tag(&tag(i));
            table.lock(&tag(i)).insert(i);
            mapped.insert(i, i);
        }
        for step in 0..600u32 {
            let i = (step * 7919) % 600;
            if step % 3 == 0 {
                table.lock(&tag(i)).remove(i);
                mapped.remove(&i);
            }
            for (&t, &frame) in mapped.iter().step_by(17) {
                assert_eq!(table.lock(&tag(t)).get(&frames), Some(frame), "tag {t}");
            }
        }
        for i in 0..600u32 {
            let found = table.lock(&tag(i)).get(&frames);
            assert_eq!(found, mapped.get(&i).copied(), "tag {i}");
            let probed = table.probe(&tag(i), |f| frames[f as usize].has_tag(&tag(i)));
            // The lock-free probe finds what is in the arrays; overflow
            // entries only under the lock.
            if !probed {
                assert!(found.is_none() || table.lock(&tag(i)).overflow.map.contains_key(&tag(i)));
            }
        }
    }
}
