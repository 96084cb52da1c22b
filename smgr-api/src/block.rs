//! Block numbers and block sizes.

use crate::Error;

/// The number of a block within one fork of a relation, counted from 0 across
/// all of its segment files (PostgreSQL's `BlockNumber`).
pub type BlockNumber = u32;

/// The reserved "no block" value (PostgreSQL's `InvalidBlockNumber`). It is
/// never the number of a stored block.
pub const INVALID_BLOCK_NUMBER: BlockNumber = u32::MAX;

/// The largest valid block number (PostgreSQL's `MaxBlockNumber`). A fork can
/// hold at most `MAX_BLOCK_NUMBER + 1` blocks, so `nblocks` fits in a `u32`.
pub const MAX_BLOCK_NUMBER: BlockNumber = u32::MAX - 1;

/// Checks that the run `first .. first + count` consists of valid block
/// numbers and returns its end (exclusive), computed without overflow.
///
/// `what` and `path` only feed the error message.
pub fn block_run_end(path: &str, first: BlockNumber, count: usize) -> Result<u64, Error> {
    let end = u64::from(first) + count as u64;
    if first == INVALID_BLOCK_NUMBER || end > u64::from(MAX_BLOCK_NUMBER) + 1 {
        return Err(Error::BlockOutOfRange {
            path: path.to_owned(),
            first,
            count: count as u64,
        });
    }
    Ok(end)
}

/// The size of one block (page) in bytes: a power of two from 1 KiB to
/// 32 KiB, chosen once when a storage manager is constructed (PostgreSQL's
/// compile-time `BLCKSZ`). The default is 8 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockSize(u32);

impl BlockSize {
    /// PostgreSQL's default block size, 8 KiB.
    pub const DEFAULT: BlockSize = BlockSize(8192);
    /// The smallest supported block size, 1 KiB.
    pub const MIN: BlockSize = BlockSize(1024);
    /// The largest supported block size, 32 KiB.
    pub const MAX: BlockSize = BlockSize(32768);

    /// Returns the block size of `bytes`, or an error unless it is a power
    /// of two between 1 KiB and 32 KiB.
    pub fn new(bytes: u32) -> Result<Self, Error> {
        if bytes.is_power_of_two() && (Self::MIN.0..=Self::MAX.0).contains(&bytes) {
            Ok(BlockSize(bytes))
        } else {
            Err(Error::InvalidBlockSize {
                bytes: u64::from(bytes),
            })
        }
    }

    /// The size in bytes.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The size in bytes, as a `usize` for slicing.
    pub const fn bytes(self) -> usize {
        self.0 as usize
    }
}

impl Default for BlockSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for BlockSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_accepted_are_powers_of_two_in_range() {
        for shift in 0..20 {
            let bytes = 1u32 << shift;
            let ok = (1024..=32768).contains(&bytes);
            assert_eq!(BlockSize::new(bytes).is_ok(), ok, "{bytes}");
        }
        assert!(BlockSize::new(8193).is_err());
        assert!(BlockSize::new(0).is_err());
        assert_eq!(BlockSize::default().get(), 8192);
    }

    #[test]
    fn block_runs_at_the_top_of_the_range() {
        assert_eq!(
            block_run_end("r", MAX_BLOCK_NUMBER, 1).unwrap(),
            u64::from(u32::MAX)
        );
        assert!(block_run_end("r", MAX_BLOCK_NUMBER, 2).is_err());
        assert!(block_run_end("r", INVALID_BLOCK_NUMBER, 0).is_err());
        assert!(block_run_end("r", INVALID_BLOCK_NUMBER, 1).is_err());
        assert_eq!(block_run_end("r", 0, 0).unwrap(), 0);
    }
}
