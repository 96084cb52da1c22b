//! Hedged GETs: a request whose first byte is late is issued once more,
//! and the first answer wins (the other is dropped, its connection
//! closed). On object stores a few requests in a hundred wait far longer
//! than the rest for no reason of their own; re-issuing them costs one
//! request and saves the wait (Durner et al., VLDB 2023).
//!
//! "Late" is `max(floor, 4 × the typical first-byte latency)`: the typical
//! latency is a moving average of what this backend's GETs saw, each
//! sample capped at the current threshold, so that a stall raises it only
//! a little while a store that answers every request late raises it
//! until it is above what the store takes.
//! Both requests carry the same `If-Match` and version, so whichever wins,
//! the bytes are of the version the read is pinned to.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// When to hedge, and what hedging did.
#[derive(Debug, Default)]
pub(crate) struct Hedging {
    /// Moving average of first-byte latency, in microseconds (0: none yet).
    typical_us: AtomicU64,
    /// GETs issued a second time.
    pub hedged: AtomicU64,
    /// Of those, the ones the second request won.
    pub second_won: AtomicU64,
}

impl Hedging {
    /// How long a GET may wait for its first byte before it is issued
    /// again, with `floor` the least.
    pub fn threshold(&self, floor: Duration) -> Duration {
        let typical = Duration::from_micros(self.typical_us.load(Relaxed));
        floor.max(typical * 4)
    }

    fn observe(&self, waited: Duration, floor: Duration) {
        let sample = waited.min(self.threshold(floor)).as_micros() as u64;
        let old = self.typical_us.load(Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.typical_us.store(new, Relaxed);
    }

    /// Runs `request` (a GET up to its first byte); if it has not answered
    /// after the threshold, runs it once more and takes the first answer
    /// that is not an error (or the last error). `floor` `None`: no
    /// hedging.
    pub async fn run<T, E, F, Fut>(&self, floor: Option<Duration>, request: F) -> Result<T, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Some(floor) = floor else {
            return request().await;
        };
        let started = Instant::now();
        let first = request();
        tokio::pin!(first);
        let threshold = self.threshold(floor);
        tokio::select! {
            answer = &mut first => {
                if answer.is_ok() {
                    self.observe(started.elapsed(), floor);
                }
                return answer;
            }
            () = tokio::time::sleep(threshold) => {}
        }
        self.hedged.fetch_add(1, Relaxed);
        let second = request();
        tokio::pin!(second);
        // The first answer that is not an error wins; an error waits for
        // the other request, which may still succeed.
        let answer = tokio::select! {
            answer = &mut first => match answer {
                Ok(found) => Ok(found),
                Err(_) => second.await.inspect(|_| {
                    self.second_won.fetch_add(1, Relaxed);
                }),
            },
            answer = &mut second => match answer {
                Ok(found) => {
                    self.second_won.fetch_add(1, Relaxed);
                    Ok(found)
                }
                Err(_) => first.await,
            },
        };
        // A late answer counts too, at the threshold: when every request
        // is late (a store, or this machine, overloaded) the threshold
        // rises instead of every GET being sent twice.
        if answer.is_ok() {
            self.observe(started.elapsed(), floor);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_late_for_every_request_raises_the_threshold() {
        let hedging = Hedging::default();
        let floor = Duration::from_millis(5);
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(12)).await;
            Ok::<(), ()>(())
        };
        for _ in 0..5 {
            assert!(hedging.run(Some(floor), slow).await.is_ok());
        }
        // The first was hedged; the threshold then rose above 12 ms.
        assert!(hedging.hedged.load(Relaxed) >= 1);
        assert!(hedging.threshold(floor) > Duration::from_millis(12));
        let before = hedging.hedged.load(Relaxed);
        for _ in 0..10 {
            assert!(hedging.run(Some(floor), slow).await.is_ok());
        }
        assert_eq!(hedging.hedged.load(Relaxed), before, "still hedging");
    }
}
