//! Prefetched bytes and sequential read-ahead, in *windows*.
//!
//! An object store has no kernel read-ahead, every request pays tens of
//! milliseconds before its first byte, and one request streams at only
//! 25–95 MiB/s. The way to a bucket's bandwidth is large requests, many at
//! once (Durner et al., VLDB 2023). Streams read in `io_combine_limit`
//! runs (128 KiB by default) and must get their pages in order, so this
//! backend makes the large requests itself:
//!
//! - A **window** is one ranged GET whose body is kept in the chunks it
//!   arrives in. A read inside it waits only until *its* bytes are in, not
//!   for the whole body: a 8 MiB GET serves its first 128 KiB after one
//!   first-byte latency, like a small one would.
//! - `prefetch` advice opens a window for the advised range (the old
//!   single-flight cache: prefetch + read is one GET, in either order).
//! - An access that continues where the last one of its kind (advice or
//!   read) on the same object ended, or right after a window, is
//!   **sequential**: the window it needs grows
//!   to twice the last one (up to `max_request_bytes`, 8 MiB by default),
//!   and windows are opened ahead of it until `read_ahead_bytes` (or
//!   sixteen requests' worth, while they are still growing) lie ahead, at
//!   most two per access so that read-ahead ramps up with the reader.
//! - Read-ahead stops where reads lately took the bytes: another reader
//!   of the same object may be ahead (`verify` reads a large segment in
//!   chunks at once).
//! - Windows belong to one object *version* (key, ETag, version): bytes of
//!   another version are never served.
//! - Memory: windows together hold at most `prefetch_cache_bytes`; one
//!   that would not fit is not opened (the read does its own GET). A window
//!   leaves once its bytes have all been read, when its GET fails (readers
//!   fall back to their own GET, which names the object if it fails too),
//!   when this backend replaces or deletes the object, or after five
//!   seconds untouched. Its GET stops when it leaves.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

/// Untouched this long, a window may go to make room (a reader gone, or a
/// version replaced).
pub(crate) const IDLE: Duration = Duration::from_secs(5);
/// Sequence records (objects with no window) kept before they are dropped.
const MAX_SEQUENCES: usize = 4096;
/// Read-ahead while requests still grow: this many requests' worth.
const AHEAD_REQUESTS: u64 = 16;
/// New read-ahead windows per access.
const WINDOWS_PER_ACCESS: usize = 2;
/// Ranges read kept per object (a sequential reader needs one).
const MAX_READ_RANGES: usize = 64;
/// A range read that has not grown for this long has no reader at work.
const ACTIVE_MS: u64 = 1000;

/// One version of one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ObjectVersion {
    pub key: String,
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

/// One ranged GET's body, as it arrives.
pub(crate) struct Window {
    pub range: Range<u64>,
    /// Chunks in order, each with its offset from `range.start`.
    chunks: Mutex<Vec<(u64, Bytes)>>,
    /// Bytes arrived so far; closed without all of them if the GET failed.
    arrived: watch::Receiver<u64>,
    consumed: AtomicU64,
    /// Milliseconds since `ReadAhead::epoch` of the last access.
    touched: AtomicU64,
}

/// The filling side of a new window: its GET's task owns it.
pub(crate) struct Filling {
    pub window: std::sync::Weak<Window>,
    pub range: Range<u64>,
    arrived: watch::Sender<u64>,
}

impl Filling {
    /// Adds the next chunk of the body; false if the window is gone (the
    /// GET should stop) or the chunk runs past its range.
    pub fn push(&self, chunk: Bytes) -> bool {
        let Some(window) = self.window.upgrade() else {
            return false;
        };
        let len = self.range.end - self.range.start;
        let mut chunks = window.chunks.lock().unwrap_or_else(|p| p.into_inner());
        let at = chunks.last().map_or(0, |(at, c)| at + c.len() as u64);
        if at + chunk.len() as u64 > len {
            return false;
        }
        let now = at + chunk.len() as u64;
        chunks.push((at, chunk));
        drop(chunks);
        self.arrived.send_replace(now);
        true
    }

    /// Whether the whole body arrived.
    pub fn complete(&self) -> bool {
        *self.arrived.borrow() == self.range.end - self.range.start
    }
}

/// The windows of one object version, and where its last access ended.
#[derive(Default)]
struct Sequence {
    windows: BTreeMap<u64, Arc<Window>>,
    /// Where the last advice and the last read ended: kept apart, since a
    /// stream's advice runs ahead of its reads.
    last_end: [Option<u64>; 2],
    /// Size of the last window opened for it.
    request: u64,
    /// What reads took lately (start → (end, when it last grew, in ms)),
    /// apart and not touching: no read-ahead goes where a reader is still
    /// at work. Another reader of the same object may be ahead of this one
    /// (`verify` reads a large segment in chunks at once), and reading
    /// ahead over what it read would be in vain. A range that stopped
    /// growing a second ago has no reader any more: it is ignored, so a
    /// second scan of the object reads ahead like the first.
    read: BTreeMap<u64, (u64, u64)>,
    /// When it was last accessed (ms): its windows are not idle while it
    /// is (a reader far behind its read-ahead still gets to them).
    touched: u64,
}

impl Sequence {
    /// Whether an access (advice or not) starting at `at` continues this
    /// sequence: where the last of its kind ended, or right after a
    /// window. Not merely inside a window: many random readers of one
    /// object land in each other's windows.
    fn continues(&self, at: u64, advised: bool) -> bool {
        self.last_end[usize::from(advised)] == Some(at)
            || self
                .windows
                .range(..at)
                .next_back()
                .is_some_and(|(_, w)| w.range.end == at)
    }

    /// Notes `range` as read at `now` (ms).
    fn note_read(&mut self, range: &Range<u64>, now: u64) {
        // Ranges no reader grows any more go first: merged into this one
        // they would look active again.
        let stale = now.saturating_sub(ACTIVE_MS);
        self.read.retain(|_, (_, grew)| *grew >= stale);
        let (mut start, mut end) = (range.start, range.end);
        let touching: Vec<u64> = self
            .read
            .range(..=end)
            .rev()
            .take_while(|(_, (e, _))| *e >= start)
            .map(|(s, _)| *s)
            .collect();
        for s in touching {
            if let Some((e, _)) = self.read.remove(&s) {
                start = start.min(s);
                end = end.max(e);
            }
        }
        self.read.insert(start, (end, now));
        while self.read.len() > MAX_READ_RANGES {
            self.read.pop_first();
        }
    }

    /// Whether a reader still at work read `at`; and where the next range
    /// such a reader read starts.
    fn read_at(&self, at: u64, now: u64) -> (bool, u64) {
        let active = |grew: u64| grew + ACTIVE_MS >= now;
        let inside = self
            .read
            .range(..=at)
            .next_back()
            .is_some_and(|(_, (e, grew))| *e > at && active(*grew));
        let next = self
            .read
            .range(at + 1..)
            .find(|(_, (_, grew))| active(*grew))
            .map_or(u64::MAX, |(s, _)| *s);
        (inside, next)
    }

    /// From `at`: the first byte no window covers (walking windows that
    /// follow each other), and where the next window after it starts.
    fn gap(&self, at: u64) -> (u64, u64) {
        let mut end = at;
        if let Some((_, w)) = self.windows.range(..=at).next_back() {
            end = end.max(w.range.end);
        }
        while let Some(w) = self.windows.get(&end) {
            end = w.range.end;
        }
        let next = self
            .windows
            .range(end..)
            .next()
            .map_or(u64::MAX, |(start, _)| *start);
        (end, next)
    }

    /// `range` as windows and the gaps between them, in order; `None` if
    /// no window overlaps it.
    fn cover(&self, range: &Range<u64>) -> Option<Vec<Part>> {
        let mut parts = Vec::new();
        let mut at = range.start;
        let first = self
            .windows
            .range(..=range.start)
            .next_back()
            .filter(|(_, w)| w.range.end > range.start)
            .map(|(_, w)| w);
        for w in first.into_iter().chain(
            self.windows
                .range(range.start + 1..range.end)
                .map(|(_, w)| w),
        ) {
            if w.range.start > at {
                parts.push(Part::Gap(at..w.range.start));
            }
            parts.push(Part::Window(w.clone()));
            at = w.range.end;
        }
        if parts.is_empty() {
            return None;
        }
        if at < range.end {
            parts.push(Part::Gap(at..range.end));
        }
        Some(parts)
    }
}

/// A piece of an access: bytes of a window, or a gap no window holds.
pub(crate) enum Part {
    Window(Arc<Window>),
    Gap(Range<u64>),
}

/// What an access needs: the windows that hold it and the gaps between
/// them (`None`: no window does, do a plain GET) and the windows it
/// opened, whose GETs the caller starts.
pub(crate) struct Plan {
    pub cover: Option<Vec<Part>>,
    pub opened: Vec<Filling>,
}

/// Every window of one backend.
pub(crate) struct ReadAhead {
    state: Mutex<State>,
    epoch: Instant,
    budget: u64,
    max_request: u64,
    ahead: u64,
}

#[derive(Default)]
struct State {
    objects: HashMap<ObjectVersion, Sequence>,
    bytes: u64,
    peak: u64,
    /// Bytes of windows that left before they were read.
    dropped: u64,
    /// When idle windows were last swept (ms since `epoch`).
    swept: u64,
}

impl ReadAhead {
    pub fn new(budget: u64, max_request: u64, ahead: u64) -> Self {
        ReadAhead {
            state: Mutex::default(),
            epoch: Instant::now(),
            budget,
            max_request: max_request.max(1),
            ahead,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Plans an access to `range` of `object` (whose data ends at `end`):
    /// `advised` for `prefetch`, which opens a window even where the access
    /// is not sequential.
    pub fn plan(&self, object: &ObjectVersion, end: u64, range: Range<u64>, advised: bool) -> Plan {
        let now = self.now_ms();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.objects.len() >= MAX_SEQUENCES && !state.objects.contains_key(object) {
            state.objects.retain(|_, seq| !seq.windows.is_empty());
        }
        let State {
            objects,
            bytes,
            peak,
            dropped,
            swept,
        } = &mut *state;
        // The key is cloned only for an object seen the first time: this
        // runs on every read.
        if !objects.contains_key(object) {
            objects.insert(object.clone(), Sequence::default());
        }
        let mut sequential = false;
        if let Some(seq) = objects.get_mut(object) {
            seq.touched = now;
            sequential = seq.continues(range.start, advised);
        }
        let mut opened = Vec::new();
        let mut open = |seq: &mut Sequence, bytes: &mut u64, window: Range<u64>| {
            let len = window.end - window.start;
            if *bytes + len > self.budget {
                return false;
            }
            *bytes += len;
            *peak = (*peak).max(*bytes);
            seq.request = len;
            let (tx, rx) = watch::channel(0);
            let w = Arc::new(Window {
                range: window.clone(),
                chunks: Mutex::default(),
                arrived: rx,
                consumed: AtomicU64::new(0),
                touched: AtomicU64::new(now),
            });
            opened.push(Filling {
                window: Arc::downgrade(&w),
                range: window.clone(),
                arrived: tx,
            });
            seq.windows.insert(window.start, w);
            true
        };
        // Windows idle too long go: once a second, and whenever room
        // could be short. (A window may hold a slice of a larger buffer,
        // as the in-memory store hands out; it must not keep that alive
        // for long.)
        if now >= *swept + 1000
            || *bytes + self.max_request.max(range.end - range.start) > self.budget
        {
            *swept = now;
            let (freed, unread) = sweep(objects, now.saturating_sub(IDLE.as_millis() as u64));
            *bytes -= freed;
            *dropped += unread;
        }
        // Sweeping drops windows, never sequences: it is still there.
        let Some(seq) = objects.get_mut(object) else {
            return Plan {
                cover: None,
                opened,
            };
        };
        // The access itself.
        let (gap, next) = seq.gap(range.start);
        if gap < range.end && (advised || sequential) {
            let grown = if sequential {
                (seq.request * 2).min(self.max_request)
            } else {
                0
            };
            let stop = (gap + grown).max(range.end).min(end).min(next);
            if stop > gap {
                open(seq, bytes, gap..stop);
            }
        }
        // Read-ahead.
        if sequential {
            // While requests still grow, sixteen of them ahead at most.
            let reach = if seq.request >= self.max_request {
                self.ahead
            } else {
                self.ahead.min(seq.request.saturating_mul(AHEAD_REQUESTS))
            };
            let target = range.start.saturating_add(reach).min(end);
            for _ in 0..WINDOWS_PER_ACCESS {
                let (gap, next) = seq.gap(range.start);
                let (read, next_read) = seq.read_at(gap, now);
                if gap >= target || gap >= end || read {
                    break;
                }
                let size = (seq.request * 2).clamp(1, self.max_request);
                let stop = (gap + size).min(end).min(next).min(next_read);
                if stop <= gap || !open(seq, bytes, gap..stop) {
                    break;
                }
            }
        }
        seq.last_end[usize::from(advised)] = Some(range.end);
        if !advised {
            seq.note_read(&range, now);
        }
        let cover = seq.cover(&range);
        for part in cover.iter().flatten() {
            if let Part::Window(w) = part {
                w.touched.store(now, Relaxed);
            }
        }
        Plan { cover, opened }
    }

    /// Counts `range` of `window` as read; a window read whole leaves.
    pub fn consumed(&self, object: &ObjectVersion, window: &Arc<Window>, range: &Range<u64>) {
        let part = range.end.min(window.range.end) - range.start.max(window.range.start);
        let len = window.len();
        if window.consumed.fetch_add(part, Relaxed) + part >= len {
            self.remove(object, window);
        }
    }

    /// Takes `window` out (read whole, or its GET failed).
    pub fn remove(&self, object: &ObjectVersion, window: &Arc<Window>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State {
            objects,
            bytes,
            dropped,
            ..
        } = &mut *state;
        if let Some(seq) = objects.get_mut(object) {
            if seq
                .windows
                .get(&window.range.start)
                .is_some_and(|w| Arc::ptr_eq(w, window))
            {
                seq.windows.remove(&window.range.start);
                *bytes -= window.len();
                *dropped += window.unread();
            }
        }
    }

    /// Drops every window of every version of object `key` (this backend
    /// replaced or deleted it).
    pub fn forget(&self, key: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State {
            objects,
            bytes,
            dropped,
            ..
        } = &mut *state;
        objects.retain(|object, seq| {
            if object.key != key {
                return true;
            }
            for w in seq.windows.values() {
                *bytes -= w.len();
                *dropped += w.unread();
            }
            false
        });
    }

    /// Drops windows idle too long now (called a while after a window's
    /// GET ends, so a scan that stopped early does not hold them until the
    /// next access).
    pub fn sweep_idle(&self) {
        let now = self.now_ms();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (freed, unread) = sweep(
            &mut state.objects,
            now.saturating_sub(IDLE.as_millis() as u64),
        );
        state.bytes -= freed;
        state.dropped += unread;
    }

    /// Bytes all windows hold now, the most they held at once, and the
    /// bytes of windows that left unread.
    pub fn bytes(&self) -> (u64, u64, u64) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.bytes, state.peak, state.dropped)
    }
}

/// Drops windows untouched since `before` (ms) whose object was not
/// accessed since either; returns their bytes, and how many of those were
/// never read.
fn sweep(objects: &mut HashMap<ObjectVersion, Sequence>, before: u64) -> (u64, u64) {
    let (mut freed, mut unread) = (0, 0);
    for seq in objects.values_mut().filter(|seq| seq.touched < before) {
        seq.windows.retain(|_, w| {
            let keep = w.touched.load(Relaxed) >= before;
            if !keep {
                freed += w.len();
                unread += w.unread();
            }
            keep
        });
    }
    (freed, unread)
}

impl Window {
    /// Bytes it holds when whole.
    fn len(&self) -> u64 {
        self.range.end - self.range.start
    }

    /// Bytes of it not read yet.
    fn unread(&self) -> u64 {
        self.len().saturating_sub(self.consumed.load(Relaxed))
    }

    /// Bytes `range` (inside this window) once they have arrived, as
    /// slices of the chunks they came in; `None` if the GET failed first.
    pub async fn bytes(&self, range: &Range<u64>) -> Option<Vec<Bytes>> {
        let lo = range.start.max(self.range.start) - self.range.start;
        let hi = range.end.min(self.range.end) - self.range.start;
        let mut arrived = self.arrived.clone();
        arrived.wait_for(|n| *n >= hi).await.ok()?;
        let chunks = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        // The chunk holding `lo`, then on until `hi`.
        let first = chunks.partition_point(|(at, c)| at + c.len() as u64 <= lo);
        let mut out = Vec::new();
        for (at, chunk) in &chunks[first..] {
            if *at >= hi {
                break;
            }
            let from = lo.saturating_sub(*at) as usize;
            let to = (hi - at).min(chunk.len() as u64) as usize;
            out.push(chunk.slice(from..to));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn object() -> ObjectVersion {
        ObjectVersion {
            key: "k".into(),
            e_tag: Some("1".into()),
            version: None,
        }
    }

    fn ranges(plan: &Plan) -> Vec<Range<u64>> {
        plan.opened.iter().map(|f| f.range.clone()).collect()
    }

    #[test]
    fn a_random_read_opens_nothing_advice_opens_its_range() {
        let ra = ReadAhead::new(256 * MIB, 8 * MIB, 128 * MIB);
        let plan = ra.plan(&object(), 1 << 30, 0..8192, false);
        assert!(plan.cover.is_none() && plan.opened.is_empty());
        let plan = ra.plan(&object(), 1 << 30, 100 * MIB..100 * MIB + 8192, true);
        assert_eq!(ranges(&plan), vec![100 * MIB..100 * MIB + 8192]);
        assert_eq!(plan.cover.map(|c| c.len()), Some(1));
    }

    #[test]
    fn sequential_requests_grow_to_the_largest_and_stay_ahead() {
        let ra = ReadAhead::new(1 << 40, 8 * MIB, 128 * MIB);
        let run = 128 * 1024;
        let mut opened = Vec::new();
        let mut at = 0;
        while at < 512 * MIB {
            let plan = ra.plan(&object(), 1 << 30, at..at + run, true);
            let parts = plan.cover.as_deref().unwrap_or_default();
            assert!(
                !parts.is_empty() && parts.iter().all(|p| matches!(p, Part::Window(_))),
                "access at {at} not covered"
            );
            opened.extend(ranges(&plan));
            at += run;
        }
        // Windows follow one another without overlap, double up to 8 MiB.
        for pair in opened.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            let (a, b) = (pair[0].end - pair[0].start, pair[1].end - pair[1].start);
            assert!(b == (2 * a).min(8 * MIB), "{a} then {b}");
        }
        assert_eq!(opened.last().map(|r| r.end - r.start), Some(8 * MIB));
        // Read-ahead reached its distance: 128 MiB past the last access.
        assert!(opened.last().is_some_and(|r| r.end >= at + 120 * MIB));
        // Nothing past the object's end.
        assert!(opened.iter().all(|r| r.end <= 1 << 30));
    }

    #[test]
    fn the_budget_holds_and_read_windows_leave() {
        let ra = ReadAhead::new(4 * MIB, MIB, 64 * MIB);
        let mut held = Vec::new();
        for i in 0..64 {
            let plan = ra.plan(&object(), 1 << 30, i * 65536..(i + 1) * 65536, true);
            held.extend(plan.opened);
            assert!(ra.bytes().0 <= 4 * MIB);
        }
        let plan = ra.plan(&object(), 1 << 30, 0..65536, true);
        for part in plan.cover.unwrap_or_default() {
            if let Part::Window(w) = part {
                ra.consumed(&object(), &w, &w.range.clone());
            }
        }
        assert!(ra.bytes().0 < 4 * MIB);
        assert!(ra.bytes().1 <= 4 * MIB);
    }

    #[test]
    fn read_ahead_stops_where_another_reader_has_been() {
        let ra = ReadAhead::new(1 << 40, 8 * MIB, 128 * MIB);
        let run = 128 * 1024;
        // Reader B has read 32 MiB..40 MiB of the object (the windows it
        // read whole are gone).
        for at in (32 * MIB..40 * MIB).step_by(run as usize) {
            let range = at..at + run;
            let plan = ra.plan(&object(), 1 << 30, range.clone(), false);
            for part in plan.cover.unwrap_or_default() {
                if let Part::Window(w) = part {
                    ra.consumed(&object(), &w, &range);
                }
            }
        }
        // Reader A starts at 0 and reads on: its read-ahead stops at
        // 32 MiB and does not fetch what B took.
        let mut opened = Vec::new();
        for at in (0..4 * MIB).step_by(run as usize) {
            opened.extend(ranges(&ra.plan(&object(), 1 << 30, at..at + run, false)));
        }
        assert!(opened.iter().any(|r| r.end == 32 * MIB), "{opened:?}");
        assert!(
            opened
                .iter()
                .all(|r| r.end <= 32 * MIB || r.start >= 40 * MIB),
            "{opened:?}"
        );
    }

    #[tokio::test]
    async fn a_second_scan_reads_ahead_like_the_first() {
        // Read-ahead of 2 MiB: the first scan's leftovers lie past 16 MiB.
        let ra = ReadAhead::new(1 << 40, MIB, 2 * MIB);
        let run = 128 * 1024;
        // Windows opened ahead of the access that opened them.
        let scan = |ra: &ReadAhead| {
            let mut ahead = 0;
            for at in (0..16 * MIB).step_by(run as usize) {
                let range = at..at + run;
                let plan = ra.plan(&object(), 1 << 30, range.clone(), false);
                ahead += plan
                    .opened
                    .iter()
                    .filter(|f| f.range.start > range.end)
                    .count();
                for part in plan.cover.unwrap_or_default() {
                    if let Part::Window(w) = part {
                        ra.consumed(&object(), &w, &range);
                    }
                }
            }
            ahead
        };
        assert!(scan(&ra) > 0);
        // The first reader is gone a second later: what it read no longer
        // stops read-ahead.
        tokio::time::sleep(std::time::Duration::from_millis(ACTIVE_MS + 100)).await;
        assert!(scan(&ra) > 0, "no read-ahead on a second scan");
    }

    #[tokio::test]
    async fn a_read_takes_its_bytes_as_they_arrive() {
        let ra = ReadAhead::new(MIB, MIB, MIB);
        let mut plan = ra.plan(&object(), 1 << 20, 0..1000, true);
        let filling = plan.opened.remove(0);
        let Some(Part::Window(window)) = plan.cover.unwrap_or_default().pop() else {
            panic!("advice opened no window");
        };
        assert!(filling.push(Bytes::from(vec![1u8; 300])));
        assert!(filling.push(Bytes::from(vec![2u8; 400])));
        let got = window.bytes(&(200..500)).await.unwrap_or_default();
        let flat: Vec<u8> = got.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(flat.len(), 300);
        assert!(flat[..100].iter().all(|b| *b == 1) && flat[100..].iter().all(|b| *b == 2));
        // A GET that ends short: readers of the rest hear it.
        assert!(!filling.complete());
        drop(filling);
        assert!(window.bytes(&(600..1000)).await.is_none());
    }
}
