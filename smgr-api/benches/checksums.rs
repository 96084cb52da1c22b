//! Page checksum throughput: PostgreSQL's `pg_checksum_page`, the native
//! crc32c, and a plain copy of the page as the yardstick, on one 8 KiB
//! page (in L1, so this measures the computation, not memory).
//!
//! `cargo bench -p smgr-api --bench checksums`

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smgr_api::testkit::pattern_page;
use smgr_api::{
    native_checksum, pg_checksum_page, pg_checksum_page_portable, BlockSize, PageFormat,
    PageVerifier,
};

fn checksums(c: &mut Criterion) {
    let page = pattern_page(8192, 1, 7);
    let mut group = c.benchmark_group("page_8k");
    group.throughput(Throughput::Bytes(8192));
    group.bench_function("copy (yardstick)", |b| {
        let mut dst = vec![0u8; 8192];
        b.iter(|| {
            dst.copy_from_slice(black_box(&page));
            black_box(&dst);
        })
    });
    group.bench_function("pg_checksum_page", |b| {
        b.iter(|| pg_checksum_page(black_box(&page), black_box(7)))
    });
    group.bench_function("pg_checksum_page, portable (no AVX2)", |b| {
        b.iter(|| pg_checksum_page_portable(black_box(&page), black_box(7)))
    });
    group.bench_function("native crc32c", |b| {
        b.iter(|| native_checksum(black_box(&page), black_box(7)))
    });
    let mut pg_page = page.clone();
    pg_page[12..14].copy_from_slice(&24u16.to_le_bytes());
    pg_page[14..16].copy_from_slice(&8000u16.to_le_bytes());
    pg_page[16..18].copy_from_slice(&8192u16.to_le_bytes());
    pg_page[10] = 0;
    pg_page[11] = 0;
    let verifier = PageVerifier::new(PageFormat::Postgres { checksums: true }, BlockSize::DEFAULT);
    verifier.set_checksum(&mut pg_page, 7);
    group.bench_function("verify postgres page", |b| {
        b.iter(|| verifier.verify(black_box(&pg_page), 7).unwrap())
    });
    group.finish();
}

criterion_group!(benches, checksums);
criterion_main!(benches);
