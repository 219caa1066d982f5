//! Tracing: a server span per request, a client span per upstream attempt, exported over
//! OTLP/HTTP (protobuf) in batches from a bounded queue.
//!
//! | file | job |
//! |---|---|
//! | [`span`] | the span model: integer ids, Unix-nanosecond times, static attribute keys |
//! | [`context`] | W3C `traceparent`/`tracestate` as integers; the parent-based [`Sampler`] |
//! | [`request`] | [`RequestSpan`]: the request's spans, built phase by phase |
//! | [`encode`] | `ExportTraceServiceRequest` in protobuf, by hand |
//! | [`export`] | [`Exporter`]: the bounded queue and the batching thread |
//! | [`http`] | the exporter's HTTP/1.1 client (plain `http://`) |
//! | [`metrics`] | [`TracingMetrics`]: exported, dropped and failed counts on `/metrics` |
//!
//! # Where each call belongs
//!
//! One [`Tracer`] per `tracing:` section, in the `Runtime` (`state.rs`), which reuses the
//! previous one while the settings are equal ([`Tracer::for_config`]), so a reload that leaves
//! `tracing:` alone keeps the exporter and its queue, and a request keeps the tracer of the
//! config it arrived on. One [`RequestSpan`] per request, in the CTX (`ctx.request.span`; it
//! carries the trace context upstream when tracing is off too). In Pingora's phases:
//!
//! 1. `early_request_filter`, once the request id is known: `RequestSpan::start(tracer,
//!    session.req_header(), &Incoming { listener, client, tls, request_id })`.
//! 2. `request_filter`, step 1 once a route matched: `span.set_route(&route.name)`; after the
//!    filters, `set_attribute("portico.consumer", ...)` if a consumer was found.
//! 3. Wherever a `Reject` is answered (`respond::reject`, so filter refusals, 404/405, route and
//!    pool limits, circuit open): `span.refused(reject.status, reject.error)`.
//! 4. `upstream_peer`, step 4, once the target is chosen: `span.attempt(&pool.spec.name, addr,
//!    reason)` with `reason` `None` on the first attempt and the previous attempt's error kind
//!    (`connect_error`, `timeout`, `status`, ...) on a retry.
//! 5. `upstream_request_filter` (`forward::prepare_upstream_request`): send
//!    `span.traceparent()` as `traceparent`; it carries the current attempt's span id. The
//!    client's `tracestate` already travels with the other headers.
//! 6. `upstream_response_filter`: `span.attempt_status(status)` (also when that status is about
//!    to be retried).
//! 7. `fail_to_connect` and `error_while_proxy` (where `finish_attempt` is called today):
//!    `span.attempt_failed(kind)`; a status retry needs no call (step 6 recorded it).
//! 8. `logging`: `span.finish(status, error)` with the status written (0 if none) and
//!    `ctx.error`; the access log's `trace_id` is `span.trace_id_hex()`.
//!
//! A mirrored request (`mirror.rs`) may get its own client span the same way. On shutdown
//! (the draining service in `server.rs`), `tracer.flush(...)` sends what is still queued; a
//! replaced tracer sends its queue by itself once the last request holding it is done.

pub mod context;
pub mod encode;
pub mod export;
pub mod http;
pub mod metrics;
pub mod request;
pub mod span;
#[cfg(test)]
mod testing;

pub use context::Sampler;
pub use export::{ExportLimits, Exporter};
pub use metrics::TracingMetrics;
pub use request::{Incoming, RequestSpan};
pub use span::{Attribute, SpanData, SpanKind, StatusCode, Value};

use crate::config::tracing::TracingSettings;
use std::sync::Arc;
use std::time::Duration;

/// Records sampled requests and sends their spans to the collector of one `tracing:` section.
pub struct Tracer {
    sampler: Sampler,
    sink: Sink,
    settings: TracingSettings,
}

enum Sink {
    Export(Exporter),
    #[cfg(test)]
    Capture(std::sync::Mutex<Vec<SpanData>>),
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Tracer {
    /// Starts the exporter thread for `settings`; `metrics` are the process's tracing counters
    /// (registered once, shared by every tracer a reload makes).
    pub fn start(settings: &TracingSettings, metrics: TracingMetrics) -> std::io::Result<Arc<Tracer>> {
        let origin =
            encode::Origin { service_name: settings.service_name.to_string(), version: env!("CARGO_PKG_VERSION") };
        let exporter = Exporter::start(settings.endpoint.clone(), origin, metrics, ExportLimits::default())?;
        Ok(Arc::new(Tracer {
            sampler: Sampler::new(settings.sample_ratio),
            sink: Sink::Export(exporter),
            settings: settings.clone(),
        }))
    }

    /// The tracer a (re)loaded config runs with: `previous` kept while its settings equal
    /// `settings` (its exporter, queue and connection carry on), a new one started when they
    /// differ (the old one sends its queue once the last request holding it is done), none
    /// without a `tracing:` section. An exporter thread that cannot start is logged, and the
    /// config runs untraced rather than not at all.
    pub fn for_config(
        settings: Option<&TracingSettings>,
        previous: Option<&Arc<Tracer>>,
        metrics: &TracingMetrics,
    ) -> Option<Arc<Tracer>> {
        let settings = settings?;
        if let Some(p) = previous.filter(|p| p.settings == *settings) {
            return Some(p.clone());
        }
        match Tracer::start(settings, metrics.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("tracing: cannot start the OTLP exporter ({e}); requests are not traced");
                None
            }
        }
    }

    /// The settings it was started with (a reload compares them to decide whether to keep it).
    pub fn settings(&self) -> &TracingSettings {
        &self.settings
    }

    /// Sends what is queued and waits up to `within` for it to go; `false` if time ran out.
    pub fn flush(&self, within: Duration) -> bool {
        match &self.sink {
            Sink::Export(e) => e.flush(within),
            #[cfg(test)]
            Sink::Capture(_) => true,
        }
    }

    fn submit(&self, spans: Vec<SpanData>) {
        match &self.sink {
            Sink::Export(e) => e.submit(spans),
            #[cfg(test)]
            Sink::Capture(c) => c.lock().expect("no test panics while holding the capture").extend(spans),
        }
    }

    /// A tracer that keeps spans in memory, for unit tests of the request side.
    #[cfg(test)]
    pub(crate) fn capturing(sample_ratio: f64) -> Arc<Tracer> {
        let settings = TracingSettings {
            endpoint: crate::config::tracing::OtlpEndpoint::parse("http://127.0.0.1:4318").expect("valid"),
            sample_ratio,
            service_name: "test".into(),
        };
        let sink = Sink::Capture(Default::default());
        Arc::new(Tracer { sampler: Sampler::new(sample_ratio), sink, settings })
    }

    /// The spans captured so far (tests only).
    #[cfg(test)]
    pub(crate) fn captured(&self) -> Vec<SpanData> {
        match &self.sink {
            Sink::Capture(c) => std::mem::take(&mut *c.lock().expect("no test panics while holding the capture")),
            Sink::Export(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
