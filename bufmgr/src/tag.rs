//! The identity of a buffered page.

use std::fmt;

use smgr_api::{BlockNumber, ForkNumber, RelFileLocator};

/// Which page a buffer holds (PostgreSQL's `BufferTag`): relation, fork and
/// block. Displays as PostgreSQL names the page in its messages:
/// `base/5/16396_fsm block 7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferTag {
    /// The relation.
    pub rel: RelFileLocator,
    /// The fork.
    pub fork: ForkNumber,
    /// The block within the fork.
    pub block: BlockNumber,
}

impl BufferTag {
    /// The tag of `block` of `fork` of `rel`.
    pub const fn new(rel: RelFileLocator, fork: ForkNumber, block: BlockNumber) -> Self {
        BufferTag { rel, fork, block }
    }
}

impl fmt::Display for BufferTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} block {}",
            self.rel,
            self.fork.file_suffix(),
            self.block
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_postgres() {
        let tag = BufferTag::new(RelFileLocator::in_database(5, 16396), ForkNumber::Fsm, 7);
        assert_eq!(tag.to_string(), "base/5/16396_fsm block 7");
    }
}
