//! Client spans of concurrent sub-requests: an aggregate route's parts run at once, so they do
//! not fit the one-attempt-at-a-time spans of [`RequestSpan::attempt`]. Each part gets its span
//! id before it is sent (the `traceparent` it carries names it) and its span is recorded, with
//! the times it ran, once it is done.

use super::super::context;
use super::super::span::{SpanData, SpanKind, StatusCode, Value};
use super::{new_id, RequestSpan};
use http::HeaderValue;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How one part went, for [`RequestSpan::part`].
pub struct PartSpan<'a> {
    /// The id from [`RequestSpan::part_context`].
    pub span_id: u64,
    /// The part's name (`portico.part`).
    pub name: &'a str,
    /// Its method.
    pub method: &'a str,
    /// Its pool (`portico.upstream`).
    pub upstream: &'a Arc<str>,
    /// The target it went to, when one was picked.
    pub target: Option<SocketAddr>,
    /// When it started.
    pub started: Instant,
    /// How long it took.
    pub elapsed: Duration,
    /// The status it answered, when it answered.
    pub status: Option<u16>,
    /// Why it failed (`timeout`, `connect_error`, ...), when it did.
    pub error: Option<&'static str>,
}

impl RequestSpan {
    /// A new client span id for a concurrent sub-request, and the `traceparent` carrying it.
    pub fn part_context(&self) -> (u64, HeaderValue) {
        let id = new_id();
        (id, context::traceparent(self.trace_id, id, self.flags))
    }

    /// Records the finished client span of a part, when this request is recorded.
    pub fn part(&mut self, p: PartSpan<'_>) {
        let Some(r) = &mut self.recording else { return };
        let start = r.base_unix_nano.saturating_add(p.started.saturating_duration_since(r.base).as_nanos() as u64);
        let mut s = SpanData::new(self.trace_id, p.span_id, p.method.to_string(), SpanKind::Client, start);
        s.end_unix_nano = start.saturating_add(p.elapsed.as_nanos() as u64);
        s.parent_span_id = self.span_id;
        s.trace_state = r.server.trace_state.clone();
        s.set("http.request.method", p.method.to_string());
        s.set("portico.upstream", Value::Shared(p.upstream.clone()));
        s.set("portico.part", p.name.to_string());
        if let Some(t) = p.target {
            s.set("server.address", t.ip().to_string());
            s.set("server.port", i64::from(t.port()));
        }
        if let Some(status) = p.status {
            s.set("http.response.status_code", i64::from(status));
        }
        if let Some(e) = p.error {
            s.status = StatusCode::Error;
            s.set("error.type", e);
        }
        r.finished.push(s);
    }
}
