//! An operator traces requests through Portico: each request is a server span, each upstream
//! attempt a client span under it whose id the origin receives in `traceparent`, refusals are
//! events, a sampled caller is always followed, and a dead collector costs requests nothing.
//!
//! Everything is checked by an independent decoder: `otlp_collector.py` decodes every POST with
//! the reference `opentelemetry-proto` library and writes each span as a JSON line. The first
//! tests drive Portico's tracer directly; the stories after them go through the real daemon.

use crate::support::{client, eventually, metric, Origin, Portico, Yaml};
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
        // A line being written may be incomplete: only whole lines count.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(|l| serde_json::from_str(l).expect("a JSON line per span")).collect()
    }

    /// The spans once the server span of the request with id `request_id` has arrived. Spans
    /// leave in the order they were submitted, a request's client spans before its server span,
    /// so by then its attempts and every earlier request's spans are in too.
    pub async fn spans_through(&self, request_id: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if server_span(&spans, request_id).is_some() {
                return spans;
            }
            assert!(Instant::now() < deadline, "no server span for request {request_id}; got {spans:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

// === through the daemon ===

/// The server span of the request with this id (`portico.request_id`, the `x-request-id` the
/// client got back).
fn server_span<'a>(spans: &'a [Value], request_id: &str) -> Option<&'a Value> {
    spans.iter().find(|s| s["kind"] == "SPAN_KIND_SERVER" && s["attributes"]["portico.request_id"] == request_id)
}

/// The client spans under `server`, in attempt order.
fn attempts<'a>(spans: &'a [Value], server: &Value) -> Vec<&'a Value> {
    let mut found: Vec<&Value> = spans
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_CLIENT" && s["trace_id"] == server["trace_id"])
        .filter(|s| s["parent_span_id"] == server["span_id"])
        .collect();
    found.sort_by_key(|s| s["attributes"]["portico.attempt"].as_i64());
    found
}

/// What a client saw: the status, the request id, and (from an origin's echo) the body.
struct Answer {
    status: u16,
    request_id: String,
    body: Value,
}

impl Answer {
    /// The `traceparent` the origin received, split: (trace id, parent id, flags).
    fn traceparent(&self) -> (String, String, String) {
        let tp =
            self.body["headers"]["traceparent"].as_str().unwrap_or_else(|| panic!("no traceparent: {}", self.body));
        let p: Vec<&str> = tp.split('-').collect();
        assert_eq!((p.len(), p[0]), (4, "00"), "{tp}");
        (p[1].to_string(), p[2].to_string(), p[3].to_string())
    }
}

async fn get(c: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = c.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let request_id = r.headers()["x-request-id"].to_str().expect("ASCII").to_string();
    let body = r.json().await.unwrap_or(Value::Null);
    Answer { status, request_id, body }
}

fn gateway(live: &Origin, collector: &Collector) -> Yaml {
    Yaml::web(
        r#"
upstreams:
  live: {targets: ["$live"]}
  flaky: {targets: ["127.0.0.1:$dead", "$live"]}
consumers: [{name: mobile, api_keys: [k-mobile]}]
routes:
  - {name: users, match: {path: /users}, upstream: live}
  - {name: retried, match: {path: /retried}, upstream: flaky,
     retry: {attempts: 2, on: [connect_error], budget_percent: 100}}
  - {name: private, match: {path: /private}, upstream: live, filters: [{api_key: {}}]}
tracing: {otlp_endpoint: "$collector", sample_ratio: $ratio, service_name: it-gateway}
"#,
    )
    .origin(live)
    .set("collector", collector.endpoint())
    .set("ratio", "1.0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_attempts_retries_and_refusals_are_spans_the_origin_and_collector_agree_on() {
    let collector = Collector::start();
    let live = Origin::start("live").await;
    let mut p = Portico::start(gateway(&live, &collector)).await;
    let c = client();

    // A request without traceparent: a root server span named by its route, one client span
    // under it, and the origin told that client span's id.
    let users = get(&c, &p.url("web", "/users/7"), &[]).await;
    assert_eq!(users.status, 200);
    let spans = collector.spans_through(&users.request_id).await;
    let server = server_span(&spans, &users.request_id).expect("server span");
    assert_eq!((&server["name"], &server["parent_span_id"]), (&"GET users".into(), &"".into()));
    let a = &server["attributes"];
    assert_eq!(
        (&a["http.route"], &a["http.request.method"], &a["http.response.status_code"], &a["url.path"]),
        (&"users".into(), &"GET".into(), &200.into(), &"/users/7".into())
    );
    assert_eq!(server["resource"]["service.name"], "it-gateway");
    assert_eq!(server["status"]["code"], "STATUS_CODE_UNSET");
    let clients = attempts(&spans, server);
    assert_eq!(clients.len(), 1, "{spans:#?}");
    let a = &clients[0]["attributes"];
    assert_eq!(
        (&a["server.address"], &a["server.port"], &a["portico.upstream"], &a["portico.attempt"]),
        (&"127.0.0.1".into(), &live.port().into(), &"live".into(), &1.into())
    );
    assert_eq!(a["http.response.status_code"], 200);
    let (trace, parent, flags) = users.traceparent();
    assert_eq!((trace.as_str(), flags.as_str()), (server["trace_id"].as_str().expect("hex"), "01"));
    assert_eq!(parent, clients[0]["span_id"].as_str().expect("hex"), "the origin's parent is the attempt");
    // The access log's trace id is the span's.
    eventually(Duration::from_secs(5), "the access-log line", || {
        let log = p.access_log();
        let (rid, trace) = (users.request_id.clone(), trace.clone());
        async move {
            log.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|l| l["request_id"] == rid && l["trace_id"] == trace)
        }
    })
    .await;

    // Retries: one target is a closed port, so a request that tries it first goes again to the
    // live one. Attempts are sibling client spans, numbered, the second saying why.
    let mut retried = Vec::new();
    for _ in 0..4 {
        let r = get(&c, &p.url("web", "/retried"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        retried.push(r);
    }
    let spans = collector.spans_through(&retried[3].request_id).await;
    let mut seen_retry = false;
    for r in &retried {
        let server = server_span(&spans, &r.request_id).expect("server span");
        assert_eq!(server["attributes"]["http.route"], "retried");
        let clients = attempts(&spans, server);
        let last = clients.last().expect("an attempt");
        assert_eq!(last["attributes"]["server.port"], live.port(), "the last attempt reached the live target");
        assert_eq!(r.traceparent().1, last["span_id"].as_str().expect("hex"), "the origin saw the last attempt");
        if clients.len() == 2 {
            seen_retry = true;
            let (first, second) = (&clients[0]["attributes"], &clients[1]["attributes"]);
            assert_eq!((&first["portico.attempt"], &second["portico.attempt"]), (&1.into(), &2.into()));
            assert_eq!(first["server.port"], p.port("dead"));
            assert_eq!(
                (&first["error.type"], &clients[0]["status"]["code"]),
                (&"connect_error".into(), &"STATUS_CODE_ERROR".into())
            );
            assert!(first["portico.retry_reason"].is_null());
            assert_eq!(
                (&second["portico.retry_reason"], &second["http.request.resend_count"]),
                (&"connect_error".into(), &1.into())
            );
            assert_eq!(second["http.response.status_code"], 200);
            assert!(clients[0]["end"].as_u64() <= clients[1]["start"].as_u64(), "one after the other");
        } else {
            assert_eq!(clients.len(), 1, "{spans:#?}");
        }
    }
    assert!(seen_retry, "round robin over two targets sent one of four requests to the closed port first");

    // A filter's refusal is an event on the server span (which stays unset: a 401 is the
    // client's doing), and no attempt is made; the consumer a key names is on the span.
    let refused = get(&c, &p.url("web", "/private"), &[]).await;
    assert_eq!((refused.status, refused.body["error"].as_str()), (401, Some("unauthorized")));
    let allowed = get(&c, &p.url("web", "/private"), &[("x-api-key", "k-mobile")]).await;
    assert_eq!(allowed.status, 200);
    let spans = collector.spans_through(&allowed.request_id).await;
    let server = server_span(&spans, &refused.request_id).expect("server span of the refusal");
    assert_eq!(
        (&server["attributes"]["http.route"], &server["attributes"]["http.response.status_code"]),
        (&"private".into(), &401.into())
    );
    assert_eq!(server["status"]["code"], "STATUS_CODE_UNSET");
    let events = server["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{server:#}");
    assert_eq!(events[0]["name"], "portico.refused");
    assert_eq!(
        (&events[0]["attributes"]["http.response.status_code"], &events[0]["attributes"]["error.type"]),
        (&401.into(), &"unauthorized".into())
    );
    assert!(attempts(&spans, server).is_empty(), "a refused request goes nowhere");
    let server = server_span(&spans, &allowed.request_id).expect("server span");
    assert_eq!(server["attributes"]["portico.consumer"], "mobile");

    // Reloaded with `sample_ratio: 0`: new traces are not recorded (and say so upstream), a
    // caller's sampled trace still is, under the caller's span.
    p.rewrite_config(gateway(&live, &collector).set("ratio", "0"));
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let fresh = get(&c, &p.url("web", "/users/fresh"), &[]).await;
    assert_eq!(fresh.traceparent().2, "00", "not recorded, and the origin is told so");
    let unsampled = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let declined = get(&c, &p.url("web", "/users/declined"), &[("traceparent", unsampled)]).await;
    assert_eq!(declined.traceparent().2, "00");
    let followed =
        get(&c, &p.url("web", "/users/followed"), &[("traceparent", INCOMING), ("tracestate", "rojo=1")]).await;
    // Stopped at once (well before the exporter's 1 s interval), Portico sends what is still
    // queued on its way out.
    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(15)).await, "a clean exit:\n{}", p.stderr());
    let spans = collector.spans();
    let server = server_span(&spans, &followed.request_id).expect("recorded at ratio 0, sent at shutdown");
    assert_eq!(
        (&server["trace_id"], &server["parent_span_id"], &server["trace_state"]),
        (&"0af7651916cd43dd8448eb211c80319c".into(), &"b7ad6b7169203331".into(), &"rojo=1".into())
    );
    assert_eq!(server["flags"], 0x301, "sampled, parent remote");
    let clients = attempts(&spans, server);
    assert_eq!(clients.len(), 1);
    let (trace, parent, flags) = followed.traceparent();
    assert_eq!(
        (trace.as_str(), parent.as_str(), flags.as_str()),
        ("0af7651916cd43dd8448eb211c80319c", clients[0]["span_id"].as_str().expect("hex"), "01")
    );
    for r in [&fresh, &declined] {
        assert!(server_span(&spans, &r.request_id).is_none(), "request {} must not be recorded", r.request_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenth_of_a_thousand_new_traces_are_recorded_and_the_origin_is_told_which() {
    let collector = Collector::start();
    let live = Origin::start("live").await;
    let p = Portico::start(gateway(&live, &collector).set("ratio", "0.1")).await;
    let c = client();
    let mut sampled = std::collections::HashSet::new();
    for _ in 0..1000 {
        let r = get(&c, &p.url("web", "/users"), &[]).await;
        assert_eq!(r.status, 200);
        if r.traceparent().2 == "01" {
            sampled.insert(r.request_id);
        }
    }
    // A caller's sampled request last: once its spans are in, every earlier one is.
    let last = get(&c, &p.url("web", "/users"), &[("traceparent", INCOMING)]).await;
    let spans = collector.spans_through(&last.request_id).await;
    let recorded: std::collections::HashSet<String> = spans
        .iter()
        .filter(|s| {
            s["kind"] == "SPAN_KIND_SERVER" && s["attributes"]["portico.request_id"] != last.request_id.as_str()
        })
        .map(|s| s["attributes"]["portico.request_id"].as_str().expect("request id").to_string())
        .collect();
    assert_eq!(recorded, sampled, "recorded exactly the requests whose traceparent said sampled");
    // Binomial(1000, 0.1): mean 100, standard deviation 9.5; this is 4.5 of them either side.
    assert!((58..=142).contains(&recorded.len()), "{} of 1000 recorded at 0.1", recorded.len());
    assert_eq!(spans.len(), 2 * (recorded.len() + 1), "a server and a client span each");
    let exported = spans.len() as f64;
    eventually(Duration::from_secs(5), "the exported spans counted", || {
        let url = p.admin_url("/metrics");
        async move {
            let text = client().get(url).send().await.expect("metrics").text().await.expect("text");
            metric(&text, "portico_tracing_spans_exported_total", "") == exported
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_slows_no_request_and_its_dropped_spans_are_counted() {
    let live = Origin::start("live").await;
    let yaml = Yaml::web(
        r#"
upstreams: {live: {targets: ["$live"]}}
routes: [{name: users, upstream: live}]
"#,
    )
    .origin(&live);
    // Nothing listens on `$nobody`: every export is refused at connect.
    let traced = Portico::start(yaml.clone().add("tracing: {otlp_endpoint: \"http://127.0.0.1:$nobody\"}\n")).await;
    let plain = Portico::start(yaml).await;
    let c = client();

    // Both run the same requests, interleaved in rounds so a busy machine slows both alike.
    let run = |url: String| {
        let c = c.clone();
        async move {
            let started = Instant::now();
            for _ in 0..50 {
                let r = c.get(&url).send().await.expect("request");
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await;
            }
            started.elapsed()
        }
    };
    let (mut with_tracing, mut without) = (Duration::ZERO, Duration::ZERO);
    for round in 0..11 {
        let t = run(traced.url("web", "/x")).await;
        let u = run(plain.url("web", "/x")).await;
        // Round 0 warms both up (connections, caches) and is not counted.
        if round > 0 {
            with_tracing += t;
            without += u;
        }
    }
    assert!(
        with_tracing <= without * 2 + Duration::from_millis(500),
        "500 traced requests took {with_tracing:?}, untraced {without:?}"
    );

    // Every span (a server and a client span for each of 550 requests) is dropped and counted.
    let spans = 2.0 * 550.0;
    eventually(Duration::from_secs(20), "every span counted as dropped", || {
        let url = traced.admin_url("/metrics");
        async move {
            let text = client().get(url).send().await.expect("metrics").text().await.expect("text");
            let dropped = metric(&text, "portico_tracing_spans_dropped_total", "reason=\"export_failed\"")
                + metric(&text, "portico_tracing_spans_dropped_total", "reason=\"queue_full\"");
            dropped == spans
        }
    })
    .await;
    let text = traced.metrics().await;
    assert_eq!(metric(&text, "portico_tracing_spans_exported_total", ""), 0.0);
    assert!(metric(&text, "portico_tracing_export_failures_total", "") >= 1.0, "{text}");
    let text = plain.metrics().await;
    assert_eq!(metric(&text, "portico_tracing_spans_dropped_total", "reason=\"export_failed\""), 0.0);
}
