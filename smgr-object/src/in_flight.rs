//! The cap on bytes of GETs in flight: a GET takes room for its range (in
//! KiB, rounded up) before it is issued and gives it back when its bytes
//! have arrived, so however many streams read at once, bodies still
//! arriving stay under the cap. One cap serves the whole process unless a
//! backend is given its own; the peak is kept for [`crate::ObjectStats`].
//! (Bodies that have arrived and wait in read-ahead windows are bounded
//! per backend by `ObjectOptions::prefetch_cache_bytes`.)

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The cap every backend of a process shares unless told otherwise.
pub const DEFAULT_BYTES_IN_FLIGHT: u64 = 256 << 20;

/// Room for bytes of GETs in flight, shared by the backends given it
/// (cheap to clone: clones share the room). By default every
/// [`ObjectSmgr`](crate::ObjectSmgr) of a process shares
/// [`BytesInFlight::process`], so memory in bodies still arriving stays
/// bounded however many backends and streams read at once. Requests wait
/// their turn first come, first served: a small read may wait behind
/// read-ahead GETs issued before it.
#[derive(Clone)]
pub struct BytesInFlight(Arc<Room>);

struct Room {
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
    of: &'a Room,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.of.now.fetch_sub(self.bytes, Relaxed);
    }
}

impl BytesInFlight {
    /// A cap of `bytes` of its own.
    pub fn new(bytes: u64) -> Self {
        let cap_kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 4);
        BytesInFlight(Arc::new(Room {
            room: Semaphore::new(cap_kib as usize),
            cap_kib,
            now: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }))
    }

    /// The process-wide cap ([`DEFAULT_BYTES_IN_FLIGHT`], 256 MiB).
    pub fn process() -> Self {
        static PROCESS: OnceLock<BytesInFlight> = OnceLock::new();
        PROCESS
            .get_or_init(|| BytesInFlight::new(DEFAULT_BYTES_IN_FLIGHT))
            .clone()
    }

    /// The cap, in bytes.
    pub fn cap(&self) -> u64 {
        u64::from(self.0.cap_kib) * 1024
    }

    /// Bytes in flight now.
    pub fn now(&self) -> u64 {
        self.0.now.load(Relaxed)
    }

    /// The most bytes that were in flight at once.
    pub fn peak(&self) -> u64 {
        self.0.peak.load(Relaxed)
    }

    /// Waits for room for `bytes` (all of the cap, for a GET larger).
    pub(crate) async fn hold(&self, bytes: u64) -> Held<'_> {
        let room = &*self.0;
        let kib = u32::try_from(bytes.div_ceil(1024).max(1))
            .unwrap_or(u32::MAX)
            .min(room.cap_kib);
        let permit = room.room.acquire_many(kib).await.ok();
        let now = room.now.fetch_add(bytes, Relaxed) + bytes;
        room.peak.fetch_max(now, Relaxed);
        Held {
            _permit: permit,
            bytes,
            of: room,
        }
    }
}

impl fmt::Debug for BytesInFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BytesInFlight")
            .field("cap", &self.cap())
            .field("now", &self.now())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_the_room_and_the_process_cap_is_one() {
        let cap = BytesInFlight::new(8192);
        let other = cap.clone();
        let held = cap.hold(8192).await;
        assert_eq!(other.now(), 8192);
        // No room left for the other holder until the first lets go.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), other.hold(1));
        assert!(waiting.await.is_err());
        drop(held);
        assert_eq!(other.now(), 0);
        assert_eq!(other.peak(), 8192);
        let (a, b) = (BytesInFlight::process(), BytesInFlight::process());
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a.cap(), DEFAULT_BYTES_IN_FLIGHT);
    }
}
