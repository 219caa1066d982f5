//! The exporter's own counters, on `/metrics` beside every other Portico metric.
//!
//! Spans are dropped rather than ever delaying a request, so what was dropped, and why, must be
//! visible: a full queue means the collector (or the network to it) is slower than the traffic;
//! failed exports mean it is unreachable or refusing.

use crate::telemetry::Metrics;
use prometheus::{IntCounter, IntCounterVec, Opts};

/// Counters of the OTLP exporter. Created and registered once per process (a reload that starts
/// a new exporter reuses them); clones share the same counters.
#[derive(Clone)]
pub struct TracingMetrics {
    /// Spans the collector accepted.
    pub exported: IntCounter,
    /// Spans dropped because the queue was full.
    pub dropped_queue_full: IntCounter,
    /// Spans dropped because their batch could not be delivered.
    pub dropped_export_failed: IntCounter,
    /// Batches that could not be delivered.
    pub failed_batches: IntCounter,
}

impl TracingMetrics {
    /// Creates the counters and registers them with `metrics`' registry.
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let exported =
            IntCounter::new("portico_tracing_spans_exported_total", "Spans delivered to the OTLP collector")?;
        let dropped = IntCounterVec::new(
            Opts::new("portico_tracing_spans_dropped_total", "Spans dropped instead of delaying requests, by reason"),
            &["reason"],
        )?;
        let failed_batches = IntCounter::new(
            "portico_tracing_export_failures_total",
            "Span batches the OTLP collector did not accept (unreachable, timed out or refused)",
        )?;
        metrics.register(Box::new(exported.clone()))?;
        metrics.register(Box::new(dropped.clone()))?;
        metrics.register(Box::new(failed_batches.clone()))?;
        Ok(TracingMetrics {
            exported,
            dropped_queue_full: dropped.with_label_values(&["queue_full"]),
            dropped_export_failed: dropped.with_label_values(&["export_failed"]),
            failed_batches,
        })
    }

    /// Counters registered nowhere, for tests and tools that need no `/metrics`.
    pub fn unregistered() -> Self {
        let counter = |name: &str| IntCounter::new(name, "unregistered").expect("a constant metric name is valid");
        TracingMetrics {
            exported: counter("exported"),
            dropped_queue_full: counter("dropped_queue_full"),
            dropped_export_failed: counter("dropped_export_failed"),
            failed_batches: counter("failed_batches"),
        }
    }
}
