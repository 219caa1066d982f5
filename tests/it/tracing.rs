//! Tracing's export, checked by an independent decoder: `otlp_collector.py` decodes every POST
//! with the reference `opentelemetry-proto` library and writes each span as a JSON line.
//!
//! These tests drive Portico's tracer directly (the request path is wired to it separately);
//! [`Collector`] is meant for the end-to-end stories too.

use portico::config::tracing::{OtlpEndpoint, TracingSettings};
use portico::telemetry::otlp::{Incoming, RequestSpan, Tracer, TracingMetrics};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The test collector, stopped when dropped.
pub struct Collector {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Collector {
    /// Starts `otlp_collector.py` on a port the OS picks and waits until it listens.
    pub fn start() -> Collector {
        let python = "/usr/bin/python3";
        let ok = Command::new(python).args(["-c", "import opentelemetry.proto"]).status().is_ok_and(|s| s.success());
        assert!(ok, "no {python} with opentelemetry-proto: run `bash .ci/install-test-deps`");
        let dir = tempfile::tempdir().expect("dir");
        let out = dir.path().join("spans.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/otlp_collector.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("collector starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("collector says where it listens");
        let port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).expect("listening PORT");
        Collector { child, port, out, _dir: dir }
    }

    /// The `otlp_endpoint` to configure.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span decoded so far, in arrival order.
    pub fn spans(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line per span")).collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tracer(endpoint: &str, sample_ratio: f64, metrics: TracingMetrics) -> Arc<Tracer> {
    let endpoint = OtlpEndpoint::parse(endpoint).expect("valid endpoint");
    let settings = TracingSettings { endpoint, sample_ratio, service_name: "it-tracing".into() };
    Tracer::start(&settings, metrics).expect("exporter starts")
}

fn request(traceparent: Option<&str>) -> http::request::Parts {
    let mut b = http::Request::builder().uri("/users/7").header("host", "api.example");
    if let Some(tp) = traceparent {
        b = b.header("traceparent", tp).header("tracestate", "rojo=00f067aa0ba902b7");
    }
    b.body(()).expect("request").into_parts().0
}

const INCOMING: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn incoming() -> Incoming<'static> {
    static WEB: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("web"));
    Incoming { listener: &WEB, client: Some([127, 0, 0, 1].into()), tls: false, request_id: "rid-1" }
}

fn by_name<'a>(spans: &'a [Value], trace: &str, kind: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["trace_id"] == trace && s["kind"] == kind).collect()
}

#[test]
fn the_reference_decoder_reads_every_field_of_a_request_and_its_retried_attempts() {
    let collector = Collector::start();
    let metrics = TracingMetrics::unregistered();
    let tracer = tracer(&collector.endpoint(), 1.0, metrics.clone());
    let route: Arc<str> = Arc::from("users");

    // A request that starts its trace, is retried once, and answers 200.
    let mut fresh = RequestSpan::start(Some(&tracer), &request(None), &incoming());
    fresh.set_route(&route);
    fresh.attempt(&route, "127.0.0.1:9001".parse().expect("addr"), None);
    let first_tp = fresh.traceparent();
    fresh.attempt_failed("connect_error");
    fresh.attempt(&route, "127.0.0.1:9002".parse().expect("addr"), Some("connect_error"));
    let second_tp = fresh.traceparent();
    fresh.attempt_status(200);
    fresh.finish(200, None);
    let fresh_trace = fresh.trace_id_hex().to_string();

    // A request from a sampled caller, refused by a filter.
    let mut continued = RequestSpan::start(Some(&tracer), &request(Some(INCOMING)), &incoming());
    continued.set_route(&route);
    continued.refused(401, "unauthorized");
    continued.finish(401, None);

    // A request from a caller that did not sample: nothing is exported.
    let unsampled = INCOMING.replace("-01", "-00").replace("0af7", "1af7");
    let mut skipped = RequestSpan::start(Some(&tracer), &request(Some(&unsampled)), &incoming());
    skipped.finish(200, None);

    assert!(tracer.flush(Duration::from_secs(10)), "exported in time");
    let spans = collector.spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    assert_eq!(metrics.exported.get(), 4);

    let server = by_name(&spans, &fresh_trace, "SPAN_KIND_SERVER");
    let clients = by_name(&spans, &fresh_trace, "SPAN_KIND_CLIENT");
    assert_eq!((server.len(), clients.len()), (1, 2), "{spans:#?}");
    let server = server[0];
    assert_eq!(server["name"], "GET users");
    assert_eq!(server["parent_span_id"], "");
    assert_eq!(server["flags"], 0x101);
    assert_eq!(server["resource"]["service.name"], "it-tracing");
    assert_eq!(server["scope"]["name"], "portico");
    let a = &server["attributes"];
    assert_eq!(
        (&a["http.route"], &a["http.request.method"], &a["url.path"]),
        (&"users".into(), &"GET".into(), &"/users/7".into())
    );
    assert_eq!(
        (&a["http.response.status_code"], &a["server.address"], &a["server.port"]),
        (&200.into(), &"api.example".into(), &80.into())
    );
    assert_eq!(server["status"]["code"], "STATUS_CODE_UNSET");
    assert!(server["end"].as_u64() >= server["start"].as_u64());

    // The attempts: siblings under the server span, each with the id its traceparent carried.
    for (i, (c, tp)) in clients.iter().zip([&first_tp, &second_tp]).enumerate() {
        assert_eq!(c["parent_span_id"], server["span_id"]);
        let tp = tp.to_str().expect("ASCII");
        assert_eq!(tp, format!("00-{fresh_trace}-{}-01", c["span_id"].as_str().expect("hex")), "attempt {i}");
        assert_eq!(c["attributes"]["portico.attempt"], i + 1);
        assert_eq!(c["attributes"]["server.port"], 9001 + i);
        assert_eq!(c["attributes"]["portico.upstream"], "users");
    }
    assert_eq!(clients[0]["attributes"]["error.type"], "connect_error");
    assert_eq!(clients[0]["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(clients[1]["attributes"]["portico.retry_reason"], "connect_error");
    assert_eq!(clients[1]["attributes"]["http.request.resend_count"], 1);
    assert_eq!(clients[1]["attributes"]["http.response.status_code"], 200);

    // The continued trace: the caller's trace id, its span as the remote parent, its tracestate,
    // and the refusal as an event.
    let cont = by_name(&spans, "0af7651916cd43dd8448eb211c80319c", "SPAN_KIND_SERVER");
    assert_eq!(cont.len(), 1);
    let cont = cont[0];
    assert_eq!(
        (&cont["parent_span_id"], &cont["trace_state"]),
        (&"b7ad6b7169203331".into(), &"rojo=00f067aa0ba902b7".into())
    );
    assert_eq!(cont["flags"], 0x301, "sampled, parent remote");
    let events = cont["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["name"], "portico.refused");
    assert_eq!(events[0]["attributes"]["error.type"], "unauthorized");
    assert_eq!(events[0]["attributes"]["http.response.status_code"], 401);
}

#[test]
fn the_sample_ratio_holds_over_a_thousand_new_traces() {
    let collector = Collector::start();
    let tracer = tracer(&collector.endpoint(), 0.1, TracingMetrics::unregistered());
    let mut recorded = 0;
    for _ in 0..1000 {
        let mut span = RequestSpan::start(Some(&tracer), &request(None), &incoming());
        recorded += usize::from(span.is_recording());
        span.finish(200, None);
    }
    assert!(tracer.flush(Duration::from_secs(10)));
    let spans = collector.spans();
    assert_eq!(spans.len(), recorded, "every recorded request reached the collector");
    // Binomial(1000, 0.1): mean 100, standard deviation 9.5; this is five of them either side.
    assert!((52..=148).contains(&recorded), "{recorded} of 1000 recorded at 0.1");
}

#[test]
fn a_dead_collector_costs_requests_nothing_and_is_counted() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let metrics = TracingMetrics::unregistered();
    let tracer = tracer(&endpoint, 1.0, metrics.clone());
    let started = Instant::now();
    for _ in 0..1000 {
        let mut span = RequestSpan::start(Some(&tracer), &request(None), &incoming());
        span.attempt(&Arc::from("users"), "127.0.0.1:9001".parse().expect("addr"), None);
        span.finish(200, None);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "1000 traced requests took {took:?}");
    assert!(tracer.flush(Duration::from_secs(10)));
    assert_eq!(metrics.exported.get(), 0);
    assert_eq!(metrics.dropped_export_failed.get() + metrics.dropped_queue_full.get(), 2000);
    assert!(metrics.failed_batches.get() >= 1);
}
