//! Prometheus metrics: one registry per process, rendered by the admin API's `/metrics`.
//!
//! The request counters are resolved per route and per (method, status class) once, so the
//! request path increments a counter without a label lookup.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// Every metric Portico exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    target_health: IntGaugeVec,
    upstream_errors: IntCounterVec,
    in_flight: IntGauge,
    reloads: IntCounterVec,
    retries: IntCounterVec,
    ejections: IntCounterVec,
    ejected: IntGaugeVec,
    breaker_state: IntGaugeVec,
    connections_open: IntGaugeVec,
    connections_refused: IntCounterVec,
    grpc_requests: IntCounterVec,
    stream_waits: IntCounterVec,
}

const METHODS: [&str; 10] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(m: &http::Method) -> usize {
    METHODS[..9].iter().position(|x| *x == m.as_str()).unwrap_or(9)
}

/// A route's metric handles, resolved once per config so the hot path does no label lookups.
pub struct RouteMetrics {
    duration: Histogram,
    counters: [[OnceLock<IntCounter>; 5]; 10],
    requests: IntCounterVec,
    route: String,
}

impl RouteMetrics {
    /// Counts one finished request and its duration.
    pub fn observe(&self, method: &http::Method, status: u16, seconds: f64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        let mi = method_index(method);
        self.counters[mi][class]
            .get_or_init(|| self.requests.with_label_values(&[self.route.as_str(), METHODS[mi], CLASSES[class]]))
            .inc();
        self.duration.observe(seconds);
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("portico_requests_total", "Requests served, by route, method and status class"),
            &["route", "method", "status_class"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("portico_request_duration_seconds", "Time from request to last response byte")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["route"],
        )?;
        let target_health = IntGaugeVec::new(
            Opts::new("portico_upstream_target_healthy", "1 when the target passes its health checks"),
            &["upstream", "target"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new("portico_upstream_errors_total", "Failed upstream exchanges, by kind"),
            &["upstream", "kind"],
        )?;
        let in_flight = IntGauge::new("portico_requests_in_flight", "Requests being served now")?;
        let reloads =
            IntCounterVec::new(Opts::new("portico_config_reloads_total", "Config reloads, by result"), &["result"])?;
        let retries = IntCounterVec::new(
            Opts::new("portico_retries_total", "Retries, by route and whether the retry budget allowed them"),
            &["route", "outcome"],
        )?;
        let ejections = IntCounterVec::new(
            Opts::new("portico_outlier_ejections_total", "Targets ejected by outlier detection"),
            &["upstream", "target"],
        )?;
        let ejected = IntGaugeVec::new(
            Opts::new("portico_upstream_target_ejected", "1 while outlier detection keeps the target out"),
            &["upstream", "target"],
        )?;
        let breaker_state = IntGaugeVec::new(
            Opts::new("portico_circuit_breaker_state", "0 closed, 1 open, 2 half-open"),
            &["upstream"],
        )?;
        let connections_open = IntGaugeVec::new(
            Opts::new("portico_connections_open", "Open client connections, by listener"),
            &["listener"],
        )?;
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "portico_connections_refused_total",
                "Client connections closed on arrival, by listener and limit",
            ),
            &["listener", "reason"],
        )?;
        let grpc_requests = IntCounterVec::new(
            Opts::new(
                "portico_grpc_requests_total",
                "gRPC calls, by route and the grpc-status the client got (none: no status reached it)",
            ),
            &["route", "grpc_status"],
        )?;
        let stream_waits = IntCounterVec::new(
            Opts::new(
                "portico_upstream_stream_waits_total",
                "Calls to an HTTP/2 upstream that waited for another call to get its stream first, \
                 by upstream and whether the turn came (turn) or the wait ran out (timed_out)",
            ),
            &["upstream", "outcome"],
        )?;
        registry.register(Box::new(stream_waits.clone()))?;
        registry.register(Box::new(grpc_requests.clone()))?;
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(ejections.clone()))?;
        registry.register(Box::new(ejected.clone()))?;
        registry.register(Box::new(breaker_state.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(target_health.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        // The built-in filters' own counters (process-wide: filters have no registry handle).
        for collector in portico_filters::metrics::collectors() {
            registry.register(collector)?;
        }
        Ok(Metrics {
            registry,
            requests,
            duration,
            target_health,
            upstream_errors,
            in_flight,
            reloads,
            retries,
            ejections,
            ejected,
            breaker_state,
            connections_open,
            connections_refused,
            grpc_requests,
            stream_waits,
        })
    }

    /// Handles for one route.
    pub fn route(&self, route: &str) -> RouteMetrics {
        RouteMetrics {
            duration: self.duration.with_label_values(&[route]),
            counters: Default::default(),
            requests: self.requests.clone(),
            route: route.to_string(),
        }
    }

    /// The in-flight gauge.
    pub fn in_flight(&self) -> &IntGauge {
        &self.in_flight
    }

    /// The open-connections gauge of a listener, resolved once when the listener starts.
    pub fn connections_open(&self, listener: &str) -> IntGauge {
        self.connections_open.with_label_values(&[listener])
    }

    /// The refused-connections counter of a listener for one reason (`max_connections`,
    /// `max_connections_per_ip`), resolved once when the listener starts.
    pub fn connections_refused(&self, listener: &str, reason: &str) -> IntCounter {
        self.connections_refused.with_label_values(&[listener, reason])
    }

    /// Records a target's health after a check pass.
    pub fn set_target_health(&self, upstream: &str, target: SocketAddr, healthy: bool) {
        self.target_health.with_label_values(&[upstream, &target.to_string()]).set(i64::from(healthy));
    }

    /// Counts a failed upstream exchange (`connect`, `timeout`, `other`).
    pub fn upstream_error(&self, upstream: &str, kind: &str) {
        self.upstream_errors.with_label_values(&[upstream, kind]).inc();
    }

    /// Counts a finished gRPC call by its `grpc-status` (decimal), `None` when none reached the
    /// client (the stream broke off).
    pub fn grpc_request(&self, route: &str, grpc_status: Option<&str>) {
        self.grpc_requests.with_label_values(&[route, grpc_status.unwrap_or("none")]).inc();
    }

    /// Counts a call that waited for its turn to get an HTTP/2 stream (`proxy/multiplex.rs`).
    pub fn stream_wait(&self, upstream: &str, turn_came: bool) {
        self.stream_waits.with_label_values(&[upstream, if turn_came { "turn" } else { "timed_out" }]).inc();
    }

    /// Counts a retry (`allowed`) or one the budget refused.
    pub fn retry(&self, route: &str, allowed: bool) {
        self.retries.with_label_values(&[route, if allowed { "retried" } else { "budget_exhausted" }]).inc();
    }

    /// Counts an outlier ejection and marks the target out.
    pub fn outlier_ejection(&self, upstream: &str, target: SocketAddr) {
        let target = target.to_string();
        self.ejections.with_label_values(&[upstream, &target]).inc();
        self.ejected.with_label_values(&[upstream, &target]).set(1);
    }

    /// Records whether a target is ejected now.
    pub fn set_target_ejected(&self, upstream: &str, target: SocketAddr, ejected: bool) {
        self.ejected.with_label_values(&[upstream, &target.to_string()]).set(i64::from(ejected));
    }

    /// Removes every per-target series of a target that discovery no longer finds, so the
    /// label set does not grow with every address a name ever resolved to.
    pub fn remove_target(&self, upstream: &str, target: SocketAddr) {
        let target = target.to_string();
        let labels = [upstream, target.as_str()];
        // An error only says the series was never created.
        let _ = self.target_health.remove_label_values(&labels);
        let _ = self.ejected.remove_label_values(&labels);
        let _ = self.ejections.remove_label_values(&labels);
    }

    /// Records a breaker's state (0 closed, 1 open, 2 half-open).
    pub fn set_breaker_state(&self, upstream: &str, state: u8) {
        self.breaker_state.with_label_values(&[upstream]).set(i64::from(state));
    }

    /// Counts a reload attempt.
    pub fn reload(&self, ok: bool) {
        self.reloads.with_label_values(&[if ok { "success" } else { "failure" }]).inc();
    }

    /// Adds a metric made elsewhere (the OTLP exporter's counters, the access log's drop counter) to what `/metrics` shows.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// Every metric's current values, for the admin API's `/stats` (JSON the dashboard reads,
    /// computed from the same series `/metrics` exports).
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::error!("encoding metrics: {e}");
        }
        out
    }
}
