//! An operator watches Portico: metrics count what was sent, every request is one JSON log
//! line, and ids and trace context reach the upstream.

use crate::support::*;
use std::time::Duration;

fn config(a: &Origin) -> Yaml {
    Yaml::new(
        r#"
listeners:
  - {name: web, listen: "127.0.0.1:$web", role: edge}
  - {name: mesh, listen: "127.0.0.1:$mesh", role: internal}
upstreams:
  a: {targets: ["$a"]}
routes:
  - {name: echo, match: {path: /echo}, upstream: a}
  - {name: ping, match: {path_exact: /ping}, respond: {body: pong}}
"#,
    )
    .origin(a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_sent() {
    let a = Origin::start("a").await;
    let p = Portico::start(config(&a)).await;
    let c = client();
    for _ in 0..7 {
        assert_eq!(c.get(p.url("web", "/echo/x")).send().await.expect("req").status(), 200);
    }
    for _ in 0..3 {
        assert_eq!(c.post(p.url("web", "/echo/y")).body("hi").send().await.expect("req").status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(c.get(p.url("web", "/missing")).send().await.expect("req").status(), 404);
    }
    // Requests are counted as they finish, just after the response leaves: wait for the last.
    eventually(Duration::from_secs(3), "all 12 requests counted", || {
        let url = p.admin_url("/metrics");
        async move {
            let text = client().get(url).send().await.expect("metrics").text().await.expect("text");
            metric(&text, "portico_request_duration_seconds_count", "route=\"echo\"") == 10.0
                && metric(&text, "portico_requests_total", "route=\"\",method=\"GET\",status_class=\"4xx\"") == 2.0
        }
    })
    .await;
    let text = p.metrics().await;
    assert_eq!(
        metric(&text, "portico_requests_total", "route=\"echo\",method=\"GET\",status_class=\"2xx\""),
        7.0,
        "{text}"
    );
    assert_eq!(metric(&text, "portico_requests_total", "route=\"echo\",method=\"POST\",status_class=\"2xx\""), 3.0);
    assert_eq!(metric(&text, "portico_requests_total", "route=\"\",method=\"GET\",status_class=\"4xx\""), 2.0);
    assert_eq!(metric(&text, "portico_request_duration_seconds_count", "route=\"echo\""), 10.0);
    assert_eq!(metric(&text, "portico_requests_in_flight", ""), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_json_access_log_line() {
    let a = Origin::start("a").await;
    let p = Portico::start(config(&a)).await;
    let c = client();
    let r = c.get(p.url("web", "/echo/logged?q=1")).send().await.expect("req");
    let id = r.headers()["x-request-id"].to_str().expect("id").to_string();
    c.get(p.url("web", "/ping")).send().await.expect("req");
    c.get(p.url("web", "/nope")).send().await.expect("req");

    let mut lines = Vec::new();
    eventually(Duration::from_secs(5), "three access log lines", || {
        lines = p.access_log().lines().map(str::to_string).collect();
        let n = lines.len();
        async move { n >= 3 }
    })
    .await;
    let parsed: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect();
    let first = parsed.iter().find(|l| l["request_id"] == id.as_str()).expect("line for the first request");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/echo/logged?q=1");
    assert_eq!(first["route"], "echo");
    assert_eq!(first["status"], 200);
    assert_eq!(first["upstream_target"], a.addr.to_string());
    assert!(first["duration_ms"].as_f64().is_some() && first["upstream_duration_ms"].as_f64().is_some());
    for key in ["time", "client", "host", "bytes"] {
        assert!(!first[key].is_null(), "missing {key}: {first}");
    }
    assert!(parsed.iter().any(|l| l["status"] == 404 && l["error"] == "not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_trace_context_and_forwarded_headers_reach_the_upstream() {
    let a = Origin::start("a").await;
    let p = Portico::start(config(&a)).await;
    let c = client();
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Edge: the client's request id and forwarded headers are replaced, the trace continues.
    let r = c
        .get(p.url("web", "/echo"))
        .header("x-request-id", "client-chosen")
        .header("x-forwarded-for", "6.6.6.6")
        .header("traceparent", incoming)
        .header("connection", "keep-alive, x-secret-hop")
        .header("x-secret-hop", "1")
        .send()
        .await
        .expect("req");
    let response_id = r.headers()["x-request-id"].to_str().expect("id").to_string();
    let body: serde_json::Value = r.json().await.expect("json");
    let h = &body["headers"];
    assert_ne!(h["x-request-id"], "client-chosen");
    assert_eq!(h["x-request-id"], response_id.as_str());
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h["x-forwarded-host"].as_str().is_some_and(|v| v.starts_with("127.0.0.1:")));
    let tp = h["traceparent"].as_str().expect("traceparent");
    assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{tp}");
    assert!(!tp.contains("00f067aa0ba902b7"), "span id must be new: {tp}");
    assert!(h["x-secret-hop"].is_null(), "a header named in Connection must not be forwarded");

    // No traceparent: one is started.
    let body: serde_json::Value = c.get(p.url("web", "/echo")).send().await.expect("req").json().await.expect("json");
    let tp = body["headers"]["traceparent"].as_str().expect("traceparent");
    assert_eq!(tp.len(), 55);

    // Internal: the peer's request id is kept and X-Forwarded-For appended to.
    let body: serde_json::Value = c
        .get(p.url("mesh", "/echo"))
        .header("x-request-id", "upstream-hop-1")
        .header("x-forwarded-for", "10.1.1.1")
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(body["headers"]["x-request-id"], "upstream-hop-1");
    assert_eq!(body["headers"]["x-forwarded-for"], "10.1.1.1, 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_answer() {
    let a = Origin::start("a").await;
    let p = Portico::start(config(&a).add("consumers: [{name: m, api_keys: [\"super-secret-key\"]}]\n")).await;
    let (status, body) = get_json(&p.admin_url("/healthz")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, _) = get_json(&p.admin_url("/ready")).await;
    assert_eq!(status, 200);
    let text = client().get(p.admin_url("/config")).send().await.expect("config").text().await.expect("text");
    assert!(text.contains("\"routes\"") && text.contains("echo"), "{text}");
    assert!(!text.contains("super-secret-key"), "secrets must be masked: {text}");
    assert!(text.contains("***"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_values_from_the_environment_masked() {
    // A token set from the environment under a key that is no secret by its name: the
    // upstream gets it, `GET /config` does not show it.
    let a = Origin::start("a").await;
    let p = Portico::start(
        config(&a).add(
            r#"
  - name: api
    match: {path: /api}
    upstream: a
    filters:
      - headers: {request: {set: {authorization: "${PORTICO_TEST_UNSET_TOKEN:-Bearer token-from-env}"}}}
"#
            .trim_start_matches('\n'),
        ),
    )
    .await;
    let body: serde_json::Value =
        client().get(p.url("web", "/api")).send().await.expect("req").json().await.expect("json");
    assert_eq!(body["headers"]["authorization"], "Bearer token-from-env");

    let (status, config) = get_json(&p.admin_url("/config")).await;
    assert_eq!(status, 200);
    let route = config["routes"].as_array().and_then(|r| r.iter().find(|r| r["name"] == "api")).expect("route api");
    assert_eq!(route["filters"][0]["headers"]["request"]["set"]["authorization"], "***", "{config}");
    assert!(!config.to_string().contains("token-from-env"), "{config}");
    assert_eq!(route["match"]["path"], "/api", "values not from the environment are shown");
}
