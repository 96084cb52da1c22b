//! PostgreSQL's naming of relation files, both ways.
//!
//! Both backends name storage with these functions: `smgr-md` joins the
//! result to its root directory, `smgr-object` appends it to its key prefix.
//! Because every component is a number or the validated tablespace version
//! directory, a name built here never contains `..`, an absolute path or an
//! empty component, so it cannot point outside the root it is joined to.
//!
//! Parsing accepts only the canonical form PostgreSQL writes: decimal numbers
//! without sign or leading zeros, no `.0` segment suffix, no `_main` suffix.

use std::fmt::{self, Write as _};

use crate::{
    BlockNumber, Error, ForkNumber, Oid, RelFileLocator, DEFAULT_TABLESPACE_OID,
    GLOBAL_TABLESPACE_OID,
};

/// The tablespace version directory of PostgreSQL 15
/// (`TABLESPACE_VERSION_DIRECTORY`: `PG_` major `_` catalog version).
pub const PG15_TABLESPACE_VERSION_DIRECTORY: &str = "PG_15_202209061";

/// PostgreSQL's default number of blocks per segment file (`RELSEG_SIZE`):
/// 1 GiB of 8 KiB blocks.
pub const DEFAULT_SEGMENT_BLOCKS: BlockNumber = 131072;

/// How relation files are named under a data directory (PostgreSQL's
/// `relpath()` and its inverse).
///
/// The only variable part is the directory that `pg_tblspc/SPC/` holds for
/// one server version; it defaults to PostgreSQL 15's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathNaming {
    tablespace_version_dir: String,
}

/// One segment file of one fork of a relation, as named by a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentFile {
    /// The relation.
    pub locator: RelFileLocator,
    /// The fork.
    pub fork: ForkNumber,
    /// The segment number: 0 for the file without a `.N` suffix.
    pub segno: u32,
}

impl Default for PathNaming {
    fn default() -> Self {
        PathNaming {
            tablespace_version_dir: PG15_TABLESPACE_VERSION_DIRECTORY.to_owned(),
        }
    }
}

impl PathNaming {
    /// Naming with the given tablespace version directory, for example
    /// `PG_16_202307071` for PostgreSQL 16. It must be one non-empty path
    /// component of ASCII letters, digits, `_` and `-`.
    pub fn new(tablespace_version_dir: impl Into<String>) -> Result<Self, Error> {
        let dir = tablespace_version_dir.into();
        let valid = !dir.is_empty()
            && dir
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(Error::InvalidPath {
                input: dir,
                reason: "a tablespace version directory must be one component of letters, digits, '_' or '-'",
            });
        }
        Ok(PathNaming {
            tablespace_version_dir: dir,
        })
    }

    /// The tablespace version directory in use.
    pub fn tablespace_version_dir(&self) -> &str {
        &self.tablespace_version_dir
    }

    /// The path of a fork's first segment, relative to the data directory:
    /// `base/5/16396_fsm`. Fails if the locator is not valid.
    pub fn relpath(&self, locator: RelFileLocator, fork: ForkNumber) -> Result<String, Error> {
        self.segment_path(locator, fork, 0)
    }

    /// The path of segment `segno` of a fork: `base/5/16396.2`.
    pub fn segment_path(
        &self,
        locator: RelFileLocator,
        fork: ForkNumber,
        segno: u32,
    ) -> Result<String, Error> {
        locator.validate()?;
        let mut path = String::with_capacity(48);
        // Writing to a String cannot fail.
        let _ = self.write_relpath(&mut path, locator, fork);
        if segno > 0 {
            let _ = write!(path, ".{segno}");
        }
        Ok(path)
    }

    /// Writes the fork path without validating the locator; for `Display`.
    pub(crate) fn write_relpath(
        &self,
        out: &mut dyn fmt::Write,
        locator: RelFileLocator,
        fork: ForkNumber,
    ) -> fmt::Result {
        let RelFileLocator {
            spc_oid,
            db_oid,
            rel_number,
        } = locator;
        let suffix = fork.file_suffix();
        match spc_oid {
            GLOBAL_TABLESPACE_OID => write!(out, "global/{rel_number}{suffix}"),
            DEFAULT_TABLESPACE_OID => write!(out, "base/{db_oid}/{rel_number}{suffix}"),
            _ => write!(
                out,
                "pg_tblspc/{spc_oid}/{}/{db_oid}/{rel_number}{suffix}",
                self.tablespace_version_dir
            ),
        }
    }

    /// Parses a path relative to the data directory (`base/5/16396_vm.1`)
    /// into the segment file it names. Anything PostgreSQL would not have
    /// written is an error that quotes the path and says what is wrong.
    pub fn parse(&self, path: &str) -> Result<SegmentFile, Error> {
        let bad = |reason: &'static str| Error::InvalidPath {
            input: path.to_owned(),
            reason,
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (spc_oid, db_oid, file) = match parts.as_slice() {
            ["global", file] => (GLOBAL_TABLESPACE_OID, 0, *file),
            ["base", db, file] => (DEFAULT_TABLESPACE_OID, parse_oid(db).map_err(bad)?, *file),
            ["pg_tblspc", spc, version, db, file] => {
                let spc = parse_oid(spc).map_err(bad)?;
                if spc == DEFAULT_TABLESPACE_OID || spc == GLOBAL_TABLESPACE_OID {
                    return Err(bad("built-in tablespaces are never under pg_tblspc/"));
                }
                if *version != self.tablespace_version_dir {
                    return Err(bad(
                        "tablespace version directory differs from the configured one",
                    ));
                }
                (spc, parse_oid(db).map_err(bad)?, *file)
            }
            _ => {
                return Err(bad(
                    "expected global/REL, base/DB/REL or pg_tblspc/SPC/VERSION/DB/REL",
                ))
            }
        };
        if file.starts_with('t') {
            return Err(bad(
                "temporary relation files (tBACKEND_REL) are not supported",
            ));
        }
        let (stem, segno) = match file.split_once('.') {
            Some((stem, seg)) => {
                let segno = parse_oid(seg).map_err(bad)?;
                if segno == 0 {
                    return Err(bad("segment 0 has no suffix; '.0' is not canonical"));
                }
                (stem, segno)
            }
            None => (file, 0),
        };
        let (rel, fork) = match stem.split_once('_') {
            Some((rel, fork_name)) => {
                let fork = match fork_name {
                    "fsm" => ForkNumber::Fsm,
                    "vm" => ForkNumber::VisibilityMap,
                    "init" => ForkNumber::Init,
                    _ => return Err(bad("unknown fork suffix (expected _fsm, _vm or _init)")),
                };
                (rel, fork)
            }
            None => (stem, ForkNumber::Main),
        };
        let locator = RelFileLocator::new(spc_oid, db_oid, parse_oid(rel).map_err(bad)?);
        locator
            .validate()
            .map_err(|_| bad("OID 0 is not a valid relation, database or tablespace"))?;
        Ok(SegmentFile {
            locator,
            fork,
            segno,
        })
    }
}

/// Parses a number in the canonical form PostgreSQL prints.
fn parse_oid(s: &str) -> Result<Oid, &'static str> {
    if s.is_empty() {
        return Err("empty number");
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err("number with a leading zero is not canonical");
    }
    s.parse::<Oid>()
        .map_err(|_| "number does not fit in 32 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming() -> PathNaming {
        PathNaming::default()
    }

    #[test]
    fn relpaths_as_postgres_writes_them() {
        let n = naming();
        let rel = RelFileLocator::in_database(5, 16396);
        assert_eq!(n.relpath(rel, ForkNumber::Main).unwrap(), "base/5/16396");
        assert_eq!(n.relpath(rel, ForkNumber::Fsm).unwrap(), "base/5/16396_fsm");
        assert_eq!(
            n.relpath(rel, ForkNumber::VisibilityMap).unwrap(),
            "base/5/16396_vm"
        );
        assert_eq!(
            n.relpath(rel, ForkNumber::Init).unwrap(),
            "base/5/16396_init"
        );
        assert_eq!(
            n.segment_path(rel, ForkNumber::Main, 1).unwrap(),
            "base/5/16396.1"
        );
        assert_eq!(
            n.segment_path(rel, ForkNumber::Fsm, 12).unwrap(),
            "base/5/16396_fsm.12"
        );
        assert_eq!(
            n.segment_path(RelFileLocator::shared(1262), ForkNumber::Main, 0)
                .unwrap(),
            "global/1262"
        );
        let spc = RelFileLocator::new(16400, 16384, 16385);
        assert_eq!(
            n.segment_path(spc, ForkNumber::VisibilityMap, 3).unwrap(),
            "pg_tblspc/16400/PG_15_202209061/16384/16385_vm.3"
        );
        let pg16 = PathNaming::new("PG_16_202307071").unwrap();
        assert_eq!(
            pg16.relpath(spc, ForkNumber::Main).unwrap(),
            "pg_tblspc/16400/PG_16_202307071/16384/16385"
        );
        assert!(n
            .relpath(RelFileLocator::in_database(5, 0), ForkNumber::Main)
            .is_err());
    }

    #[test]
    fn tablespace_version_dir_cannot_escape() {
        for bad in ["", "..", ".", "a/b", "PG_15/../x", "x y", "/abs"] {
            assert!(PathNaming::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_round_trips() {
        let n = naming();
        for path in [
            "base/5/16396",
            "base/5/16396_fsm",
            "base/5/16396_vm.1",
            "base/1/2_init.4294967295",
            "global/1262",
            "global/1262_fsm.3",
            "pg_tblspc/16400/PG_15_202209061/16384/16385.2",
        ] {
            let seg = n.parse(path).unwrap();
            assert_eq!(
                n.segment_path(seg.locator, seg.fork, seg.segno).unwrap(),
                path
            );
        }
        let seg = n.parse("base/5/16396_fsm.2").unwrap();
        assert_eq!(seg.locator, RelFileLocator::in_database(5, 16396));
        assert_eq!(seg.fork, ForkNumber::Fsm);
        assert_eq!(seg.segno, 2);
    }

    #[test]
    fn parse_rejects_non_canonical_and_malformed_names() {
        let n = naming();
        for path in [
            "",
            "base",
            "base/5",
            "base/5/",
            "/base/5/16396",
            "base//16396",
            "base/05/16396",
            "base/5/016396",
            "base/5/16396.0",
            "base/5/16396.01",
            "base/5/16396.",
            "base/5/16396_",
            "base/5/16396_main",
            "base/5/16396_fsm_vm",
            "base/5/+16396",
            "base/5/-1",
            "base/5/4294967296",
            "base/5/0",
            "base/0/16396",
            "base/5/t3_16396",
            "base/5/16396.1.2",
            "base/5/16396/x",
            "base/../16396",
            "global/5/16396",
            "pg_tblspc/1663/PG_15_202209061/5/1",
            "pg_tblspc/16400/PG_16_202307071/5/1",
            "pg_tblspc/16400/PG_15_202209061/0/1",
            "pg_internal.init",
            "base/5/pg_filenode.map",
            "base/5/PG_VERSION",
        ] {
            let err = n.parse(path).expect_err(path);
            assert!(
                err.to_string().contains(path),
                "{err} should quote {path:?}"
            );
        }
    }
}
