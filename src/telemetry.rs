//! Prometheus metrics, the JSON access log, request ids and W3C trace context.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

// === impl Metrics ===

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

    /// Records a target's health after a check pass.
    pub fn set_target_health(&self, upstream: &str, target: SocketAddr, healthy: bool) {
        self.target_health.with_label_values(&[upstream, &target.to_string()]).set(i64::from(healthy));
    }

    /// Counts a failed upstream exchange (`connect`, `timeout`, `other`).
    pub fn upstream_error(&self, upstream: &str, kind: &str) {
        self.upstream_errors.with_label_values(&[upstream, kind]).inc();
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

    /// Records a breaker's state (0 closed, 1 open, 2 half-open).
    pub fn set_breaker_state(&self, upstream: &str, state: u8) {
        self.breaker_state.with_label_values(&[upstream]).set(i64::from(state));
    }

    /// Counts a reload attempt.
    pub fn reload(&self, ok: bool) {
        self.reloads.with_label_values(&[if ok { "success" } else { "failure" }]).inc();
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

// === impl AccessLog ===

/// One access-log line; serialized as a JSON object.
#[derive(Serialize)]
pub struct AccessLine<'a> {
    /// RFC 3339 UTC time the request finished.
    pub time: &'a str,
    /// The request id.
    pub request_id: &'a str,
    /// W3C trace id.
    pub trace_id: &'a str,
    /// Client address.
    pub client: &'a str,
    /// Listener name.
    pub listener: &'a str,
    /// Method.
    pub method: &'a str,
    /// Host.
    pub host: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// Matched route, or empty.
    pub route: &'a str,
    /// Consumer or mTLS identity, when authenticated.
    pub consumer: Option<&'a str>,
    /// Upstream pool name, when proxied.
    pub upstream: Option<&'a str>,
    /// Upstream target address, when proxied.
    pub upstream_target: Option<&'a str>,
    /// Response status.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: usize,
    /// Total duration in milliseconds.
    pub duration_ms: f64,
    /// Time spent waiting on the upstream, in milliseconds.
    pub upstream_duration_ms: Option<f64>,
    /// Error kind, when the request failed inside Portico.
    pub error: Option<&'a str>,
}

/// Writes access-log lines from a dedicated thread, so request threads never block on I/O or
/// share a lock: they hand a finished line to a bounded channel, and drop it if the writer is
/// far behind.
pub struct AccessLog {
    tx: Option<SyncSender<Vec<u8>>>,
    pending: Arc<AtomicUsize>,
}

impl AccessLog {
    /// A log writing to `sink`, or none.
    pub fn new(sink: Option<Box<dyn Write + Send>>) -> Self {
        let pending = Arc::new(AtomicUsize::new(0));
        let Some(mut sink) = sink else {
            return AccessLog { tx: None, pending };
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(65_536);
        let written = pending.clone();
        let spawned = std::thread::Builder::new().name("access-log".into()).spawn(move || {
            let mut buf = Vec::with_capacity(256 * 1024);
            while let Ok(line) = rx.recv() {
                // Wake at most every few milliseconds: while this thread sleeps instead of
                // waiting on the channel, senders hand over lines without a wake-up syscall.
                std::thread::sleep(std::time::Duration::from_millis(5));
                buf.extend_from_slice(&line);
                let mut lines = 1;
                while let Ok(more) = rx.try_recv() {
                    buf.extend_from_slice(&more);
                    lines += 1;
                    if buf.len() > 256 * 1024 {
                        break;
                    }
                }
                if sink.write_all(&buf).and_then(|_| sink.flush()).is_err() {
                    // Nowhere to report it but stderr; keep serving.
                    eprintln!("portico: access log write failed");
                }
                buf.clear();
                written.fetch_sub(lines, Ordering::AcqRel);
            }
        });
        match spawned {
            Ok(_) => AccessLog { tx: Some(tx), pending },
            Err(e) => {
                log::error!("cannot start access log writer: {e}");
                AccessLog { tx: None, pending }
            }
        }
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Waits (up to `within`) until every queued line is written.
    pub fn flush(&self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.pending.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Queues one line; dropped (not blocking the request) when the writer is far behind.
    pub fn write(&self, line: &AccessLine<'_>) {
        let Some(tx) = &self.tx else { return };
        let mut out = Vec::with_capacity(1024);
        if serde_json::to_writer(&mut out, line).is_ok() {
            out.push(b'\n');
            self.pending.fetch_add(1, Ordering::AcqRel);
            if tx.try_send(out).is_err() {
                self.pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

// === request id and trace context ===

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, mut v: u128, digits: usize) {
    let mut buf = [0u8; 32];
    for i in (0..digits).rev() {
        buf[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
    out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or(""));
}

/// A new random request id (UUID v4 text form).
pub fn new_request_id() -> String {
    let v = (fastrand::u128(..) & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut s = String::with_capacity(36);
    push_hex(&mut s, v >> 96, 8);
    s.push('-');
    push_hex(&mut s, (v >> 80) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, (v >> 64) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, (v >> 48) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, v & 0xffff_ffff_ffff, 12);
    s
}

/// Whether a client-sent request id is safe to keep and log.
pub fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 128 && v.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// The W3C trace context of one request as sent upstream: the `traceparent` header value,
/// built once (one allocation) and cloned cheaply into the upstream request.
#[derive(Debug, Clone, Default)]
pub struct TraceContext {
    traceparent: Option<http::HeaderValue>,
}

impl TraceContext {
    /// Continues the trace in `incoming` (a `traceparent` value) when it is valid, or starts one.
    pub fn continue_or_start(incoming: Option<&[u8]>) -> Self {
        let mut buf = [0u8; 55];
        buf[..3].copy_from_slice(b"00-");
        match incoming.and_then(parse_traceparent) {
            Some((trace, flags)) => {
                buf[3..35].copy_from_slice(trace.as_bytes());
                buf[53..55].copy_from_slice(flags.as_bytes());
            }
            None => {
                write_hex(&mut buf[3..35], fastrand::u128(1..));
                buf[53..55].copy_from_slice(b"01");
            }
        }
        buf[35] = b'-';
        write_hex(&mut buf[36..52], u128::from(fastrand::u64(1..)));
        buf[52] = b'-';
        TraceContext { traceparent: http::HeaderValue::from_bytes(&buf).ok() }
    }

    /// The 32-hex-digit trace id, or "" before the request started.
    pub fn trace_id(&self) -> &str {
        self.traceparent.as_ref().and_then(|v| v.to_str().ok()).and_then(|s| s.get(3..35)).unwrap_or("")
    }

    /// The `traceparent` to send upstream.
    pub fn traceparent(&self) -> Option<&http::HeaderValue> {
        self.traceparent.as_ref()
    }
}

/// Fills `out` with the low hex digits of `v`.
fn write_hex(out: &mut [u8], mut v: u128) {
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// `(trace id, flags)` of a valid version-00 `traceparent`.
fn parse_traceparent(v: &[u8]) -> Option<(&str, &str)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let mut parts = s.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        && (version != "00" || parts.next().is_none());
    ok.then_some((trace, flags))
}

/// Now as RFC 3339 UTC with milliseconds, without a date crate.
///
/// Every access-log line needs one: the date and time of day are formatted once a second per
/// thread, and only the milliseconds per call.
pub fn now_rfc3339() -> String {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, format_second(secs));
        }
        let mut out = String::with_capacity(24);
        out.push_str(&cached.1);
        out.push('.');
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            out.push(char::from(b'0' + digit as u8));
        }
        out.push('Z');
        out
    })
}

/// `YYYY-MM-DDTHH:MM:SS` for a Unix time.
fn format_second(secs: u64) -> String {
    let secs = secs as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A socket address as text, quickly for IPv4 (every access-log line has one or two; the
/// standard `Display` goes through the formatting machinery and padding support).
pub fn socket_addr_text(addr: &std::net::SocketAddr) -> String {
    let std::net::SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    let mut out = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_decimal(&mut out, u32::from(octet));
    }
    out.push(':');
    push_decimal(&mut out, u32::from(v4.port()));
    out
}

fn push_decimal(out: &mut String, v: u32) {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = v;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits[..n].iter().rev() {
        out.push(char::from(*d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_continued_with_a_new_span() {
        let incoming = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::continue_or_start(Some(incoming));
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let tp = t.traceparent().and_then(|v| v.to_str().ok()).expect("traceparent");
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!tp.contains("00f067aa0ba902b7"));
        assert!(tp.ends_with("-01"));
    }

    #[test]
    fn invalid_traceparent_starts_a_new_trace() {
        for bad in [&b"garbage"[..], b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            let t = TraceContext::continue_or_start(Some(bad));
            assert_eq!(t.trace_id().len(), 32);
            assert_ne!(t.trace_id(), "00000000000000000000000000000000");
            assert_eq!(t.traceparent().map(|v| v.len()), Some(55));
        }
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(valid_request_id(id.as_bytes()));
        assert!(!valid_request_id(b"has space"));
    }

    #[test]
    fn time_is_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24);
        assert!(t.starts_with("20") && t.ends_with('Z'));
        assert_eq!(format_second(0), "1970-01-01T00:00:00");
        assert_eq!(format_second(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_second(1_795_392_000 + 3_661), "2026-11-23T01:01:01");
    }

    #[test]
    fn socket_addresses_read_as_usual() {
        for a in ["127.0.0.1:8080", "0.0.0.0:0", "255.255.255.255:65535", "10.20.3.4:443", "[::1]:9"] {
            let addr: std::net::SocketAddr = a.parse().expect("address");
            assert_eq!(socket_addr_text(&addr), a);
        }
    }
}
