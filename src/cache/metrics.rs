//! The cache's series on `/metrics`: lookups by route and status, stored bytes and objects,
//! evictions, lock waits.

use super::status::CacheStatus;
use crate::telemetry::Metrics;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

/// The store's own gauges and counter (written by [`super::store::Store`]).
#[derive(Clone)]
pub struct StoreMetrics {
    /// `portico_cache_stored_bytes`.
    pub bytes: IntGauge,
    /// `portico_cache_objects`.
    pub objects: IntGauge,
    /// `portico_cache_evictions_total`.
    pub evictions: IntCounter,
}

impl StoreMetrics {
    /// Unregistered series (for a store in a test or a benchmark).
    pub fn unregistered() -> Self {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("static metric name and help are valid");
        StoreMetrics {
            bytes: gauge("portico_cache_stored_bytes", "Bytes the shared cache holds (bodies, headers, overhead)"),
            objects: gauge("portico_cache_objects", "Objects the shared cache holds"),
            evictions: IntCounter::new("portico_cache_evictions_total", "Objects evicted to keep under max_size_mb")
                .expect("static metric name and help are valid"),
        }
    }

    pub(super) fn added(&self, weight: usize) {
        self.bytes.add(weight as i64);
        self.objects.inc();
    }

    pub(super) fn removed(&self, weight: usize) {
        self.bytes.sub(weight as i64);
        self.objects.dec();
    }
}

/// Every cache series.
pub struct CacheMetrics {
    /// The store's.
    pub store: StoreMetrics,
    lookups: IntCounterVec,
    /// `portico_cache_lock_waits_total`: requests that waited for another request's fetch.
    pub lock_waits: IntCounter,
}

/// A route's lookup counters, one per status, resolved once per config.
pub struct RouteCacheMetrics([IntCounter; CacheStatus::ALL.len()]);

impl RouteCacheMetrics {
    /// Counts one response of the route.
    pub fn count(&self, status: CacheStatus) {
        self.0[status as usize].inc();
    }
}

impl CacheMetrics {
    /// The series, registered with `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        let store = StoreMetrics::unregistered();
        let lookups = IntCounterVec::new(
            Opts::new("portico_cache_lookups_total", "Responses of cached routes, by route and x-cache-status"),
            &["route", "status"],
        )
        .expect("static metric name, help and labels are valid");
        let lock_waits =
            IntCounter::new("portico_cache_lock_waits_total", "Requests that waited for another request's fetch")
                .expect("static metric name and help are valid");
        let all: [Box<dyn prometheus::core::Collector>; 5] = [
            Box::new(store.bytes.clone()),
            Box::new(store.objects.clone()),
            Box::new(store.evictions.clone()),
            Box::new(lookups.clone()),
            Box::new(lock_waits.clone()),
        ];
        for c in all {
            if let Err(e) = metrics.register(c) {
                log::error!("cannot register a cache metric: {e}");
            }
        }
        CacheMetrics { store, lookups, lock_waits }
    }

    /// The counters of route `route`.
    pub fn route(&self, route: &str) -> RouteCacheMetrics {
        RouteCacheMetrics(CacheStatus::ALL.map(|s| self.lookups.with_label_values(&[route, s.as_str()])))
    }
}
