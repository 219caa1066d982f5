//! Per-target state the balancer does not keep: requests in flight (for least-loaded choice)
//! and passive health (outlier ejection after consecutive failures).

use crate::config::OutlierSpec;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// One target's counters.
#[derive(Default)]
pub struct TargetState {
    /// Requests to this target now.
    pub in_flight: AtomicUsize,
    consecutive_failures: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// Whose turn it is to get an HTTP/2 stream to this target (`proxy/multiplex.rs`).
    pub h2_turn: StreamTurn,
    /// Set once the target answered in HTTP/1.1 where HTTP/2 was offered (ALPN over TLS): its
    /// requests no longer wait for a turn.
    pub speaks_http1: AtomicBool,
}

/// One permit: the request holding it is the one getting an HTTP/2 stream to the target.
pub struct StreamTurn {
    /// The one permit.
    pub permit: Arc<tokio::sync::Semaphore>,
    /// When the turn last changed hands (ms since the Unix epoch): a turn held for long is a
    /// connection slow to open, which the requests behind stop waiting for.
    pub passed_at_ms: AtomicU64,
}

impl Default for StreamTurn {
    fn default() -> Self {
        StreamTurn { permit: Arc::new(tokio::sync::Semaphore::new(1)), passed_at_ms: AtomicU64::new(0) }
    }
}

impl TargetState {
    /// Whether outlier detection has this target ejected at `now_ms`.
    pub fn ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Acquire) > now_ms
    }
}

/// The states of a pool's targets, replaced (not locked) when discovery finds new ones.
#[derive(Default)]
pub struct Targets {
    map: ArcSwap<HashMap<SocketAddr, Arc<TargetState>>>,
    outlier: Option<OutlierSpec>,
}

/// What a recorded outcome did to the target.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed.
    Unchanged,
    /// The target was just ejected.
    Ejected,
}

impl Targets {
    /// States for `addrs`, with outlier detection when configured.
    pub fn new(addrs: impl IntoIterator<Item = SocketAddr>, outlier: Option<OutlierSpec>) -> Self {
        let map = addrs.into_iter().map(|a| (a, Arc::new(TargetState::default()))).collect();
        Targets { map: ArcSwap::from_pointee(map), outlier }
    }

    /// The state of `addr`, created if discovery added it since.
    pub fn get(&self, addr: &SocketAddr) -> Arc<TargetState> {
        if let Some(s) = self.map.load().get(addr) {
            return s.clone();
        }
        let fresh = Arc::new(TargetState::default());
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.entry(*addr).or_insert_with(|| fresh.clone());
            m
        });
        self.map.load().get(addr).cloned().unwrap_or(fresh)
    }

    /// Reads a target's state without creating it.
    pub fn peek<R>(&self, addr: &SocketAddr, f: impl FnOnce(&TargetState) -> R) -> Option<R> {
        self.map.load().get(addr).map(|s| f(s))
    }

    /// Records a finished exchange with `addr` for passive health.
    pub fn record(&self, addr: &SocketAddr, success: bool, now_ms: u64) -> Outcome {
        let Some(spec) = &self.outlier else { return Outcome::Unchanged };
        let state = self.get(addr);
        if success {
            state.consecutive_failures.store(0, Ordering::Release);
            return Outcome::Unchanged;
        }
        let failures = state.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= spec.consecutive_failures && !state.ejected(now_ms) {
            state.consecutive_failures.store(0, Ordering::Release);
            state.ejected_until_ms.store(now_ms + spec.eject_ms, Ordering::Release);
            return Outcome::Ejected;
        }
        Outcome::Unchanged
    }

    /// Forgets every target not in `keep` (discovery no longer finds them), so the map does not
    /// grow with every address a name ever had. An attempt still running at a forgotten target
    /// keeps its own handle to the state.
    pub fn retain(&self, keep: &std::collections::BTreeSet<SocketAddr>) {
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.retain(|a, _| keep.contains(a));
            m
        });
    }

    /// Every known target with whether it is ejected now.
    pub fn ejections(&self, now_ms: u64) -> Vec<(SocketAddr, bool)> {
        self.map.load().iter().map(|(a, s)| (*a, s.ejected(now_ms))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_failures_eject_for_a_while() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let t = Targets::new([addr], Some(OutlierSpec { consecutive_failures: 3, eject_ms: 1000 }));
        let now = 1_000_000;
        assert_eq!(t.record(&addr, false, now), Outcome::Unchanged);
        assert_eq!(t.record(&addr, true, now), Outcome::Unchanged, "a success resets the count");
        t.record(&addr, false, now);
        t.record(&addr, false, now);
        assert_eq!(t.record(&addr, false, now), Outcome::Ejected);
        assert_eq!(t.peek(&addr, |s| s.ejected(now + 999)), Some(true));
        assert_eq!(t.peek(&addr, |s| s.ejected(now + 1000)), Some(false));
    }

    #[test]
    fn targets_discovery_lost_are_forgotten() {
        let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().expect("a"), "127.0.0.1:2".parse().expect("b"));
        let t = Targets::new([a, b], None);
        let held = t.get(&a);
        t.retain(&[b].into());
        assert!(t.peek(&a, |_| ()).is_none(), "a is gone from the map");
        assert!(t.peek(&b, |_| ()).is_some());
        assert_eq!(t.ejections(0).len(), 1);
        held.in_flight.fetch_add(1, Ordering::AcqRel);
        assert_eq!(held.in_flight.load(Ordering::Acquire), 1, "a running attempt keeps its handle");
    }
}
