//! The spans of one request: a server span for the request and a client span per upstream
//! attempt, as [`RequestSpan`] (see the module doc of [`super`] for which phase calls what).
//!
//! Attribute names are OpenTelemetry's HTTP semantic conventions (stable since 1.23); what they
//! have no name for is under `portico.`. `url.query` is left off on purpose: a query may carry
//! a credential (`api_key: {query: ...}`), and spans leave the process.

mod part;
pub use part::PartSpan;

use super::context::{self, Parent, SAMPLED};
use super::span::{Attribute, Event, SpanData, SpanKind, StatusCode, Value};
use super::Tracer;
use http::{HeaderValue, Method, Version};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the request span needs to know about where a request came in.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The listener's name (`portico.listener`), shared with the config.
    pub listener: &'a Arc<str>,
    /// The client's address (`client.address`).
    pub client: Option<IpAddr>,
    /// Whether the request came over TLS (`url.scheme`).
    pub tls: bool,
    /// The request id (`portico.request_id`), so a span and an access-log line can be joined.
    pub request_id: &'a str,
}

/// How an upstream attempt ended, for [`RequestSpan::attempt_failed`].
pub type ErrorType = &'static str;

/// The trace context and, when sampled, the spans of one request.
///
/// Always present (it carries the `traceparent` sent upstream); records spans only when the
/// tracer's sampler says so. Unrecorded, it is a few integers and allocates nothing. A recorded
/// request's spans go to the exporter in [`RequestSpan::finish`], or when it is dropped.
#[derive(Debug)]
pub struct RequestSpan {
    trace_id: u128,
    span_id: u64,
    attempt_id: u64,
    flags: u8,
    trace_hex: [u8; 32],
    recording: Option<Box<Recording>>,
}

#[derive(Debug)]
struct Recording {
    tracer: Arc<Tracer>,
    base_unix_nano: u64,
    base: Instant,
    method: &'static str,
    server: SpanData,
    attempt: Option<SpanData>,
    attempts: i64,
    finished: Vec<SpanData>,
}

impl Recording {
    fn now(&self) -> u64 {
        self.base_unix_nano.saturating_add(self.base.elapsed().as_nanos() as u64)
    }

    fn end_attempt(&mut self) {
        if let Some(mut a) = self.attempt.take() {
            a.end_unix_nano = self.now();
            self.finished.push(a);
        }
    }
}

impl RequestSpan {
    /// Continues the trace of `req`'s `traceparent` (when valid) or starts one, with a new span
    /// id; records it when `tracer` is set and samples it. Without a tracer the flags are passed
    /// on as they came (a new trace is marked sampled, as before tracing existed).
    pub fn start(tracer: Option<&Arc<Tracer>>, req: &http::request::Parts, incoming: &Incoming<'_>) -> Self {
        let parent = req.headers.get("traceparent").and_then(|v| Parent::parse(v.as_bytes()));
        let trace_id = parent.map_or_else(|| fastrand::u128(1..), |p| p.trace_id);
        let record = tracer.filter(|t| t.sampler.decide(parent.as_ref(), trace_id));
        let flags = match (parent, tracer) {
            (Some(p), _) => p.flags,
            (None, Some(_)) => record.map_or(0, |_| SAMPLED),
            (None, None) => SAMPLED,
        };
        let mut trace_hex = [0u8; 32];
        context::write_hex(&mut trace_hex, trace_id);
        let mut span = RequestSpan { trace_id, span_id: new_id(), attempt_id: 0, flags, trace_hex, recording: None };
        if let Some(tracer) = record {
            span.recording = Some(Box::new(span.record(tracer.clone(), parent.as_ref(), req, incoming)));
        }
        span
    }

    fn record(
        &self,
        tracer: Arc<Tracer>,
        parent: Option<&Parent>,
        req: &http::request::Parts,
        i: &Incoming,
    ) -> Recording {
        let base_unix_nano = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let method = method_name(&req.method);
        let mut s = SpanData::new(self.trace_id, self.span_id, span_name(method), SpanKind::Server, base_unix_nano);
        if let Some(p) = parent {
            s.parent_span_id = p.span_id;
            s.parent_is_remote = true;
            s.trace_state = context::trace_state(req.headers.get("tracestate").map(|v| v.as_bytes()));
        }
        s.attributes.reserve(12);
        s.set("http.request.method", method);
        if method == "_OTHER" {
            s.set("http.request.method_original", req.method.as_str().to_string());
        }
        s.set("url.scheme", if i.tls { "https" } else { "http" });
        s.set("url.path", req.uri.path().to_string());
        let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.host());
        if let Some((host, port)) = host.map(split_host_port) {
            s.set("server.address", host.to_string());
            s.set("server.port", i64::from(port.unwrap_or(if i.tls { 443 } else { 80 })));
        }
        if let Some(ip) = i.client {
            s.set("client.address", ip.to_string());
        }
        s.set("network.protocol.version", protocol_version(req.version));
        if let Some(ua) = req.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()) {
            s.set("user_agent.original", ua.to_string());
        }
        s.set("portico.listener", Value::Shared(i.listener.clone()));
        s.set("portico.request_id", i.request_id.to_string());
        Recording {
            tracer,
            base_unix_nano,
            base: Instant::now(),
            method,
            server: s,
            attempt: None,
            attempts: 0,
            finished: Vec::new(),
        }
    }

    /// Whether this request's spans are recorded (sampled, with a tracer).
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// The trace id.
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The trace id as 32 lower-case hex digits (the access log's `trace_id`).
    pub fn trace_id_hex(&self) -> &str {
        std::str::from_utf8(&self.trace_hex).expect("hex digits are ASCII")
    }

    /// The server span's id.
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// The `traceparent` for the upstream request: this trace, the current attempt's span id
    /// (the server span's before the first attempt), and the sampling decision.
    pub fn traceparent(&self) -> HeaderValue {
        let span = if self.attempt_id != 0 { self.attempt_id } else { self.span_id };
        context::traceparent(self.trace_id, span, self.flags)
    }

    /// Names the matched route: `http.route`, and the span's name becomes `METHOD route`.
    pub fn set_route(&mut self, route: &Arc<str>) {
        if let Some(r) = &mut self.recording {
            r.server.name = format!("{} {route}", span_name(r.method)).into();
            r.server.set("http.route", Value::Shared(route.clone()));
        }
    }

    /// Sets an attribute of the server span (a consumer, an identity), when recording.
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(r) = &mut self.recording {
            r.server.set(key, value);
        }
    }

    /// Adds an event to the server span; `attributes` runs only when recording.
    pub fn event(&mut self, name: &'static str, attributes: impl FnOnce() -> Vec<Attribute>) {
        if let Some(r) = &mut self.recording {
            let time_unix_nano = r.now();
            r.server.events.push(Event { time_unix_nano, name, attributes: attributes() });
        }
    }

    /// Records a refusal (a filter's, or Portico's own: 404, 503 circuit open) as the event
    /// `portico.refused` with its status and error code.
    pub fn refused(&mut self, status: u16, error: &'static str) {
        self.event("portico.refused", || {
            vec![("http.response.status_code", Value::Int(i64::from(status))), ("error.type", Value::Static(error))]
        });
    }

    /// Starts the client span of an upstream attempt to `target` of pool `upstream` (ending the
    /// previous attempt's span if still open); `retry_reason` says why an attempt after the
    /// first is made (`connect_error`, `timeout`, `status`, ...). The `traceparent` from now on
    /// carries this attempt's span id.
    pub fn attempt(&mut self, upstream: &Arc<str>, target: SocketAddr, retry_reason: Option<&'static str>) {
        self.attempt_id = new_id();
        let Some(r) = &mut self.recording else { return };
        r.end_attempt();
        r.attempts += 1;
        let mut a = SpanData::new(self.trace_id, self.attempt_id, span_name(r.method), SpanKind::Client, r.now());
        a.parent_span_id = self.span_id;
        a.trace_state = r.server.trace_state.clone();
        a.attributes.reserve(9);
        a.set("http.request.method", r.method);
        a.set("server.address", target.ip().to_string());
        a.set("server.port", i64::from(target.port()));
        a.set("network.peer.address", target.ip().to_string());
        a.set("portico.upstream", Value::Shared(upstream.clone()));
        a.set("portico.attempt", r.attempts);
        if r.attempts > 1 {
            a.set("http.request.resend_count", r.attempts - 1);
        }
        if let Some(reason) = retry_reason {
            a.set("portico.retry_reason", reason);
        }
        r.attempt = Some(a);
    }

    /// The current attempt's upstream answered with `status` (its span ends at the next attempt
    /// or when the request finishes, so it covers the response body too).
    pub fn attempt_status(&mut self, status: u16) {
        let Some(a) = self.recording.as_mut().and_then(|r| r.attempt.as_mut()) else { return };
        a.set("http.response.status_code", i64::from(status));
        if status >= 400 {
            a.status = StatusCode::Error;
            a.set("error.type", status.to_string());
        }
    }

    /// The current attempt failed without a usable answer (`connect_error`, `timeout`, ...);
    /// its span ends now.
    pub fn attempt_failed(&mut self, error: ErrorType) {
        let Some(r) = &mut self.recording else { return };
        if let Some(a) = &mut r.attempt {
            a.status = StatusCode::Error;
            a.set("error.type", error);
        }
        r.end_attempt();
    }

    /// Ends the request with the status sent to the client (0 when none was) and, when it failed
    /// inside Portico, the error kind; hands every span of the request to the exporter.
    pub fn finish(&mut self, status: u16, error: Option<&'static str>) {
        let Some(mut r) = self.recording.take() else { return };
        r.end_attempt();
        let s = &mut r.server;
        if status > 0 {
            s.set("http.response.status_code", i64::from(status));
        }
        match error {
            Some(e) => s.set("error.type", e),
            None if status >= 500 => s.set("error.type", status.to_string()),
            None => {}
        }
        if error.is_some() || status >= 500 {
            s.status = StatusCode::Error;
        }
        submit(*r);
    }
}

fn submit(mut r: Recording) {
    r.server.end_unix_nano = r.now();
    let mut spans = std::mem::take(&mut r.finished);
    spans.push(r.server);
    r.tracer.submit(spans);
}

impl Drop for RequestSpan {
    /// A request that never reached [`RequestSpan::finish`] still exports what it recorded.
    fn drop(&mut self) {
        if let Some(mut r) = self.recording.take() {
            r.end_attempt();
            submit(*r);
        }
    }
}

/// A random non-zero span id.
fn new_id() -> u64 {
    fastrand::u64(1..)
}

/// `http.request.method`: the method if it is one of the nine the conventions know, else `_OTHER`.
fn method_name(m: &Method) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
    KNOWN.iter().find(|k| **k == m.as_str()).copied().unwrap_or("_OTHER")
}

/// A span's name before the route is known: the method, or `HTTP` for an unknown one.
fn span_name(method: &'static str) -> &'static str {
    if method == "_OTHER" {
        "HTTP"
    } else {
        method
    }
}

fn protocol_version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `host[:port]` or `[v6][:port]` split; a port that does not parse is left off.
fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests;
