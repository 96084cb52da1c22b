//! Random sequences of operations give the same results on `MdSmgr` (with
//! tiny segments, so runs cross files all the time) as on the in-memory
//! model: same successes, same kinds of error with the same byte counts,
//! same bytes read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use std::mem::discriminant;

use proptest::prelude::*;
use smgr_api::testkit::{pattern_page, MemSmgr};
use smgr_api::{BlockSize, Error, ForkNumber, PageBuf, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

const BS: usize = 1024;
const MAIN: ForkNumber = ForkNumber::Main;

#[derive(Clone, Debug)]
enum Op {
    Extend { count: usize, tag: u32 },
    ExtendAt { delta: i32 },
    ZeroExtend { count: u32 },
    Write { block: u32, count: usize, tag: u32 },
    Read { block: u32, count: usize },
    Truncate { to: u32 },
    Prefetch { block: u32, count: u32 },
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..7, any::<u32>()).prop_map(|(count, tag)| Op::Extend { count, tag }),
        (-3i32..4).prop_map(|delta| Op::ExtendAt { delta }),
        (0u32..10).prop_map(|count| Op::ZeroExtend { count }),
        (0u32..30, 1usize..6, any::<u32>()).prop_map(|(block, count, tag)| Op::Write {
            block,
            count,
            tag
        }),
        (0u32..30, 0usize..8).prop_map(|(block, count)| Op::Read { block, count }),
        (0u32..30).prop_map(|to| Op::Truncate { to }),
        (0u32..30, 0u32..8).prop_map(|(block, count)| Op::Prefetch { block, count }),
        Just(Op::Sync),
    ]
}

/// What an operation returned, comparable across backends.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok(Vec<Vec<u8>>),
    Err(std::mem::Discriminant<Error>, Option<(u64, u64)>),
}

fn outcome<T>(result: smgr_api::Result<T>, data: impl FnOnce(T) -> Vec<Vec<u8>>) -> Outcome {
    match result {
        Ok(value) => Outcome::Ok(data(value)),
        Err(err) => {
            let counts = match &err {
                Error::ShortRead { read, expected, .. } => Some((*read, *expected)),
                Error::WrongBlock { block, nblocks, .. } => {
                    Some((u64::from(*block), u64::from(*nblocks)))
                }
                _ => None,
            };
            Outcome::Err(discriminant(&err), counts)
        }
    }
}

fn pages(tag: u32, first: u32, count: usize) -> Vec<PageBuf> {
    (0..count as u32)
        .map(|i| PageBuf::copy_from(&pattern_page(BS, tag, first + i)))
        .collect()
}

async fn apply(smgr: &dyn Smgr, rel: RelFileLocator, op: &Op) -> Outcome {
    let bytes = |bufs: Vec<PageBuf>| bufs.iter().map(|b| b.to_vec()).collect();
    let nblocks = smgr.nblocks(rel, MAIN).await.unwrap();
    match *op {
        Op::Extend { count, tag } => outcome(
            smgr.extend(rel, MAIN, nblocks, pages(tag, nblocks, count))
                .await,
            |_| vec![],
        ),
        Op::ExtendAt { delta } => {
            let at = (i64::from(nblocks) + i64::from(delta)).max(0) as u32;
            outcome(
                smgr.extend(rel, MAIN, at, pages(9, at, 1)).await,
                |_| vec![],
            )
        }
        Op::ZeroExtend { count } => outcome(
            smgr.zero_extend(rel, MAIN, nblocks, count).await,
            |_| vec![],
        ),
        Op::Write { block, count, tag } => outcome(
            smgr.writev(rel, MAIN, block, pages(tag, block, count))
                .await,
            |_| vec![],
        ),
        Op::Read { block, count } => {
            let bs = BlockSize::new(BS as u32).unwrap();
            outcome(
                smgr.readv(rel, MAIN, block, PageBuf::zeroed_blocks(bs, count))
                    .await,
                bytes,
            )
        }
        Op::Truncate { to } => outcome(smgr.truncate(rel, MAIN, to).await, |_| vec![]),
        Op::Prefetch { block, count } => {
            smgr.prefetch(rel, MAIN, block, count).await;
            Outcome::Ok(vec![])
        }
        Op::Sync => outcome(smgr.immedsync(rel, MAIN).await, |_| vec![]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn md_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let bs = BlockSize::new(BS as u32).unwrap();
            let md = MdSmgr::open(dir.path(), MdOptions::new(bs, 3)).unwrap();
            let model = MemSmgr::new(bs);
            let rel = RelFileLocator::in_database(5, 1400);
            md.create(rel, MAIN).await.unwrap();
            model.create(rel, MAIN).await.unwrap();
            for (i, op) in ops.iter().enumerate() {
                let got = apply(&md, rel, op).await;
                let want = apply(&model, rel, op).await;
                prop_assert_eq!(got, want, "step {} {:?}", i, op);
                prop_assert_eq!(md.nblocks(rel, MAIN).await.unwrap(), model.nblocks(rel, MAIN).await.unwrap());
            }
            // The files are well-formed at the end: all but the last
            // segment full.
            let n = md.nblocks(rel, MAIN).await.unwrap();
            let all = apply(&md, rel, &Op::Read { block: 0, count: n as usize }).await;
            prop_assert_eq!(all, apply(&model, rel, &Op::Read { block: 0, count: n as usize }).await);
            Ok(())
        })?;
    }
}
