//! What a request holds while it runs, as guards that give it back on drop: its place in the
//! in-flight gauge, the route's and the upstream's `max_in_flight` slots
//! ([`crate::upstream::limit::Slot`]), and each upstream attempt's share of its target's load
//! and of its breaker. Recording how an attempt went is explicit ([`Attempt::finish`]); giving
//! back what it holds is not, so no phase has to remember it.

use super::errors::UpstreamErrorKind;
use crate::telemetry::Metrics;
use crate::upstream::breaker::Admission;
use crate::upstream::targets::{Outcome, TargetState};
use crate::upstream::window::now_ms;
use crate::upstream::Pool;
use prometheus::IntGauge;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A request counted in `portico_requests_in_flight` (which graceful shutdown waits on) until
/// dropped.
pub struct InFlight(IntGauge);

impl InFlight {
    /// Counts a request in `gauge`.
    pub fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One try at an upstream target. While it lives it counts in the target's in-flight load
/// (least-loaded balancing reads it) and holds what the pool's breaker admitted (a half-open
/// breaker lets one probe through at a time).
pub struct Attempt {
    pool: Arc<Pool>,
    addr: SocketAddr,
    target: Arc<TargetState>,
    /// `Rejected` once the outcome is recorded: nothing is left to give back.
    admission: Admission,
}

impl Attempt {
    /// Starts an attempt at `addr` of `pool`, with what the breaker said.
    pub fn start(pool: Arc<Pool>, addr: SocketAddr, admission: Admission) -> Self {
        let target = pool.targets.get(&addr);
        target.in_flight.fetch_add(1, Ordering::AcqRel);
        Attempt { pool, addr, target, admission }
    }

    /// The target's state, for what else a phase keeps per target.
    pub fn target(&self) -> &Arc<TargetState> {
        &self.target
    }

    /// Records how the attempt went, for passive health (outlier ejection) and the breaker,
    /// and counts a failure by `kind`.
    pub fn finish(mut self, metrics: &Metrics, success: bool, kind: UpstreamErrorKind) {
        let name = &self.pool.spec.name;
        let now = now_ms();
        if !success {
            metrics.upstream_error(name, kind.as_str());
        }
        if self.pool.targets.record(&self.addr, success, now) == Outcome::Ejected {
            log::warn!("upstream {name}: target {} ejected after consecutive failures", self.addr);
            metrics.outlier_ejection(name, self.addr);
        }
        if let Some(b) = &self.pool.breaker {
            b.record(self.admission, success, now);
        }
        self.admission = Admission::Rejected;
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.target.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(b) = &self.pool.breaker {
            b.release(self.admission);
        }
    }
}

#[cfg(test)]
mod tests;
