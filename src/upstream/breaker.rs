//! A circuit breaker per upstream: closed until the failure ratio over the last 10 seconds
//! (with at least `min_requests`) reaches the threshold; then open, failing fast, for `open_s`;
//! then half-open, letting one probe through at a time: a good probe closes it, a bad one opens
//! it again.

use super::window::Window;
use crate::config::BreakerSpec;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// What the breaker says about the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// Half-open: go ahead as the probe; report its outcome.
    Probe,
    /// Open: fail fast.
    Rejected,
}

/// Breaker states, as exported in `portico_circuit_breaker_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Traffic flows.
    Closed = 0,
    /// Traffic is refused.
    Open = 1,
    /// Probes test the upstream.
    HalfOpen = 2,
}

/// One upstream's breaker.
pub struct Breaker {
    spec: BreakerSpec,
    state: AtomicU8,
    opened_at_ms: AtomicU64,
    probes: AtomicU32,
    /// (successes, failures)
    window: Window<10>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(spec: BreakerSpec) -> Self {
        Breaker {
            spec,
            state: AtomicU8::new(State::Closed as u8),
            opened_at_ms: AtomicU64::new(0),
            probes: AtomicU32::new(0),
            window: Window::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            1 => State::Open,
            2 => State::HalfOpen,
            _ => State::Closed,
        }
    }

    /// Decides whether a request may go to the upstream now.
    pub fn admit(&self, now_ms: u64) -> Admission {
        match self.state() {
            State::Closed => Admission::Allowed,
            State::Open => {
                let since = now_ms.saturating_sub(self.opened_at_ms.load(Ordering::Acquire));
                if since < self.spec.open_ms {
                    return Admission::Rejected;
                }
                let _ = self.state.compare_exchange(
                    State::Open as u8,
                    State::HalfOpen as u8,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                self.admit_probe()
            }
            State::HalfOpen => self.admit_probe(),
        }
    }

    fn admit_probe(&self) -> Admission {
        let taken = self.probes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| (p < 1).then_some(p + 1));
        if taken.is_ok() {
            Admission::Probe
        } else {
            Admission::Rejected
        }
    }

    /// Records how a request that was let through went.
    pub fn record(&self, admission: Admission, success: bool, now_ms: u64) {
        match admission {
            Admission::Rejected => {}
            Admission::Probe => {
                self.probes.fetch_sub(1, Ordering::AcqRel);
                if success {
                    self.window.reset();
                    self.state.store(State::Closed as u8, Ordering::Release);
                } else {
                    self.trip(now_ms);
                }
            }
            Admission::Allowed => {
                if success {
                    self.window.add_a(now_ms);
                } else {
                    self.window.add_b(now_ms);
                }
                let (ok, failed) = self.window.totals(now_ms);
                let total = ok + failed;
                if self.state() == State::Closed
                    && total >= u64::from(self.spec.min_requests)
                    && failed as f64 / total as f64 >= self.spec.failure_ratio
                {
                    self.trip(now_ms);
                }
            }
        }
    }

    /// Gives back what an admission holds (a half-open breaker's probe place) when the request
    /// ended before its outcome could be recorded; records nothing.
    pub fn release(&self, admission: Admission) {
        if admission == Admission::Probe {
            self.probes.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn trip(&self, now_ms: u64) {
        self.opened_at_ms.store(now_ms, Ordering::Release);
        self.state.store(State::Open as u8, Ordering::Release);
        log::warn!("circuit breaker opened");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSpec { failure_ratio: 0.5, min_requests: 4, open_ms: 1000 })
    }

    #[test]
    fn opens_fails_fast_half_opens_and_closes() {
        let b = breaker();
        let t = 1_000_000_000;
        for ok in [true, false, false] {
            b.record(b.admit(t), ok, t);
        }
        assert_eq!(b.state(), State::Closed, "3 requests are below min_requests");
        b.record(b.admit(t), false, t);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.admit(t + 10), Admission::Rejected);

        // After open_s, one probe at a time.
        let probe = b.admit(t + 1_001);
        assert_eq!(probe, Admission::Probe);
        assert_eq!(b.admit(t + 1_002), Admission::Rejected);
        b.record(probe, false, t + 1_003);
        assert_eq!(b.state(), State::Open, "a failed probe opens it again");

        let probe = b.admit(t + 2_100);
        assert_eq!(probe, Admission::Probe);
        b.record(probe, true, t + 2_101);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.admit(t + 2_102), Admission::Allowed);
    }
}
