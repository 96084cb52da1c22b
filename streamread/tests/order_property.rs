//! For arbitrary block sequences (repeats, descending runs, jumps) and
//! settings, a stream returns exactly the source's blocks in the source's
//! order, each with the right contents, through a pool small enough to
//! evict.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::*;
use proptest::prelude::*;
use streamread::{ReadStream, StreamConfig, StreamFlags};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn streams_preserve_order(
        blocks in proptest::collection::vec(0u32..64, 0..120),
        max_ios in 0usize..6,
        combine in 1usize..9,
        frames in 40usize..100,
        full in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (smgr, rel) = relation(dir.path(), 64, 2).await;
            let pool = pool(smgr, frames);
            let config = StreamConfig::default().max_ios(max_ios).io_combine_bytes(combine * BS);
            let flags = StreamFlags { full, ..StreamFlags::default() };
            let mut stream = ReadStream::from_blocks(&pool, rel, MAIN, config, flags, blocks.clone());
            let seen = drain(&mut stream, 2).await;
            prop_assert_eq!(seen, blocks);
            Ok(())
        })?;
    }
}
