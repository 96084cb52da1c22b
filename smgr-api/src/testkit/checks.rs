//! The checks of the conformance kit, one promise of the `Smgr` trait each.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::Kit;
use crate::{
    BlockNumber, Error, ForkNumber, PageBuf, RelFileLocator, INVALID_BLOCK_NUMBER, MAX_BLOCK_NUMBER,
};

const MAIN: ForkNumber = ForkNumber::Main;

/// Runs every check of the kit, in order.
pub async fn run_all(kit: &Kit) {
    create_exists_unlink(kit).await;
    missing_fork_errors(kit).await;
    extend_write_read_round_trip(kit).await;
    read_past_eof(kit).await;
    write_and_extend_in_wrong_place(kit).await;
    segment_boundary_runs(kit).await;
    zero_extend(kit).await;
    truncate(kit).await;
    block_number_edges(kit).await;
    prefetch_is_only_a_hint(kit).await;
    buffer_sizes_checked(kit).await;
    forks_are_independent(kit).await;
    immedsync(kit).await;
    empty_runs(kit).await;
    concurrent_reads_and_writes(kit).await;
    dropped_read_is_harmless(kit).await;
}

fn expect_err<T: std::fmt::Debug>(result: crate::Result<T>, what: &str) -> Error {
    match result {
        Ok(value) => panic!("{what}: expected an error, got Ok({value:?})"),
        Err(err) => err,
    }
}

/// `create`, `exists`, `unlink`; creating twice fails; unlinking a missing
/// fork succeeds.
pub async fn create_exists_unlink(kit: &Kit) {
    let smgr = &kit.smgr;
    let rel = kit.fresh_rel();
    assert!(
        !smgr.exists(rel, MAIN).await.unwrap(),
        "{rel} exists before create"
    );
    smgr.create(rel, MAIN).await.unwrap();
    assert!(
        smgr.exists(rel, MAIN).await.unwrap(),
        "{rel} missing after create"
    );
    kit.expect_nblocks(rel, 0).await;
    let err = expect_err(smgr.create(rel, MAIN).await, "second create");
    assert!(
        matches!(err, Error::AlreadyExists { .. }),
        "second create: {err}"
    );
    assert!(
        err.to_string().contains(&rel.to_string()),
        "error should name {rel}: {err}"
    );
    kit.extend_pattern(rel, 1, 0, 3).await;
    smgr.unlink(rel, MAIN).await.unwrap();
    assert!(
        !smgr.exists(rel, MAIN).await.unwrap(),
        "{rel} exists after unlink"
    );
    // Unlink is idempotent, as mdunlink ignores ENOENT.
    smgr.unlink(rel, MAIN).await.unwrap();
    smgr.unlink(kit.fresh_rel(), MAIN).await.unwrap();
    // A re-created fork starts empty: nothing of the old one survives.
    smgr.create(rel, MAIN).await.unwrap();
    kit.expect_nblocks(rel, 0).await;
    let err = expect_err(
        smgr.readv(rel, MAIN, 0, PageBuf::zeroed_blocks(smgr.block_size(), 1))
            .await,
        "read of re-created fork",
    );
    assert!(matches!(err, Error::ShortRead { .. }), "{err}");
}

/// Operations on a fork that does not exist say so.
pub async fn missing_fork_errors(kit: &Kit) {
    let smgr = &kit.smgr;
    let rel = kit.fresh_rel();
    let bs = smgr.block_size();
    let path = rel.to_string();
    let errors = [
        expect_err(smgr.nblocks(rel, MAIN).await, "nblocks of missing"),
        expect_err(
            smgr.readv(rel, MAIN, 0, PageBuf::zeroed_blocks(bs, 1))
                .await,
            "readv of missing",
        ),
        expect_err(
            smgr.writev(rel, MAIN, 0, PageBuf::zeroed_blocks(bs, 1))
                .await,
            "writev of missing",
        ),
        expect_err(
            smgr.extend(rel, MAIN, 0, PageBuf::zeroed_blocks(bs, 1))
                .await,
            "extend of missing",
        ),
        expect_err(
            smgr.zero_extend(rel, MAIN, 0, 2).await,
            "zero_extend of missing",
        ),
        expect_err(smgr.truncate(rel, MAIN, 0).await, "truncate of missing"),
        expect_err(smgr.immedsync(rel, MAIN).await, "immedsync of missing"),
    ];
    for err in errors {
        assert!(
            matches!(err, Error::NotFound { .. }),
            "expected NotFound, got {err}"
        );
        assert!(
            err.to_string().contains(&path),
            "error should name {path}: {err}"
        );
    }
    assert!(
        !smgr.exists(rel, MAIN).await.unwrap(),
        "a failed operation created {rel}"
    );
}

/// Blocks come back exactly as written, through single and vectored calls,
/// and `nblocks` follows every extend.
pub async fn extend_write_read_round_trip(kit: &Kit) {
    let smgr = &kit.smgr;
    let rel = kit.created_rel().await;
    for blkno in 0..5 {
        kit.extend_pattern(rel, 7, blkno, blkno + 1).await;
        kit.expect_nblocks(rel, blkno + 1).await;
    }
    kit.extend_pattern(rel, 7, 5, 12).await;
    kit.expect_nblocks(rel, 12).await;
    kit.expect_blocks(rel, Some(7), 0, 12).await;
    kit.expect_blocks(rel, Some(7), 3, 4).await;
    // Overwrite a run in the middle, then one block.
    let bufs = (4..9)
        .map(|b| PageBuf::copy_from(&kit.page(8, b)))
        .collect();
    let back = smgr.writev(rel, MAIN, 4, bufs).await.unwrap();
    assert_eq!(back.len(), 5, "writev must hand its buffers back");
    kit.expect_blocks(rel, Some(7), 0, 4).await;
    kit.expect_blocks(rel, Some(8), 4, 9).await;
    kit.expect_blocks(rel, Some(7), 9, 12).await;
    kit.expect_nblocks(rel, 12).await;
}

/// Reading at or past the end is a short read that names the file and the
/// byte counts; nothing is silently zero-filled.
pub async fn read_past_eof(kit: &Kit) {
    let smgr = &kit.smgr;
    let bs = smgr.block_size();
    let rel = kit.created_rel().await;
    let err = expect_err(
        smgr.readv(rel, MAIN, 0, PageBuf::zeroed_blocks(bs, 1))
            .await,
        "read of empty fork",
    );
    assert!(matches!(err, Error::ShortRead { read: 0, .. }), "{err}");
    kit.extend_pattern(rel, 3, 0, 4).await;
    for (first, count) in [(4, 1), (3, 2), (2, 5), (100, 1), (kit.segment_blocks, 1)] {
        let err = expect_err(
            smgr.readv(rel, MAIN, first, PageBuf::zeroed_blocks(bs, count))
                .await,
            "read past end",
        );
        match &err {
            Error::ShortRead { read, expected, .. } => {
                assert_eq!(*expected, count as u64 * bs.get() as u64, "{err}");
                assert!(*read < *expected, "{err}");
            }
            other => panic!("read of {count} blocks at {first} of a 4-block fork: expected ShortRead, got {other}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&rel.to_string()) && message.contains("bytes"),
            "{message}"
        );
    }
    kit.expect_blocks(rel, Some(3), 0, 4).await;
}

/// `writev` past the end and `extend` anywhere but at the end are refused
/// and change nothing.
pub async fn write_and_extend_in_wrong_place(kit: &Kit) {
    let smgr = &kit.smgr;
    let rel = kit.created_rel().await;
    kit.extend_pattern(rel, 4, 0, 3).await;
    let page = |b| vec![PageBuf::copy_from(&kit.page(99, b))];
    let two = |b: BlockNumber| {
        vec![
            PageBuf::copy_from(&kit.page(99, b)),
            PageBuf::copy_from(&kit.page(99, b + 1)),
        ]
    };
    for (what, result) in [
        (
            "writev at nblocks",
            smgr.writev(rel, MAIN, 3, page(3)).await,
        ),
        (
            "writev straddling the end",
            smgr.writev(rel, MAIN, 2, two(2)).await,
        ),
        (
            "writev far past the end",
            smgr.writev(rel, MAIN, 1000, page(1000)).await,
        ),
        (
            "extend past the end",
            smgr.extend(rel, MAIN, 4, page(4)).await,
        ),
        ("extend inside", smgr.extend(rel, MAIN, 1, page(1)).await),
    ] {
        let err = expect_err(result, what);
        assert!(matches!(err, Error::WrongBlock { .. }), "{what}: {err}");
    }
    let err = expect_err(
        smgr.zero_extend(rel, MAIN, 5, 1).await,
        "zero_extend past the end",
    );
    assert!(matches!(err, Error::WrongBlock { .. }), "{err}");
    kit.expect_nblocks(rel, 3).await;
    kit.expect_blocks(rel, Some(4), 0, 3).await;
}

/// Runs that cross segment boundaries are read, written and extended
/// correctly, in one call each.
pub async fn segment_boundary_runs(kit: &Kit) {
    let smgr = &kit.smgr;
    let seg = kit.segment_blocks;
    let rel = kit.created_rel().await;
    // Up to just before the first boundary with zeros, then one extend that
    // crosses it and the next boundary too if segments are small.
    let before = seg.saturating_sub(2);
    smgr.zero_extend(rel, MAIN, 0, before).await.unwrap();
    // Three whole segments: the fork ends exactly on a boundary.
    let end = 3 * seg;
    kit.extend_pattern(rel, 5, before, end).await;
    kit.expect_nblocks(rel, end).await;
    kit.expect_blocks(rel, Some(5), before, end).await;
    // Straddling reads one block either side of the boundary.
    kit.expect_blocks(rel, Some(5), seg - 1, seg + 1).await;
    kit.expect_blocks(rel, Some(5), seg, seg + 1).await;
    // A write across the boundary.
    let bufs = (seg - 1..seg + 2)
        .map(|b| PageBuf::copy_from(&kit.page(6, b)))
        .collect();
    smgr.writev(rel, MAIN, seg - 1, bufs).await.unwrap();
    kit.expect_blocks(rel, Some(5), before, seg - 1).await;
    kit.expect_blocks(rel, Some(6), seg - 1, seg + 2).await;
    kit.expect_blocks(rel, Some(5), seg + 2, end).await;
    if before > 0 {
        kit.expect_blocks(rel, None, 0, before.min(3)).await;
    }
    // Past the end, which is exactly on a segment boundary.
    assert_eq!(end % seg, 0);
    let err = expect_err(
        smgr.readv(rel, MAIN, end, PageBuf::zeroed_blocks(smgr.block_size(), 1))
            .await,
        "read at end",
    );
    assert!(matches!(err, Error::ShortRead { .. }), "{err}");
}

/// `zero_extend` adds blocks of zeros, across boundaries, and later extends
/// continue after it.
pub async fn zero_extend(kit: &Kit) {
    let smgr = &kit.smgr;
    let seg = kit.segment_blocks;
    let rel = kit.created_rel().await;
    kit.extend_pattern(rel, 9, 0, 2).await;
    smgr.zero_extend(rel, MAIN, 2, 0).await.unwrap();
    kit.expect_nblocks(rel, 2).await;
    smgr.zero_extend(rel, MAIN, 2, 3).await.unwrap();
    kit.expect_nblocks(rel, 5).await;
    kit.expect_blocks(rel, None, 2, 5).await;
    kit.expect_blocks(rel, Some(9), 0, 2).await;
    // Across a segment boundary.
    let target = seg + 3;
    if target > 5 {
        smgr.zero_extend(rel, MAIN, 5, target - 5).await.unwrap();
        kit.expect_nblocks(rel, target).await;
        kit.expect_blocks(rel, None, seg - 1, target).await;
    }
    let n = smgr.nblocks(rel, MAIN).await.unwrap();
    kit.extend_pattern(rel, 9, n, n + 2).await;
    kit.expect_blocks(rel, Some(9), n, n + 2).await;
    kit.expect_nblocks(rel, n + 2).await;
}

/// `truncate` to mid-segment, to a boundary, and to 0; the blocks past the
/// new end are gone and later extends do not resurrect them.
pub async fn truncate(kit: &Kit) {
    let smgr = &kit.smgr;
    let seg = kit.segment_blocks;
    let rel = kit.created_rel().await;
    let before = seg.saturating_sub(2);
    smgr.zero_extend(rel, MAIN, 0, before).await.unwrap();
    let end = 2 * seg + seg / 2 + 1;
    kit.extend_pattern(rel, 11, before, end).await;
    kit.expect_nblocks(rel, end).await;

    let err = expect_err(
        smgr.truncate(rel, MAIN, end + 1).await,
        "truncate beyond the end",
    );
    assert!(matches!(err, Error::WrongBlock { .. }), "{err}");
    smgr.truncate(rel, MAIN, end).await.unwrap();
    kit.expect_nblocks(rel, end).await;

    // Mid-segment (inside the third segment).
    let mid = 2 * seg + 1;
    smgr.truncate(rel, MAIN, mid).await.unwrap();
    kit.expect_nblocks(rel, mid).await;
    kit.expect_blocks(rel, Some(11), seg, mid).await;
    let err = expect_err(
        smgr.readv(rel, MAIN, mid, PageBuf::zeroed_blocks(smgr.block_size(), 1))
            .await,
        "read past truncated end",
    );
    assert!(matches!(err, Error::ShortRead { .. }), "{err}");

    // Exactly to a segment boundary.
    smgr.truncate(rel, MAIN, seg).await.unwrap();
    kit.expect_nblocks(rel, seg).await;
    // Re-extending must show the new pages, never the truncated ones.
    kit.extend_pattern(rel, 12, seg, seg + 2).await;
    kit.expect_nblocks(rel, seg + 2).await;
    kit.expect_blocks(rel, Some(12), seg, seg + 2).await;

    // Mid first segment, then to zero.
    let small = (seg / 2).max(1).min(seg);
    smgr.truncate(rel, MAIN, small).await.unwrap();
    kit.expect_nblocks(rel, small).await;
    smgr.truncate(rel, MAIN, 0).await.unwrap();
    kit.expect_nblocks(rel, 0).await;
    assert!(
        smgr.exists(rel, MAIN).await.unwrap(),
        "truncate to 0 must keep the fork"
    );
    kit.extend_pattern(rel, 13, 0, 2).await;
    kit.expect_blocks(rel, Some(13), 0, 2).await;
}

/// Block numbers at the top of the range: `MAX_BLOCK_NUMBER` is a valid
/// block (so reading it from a small fork is a short read), but no run may
/// reach `INVALID_BLOCK_NUMBER`, and nothing overflows.
pub async fn block_number_edges(kit: &Kit) {
    let smgr = &kit.smgr;
    let bs = smgr.block_size();
    let rel = kit.created_rel().await;
    kit.extend_pattern(rel, 14, 0, 2).await;
    let err = expect_err(
        smgr.readv(rel, MAIN, MAX_BLOCK_NUMBER, PageBuf::zeroed_blocks(bs, 1))
            .await,
        "read MAX_BLOCK_NUMBER",
    );
    assert!(matches!(err, Error::ShortRead { .. }), "{err}");
    for (what, result) in [
        (
            "read INVALID",
            smgr.readv(
                rel,
                MAIN,
                INVALID_BLOCK_NUMBER,
                PageBuf::zeroed_blocks(bs, 1),
            )
            .await,
        ),
        (
            "read MAX..MAX+2",
            smgr.readv(rel, MAIN, MAX_BLOCK_NUMBER, PageBuf::zeroed_blocks(bs, 2))
                .await,
        ),
        (
            "read MAX-1..MAX+2",
            smgr.readv(
                rel,
                MAIN,
                MAX_BLOCK_NUMBER - 1,
                PageBuf::zeroed_blocks(bs, 3),
            )
            .await,
        ),
        (
            "write INVALID",
            smgr.writev(
                rel,
                MAIN,
                INVALID_BLOCK_NUMBER,
                PageBuf::zeroed_blocks(bs, 1),
            )
            .await,
        ),
        (
            "extend INVALID",
            smgr.extend(
                rel,
                MAIN,
                INVALID_BLOCK_NUMBER,
                PageBuf::zeroed_blocks(bs, 1),
            )
            .await,
        ),
    ] {
        let err = expect_err(result, what);
        assert!(
            matches!(err, Error::BlockOutOfRange { .. }),
            "{what}: {err}"
        );
    }
    let err = expect_err(
        smgr.writev(rel, MAIN, MAX_BLOCK_NUMBER, PageBuf::zeroed_blocks(bs, 1))
            .await,
        "write MAX",
    );
    assert!(matches!(err, Error::WrongBlock { .. }), "{err}");
    let err = expect_err(
        smgr.zero_extend(rel, MAIN, 2, u32::MAX).await,
        "zero_extend to 2^32+1 blocks",
    );
    assert!(matches!(err, Error::BlockOutOfRange { .. }), "{err}");
    let err = expect_err(
        smgr.zero_extend(rel, MAIN, 2, MAX_BLOCK_NUMBER).await,
        "zero_extend past MAX",
    );
    assert!(matches!(err, Error::BlockOutOfRange { .. }), "{err}");
    // Hints about impossible runs are accepted and ignored.
    smgr.prefetch(rel, MAIN, MAX_BLOCK_NUMBER, 2).await;
    smgr.prefetch(rel, MAIN, INVALID_BLOCK_NUMBER, u32::MAX)
        .await;
    kit.expect_nblocks(rel, 2).await;
    kit.expect_blocks(rel, Some(14), 0, 2).await;
}

/// `prefetch` never fails: missing forks, runs past the end and zero-length
/// runs are all accepted, and reads afterwards are unaffected.
pub async fn prefetch_is_only_a_hint(kit: &Kit) {
    let smgr = &kit.smgr;
    let missing = kit.fresh_rel();
    assert!(
        !smgr.prefetch(missing, MAIN, 0, 4).await,
        "prefetch of a missing fork issued a hint"
    );
    assert!(
        !smgr.exists(missing, MAIN).await.unwrap(),
        "prefetch created {missing}"
    );
    let rel = kit.created_rel().await;
    let n = kit.segment_blocks + 2;
    kit.extend_pattern(rel, 15, 0, n).await;
    assert!(
        smgr.prefetch(rel, MAIN, 0, n).await,
        "prefetch of existing blocks issued no hint"
    );
    smgr.prefetch(rel, MAIN, n - 1, 10).await;
    smgr.prefetch(rel, MAIN, n + 100, 1).await;
    assert!(
        !smgr.prefetch(rel, MAIN, 0, 0).await,
        "a hint about no blocks was issued"
    );
    smgr.prefetch(rel, ForkNumber::Fsm, 0, 1).await;
    kit.expect_blocks(rel, Some(15), 0, n).await;
}

/// Buffers that are not exactly one block are refused before any I/O.
pub async fn buffer_sizes_checked(kit: &Kit) {
    let smgr = &kit.smgr;
    let bs = smgr.block_size().bytes();
    let rel = kit.created_rel().await;
    kit.extend_pattern(rel, 16, 0, 2).await;
    let bad = || vec![PageBuf::zeroed(bs), PageBuf::zeroed(bs - 1)];
    for (what, result) in [
        ("readv", smgr.readv(rel, MAIN, 0, bad()).await),
        ("writev", smgr.writev(rel, MAIN, 0, bad()).await),
        ("extend", smgr.extend(rel, MAIN, 2, bad()).await),
        (
            "readv oversized",
            smgr.readv(rel, MAIN, 0, vec![PageBuf::zeroed(bs * 2)])
                .await,
        ),
    ] {
        let err = expect_err(result, what);
        match err {
            Error::BufferSize {
                index,
                actual,
                expected,
                ..
            } => {
                assert!(
                    index <= 1 && actual != expected && expected == bs,
                    "{what}: {err}"
                );
            }
            other => panic!("{what} with a wrong-sized buffer: expected BufferSize, got {other}"),
        }
    }
    kit.expect_nblocks(rel, 2).await;
    kit.expect_blocks(rel, Some(16), 0, 2).await;
}

/// Each fork is stored apart; unlinking one leaves the others. Relations
/// in the global tablespace and in a user tablespace work too.
pub async fn forks_are_independent(kit: &Kit) {
    let smgr = &kit.smgr;
    let rel = kit.created_rel().await;
    for fork in [ForkNumber::Fsm, ForkNumber::VisibilityMap, ForkNumber::Init] {
        smgr.create(rel, fork).await.unwrap();
    }
    kit.extend_pattern(rel, 17, 0, 3).await;
    let fsm_page = kit.page(18, 0);
    smgr.extend(rel, ForkNumber::Fsm, 0, vec![PageBuf::copy_from(&fsm_page)])
        .await
        .unwrap();
    assert_eq!(smgr.nblocks(rel, ForkNumber::Fsm).await.unwrap(), 1);
    assert_eq!(
        smgr.nblocks(rel, ForkNumber::VisibilityMap).await.unwrap(),
        0
    );
    smgr.unlink(rel, ForkNumber::VisibilityMap).await.unwrap();
    assert!(!smgr.exists(rel, ForkNumber::VisibilityMap).await.unwrap());
    assert!(smgr.exists(rel, ForkNumber::Init).await.unwrap());
    kit.expect_blocks(rel, Some(17), 0, 3).await;
    let got = smgr
        .readv(
            rel,
            ForkNumber::Fsm,
            0,
            PageBuf::zeroed_blocks(smgr.block_size(), 1),
        )
        .await
        .unwrap();
    assert!(*got[0] == *fsm_page, "fsm block 0 of {rel}");
    for fork in ForkNumber::ALL {
        smgr.unlink(rel, fork).await.unwrap();
        assert!(!smgr.exists(rel, fork).await.unwrap());
    }

    let shared = RelFileLocator::shared(kit.fresh_rel().rel_number);
    let spc = RelFileLocator::new(16_400, kit.db_oid, kit.fresh_rel().rel_number);
    for other in [shared, spc] {
        smgr.create(other, MAIN).await.unwrap();
        kit.extend_pattern(other, 19, 0, 2).await;
        kit.expect_blocks(other, Some(19), 0, 2).await;
        smgr.unlink(other, MAIN).await.unwrap();
    }
    let invalid = RelFileLocator::in_database(kit.db_oid, 0);
    let err = expect_err(
        smgr.create(invalid, MAIN).await,
        "create with relation number 0",
    );
    assert!(matches!(err, Error::InvalidLocator { .. }), "{err}");
}

/// `immedsync` succeeds after writes on every segment.
pub async fn immedsync(kit: &Kit) {
    let rel = kit.created_rel().await;
    let n = kit.segment_blocks + 1;
    kit.extend_pattern(rel, 20, 0, n).await;
    kit.smgr.immedsync(rel, MAIN).await.unwrap();
    kit.smgr.create(rel, ForkNumber::Fsm).await.unwrap();
    kit.smgr.immedsync(rel, ForkNumber::Fsm).await.unwrap();
    kit.expect_blocks(rel, Some(20), 0, n).await;
}

/// Zero-length reads, writes and extends are no-ops.
pub async fn empty_runs(kit: &Kit) {
    let smgr = &kit.smgr;
    let rel = kit.created_rel().await;
    kit.extend_pattern(rel, 21, 0, 1).await;
    assert!(smgr
        .readv(rel, MAIN, 0, Vec::new())
        .await
        .unwrap()
        .is_empty());
    assert!(smgr
        .readv(rel, MAIN, 5, Vec::new())
        .await
        .unwrap()
        .is_empty());
    assert!(smgr
        .writev(rel, MAIN, 1, Vec::new())
        .await
        .unwrap()
        .is_empty());
    assert!(smgr
        .extend(rel, MAIN, 1, Vec::new())
        .await
        .unwrap()
        .is_empty());
    kit.expect_nblocks(rel, 1).await;
}

/// Many reads and writes in flight at once on one backend: every block no
/// task writes reads back exactly; each written block is checked by its
/// only writer. (A read racing a write of the same block may see a mix of
/// versions, by the trait's contract, so readers skip those blocks.)
pub async fn concurrent_reads_and_writes(kit: &Kit) {
    let rel = kit.created_rel().await;
    let n = kit.segment_blocks * 2 + 5;
    kit.extend_pattern(rel, 22, 0, n).await;
    let target = move |task: u32, round: u32| (task * 7 + round * 3) % n;
    // Task `t` alone writes the blocks it lands on that are `t` modulo 8.
    let written: std::collections::HashSet<u32> = (0..8u32)
        .flat_map(|task| (0..4u32).map(move |round| (task, round)))
        .map(|(task, round)| (task, target(task, round)))
        .filter(|(task, block)| block % 8 == *task)
        .map(|(_, block)| block)
        .collect();
    let written = std::sync::Arc::new(written);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8u32 {
        let smgr = kit.smgr.clone();
        let written = written.clone();
        let pages: Vec<Vec<u8>> = (0..n).map(|b| kit.page(22, b)).collect();
        let rewrites: Vec<Vec<u8>> = (0..n).map(|b| kit.page(23, b)).collect();
        tasks.spawn(async move {
            let bs = smgr.block_size();
            for round in 0..4u32 {
                let blkno = target(task, round);
                if blkno % 8 == task {
                    smgr.writev(
                        rel,
                        MAIN,
                        blkno,
                        vec![PageBuf::copy_from(&rewrites[blkno as usize])],
                    )
                    .await
                    .unwrap();
                    let got = smgr
                        .readv(rel, MAIN, blkno, PageBuf::zeroed_blocks(bs, 1))
                        .await
                        .unwrap();
                    assert!(
                        *got[0] == *rewrites[blkno as usize],
                        "{rel} block {blkno} after rewrite"
                    );
                } else {
                    let count = (n - blkno).min(3);
                    let got = smgr
                        .readv(rel, MAIN, blkno, PageBuf::zeroed_blocks(bs, count as usize))
                        .await
                        .unwrap();
                    for (i, buf) in got.iter().enumerate() {
                        let b = blkno + i as u32;
                        if !written.contains(&b) {
                            assert!(**buf == *pages[b as usize], "{rel} block {b}");
                        }
                    }
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap_or_else(|e| panic!("concurrent task failed: {e}"));
    }
    // Afterwards every block holds exactly its last version.
    for b in 0..n {
        let want = if written.contains(&b) {
            Some(23)
        } else {
            Some(22)
        };
        kit.expect_blocks(rel, want, b, b + 1).await;
    }
}

/// A read whose future is dropped after its first poll hands every lent
/// buffer back exactly once, and only when its I/O is over: after the
/// last buffer is returned, the memory never changes again. Each frame
/// then holds its block (the read finished) or is untouched (it never
/// started); the backend stays usable and the data intact.
pub async fn dropped_read_is_harmless(kit: &Kit) {
    let smgr = &kit.smgr;
    let bs = smgr.block_size().bytes();
    let rel = kit.created_rel().await;
    let n = (kit.segment_blocks + 2).min(64);
    kit.extend_pattern(rel, 24, 0, n).await;
    for _ in 0..4 {
        let arena = super::LendingArena::new(n as usize, bs);
        let read = smgr.readv(rel, MAIN, 0, arena.lend_first(n as usize));
        poll_once_then_drop(read);
        assert!(
            arena
                .wait_all_returned(std::time::Duration::from_secs(20))
                .await,
            "a dropped read of {rel} never returned its buffers"
        );
        let mut returned = arena.returns();
        returned.sort_unstable();
        assert_eq!(
            returned,
            (0..n as usize).collect::<Vec<_>>(),
            "each buffer returned exactly once"
        );
        let frames: Vec<Vec<u8>> = (0..n as usize).map(|f| arena.frame(f)).collect();
        for (blkno, frame) in frames.iter().enumerate() {
            let untouched = frame.iter().all(|&b| b == 0);
            assert!(
                untouched || *frame == kit.page(24, blkno as BlockNumber),
                "{rel} block {blkno}: frame holds something else"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        for (f, frame) in frames.iter().enumerate() {
            assert!(
                arena.frame(f) == *frame,
                "frame {f} changed after it was returned"
            );
        }
        let write = smgr.writev(rel, MAIN, 0, vec![PageBuf::copy_from(&kit.page(24, 0))]);
        poll_once_then_drop(write);
    }
    // A resize waits for any write the dropped futures left running.
    smgr.truncate(rel, MAIN, n).await.unwrap();
    kit.expect_blocks(rel, Some(24), 0, n).await;
    kit.expect_nblocks(rel, n).await;
}

fn poll_once_then_drop<F: Future>(future: F) {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let _ = matches!(future.as_mut().poll(&mut cx), Poll::Ready(_));
}
