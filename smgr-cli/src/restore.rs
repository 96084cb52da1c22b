//! `smgr restore`: a cluster `smgr upload` copied, written back into an
//! empty directory, byte for byte.
//!
//! What to write comes from the upload's two manifests: PostgreSQL's
//! `backup_manifest` (every file, its size and CRC-32C) and
//! `smgr-manifest.json` (every object as stored, the directories, the
//! tablespace links). An upload without them did not finish and is
//! refused. Each file streams from its object to disk (decompressed if it
//! was stored `.zst`), its CRC-32C and size checked against the manifest
//! and, for relation segments of a cluster with data checksums, every
//! page's checksum checked as it passes; then it is fsynced, and at the
//! end every directory. Several files at once, with progress.
//!
//! A tablespace's files go to the directory its link pointed to, or to
//! one the user maps (`--tablespace OID=DIR`), and the link
//! `pg_tblspc/OID` is made again. The target directory, and every
//! tablespace directory, must be empty or missing: nothing is written
//! anywhere else, and a refusal changes nothing. The manifest is left in
//! the directory as `backup_manifest`, as `pg_basebackup` leaves it, so
//! `pg_verifybackup` can check the result. Directories are made 0700 and
//! files 0600, as PostgreSQL wants its data directory.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use smgr_api::{BlockSize, Error, PageFormat, PageVerifier, PathNaming};

use crate::backup_manifest::{BackupManifest, BACKUP_MANIFEST};
use crate::cluster::ClusterFiles;
use crate::inventory::Problem;
use crate::location::{blocking, key_under, read_required, store_error, Location, LocationOptions};
use crate::manifest::{Manifest, MANIFEST_NAME};
use crate::upload::is_relation_segment;
use crate::verify::{BadBlock, Progress};

/// How to restore.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Files written at the same time.
    pub jobs: usize,
    /// Where tablespaces go, by OID, instead of where they were.
    pub tablespaces: BTreeMap<String, PathBuf>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            jobs: 4,
            tablespaces: BTreeMap::new(),
        }
    }
}

/// What a restore did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Directories made.
    pub directories: u64,
    /// Tablespace links made, by OID, with where each points.
    pub tablespaces: BTreeMap<String, String>,
    /// Pages whose checksum is wrong, by file and block.
    pub bad_blocks: Vec<BadBlock>,
    /// Files missing, damaged or not as the manifest says.
    pub problems: Vec<Problem>,
    /// Wall time, in seconds.
    pub seconds: f64,
}

impl RestoreReport {
    /// 0 all good, 1 bad pages, 2 problems (as `verify`).
    pub fn exit_code(&self) -> u8 {
        if !self.problems.is_empty() {
            2
        } else if !self.bad_blocks.is_empty() {
            1
        } else {
            0
        }
    }
}

fn refuse(dir: &Path, why: &str) -> Error {
    Error::io(
        "restore into",
        dir.display().to_string(),
        std::io::Error::new(std::io::ErrorKind::AlreadyExists, why.to_owned()),
    )
}

/// Whether `dir` is missing or an empty directory.
fn empty_or_missing(dir: &Path) -> Result<bool, Error> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(err) => Err(Error::io("open", dir.display().to_string(), err)),
    }
}

/// Restores the upload at `url` into `dir`.
pub async fn restore(
    url: &str,
    dir: &Path,
    store_options: &smgr_object::StoreOptions,
    options: &RestoreOptions,
    progress: Arc<Progress>,
) -> Result<RestoreReport, Error> {
    let started = Instant::now();
    if !empty_or_missing(dir)? {
        return Err(refuse(
            dir,
            "not empty: a restore writes only into an empty directory",
        ));
    }
    let (store, prefix, _) = smgr_object::store_from_url(url, store_options)?;
    let incomplete = |what: &str, err: Error| {
        Error::io(
            "restore from",
            url.to_owned(),
            std::io::Error::other(format!(
                "no readable {what} (not an smgr upload, or one that did not finish): {err}"
            )),
        )
    };
    let objects: Manifest = {
        let bytes = read_required(store.as_ref(), &key_under(&prefix, MANIFEST_NAME))
            .await
            .map_err(|e| incomplete(MANIFEST_NAME, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            incomplete(
                MANIFEST_NAME,
                Error::io("parse", MANIFEST_NAME, std::io::Error::other(e)),
            )
        })?
    };
    let manifest_bytes = read_required(store.as_ref(), &key_under(&prefix, BACKUP_MANIFEST))
        .await
        .map_err(|e| incomplete(BACKUP_MANIFEST, e))?;
    let backup = BackupManifest::parse(&manifest_bytes).map_err(|why| {
        Error::io(
            "restore from",
            url.to_owned(),
            std::io::Error::other(format!("{BACKUP_MANIFEST}: {why}")),
        )
    })?;

    // Where each tablespace goes; every one must be empty too, checked
    // before anything is written.
    let mut targets = BTreeMap::new();
    for space in &objects.tablespaces {
        let target = options
            .tablespaces
            .get(&space.oid)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(&space.target));
        if !target.is_absolute() {
            return Err(refuse(
                &target,
                "a tablespace directory must be an absolute path",
            ));
        }
        if !empty_or_missing(&target)? {
            return Err(refuse(
                &target,
                &format!(
                    "tablespace {} would go here, and it is not empty (map it elsewhere with --tablespace {}=DIR)",
                    space.oid, space.oid
                ),
            ));
        }
        targets.insert(space.oid.clone(), target);
    }
    let local = |path: &str| -> PathBuf {
        let mut parts = path.splitn(3, '/');
        if let (Some("pg_tblspc"), Some(oid), rest) = (parts.next(), parts.next(), parts.next()) {
            if let Some(target) = targets.get(oid) {
                return match rest {
                    Some(rest) => target.join(rest),
                    None => target.clone(),
                };
            }
        }
        dir.join(path)
    };

    // Directories and links first.
    let mut report = RestoreReport::default();
    // Owner-only, as PostgreSQL wants its data directory (and as
    // pg_basebackup writes it): directories 0700, files 0600.
    let mkdir = |path: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| Error::io("create directory", path.display().to_string(), e))
    };
    mkdir(dir)?;
    for (oid, target) in &targets {
        mkdir(target)?;
        mkdir(&dir.join("pg_tblspc"))?;
        let link = dir.join("pg_tblspc").join(oid);
        std::os::unix::fs::symlink(target, &link)
            .map_err(|e| Error::io("make tablespace link", link.display().to_string(), e))?;
        report
            .tablespaces
            .insert(oid.clone(), target.display().to_string());
    }
    for path in &objects.directories {
        mkdir(&local(path))?;
        report.directories += 1;
    }

    // Pages are checked with the cluster's own settings, and tablespace
    // paths read with its version directory, as `verify` reads them.
    let location = Location::Object(url.to_owned());
    let settings = LocationOptions {
        store: store_options.clone(),
        ..LocationOptions::default()
    };
    let cluster = ClusterFiles::read(&location, &settings).await?;
    let naming = match cluster.tablespace_version_dir() {
        Some(dir) => PathNaming::new(dir)?,
        None => PathNaming::default(),
    };
    let verifier = match &cluster.control {
        Some(control) if control.data_checksum_version > 0 => Some((
            PageVerifier::new(
                PageFormat::Postgres { checksums: true },
                BlockSize::new(control.block_size)?,
            ),
            control.segment_blocks,
        )),
        _ => None,
    };
    let stored: HashMap<&str, u64> = objects
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.size))
        .collect();
    progress
        .total
        .store(backup.files.iter().map(|f| f.size).sum(), Ordering::Relaxed);
    let outcomes = futures::stream::iter(backup.files.iter())
        .map(|file| {
            let compressed = format!("{}{}", file.path, smgr_object::seekable::COMPRESSED_SUFFIX);
            let object = if stored.contains_key(file.path.as_str()) {
                Some(file.path.clone())
            } else if stored.contains_key(compressed.as_str()) {
                Some(compressed)
            } else {
                None
            };
            let target = local(&file.path);
            let store = store.clone();
            let key = object.as_ref().map(|o| key_under(&prefix, o));
            // Page checks for relation segments (block numbers within
            // the fork: the segment's number times its blocks, plus the
            // block's place in the file).
            let pages = verifier.as_ref().and_then(|(verifier, segment_blocks)| {
                let segment = naming.parse(&file.path).ok()?;
                is_relation_segment(&naming, &file.path)
                    .then(|| (*verifier, segment.segno * segment_blocks))
            });
            let progress = progress.clone();
            async move {
                let Some(key) = key else {
                    return Err(Problem {
                        file: file.path.clone(),
                        message:
                            "missing: the manifest lists it but the bucket has no object for it"
                                .into(),
                    });
                };
                let compressed = key.ends_with(smgr_object::seekable::COMPRESSED_SUFFIX);
                restore_file(store, key, compressed, target, pages, &progress)
                    .await
                    .map(|written| (file, written))
                    .map_err(|err| Problem {
                        file: file.path.clone(),
                        message: err.to_string(),
                    })
            }
        })
        .buffer_unordered(options.jobs.max(1))
        .collect::<Vec<_>>()
        .await;
    for outcome in outcomes {
        match outcome {
            Ok((file, written)) => {
                report.files += 1;
                report.bytes += written.size;
                if written.size != file.size {
                    report.problems.push(Problem {
                        file: file.path.clone(),
                        message: format!(
                            "size: the manifest says {} bytes, the object gave {}",
                            file.size, written.size
                        ),
                    });
                } else if written.crc32c != file.crc32c {
                    report.problems.push(Problem {
                        file: file.path.clone(),
                        message: format!(
                            "damaged: CRC-32C {:08x}, the manifest says {:08x}",
                            written.crc32c, file.crc32c
                        ),
                    });
                }
                report.bad_blocks.extend(written.bad_blocks.into_iter().map(
                    |(block_in_file, block, detail)| BadBlock {
                        file: file.path.clone(),
                        block_in_file,
                        block,
                        detail,
                    },
                ));
            }
            Err(problem) => report.problems.push(problem),
        }
    }
    // The manifest, as pg_basebackup leaves it, then every directory made
    // durable.
    let manifest_path = dir.join(BACKUP_MANIFEST);
    let bytes = manifest_bytes.clone();
    let shown = manifest_path.display().to_string();
    blocking(&shown.clone(), move || {
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&manifest_path)?;
            file.write_all(&bytes)?;
            file.sync_all()
        };
        write().map_err(|e| Error::io("write", shown, e))
    })
    .await?;
    let mut dirs: Vec<PathBuf> = objects.directories.iter().map(|d| local(d)).collect();
    dirs.push(dir.to_path_buf());
    dirs.push(dir.join("pg_tblspc"));
    dirs.extend(targets.values().cloned());
    for path in dirs {
        if path.is_dir() {
            let shown = path.display().to_string();
            blocking(&shown.clone(), move || {
                let sync = || std::fs::File::open(&path)?.sync_all();
                sync().map_err(|e| Error::io("fsync directory", shown, e))
            })
            .await?;
        }
    }
    report.bad_blocks.sort();
    report.problems.sort();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What writing one file gave.
struct Written {
    size: u64,
    crc32c: u32,
    /// (block in file, block in fork, what is wrong)
    bad_blocks: Vec<(u32, u32, String)>,
}

/// Where a file's restored bytes go: the file, the CRC, the page checks.
struct Sink {
    file: std::io::BufWriter<std::fs::File>,
    size: u64,
    crc: u32,
    pages: Option<(PageVerifier, u32)>,
    page: Vec<u8>,
    block_in_file: u32,
    bad_blocks: Vec<(u32, u32, String)>,
}

impl Sink {
    fn check_page(&mut self) {
        if let Some((verifier, first_block)) = &self.pages {
            let block = first_block + self.block_in_file;
            if let Err(why) = verifier.verify(&self.page, block) {
                self.bad_blocks
                    .push((self.block_in_file, block, why.to_string()));
            }
        }
        self.block_in_file += 1;
        self.page.clear();
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        if let Some((verifier, _)) = &self.pages {
            let block = verifier.block_size().bytes();
            let mut rest = bytes;
            while !rest.is_empty() {
                let take = (block - self.page.len()).min(rest.len());
                self.page.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if self.page.len() == block {
                    self.check_page();
                }
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Streams object `key` into the file `target` (decompressing a `.zst`
/// object), checking pages as they pass; fsyncs the file.
async fn restore_file(
    store: Arc<dyn ObjectStore>,
    key: String,
    compressed: bool,
    target: PathBuf,
    pages: Option<(PageVerifier, u32)>,
    progress: &Progress,
) -> Result<Written, Error> {
    let path = smgr_object::object_path(&key)?;
    let mut body = match store.get(&path).await {
        Ok(found) => found.into_stream(),
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::io(
                "read",
                key,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "missing: the manifest lists it but the bucket has no such object",
                ),
            ))
        }
        Err(err) => return Err(store_error("read", &key, err)),
    };
    // The file is written on the blocking pool, fed chunk by chunk.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let shown = target.display().to_string();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<Written> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)?;
        let mut sink = Sink {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            size: 0,
            crc: 0,
            pages,
            page: Vec::new(),
            block_in_file: 0,
            bad_blocks: Vec::new(),
        };
        if compressed {
            let mut decoder = zstd::stream::write::Decoder::new(&mut sink)?;
            while let Some(chunk) = rx.blocking_recv() {
                decoder.write_all(&chunk)?;
            }
            decoder.flush()?;
        } else {
            while let Some(chunk) = rx.blocking_recv() {
                sink.write_all(&chunk)?;
            }
        }
        sink.flush()?;
        let file = sink
            .file
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.sync_all()?;
        Ok(Written {
            size: sink.size,
            crc32c: sink.crc,
            bad_blocks: sink.bad_blocks,
        })
    });
    let mut failed = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                if !compressed {
                    progress
                        .done
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(err) => {
                failed = Some(store_error("read", &key, err));
                break;
            }
        }
    }
    drop(tx);
    let written = match writer.await {
        Ok(result) => result.map_err(|e| Error::io("write", shown, e)),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(Error::io("write", shown, std::io::Error::other(err))),
    };
    if let Some(err) = failed {
        return Err(err);
    }
    let written = written?;
    if compressed {
        progress.done.fetch_add(written.size, Ordering::Relaxed);
    }
    Ok(written)
}
