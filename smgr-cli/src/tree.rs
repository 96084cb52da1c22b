//! Every file and directory of a data directory, as a backup copies it.
//!
//! Directories are kept even when empty (PostgreSQL needs `pg_notify`,
//! `pg_stat_tmp`, … to exist). A user tablespace is a symbolic link
//! `pg_tblspc/OID` to a directory elsewhere: its contents are listed under
//! `pg_tblspc/OID/`, as `pg_basebackup` names them, and the link itself is
//! kept as a [`Tablespace`] so a restore can make it again. Any other
//! symbolic link (a `pg_wal` moved by `initdb -X`) is followed and copied
//! as what it points to. `postmaster.pid` is left out (a stopped cluster
//! has none; a stale one would keep a restored server from starting), and
//! so is a `backup_manifest` at the top (a restored cluster has one; the
//! upload writes its own).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use smgr_api::Error;

use crate::backup_manifest::modified_secs;

/// A data directory's contents.
#[derive(Clone, Debug, Default)]
pub struct ClusterTree {
    /// Regular files, by path relative to the data directory.
    pub files: Vec<TreeFile>,
    /// Directories (relative paths), parents before children.
    pub dirs: Vec<String>,
    /// User tablespaces.
    pub tablespaces: Vec<Tablespace>,
}

/// One file.
#[derive(Clone, Debug)]
pub struct TreeFile {
    /// Path relative to the data directory, `/`-separated.
    pub path: String,
    /// Where it is read from.
    pub source: PathBuf,
    /// Bytes.
    pub size: u64,
    /// Last modification, seconds since the Unix epoch.
    pub modified: u64,
}

/// A user tablespace: the link `pg_tblspc/OID` and where it pointed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tablespace {
    /// The tablespace's OID (the link's name).
    pub oid: String,
    /// The directory the link pointed to.
    pub target: String,
}

/// Lists `pgdata`.
pub fn walk(pgdata: &Path) -> Result<ClusterTree, Error> {
    let meta = std::fs::metadata(pgdata)
        .map_err(|e| Error::io("open data directory", pgdata.display().to_string(), e))?;
    // Copying any directory as if it were a cluster would be a false
    // "all done".
    if !pgdata.join("base").is_dir() && !pgdata.join("global").is_dir() {
        return Err(crate::location::not_a_data_directory(
            pgdata.display().to_string(),
        ));
    }
    let mut tree = ClusterTree::default();
    let mut ancestors = vec![(meta.dev(), meta.ino())];
    walk_in(pgdata, "", &mut ancestors, &mut tree)?;
    tree.files.sort_by(|a, b| a.path.cmp(&b.path));
    tree.dirs.sort();
    tree.tablespaces.sort_by(|a, b| a.oid.cmp(&b.oid));
    Ok(tree)
}

fn walk_in(
    dir: &Path,
    relative: &str,
    ancestors: &mut Vec<(u64, u64)>,
    tree: &mut ClusterTree,
) -> Result<(), Error> {
    let shown = if relative.is_empty() { "." } else { relative };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list directory", shown, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", shown, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::InvalidPath {
                input: format!("{shown}/{}", name.to_string_lossy()),
                reason: "a file name that is not UTF-8 cannot be named in a backup manifest",
            });
        };
        let path = if relative.is_empty() {
            name.to_owned()
        } else {
            format!("{relative}/{name}")
        };
        // A running server's pid file, and the manifest a restore (or
        // pg_basebackup) leaves: the upload writes its own.
        if path == "postmaster.pid" || path == crate::backup_manifest::BACKUP_MANIFEST {
            continue;
        }
        let source = entry.path();
        let link = entry
            .file_type()
            .map_err(|e| Error::io("stat", &path, e))?
            .is_symlink();
        if link && relative == "pg_tblspc" {
            let target =
                std::fs::read_link(&source).map_err(|e| Error::io("read link", &path, e))?;
            tree.tablespaces.push(Tablespace {
                oid: name.to_owned(),
                target: target.display().to_string(),
            });
        }
        // Follows links: what they point to is what is copied.
        let meta = std::fs::metadata(&source).map_err(|e| Error::io("stat", &path, e))?;
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                return Err(crate::location::symlink_loop(path));
            }
            if !(link && relative == "pg_tblspc") {
                tree.dirs.push(path.clone());
            }
            ancestors.push(id);
            walk_in(&source, &path, ancestors, tree)?;
            ancestors.pop();
        } else if meta.is_file() {
            tree.files.push(TreeFile {
                size: meta.len(),
                modified: modified_secs(&meta),
                path,
                source,
            });
        }
        // Sockets, fifos and devices have no place in a data directory.
    }
    Ok(())
}
