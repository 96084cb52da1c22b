//! `smgr upload`: copy a data directory's relation files into an object
//! store, under the keys the object backend reads (`prefix/base/5/16396.1`),
//! so the copy can be verified and scanned there.
//!
//! Files are the ones `smgr verify` checks (what `pg_checksums` scans and
//! that name a relation segment); files with other names are left out and
//! listed. Several files go up at once; a file larger than
//! `multipart_above` goes up as a multipart upload in `part_bytes` parts,
//! a few parts in flight, so memory stays bounded whatever the file size.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::Serialize;
use smgr_api::Error;

use crate::cluster::{ClusterFiles, CONTROL_FILE, VERSION_FILE};
use crate::inventory::{Inventory, Problem};
use crate::location::{key_under, Location, LocationOptions};
use crate::manifest::{Manifest, ManifestEntry};
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
        }
    }
}

/// What an upload did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UploadReport {
    /// Files uploaded.
    pub files: u64,
    /// Of those, uploaded in parts.
    pub multipart_files: u64,
    /// Bytes of the files uploaded.
    pub bytes: u64,
    /// Bytes stored (less than `bytes` when compressed).
    pub stored_bytes: u64,
    /// Files skipped by name, as `pg_checksums` skips them.
    pub skipped_files: u64,
    /// Files not uploaded because they are not relation segments.
    pub not_relation_files: Vec<String>,
    /// Files that failed to upload.
    pub failed: Vec<Problem>,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// Uploads the relation files of the data directory `pgdata` to `url`.
/// Failures of single files are in the report; the error return is for a
/// location that cannot be opened or listed.
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
    let local = location.open(options)?;
    let inventory = Inventory::build(
        local.list().await?.files,
        &options.naming,
        options.block_size,
        options.segment_blocks,
    );
    let (store, prefix, _) = smgr_object::store_from_url(url, &options.store)?;
    let mut report = UploadReport {
        skipped_files: inventory.skipped,
        not_relation_files: inventory
            .problems
            .iter()
            .filter(|p| p.message.starts_with("unexpected file"))
            .map(|p| p.file.clone())
            .collect(),
        ..UploadReport::default()
    };
    let files: Vec<(String, u64)> = inventory
        .forks
        .iter()
        .flat_map(|f| &f.segments)
        .map(|s| (s.path.clone(), s.size))
        .collect();
    // The cluster's own small files go up plain, after the relation
    // files: `verify` and `scan` of the copy read them as they read a
    // directory's.
    let mut cluster_files = Vec::new();
    for relative in [VERSION_FILE, CONTROL_FILE] {
        if let Ok(meta) = std::fs::metadata(pgdata.join(relative)) {
            cluster_files.push((relative.to_owned(), meta.len()));
        }
    }
    progress.total.store(
        files.iter().chain(&cluster_files).map(|f| f.1).sum(),
        Ordering::Relaxed,
    );

    let key_of = |path: &str| key_under(&prefix, path);
    let mut results = futures::stream::iter(files)
        .map(|(path, size)| {
            let store = store.clone();
            let suffix = if upload.compress.is_some() {
                smgr_object::seekable::COMPRESSED_SUFFIX
            } else {
                ""
            };
            let object = format!("{path}{suffix}");
            let key = key_of(&object);
            let frame_bytes = upload.frame_blocks.max(1) * options.block_size.bytes();
            let source = pgdata.join(&path);
            let progress = progress.clone();
            async move {
                let multipart = size > upload.multipart_above;
                let outcome = if multipart {
                    put_in_parts(store, &key, source, upload, frame_bytes, &progress).await
                } else {
                    put_whole(
                        store.as_ref(),
                        &key,
                        source,
                        upload.compress,
                        frame_bytes,
                        &progress,
                    )
                    .await
                };
                (path, object, multipart, outcome)
            }
        })
        .buffer_unordered(upload.jobs.max(1))
        .collect::<Vec<_>>()
        .await;
    for (path, _) in cluster_files {
        let source = pgdata.join(&path);
        let outcome = put_whole(store.as_ref(), &key_of(&path), source, None, 0, &progress).await;
        results.push((path.clone(), path, false, outcome));
    }
    let mut manifest = Manifest::default();
    for (path, object, multipart, outcome) in results {
        match outcome {
            Ok(up) => {
                report.files += 1;
                report.bytes += up.bytes;
                report.stored_bytes += up.stored;
                report.multipart_files += u64::from(multipart);
                manifest.objects.push(ManifestEntry {
                    key: object,
                    size: up.stored,
                    crc32c: up.crc32c,
                });
            }
            Err(err) => report.failed.push(Problem {
                file: path,
                message: err.to_string(),
            }),
        }
    }
    report.failed.sort();
    // Last, and only for a complete copy: what `verify` checks the bucket
    // against. A copy with failed files has no manifest, so it is never
    // taken for complete.
    if report.failed.is_empty() {
        manifest.put(store.as_ref(), &prefix).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn store_error(op: &'static str, key: &str, err: object_store::Error) -> Error {
    Error::io(op, key, std::io::Error::other(err))
}

/// Runs `f` (file reads, compression) on the blocking pool, so that the
/// async workers stay free to drive the uploads.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels a blocking task.
        Err(err) => Err(Error::io("upload", what, std::io::Error::other(err))),
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
    let (len, body) = blocking(&name, move || {
        let bytes = std::fs::read(source).map_err(|e| Error::io("read", what, e))?;
        let len = bytes.len() as u64;
        let body = match compress {
            Some(level) => smgr_object::seekable::compress(&bytes, frame_bytes, level)?,
            None => bytes,
        };
        Ok((len, body))
    })
    .await?;
    let stored = Stored {
        bytes: len,
        stored: body.len() as u64,
        crc32c: crc32c::crc32c(&body),
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
    })
}
