//! Where a data directory is: a local path or an object-store URL, opened
//! as a storage manager plus a listing of its relation files.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use smgr_api::{BlockNumber, BlockSize, Error, PathNaming, Result, Smgr};
use smgr_md::{MdOptions, MdSmgr};
use smgr_object::seekable::COMPRESSED_SUFFIX;
use smgr_object::{store_from_url, ObjectOptions, ObjectSmgr, StoreOptions};

use crate::inventory::{scanned_path, skipped_entry, ListedFile, RELATION_DIRS};

/// How to open a location.
#[derive(Clone, Debug)]
pub struct LocationOptions {
    /// Bytes per block (the cluster's `BLCKSZ`).
    pub block_size: BlockSize,
    /// Blocks per segment file (the cluster's `RELSEG_SIZE`).
    pub segment_blocks: BlockNumber,
    /// File naming (the tablespace version directory).
    pub naming: PathNaming,
    /// S3 connection settings for `s3://` URLs.
    pub store: StoreOptions,
    /// Refuse compressed objects' frames that carry no checksum at all
    /// (`ObjectOptions::require_frame_checksums`).
    pub require_frame_checksums: bool,
    /// The block and segment sizes were given by the user, so a bucket
    /// without `global/pg_control` may be checked with them.
    pub sizes_given: bool,
    /// The tablespace version directory was given by the user; otherwise
    /// it comes from the cluster (`cluster.rs`).
    pub naming_given: bool,
}

impl Default for LocationOptions {
    fn default() -> Self {
        LocationOptions {
            block_size: BlockSize::DEFAULT,
            segment_blocks: smgr_api::DEFAULT_SEGMENT_BLOCKS,
            naming: PathNaming::default(),
            store: StoreOptions::new(),
            require_frame_checksums: false,
            sizes_given: false,
            naming_given: false,
        }
    }
}

/// A data directory, local or in an object store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// An object-store URL: `s3://bucket/prefix`, `file:///dir`,
    /// `memory://`.
    Object(String),
}

impl Location {
    /// A URL with a scheme is an object store; anything else is a path.
    pub fn parse(text: &str) -> Location {
        if text.contains("://") {
            Location::Object(text.to_owned())
        } else {
            Location::Local(PathBuf::from(text))
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::Object(url) => f.write_str(url),
        }
    }
}

/// What [`Opened::list`] found.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The files `pg_checksums` would look at, sorted by path.
    pub files: Vec<ListedFile>,
    /// For a bucket, every object under the prefix by key relative to it,
    /// with its stored size (what the upload manifest is checked against);
    /// `None` for a directory.
    pub objects: Option<BTreeMap<String, u64>>,
}

/// An opened location: the storage manager to read through, and a way to
/// list the files `pg_checksums` would look at.
pub struct Opened {
    /// Reads relation blocks.
    pub smgr: Arc<dyn Smgr>,
    source: Source,
    naming: PathNaming,
}

enum Source {
    Local(PathBuf),
    Object {
        store: Arc<dyn ObjectStore>,
        prefix: String,
        /// The backend, which keeps the seek tables the listing fetches.
        backend: Arc<ObjectSmgr>,
    },
}

impl Location {
    /// Opens the location read-only.
    pub fn open(&self, options: &LocationOptions) -> Result<Opened> {
        match self {
            Location::Local(dir) => {
                if !dir.is_dir() {
                    return Err(Error::InvalidPath {
                        input: dir.display().to_string(),
                        reason: "not a directory (expected a PostgreSQL data directory or an s3://, file:// URL)",
                    });
                }
                let md = MdOptions::new(options.block_size, options.segment_blocks)
                    .naming(options.naming.clone())
                    .read_only();
                Ok(Opened {
                    smgr: Arc::new(MdSmgr::open(dir, md)?),
                    source: Source::Local(dir.clone()),
                    naming: options.naming.clone(),
                })
            }
            Location::Object(url) => {
                let (store, prefix, _) = store_from_url(url, &options.store)?;
                let mut object = ObjectOptions::new(options.block_size, options.segment_blocks);
                object.naming = options.naming.clone();
                object.require_frame_checksums = options.require_frame_checksums;
                let backend = Arc::new(ObjectSmgr::new(store.clone(), &prefix, object)?);
                Ok(Opened {
                    smgr: backend.clone(),
                    source: Source::Object {
                        store,
                        prefix,
                        backend,
                    },
                    naming: options.naming.clone(),
                })
            }
        }
    }
}

impl Opened {
    /// The object store and key prefix it reads, for a bucket; `None` for
    /// a directory.
    pub fn object_store(&self) -> Option<(&dyn ObjectStore, &str)> {
        match &self.source {
            Source::Local(_) => None,
            Source::Object { store, prefix, .. } => Some((store.as_ref(), prefix)),
        }
    }

    /// What the object-store backend did so far; `None` for a directory.
    pub fn object_stats(&self) -> Option<smgr_object::ObjectStats> {
        match &self.source {
            Source::Local(_) => None,
            Source::Object { backend, .. } => Some(backend.stats()),
        }
    }

    /// Every file under the relation directories that `pg_checksums` would
    /// not skip by its name, sorted by path; for a bucket, every object
    /// under the prefix too, from the same LIST.
    pub async fn list(&self) -> Result<Listing> {
        let (mut files, objects) = match &self.source {
            Source::Local(dir) => {
                let dir = dir.clone();
                let naming = self.naming.clone();
                let files = tokio::task::spawn_blocking(move || walk_local(&dir, &naming))
                    .await
                    .map_err(|e| Error::io("list", "data directory", std::io::Error::other(e)))??;
                (files, None)
            }
            Source::Object {
                store,
                prefix,
                backend,
            } => {
                let (files, objects) =
                    list_objects(store.as_ref(), prefix, &self.naming, backend).await?;
                (files, Some(objects))
            }
        };
        files.sort();
        Ok(Listing { files, objects })
    }
}

/// An object store's error as this crate's, naming the key.
pub(crate) fn store_error(op: &'static str, key: &str, err: object_store::Error) -> Error {
    Error::io(op, key, std::io::Error::other(err))
}

/// The bytes of object `key`; `None` if there is none.
pub(crate) async fn read_object(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<bytes::Bytes>> {
    let fail = |err| store_error("read", key, err);
    match store.get(&smgr_object::object_path(key)?).await {
        Ok(found) => Ok(Some(found.bytes().await.map_err(fail)?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(fail(err)),
    }
}

/// The bytes of object `key`, which must be there.
pub(crate) async fn read_required(store: &dyn ObjectStore, key: &str) -> Result<bytes::Bytes> {
    read_object(store, key).await?.ok_or_else(|| {
        Error::io(
            "read",
            key,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
        )
    })
}

/// Runs `f` (file reads and writes, compression) on the blocking pool, so
/// that the async workers stay free to drive the transfers.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels a blocking task.
        Err(err) => Err(Error::io("run", what, std::io::Error::other(err))),
    }
}

/// `prefix/relative`, or `relative` without a prefix: a key under a
/// location's prefix.
pub fn key_under(prefix: &str, relative: &str) -> String {
    if prefix.is_empty() {
        relative.to_owned()
    } else {
        format!("{prefix}/{relative}")
    }
}

/// A listed key relative to `prefix`; `None` if it is not under it.
pub fn relative_key<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    if prefix.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// The error for a location with nothing of a cluster in it.
/// A directory reached again below itself through a symbolic link.
pub(crate) fn symlink_loop(path: String) -> Error {
    Error::io(
        "walk",
        path,
        std::io::Error::other("a symbolic link loop: this directory contains itself"),
    )
}

pub(crate) fn not_a_data_directory(location: String) -> Error {
    Error::io(
        "find a PostgreSQL data directory in",
        location,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "nothing in it under base/ or global/",
        ),
    )
}

/// Lists every object under `prefix` and keeps those `pg_checksums` would
/// scan in a data directory.
async fn list_objects(
    store: &dyn ObjectStore,
    prefix: &str,
    naming: &PathNaming,
    backend: &ObjectSmgr,
) -> Result<(Vec<ListedFile>, BTreeMap<String, u64>)> {
    let root = smgr_object::object_path(prefix)?;
    let metas: Vec<_> = store
        .list(if prefix.is_empty() { None } else { Some(&root) })
        .try_collect()
        .await
        .map_err(|e| Error::io("list", format!("{prefix}/"), std::io::Error::other(e)))?;
    let mut listed = Vec::new();
    let mut objects = BTreeMap::new();
    let mut cluster_keys = false;
    for meta in metas {
        let Some(relative) = relative_key(prefix, meta.location.as_ref()) else {
            continue;
        };
        objects.insert(relative.to_owned(), meta.size);
        // A compressed segment object: its key without `.zst` names the
        // file, and its seek table (one ranged GET of its tail) the size.
        let (path, compressed) = match relative.strip_suffix(COMPRESSED_SUFFIX) {
            Some(path) => (path, true),
            None => (relative, false),
        };
        cluster_keys |= path.starts_with("base/") || path.starts_with("global/");
        if scanned_path(path, naming) {
            listed.push((path.to_owned(), compressed, meta));
        }
    }
    if !cluster_keys {
        return Err(not_a_data_directory(if prefix.is_empty() {
            "the store's root".to_owned()
        } else {
            format!("{prefix}/")
        }));
    }
    // Seek tables many at once: a cluster has thousands of segment files.
    let files = futures::stream::iter(listed)
        .map(|(path, compressed, meta)| async move {
            let mut file = ListedFile {
                path,
                size: meta.size,
                stored: meta.size,
                unreadable: None,
            };
            if compressed {
                // Through the backend, which keeps the table for its own
                // listing of the directory (one tail GET per object, not
                // two). A damaged table fails its own fork only; a
                // request that fails fails the listing.
                match backend
                    .seek_table(
                        meta.location.as_ref(),
                        meta.size,
                        meta.e_tag.clone(),
                        meta.version.clone(),
                    )
                    .await
                {
                    Ok(table) => file.size = table.decompressed_len(),
                    Err(err @ (Error::CorruptObject { .. } | Error::CorruptFrame { .. })) => {
                        file.unreadable = Some(err.to_string());
                    }
                    Err(err) => return Err(err),
                }
            }
            Ok::<_, Error>(file)
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    Ok((files, objects))
}

/// Walks the relation directories of a local data directory as
/// `pg_checksums` does: every subdirectory recursively, and for each
/// `pg_tblspc` link only its tablespace version directory.
fn walk_local(root: &Path, naming: &PathNaming) -> Result<Vec<ListedFile>> {
    // pg_checksums refuses a directory that is not a cluster; checking an
    // empty one and finding nothing wrong would be a false "all good".
    std::fs::metadata(root)
        .map_err(|e| Error::io("open data directory", root.display().to_string(), e))?;
    if !root.join("base").is_dir() && !root.join("global").is_dir() {
        return Err(not_a_data_directory(root.display().to_string()));
    }
    let mut files = Vec::new();
    for top in RELATION_DIRS {
        if !root.join(top).is_dir() {
            continue;
        }
        if top == "pg_tblspc" {
            for spc in read_dir(root, top)? {
                if skipped_entry(&spc) {
                    continue;
                }
                let version = format!("{top}/{spc}/{}", naming.tablespace_version_dir());
                if !root.join(&version).is_dir() {
                    return Err(Error::InvalidPath {
                        input: format!("{top}/{spc}"),
                        reason: "tablespace link without this server version's directory (wrong --tablespace-version-dir?)",
                    });
                }
                walk_dir(root, &version, &mut files)?;
            }
        } else {
            walk_dir(root, top, &mut files)?;
        }
    }
    Ok(files)
}

fn walk_dir(root: &Path, relative: &str, files: &mut Vec<ListedFile>) -> Result<()> {
    let meta =
        std::fs::metadata(root.join(relative)).map_err(|e| Error::io("stat", relative, e))?;
    walk_dir_in(root, relative, &mut vec![(meta.dev(), meta.ino())], files)
}

/// `walk_dir` below the directories `ancestors` (device, inode) on the
/// way down: a link back to one of them is a loop, an error naming it.
fn walk_dir_in(
    root: &Path,
    relative: &str,
    ancestors: &mut Vec<(u64, u64)>,
    files: &mut Vec<ListedFile>,
) -> Result<()> {
    for name in read_dir(root, relative)? {
        if skipped_entry(&name) {
            continue;
        }
        let path = format!("{relative}/{name}");
        // Follows symbolic links, as pg_checksums descends into them.
        let meta = std::fs::metadata(root.join(&path)).map_err(|e| Error::io("stat", &path, e))?;
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                return Err(symlink_loop(path));
            }
            ancestors.push(id);
            walk_dir_in(root, &path, ancestors, files)?;
            ancestors.pop();
        } else if meta.is_file() {
            files.push(ListedFile {
                path,
                size: meta.len(),
                stored: meta.len(),
                unreadable: None,
            });
        }
    }
    Ok(())
}

fn read_dir(root: &Path, relative: &str) -> Result<Vec<String>> {
    let reader = std::fs::read_dir(root.join(relative))
        .map_err(|e| Error::io("open directory", relative, e))?;
    let mut names = Vec::new();
    for entry in reader {
        let entry = entry.map_err(|e| Error::io("read directory", relative, e))?;
        // A name that is not UTF-8 is not a relation file; its lossy form
        // is reported as an unexpected file.
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}
