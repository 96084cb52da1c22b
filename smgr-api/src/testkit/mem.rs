//! An in-memory `Smgr`, for unit tests of the layers above.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::{
    block_run_end, BlockNumber, BlockSize, Error, ForkNumber, PageBuf, PathNaming, RelFileLocator,
    Result, Smgr,
};

/// A storage manager that keeps every fork in a `Vec<u8>` in memory.
///
/// It follows the trait's contract exactly (the conformance kit passes) but
/// has no segments, no durability and no I/O; it is meant for unit tests of
/// code above the trait. Integration tests use real files and a real store.
#[derive(Debug)]
pub struct MemSmgr {
    block_size: BlockSize,
    naming: PathNaming,
    forks: Mutex<HashMap<(RelFileLocator, ForkNumber), Vec<u8>>>,
}

impl MemSmgr {
    /// An empty in-memory storage manager with the given block size.
    pub fn new(block_size: BlockSize) -> Self {
        MemSmgr {
            block_size,
            naming: PathNaming::default(),
            forks: Mutex::new(HashMap::new()),
        }
    }

    fn forks(&self) -> MutexGuard<'_, HashMap<(RelFileLocator, ForkNumber), Vec<u8>>> {
        // A panic while holding the lock cannot leave a fork half-updated
        // in a way later tests care about; keep going.
        self.forks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn path(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<String> {
        self.naming.relpath(rel, fork)
    }

    fn check_bufs(&self, path: &str, bufs: &[PageBuf]) -> Result<()> {
        let expected = self.block_size.bytes();
        match bufs.iter().position(|b| b.len() != expected) {
            Some(index) => Err(Error::BufferSize {
                path: path.to_owned(),
                index,
                actual: bufs[index].len(),
                expected,
            }),
            None => Ok(()),
        }
    }

    fn nblocks_of(&self, data: &[u8]) -> BlockNumber {
        (data.len() / self.block_size.bytes()) as BlockNumber
    }
}

#[async_trait]
impl Smgr for MemSmgr {
    fn block_size(&self) -> BlockSize {
        self.block_size
    }

    async fn exists(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool> {
        self.path(rel, fork)?;
        Ok(self.forks().contains_key(&(rel, fork)))
    }

    async fn create(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        let path = self.path(rel, fork)?;
        let mut forks = self.forks();
        if forks.contains_key(&(rel, fork)) {
            return Err(Error::AlreadyExists { path });
        }
        forks.insert((rel, fork), Vec::new());
        Ok(())
    }

    async fn unlink(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        self.path(rel, fork)?;
        self.forks().remove(&(rel, fork));
        Ok(())
    }

    async fn nblocks(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<BlockNumber> {
        let path = self.path(rel, fork)?;
        match self.forks().get(&(rel, fork)) {
            Some(data) => Ok(self.nblocks_of(data)),
            None => Err(Error::NotFound { path }),
        }
    }

    async fn readv(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        mut bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        let path = self.path(rel, fork)?;
        block_run_end(&path, blocknum, bufs.len())?;
        self.check_bufs(&path, &bufs)?;
        if bufs.is_empty() {
            return Ok(bufs);
        }
        let forks = self.forks();
        let data = forks
            .get(&(rel, fork))
            .ok_or(Error::NotFound { path: path.clone() })?;
        let bs = self.block_size.bytes();
        let start = blocknum as usize * bs;
        let wanted = bufs.len() * bs;
        let available = data.len().saturating_sub(start).min(wanted);
        if available < wanted {
            return Err(Error::ShortRead {
                path,
                first: blocknum,
                last: blocknum + (bufs.len() as BlockNumber - 1),
                read: available as u64,
                expected: wanted as u64,
            });
        }
        for (i, buf) in bufs.iter_mut().enumerate() {
            buf.copy_from_slice(&data[start + i * bs..start + (i + 1) * bs]);
        }
        Ok(bufs)
    }

    async fn writev(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        let path = self.path(rel, fork)?;
        let end = block_run_end(&path, blocknum, bufs.len())?;
        self.check_bufs(&path, &bufs)?;
        let mut forks = self.forks();
        let nblocks = match forks.get(&(rel, fork)) {
            Some(data) => self.nblocks_of(data),
            None => return Err(Error::NotFound { path }),
        };
        if end > u64::from(nblocks) {
            return Err(Error::WrongBlock {
                op: "write",
                path,
                block: blocknum,
                nblocks,
            });
        }
        if let Some(data) = forks.get_mut(&(rel, fork)) {
            let bs = self.block_size.bytes();
            for (i, buf) in bufs.iter().enumerate() {
                let at = (blocknum as usize + i) * bs;
                data[at..at + bs].copy_from_slice(buf);
            }
        }
        Ok(bufs)
    }

    async fn extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        bufs: Vec<PageBuf>,
    ) -> Result<Vec<PageBuf>> {
        let path = self.path(rel, fork)?;
        block_run_end(&path, blocknum, bufs.len())?;
        self.check_bufs(&path, &bufs)?;
        let mut forks = self.forks();
        let data = forks
            .get_mut(&(rel, fork))
            .ok_or(Error::NotFound { path: path.clone() })?;
        let nblocks = self.nblocks_of(data);
        if blocknum != nblocks {
            return Err(Error::WrongBlock {
                op: "extend",
                path,
                block: blocknum,
                nblocks,
            });
        }
        for buf in &bufs {
            data.extend_from_slice(buf);
        }
        Ok(bufs)
    }

    async fn zero_extend(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        let path = self.path(rel, fork)?;
        block_run_end(&path, blocknum, nblocks as usize)?;
        let mut forks = self.forks();
        let data = forks
            .get_mut(&(rel, fork))
            .ok_or(Error::NotFound { path: path.clone() })?;
        let current = self.nblocks_of(data);
        if blocknum != current {
            return Err(Error::WrongBlock {
                op: "extend",
                path,
                block: blocknum,
                nblocks: current,
            });
        }
        let new_len = (blocknum as usize + nblocks as usize) * self.block_size.bytes();
        data.resize(new_len, 0);
        Ok(())
    }

    async fn truncate(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: BlockNumber,
    ) -> Result<()> {
        let path = self.path(rel, fork)?;
        let mut forks = self.forks();
        let data = forks
            .get_mut(&(rel, fork))
            .ok_or(Error::NotFound { path: path.clone() })?;
        let current = self.nblocks_of(data);
        if nblocks > current {
            return Err(Error::WrongBlock {
                op: "truncate",
                path,
                block: nblocks,
                nblocks: current,
            });
        }
        data.truncate(nblocks as usize * self.block_size.bytes());
        Ok(())
    }

    async fn prefetch(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        _blocknum: BlockNumber,
        nblocks: BlockNumber,
    ) -> bool {
        nblocks > 0 && self.forks().contains_key(&(rel, fork))
    }

    async fn immedsync(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<()> {
        let path = self.path(rel, fork)?;
        if self.forks().contains_key(&(rel, fork)) {
            Ok(())
        } else {
            Err(Error::NotFound { path })
        }
    }
}
