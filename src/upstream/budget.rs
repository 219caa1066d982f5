//! A retry budget, as Envoy and Linkerd have: over the last 10 seconds, retries may be at most
//! `budget_percent` of requests (with a floor of a few retries so a quiet route can still
//! retry), so retries cannot multiply the load on an upstream that is already failing.

use super::window::Window;
use std::sync::atomic::{AtomicU64, Ordering};

/// Retries allowed per window whatever the traffic.
const MIN_RETRIES: u64 = 3;

/// One route's budget.
pub struct RetryBudget {
    percent: f64,
    /// (requests, retries)
    window: Window<10>,
    /// Retries refused because the budget was spent.
    pub exhausted: AtomicU64,
}

impl RetryBudget {
    /// A budget of `percent` of requests.
    pub fn new(percent: f64) -> Self {
        RetryBudget { percent, window: Window::default(), exhausted: AtomicU64::new(0) }
    }

    /// Counts an original request.
    pub fn request(&self, now_ms: u64) {
        self.window.add_a(now_ms);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_retry(&self, now_ms: u64) -> bool {
        let (requests, retries) = self.window.totals(now_ms);
        let allowed = ((requests as f64) * self.percent / 100.0) as u64;
        if retries < allowed.max(MIN_RETRIES) {
            self.window.add_b(now_ms);
            true
        } else {
            self.exhausted.fetch_add(1, Ordering::AcqRel);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_requests() {
        let b = RetryBudget::new(20.0);
        let t = 5_000_000;
        for _ in 0..100 {
            b.request(t);
        }
        let granted = (0..100).filter(|_| b.try_retry(t)).count();
        assert_eq!(granted, 20);
        assert_eq!(b.exhausted.load(Ordering::Acquire), 80);
    }

    #[test]
    fn a_quiet_route_keeps_a_floor() {
        let b = RetryBudget::new(20.0);
        let granted = (0..10).filter(|_| b.try_retry(1_000)).count();
        assert_eq!(granted as u64, MIN_RETRIES);
    }
}
