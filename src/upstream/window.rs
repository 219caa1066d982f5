//! A lock-free sliding window of two counts (such as successes and failures) over the last N
//! seconds, in one-second buckets. Used by the retry budget and the circuit breaker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

struct Bucket {
    second: AtomicU64,
    a: AtomicU64,
    b: AtomicU64,
}

/// Counts of two kinds of event over the last `N` seconds.
pub struct Window<const N: usize> {
    buckets: [Bucket; N],
}

impl<const N: usize> Default for Window<N> {
    fn default() -> Self {
        Window {
            buckets: std::array::from_fn(|_| Bucket {
                second: AtomicU64::new(0),
                a: AtomicU64::new(0),
                b: AtomicU64::new(0),
            }),
        }
    }
}

impl<const N: usize> Window<N> {
    fn bucket(&self, now_ms: u64) -> &Bucket {
        let second = now_ms / 1000;
        let bucket = &self.buckets[(second % N as u64) as usize];
        let seen = bucket.second.load(Ordering::Acquire);
        if seen != second && bucket.second.compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // This thread moved the bucket to a new second: its old counts are from N seconds ago.
            bucket.a.store(0, Ordering::Release);
            bucket.b.store(0, Ordering::Release);
        }
        bucket
    }

    /// Counts one event of the first kind.
    pub fn add_a(&self, now_ms: u64) {
        self.bucket(now_ms).a.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts one event of the second kind.
    pub fn add_b(&self, now_ms: u64) {
        self.bucket(now_ms).b.fetch_add(1, Ordering::AcqRel);
    }

    /// Both totals over the window ending now.
    pub fn totals(&self, now_ms: u64) -> (u64, u64) {
        let second = now_ms / 1000;
        self.buckets
            .iter()
            .filter(|b| {
                let s = b.second.load(Ordering::Acquire);
                s <= second && second - s < N as u64
            })
            .fold((0, 0), |(a, b), bk| (a + bk.a.load(Ordering::Acquire), b + bk.b.load(Ordering::Acquire)))
    }

    /// Forgets everything.
    pub fn reset(&self) {
        for b in &self.buckets {
            b.a.store(0, Ordering::Release);
            b.b.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expire_after_the_window() {
        let w: Window<10> = Window::default();
        let t = 1_000_000_000;
        w.add_a(t);
        w.add_a(t + 500);
        w.add_b(t + 3_000);
        assert_eq!(w.totals(t + 3_000), (2, 1));
        assert_eq!(w.totals(t + 10_500), (0, 1));
        assert_eq!(w.totals(t + 14_000), (0, 0));
    }
}
