//! The state word of a frame: everything other tasks must know about a
//! frame, in one atomic `u64`, changed only by the transitions below.
//!
//! Read this file first: it is the buffer pool's state machine. Every other
//! file asks for a transition by name; none manipulates the bits.
//!
//! ```text
//!  63        62..32         31   30      29   28    27    26    25   24    23    22   21..18  17..0
//! [EXCL][shared lockers][ - ][IO_WAIT][LENT][ERR][WRITE][READ][JDIRTY][DIRTY][VALID][MAPPED][usage][pins]
//! ```
//!
//! - `pins` (18 bits): [`Buffer`](crate::Buffer) handles on the frame, plus
//!   the one pin clock sweep takes on a victim it claims. A pinned frame
//!   keeps its page.
//! - `usage` (4 bits, at most [`MAX_USAGE`]): clock-sweep usage count.
//! - `MAPPED`: the frame's tag is in the page table and stable. Pins can be
//!   taken only while it is set ([`FrameState::pin_if_mapped`]), and it is
//!   cleared only by the evictor holding the sole pin
//!   ([`FrameState::unmap_claimed`]), so a pin taken without any lock
//!   (a lock-free page-table probe) pins a frame whose tag cannot change
//!   under it: the prober re-checks the tag and is done.
//! - `VALID`: the bytes are the page. `DIRTY` / `JUST_DIRTIED`: changed since
//!   written / since the write in progress took its copy.
//! - `READING` / `WRITING`: an I/O is in progress (a read makes the page
//!   valid; a write keeps it valid and readable). `IO_ERROR`: the last read
//!   failed and the next reader retries. `LENT`: the frame's memory is lent
//!   to a backend as a `PageBuf` and nobody else may touch it until it
//!   comes back.
//! - `IO_WAITERS`: some task waits for this frame's I/O to end (in
//!   [`Waiters`](crate::frame::Waiters), a side array). The task that ends
//!   the I/O clears it and wakes them; without it, ending an I/O wakes
//!   nobody and costs no extra shared write.
//! - the content lock: a count of shared lockers and an exclusive bit.
//!   Readers of the page take it shared, writers exclusive, for short
//!   synchronous work; a blocked locker spins, then yields its thread.
//!
//! # Who owns a frame when
//!
//! ```text
//!  free ──claim (pins 0→1)──► claimed ──unmap──► unmapped ──map──► mapped, not valid
//!   ▲                           │ (dirty: write back first)          │ start_read: READING|LENT
//!   │                           ▼                                    ▼
//!   └──────── unpin (pins→0) ◄─ mapped, valid ◄──end_read(ok)── reading ──end_read(failed)──► IO_ERROR
//! ```
//!
//! All transitions are compare-and-swap loops on the one word (or a single
//! `fetch_add`/`fetch_or` where nothing needs checking), so a transition
//! either happens whole or not at all, and no lock is held across anything
//! but the word itself.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};

use crate::sync::{spin_wait, AtomicU64};

pub(crate) const PIN_ONE: u64 = 1;
pub(crate) const PINS: u64 = (1 << 18) - 1;
pub(crate) const USAGE_SHIFT: u32 = 18;
pub(crate) const USAGE_ONE: u64 = 1 << USAGE_SHIFT;
pub(crate) const USAGE: u64 = 0xF << USAGE_SHIFT;
/// Usage counts saturate here (PostgreSQL's `BM_MAX_USAGE_COUNT`).
pub(crate) const MAX_USAGE: u64 = 5;
pub(crate) const MAPPED: u64 = 1 << 22;
pub(crate) const VALID: u64 = 1 << 23;
pub(crate) const DIRTY: u64 = 1 << 24;
pub(crate) const JUST_DIRTIED: u64 = 1 << 25;
pub(crate) const READING: u64 = 1 << 26;
pub(crate) const WRITING: u64 = 1 << 27;
pub(crate) const IO_ERROR: u64 = 1 << 28;
pub(crate) const LENT: u64 = 1 << 29;
pub(crate) const IO_WAITERS: u64 = 1 << 30;
pub(crate) const SHARE_ONE: u64 = 1 << 32;
pub(crate) const SHARES: u64 = 0x7FFF_FFFF << 32;
pub(crate) const EXCLUSIVE: u64 = 1 << 63;

const IO: u64 = READING | WRITING;

/// Refuses a pin that would overflow the 18-bit count into the usage bits
/// (and so let clock sweep take a pinned frame): 262,143 pins of one page
/// are a leak in the program, and it stops here, as `Arc` aborts on a
/// count overflow.
fn check_pins(s: State) {
    assert!(
        s.pins() < PINS,
        "more than {PINS} pins of one buffer: pins are being leaked"
    );
}

/// One snapshot of a state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct State(pub u64);

impl State {
    pub fn pins(self) -> u64 {
        self.0 & PINS
    }
    pub fn usage(self) -> u64 {
        (self.0 & USAGE) >> USAGE_SHIFT
    }
    pub fn has(self, flags: u64) -> bool {
        self.0 & flags == flags
    }
    pub fn any(self, flags: u64) -> bool {
        self.0 & flags != 0
    }
    /// No I/O in progress and the memory not lent.
    pub fn io_idle(self) -> bool {
        !self.any(IO | LENT)
    }
    /// Clock sweep may take it (ignoring usage and dirt). A content lock
    /// held without a pin (a guard leaked with `mem::forget`) keeps the
    /// frame out of reuse for good, rather than let the next page inherit
    /// the lock.
    pub fn evictable(self) -> bool {
        self.pins() == 0 && self.io_idle() && !self.any(SHARES | EXCLUSIVE)
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (MAPPED, "MAPPED"),
            (VALID, "VALID"),
            (DIRTY, "DIRTY"),
            (JUST_DIRTIED, "JUST_DIRTIED"),
            (READING, "READING"),
            (WRITING, "WRITING"),
            (IO_ERROR, "IO_ERROR"),
            (LENT, "LENT"),
            (IO_WAITERS, "IO_WAITERS"),
            (EXCLUSIVE, "EXCLUSIVE"),
        ];
        write!(
            f,
            "pins {} usage {} shared {}",
            self.pins(),
            self.usage(),
            (self.0 & SHARES) >> 32
        )?;
        for (bit, name) in names {
            if self.any(bit) {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}

/// What clock sweep found at one frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Pinned: not a candidate.
    Busy,
    /// Unpinned but busy with I/O (or its memory still lent): a candidate
    /// soon.
    InIo,
    /// Recently used: its usage count was lowered.
    Aged,
    /// Ours now (pinned once by us); holds `dirty` data if true.
    Claimed { dirty: bool },
}

/// How taking a read I/O went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadStart {
    /// The page is valid: nothing to read.
    Valid,
    /// Another I/O is in progress (or the memory is still lent).
    Busy,
    /// Ours: `READING | LENT` set.
    Started,
}

/// How taking a write I/O went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteStart {
    /// Not dirty (or not valid) any more: nothing to write.
    Clean,
    /// Another I/O is in progress.
    Busy,
    /// Ours: `WRITING` set, `JUST_DIRTIED` cleared.
    Started,
}

/// A frame's state word.
pub(crate) struct FrameState(AtomicU64);

impl FrameState {
    pub fn new() -> Self {
        FrameState(AtomicU64::new(0))
    }

    pub fn load(&self) -> State {
        State(self.0.load(Acquire))
    }

    /// Applies `f` until it wins the compare-and-swap or declines (`None`).
    /// Returns the state it changed, or the one it declined.
    fn update(&self, mut f: impl FnMut(State) -> Option<u64>) -> Result<State, State> {
        self.0
            .fetch_update(AcqRel, Acquire, |s| f(State(s)))
            .map(State)
            .map_err(State)
    }

    // ---- pins -------------------------------------------------------

    /// Pins the frame if its tag is mapped and stable, bumping its usage
    /// count (PostgreSQL's `PinBuffer`). The state after, or `None` if the
    /// frame is being remapped (the caller looks it up again under the
    /// page table's lock).
    pub fn pin_if_mapped(&self) -> Option<State> {
        self.pin_mapped(true)
    }

    /// Pins the frame if its tag is mapped, without counting a use (for
    /// flushes and scans of the pool, which should not keep pages in it).
    pub fn pin_if_mapped_quietly(&self) -> Option<State> {
        self.pin_mapped(false)
    }

    /// A pin if `MAPPED`, bumping the usage count (up to `MAX_USAGE`) if
    /// `count_use`; the state after.
    fn pin_mapped(&self, count_use: bool) -> Option<State> {
        let pinned = |s: State| {
            let usage = if count_use && s.usage() < MAX_USAGE {
                USAGE_ONE
            } else {
                0
            };
            s.0 + PIN_ONE + usage
        };
        let old = self
            .update(|s| {
                if !s.has(MAPPED) {
                    return None;
                }
                check_pins(s);
                Some(pinned(s))
            })
            .ok()?;
        Some(State(pinned(old)))
    }

    /// Another pin on a frame the caller already pins.
    pub fn pin_again(&self) {
        let _ = self.update(|s| {
            check_pins(s);
            Some(s.0 + PIN_ONE)
        });
    }

    /// Drops one pin. Release: what the pin holder did to the page happens
    /// before whoever claims the frame next.
    pub fn unpin(&self) {
        let old = self.0.fetch_sub(PIN_ONE, Release);
        debug_assert!(State(old).pins() > 0, "unpin of an unpinned frame");
    }

    // ---- eviction ---------------------------------------------------

    /// One step of clock sweep at this frame: age it, or claim it with a
    /// pin of our own. A ring's frame (`from_ring`) is reused only if
    /// nobody else found it useful meanwhile and it needs no write.
    pub fn sweep(&self, from_ring: bool) -> Sweep {
        let mut outcome = Sweep::Busy;
        let _ = self.update(|s| {
            if !s.evictable() {
                // Frames in I/O will be free soon, even if pinned by the
                // task writing them back for eviction.
                outcome = if s.pins() == 0 || s.any(IO) {
                    Sweep::InIo
                } else {
                    Sweep::Busy
                };
                return None;
            }
            if from_ring {
                if s.usage() > 1 || s.any(DIRTY) {
                    outcome = Sweep::Busy;
                    return None;
                }
            } else if s.usage() > 0 {
                outcome = Sweep::Aged;
                return Some(s.0 - USAGE_ONE);
            }
            outcome = Sweep::Claimed {
                dirty: s.any(DIRTY),
            };
            Some(s.0 + PIN_ONE)
        });
        outcome
    }

    /// Takes the page away from a frame we claimed (our pin the only one,
    /// clean, no I/O): clears `MAPPED` and `VALID`, so nobody can pin it
    /// through the page table any more. False, and our pin dropped, if
    /// someone pinned or dirtied it in between. The caller holds the old
    /// tag's page-table partition lock and removes the mapping.
    pub fn unmap_claimed(&self) -> bool {
        let unmapped = self
            .update(|s| {
                let ours = s.pins() == 1 && !s.any(DIRTY | SHARES | EXCLUSIVE) && s.io_idle();
                ours.then_some(s.0 & !(MAPPED | VALID | IO_ERROR | USAGE))
            })
            .is_ok();
        if !unmapped {
            self.unpin();
        }
        unmapped
    }

    /// Gives a claimed, unmapped frame its new page: `MAPPED`, not valid,
    /// usage 1, still pinned once by the caller. The tag was written first;
    /// Release publishes it to lock-free probers that see `MAPPED`.
    pub fn map(&self) {
        let _ = self.update(|s| Some((s.0 & !(VALID | IO_ERROR | USAGE)) | MAPPED | USAGE_ONE));
    }

    // ---- reads ------------------------------------------------------

    /// Takes the read I/O of a not-valid page.
    pub fn start_read(&self) -> ReadStart {
        let mut outcome = ReadStart::Busy;
        let _ = self.update(|s| {
            if s.has(VALID) {
                outcome = ReadStart::Valid;
                return None;
            }
            if !s.io_idle() {
                outcome = ReadStart::Busy;
                return None;
            }
            outcome = ReadStart::Started;
            Some((s.0 | READING | LENT) & !IO_ERROR)
        });
        outcome
    }

    /// Ends a read I/O: valid if it succeeded and the memory is back (never
    /// valid while an I/O may still hold it), else `IO_ERROR` for the next
    /// reader to retry. Returns whether waiters must be woken.
    pub fn end_read(&self, ok: bool) -> bool {
        let old = self
            .update(|s| {
                let valid = ok && !s.any(LENT);
                let mut new = s.0 & !(READING | IO_WAITERS | VALID | IO_ERROR);
                new |= if valid { VALID } else { IO_ERROR };
                Some(new)
            })
            .unwrap_or_else(|s| s);
        old.any(IO_WAITERS)
    }

    /// Marks the frame's memory lent again to the read I/O that holds it,
    /// once the earlier loan came back. False while it has not.
    pub fn relend(&self) -> bool {
        self.update(|s| (s.has(READING) && !s.any(LENT)).then_some(s.0 | LENT))
            .is_ok()
    }

    /// The frame's memory came back from a backend. Returns whether
    /// waiters must be woken.
    pub fn page_returned(&self) -> bool {
        let old = State(self.0.fetch_and(!(LENT | IO_WAITERS), AcqRel));
        old.any(IO_WAITERS)
    }

    // ---- writes -----------------------------------------------------

    /// Takes the write I/O of a dirty, valid page.
    pub fn start_write(&self) -> WriteStart {
        let mut outcome = WriteStart::Busy;
        let _ = self.update(|s| {
            if !s.has(DIRTY | VALID) {
                outcome = WriteStart::Clean;
                return None;
            }
            if s.any(IO) {
                outcome = WriteStart::Busy;
                return None;
            }
            outcome = WriteStart::Started;
            Some((s.0 | WRITING) & !JUST_DIRTIED)
        });
        outcome
    }

    /// Ends a write I/O: clean if it was written and not dirtied again
    /// meanwhile. Returns whether waiters must be woken.
    pub fn end_write(&self, written: bool) -> bool {
        let old = self
            .update(|s| {
                let mut new = s.0 & !(WRITING | IO_WAITERS);
                if written && !s.any(JUST_DIRTIED) {
                    new &= !DIRTY;
                }
                Some(new)
            })
            .unwrap_or_else(|s| s);
        old.any(IO_WAITERS)
    }

    /// Records a change to the page (the caller holds it exclusively).
    pub fn mark_dirty(&self) {
        self.0.fetch_or(DIRTY | JUST_DIRTIED, Release);
    }

    // ---- waiting for I/O --------------------------------------------

    /// True if `done` holds now; otherwise sets `IO_WAITERS` (in the same
    /// compare-and-swap that found `done` false), so whoever next ends an
    /// I/O on this frame or returns its memory wakes the waiters. The
    /// caller registered with the frame's waiter slot before calling.
    pub fn done_or_wait(&self, done: impl Fn(State) -> bool) -> bool {
        let mut is_done = false;
        let _ = self.update(|s| {
            is_done = done(s);
            (!is_done && !s.any(IO_WAITERS)).then_some(s.0 | IO_WAITERS)
        });
        is_done
    }

    // ---- the content lock -------------------------------------------

    /// Takes the content lock shared if the page is valid and not lent;
    /// false (no lock taken) if it is not. Spins while it is exclusively
    /// held.
    pub fn lock_shared(&self) -> bool {
        let mut spins = 0u32;
        loop {
            let mut readable = true;
            let taken = self.update(|s| {
                readable = s.has(VALID) && !s.any(LENT);
                (readable && !s.any(EXCLUSIVE)).then_some(s.0 + SHARE_ONE)
            });
            match taken {
                Ok(_) => return true,
                Err(_) if !readable => return false,
                Err(_) => spin_wait(&mut spins),
            }
        }
    }

    pub fn unlock_shared(&self) {
        self.0.fetch_sub(SHARE_ONE, Release);
    }

    /// Takes the content lock exclusively if the page is valid and not
    /// lent; false (no lock taken) if it is not. Spins while others hold it.
    pub fn lock_exclusive(&self) -> bool {
        let mut spins = 0u32;
        loop {
            let mut readable = true;
            let taken = self.update(|s| {
                readable = s.has(VALID) && !s.any(LENT);
                (readable && !s.any(EXCLUSIVE | SHARES)).then_some(s.0 | EXCLUSIVE)
            });
            match taken {
                Ok(_) => return true,
                Err(_) if !readable => return false,
                Err(_) => spin_wait(&mut spins),
            }
        }
    }

    pub fn unlock_exclusive(&self) {
        self.0.fetch_and(!EXCLUSIVE, Release);
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn a_frame_goes_round_the_cycle() {
        let frame = FrameState::new();
        // Free: clock sweep claims it.
        assert_eq!(frame.sweep(false), Sweep::Claimed { dirty: false });
        assert!(frame.unmap_claimed());
        assert!(frame.pin_if_mapped().is_none(), "pinned while unmapped");
        frame.map();
        assert_eq!(frame.start_read(), ReadStart::Started);
        assert_eq!(frame.start_read(), ReadStart::Busy);
        assert!(!frame.lock_shared(), "locked while being read");
        // Ended before the memory came back: not valid.
        assert!(!frame.page_returned());
        assert!(!frame.end_read(true));
        assert!(frame.load().has(VALID | MAPPED));
        assert_eq!(frame.start_read(), ReadStart::Valid);
        let pinned = frame.pin_if_mapped().unwrap();
        assert_eq!(pinned.pins(), 2);
        assert!(frame.lock_shared() && frame.lock_shared());
        frame.unlock_shared();
        frame.unlock_shared();
        assert!(frame.lock_exclusive());
        frame.mark_dirty();
        frame.unlock_exclusive();
        frame.unpin();
        frame.unpin();
        // Dirty and used: aged first, then claimed dirty.
        while frame.sweep(false) == Sweep::Aged {}
        assert!(!frame.unmap_claimed(), "unmapped a dirty page");
        assert_eq!(frame.start_write(), WriteStart::Started);
        assert!(!frame.end_write(true));
        assert_eq!(frame.sweep(false), Sweep::Claimed { dirty: false });
        assert!(frame.unmap_claimed());
        assert_eq!(frame.load().pins(), 1);
    }

    #[test]
    fn waiters_are_woken_only_when_they_asked() {
        let frame = FrameState::new();
        let _ = frame.sweep(false);
        assert!(frame.unmap_claimed());
        frame.map();
        assert_eq!(frame.start_read(), ReadStart::Started);
        assert!(!frame.done_or_wait(|s| s.io_idle()));
        assert!(frame.load().has(IO_WAITERS));
        assert!(frame.page_returned(), "the waiter was not woken");
        assert!(!frame.end_read(true), "woken twice");
        assert!(frame.done_or_wait(|s| s.io_idle()));
        assert!(!frame.load().any(IO_WAITERS));
    }
}
