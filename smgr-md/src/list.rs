//! Finding the relation forks stored under the root.

use std::collections::BTreeSet;
use std::io;

use smgr_api::{Error, ForkNumber, RelFileLocator, Result};

use crate::fs::FileSystem;
use crate::inner::Inner;

impl<F: FileSystem> Inner<F> {
    /// Every fork with a first segment under the root, in the directories
    /// PostgreSQL uses for relations: `global/`, `base/DB/` and
    /// `pg_tblspc/SPC/VERSION/DB/`. Files that are not relation segments
    /// (`PG_VERSION`, `pg_filenode.map`, `pg_internal.init`, temporary
    /// relations) are skipped, as `pg_checksums` skips them.
    pub fn list_forks_blocking(&self) -> Result<Vec<(RelFileLocator, ForkNumber)>> {
        let mut dirs: Vec<String> = vec!["global".to_owned()];
        for db in self.subdirs("base")? {
            dirs.push(format!("base/{db}"));
        }
        let version = self.opts.naming.tablespace_version_dir().to_owned();
        for spc in self.subdirs("pg_tblspc")? {
            for db in self.subdirs(&format!("pg_tblspc/{spc}/{version}"))? {
                dirs.push(format!("pg_tblspc/{spc}/{version}/{db}"));
            }
        }
        let mut forks = BTreeSet::new();
        for dir in dirs {
            for name in self.entries(&dir)? {
                if let Ok(seg) = self.opts.naming.parse(&format!("{dir}/{name}")) {
                    if seg.segno == 0 {
                        forks.insert((seg.locator, seg.fork));
                    }
                }
            }
        }
        Ok(forks.into_iter().collect())
    }

    /// Names in a directory relative to the root; empty if it is missing.
    fn entries(&self, relative: &str) -> Result<Vec<String>> {
        let path = self.full_path(relative);
        match self.fs.read_dir(&path) {
            Ok(names) => Ok(names),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(err) => Err(Error::io("list directory", relative, err)),
        }
    }

    /// Subdirectories of a directory whose names are numbers.
    fn subdirs(&self, relative: &str) -> Result<Vec<String>> {
        Ok(self
            .entries(relative)?
            .into_iter()
            .filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
            .filter(|name| {
                self.fs
                    .is_dir(&self.full_path(&format!("{relative}/{name}")))
            })
            .collect())
    }
}
