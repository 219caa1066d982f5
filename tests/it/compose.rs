//! A client asks one aggregate route and gets one JSON answer composed of several upstream
//! calls, made at once through the same pools as any route: by part name or merged, with the
//! parts that failed named in headers, 502 when a required one fails, in about the time of the
//! slowest part, with template values that cannot escape their slot, and with the client's
//! identity carried to every part. Three real origins: fast, slow and failing.

use crate::support::*;
use crate::tokens::sign_hs;
use std::time::{Duration, Instant};

const COMPLETE: &str = "x-portico-complete";
const FAILED: &str = "x-portico-failed-parts";

struct Origins {
    fast: Origin,
    slow: Origin,
    failing: Origin,
}

impl Origins {
    async fn start() -> Origins {
        let (fast, slow, failing) =
            (Origin::start("fast").await, Origin::start("slow").await, Origin::start("failing").await);
        slow.set_delay_ms(1000);
        failing.set_failing(true);
        Origins { fast, slow, failing }
    }

    /// The three pools and `routes`, placeholders filled.
    fn config(&self, routes: &str) -> Yaml {
        Yaml::web(&format!(
            r#"
upstreams:
  fast: {{targets: ["$fast"]}}
  slow: {{targets: ["$slow"]}}
  failing: {{targets: ["$failing"]}}
routes:
{routes}
"#
        ))
        .origin(&self.fast)
        .origin(&self.slow)
        .origin(&self.failing)
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn get(p: &Portico, path: &str) -> (u16, Option<String>, Option<String>, serde_json::Value) {
    let r = client().get(p.url("web", path)).send().await.expect("request");
    let status = r.status().as_u16();
    let (complete, failed) = (header(&r, COMPLETE).map(str::to_string), header(&r, FAILED).map(str::to_string));
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, complete, failed, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_composed_by_name_or_merged_and_logged_and_counted() {
    let o = Origins::start().await;
    let p = Portico::start(o.config(
        r#"
  - name: profile
    match: {path_regex: "^/profile/(?P<id>[0-9]+)$", methods: [GET]}
    aggregate:
      - {name: user, upstream: fast, path: "/users/{id}"}
      - {name: orders, upstream: fast, path: "/orders?user={id}"}
  - name: merged
    match: {path_regex: "^/merged/(?P<id>[0-9]+)$"}
    aggregate:
      - {name: a, upstream: fast, path: "/a/{id}"}
      - {name: b, upstream: fast, path: "/b?x=1"}
    aggregate_merge: true
"#,
    ))
    .await;

    let (status, complete, failed, body) = get(&p, "/profile/42").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(complete.as_deref(), Some("true"));
    assert_eq!(failed, None);
    assert_eq!(body["user"]["path"], "/users/42", "{body}");
    assert_eq!(body["orders"]["uri"], "/orders?user=42", "{body}");
    assert_eq!(body.as_object().map(|m| m.len()), Some(2), "one field per part: {body}");

    // Merged: the parts' top-level fields in one object, the later part winning a clash.
    let (status, complete, _, body) = get(&p, "/merged/7").await;
    assert_eq!((status, complete.as_deref()), (200, Some("true")), "{body}");
    assert_eq!(body["uri"], "/b?x=1", "b wins: {body}");
    assert_eq!(body["instance"], "fast");
    assert!(body.get("a").is_none() && body.get("b").is_none(), "merged, not nested: {body}");

    // One access-log line for the client request, with the parts' targets and durations.
    let fast = o.fast.addr.to_string();
    eventually(Duration::from_secs(5), "the access-log line", || {
        let log = p.access_log();
        async move { log.contains("/profile/42") }
    })
    .await;
    let log = p.access_log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["path"] == "/profile/42")
        .collect();
    assert_eq!(lines.len(), 1, "one line per client request: {log}");
    let parts = lines[0]["parts"].as_array().expect("parts in the line");
    assert_eq!(parts.len(), 2, "{log}");
    assert_eq!(parts[0]["name"], "user");
    assert_eq!(parts[0]["upstream"], "fast");
    assert_eq!(parts[0]["target"], fast.as_str());
    assert_eq!(parts[0]["status"], 200);
    assert_eq!(parts[0]["outcome"], "ok");
    assert!(parts[1]["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{log}");

    // Per-part outcome counts.
    let m = p.metrics().await;
    assert_eq!(metric(&m, "portico_aggregate_parts_total", r#"route="profile",part="user",outcome="ok""#), 1.0);
    assert_eq!(metric(&m, "portico_aggregate_parts_total", r#"route="merged",part="b",outcome="ok""#), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_part_that_times_out_is_null_and_named() {
    let o = Origins::start().await;
    let p = Portico::start(o.config(
        r#"
  - name: profile
    match: {path_regex: "^/profile/(?P<id>[0-9]+)$"}
    timeout_ms: 800
    aggregate:
      - {name: user, upstream: fast, path: "/users/{id}"}
      - {name: orders, upstream: slow, path: "/orders", required: false, timeout_ms: 200}
"#,
    ))
    .await;
    // Once to open the connections, then measured.
    let _ = get(&p, "/profile/1").await;
    let started = Instant::now();
    let (status, complete, failed, body) = get(&p, "/profile/1").await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(complete.as_deref(), Some("false"));
    assert_eq!(failed.as_deref(), Some("orders=timeout"));
    assert_eq!(body["orders"], serde_json::Value::Null, "{body}");
    assert_eq!(body["user"]["path"], "/users/1");
    assert!(took >= Duration::from_millis(180) && took < Duration::from_millis(800), "answered in {took:?}");
    let m = p.metrics().await;
    assert_eq!(metric(&m, "portico_aggregate_parts_total", r#"route="profile",part="orders",outcome="timeout""#), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_required_part_or_every_part_failing_is_502() {
    let o = Origins::start().await;
    let p = Portico::start(o.config(
        r#"
  - name: profile
    match: {path_regex: "^/profile/(?P<id>[0-9]+)$"}
    aggregate:
      - {name: orders, upstream: fast, path: "/orders", required: false}
      - {name: user, upstream: failing, path: "/users/{id}"}
  - name: optional
    match: {path: /optional}
    aggregate:
      - {name: a, upstream: failing, path: /a, required: false}
      - {name: b, upstream: failing, path: /b, required: false}
  - name: some
    match: {path: /some}
    aggregate:
      - {name: a, upstream: fast, path: /a, required: false}
      - {name: b, upstream: failing, path: /b, required: false}
"#,
    ))
    .await;
    let (status, complete, failed, body) = get(&p, "/profile/5").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "aggregate_part_failed", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("\"user\"") && m.contains("503")), "{body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!((complete.as_deref(), failed.as_deref()), (Some("false"), Some("user=503")));

    let (status, _, failed, body) = get(&p, "/optional").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "aggregate_failed", "{body}");
    assert_eq!(failed.as_deref(), Some("a=503, b=503"));

    // Some optional parts failing: 200, partial.
    let (status, complete, failed, body) = get(&p, "/some").await;
    assert_eq!((status, complete.as_deref(), failed.as_deref()), (200, Some("false"), Some("b=503")), "{body}");
    assert_eq!(body["b"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_takes_as_long_as_the_slowest_part_not_the_sum() {
    let o = Origins::start().await;
    let p = Portico::start(o.config(
        r#"
  - name: three
    match: {path: /three}
    timeout_ms: 3000
    aggregate:
      - {name: a, upstream: fast, path: "/slow?ms=300"}
      - {name: b, upstream: fast, path: "/slow?ms=300"}
      - {name: c, upstream: fast, path: "/slow?ms=400"}
"#,
    ))
    .await;
    // Warm the connections once, then measure.
    let _ = get(&p, "/three").await;
    let started = Instant::now();
    let (status, complete, _, body) = get(&p, "/three").await;
    let took = started.elapsed();
    assert_eq!((status, complete.as_deref()), (200, Some("true")), "{body}");
    assert_eq!(body["c"]["uri"], "/slow?ms=400");
    // The slowest part is 400 ms; in sequence the three would take 1,000 ms.
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(750), "answered in {took:?}");
    println!("aggregate of 300/300/400 ms parts answered in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_values_stay_in_their_slot() {
    let o = Origins::start().await;
    let p = Portico::start(o.config(
        r#"
  - name: profile
    match: {path_regex: "^/profile/(?P<id>[^/]+)$"}
    aggregate:
      - {name: user, upstream: fast, path: "/users/{id}"}
      - {name: orders, upstream: fast, path: "/orders?user={id}&q={query.q}"}
      - {name: recs, upstream: fast, path: /recs, method: POST, body: '{"user": "{id}", "q": "{query.q}"}'}
"#,
    ))
    .await;
    // An encoded slash in the path never reaches routing: the canonical path refuses it.
    let hits = o.fast.hits.load(std::sync::atomic::Ordering::SeqCst);
    let r = client().get(p.url("web", "/profile/1%2F..%2Fadmin")).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(o.fast.hits.load(std::sync::atomic::Ordering::SeqCst), hits, "no part was called");

    // Encoded `?`, `#`, `&`, `=` and quotes stay inside the one segment, query value or string.
    let q = "x%26admin%3Dtrue%22%2C%22role%22%3A%22root";
    let (status, complete, _, body) = get(&p, &format!("/profile/a%3Fb%3D1%23c?q={q}")).await;
    assert_eq!((status, complete.as_deref()), (200, Some("true")), "{body}");
    assert_eq!(body["user"]["path"], "/users/a%3Fb%3D1%23c", "one segment: {body}");
    assert_eq!(body["orders"]["uri"], format!("/orders?user=a%3Fb%3D1%23c&q={q}"), "{body}");
    let sent: serde_json::Value =
        serde_json::from_str(body["recs"]["body"].as_str().expect("the body recs got")).expect("recs got JSON");
    assert_eq!(sent, serde_json::json!({"user": "a?b=1#c", "q": "x&admin=true\",\"role\":\"root"}), "{body}");
    assert_eq!(body["recs"]["method"], "POST");
    assert_eq!(body["recs"]["headers"]["content-type"], "application/json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_pool_with_a_dead_target_still_answers() {
    let o = Origins::start().await;
    let dead = free_port();
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  fast: {targets: ["$fast"]}
  ejecting:
    targets: ["$fast", "127.0.0.1:$dead"]
    outlier: {consecutive_failures: 1, eject_s: 60}
  checked:
    targets: ["$fast", "127.0.0.1:$dead"]
    health_check: {http: {path: /healthz, expect_status: 200}, interval_ms: 100, unhealthy_after: 1}
routes:
  - name: ejecting
    match: {path: /ejecting}
    aggregate: [{name: a, upstream: ejecting, path: /a, required: false}, {name: b, upstream: fast, path: /b}]
  - name: checked
    match: {path: /checked}
    aggregate: [{name: a, upstream: checked, path: /a, required: false}, {name: b, upstream: fast, path: /b}]
"#,
        )
        .origin(&o.fast)
        .set("dead", dead),
    )
    .await;
    // Outlier ejection: the dead target fails a part at most once, then is out.
    let mut incomplete = 0;
    for _ in 0..8 {
        let (status, complete, _, body) = get(&p, "/ejecting").await;
        assert_eq!(status, 200, "{body}");
        if complete.as_deref() == Some("false") {
            incomplete += 1;
        }
    }
    assert!(incomplete <= 1, "{incomplete} incomplete answers");
    let dead_addr = format!("127.0.0.1:{dead}");
    let m = p.metrics().await;
    assert_eq!(
        metric(&m, "portico_outlier_ejections_total", &format!(r#"upstream="ejecting",target="{dead_addr}""#)),
        1.0,
        "{m}"
    );

    // Health checks: once the dead target is down, no part goes to it.
    let pr = &p;
    let down = |m: &str| {
        m.lines().any(|l| {
            l.starts_with("portico_upstream_target_healthy{")
                && l.contains(&dead_addr)
                && l.contains("\"checked\"")
                && l.ends_with(" 0")
        })
    };
    eventually(Duration::from_secs(5), "the dead target marked down", || async move { down(&pr.metrics().await) })
        .await;
    for _ in 0..6 {
        let (status, complete, failed, body) = get(&p, "/checked").await;
        assert_eq!((status, complete.as_deref(), failed), (200, Some("true"), None), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_receives_the_clients_identity() {
    let o = Origins::start().await;
    let p = Portico::start(o.config(
        r#"
  - name: me
    match: {path: /me}
    filters:
      - jwt: {secret: "s3cret-for-compose-tests", algorithms: [HS256], forward_claims: {sub: x-user-id}}
      - headers: {request: {set: {x-gateway: portico}}}
    aggregate:
      - {name: user, upstream: fast, path: /users/me}
      - {name: orders, upstream: fast, path: /orders}
"#,
    ))
    .await;
    let token = sign_hs("HS256", "s3cret-for-compose-tests", serde_json::json!({"sub": "ann"}), Some(300));
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let r = client()
        .get(p.url("web", "/me"))
        .header("authorization", format!("Bearer {token}"))
        .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
        .header("x-user-id", "forged")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    let id = header(&r, "x-request-id").expect("a request id").to_string();
    let body: serde_json::Value = r.json().await.expect("json");
    for part in ["user", "orders"] {
        let h = &body[part]["headers"];
        assert_eq!(h["x-request-id"], id.as_str(), "{part}: {body}");
        assert!(h["traceparent"].as_str().is_some_and(|t| t.contains(trace)), "{part}: {body}");
        assert_eq!(h["authorization"], format!("Bearer {token}").as_str(), "{part}");
        assert_eq!(h["x-user-id"], "ann", "the verified claim, not the forged header: {body}");
        assert_eq!(h["x-gateway"], "portico", "{part}");
        assert!(h["x-forwarded-for"].as_str().is_some_and(|f| f.contains("127.0.0.1")), "{part}: {body}");
    }
    // Without a token the route's filters refuse once, and no part is called.
    let hits = o.fast.hits.load(std::sync::atomic::Ordering::SeqCst);
    let r = client().get(p.url("web", "/me")).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(o.fast.hits.load(std::sync::atomic::Ordering::SeqCst), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_compose_example_answers_as_its_comments_say() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/compose.yaml")).expect("conf");
    let text = text
        .lines()
        .filter(|l| !l.starts_with("server:") && !l.starts_with("admin:") && !l.starts_with("access_log:"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("127.0.0.1:8080", "127.0.0.1:$web")
        .replace("127.0.0.1:8081", "127.0.0.1:$backend");
    let p = Portico::start(Yaml::new(&text)).await;
    let (status, complete, _, body) = get(&p, "/profile/42").await;
    assert_eq!((status, complete.as_deref()), (200, Some("true")), "{body}");
    assert_eq!(body["user"], serde_json::json!({"id": 42, "name": "Ann"}));
    assert_eq!(body["orders"], serde_json::json!([{"id": 7, "total": 12.5}]));
    assert_eq!(body["recs"], serde_json::json!({"recs": ["book", "lamp"]}));
    let (_, _, _, body) = get(&p, "/dashboard/42").await;
    assert_eq!(body, serde_json::json!({"id": 42, "name": "Ann", "recs": ["book", "lamp"]}));
    let r = client().get(p.url("web", "/profile/42")).send().await.expect("request");
    assert_eq!(header(&r, "cache-control"), Some("no-store"), "response filters run on the composed answer");
    let r = client().get(p.url("web", "/profile/abc")).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 404);

    // The operator sees the aggregate in /config, /routes and /explain.
    let (_, config) = get_json(&p.admin_url("/config")).await;
    assert_eq!(config["routes"][0]["aggregate"][1]["timeout_ms"], 300, "{config}");
    let (_, routes) = get_json(&p.admin_url("/routes")).await;
    let parts = &routes["listeners"][0]["routes"][0]["action"]["aggregate"]["parts"];
    assert_eq!(
        parts[0],
        serde_json::json!({"name": "user", "upstream": "users", "method": "GET",
        "path": "/users/{id}", "body": false, "required": true}),
        "{routes}"
    );
    let (_, e) = get_json(&p.admin_url("/explain?url=%2Fprofile%2F42")).await;
    assert_eq!(e["result"]["kind"], "aggregate", "{e}");
    assert!(e["result"]["message"].as_str().is_some_and(|m| m.contains("GET /users/42 via users")), "{e}");
}

#[test]
fn a_template_slot_nothing_can_fill_is_a_config_error_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portico.yaml");
    let yaml = r#"listeners: [{name: web, listen: "127.0.0.1:0"}]
upstreams: {users: {targets: ["127.0.0.1:9"]}}
routes:
  - name: profile
    match: {path_regex: "^/profile/(?P<id>[0-9]+)$"}
    aggregate:
      - {name: user, upstream: users, path: "/users/{id}"}
      - {name: orders, upstream: users, path: "/orders?user={user}", bogus: 1}
"#;
    std::fs::write(&path, yaml).expect("write");
    let run = |path: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["-t", "-c"])
            .arg(path)
            .output()
            .expect("run portico -t");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, text) = run(&path);
    assert!(!ok, "{text}");
    assert!(text.contains("bogus"), "unknown keys are refused: {text}");
    std::fs::write(&path, yaml.replace(", bogus: 1", "")).expect("write");
    let (ok, text) = run(&path);
    assert!(!ok, "{text}");
    assert!(text.contains(":8:") && text.contains("routes[0].aggregate[1].path") && text.contains("{user}"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_goes_over_the_upstreams_mtls() {
    let pki = crate::pki::Pki::new();
    pki.issue("ca", "hop", "hop.internal", "DNS:hop.internal", false);
    pki.issue("ca", "gateway", "gateway", "URI:spiffe://example.org/ns/edge/sa/gateway", true);
    let o = Origins::start().await;
    // An internal hop that requires a client certificate and tells its origin who called.
    let hop = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: mesh
    listen: "127.0.0.1:$mesh"
    role: internal
    forward_client_cert: x-forwarded-client-cert
    tls: {certs: [{cert: $hop, key: $hop_key}], client_ca: $ca, require_client_cert: true}
upstreams:
  origin: {targets: ["$fast"]}
routes:
  - {name: all, upstream: origin}
"#,
        )
        .set("hop", pki.path("hop.crt").display())
        .set("hop_key", pki.path("hop.key").display())
        .set("ca", pki.path("ca.crt").display())
        .origin(&o.fast),
    )
    .await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  fast: {targets: ["$fast"]}
  hop:
    targets: ["127.0.0.1:$port"]
    tls: {sni: hop.internal, ca: $ca, cert: $gw, key: $gw_key}
routes:
  - name: both
    match: {path: /both}
    aggregate:
      - {name: plain, upstream: fast, path: /plain}
      - {name: mesh, upstream: hop, path: /mesh}
"#,
        )
        .origin(&o.fast)
        .set("port", hop.port("mesh"))
        .set("ca", pki.path("ca.crt").display())
        .set("gw", pki.path("gateway.crt").display())
        .set("gw_key", pki.path("gateway.key").display()),
    )
    .await;
    let (status, complete, failed, body) = get(&p, "/both").await;
    assert_eq!((status, complete.as_deref(), failed), (200, Some("true"), None), "{body}");
    assert_eq!(body["mesh"]["path"], "/mesh");
    let xfcc = body["mesh"]["headers"]["x-forwarded-client-cert"].as_str().unwrap_or_default();
    assert!(xfcc.contains("URI=spiffe://example.org/ns/edge/sa/gateway"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_body_over_the_bound_fails_that_part_only() {
    let o = Origins::start().await;
    o.fast.set_fixed("/big", &format!("\"{}\"", "x".repeat(1024 * 1024 + 16)));
    o.fast.set_fixed("/text", "not json at all");
    let p = Portico::start(o.config(
        r#"
  - name: sizes
    match: {path: /sizes}
    aggregate:
      - {name: small, upstream: fast, path: /small}
      - {name: big, upstream: fast, path: /big, required: false}
      - {name: text, upstream: fast, path: /text}
"#,
    ))
    .await;
    let r = client().get(p.url("web", "/sizes")).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, FAILED), Some("big=too_large"));
    let text = r.text().await.expect("body");
    assert!(text.len() < 64 * 1024, "the big body is not in the answer: {} bytes", text.len());
    let body: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["big"], serde_json::Value::Null);
    assert_eq!(body["small"]["path"], "/small");
    assert_eq!(body["text"], "not json at all", "a body that is not JSON is a string: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_part_is_a_client_span_the_origin_is_told_about() {
    let collector = crate::tracing::Collector::start();
    let o = Origins::start().await;
    let p = Portico::start(
        o.config(
            r#"
  - name: profile
    match: {path: /profile}
    aggregate:
      - {name: user, upstream: fast, path: /users/me}
      - {name: orders, upstream: failing, path: /orders, required: false}
"#,
        )
        .add("tracing: {otlp_endpoint: \"$collector\", sample_ratio: 1.0, service_name: it-compose}\n")
        .set("collector", collector.endpoint()),
    )
    .await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let r = client()
        .get(p.url("web", "/profile"))
        .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    let request_id = header(&r, "x-request-id").expect("a request id").to_string();
    let body: serde_json::Value = r.json().await.expect("json");
    let spans = collector.spans_through(&request_id).await;
    let server = spans
        .iter()
        .find(|s| s["kind"] == "SPAN_KIND_SERVER" && s["attributes"]["portico.request_id"] == request_id.as_str())
        .expect("the server span");
    assert_eq!(server["trace_id"], trace);
    let part = |name: &str| {
        spans
            .iter()
            .find(|s| s["kind"] == "SPAN_KIND_CLIENT" && s["attributes"]["portico.part"] == name)
            .unwrap_or_else(|| panic!("a client span for {name}: {spans:#?}"))
    };
    let (user, orders) = (part("user"), part("orders"));
    for s in [user, orders] {
        assert_eq!((&s["trace_id"], &s["parent_span_id"]), (&server["trace_id"], &server["span_id"]), "{s}");
    }
    assert_eq!(user["attributes"]["http.response.status_code"], 200);
    assert_eq!(user["attributes"]["portico.upstream"], "fast");
    assert_eq!(orders["attributes"]["http.response.status_code"], 503);
    assert_eq!(orders["status"]["code"], "STATUS_CODE_ERROR");
    // The origin's parent is the part's own span.
    let tp = body["user"]["headers"]["traceparent"].as_str().expect("the user part's traceparent");
    assert_eq!(tp, format!("00-{trace}-{}-01", user["span_id"].as_str().expect("hex")));
}
