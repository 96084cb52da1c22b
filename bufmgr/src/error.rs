//! The buffer manager's error type.

/// A `Result` with the buffer manager's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the buffer pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage manager failed: I/O, a short read, a corrupt page (with
    /// the relation path and block), a missing relation.
    #[error(transparent)]
    Storage(#[from] smgr_api::Error),

    /// Every frame is pinned (or busy with I/O): nothing can be evicted.
    /// PostgreSQL's "no unpinned buffers available". Pinning fewer buffers
    /// at once, or a larger pool, avoids it.
    #[error("no unpinned buffers available: all {frames} frames of the pool are pinned")]
    NoUnpinnedBuffers {
        /// Frames in the pool.
        frames: usize,
    },

    /// The buffer's page has not been read yet (a prepared miss whose read
    /// was not completed), so its contents cannot be used.
    #[error("buffer for {tag} is not valid: its read was not completed")]
    NotValid {
        /// The page, as `base/5/16396 block 7`.
        tag: String,
    },

    /// Buffers passed to `complete_read` that are not consecutive blocks
    /// of one fork.
    #[error("buffers passed to complete_read must be consecutive blocks of one fork: {detail}")]
    NotARun {
        /// What is wrong.
        detail: String,
    },

    /// A pool configuration out of range.
    #[error("invalid pool setting {name} = {value}: {reason}")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: u64,
        /// What is allowed.
        reason: &'static str,
    },

    /// The pool's memory could not be mapped.
    #[error("could not map {bytes} bytes of buffer pool memory: {source}")]
    Memory {
        /// Bytes asked for.
        bytes: usize,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the same call may help: only a transient storage
    /// error. `NoUnpinnedBuffers` is not: it clears only when pins are
    /// dropped, possibly the caller's own.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage(err) => err.is_retryable(),
            _ => false,
        }
    }
}
