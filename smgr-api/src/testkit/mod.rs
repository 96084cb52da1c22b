//! Test support: the conformance kit every `Smgr` must pass, an in-memory
//! `Smgr` for unit tests, and a fault-injecting wrapper ([`FaultySmgr`]).
//! Enabled by the `testkit` feature.
//!
//! The kit is the specification of the [`Smgr`] trait in executable form.
//! A backend's own tests construct it and call [`run_all`] (the kit
//! documents which segment size it assumes, so boundary cases land on real
//! segment boundaries):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use smgr_api::testkit::{run_all, Kit, MemSmgr};
//! use smgr_api::BlockSize;
//!
//! let smgr = Arc::new(MemSmgr::new(BlockSize::new(1024).unwrap()));
//! run_all(&Kit::new(smgr, 4)).await;
//! # }
//! ```
//!
//! Every check creates its own relations (fresh relation numbers from one
//! kit), so checks can share a backend, and a failed expectation panics
//! with the operation and the relation involved.

// The kit is test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod arena;
mod checks;
mod faulty;
mod mem;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub use arena::LendingArena;
pub use checks::*;
pub use faulty::{Fault, FaultOp, FaultySmgr, ReadCall};
pub use mem::MemSmgr;

use crate::{BlockNumber, ForkNumber, PageBuf, RelFileLocator, Smgr};

/// What the kit runs against: a backend and the segment size it was built
/// with, plus a source of fresh relation numbers.
#[derive(Debug)]
pub struct Kit {
    /// The backend under test.
    pub smgr: Arc<dyn Smgr>,
    /// Blocks per segment of the backend (for backends without segments,
    /// any small number: the boundary checks then test ordinary runs).
    pub segment_blocks: BlockNumber,
    /// Database OID of the relations the kit creates.
    pub db_oid: u32,
    next_rel: AtomicU32,
}

impl Kit {
    /// A kit for `smgr`, whose segments hold `segment_blocks` blocks.
    pub fn new(smgr: Arc<dyn Smgr>, segment_blocks: BlockNumber) -> Self {
        Kit {
            smgr,
            segment_blocks,
            db_oid: 5,
            next_rel: AtomicU32::new(20_000),
        }
    }

    /// Relations get numbers from `first`; use different ranges when kits
    /// share storage (one bucket for several test runs).
    pub fn with_first_rel_number(mut self, first: u32) -> Self {
        self.next_rel = AtomicU32::new(first.max(1));
        self
    }

    /// A relation number no other check of this kit uses.
    pub fn fresh_rel(&self) -> RelFileLocator {
        RelFileLocator::in_database(self.db_oid, self.next_rel.fetch_add(1, Ordering::Relaxed))
    }

    /// A fresh relation with its main fork created.
    pub async fn created_rel(&self) -> RelFileLocator {
        let rel = self.fresh_rel();
        self.smgr
            .create(rel, ForkNumber::Main)
            .await
            .unwrap_or_else(|e| panic!("create {rel}: {e}"));
        rel
    }

    /// The page the kit writes as block `blkno` under `tag`: every byte
    /// depends on both, so a block read from the wrong place or a stale
    /// version never matches.
    pub fn page(&self, tag: u32, blkno: BlockNumber) -> Vec<u8> {
        pattern_page(self.smgr.block_size().bytes(), tag, blkno)
    }

    /// Appends blocks `from .. to` with [`page`](Self::page) contents in
    /// one `extend` call.
    pub async fn extend_pattern(
        &self,
        rel: RelFileLocator,
        tag: u32,
        from: BlockNumber,
        to: BlockNumber,
    ) {
        let bufs = (from..to)
            .map(|b| PageBuf::copy_from(&self.page(tag, b)))
            .collect();
        self.smgr
            .extend(rel, ForkNumber::Main, from, bufs)
            .await
            .unwrap_or_else(|e| panic!("extend {rel} blocks {from}..{to}: {e}"));
    }

    /// Reads blocks `from .. to` in one `readv` and checks each against
    /// the pattern `tag` (`None`: all zeros).
    pub async fn expect_blocks(
        &self,
        rel: RelFileLocator,
        tag: Option<u32>,
        from: BlockNumber,
        to: BlockNumber,
    ) {
        let bs = self.smgr.block_size();
        let bufs = self
            .smgr
            .readv(
                rel,
                ForkNumber::Main,
                from,
                PageBuf::zeroed_blocks(bs, (to - from) as usize),
            )
            .await
            .unwrap_or_else(|e| panic!("readv {rel} blocks {from}..{to}: {e}"));
        assert_eq!(
            bufs.len(),
            (to - from) as usize,
            "readv {rel} returned a wrong buffer count"
        );
        for (i, buf) in bufs.iter().enumerate() {
            let blkno = from + i as BlockNumber;
            let want = match tag {
                Some(tag) => self.page(tag, blkno),
                None => vec![0u8; bs.bytes()],
            };
            assert!(
                **buf == *want,
                "{rel} block {blkno}: wrong contents (tag {tag:?})"
            );
        }
    }

    /// The fork's size, which must be `want`.
    pub async fn expect_nblocks(&self, rel: RelFileLocator, want: BlockNumber) {
        let got = self
            .smgr
            .nblocks(rel, ForkNumber::Main)
            .await
            .unwrap_or_else(|e| panic!("nblocks {rel}: {e}"));
        assert_eq!(got, want, "nblocks of {rel}");
    }
}

/// About 10% of blocks `0..nblocks`, ascending with irregular gaps (the
/// pattern a bitmap heap scan asks for), the same for the same `seed`.
pub fn bitmap_sample(nblocks: BlockNumber, seed: u64) -> Vec<BlockNumber> {
    let mut state = seed | 1;
    (0..nblocks)
        .filter(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 10 == 0
        })
        .collect()
}

/// A page of `len` bytes whose every byte depends on `tag` and `blkno`.
pub fn pattern_page(len: usize, tag: u32, blkno: BlockNumber) -> Vec<u8> {
    let mut state = (u64::from(tag) << 32 | u64::from(blkno)) ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            // xorshift64*: cheap and never constant.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}
