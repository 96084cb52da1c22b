//! Which files of a data directory hold relation pages, and which blocks of
//! each fork can be read.
//!
//! The rules are `pg_checksums`' (PostgreSQL 15): it walks `global/`,
//! `base/` and, through each `pg_tblspc/` link, the tablespace version
//! directory, recursing into every subdirectory; it skips entries whose
//! names start with `pgsql_tmp` (temporary files and directories) and
//! `.DS_Store`, and the files `pg_control`, `pg_filenode.map`, `PG_VERSION`
//! and anything starting with `pg_internal.init`. Every other regular file
//! is scanned as relation pages. Here such a file whose name is not a
//! relation segment (`base/5/notes.txt`) is reported as unexpected instead
//! of being checksummed as if it were one: a page of an unknown file has no
//! block number to check against.
//!
//! Both sources of file lists (a directory walk and an object listing) end
//! in [`Inventory::build`], so the rules are applied once.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use smgr_api::{BlockNumber, BlockSize, ForkNumber, PathNaming, RelFileLocator};

/// Top-level directories that hold relation files.
pub const RELATION_DIRS: [&str; 3] = ["global", "base", "pg_tblspc"];

/// A file found under the location, with its path relative to the data
/// directory (`/`-separated) and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedFile {
    /// Path relative to the data directory: `base/5/16396.1` (for a
    /// compressed object, its key without `.zst`).
    pub path: String,
    /// Logical size in bytes (decompressed, for a compressed object).
    pub size: u64,
    /// Bytes stored (the file, or the object as stored).
    pub stored: u64,
    /// Why the file's logical size could not be learned (a compressed
    /// object whose seek table is damaged): its fork is reported as a
    /// problem and not read; the rest of the location still is.
    pub unreadable: Option<String>,
}

/// Whether `pg_checksums` skips an entry of a scanned directory by name
/// (files and directories alike).
pub fn skipped_entry(name: &str) -> bool {
    name.starts_with("pgsql_tmp") || name == ".DS_Store"
}

/// Whether `pg_checksums` skips a regular file by name.
pub fn skipped_file(name: &str) -> bool {
    skipped_entry(name)
        || matches!(name, "pg_control" | "pg_filenode.map" | "PG_VERSION")
        || name.starts_with("pg_internal.init")
}

/// Whether a relative path lies where `pg_checksums` looks, and is not
/// skipped by name: under `global/` or `base/`, or under
/// `pg_tblspc/SPC/VERSION/` for the configured version directory. Used to
/// filter object listings, which have no directories to walk.
pub fn scanned_path(path: &str, naming: &PathNaming) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let Some((name, dirs)) = parts.split_last() else {
        return false;
    };
    let in_scope = match dirs {
        ["global", ..] | ["base", ..] => true,
        ["pg_tblspc", _spc, version, ..] => *version == naming.tablespace_version_dir(),
        _ => false,
    };
    in_scope && !dirs.iter().any(|d| skipped_entry(d)) && !skipped_file(name)
}

/// One segment file of a fork.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Segment number.
    pub segno: u32,
    /// Path relative to the data directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Bytes stored.
    pub stored: u64,
}

/// The segment files of one fork and the blocks that can be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkFiles {
    /// The relation.
    pub rel: RelFileLocator,
    /// The fork.
    pub fork: ForkNumber,
    /// Its segment files, by segment number.
    pub segments: Vec<SegmentEntry>,
    /// Blocks `0..readable` can be read: every whole block up to the first
    /// problem in the fork's files.
    pub readable: BlockNumber,
}

/// A file-level finding that is not a bad page: the check of that file is
/// incomplete.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// The file, relative to the data directory.
    pub file: String,
    /// What is wrong, in one line.
    pub message: String,
}

/// The relation files under a location, grouped by fork.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Forks in locator order.
    pub forks: Vec<ForkFiles>,
    /// Files that `pg_checksums` would scan but are not relation segments,
    /// and segment layouts that do not add up.
    pub problems: Vec<Problem>,
    /// Files skipped by name (as `pg_checksums` skips them).
    pub skipped: u64,
}

impl Inventory {
    /// Sorts `files` (already limited to the scanned directories) into
    /// forks and problems.
    pub fn build(
        files: Vec<ListedFile>,
        naming: &PathNaming,
        block_size: BlockSize,
        segment_blocks: BlockNumber,
    ) -> Inventory {
        let mut inventory = Inventory::default();
        let mut forks: BTreeMap<(RelFileLocator, ForkNumber), Vec<SegmentEntry>> = BTreeMap::new();
        let mut unreadable = BTreeSet::new();
        for file in files {
            let name = file.path.rsplit('/').next().unwrap_or_default();
            if skipped_file(name) {
                inventory.skipped += 1;
                continue;
            }
            match naming.parse(&file.path) {
                Ok(seg) if file.unreadable.is_some() => {
                    unreadable.insert((seg.locator, seg.fork));
                    inventory.problems.push(Problem {
                        message: format!(
                            "{}; this fork is not checked",
                            file.unreadable.unwrap_or_default()
                        ),
                        file: file.path,
                    });
                }
                Ok(seg) => forks
                    .entry((seg.locator, seg.fork))
                    .or_default()
                    .push(SegmentEntry {
                        segno: seg.segno,
                        path: file.path,
                        size: file.size,
                        stored: file.stored,
                    }),
                Err(err) => inventory.problems.push(Problem {
                    message: format!("unexpected file: not a relation segment ({err})"),
                    file: file.path,
                }),
            }
        }
        for ((rel, fork), mut segments) in forks {
            if unreadable.contains(&(rel, fork)) {
                continue;
            }
            segments.sort_by_key(|s| s.segno);
            let readable = readable_blocks(
                &segments,
                block_size,
                segment_blocks,
                &mut inventory.problems,
            );
            inventory.forks.push(ForkFiles {
                rel,
                fork,
                segments,
                readable,
            });
        }
        inventory.problems.sort();
        inventory
    }

    /// Segment files in all forks.
    pub fn files(&self) -> usize {
        self.forks.iter().map(|f| f.segments.len()).sum()
    }

    /// Whole blocks that can be read, over all forks.
    pub fn readable_blocks(&self) -> u64 {
        self.forks.iter().map(|f| u64::from(f.readable)).sum()
    }

    /// Bytes in all segment files (logical: decompressed).
    pub fn bytes(&self) -> u64 {
        self.segments().map(|s| s.size).sum()
    }

    /// Bytes stored for all segment files (smaller than [`bytes`](Self::bytes)
    /// when objects are compressed).
    pub fn stored_bytes(&self) -> u64 {
        self.segments().map(|s| s.stored).sum()
    }

    /// Every segment file of every fork.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.forks.iter().flat_map(|f| &f.segments)
    }
}

/// Blocks readable from the start of a fork, recording every way its files
/// differ from the layout PostgreSQL writes: a missing segment, a segment
/// other than the last that is not full (truncated), a segment longer than
/// the segment size, a last segment ending in a partial block.
fn readable_blocks(
    segments: &[SegmentEntry],
    block_size: BlockSize,
    segment_blocks: BlockNumber,
    problems: &mut Vec<Problem>,
) -> BlockNumber {
    let bs = block_size.get() as u64;
    let full = u64::from(segment_blocks) * bs;
    let mut readable: u64 = 0;
    let mut intact = true;
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        if seg.segno as usize != i {
            if intact {
                problems.push(Problem {
                    file: seg.path.clone(),
                    message: format!(
                        "segment {} is missing before this file; blocks from {} on are not checked",
                        i,
                        u64::from(segment_blocks) * i as u64
                    ),
                });
            }
            intact = false;
        }
        let whole = seg.size.min(full) / bs;
        if intact {
            readable += whole;
        }
        if seg.size > full {
            problems.push(Problem {
                file: seg.path.clone(),
                message: format!(
                    "file is {} bytes, more than a segment of {segment_blocks} blocks ({full} bytes); the rest is not checked",
                    seg.size
                ),
            });
        } else if i < last && seg.size < full {
            problems.push(Problem {
                file: seg.path.clone(),
                message: format!(
                    "truncated: {} bytes ({} whole blocks), but a segment followed by another must hold {segment_blocks} blocks ({full} bytes); later segments are not checked",
                    seg.size, whole
                ),
            });
            intact = false;
        } else if seg.size % bs != 0 {
            problems.push(Problem {
                file: seg.path.clone(),
                message: format!(
                    "partial last block: {} bytes is {whole} whole blocks and {} bytes more (block size {bs})",
                    seg.size,
                    seg.size % bs
                ),
            });
        }
    }
    // A fork longer than u32 blocks cannot be named by block numbers.
    readable.min(u64::from(smgr_api::MAX_BLOCK_NUMBER) + 1) as BlockNumber
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(files: &[(&str, u64)]) -> Inventory {
        let files = files
            .iter()
            .map(|(path, size)| ListedFile {
                path: (*path).to_owned(),
                size: *size,
                stored: *size,
                unreadable: None,
            })
            .collect();
        Inventory::build(files, &PathNaming::default(), BlockSize::DEFAULT, 4)
    }

    #[test]
    fn skips_what_pg_checksums_skips() {
        let naming = PathNaming::default();
        for path in [
            "global/pg_control",
            "global/pg_filenode.map",
            "base/5/PG_VERSION",
            "base/5/pg_internal.init",
            "base/5/pg_internal.init.1234",
            "base/pgsql_tmp/pgsql_tmp123.0",
            "base/5/.DS_Store",
            "pg_wal/000000010000000000000001",
            "pg_tblspc/16385/PG_16_202307071/5/16396",
            "PG_VERSION",
        ] {
            assert!(!scanned_path(path, &naming), "{path}");
        }
        for path in [
            "global/1262",
            "base/5/16396_fsm",
            "base/5/notes.txt",
            "pg_tblspc/16385/PG_15_202209061/5/16396.1",
        ] {
            assert!(scanned_path(path, &naming), "{path}");
        }
    }

    #[test]
    fn groups_segments_and_counts_blocks() {
        let inv = inv(&[
            ("base/5/16396.1", 8192 * 2),
            ("base/5/16396", 8192 * 4),
            ("base/5/16396_fsm", 8192 * 3),
            ("base/5/PG_VERSION", 3),
        ]);
        assert!(inv.problems.is_empty(), "{:?}", inv.problems);
        assert_eq!(inv.skipped, 1);
        assert_eq!(inv.forks.len(), 2);
        assert_eq!(inv.forks[0].fork, ForkNumber::Main);
        assert_eq!(inv.forks[0].readable, 6);
        assert_eq!(inv.forks[1].readable, 3);
        assert_eq!(inv.readable_blocks(), 9);
        assert_eq!(inv.files(), 3);
    }

    #[test]
    fn reports_every_bad_shape() {
        let inv = inv(&[
            // Truncated first segment followed by another.
            ("base/5/100", 8192 * 2 + 100),
            ("base/5/100.1", 8192),
            // Partial last block.
            ("base/5/200", 8192 * 3 + 17),
            // Missing segment 1.
            ("base/5/300", 8192 * 4),
            ("base/5/300.2", 8192),
            // Oversized segment.
            ("base/5/400", 8192 * 5),
            // Not a relation file.
            ("base/5/notes.txt", 10),
        ]);
        let by_file = |file: &str| {
            inv.problems
                .iter()
                .filter(|p| p.file == file)
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        };
        assert!(by_file("base/5/100").contains("truncated: 16484 bytes"));
        assert!(by_file("base/5/200").contains("partial last block"));
        assert!(by_file("base/5/300.2").contains("segment 1 is missing"));
        assert!(by_file("base/5/400").contains("more than a segment"));
        assert!(by_file("base/5/notes.txt").contains("unexpected file"));
        let readable: Vec<_> = inv.forks.iter().map(|f| f.readable).collect();
        assert_eq!(readable, vec![2, 3, 4, 4]);
    }
}
