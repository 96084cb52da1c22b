//! Buffer access strategies: a ring of frames for bulk reads.

/// A private ring of frames that a bulk operation reuses instead of taking
/// frames from the whole pool (PostgreSQL's `BAS_BULKREAD`), so one large
/// scan cannot push every other page out of the pool.
///
/// When a read needs a frame, the strategy first offers the ring's next
/// frame, if nobody else is using it and it is clean; otherwise a frame
/// comes from the normal clock sweep and joins the ring.
#[derive(Debug)]
pub struct BufferAccessStrategy {
    ring: Vec<Option<u32>>,
    current: usize,
}

impl BufferAccessStrategy {
    /// A ring of `frames` frames for bulk reads (PostgreSQL uses 256 KiB:
    /// 32 frames of 8 KiB). At least one frame.
    pub fn bulk_read(frames: usize) -> Self {
        BufferAccessStrategy {
            ring: vec![None; frames.max(1)],
            current: 0,
        }
    }

    /// Frames in the ring.
    pub fn ring_size(&self) -> usize {
        self.ring.len()
    }

    /// Advances to the next slot and returns the frame there, if any.
    pub(crate) fn next_candidate(&mut self) -> Option<u32> {
        self.current = (self.current + 1) % self.ring.len();
        self.ring[self.current]
    }

    /// Puts `frame` in the current slot.
    pub(crate) fn remember(&mut self, frame: u32) {
        self.ring[self.current] = Some(frame);
    }
}
