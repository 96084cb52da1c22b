//! Shared by the power-loss tests: a backend on a simulated disk.

#![allow(dead_code, clippy::unwrap_used)]

use smgr_api::testkit::pattern_page;
use smgr_api::{BlockSize, ForkNumber, PageBuf, RelFileLocator};
use smgr_md::fs::{FileSystem, OpenMode, SegmentFile};
use smgr_md::testing::CrashFs;
use smgr_md::{MdOptions, MdSmgr};

pub const MAIN: ForkNumber = ForkNumber::Main;
pub const BS: usize = 1024;

/// 1 KiB blocks, `segment_blocks` per segment.
pub fn options(segment_blocks: u32) -> MdOptions {
    MdOptions::new(BlockSize::new(BS as u32).unwrap(), segment_blocks)
}

/// A fresh backend on the disk as it is now.
pub fn open(fs: &CrashFs, segment_blocks: u32) -> MdSmgr<CrashFs> {
    MdSmgr::with_file_system(fs.root(), options(segment_blocks), fs.clone()).unwrap()
}

/// Block `block` of version `tag`.
pub fn page(tag: u32, block: u32) -> PageBuf {
    PageBuf::copy_from(&pattern_page(BS, tag, block))
}

/// Writes `bytes` at `offset` of the file at `path` behind the backend's
/// back (as a power loss may leave it), synced.
pub fn scribble(
    fs: &CrashFs,
    smgr: &MdSmgr<CrashFs>,
    rel: RelFileLocator,
    segno: u32,
    offset: u64,
    bytes: &[u8],
) {
    let path = smgr.segment_path(rel, MAIN, segno).unwrap();
    let mode = OpenMode {
        write: true,
        create: true,
        create_new: false,
    };
    let file = fs.open(&path, mode).unwrap();
    file.write_at(&[std::io::IoSlice::new(bytes)], offset)
        .unwrap();
    file.sync().unwrap();
    fs.sync_dir(path.parent().unwrap()).unwrap();
}
pub mod model;
