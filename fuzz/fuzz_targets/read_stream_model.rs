//! A `ReadStream` driven by an arbitrary block sequence, pool size, I/O
//! concurrency and combine limit, against the model: it hands back exactly
//! the requested blocks, in order, each with the bytes stored for it;
//! blocks past the end are errors and the stream goes on; and when it is
//! dropped nothing stays pinned or in I/O.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use bufmgr::{BufferPool, PoolConfig};
use libfuzzer_sys::fuzz_target;
use smgr_api::testkit::{pattern_page, MemSmgr};
use smgr_api::{BlockSize, ForkNumber, PageBuf, PageFormat, PageVerifier, RelFileLocator, Smgr};
use streamread::{ReadStream, StreamConfig, StreamFlags};

const NBLOCKS: u32 = 64;

#[derive(Arbitrary, Debug)]
struct Input {
    blocks: Vec<u8>,
    frames: u8,
    max_ios: u8,
    combine_blocks: u8,
    full: bool,
    sequential: bool,
}

fn page(block: u32) -> Vec<u8> {
    let mut page = pattern_page(1024, 5, block);
    PageVerifier::new(PageFormat::Native, BlockSize::new(1024).unwrap())
        .set_checksum(&mut page, block);
    page
}

fuzz_target!(|input: Input| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bs = BlockSize::new(1024).unwrap();
        let smgr = Arc::new(MemSmgr::new(bs));
        let rel = RelFileLocator::in_database(5, 1);
        let main = ForkNumber::Main;
        smgr.create(rel, main).await.unwrap();
        let pages = (0..NBLOCKS).map(|b| PageBuf::copy_from(&page(b))).collect();
        smgr.extend(rel, main, 0, pages).await.unwrap();

        let frames = usize::from(input.frames % 64) + 16;
        let pool = BufferPool::new(
            smgr,
            PoolConfig::new(frames, PageFormat::Native).prefault(false),
        )
        .unwrap();
        let config = StreamConfig::default()
            .io_combine_bytes((usize::from(input.combine_blocks % 32) + 1) * bs.bytes())
            .max_ios(usize::from(input.max_ios % 9));
        let flags = StreamFlags {
            full: input.full,
            sequential: input.sequential,
            ..StreamFlags::default()
        };
        // Blocks 0..NBLOCKS exist; a few values beyond do not.
        let wanted: Vec<u32> = input
            .blocks
            .iter()
            .map(|&b| u32::from(b) % (NBLOCKS + 4))
            .take(300)
            .collect();
        let mut stream = ReadStream::from_blocks(&pool, rel, main, config, flags, wanted.clone());
        for (i, &block) in wanted.iter().enumerate() {
            match stream.next_buffer().await {
                Ok(Some((buffer, ()))) => {
                    assert!(
                        block < NBLOCKS,
                        "#{i}: block {block} past the end was returned"
                    );
                    assert_eq!(buffer.tag().block, block, "#{i}: out of order");
                    assert_eq!(
                        &*buffer.read().unwrap(),
                        &page(block)[..],
                        "#{i}: wrong bytes"
                    );
                }
                Ok(None) => panic!("#{i}: the stream ended early"),
                Err(err) => assert!(block >= NBLOCKS, "#{i}: block {block}: {err}"),
            }
        }
        assert!(
            matches!(stream.next_buffer().await, Ok(None)),
            "the stream goes on past its source"
        );
        drop(stream);
        // Aborted read tasks drop their pins when next polled.
        for _ in 0..100 {
            if pool.census().is_quiet() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(pool.census().is_quiet(), "{:?}", pool.census());
    });
});
