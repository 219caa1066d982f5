//! Counters the built-in filters export on the admin API's `/metrics`.
//!
//! Filters are built without a handle on the core's metrics registry, and rebuilt on every
//! reload, so their counters are process-wide (a count carries across reloads, as a route's
//! request count does) and the core adds them to its registry once, from [`collectors`].

use prometheus::core::Collector;
use prometheus::{IntCounterVec, Opts};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

/// `portico_filter_json_bodies_total{filter, route, direction, outcome}`.
static JSON_BODIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "portico_filter_json_bodies_total",
            "Bodies read by json_transform and json_schema, by outcome (transformed, valid, invalid, \
             invalid_json, not_json, too_large, encoded)",
        ),
        &["filter", "route", "direction", "outcome"],
    )
    .expect("a valid metric name and labels, fixed in the program")
});

/// The (filter, route, direction, outcome) whose pass-through was logged already.
static LOGGED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// Every filter counter, for the core to register with its registry (once per registry).
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![Box::new(JSON_BODIES.clone())]
}

/// Which body a count is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Request,
    Response,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// Counts one body a JSON filter read.
pub(crate) fn json_body(filter: &str, route: &str, direction: Direction, outcome: &str) {
    JSON_BODIES.with_label_values(&[filter, route, direction.as_str(), outcome]).inc();
}

/// Counts a body a JSON filter let through untouched, and says so in the log the first time for
/// this filter, route, direction and reason (the count says how often since).
pub(crate) fn json_passthrough(filter: &str, route: &str, direction: Direction, outcome: &str, why: &str) {
    let counter = JSON_BODIES.with_label_values(&[filter, route, direction.as_str(), outcome]);
    // Only the first few bodies take the lock; the set decides which one logs.
    if counter.get() == 0 {
        let key = format!("{filter}\0{route}\0{}\0{outcome}", direction.as_str());
        if LOGGED.lock().unwrap_or_else(PoisonError::into_inner).insert(key) {
            log::warn!(
                "{filter} on route {route}: a {} body {why}; passed through untouched (counted in \
                 portico_filter_json_bodies_total{{outcome=\"{outcome}\"}}, logged once)",
                direction.as_str()
            );
        }
    }
    counter.inc();
}
