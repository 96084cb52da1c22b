//! Ranged reads with single flight, and segment rewrites.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::{
    GetOptions, GetRange, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use smgr_api::{Error, ForkNumber, PageBuf, RelFileLocator, Result};

use crate::meta::{join, SegmentMeta};
use crate::readahead::{Filling, ObjectVersion, Part};
use crate::seekable::{FrameDecompressor, Patch, Rewrite, SeekTable};
use crate::Inner;

impl Inner {
    /// The object key of a segment.
    pub fn key(&self, rel: RelFileLocator, fork: ForkNumber, segno: u32) -> Result<String> {
        Ok(join(
            &self.prefix,
            &self.opts.naming.segment_path(rel, fork, segno)?,
        ))
    }

    /// One ranged GET of `range` of a segment at the version `seg` names.
    /// Retries of transient failures (5xx, timeouts, a body cut short) are
    /// `object_store`'s, with the limits of `StoreOptions`: the only retry
    /// layer, so a request failing for good costs `1 + max_retries` HTTP
    /// requests, not a product of two layers' attempts. A body that still
    /// comes back shorter than the range is an error, never padded.
    pub async fn get_range(
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
        let path = crate::object_path(key)?;
        // Room for the body first (`in_flight.rs`), held until it is here.
        let _room = self
            .opts
            .bytes_in_flight
            .hold(range.end - range.start)
            .await;
        self.count_get(range.end - range.start);
        // Hedged up to the first byte (`hedge.rs`): a late request is
        // issued once more, pinned to the same version.
        let result = self
            .hedging
            .run(self.opts.hedge_after, || {
                self.store.get_opts(&path, options.clone())
            })
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

    /// Bytes `range` of a segment object, in pieces that follow one
    /// another. Through the windows of `readahead.rs`: a range that
    /// `prefetch` advised, or that a sequential reader reaches, is served
    /// from a window's GET as soon as its bytes have arrived (joining that
    /// GET, so prefetch + read is one request in either order; a part no
    /// window holds is a GET of just that part); any other range is a
    /// plain GET that leaves nothing behind.
    pub async fn fetch(
        self: &Arc<Self>,
        key: &str,
        seg: &SegmentMeta,
        range: Range<u64>,
    ) -> Result<Vec<Bytes>> {
        let object = object_version(key, seg);
        let plan = self
            .read_ahead
            .plan(&object, data_end(seg), range.clone(), false);
        self.open_windows(&object, seg, plan.opened);
        match plan.cover {
            Some(parts) => self.read_parts(key, seg, &object, parts, &range).await,
            None => Ok(vec![self.get_range(key, seg, range).await?]),
        }
    }

    /// `prefetch` of `range` of a segment object: opens its window (and
    /// read-ahead, if sequential) without waiting for anything.
    pub fn advise(self: &Arc<Self>, key: &str, seg: &SegmentMeta, range: Range<u64>) {
        let object = object_version(key, seg);
        let plan = self.read_ahead.plan(&object, data_end(seg), range, true);
        self.open_windows(&object, seg, plan.opened);
    }

    /// `range` from the windows that hold it, once their bytes have
    /// arrived, and from GETs of its own for the gaps between them (or
    /// for a window whose GET failed: its own GET's error names the
    /// object), all at once.
    async fn read_parts(
        &self,
        key: &str,
        seg: &SegmentMeta,
        object: &ObjectVersion,
        parts: Vec<Part>,
        range: &Range<u64>,
    ) -> Result<Vec<Bytes>> {
        let reads = parts.iter().map(|part| async move {
            match part {
                Part::Window(window) => match window.bytes(range).await {
                    Some(pieces) => {
                        self.read_ahead.consumed(object, window, range);
                        Ok(pieces)
                    }
                    None => {
                        // Its GET failed or its task is gone: the window
                        // leaves (its task removes it too, if it can).
                        self.read_ahead.remove(object, window);
                        let own =
                            range.start.max(window.range.start)..range.end.min(window.range.end);
                        Ok(vec![self.get_range(key, seg, own).await?])
                    }
                },
                Part::Gap(gap) => Ok(vec![self.get_range(key, seg, gap.clone()).await?]),
            }
        });
        let pieces = futures::future::try_join_all(reads).await?;
        Ok(pieces.into_iter().flatten().collect())
    }

    /// Starts the GET of each window opened, as a task of its own: a
    /// window is shared by every read inside it and outlives any of them.
    fn open_windows(
        self: &Arc<Self>,
        object: &ObjectVersion,
        seg: &SegmentMeta,
        opened: Vec<Filling>,
    ) {
        for filling in opened {
            let inner = self.clone();
            let object = object.clone();
            let seg = seg.clone();
            tokio::spawn(async move {
                let failed = !inner.fill(&object.key, &seg, &filling).await;
                if let Some(window) = filling.window.upgrade().filter(|_| failed) {
                    inner.read_ahead.remove(&object, &window);
                }
                drop(filling);
                // A while later, windows nobody came for go (a scan that
                // stopped early), without waiting for the next access;
                // the backend may be gone by then.
                let backend = Arc::downgrade(&inner);
                drop(inner);
                tokio::time::sleep(crate::readahead::IDLE * 2).await;
                if let Some(inner) = backend.upgrade() {
                    inner.read_ahead.sweep_idle();
                }
            });
        }
    }

    /// Runs a window's GET, passing on its body as it arrives; false if it
    /// failed or stopped short. Stops as soon as the window is gone.
    async fn fill(&self, key: &str, seg: &SegmentMeta, filling: &Filling) -> bool {
        let range = filling.range.clone();
        let _room = self
            .opts
            .bytes_in_flight
            .hold(range.end - range.start)
            .await;
        if filling.window.strong_count() == 0 {
            return false;
        }
        let Ok(path) = crate::object_path(key) else {
            return false;
        };
        self.count_get(range.end - range.start);
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            if_match: seg.e_tag.clone(),
            version: seg.version.clone(),
            ..GetOptions::default()
        };
        let Ok(result) = self
            .hedging
            .run(self.opts.hedge_after, || {
                self.store.get_opts(&path, options.clone())
            })
            .await
        else {
            return false;
        };
        let mut body = result.into_stream();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                return false;
            };
            if !filling.push(chunk) {
                return false;
            }
        }
        filling.complete()
    }

    /// Counts one GET of `bytes` for [`crate::ObjectStats`].
    fn count_get(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counts.gets.fetch_add(1, Relaxed);
        self.counts.bytes.fetch_add(bytes, Relaxed);
    }

    /// Decompresses segment bytes `range` of the compressed segment `seg`
    /// (its seek table `table`; its first block is `first_block` of its
    /// fork) into `pages`, which
    /// hold exactly those bytes: one ranged GET of the frames that hold
    /// them (through the windows, where a prefetch of these blocks
    /// opened one of exactly these frames), each frame decompressed by
    /// libzstd straight into the pages, its checksum checked.
    pub async fn read_compressed(
        self: &Arc<Self>,
        key: &str,
        seg: &SegmentMeta,
        table: &SeekTable,
        first_block: u64,
        range: Range<u64>,
        pages: &mut [PageBuf],
    ) -> Result<()> {
        let frames = table.frames_for(range.clone());
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
        let stored = table.compressed_range(frames.clone());
        let bytes = contiguous(self.fetch(key, seg, stored.clone()).await?);
        let bs = self.opts.block_size.bytes();
        let mut decompressor =
            FrameDecompressor::new(key, bs as u64, first_block, self.opts.max_frame_bytes())
                .require_checksum(self.opts.require_frame_checksums);
        for i in frames {
            let c = table.compressed_range(i..i + 1);
            let d = table.decompressed_range(i..i + 1);
            let keep = d.start.max(range.start)..d.end.min(range.end);
            let within = (keep.start - range.start) as usize..(keep.end - range.start) as usize;
            let mut slices = page_slices(pages, bs, within);
            decompressor.decompress(
                i,
                &bytes[(c.start - stored.start) as usize..(c.end - stored.start) as usize],
                d,
                keep,
                table.frames()[i].checksum,
                &mut slices,
            )?;
        }
        Ok(())
    }

    /// Writes segment object `key` (segment `segno`, `old` its current
    /// version, `None` for a new one) as `new_len` bytes: the old bytes cut
    /// or grown with zeros, `patch` written over them. Replaces exactly
    /// the version `old` names (when the store supports conditional puts),
    /// so a concurrent writer is an error, not a loss.
    ///
    /// A compressed segment stays compressed in frames of the size it had,
    /// and only the frames the change touches are compressed again (and
    /// decompressed first unless the change covers them whole); the others
    /// keep their bytes. Frames past the new end are not fetched. A new
    /// segment is compressed if the options say so.
    pub async fn rewrite_segment(
        &self,
        key: &str,
        segno: u32,
        old: Option<&SegmentMeta>,
        new_len: u64,
        patch: Option<&Patch<'_>>,
    ) -> Result<SegmentMeta> {
        let bs = self.opts.block_size.bytes();
        let table = match old {
            Some(seg) => seg.table.clone(),
            None if self.new_segments_compressed() => Some(Arc::new(SeekTable::new(Vec::new()))),
            None => None,
        };
        let Some(table) = table else {
            let mut data = match old {
                Some(seg) if seg.size > 0 && new_len > 0 => self
                    .get_range(key, seg, 0..seg.stored.min(new_len))
                    .await?
                    .to_vec(),
                _ => Vec::new(),
            };
            data.resize(new_len as usize, 0);
            if let Some(patch) = patch {
                patch.apply_to(&(0..new_len), &mut data);
            }
            let meta = self.put_object(key, old, PutPayload::from(data)).await?;
            self.read_ahead.forget(key);
            return Ok(meta);
        };
        let (level, frame_bytes) = match self.opts.compression {
            crate::Compression::Zstd {
                level,
                frame_blocks,
            } => (level, frame_blocks as usize * bs),
            // An object found compressed, on a backend that writes plain.
            crate::Compression::None => (
                crate::DEFAULT_ZSTD_LEVEL,
                crate::DEFAULT_FRAME_BLOCKS as usize * bs,
            ),
        };
        // An existing object keeps its frame size, which its first frame
        // shows once it has a second (a lone first frame may just be
        // short: a segment grown a block at a time must not be stuck with
        // one-block frames). Always whole blocks, and never more than a
        // reader accepts.
        let frame_bytes = match table.frames() {
            [first, _, ..] => first.decompressed as usize,
            _ => frame_bytes,
        };
        let max = usize::try_from(self.opts.max_frame_bytes()).unwrap_or(usize::MAX);
        let frame_bytes = (frame_bytes / bs * bs).clamp(bs, max.max(bs));
        // Only the old frames that start before the new end are needed.
        let kept = table.frames_for(0..new_len).end;
        let fetch_end = table.compressed_range(0..kept).end;
        let old_bytes = match old {
            Some(seg) if fetch_end > 0 => self.get_range(key, seg, 0..fetch_end).await?,
            _ => Bytes::new(),
        };
        let rewrite = Rewrite {
            key: key.to_owned(),
            old: table,
            old_bytes,
            frame_bytes,
            level,
            block_bytes: bs as u64,
            first_block: u64::from(segno) * u64::from(self.opts.segment_blocks),
            max_frame_bytes: self.opts.max_frame_bytes(),
            require_checksums: self.opts.require_frame_checksums,
        };
        let (chunks, new_table) =
            if rewrite.bytes_to_compress(new_len, patch) <= INLINE_COMPRESS_BYTES {
                rewrite.apply(new_len, patch)?
            } else {
                compress_off_worker(rewrite, new_len, patch).await?
            };
        let mut meta = self
            .put_object(key, old, chunks.into_iter().collect())
            .await?;
        self.read_ahead.forget(key);
        meta.size = new_len;
        meta.table = Some(Arc::new(new_table));
        Ok(meta)
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

    /// Writes the bytes of an object, conditionally as `rewrite_segment`
    /// says.
    async fn put_object(
        &self,
        key: &str,
        old: Option<&SegmentMeta>,
        data: PutPayload,
    ) -> Result<SegmentMeta> {
        let size = data.content_length() as u64;
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
                &crate::object_path(key)?,
                data,
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
        self.read_ahead.forget(key);
        match self.store.delete(&crate::object_path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(crate::error::from_store("delete", key, err)),
        }
    }
}

/// Above this many bytes to compress (about a millisecond of zstd), a
/// rewrite runs on the blocking pool rather than on the async worker that
/// asked for it, whose other tasks would wait meanwhile. Below it, the
/// hand-over would cost more than it saves: a one-block write compresses
/// one frame (16 blocks by default, ~0.1 ms).
const INLINE_COMPRESS_BYTES: u64 = 1 << 20;

/// `rewrite.apply(new_len, patch)` on the blocking pool. The patch's pages
/// are copied first (the caller's buffers are only borrowed; a copy costs
/// a few percent of compressing them). Cancel safe: dropped, the rewrite
/// finishes unseen and nothing is written.
async fn compress_off_worker(
    rewrite: Rewrite,
    new_len: u64,
    patch: Option<&Patch<'_>>,
) -> Result<(Vec<Bytes>, SeekTable)> {
    let pages = patch.map(|patch| {
        let mut data = vec![0u8; patch.count * patch.page_bytes];
        for (i, page) in data.chunks_exact_mut(patch.page_bytes).enumerate() {
            (patch.fill)(i, page);
        }
        (patch.start, patch.count, patch.page_bytes, data)
    });
    let key = rewrite.key.clone();
    let task = tokio::task::spawn_blocking(move || {
        let Some((start, count, page_bytes, data)) = pages else {
            return rewrite.apply(new_len, None);
        };
        let fill = |i: usize, page: &mut [u8]| {
            page.copy_from_slice(&data[i * page_bytes..(i + 1) * page_bytes]);
        };
        let patch = Patch {
            start,
            count,
            page_bytes,
            fill: &fill,
        };
        rewrite.apply(new_len, Some(&patch))
    });
    match task.await {
        Ok(result) => result,
        // A panic stays a panic, on the caller's side.
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels a blocking task.
        Err(err) => Err(Error::io("compress", key, std::io::Error::other(err))),
    }
}

/// The parts of `pages` (consecutive pages of `bs` bytes) that hold bytes
/// `range` of them, in order.
fn page_slices(pages: &mut [PageBuf], bs: usize, range: Range<usize>) -> Vec<&mut [u8]> {
    if range.is_empty() {
        return Vec::new();
    }
    let first = range.start / bs;
    let last = (range.end - 1) / bs;
    pages[first..=last]
        .iter_mut()
        .enumerate()
        .map(|(j, page)| {
            let at = (first + j) * bs;
            let lo = range.start.max(at) - at;
            let hi = range.end.min(at + bs) - at;
            &mut page[lo..hi]
        })
        .collect()
}

/// The key of the version `seg` of object `key`.
fn object_version(key: &str, seg: &SegmentMeta) -> ObjectVersion {
    ObjectVersion {
        key: key.to_owned(),
        e_tag: seg.e_tag.clone(),
        version: seg.version.clone(),
    }
}

/// Where a segment object's data ends: its size, or for a compressed one
/// the end of its last frame (the seek table follows).
fn data_end(seg: &SegmentMeta) -> u64 {
    match &seg.table {
        Some(table) => table.compressed_range(0..table.frames().len()).end,
        None => seg.stored,
    }
}

/// Pieces that follow one another as one buffer (copied only if there is
/// more than one).
fn contiguous(pieces: Vec<Bytes>) -> Bytes {
    if let [one] = pieces.as_slice() {
        return one.clone();
    }
    let mut all = Vec::with_capacity(pieces.iter().map(Bytes::len).sum());
    for piece in &pieces {
        all.extend_from_slice(piece);
    }
    Bytes::from(all)
}

/// Copies pieces that follow one another into consecutive pages; the
/// pieces must hold exactly the pages' bytes (`fetch` returns exactly the
/// range asked for).
pub(crate) fn copy_to_pages(pieces: &[Bytes], pages: &mut [PageBuf]) {
    debug_assert_eq!(
        pieces.iter().map(Bytes::len).sum::<usize>(),
        pages.iter().map(|p| p.len()).sum::<usize>()
    );
    let mut page = 0;
    let mut at = 0;
    for piece in pieces {
        let mut piece = &piece[..];
        while !piece.is_empty() {
            let Some(dest) = pages.get_mut(page) else {
                return;
            };
            let n = (dest.len() - at).min(piece.len());
            dest[at..at + n].copy_from_slice(&piece[..n]);
            piece = &piece[n..];
            at += n;
            if at == dest.len() {
                page += 1;
                at = 0;
            }
        }
    }
}
