//! The one error type of the storage layer.

use std::io;

use crate::{BlockNumber, Oid, PageCorruption};

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a storage operation.
///
/// Variants are few and grouped by what a caller does about them; their
/// fields name what was involved (relation or file path, block numbers, byte
/// counts), and their messages read like PostgreSQL's, so a log line can be
/// matched with `pg_checksums` output. `path` fields hold paths relative to
/// the backend's root (`base/5/16396_fsm.1`), never credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The relation fork does not exist.
    #[error("relation {path} does not exist")]
    NotFound {
        /// Path of the fork (its first segment).
        path: String,
    },

    /// `create` of a fork that already exists.
    #[error("relation {path} already exists")]
    AlreadyExists {
        /// Path of the fork.
        path: String,
    },

    /// Fewer bytes were read than asked for: the blocks lie (partly) beyond
    /// the end of the relation, or a file is shorter than it must be.
    #[error(
        "could not read blocks {first}..{last} in file \"{path}\": read only {read} of {expected} bytes"
    )]
    ShortRead {
        /// The segment file (or object) read.
        path: String,
        /// First block of the read (absolute in the fork).
        first: BlockNumber,
        /// Last block of the read, inclusive.
        last: BlockNumber,
        /// Bytes actually read.
        read: u64,
        /// Bytes asked for.
        expected: u64,
    },

    /// A write or extend aimed at blocks that are not where the operation
    /// allows: `writev` past the end, `extend` anywhere but at the end,
    /// `truncate` to more blocks than there are.
    #[error("cannot {op} block {block} of relation {path}: it has {nblocks} blocks")]
    WrongBlock {
        /// The operation refused (`write`, `extend`, `truncate`).
        op: &'static str,
        /// Path of the fork.
        path: String,
        /// The block asked for.
        block: BlockNumber,
        /// The fork's current size in blocks.
        nblocks: BlockNumber,
    },

    /// The run of blocks would reach [`INVALID_BLOCK_NUMBER`] or beyond.
    ///
    /// [`INVALID_BLOCK_NUMBER`]: crate::INVALID_BLOCK_NUMBER
    #[error(
        "blocks {first}+{count} of relation {path} exceed the largest block number {max}",
        max = crate::MAX_BLOCK_NUMBER
    )]
    BlockOutOfRange {
        /// Path of the fork.
        path: String,
        /// First block of the run.
        first: BlockNumber,
        /// Number of blocks in the run.
        count: u64,
    },

    /// A buffer handed to an I/O is not exactly one block long.
    #[error(
        "buffer {index} for relation {path} is {actual} bytes, expected one block of {expected}"
    )]
    BufferSize {
        /// Path of the fork.
        path: String,
        /// Position of the buffer in the vector passed.
        index: usize,
        /// Its length.
        actual: usize,
        /// The block size.
        expected: usize,
    },

    /// A page failed verification (checksum or header).
    #[error("invalid page in block {block} of relation {path}: {detail}")]
    CorruptPage {
        /// Path of the fork.
        path: String,
        /// Absolute block number in the fork.
        block: BlockNumber,
        /// What is wrong with it.
        detail: PageCorruption,
    },

    /// The files of a relation do not have the shape they must have: a
    /// segment longer than a segment, or a short segment followed by others.
    #[error(
        "corrupt relation {path}: segment {segno} holds {segment_blocks_found} blocks{detail}"
    )]
    CorruptSegment {
        /// Path of the offending segment file.
        path: String,
        /// Its segment number.
        segno: u32,
        /// How many blocks it holds.
        segment_blocks_found: u64,
        /// Why that is wrong.
        detail: &'static str,
    },

    /// An operating-system or store error, with what was being done.
    #[error("could not {op} \"{path}\": {source}")]
    Io {
        /// The operation (`open`, `read`, `fsync`…).
        op: &'static str,
        /// The file or key involved.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The stored object changed underneath the operation: another writer
    /// replaced it (a conditional put failed), or it changed between the
    /// ranged reads of one request. Nothing was written or returned; the
    /// caller may re-read and try again.
    #[error("conflict on {path}: {detail}")]
    Conflict {
        /// The object key or file.
        path: String,
        /// What changed.
        detail: &'static str,
    },

    /// A write to a backend opened read-only.
    #[error("cannot {op} relation {path}: the storage manager is read-only")]
    ReadOnly {
        /// The operation refused.
        op: &'static str,
        /// Path of the fork.
        path: String,
    },

    /// A relation path that is not one PostgreSQL would write.
    #[error("invalid relation path {input:?}: {reason}")]
    InvalidPath {
        /// The text that failed to parse.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A `RelFileLocator` that names no possible relation.
    #[error("invalid relation {spc_oid}/{db_oid}/{rel_number}: {reason}")]
    InvalidLocator {
        /// Tablespace OID.
        spc_oid: Oid,
        /// Database OID.
        db_oid: Oid,
        /// Relation number.
        rel_number: Oid,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A block size that is not a power of two from 1 KiB to 32 KiB.
    #[error("invalid block size {bytes}: must be a power of two from 1024 to 32768")]
    InvalidBlockSize {
        /// The size asked for.
        bytes: u64,
    },

    /// A stored object is not in the format it claims: a compressed
    /// segment whose seek table does not add up, or that has none.
    #[error("corrupt object {key}: {detail}")]
    CorruptObject {
        /// The object's key.
        key: String,
        /// What is wrong.
        detail: String,
    },

    /// One frame of a compressed object does not decompress, decompresses
    /// to another size than its seek table says, or fails its checksum:
    /// the blocks it holds are damaged, the object's other frames are not.
    #[error("corrupt object {key}: frame {frame} (blocks {first_block}..={last_block}) {detail}")]
    CorruptFrame {
        /// The object's key.
        key: String,
        /// The frame's index in the object.
        frame: usize,
        /// The first and last block (of the fork) the frame holds.
        first_block: u64,
        /// See `first_block`.
        last_block: u64,
        /// What is wrong.
        detail: String,
    },

    /// A configuration value out of its range.
    #[error("invalid setting {name} = {value}: {reason}")]
    InvalidSetting {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: u64,
        /// The allowed range.
        reason: &'static str,
    },
}

impl Error {
    /// Whether retrying the same operation may succeed: true only for
    /// transient operating-system conditions (interrupted, timed out, would
    /// block), never for missing relations, corruption or bad arguments.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    /// Whether the stored bytes of the blocks read are damaged themselves
    /// ([`Error::CorruptFrame`]): a problem of those pages, which a read
    /// that zeroes damaged pages (PostgreSQL's `zero_damaged_pages`) may
    /// replace by zeros. Not a failed, refused or misdirected I/O, and not
    /// a damaged object as a whole (a bad seek table says nothing about
    /// which blocks exist).
    pub fn is_damaged_data(&self) -> bool {
        matches!(self, Error::CorruptFrame { .. })
    }

    /// Wraps an `io::Error` with the operation and file it came from.
    pub fn io(op: &'static str, path: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
