//! A fault-injecting, request-counting `ObjectStore` wrapper, for testing
//! this backend (and your own code) against misbehaving stores, and a
//! store with a cloud store's timing ([`LatencyStore`]).

mod latency;

pub use latency::{Latency, LatencyCounts, LatencyStore};

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Wraps any `ObjectStore`, counts its requests, and injects faults into
/// GETs: transient errors (like a 5xx or a reset connection), bodies cut
/// short, or a permanent refusal.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<FaultState>>,
}

/// Requests seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// GETs (ranged or not).
    pub gets: u64,
    /// Bytes those GETs returned.
    pub get_bytes: u64,
    /// PUTs.
    pub puts: u64,
    /// LIST calls.
    pub lists: u64,
}

#[derive(Debug, Default)]
struct FaultState {
    counts: RequestCounts,
    transient_gets: usize,
    short_gets: usize,
    reset_gets: usize,
    refuse_gets: bool,
    list_delay: Option<std::time::Duration>,
    /// Deletes let through before the failing ones, and how many fail.
    deletes: (usize, usize),
}

impl FaultyStore {
    /// Wraps `inner`; nothing is injected until asked.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FaultyStore {
            inner,
            state: Arc::new(Mutex::new(FaultState::default())),
        }
    }

    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The requests so far.
    pub fn counts(&self) -> RequestCounts {
        self.state().counts
    }

    /// The next `n` GETs fail with a transient error.
    pub fn fail_next_gets(&self, n: usize) {
        self.state().transient_gets = n;
    }

    /// The next `n` GETs return a body one byte short of the range asked.
    pub fn cut_next_gets(&self, n: usize) {
        self.state().short_gets = n;
    }

    /// The next `n` GETs send the first half of their body, then fail
    /// mid-stream as a connection reset by the peer would.
    pub fn reset_next_gets(&self, n: usize) {
        self.state().reset_gets = n;
    }

    /// Faults planned that no GET has met yet (transient, cut, reset), so a
    /// test can tell that what it injected was delivered.
    pub fn pending_faults(&self) -> usize {
        let state = self.state();
        state.transient_gets + state.short_gets + state.reset_gets
    }

    /// The next `pass` deletes go through, then `fail` deletes fail with
    /// a transient error (the object stays).
    pub fn fail_deletes(&self, pass: usize, fail: usize) {
        self.state().deletes = (pass, fail);
    }

    /// From now on every LIST takes its snapshot of the store when it
    /// starts but answers only `delay` later (`None`: at once again), as a
    /// slow listing of a busy bucket does: what it shows may be older than
    /// writes made meanwhile.
    pub fn delay_lists(&self, delay: Option<std::time::Duration>) {
        self.state().list_delay = delay;
    }

    /// From now on every GET is refused (permission denied) until turned
    /// off again.
    pub fn refuse_gets(&self, on: bool) {
        self.state().refuse_gets = on;
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.state().counts.puts += 1;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let (transient, short, reset, refuse) = {
            let mut state = self.state();
            state.counts.gets += 1;
            let transient = state.transient_gets > 0;
            state.transient_gets = state.transient_gets.saturating_sub(1);
            let short = !transient && state.short_gets > 0;
            if short {
                state.short_gets -= 1;
            }
            let reset = !transient && !short && state.reset_gets > 0;
            if reset {
                state.reset_gets -= 1;
            }
            (transient, short, reset, state.refuse_gets)
        };
        if refuse {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "injected permanent failure".into(),
            });
        }
        if transient {
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: "injected transient failure (as a 503 or a reset connection)".into(),
            });
        }
        let mut result = self.inner.get_opts(location, options).await?;
        let mut bytes = result_bytes(&mut result).await?;
        if short && !bytes.is_empty() {
            bytes.truncate(bytes.len() - 1);
        }
        if reset {
            let half = bytes.slice(..bytes.len() / 2);
            self.state().counts.get_bytes += half.len() as u64;
            let reset = object_store::Error::Generic {
                store: "FaultyStore",
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected: connection reset by peer mid-body",
                )),
            };
            result.payload =
                GetResultPayload::Stream(futures::stream::iter([Ok(half), Err(reset)]).boxed());
            return Ok(result);
        }
        self.state().counts.get_bytes += bytes.len() as u64;
        result.payload =
            GetResultPayload::Stream(futures::stream::once(async move { Ok(bytes) }).boxed());
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if self.state().deletes == (0, 0) {
            return self.inner.delete_stream(locations);
        }
        // One at a time, so that each can be let through or failed.
        let inner = self.inner.clone();
        let state = self.state.clone();
        locations
            .then(move |location| {
                let inner = inner.clone();
                let fails = delete_fails(&state);
                async move {
                    let location = location?;
                    if fails {
                        return Err(object_store::Error::Generic {
                            store: "FaultyStore",
                            source: format!("injected delete failure for {location}").into(),
                        });
                    }
                    let mut one =
                        inner.delete_stream(futures::stream::iter([Ok(location)]).boxed());
                    one.next().await.unwrap_or_else(|| {
                        Err(object_store::Error::Generic {
                            store: "FaultyStore",
                            source: "the store answered nothing for a delete".into(),
                        })
                    })
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let delay = {
            let mut state = self.state();
            state.counts.lists += 1;
            state.list_delay
        };
        let listing = self.inner.list(prefix);
        match delay {
            None => listing,
            Some(delay) => futures::stream::once(async move {
                let snapshot: Vec<Result<ObjectMeta>> = listing.collect().await;
                tokio::time::sleep(delay).await;
                futures::stream::iter(snapshot)
            })
            .flatten()
            .boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.state().counts.lists += 1;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Whether the next delete is to fail (see `FaultyStore::fail_deletes`).
fn delete_fails(state: &Mutex<FaultState>) -> bool {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    match &mut state.deletes {
        (0, 0) => false,
        (0, fail) => {
            *fail -= 1;
            true
        }
        (pass, _) => {
            *pass -= 1;
            false
        }
    }
}

/// Takes the whole body out of a result (replacing its payload later).
async fn result_bytes(result: &mut GetResult) -> Result<Bytes> {
    let payload = std::mem::replace(
        &mut result.payload,
        GetResultPayload::Stream(futures::stream::empty().boxed()),
    );
    let mut stream = match payload {
        GetResultPayload::Stream(stream) => stream,
        other => {
            // A local file: read it through a throwaway result.
            result.payload = other;
            let taken = std::mem::replace(
                &mut result.payload,
                GetResultPayload::Stream(futures::stream::empty().boxed()),
            );
            let tmp = GetResult {
                payload: taken,
                meta: result.meta.clone(),
                range: result.range.clone(),
                attributes: result.attributes.clone(),
                extensions: Default::default(),
            };
            return tmp.bytes().await;
        }
    };
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(Bytes::from(out))
}

/// A zstd seekable object as some other writers make it: `data` in
/// frames of `frame_bytes` (zstd level 3) without zstd's own checksum,
/// and a seek table without checksums either, so nothing in the object
/// can show damage (what `ObjectOptions::require_frame_checksums`
/// refuses). Objects written by this crate always carry checksums.
pub fn seekable_without_checksums(data: &[u8], frame_bytes: usize) -> std::io::Result<Vec<u8>> {
    let mut object = Vec::new();
    let mut frames = Vec::new();
    for chunk in data.chunks(frame_bytes.max(1)) {
        let frame = zstd::bulk::compress(chunk, 3)?;
        frames.push(crate::seekable::FrameEntry {
            compressed: u32::try_from(frame.len()).map_err(std::io::Error::other)?,
            decompressed: u32::try_from(chunk.len()).map_err(std::io::Error::other)?,
            checksum: None,
        });
        object.extend_from_slice(&frame);
    }
    object.extend_from_slice(&crate::seekable::SeekTable::new(frames).to_bytes());
    Ok(object)
}
