//! Reading 128 KiB (16 blocks of 8 KiB) from the page cache, side by side:
//! a plain synchronous `pread` into one buffer (the floor), `MdSmgr::readv`
//! with the inline `RWF_NOWAIT` path, and `MdSmgr::readv` sent to the
//! blocking pool every time. The relation is 64 MiB, read round-robin, so
//! everything is cached after the first pass.
//!
//! `cargo bench -p smgr-md --bench readv`

#![allow(missing_docs, clippy::unwrap_used)]

use std::os::unix::fs::FileExt;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator, Smgr};
use smgr_md::{MdOptions, MdSmgr};

const BLOCKS: u32 = 8192;
const RUN: u32 = 16;

fn readv(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bs = BlockSize::DEFAULT;
    let rel = RelFileLocator::in_database(5, 1);
    let setup = MdSmgr::open(dir.path(), MdOptions::new(bs, 131072)).unwrap();
    runtime.block_on(async {
        setup.create(rel, ForkNumber::Main).await.unwrap();
        let mut next = 0;
        while next < BLOCKS {
            let bufs = (0..RUN)
                .map(|i| PageBuf::copy_from(&[(next + i) as u8; 8192]))
                .collect();
            setup
                .extend(rel, ForkNumber::Main, next, bufs)
                .await
                .unwrap();
            next += RUN;
        }
    });
    let file = std::fs::File::open(setup.segment_path(rel, ForkNumber::Main, 0).unwrap()).unwrap();

    let mut group = c.benchmark_group("readv_128k_cached");
    group.throughput(Throughput::Bytes(u64::from(RUN) * 8192));
    let mut at = 0u32;
    let mut plain = vec![0u8; RUN as usize * 8192];
    group.bench_function("pread loop (floor)", |b| {
        b.iter(|| {
            file.read_exact_at(&mut plain, u64::from(at) * 8192)
                .unwrap();
            at = (at + RUN) % BLOCKS;
        })
    });
    for (name, nowait) in [
        ("MdSmgr inline RWF_NOWAIT", true),
        ("MdSmgr blocking pool", false),
    ] {
        let smgr =
            MdSmgr::open(dir.path(), MdOptions::new(bs, 131072).nowait_reads(nowait)).unwrap();
        let mut bufs = Some(PageBuf::zeroed_blocks(bs, RUN as usize));
        group.bench_function(name, |b| {
            b.iter(|| {
                let taken = bufs.take().unwrap();
                let back = runtime
                    .block_on(smgr.readv(rel, ForkNumber::Main, at, taken))
                    .unwrap();
                bufs = Some(back);
                at = (at + RUN) % BLOCKS;
            })
        });
    }
    group.finish();
}

criterion_group!(benches, readv);
criterion_main!(benches);
