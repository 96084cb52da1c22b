//! `smgr upload`: copy the whole data directory of a stopped cluster into
//! an object store, every file under its path (`prefix/base/5/16396.1`,
//! `prefix/pg_wal/000000010000000000000001`), so the copy can be verified
//! and scanned there, and restored (`smgr restore`).
//!
//! Relation segments may be stored compressed (`.zst`, seekable); other
//! files go up as they are. Several files go up at once; a file larger than
//! `multipart_above` goes up as a multipart upload in `part_bytes` parts,
//! a few parts in flight, so memory stays bounded whatever the file size.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::Serialize;
use smgr_api::{Error, PathNaming};

use crate::backup_manifest::{BackupFile, BackupManifest, WalRange, BACKUP_MANIFEST};
use crate::cluster::ClusterFiles;
use crate::inventory::Problem;
use crate::location::{blocking, key_under, read_object, store_error, Location, LocationOptions};
use crate::manifest::{Manifest, ManifestEntry, MANIFEST_NAME};
use crate::tree::walk;
use crate::verify::Progress;

/// How to upload.
#[derive(Clone, Copy, Debug)]
pub struct UploadOptions {
    /// Files uploaded at the same time.
    pub jobs: usize,
    /// Files larger than this use a multipart upload.
    pub multipart_above: u64,
    /// Part size of multipart uploads.
    pub part_bytes: usize,
    /// Parts of one file in flight at once.
    pub parts_in_flight: usize,
    /// Store segments compressed at this zstd level (key suffix `.zst`,
    /// zstd seekable format), in frames of `frame_blocks` blocks.
    pub compress: Option<i32>,
    /// Blocks per compressed frame.
    pub frame_blocks: usize,
    /// Only say what would be uploaded and deleted; change nothing.
    pub dry_run: bool,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            jobs: 4,
            multipart_above: 32 << 20,
            part_bytes: 8 << 20,
            parts_in_flight: 4,
            compress: None,
            frame_blocks: smgr_object::DEFAULT_FRAME_BLOCKS as usize,
            dry_run: false,
        }
    }
}

/// What an upload did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UploadReport {
    /// Files uploaded (every file of the data directory).
    pub files: u64,
    /// Of those, relation segments (what `verify` checks page by page).
    pub relation_files: u64,
    /// Of those, uploaded in parts.
    pub multipart_files: u64,
    /// Directories recorded (empty ones too).
    pub directories: u64,
    /// User tablespaces recorded (their files are under `pg_tblspc/OID/`).
    pub tablespaces: u64,
    /// Bytes of the files uploaded.
    pub bytes: u64,
    /// Bytes stored (less than `bytes` when compressed).
    pub stored_bytes: u64,
    /// Files the prefix already held as they are (an upload into a prefix
    /// with a finished upload sends only files new or changed in size or
    /// CRC-32C), left in place and not counted in `bytes`.
    pub unchanged: u64,
    /// Objects of the previous upload the cluster no longer has: deleted
    /// (or, in a dry run, that would be).
    pub deleted: Vec<String>,
    /// In a dry run, the files that would be uploaded.
    pub to_upload: Vec<String>,
    /// Whether nothing was changed (`--dry-run`).
    pub dry_run: bool,
    /// Files that failed to upload.
    pub failed: Vec<Problem>,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// What a finished upload in the prefix holds: its manifests.
struct Previous {
    /// Every file, by path: (size, CRC-32C).
    files: HashMap<String, (u64, u32)>,
    /// Every object, by key.
    objects: BTreeMap<String, ManifestEntry>,
}

impl Previous {
    /// The manifests under `prefix`, if an upload there finished.
    async fn read(store: &dyn ObjectStore, prefix: &str) -> Result<Option<Previous>, Error> {
        let Some(objects) = read_object(store, &key_under(prefix, MANIFEST_NAME)).await? else {
            return Ok(None);
        };
        let Some(backup) = read_object(store, &key_under(prefix, BACKUP_MANIFEST)).await? else {
            return Ok(None);
        };
        // Unreadable manifests: nothing can be taken as already there.
        let (Ok(objects), Ok(backup)) = (
            serde_json::from_slice::<Manifest>(&objects),
            BackupManifest::parse(&backup),
        ) else {
            return Ok(None);
        };
        Ok(Some(Previous {
            files: backup
                .files
                .into_iter()
                .map(|f| (f.path, (f.size, f.crc32c)))
                .collect(),
            objects: objects
                .objects
                .into_iter()
                .map(|o| (o.key.clone(), o))
                .collect(),
        }))
    }
}

/// What became of one file.
enum Sent {
    /// Uploaded now.
    Uploaded(Stored, bool),
    /// Already there as it is: the previous upload's object, and the
    /// file's CRC-32C.
    Unchanged(ManifestEntry, u32),
    /// Would be uploaded (dry run).
    Planned,
}

/// The CRC-32C and XXH3-64 of a file's bytes, read on the blocking pool.
async fn file_digest(source: PathBuf) -> Result<(u32, u64), Error> {
    let name = source.display().to_string();
    blocking(&name.clone(), move || {
        let mut file = std::fs::File::open(&source).map_err(|e| Error::io("read", &name, e))?;
        let mut crc = 0u32;
        let mut hash = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::io("read", &name, e))?;
            if n == 0 {
                return Ok((crc, hash.digest()));
            }
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            hash.update(&buf[..n]);
        }
    })
    .await
}

/// Uploads the whole data directory `pgdata` of a stopped cluster to
/// `url`: every file (relation segments compressed if asked), then
/// PostgreSQL's `backup_manifest` (every file's size and CRC-32C), then
/// `smgr-manifest.json` (every object as stored, the directories and the
/// tablespace links), so a copy without it is visibly incomplete.
/// Failures of single files are in the report (and then no manifest is
/// written); the error return is for a location that cannot be opened or
/// listed.
pub async fn upload(
    pgdata: &Path,
    url: &str,
    options: &LocationOptions,
    upload: UploadOptions,
    progress: Arc<Progress>,
) -> Result<UploadReport, Error> {
    let started = Instant::now();
    // A running server may be writing pages as they are copied: torn
    // pages in the copy. Refuse it, as `verify` does.
    let location = Location::Local(pgdata.to_path_buf());
    let cluster = ClusterFiles::read(&location, options).await?;
    let options = &cluster.settle(&location, options, "upload the cluster at", |control, _| {
        control.not_shut_down()
    })?;
    let root = pgdata.to_path_buf();
    let tree = blocking("data directory", move || walk(&root)).await?;
    let (store, prefix, _) = smgr_object::store_from_url(url, &options.store)?;
    let mut report = UploadReport {
        directories: tree.dirs.len() as u64,
        tablespaces: tree.tablespaces.len() as u64,
        dry_run: upload.dry_run,
        ..UploadReport::default()
    };
    // Into a finished upload: only what changed goes up. Its manifest
    // goes first, so that an upload cut short here is visibly unfinished
    // rather than a mix that claims to be whole.
    let previous = Previous::read(store.as_ref(), &prefix).await?;
    if previous.is_some() && !upload.dry_run {
        let key = key_under(&prefix, MANIFEST_NAME);
        store
            .delete(&smgr_object::object_path(&key)?)
            .await
            .map_err(|e| store_error("delete", &key, e))?;
    }
    let previous = previous.as_ref();
    progress
        .total
        .store(tree.files.iter().map(|f| f.size).sum(), Ordering::Relaxed);

    let naming = &options.naming;
    let key_of = |path: &str| key_under(&prefix, path);
    let results = futures::stream::iter(tree.files.iter().cloned())
        .map(|file| {
            let store = store.clone();
            // Relation segments may be stored compressed (seekable, so a
            // block run is still one ranged GET); other files as they are.
            let relation = is_relation_segment(naming, &file.path);
            let compress = upload.compress.filter(|_| relation);
            let suffix = if compress.is_some() {
                smgr_object::seekable::COMPRESSED_SUFFIX
            } else {
                ""
            };
            let object = format!("{}{suffix}", file.path);
            let key = key_of(&object);
            let frame_bytes = upload.frame_blocks.max(1) * options.block_size.bytes();
            let progress = progress.clone();
            let options = UploadOptions { compress, ..upload };
            // The previous upload's object for this file, if it holds the
            // same bytes under the key this upload would use.
            let same = previous.and_then(|p| {
                let (size, crc) = *p.files.get(&file.path)?;
                let entry = p.objects.get(&object)?;
                let hash = entry.file_xxh3?;
                (size == file.size).then(|| (entry.clone(), crc, hash))
            });
            async move {
                let multipart = file.size > upload.multipart_above;
                if let Some((entry, crc, hash)) = same {
                    match file_digest(file.source.clone()).await {
                        Ok(now) if now == (crc, hash) => {
                            progress.done.fetch_add(file.size, Ordering::Relaxed);
                            return (
                                file,
                                object,
                                relation,
                                multipart,
                                Ok(Sent::Unchanged(entry, crc)),
                            );
                        }
                        Ok(_) => {}
                        Err(err) => return (file, object, relation, multipart, Err(err)),
                    }
                }
                if upload.dry_run {
                    return (file, object, relation, multipart, Ok(Sent::Planned));
                }
                let outcome = if multipart {
                    put_in_parts(
                        store,
                        &key,
                        file.source.clone(),
                        options,
                        frame_bytes,
                        &progress,
                    )
                    .await
                } else {
                    put_whole(
                        store.as_ref(),
                        &key,
                        file.source.clone(),
                        compress,
                        frame_bytes,
                        &progress,
                    )
                    .await
                };
                let outcome = outcome.map(|stored| Sent::Uploaded(stored, multipart));
                (file, object, relation, multipart, outcome)
            }
        })
        .buffer_unordered(upload.jobs.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut manifest = Manifest {
        directories: tree.dirs.clone(),
        tablespaces: tree.tablespaces.clone(),
        ..Manifest::default()
    };
    let mut backup = backup_manifest_of(&cluster);
    // The keys this upload holds (or would, or tried to: a file that failed
    // keeps its old object).
    let mut keys = std::collections::HashSet::new();
    for (file, object, relation, _, outcome) in results {
        keys.insert(object.clone());
        match outcome {
            Ok(Sent::Uploaded(up, multipart)) => {
                report.files += 1;
                report.relation_files += u64::from(relation);
                report.bytes += up.bytes;
                report.stored_bytes += up.stored;
                report.multipart_files += u64::from(multipart);
                manifest.objects.push(ManifestEntry {
                    key: object,
                    size: up.stored,
                    crc32c: up.crc32c,
                    file_xxh3: Some(up.file_xxh3),
                });
                backup.files.push(BackupFile {
                    path: file.path,
                    size: up.bytes,
                    modified: file.modified,
                    crc32c: up.file_crc32c,
                });
            }
            Ok(Sent::Unchanged(entry, crc)) => {
                report.unchanged += 1;
                manifest.objects.push(entry);
                backup.files.push(BackupFile {
                    path: file.path,
                    size: file.size,
                    modified: file.modified,
                    crc32c: crc,
                });
            }
            Ok(Sent::Planned) => report.to_upload.push(file.path),
            Err(err) => report.failed.push(Problem {
                file: file.path,
                message: err.to_string(),
            }),
        }
    }
    report.failed.sort();
    report.to_upload.sort();
    // Objects of the previous upload the cluster no longer has.
    if let Some(previous) = previous {
        report.deleted = previous
            .objects
            .keys()
            .filter(|key| !keys.contains(*key) && key.as_str() != BACKUP_MANIFEST)
            .cloned()
            .collect();
    }
    if upload.dry_run {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    // Last, and only for a complete copy: PostgreSQL's manifest of the
    // files, then the objects gone from the cluster, then ours of the
    // objects, which `verify` checks the bucket against. A copy with
    // failed files has no manifest of ours, so it is never taken for
    // complete.
    if report.failed.is_empty() {
        backup.files.sort_by(|a, b| a.path.cmp(&b.path));
        let bytes = backup.to_bytes();
        let crc = crc32c::crc32c(&bytes);
        let size = bytes.len() as u64;
        let key = key_of(BACKUP_MANIFEST);
        store
            .put(&smgr_object::object_path(&key)?, PutPayload::from(bytes))
            .await
            .map_err(|e| store_error("upload", &key, e))?;
        manifest.objects.push(ManifestEntry {
            key: BACKUP_MANIFEST.to_owned(),
            size,
            crc32c: crc,
            file_xxh3: None,
        });
        for gone in &report.deleted {
            let key = key_of(gone);
            match store.delete(&smgr_object::object_path(&key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(store_error("delete", &key, err)),
            }
        }
        manifest.put(store.as_ref(), &prefix).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Whether `path` is a relation segment `verify` checks page by page.
pub(crate) fn is_relation_segment(naming: &PathNaming, path: &str) -> bool {
    ["global/", "base/", "pg_tblspc/"]
        .iter()
        .any(|top| path.starts_with(top))
        && naming.parse(path).is_ok()
}

/// An empty backup manifest for this cluster: version 2 with its system
/// identifier from PostgreSQL 17 on (whose `pg_verifybackup` checks it),
/// else version 1; the WAL from the last checkpoint's redo point to the
/// checkpoint, which a stopped cluster's `pg_wal` holds.
fn backup_manifest_of(cluster: &ClusterFiles) -> BackupManifest {
    let major: u32 = cluster
        .major_version
        .as_deref()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let control = cluster.control.as_ref();
    BackupManifest {
        version: if major >= 17 { 2 } else { 1 },
        system_identifier: control.map(|c| c.system_identifier).filter(|_| major >= 17),
        files: Vec::new(),
        wal_ranges: control
            .map(|c| WalRange {
                timeline: c.timeline,
                start_lsn: c.redo,
                end_lsn: c.checkpoint,
            })
            .into_iter()
            .collect(),
    }
}

/// What went up for one file.
#[derive(Clone, Copy, Debug)]
struct Stored {
    /// Bytes of the file.
    bytes: u64,
    /// Bytes of the object (fewer when compressed).
    stored: u64,
    /// CRC-32C of the object's bytes, for the manifest.
    crc32c: u32,
    /// CRC-32C of the file's bytes, for PostgreSQL's manifest.
    file_crc32c: u32,
    /// XXH3-64 of the file's bytes, to tell a change by.
    file_xxh3: u64,
}

/// Uploads a file in one PUT.
async fn put_whole(
    store: &dyn ObjectStore,
    key: &str,
    source: PathBuf,
    compress: Option<i32>,
    frame_bytes: usize,
    progress: &Progress,
) -> Result<Stored, Error> {
    let name = source.display().to_string();
    let what = name.clone();
    let (len, file_crc, file_xxh3, body) = blocking(&name, move || {
        let bytes = std::fs::read(source).map_err(|e| Error::io("read", what, e))?;
        let len = bytes.len() as u64;
        let file_crc = crc32c::crc32c(&bytes);
        let file_xxh3 = xxhash_rust::xxh3::xxh3_64(&bytes);
        let body = match compress {
            Some(level) => smgr_object::seekable::compress(&bytes, frame_bytes, level)?,
            None => bytes,
        };
        Ok((len, file_crc, file_xxh3, body))
    })
    .await?;
    let stored = Stored {
        bytes: len,
        stored: body.len() as u64,
        crc32c: crc32c::crc32c(&body),
        file_crc32c: file_crc,
        file_xxh3,
    };
    store
        .put(&smgr_object::object_path(key)?, PutPayload::from(body))
        .await
        .map_err(|e| store_error("upload", key, e))?;
    progress.done.fetch_add(len, Ordering::Relaxed);
    Ok(stored)
}

/// Reads up to `len` bytes from `file`: fewer only at its end.
fn read_part(file: &mut std::fs::File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Uploads a file as a multipart upload, compressing frame by frame if
/// asked.
async fn put_in_parts(
    store: Arc<dyn ObjectStore>,
    key: &str,
    source: PathBuf,
    options: UploadOptions,
    frame_bytes: usize,
    progress: &Progress,
) -> Result<Stored, Error> {
    let mut crc = 0u32;
    let mut file_crc = 0u32;
    let mut file_hash = xxhash_rust::xxh3::Xxh3::new();
    let mut compressor = match options.compress {
        Some(level) => Some(smgr_object::seekable::FrameCompressor::new(
            frame_bytes,
            level,
        )?),
        None => None,
    };
    let mut stored = 0u64;
    let name = source.display().to_string();
    let what = name.clone();
    let file = blocking(&name, move || {
        std::fs::File::open(source).map_err(|e| Error::io("read", what, e))
    })
    .await?;
    let mut file = Some(file);
    let upload = store
        .put_multipart(&smgr_object::object_path(key)?)
        .await
        .map_err(|e| store_error("start multipart upload", key, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, options.part_bytes);
    let mut total = 0u64;
    loop {
        let Some(mut f) = file.take() else { break };
        // Whole frames per part, so that only the file's end makes a
        // short frame.
        let part = options.part_bytes.div_ceil(frame_bytes) * frame_bytes;
        // The read and the compression of a part both run on the blocking
        // pool; the file and the compressor go there and come back.
        let mut c = compressor.take();
        let what = name.clone();
        let read = blocking(&name, move || {
            let buf = read_part(&mut f, part).map_err(|e| Error::io("read", what, e))?;
            let body = match c.as_mut() {
                Some(c) if !buf.is_empty() => c.push(&buf)?,
                _ => Vec::new(),
            };
            Ok((f, c, buf, body))
        })
        .await;
        let (f, c, buf, body) = match read {
            Ok(read) => read,
            Err(err) => {
                let _ = writer.abort().await;
                return Err(err);
            }
        };
        compressor = c;
        if buf.is_empty() {
            break;
        }
        if let Err(err) = writer.wait_for_capacity(options.parts_in_flight).await {
            let _ = writer.abort().await;
            return Err(store_error("upload part of", key, err));
        }
        let body = if compressor.is_some() { &body } else { &buf };
        stored += body.len() as u64;
        crc = crc32c::crc32c_append(crc, body);
        writer.write(body);
        file_crc = crc32c::crc32c_append(file_crc, &buf);
        file_hash.update(&buf);
        total += buf.len() as u64;
        progress.done.fetch_add(buf.len() as u64, Ordering::Relaxed);
        file = Some(f);
    }
    if let Some(compressor) = compressor {
        let (table, _) = compressor.finish();
        stored += table.len() as u64;
        crc = crc32c::crc32c_append(crc, &table);
        writer.write(&table);
    }
    writer
        .finish()
        .await
        .map_err(|e| store_error("finish multipart upload", key, e))?;
    Ok(Stored {
        bytes: total,
        stored,
        crc32c: crc,
        file_crc32c: file_crc,
        file_xxh3: file_hash.digest(),
    })
}
