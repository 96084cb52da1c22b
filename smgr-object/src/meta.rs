//! What the backend knows about each fork's segment objects.
//!
//! A fork's segments are learnt by listing its directory once (one LIST
//! fills the cache for every fork in that directory, so scanning a whole
//! database costs one LIST per directory), then kept current by the
//! backend's own writes. Each segment's ETag pins the version every read
//! of it must see.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use smgr_api::{BlockNumber, Error, ForkNumber, RelFileLocator, Result, MAX_BLOCK_NUMBER};

use crate::options::ObjectOptions;
use crate::seekable::{SeekTable, COMPRESSED_SUFFIX};

/// One segment object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    /// Logical bytes: the segment's size once decompressed.
    pub size: u64,
    /// Bytes of the object itself.
    pub stored: u64,
    pub e_tag: Option<String>,
    pub version: Option<String>,
    /// For a compressed object (key suffix `.zst`, zstd seekable format),
    /// its seek table.
    pub table: Option<Arc<SeekTable>>,
}

impl SegmentMeta {
    /// A plain object of `size` bytes.
    pub fn plain(size: u64, e_tag: Option<String>, version: Option<String>) -> Self {
        SegmentMeta {
            size,
            stored: size,
            e_tag,
            version,
            table: None,
        }
    }

    /// The object's key, from the segment's path key (`.zst` appended for
    /// a compressed object).
    pub fn object_key(&self, base: &str) -> String {
        if self.table.is_some() {
            format!("{base}{COMPRESSED_SUFFIX}")
        } else {
            base.to_owned()
        }
    }
}

/// A fork's segment objects, segment 0 first.
#[derive(Clone, Debug, Default)]
pub(crate) struct ForkMeta {
    pub segments: Vec<SegmentMeta>,
}

impl ForkMeta {
    /// Whole blocks in the fork.
    pub fn nblocks(&self, opts: &ObjectOptions) -> u64 {
        let bs = u64::from(opts.block_size.get());
        self.segments.iter().map(|s| s.size / bs).sum()
    }
}

/// A fork whose segments have an impossible shape, or a compressed
/// segment whose seek table is damaged, kept apart so that it fails alone
/// and not the other forks listed with it.
#[derive(Clone, Debug)]
pub(crate) enum Corrupt {
    Shape {
        path: String,
        segno: u32,
        blocks: u64,
        detail: &'static str,
    },
    Object {
        key: String,
        detail: String,
    },
}

impl Corrupt {
    fn error(&self) -> Error {
        match self {
            Corrupt::Shape {
                path,
                segno,
                blocks,
                detail,
            } => Error::CorruptSegment {
                path: path.clone(),
                segno: *segno,
                segment_blocks_found: *blocks,
                detail,
            },
            Corrupt::Object { key, detail } => Error::CorruptObject {
                key: key.clone(),
                detail: detail.clone(),
            },
        }
    }
}

#[derive(Default)]
struct State {
    forks: HashMap<(RelFileLocator, ForkNumber), Result<ForkMeta, Corrupt>>,
    listed: HashSet<String>,
    /// Counts changes to what is known (own writes, forgetting): a LIST
    /// shows the bucket as it was when it began, so what it found for a
    /// fork changed since then is older than what we know, or than what
    /// made us forget it, and must not be recorded.
    epoch: u64,
    /// The epoch of each fork's last own write or forgetting.
    changed_at: HashMap<(RelFileLocator, ForkNumber), u64>,
    /// The epoch of the last `clear`.
    cleared_at: u64,
    /// Forks this backend unlinked (known to be absent).
    unlinked: HashSet<(RelFileLocator, ForkNumber)>,
}

#[derive(Default)]
pub(crate) struct MetaCache {
    state: Mutex<State>,
    /// Seek tables a caller fetched from its own listing (by key and
    /// ETag), taken by the next listing of their directory instead of
    /// fetching them again.
    tables: Mutex<HashMap<(String, String), Arc<SeekTable>>>,
}

impl MetaCache {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fork's segments, listing its directory if not known yet.
    /// `Ok(None)` if the fork does not exist.
    pub async fn get(
        &self,
        store: &Arc<dyn ObjectStore>,
        opts: &ObjectOptions,
        prefix: &str,
        rel: RelFileLocator,
        fork: ForkNumber,
    ) -> Result<Option<ForkMeta>> {
        let relpath = opts.naming.relpath(rel, fork)?;
        let dir = relpath
            .rsplit_once('/')
            .map(|(d, _)| d.to_owned())
            .unwrap_or_default();
        // A listing that began before an own write or a forgetting of a
        // fork in it records nothing for that fork (see `State::epoch`),
        // and the directory is listed again.
        let mut attempts = 0;
        loop {
            {
                let state = self.state();
                if let Some(entry) = state.forks.get(&(rel, fork)) {
                    return entry.clone().map(Some).map_err(|corrupt| corrupt.error());
                }
                if state.listed.contains(&dir) {
                    return Ok(None);
                }
            }
            if attempts == 8 {
                return Err(Error::Conflict {
                    path: join(prefix, &relpath),
                    detail: "the directory kept changing while it was listed",
                });
            }
            attempts += 1;
            self.list_dir(store, opts, prefix, &dir).await?;
        }
    }

    /// Lists one directory and records every fork found in it.
    async fn list_dir(
        &self,
        store: &Arc<dyn ObjectStore>,
        opts: &ObjectOptions,
        prefix: &str,
        dir: &str,
    ) -> Result<()> {
        let started = self.state().epoch;
        let dir_path = crate::object_path(&join(prefix, dir))?;
        let objects: Vec<object_store::ObjectMeta> = store
            .list(Some(&dir_path))
            .try_collect()
            .await
            .map_err(|err| crate::error::from_store("list", dir_path.as_ref(), err))?;
        let mut listed = Vec::new();
        for object in objects {
            let key = object.location.as_ref();
            let relative = key
                .strip_prefix(prefix)
                .map(|k| k.trim_start_matches('/'))
                .unwrap_or(key);
            // Only direct children that are relation segments.
            let Some((parent, _)) = relative.rsplit_once('/') else {
                continue;
            };
            if parent != dir {
                continue;
            }
            let (path, compressed) = match relative.strip_suffix(COMPRESSED_SUFFIX) {
                Some(path) => (path, true),
                None => (relative, false),
            };
            let Ok(seg) = opts.naming.parse(path) else {
                continue;
            };
            let meta = SegmentMeta::plain(object.size, object.e_tag, object.version);
            listed.push((seg, meta, compressed.then(|| key.to_owned())));
        }
        // The seek tables of compressed segments, a tail GET each, many at
        // once (a database directory holds a thousand segments). A damaged
        // table makes its fork corrupt, not the whole directory.
        let with_tables: Vec<_> = futures::stream::iter(listed)
            .map(|(seg, mut meta, compressed)| async move {
                let Some(key) = compressed else {
                    return Ok::<_, Error>((seg, Ok(meta)));
                };
                let table = match self.take_table(&key, meta.e_tag.as_deref()) {
                    Some(table) => Ok(table),
                    None => crate::seekable::fetch_seek_table(
                        store.as_ref(),
                        &key,
                        meta.stored,
                        meta.e_tag.clone(),
                        meta.version.clone(),
                        opts.max_frame_bytes(),
                        opts.max_table_bytes(),
                    )
                    .await
                    .map(Arc::new),
                };
                match table {
                    Ok(table) => {
                        meta.size = table.decompressed_len();
                        meta.table = Some(table);
                        Ok((seg, Ok(meta)))
                    }
                    Err(Error::CorruptObject { key, detail }) => {
                        Ok((seg, Err(Some(Corrupt::Object { key, detail }))))
                    }
                    // Replaced (or gone) since the LIST: this LIST cannot
                    // say what the fork is now; its other objects may be of
                    // another moment too. Nothing is recorded for the fork.
                    Err(Error::Conflict { .. } | Error::NotFound { .. }) => Ok((seg, Err(None))),
                    Err(err) => Err(err),
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        // Per segment: its metadata, or why not (`Err(None)`: replaced or
        // gone since the LIST, so the fork is unsettled).
        type Listed = Vec<(u32, Result<SegmentMeta, Option<Corrupt>>)>;
        let mut found: HashMap<(RelFileLocator, ForkNumber), Listed> = HashMap::new();
        for (seg, meta) in with_tables {
            found
                .entry((seg.locator, seg.fork))
                .or_default()
                .push((seg.segno, meta));
        }
        let mut forks = HashMap::new();
        let mut unsettled = Vec::new();
        for ((rel, fork), mut segments) in found {
            if segments.iter().any(|(_, m)| matches!(m, Err(None))) {
                unsettled.push((rel, fork));
                continue;
            }
            segments.sort_by_key(|(segno, _)| *segno);
            let fork_meta = match segments
                .iter()
                .find_map(|(_, m)| m.as_ref().err().cloned().flatten())
            {
                Some(corrupt) => Err(corrupt),
                None => shape(
                    opts,
                    rel,
                    fork,
                    segments
                        .into_iter()
                        .filter_map(|(segno, m)| m.ok().map(|m| (segno, m)))
                        .collect(),
                )?,
            };
            forks.insert((rel, fork), fork_meta);
        }
        let mut state = self.state();
        if state.cleared_at > started {
            // Everything was forgotten meanwhile: this listing is too old.
            return Ok(());
        }
        // What is known since the LIST began (own writes and unlinks)
        // settles a fork; anything else about it must be listed again.
        let known_since = |state: &State, key: &(RelFileLocator, ForkNumber)| {
            state.changed_at.get(key).is_some_and(|&at| at > started)
                && (state.forks.contains_key(key) || state.unlinked.contains(key))
        };
        let mut complete = unsettled.iter().all(|key| known_since(&state, key));
        for (key, meta) in forks {
            if state.changed_at.get(&key).is_some_and(|&at| at > started) {
                // Written or forgotten since the LIST began: what it found
                // is older. Known (own write, or own unlink): keep it;
                // forgotten: list this directory again.
                complete &= known_since(&state, &key);
                continue;
            }
            state.forks.entry(key).or_insert(meta);
        }
        // A fork forgotten since the LIST began that the LIST did not show
        // (deleted, or created since) must be looked for again too.
        let forgotten_here = state.changed_at.iter().any(|(key, &at)| {
            at > started
                && !state.forks.contains_key(key)
                && !state.unlinked.contains(key)
                && opts
                    .naming
                    .relpath(key.0, key.1)
                    .is_ok_and(|p| p.rsplit_once('/').is_some_and(|(d, _)| d == dir))
        });
        if complete && !forgotten_here {
            state.listed.insert(dir.to_owned());
        }
        Ok(())
    }

    /// Records a fork's segments after our own write (`None`: the fork
    /// is gone).
    pub fn set(&self, rel: RelFileLocator, fork: ForkNumber, meta: Option<ForkMeta>) {
        let mut state = self.state();
        state.epoch += 1;
        let epoch = state.epoch;
        state.changed_at.insert((rel, fork), epoch);
        match meta {
            Some(meta) => {
                state.unlinked.remove(&(rel, fork));
                state.forks.insert((rel, fork), Ok(meta));
            }
            None => {
                state.unlinked.insert((rel, fork));
                state.forks.remove(&(rel, fork));
            }
        }
    }

    /// Forgets one fork (someone else changed it): the next access lists
    /// its directory again; what is known of the other forks stays.
    pub fn forget(
        &self,
        opts: &ObjectOptions,
        rel: RelFileLocator,
        fork: ForkNumber,
    ) -> Result<()> {
        let relpath = opts.naming.relpath(rel, fork)?;
        let dir = relpath.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
        let mut state = self.state();
        state.epoch += 1;
        let epoch = state.epoch;
        state.changed_at.insert((rel, fork), epoch);
        state.unlinked.remove(&(rel, fork));
        state.forks.remove(&(rel, fork));
        state.listed.remove(dir);
        Ok(())
    }

    /// Remembers the seek table of object `key` at version `e_tag`.
    pub fn remember_table(&self, key: &str, e_tag: &str, table: Arc<SeekTable>) {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((key.to_owned(), e_tag.to_owned()), table);
    }

    /// A remembered seek table of `key` at exactly version `e_tag`.
    fn take_table(&self, key: &str, e_tag: Option<&str>) -> Option<Arc<SeekTable>> {
        let e_tag = e_tag?;
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(key.to_owned(), e_tag.to_owned()))
    }

    /// Forgets everything: the next access lists again.
    pub fn clear(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.cleared_at = state.epoch;
        state.forks.clear();
        state.listed.clear();
        state.changed_at.clear();
        state.unlinked.clear();
    }
}

/// Checks that listed segments form a fork: segment 0 present, numbers
/// consecutive, every segment but the last full; empty trailing segments
/// (PostgreSQL leaves them after truncation) are dropped.
fn shape(
    opts: &ObjectOptions,
    rel: RelFileLocator,
    fork: ForkNumber,
    segments: Vec<(u32, SegmentMeta)>,
) -> Result<Result<ForkMeta, Corrupt>> {
    let full = opts.segment_bytes();
    let bs = u64::from(opts.block_size.get());
    let corrupt =
        |segno: u32, size: u64, detail: &'static str| -> Result<Result<ForkMeta, Corrupt>> {
            Ok(Err(Corrupt::Shape {
                path: opts.naming.segment_path(rel, fork, segno)?,
                segno,
                blocks: size / bs,
                detail,
            }))
        };
    let mut out: Vec<SegmentMeta> = Vec::with_capacity(segments.len());
    let mut short_at: Option<(u32, u64)> = None;
    for (expected, (segno, meta)) in segments.into_iter().enumerate() {
        if meta.size > full {
            return corrupt(segno, meta.size, ", more than a segment holds");
        }
        if segno as usize != expected {
            if meta.size == 0 {
                continue;
            }
            return corrupt(segno, meta.size, " but the segment before it is missing");
        }
        if let Some((short, size)) = short_at {
            if meta.size > 0 {
                return corrupt(short, size, " but a later segment is not empty");
            }
            continue;
        }
        if meta.size < full {
            short_at = Some((segno, meta.size));
        }
        out.push(meta);
    }
    let meta = ForkMeta { segments: out };
    if meta.nblocks(opts) > u64::from(MAX_BLOCK_NUMBER) + 1 {
        return corrupt(
            0,
            meta.nblocks(opts) * bs,
            ", making the fork larger than the largest block number allows",
        );
    }
    Ok(Ok(meta))
}

/// `prefix/rest`, or `rest` without a prefix.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// The block count as a `BlockNumber` (the shape check bounds it).
pub(crate) fn nblocks32(meta: &ForkMeta, opts: &ObjectOptions) -> BlockNumber {
    meta.nblocks(opts) as BlockNumber
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};
    use smgr_api::BlockSize;

    use super::*;
    use crate::testing::FaultyStore;

    const REL: RelFileLocator = RelFileLocator::in_database(5, 16000);
    const MAIN: ForkNumber = ForkNumber::Main;

    /// A one-segment fork of `blocks` blocks written straight to the store;
    /// its metadata as an own write would record it.
    async fn put(store: &InMemory, blocks: usize) -> ForkMeta {
        let put = store
            .put(
                &Path::from("base/5/16000"),
                PutPayload::from(vec![0u8; blocks * 8192]),
            )
            .await
            .unwrap();
        ForkMeta {
            segments: vec![SegmentMeta::plain(
                (blocks * 8192) as u64,
                put.e_tag,
                put.version,
            )],
        }
    }

    /// A store over `inner` whose LISTs answer 300 ms after their
    /// snapshot, segments of 16 blocks, an empty cache.
    fn slow_lists(
        inner: &Arc<InMemory>,
    ) -> (
        Arc<FaultyStore>,
        Arc<dyn ObjectStore>,
        ObjectOptions,
        MetaCache,
    ) {
        let faulty = Arc::new(FaultyStore::new(inner.clone()));
        faulty.delay_lists(Some(Duration::from_millis(300)));
        let store: Arc<dyn ObjectStore> = faulty.clone();
        (
            faulty,
            store,
            ObjectOptions::new(BlockSize::DEFAULT, 16),
            MetaCache::default(),
        )
    }

    /// A listing that took its snapshot before our own write (3 blocks,
    /// or with `unlink` the fork's removal) landed and was recorded, and
    /// before `then` ran, answering after both: what the cache knows of
    /// the fork afterwards.
    async fn stale_listing_around(unlink: bool, then: impl Fn(&MetaCache)) -> Option<ForkMeta> {
        let inner = Arc::new(InMemory::new());
        put(&inner, 2).await;
        let (faulty, store, opts, cache) = slow_lists(&inner);
        let listing = cache.list_dir(&store, &opts, "", "base/5");
        let meanwhile = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if unlink {
                inner.delete(&Path::from("base/5/16000")).await.unwrap();
                cache.set(REL, MAIN, None);
            } else {
                let written = put(&inner, 3).await;
                cache.set(REL, MAIN, Some(written));
            }
            then(&cache);
        };
        let (listed, ()) = tokio::join!(listing, meanwhile);
        listed.unwrap();
        faulty.delay_lists(None);
        cache.get(&store, &opts, "", REL, MAIN).await.unwrap()
    }

    fn blocks(meta: Option<ForkMeta>) -> Option<u64> {
        meta.map(|m| m.nblocks(&ObjectOptions::new(BlockSize::DEFAULT, 16)))
    }

    #[tokio::test]
    async fn an_older_listing_never_undoes_an_own_write() {
        // Then everything forgotten (ObjectSmgr::refresh): the old listing
        // must not come back as the truth.
        assert_eq!(
            blocks(stale_listing_around(false, MetaCache::clear).await),
            Some(3)
        );
        // Then this fork forgotten (a reader saw it replaced).
        let forget = |cache: &MetaCache| {
            cache
                .forget(&ObjectOptions::new(BlockSize::DEFAULT, 16), REL, MAIN)
                .unwrap();
        };
        assert_eq!(blocks(stale_listing_around(false, forget).await), Some(3));
        // Kept as recorded.
        assert_eq!(blocks(stale_listing_around(false, |_| {}).await), Some(3));
    }

    #[tokio::test]
    async fn a_fork_truncated_by_another_writer_mid_listing_is_listed_again() {
        // Three compressed segments of 16 blocks; while a listing sleeps on
        // its snapshot, another writer truncates the fork to 24 blocks
        // (deletes segment 2, rewrites segment 1). The seek-table GETs of
        // the old versions then fail: the fork is not recorded from that
        // listing but listed again, and comes out whole, not corrupt.
        let inner = Arc::new(InMemory::new());
        let segment =
            |n: usize| crate::seekable::compress(&vec![7u8; n * 8192], 4 * 8192, 1).unwrap();
        for (key, blocks) in [
            ("base/5/16000.zst", 16),
            ("base/5/16000.1.zst", 16),
            ("base/5/16000.2.zst", 16),
        ] {
            inner
                .put(&Path::from(key), PutPayload::from(segment(blocks)))
                .await
                .unwrap();
        }
        let (faulty, store, opts, cache) = slow_lists(&inner);
        let listing = cache.list_dir(&store, &opts, "", "base/5");
        let truncate = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            inner
                .delete(&Path::from("base/5/16000.2.zst"))
                .await
                .unwrap();
            inner
                .put(
                    &Path::from("base/5/16000.1.zst"),
                    PutPayload::from(segment(8)),
                )
                .await
                .unwrap();
        };
        let (listed, ()) = tokio::join!(listing, truncate);
        listed.unwrap();
        assert!(
            !cache.state().listed.contains("base/5"),
            "recorded an unsettled fork"
        );
        faulty.delay_lists(None);
        assert_eq!(
            blocks(cache.get(&store, &opts, "", REL, MAIN).await.unwrap()),
            Some(24)
        );
    }

    #[tokio::test]
    async fn an_older_listing_never_brings_back_an_unlinked_fork() {
        assert_eq!(blocks(stale_listing_around(true, |_| {}).await), None);
        assert_eq!(
            blocks(stale_listing_around(true, MetaCache::clear).await),
            None
        );
    }
}
