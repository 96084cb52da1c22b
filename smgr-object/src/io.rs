//! Ranged reads with single flight, and segment rewrites.

use std::ops::Range;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use smgr_api::{Error, ForkNumber, RelFileLocator, Result};

use crate::meta::{join, SegmentMeta};
use crate::Inner;

/// What the prefetch cache is keyed by: the object, its version, the range.
/// Bytes of another version can never be served for a read that expects
/// this one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RangeKey {
    pub key: String,
    pub e_tag: Option<String>,
    pub start: u64,
    pub end: u64,
}

impl Inner {
    /// The object key of a segment.
    pub fn key(&self, rel: RelFileLocator, fork: ForkNumber, segno: u32) -> Result<String> {
        Ok(join(
            &self.prefix,
            &self.opts.naming.segment_path(rel, fork, segno)?,
        ))
    }

    /// A ranged GET, retried with backoff (at most 4 attempts in all) while
    /// it fails in a way that may pass: a transient store error, or a body
    /// shorter than the range (a connection cut mid-body). Not-found,
    /// precondition and permission failures are final at once.
    pub async fn get_range(
        &self,
        key: &str,
        seg: &SegmentMeta,
        range: Range<u64>,
    ) -> Result<Bytes> {
        let mut delay = std::time::Duration::from_millis(20);
        let mut attempt = 1;
        loop {
            match self.get_range_once(key, seg, range.clone()).await {
                Err(err) if attempt < 4 && transient(&err) => {
                    tracing::debug!(key, %err, attempt, "retrying a ranged GET");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One ranged GET of `range` of a segment at the version `seg` names.
    async fn get_range_once(
        &self,
        key: &str,
        seg: &SegmentMeta,
        range: Range<u64>,
    ) -> Result<Bytes> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: seg.e_tag.clone(),
            version: seg.version.clone(),
            ..GetOptions::default()
        };
        let path = Path::from(key);
        let result = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(|err| crate::error::from_store("read", key, err))?;
        let bytes = result
            .bytes()
            .await
            .map_err(|err| crate::error::from_store("read", key, err))?;
        let expected = range.end - range.start;
        if bytes.len() as u64 != expected {
            return Err(Error::ShortRead {
                path: key.to_owned(),
                first: 0,
                last: 0,
                read: bytes.len() as u64,
                expected,
            });
        }
        Ok(bytes)
    }

    /// `get_range` through the prefetch cache. A range that `prefetch` asked
    /// for goes through the cache: the read joins the GET in flight (single
    /// flight), takes the cached bytes, or, if the prefetch task has not run
    /// yet, does the GET itself and leaves the bytes for that task to find,
    /// so it never fetches them again. Entries expire once idle. Any other
    /// range is a plain GET that does not fill the cache.
    pub async fn fetch(&self, key: &str, seg: &SegmentMeta, range: Range<u64>) -> Result<Bytes> {
        let cache_key = RangeKey {
            key: key.to_owned(),
            e_tag: seg.e_tag.clone(),
            start: range.start,
            end: range.end,
        };
        if !self.is_prefetching(&cache_key) && !self.prefetched.contains_key(&cache_key) {
            return self.get_range(key, seg, range).await;
        }
        self.prefetched
            .try_get_with(cache_key, self.get_range_owned(key, seg, range))
            .await
            .map_err(|err| copy_error(&err))
    }

    /// [`get_range`](Self::get_range) for the prefetch cache: the bytes in
    /// an allocation of their own. A store may hand back a slice of a
    /// larger buffer (the in-memory store returns a view of the whole
    /// object), and a cached slice would keep all of it alive while the
    /// cache counts only the slice: found by the soak run, where replaced
    /// segment objects piled up to gigabytes.
    pub async fn get_range_owned(
        &self,
        key: &str,
        seg: &SegmentMeta,
        range: Range<u64>,
    ) -> Result<Bytes> {
        let bytes = self.get_range(key, seg, range).await?;
        Ok(Bytes::copy_from_slice(&bytes))
    }

    /// Whether `prefetch` registered this range and its task has not ended.
    pub fn is_prefetching(&self, key: &RangeKey) -> bool {
        self.prefetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// The whole segment at the version `seg` names, decompressed if the
    /// object is (`key` is the object's key).
    pub async fn get_all(&self, key: &str, seg: &SegmentMeta) -> Result<Vec<u8>> {
        if seg.size == 0 {
            return Ok(Vec::new());
        }
        if seg.table.is_some() {
            return self.read_compressed(key, seg, 0..seg.size).await;
        }
        Ok(self.get_range(key, seg, 0..seg.stored).await?.to_vec())
    }

    /// Logical bytes `range` of a compressed segment: one ranged GET of the
    /// frames that hold them, each frame decompressed (libzstd checks its
    /// content checksum), then the range cut out.
    pub async fn read_compressed(
        &self,
        key: &str,
        seg: &SegmentMeta,
        range: Range<u64>,
    ) -> Result<Vec<u8>> {
        let Some(table) = &seg.table else {
            return Ok(self.get_range(key, seg, range).await?.to_vec());
        };
        let frames = table.frames_for(range.clone());
        let stored = table.compressed_range(frames.clone());
        let logical = table.decompressed_range(frames.clone());
        if range.start < logical.start || range.end > logical.end {
            return Err(Error::CorruptObject {
                key: key.to_owned(),
                detail: format!(
                    "bytes {}..{} are past the {} bytes its seek table describes",
                    range.start,
                    range.end,
                    table.decompressed_len()
                ),
            });
        }
        // Through the prefetch cache: a prefetch of these blocks fetched
        // exactly these frames.
        let bytes = self.fetch(key, seg, stored.clone()).await?;
        let mut out = vec![0u8; (logical.end - logical.start) as usize];
        for i in frames {
            let c = table.compressed_range(i..i + 1);
            let d = table.decompressed_range(i..i + 1);
            crate::seekable::decompress_frame(
                key,
                i,
                &bytes[(c.start - stored.start) as usize..(c.end - stored.start) as usize],
                &mut out[(d.start - logical.start) as usize..(d.end - logical.start) as usize],
            )?;
        }
        out.drain(..(range.start - logical.start) as usize);
        out.truncate((range.end - range.start) as usize);
        Ok(out)
    }

    /// Writes a segment object: creating it if `old` is `None`, else
    /// replacing exactly the version `old` names (when the store supports
    /// conditional puts), so a concurrent writer is an error, not a loss.
    pub async fn put_segment(
        &self,
        key: &str,
        old: Option<&SegmentMeta>,
        data: Vec<u8>,
    ) -> Result<SegmentMeta> {
        // A compressed segment stays compressed, in frames of the size it
        // had; a new one is compressed if the options say so.
        // (Recompressing only the frames a write touches is next.)
        let bs = self.opts.block_size.bytes();
        let (level, default_frame) = match self.opts.compression {
            crate::Compression::Zstd {
                level,
                frame_blocks,
            } => (level, frame_blocks as usize * bs),
            crate::Compression::None => (3, 16 * bs),
        };
        let compressed_old = old.and_then(|o| o.table.as_ref());
        if compressed_old.is_some() || (old.is_none() && self.new_segments_compressed()) {
            let frame_bytes = compressed_old
                .and_then(|t| t.frames().first())
                .map_or(default_frame, |f| f.decompressed as usize);
            let logical = data.len() as u64;
            let (object, table) = crate::seekable::compress_with_table(&data, frame_bytes, level)?;
            let mut meta = self.put_object(key, old, object).await?;
            meta.size = logical;
            meta.table = Some(std::sync::Arc::new(table));
            return Ok(meta);
        }
        self.put_object(key, old, data).await
    }

    /// Whether segments created now are stored compressed.
    pub fn new_segments_compressed(&self) -> bool {
        matches!(self.opts.compression, crate::Compression::Zstd { .. })
    }

    /// The key a segment created now gets (`.zst` when compressed).
    pub fn new_segment_key(&self, base: String) -> String {
        if self.new_segments_compressed() {
            format!("{base}{}", crate::seekable::COMPRESSED_SUFFIX)
        } else {
            base
        }
    }

    /// Writes the bytes of an object, conditionally as `put_segment` says.
    async fn put_object(
        &self,
        key: &str,
        old: Option<&SegmentMeta>,
        data: Vec<u8>,
    ) -> Result<SegmentMeta> {
        let size = data.len() as u64;
        let mode = match (self.opts.conditional_writes, old) {
            (false, _) => PutMode::Overwrite,
            (true, None) => PutMode::Create,
            (true, Some(old)) if old.e_tag.is_some() => PutMode::Update(UpdateVersion {
                e_tag: old.e_tag.clone(),
                version: old.version.clone(),
            }),
            (true, Some(_)) => PutMode::Overwrite,
        };
        let result = self
            .store
            .put_opts(
                &Path::from(key),
                PutPayload::from(data),
                PutOptions {
                    mode,
                    ..PutOptions::default()
                },
            )
            .await
            .map_err(|err| crate::error::from_store("write", key, err))?;
        Ok(SegmentMeta::plain(size, result.e_tag, result.version))
    }

    /// Deletes a segment object; a missing one is fine.
    pub async fn delete_segment(&self, key: &str) -> Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(crate::error::from_store("delete", key, err)),
        }
    }
}

/// Whether a failed GET may succeed if repeated.
fn transient(err: &Error) -> bool {
    match err {
        Error::ShortRead { .. } => true,
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::Other,
        _ => false,
    }
}

/// The shared error of a joined request, rebuilt for this caller.
fn copy_error(err: &Error) -> Error {
    match err {
        Error::NotFound { path } => Error::NotFound { path: path.clone() },
        Error::Conflict { path, detail } => Error::Conflict {
            path: path.clone(),
            detail,
        },
        Error::ShortRead {
            path,
            first,
            last,
            read,
            expected,
        } => Error::ShortRead {
            path: path.clone(),
            first: *first,
            last: *last,
            read: *read,
            expected: *expected,
        },
        other => Error::io(
            "read",
            "prefetched range",
            std::io::Error::other(other.to_string()),
        ),
    }
}
