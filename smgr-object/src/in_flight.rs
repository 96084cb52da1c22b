//! The cap on bytes of GETs in flight through one backend: a GET takes
//! room for its range (in KiB, rounded up) before it is issued and gives
//! it back when its bytes have arrived, so however many streams read at
//! once, response bodies in memory stay under the cap. The peak is kept
//! for [`crate::ObjectStats`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Room for bytes in flight.
#[derive(Debug)]
pub(crate) struct InFlightBytes {
    room: Semaphore,
    /// The cap, in KiB.
    cap_kib: u32,
    now: AtomicU64,
    peak: AtomicU64,
}

/// Room held by one GET.
pub(crate) struct Held<'a> {
    /// `None` only if the semaphore were closed, which nothing does.
    _permit: Option<SemaphorePermit<'a>>,
    bytes: u64,
    of: &'a InFlightBytes,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.of.now.fetch_sub(self.bytes, Relaxed);
    }
}

impl InFlightBytes {
    pub fn new(cap: u64) -> Self {
        let cap_kib = u32::try_from(cap.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 4);
        InFlightBytes {
            room: Semaphore::new(cap_kib as usize),
            cap_kib,
            now: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    /// Waits for room for `bytes` (all of the cap, for a GET larger).
    pub async fn hold(&self, bytes: u64) -> Held<'_> {
        let kib = u32::try_from(bytes.div_ceil(1024).max(1))
            .unwrap_or(u32::MAX)
            .min(self.cap_kib);
        let permit = self.room.acquire_many(kib).await.ok();
        let now = self.now.fetch_add(bytes, Relaxed) + bytes;
        self.peak.fetch_max(now, Relaxed);
        Held {
            _permit: permit,
            bytes,
            of: self,
        }
    }

    /// The most bytes that were in flight at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }
}
