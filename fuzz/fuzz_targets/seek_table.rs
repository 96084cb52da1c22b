//! Compressed segment objects from arbitrary bytes: the seek-table parser,
//! the frame decompressor and the frame rewriter. Never a panic: whatever
//! is wrong is an error naming the key. And an oracle: when an object's
//! table parses and every frame decompresses, a rewrite (a write of some
//! pages, a cut or a growth) gives an object that parses again and holds
//! exactly the old bytes with the change applied.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use smgr_object::seekable::{
    compress_with_table, FrameDecompressor, Patch, Rewrite, SeekTable, Tail,
};

const KEY: &str = "base/5/1.zst";
const BS: usize = 512;
/// Frames of at most 8 pages, as `max_frame_bytes` allows.
const MAX_FRAME: u64 = 8 * BS as u64;

fuzz_target!(|input: (Vec<u8>, bool, u16, u16, u8, u8)| {
    let (raw, build, new_blocks, start, count, fill) = input;
    // Half the time the bytes are an object as written (so the fuzzer
    // reaches the rewrite), the other half the bytes themselves.
    let object = if build {
        let frame = (usize::from(fill % 8) + 1) * BS;
        match compress_with_table(&raw, frame, 1) {
            Ok((object, _)) => object,
            Err(_) => return,
        }
    } else {
        raw
    };
    let len = object.len() as u64;
    // The table from tails of every length a fetch might give.
    let mut table = None;
    for cut in [9usize, 64, 4096, object.len()] {
        let tail = &object[object.len().saturating_sub(cut)..];
        match SeekTable::parse_tail(KEY, tail, len, MAX_FRAME) {
            Ok(Tail::Table(t)) => table = Some(t),
            Ok(_) => {}
            Err(err) => assert!(err.to_string().contains(KEY), "{err}"),
        }
    }
    let Some(table) = table else { return };
    assert_eq!(table.compressed_len() + table.table_len(), len);

    // Every frame into pages; the bytes kept if all decompress.
    // A reader requiring checksums decodes the same frames of objects
    // written here (they always carry zstd's), and fails cleanly on others.
    let mut decompressor = FrameDecompressor::new(KEY, BS as u64, 0, MAX_FRAME);
    let mut strict = FrameDecompressor::new(KEY, BS as u64, 0, MAX_FRAME).require_checksum(true);
    let mut data = Vec::new();
    let mut whole = true;
    for i in 0..table.frames().len() {
        let c = table.compressed_range(i..i + 1);
        let d = table.decompressed_range(i..i + 1);
        let mut buf = vec![0u8; (d.end - d.start) as usize];
        let frame = &object[c.start as usize..c.end as usize];
        let checksum = table.frames()[i].checksum;
        let mut strict_buf = buf.clone();
        let strict_result =
            strict.decompress(i, frame, d.clone(), d.clone(), checksum, &mut [&mut strict_buf[..]]);
        match decompressor.decompress(i, frame, d.clone(), d, checksum, &mut [&mut buf[..]]) {
            Ok(()) => {
                if build {
                    assert!(strict_result.is_ok(), "a frame written here refused: {strict_result:?}");
                }
                if strict_result.is_ok() {
                    assert_eq!(strict_buf, buf);
                }
                data.extend_from_slice(&buf);
            }
            Err(err) => {
                assert!(err.to_string().contains(KEY), "{err}");
                assert!(strict_result.is_err(), "only the strict reader took frame {i}");
                whole = false;
            }
        }
        if let Err(err) = strict_result {
            assert!(err.to_string().contains(KEY), "{err}");
        }
    }

    // A rewrite: new length, and pages written from `start`.
    let old_len = table.decompressed_len();
    let new_len = u64::from(new_blocks % 64) * BS as u64;
    let start = (u64::from(start % 64) * BS as u64).min(new_len);
    let count = (usize::from(count % 16)).min(((new_len - start) / BS as u64) as usize);
    let page = |i: usize, out: &mut [u8]| out.fill(fill.wrapping_add(i as u8));
    let patch = Patch {
        start,
        count,
        page_bytes: BS,
        fill: &page,
    };
    let old_bytes = Bytes::from(object.clone());
    let rewrite = Rewrite {
        key: KEY.to_owned(),
        old: std::sync::Arc::new(table.clone()),
        old_bytes: old_bytes.clone(),
        frame_bytes: 4 * BS,
        level: 1,
        block_bytes: BS as u64,
        first_block: 0,
        max_frame_bytes: MAX_FRAME,
        require_checksums: false,
    };
    match rewrite.apply(new_len, Some(&patch)) {
        Ok((chunks, new_table)) => {
            let new_object: Vec<u8> = chunks.concat();
            let Ok(Tail::Table(parsed)) =
                SeekTable::parse_tail(KEY, &new_object, new_object.len() as u64, u64::MAX)
            else {
                panic!("a rewritten object does not parse");
            };
            assert_eq!(parsed, new_table);
            assert_eq!(parsed.decompressed_len(), new_len);
            if whole {
                let mut expected = data.clone();
                expected.resize(new_len as usize, 0);
                for i in 0..count {
                    let at = start as usize + i * BS;
                    page(i, &mut expected[at..at + BS]);
                }
                let got = zstd::stream::decode_all(&new_object[..]).expect("decodes");
                assert_eq!(got, expected, "old {old_len} new {new_len}");
            }
        }
        Err(err) => {
            // Only damage in a frame the rewrite had to open is an error.
            assert!(!whole, "rewrite of a sound object failed: {err}");
            assert!(err.to_string().contains(KEY), "{err}");
        }
    }
});
