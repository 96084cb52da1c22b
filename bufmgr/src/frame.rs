//! A frame's descriptor, padded to a cache line of its own, and the side
//! array where tasks wait for frames' I/O.
//!
//! The descriptor holds the state word (`state.rs`), the tag of the page
//! and a version for optimistic readers. Neighbouring descriptors never
//! share a line, so pinning one page never slows a core working on another.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use smgr_api::{ForkNumber, RelFileLocator};
use tokio::sync::Notify;

use crate::state::{FrameState, State};
use crate::sync::AtomicU64;
use crate::BufferTag;

/// One frame's descriptor (PostgreSQL's `BufferDesc`, padded as its
/// `BufferDescPadded`).
#[repr(align(64))]
pub(crate) struct FrameDesc {
    pub state: FrameState,
    /// The tag, in three words: (spc, db), (rel, block), fork. Written only
    /// while the frame is not `MAPPED` and claimed by one task; read by
    /// others only while `MAPPED` (and checked again after).
    tag: [AtomicU64; 3],
    /// Even while the page's bytes can be read without a lock; odd while
    /// someone may be changing them (exclusive lock). Bumped by 2 when the
    /// frame loses its page. Optimistic readers (`read_with`) compare it
    /// before and after reading.
    pub version: AtomicU64,
}

impl FrameDesc {
    pub fn new() -> Self {
        FrameDesc {
            state: FrameState::new(),
            tag: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            version: AtomicU64::new(0),
        }
    }

    pub fn load(&self) -> State {
        self.state.load()
    }

    /// The tag as stored. Stable only while the caller pins the frame and
    /// it is `MAPPED`, or holds its claim; otherwise it may be torn, and
    /// the caller must validate (the state or the version) afterwards.
    pub fn tag(&self) -> BufferTag {
        let a = self.tag[0].load(Relaxed);
        let b = self.tag[1].load(Relaxed);
        let c = self.tag[2].load(Relaxed);
        BufferTag {
            rel: RelFileLocator::new((a >> 32) as u32, a as u32, (b >> 32) as u32),
            fork: ForkNumber::ALL
                .get(c as usize)
                .copied()
                .unwrap_or(ForkNumber::Main),
            block: b as u32,
        }
    }

    /// Whether the stored tag is `tag` (cheaper than building one).
    pub fn has_tag(&self, tag: &BufferTag) -> bool {
        let (a, b, c) = words(tag);
        self.tag[1].load(Relaxed) == b
            && self.tag[0].load(Relaxed) == a
            && self.tag[2].load(Relaxed) == c
    }

    /// Stores the tag of a frame the caller claimed and unmapped; `map`
    /// then publishes it.
    pub fn set_tag(&self, tag: &BufferTag) {
        let (a, b, c) = words(tag);
        self.tag[0].store(a, Relaxed);
        self.tag[1].store(b, Relaxed);
        self.tag[2].store(c, Relaxed);
    }

    /// The page's bytes may change from here on (version made odd; the
    /// fence orders it before the changes, for optimistic readers).
    pub fn begin_change(&self) {
        self.version.fetch_add(1, Relaxed);
        std::sync::atomic::fence(Release);
    }

    /// The change is over (version even again).
    pub fn end_change(&self) {
        self.version.fetch_add(1, Release);
    }

    /// The frame lost its page (eviction): optimistic readers that started
    /// before must not trust what they read.
    pub fn page_gone(&self) {
        // Release on the add itself: an optimistic reader that sees the new
        // version also sees the frame unmapped (the state change before
        // it); the fence orders it before the new page's bytes and tag.
        self.version.fetch_add(2, Release);
        std::sync::atomic::fence(Release);
    }

    /// The version an optimistic read starts from, if no change is under
    /// way.
    pub fn read_version(&self) -> Option<u64> {
        let v = self.version.load(Acquire);
        (v % 2 == 0).then_some(v)
    }

    /// Whether nothing changed since `read_version` gave `v`.
    pub fn still(&self, v: u64) -> bool {
        std::sync::atomic::fence(Acquire);
        self.version.load(Relaxed) == v
    }
}

// SAFETY: a descriptor is three kinds of `AtomicU64` (state, tag, version),
// all zero in a new one (`FrameDesc::new`): all-zero bytes are a valid, free
// descriptor, and it has no drop glue.
#[cfg(not(shuttle))]
#[allow(unsafe_code)]
unsafe impl crate::memory::Zeroable for FrameDesc {}

fn words(tag: &BufferTag) -> (u64, u64, u64) {
    (
        (u64::from(tag.rel.spc_oid) << 32) | u64::from(tag.rel.db_oid),
        (u64::from(tag.rel.rel_number) << 32) | u64::from(tag.block),
        tag.fork as u64,
    )
}

/// Where tasks wait for frames' I/O: a few `Notify`s shared by all frames
/// (frame `f` waits on slot `f % slots`), so the pool does not carry one
/// per frame. A task registers with its slot, then sets the frame's
/// `IO_WAITERS` flag in the same compare-and-swap that finds it must wait;
/// whoever ends the I/O sees the flag and wakes the slot. Frames sharing a
/// slot cost a spurious wake-up now and then, nothing more: every waiter
/// re-checks its own frame.
pub(crate) struct Waiters {
    slots: Box<[Notify]>,
}

impl Waiters {
    pub fn new(frames: usize) -> Self {
        let slots = frames.clamp(1, 4096);
        Waiters {
            slots: (0..slots).map(|_| Notify::new()).collect(),
        }
    }

    /// Wakes everyone waiting on `frame`'s slot.
    pub fn wake(&self, frame: u32) {
        self.slots[frame as usize % self.slots.len()].notify_waiters();
    }

    /// Waits until `done` holds for `frame`'s state, re-checking whenever
    /// an I/O of a frame of its slot ends.
    pub async fn wait_until(&self, frame: u32, desc: &FrameDesc, done: impl Fn(State) -> bool) {
        let slot = &self.slots[frame as usize % self.slots.len()];
        loop {
            let notified = slot.notified();
            tokio::pin!(notified);
            // Register before looking, so a wake-up between the look and
            // the await is not lost.
            notified.as_mut().enable();
            if desc.state.done_or_wait(&done) {
                return;
            }
            notified.await;
        }
    }
}
