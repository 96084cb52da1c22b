//! A store with a cloud store's timing, in process: every request waits for
//! its first byte, a GET's body arrives at a per-request bandwidth, and one
//! GET in N stalls for seconds, as a few do on real object stores. For
//! tests and benchmarks of depth and hedging (`object_store`'s
//! `ThrottledStore` has per-call and per-byte waits, but no stalls, and
//! counts nothing).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// A body arrives in pieces of at most this many bytes.
const PIECE: usize = 64 << 10;

/// The timing of a [`LatencyStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Wait before a request's first byte (GET, HEAD, LIST, PUT).
    pub first_byte: Duration,
    /// Bytes per second one GET's body arrives at (`None`: at once).
    pub bytes_per_second: Option<u64>,
    /// One GET in this many (the first, the N+1st, the 2N+1st, …) stalls
    /// for `stall` more before its first byte (`None`: none). A GET of
    /// the same object range as one that stalled (its hedge, a retry)
    /// never stalls: on a real store it reaches another server.
    pub stall_every: Option<u64>,
    /// How long a stalled GET waits, besides `first_byte`.
    pub stall: Duration,
}

/// What a [`LatencyStore`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyCounts {
    /// GETs started.
    pub gets: u64,
    /// GETs that stalled.
    pub stalls: u64,
    /// GETs given up by their caller before they answered (a hedge won,
    /// or the reader went away).
    pub abandoned: u64,
    /// GETs in flight right now.
    pub in_flight: usize,
    /// The most GETs in flight at once.
    pub most_in_flight: usize,
}

/// Wraps any store with the timing of [`Latency`].
pub struct LatencyStore {
    inner: Arc<dyn ObjectStore>,
    latency: Latency,
    gets: AtomicU64,
    stalls: AtomicU64,
    abandoned: Arc<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// (object, range) of the GETs that stalled.
    stalled: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl fmt::Debug for LatencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyStore")
            .field("latency", &self.latency)
            .field("counts", &self.counts())
            .finish()
    }
}

impl fmt::Display for LatencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LatencyStore({})", self.inner)
    }
}

impl LatencyStore {
    /// Wraps `inner` with `latency`.
    pub fn new(inner: Arc<dyn ObjectStore>, latency: Latency) -> Self {
        LatencyStore {
            inner,
            latency,
            gets: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            abandoned: Arc::new(AtomicU64::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            most_in_flight: Arc::new(AtomicUsize::new(0)),
            stalled: std::sync::Mutex::default(),
        }
    }

    /// What it saw so far.
    pub fn counts(&self) -> LatencyCounts {
        LatencyCounts {
            gets: self.gets.load(Relaxed),
            stalls: self.stalls.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            most_in_flight: self.most_in_flight.load(Relaxed),
        }
    }
}

/// A GET in flight: counted until its body is delivered; dropped before
/// that, it counts as abandoned.
struct InFlight {
    in_flight: Arc<AtomicUsize>,
    abandoned: Arc<AtomicU64>,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Relaxed);
        if !self.done {
            self.abandoned.fetch_add(1, Relaxed);
        }
    }
}

#[async_trait]
impl ObjectStore for LatencyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        tokio::time::sleep(self.latency.first_byte).await;
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
        let n = self.gets.fetch_add(1, Relaxed) + 1;
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.most_in_flight.fetch_max(now, Relaxed);
        let mut guard = InFlight {
            in_flight: self.in_flight.clone(),
            abandoned: self.abandoned.clone(),
            done: false,
        };
        let mut wait = self.latency.first_byte;
        if self
            .latency
            .stall_every
            .is_some_and(|every| every > 0 && (n - 1) % every == 0)
        {
            let what = format!("{location} {:?}", options.range);
            let first_time = self
                .stalled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(what);
            if first_time {
                self.stalls.fetch_add(1, Relaxed);
                wait += self.latency.stall;
            }
        }
        tokio::time::sleep(wait).await;
        let mut result = self.inner.get_opts(location, options).await?;
        let Some(rate) = self.latency.bytes_per_second.filter(|&r| r > 0) else {
            guard.done = true;
            return Ok(result);
        };
        // The body at `rate`, in pieces of at most `PIECE` bytes as a
        // network delivers it: each piece is due when the bytes before it
        // and its own would have arrived (deadlines from the first byte, so
        // timer rounding does not add up).
        let payload = std::mem::replace(
            &mut result.payload,
            GetResultPayload::Stream(futures::stream::empty().boxed()),
        );
        let stream = match payload {
            GetResultPayload::Stream(stream) => stream,
            other => {
                guard.done = true;
                result.payload = other;
                return Ok(result);
            }
        };
        let started = tokio::time::Instant::now();
        let sent = Arc::new(AtomicU64::new(0));
        let paced = stream
            .flat_map(|chunk| {
                let pieces: Vec<Result<Bytes>> = match chunk {
                    Ok(bytes) => (0..bytes.len())
                        .step_by(PIECE)
                        .map(|at| Ok(bytes.slice(at..(at + PIECE).min(bytes.len()))))
                        .collect(),
                    Err(err) => vec![Err(err)],
                };
                futures::stream::iter(pieces)
            })
            .then(move |piece| {
                let sent = sent.clone();
                async move {
                    if let Ok(bytes) = &piece {
                        let total =
                            sent.fetch_add(bytes.len() as u64, Relaxed) + bytes.len() as u64;
                        let nanos = u128::from(total) * 1_000_000_000 / u128::from(rate);
                        tokio::time::sleep_until(started + Duration::from_nanos(nanos as u64))
                            .await;
                    }
                    Some(piece)
                }
            })
            // After the last piece: the GET is over, not abandoned.
            .chain(futures::stream::once(async move {
                guard.done = true;
                drop(guard);
                None
            }))
            .filter_map(|piece| async move { piece });
        result.payload = GetResultPayload::Stream(paced.boxed());
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let wait = self.latency.first_byte;
        let listing = self.inner.list(prefix);
        futures::stream::once(async move {
            tokio::time::sleep(wait).await;
            listing
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        tokio::time::sleep(self.latency.first_byte).await;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
