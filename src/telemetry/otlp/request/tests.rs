use super::*;

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request(method: &str, traceparent: Option<&str>) -> http::request::Parts {
    let mut b = http::Request::builder()
        .method(method)
        .uri("/users/42?api_key=secret")
        .header("host", "api.example.com:8443")
        .header("user-agent", "curl/8");
    if let Some(tp) = traceparent {
        b = b.header("traceparent", tp).header("tracestate", "vendor=abc");
    }
    b.body(()).expect("valid request").into_parts().0
}

fn incoming() -> Incoming<'static> {
    static WEB: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("web"));
    Incoming { listener: &WEB, client: Some([10, 0, 0, 9].into()), tls: true, request_id: "req-1" }
}

fn text<'a>(s: &'a SpanData, key: &str) -> Option<&'a str> {
    s.attribute(key).and_then(Value::as_str)
}

fn int(s: &SpanData, key: &str) -> Option<i64> {
    match s.attribute(key) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

/// The parts of a `traceparent`: trace id, span id, flags.
fn parts(v: &HeaderValue) -> (String, String, String) {
    let s = v.to_str().expect("ASCII");
    let p: Vec<&str> = s.split('-').collect();
    assert_eq!((p.len(), p[0]), (4, "00"), "{s}");
    (p[1].into(), p[2].into(), p[3].into())
}

#[test]
fn a_new_trace_is_a_root_server_span_with_the_semantic_convention_attributes() {
    let tracer = Tracer::capturing(1.0);
    let mut span = RequestSpan::start(Some(&tracer), &request("GET", None), &incoming());
    assert!(span.is_recording());
    let (trace, parent, flags) = parts(&span.traceparent());
    assert_eq!((trace.as_str(), flags.as_str()), (span.trace_id_hex(), "01"));
    assert_eq!(parent, format!("{:016x}", span.span_id()), "before any attempt, the server span is the parent");
    span.set_route(&Arc::from("users"));
    span.finish(200, None);

    let spans = tracer.captured();
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!((s.kind, &*s.name, s.parent_span_id, s.status), (SpanKind::Server, "GET users", 0, StatusCode::Unset));
    assert_eq!(format!("{:032x}", s.trace_id), span.trace_id_hex());
    for (key, want) in [
        ("http.request.method", "GET"),
        ("http.route", "users"),
        ("url.scheme", "https"),
        ("url.path", "/users/42"),
        ("server.address", "api.example.com"),
        ("client.address", "10.0.0.9"),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "curl/8"),
        ("portico.listener", "web"),
        ("portico.request_id", "req-1"),
    ] {
        assert_eq!(text(s, key), Some(want), "{key}");
    }
    assert_eq!((int(s, "server.port"), int(s, "http.response.status_code")), (Some(8443), Some(200)));
    assert!(s.attributes.iter().all(|(_, v)| v.as_str().is_none_or(|t| !t.contains("secret"))), "no query");
    assert!(s.end_unix_nano >= s.start_unix_nano && s.start_unix_nano > 1_600_000_000_000_000_000);
}

#[test]
fn a_sampled_caller_is_followed_whatever_the_ratio() {
    let tracer = Tracer::capturing(0.0);
    let mut span = RequestSpan::start(Some(&tracer), &request("POST", Some(INCOMING)), &incoming());
    assert!(span.is_recording());
    assert_eq!(span.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    let (_, parent, flags) = parts(&span.traceparent());
    assert_ne!(parent, "00f067aa0ba902b7", "a new span id, not the caller's");
    assert_eq!(flags, "01");
    span.finish(201, None);
    let s = &tracer.captured()[0];
    assert_eq!((s.parent_span_id, s.parent_is_remote), (0x00f067aa0ba902b7, true));
    assert_eq!(s.trace_state.as_deref(), Some("vendor=abc"));
}

#[test]
fn an_unsampled_caller_is_never_recorded_but_its_trace_goes_on() {
    let tracer = Tracer::capturing(1.0);
    let unsampled = INCOMING.replace("-01", "-00");
    let mut span = RequestSpan::start(Some(&tracer), &request("GET", Some(&unsampled)), &incoming());
    assert!(!span.is_recording());
    span.attempt(&Arc::from("users"), "127.0.0.1:9001".parse().expect("address"), None);
    let (trace, parent, flags) = parts(&span.traceparent());
    assert_eq!((trace.as_str(), flags.as_str()), ("4bf92f3577b34da6a3ce929d0e0e4736", "00"));
    assert_ne!(parent, format!("{:016x}", span.span_id()), "even unrecorded, each attempt has its own id");
    span.finish(200, None);
    drop(span);
    assert!(tracer.captured().is_empty());
}

#[test]
fn without_a_tracer_the_trace_context_is_passed_on_as_before() {
    let span = RequestSpan::start(None, &request("GET", None), &incoming());
    assert!(!span.is_recording());
    assert_eq!(parts(&span.traceparent()).2, "01", "a new trace is marked sampled, as before tracing");
    let span = RequestSpan::start(None, &request("GET", Some(&INCOMING.replace("-01", "-00"))), &incoming());
    assert_eq!(parts(&span.traceparent()).2, "00");
    assert_eq!(span.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn an_invalid_traceparent_starts_a_new_trace() {
    for bad in ["garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
        let span = RequestSpan::start(None, &request("GET", Some(bad)), &incoming());
        let (trace, parent, flags) = parts(&span.traceparent());
        assert_eq!((trace.as_str(), flags.as_str()), (span.trace_id_hex(), "01"), "{bad}");
        assert_ne!(trace, "0".repeat(32));
        assert_ne!(parent, "00f067aa0ba902b7");
    }
}

#[test]
fn a_new_trace_is_unsampled_at_ratio_zero_and_says_so_upstream() {
    let tracer = Tracer::capturing(0.0);
    let mut span = RequestSpan::start(Some(&tracer), &request("GET", None), &incoming());
    assert!(!span.is_recording());
    assert_eq!(parts(&span.traceparent()).2, "00");
    span.finish(200, None);
    assert!(tracer.captured().is_empty());
}

#[test]
fn retries_are_sibling_client_spans_each_propagated_with_its_own_id() {
    let tracer = Tracer::capturing(1.0);
    let mut span = RequestSpan::start(Some(&tracer), &request("GET", None), &incoming());
    let pool: Arc<str> = Arc::from("users");
    span.attempt(&pool, "127.0.0.1:9001".parse().expect("address"), None);
    let first = parts(&span.traceparent()).1;
    span.attempt_failed("connect_error");
    span.attempt(&pool, "127.0.0.1:9002".parse().expect("address"), Some("connect_error"));
    let second = parts(&span.traceparent()).1;
    span.attempt_status(503);
    span.attempt(&pool, "127.0.0.1:9003".parse().expect("address"), Some("status"));
    let third = parts(&span.traceparent()).1;
    span.attempt_status(200);
    span.finish(200, None);

    let spans = tracer.captured();
    assert_eq!(spans.len(), 4);
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).expect("server span");
    let clients: Vec<&SpanData> = spans.iter().filter(|s| s.kind == SpanKind::Client).collect();
    assert_eq!(clients.len(), 3);
    for (i, (c, id)) in clients.iter().zip([&first, &second, &third]).enumerate() {
        assert_eq!(c.parent_span_id, server.span_id, "attempt {i} is a child of the request");
        assert_eq!(&format!("{:016x}", c.span_id), id, "the traceparent carried attempt {i}'s id");
        assert_eq!((c.trace_id, &*c.name), (server.trace_id, "GET"));
        assert_eq!(int(c, "portico.attempt"), Some(i as i64 + 1));
        assert_eq!(int(c, "http.request.resend_count"), (i > 0).then_some(i as i64));
        assert_eq!(text(c, "portico.upstream"), Some("users"));
        assert_eq!(int(c, "server.port"), Some(9001 + i as i64));
        assert!(server.start_unix_nano <= c.start_unix_nano && c.end_unix_nano <= server.end_unix_nano);
    }
    assert_eq!((text(clients[0], "error.type"), clients[0].status), (Some("connect_error"), StatusCode::Error));
    assert_eq!(text(clients[0], "portico.retry_reason"), None);
    assert_eq!(
        (text(clients[1], "error.type"), int(clients[1], "http.response.status_code")),
        (Some("503"), Some(503))
    );
    assert_eq!(text(clients[1], "portico.retry_reason"), Some("connect_error"));
    assert_eq!((text(clients[2], "portico.retry_reason"), clients[2].status), (Some("status"), StatusCode::Unset));
    assert!(clients[0].end_unix_nano <= clients[1].start_unix_nano, "siblings one after the other");
}

#[test]
fn refusals_are_events_and_server_errors_mark_the_span() {
    let tracer = Tracer::capturing(1.0);
    let mut span = RequestSpan::start(Some(&tracer), &request("PURGE", None), &incoming());
    span.refused(429, "rate_limited");
    span.finish(429, None);
    let mut span = RequestSpan::start(Some(&tracer), &request("GET", None), &incoming());
    span.finish(503, None);
    let mut span = RequestSpan::start(Some(&tracer), &request("GET", None), &incoming());
    span.finish(200, Some("upstream_error"));

    let spans = tracer.captured();
    let refused = &spans[0];
    assert_eq!((&*refused.name, text(refused, "http.request.method")), ("HTTP", Some("_OTHER")));
    assert_eq!(text(refused, "http.request.method_original"), Some("PURGE"));
    assert_eq!(refused.status, StatusCode::Unset, "a 4xx is the client's doing");
    let e = &refused.events[0];
    assert_eq!(e.name, "portico.refused");
    assert_eq!(
        e.attributes,
        [("http.response.status_code", Value::Int(429)), ("error.type", Value::Static("rate_limited"))]
    );
    assert_eq!((spans[1].status, text(&spans[1], "error.type")), (StatusCode::Error, Some("503")));
    assert_eq!((spans[2].status, text(&spans[2], "error.type")), (StatusCode::Error, Some("upstream_error")));
}

#[test]
fn a_request_dropped_unfinished_still_exports_its_spans() {
    let tracer = Tracer::capturing(1.0);
    let mut span = RequestSpan::start(Some(&tracer), &request("GET", None), &incoming());
    span.attempt(&Arc::from("users"), "127.0.0.1:9001".parse().expect("address"), None);
    drop(span);
    let spans = tracer.captured();
    assert_eq!(spans.iter().map(|s| s.kind).collect::<Vec<_>>(), [SpanKind::Client, SpanKind::Server]);
    assert_eq!(spans[1].attribute("http.response.status_code"), None);
}

#[test]
fn hosts_split_from_ports() {
    assert_eq!(split_host_port("a.example:8080"), ("a.example", Some(8080)));
    assert_eq!(split_host_port("a.example"), ("a.example", None));
    assert_eq!(split_host_port("[::1]:443"), ("::1", Some(443)));
    assert_eq!(split_host_port("[::1]"), ("::1", None));
}
