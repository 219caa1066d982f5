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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_host_or_path_is_cut_in_the_access_log_and_dropped_lines_are_counted() {
    let a = Origin::start("a").await;
    let p = Portico::start(config(&a)).await;
    let long_path = format!("/echo/{}", "x".repeat(20_000));
    let long_host = format!("{}.example", "h".repeat(2_000));
    let r = client().get(p.url("web", &long_path)).header("host", &long_host).send().await.expect("req");
    assert_eq!(r.status(), 200);

    let mut line = serde_json::Value::Null;
    eventually(Duration::from_secs(5), "the access log line", || {
        line = p.access_log().lines().next().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default();
        let found = !line.is_null();
        async move { found }
    })
    .await;
    let path = line["path"].as_str().expect("path");
    let host = line["host"].as_str().expect("host");
    assert!(path.starts_with("/echo/xxx") && path.ends_with("...[truncated]") && path.len() < 4200, "{path}");
    assert!(host.starts_with("hhh") && host.ends_with("...[truncated]") && host.len() < 300, "{host}");
    // The writer keeps up, so nothing was dropped; the counter is there to alert on.
    let text = p.metrics().await;
    assert!(text.contains("portico_access_log_dropped_total 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_access_log_is_reopened_on_sigusr1_and_on_reload() {
    let a = Origin::start("a").await;
    let p = Portico::start(config(&a)).await;
    let log = p.dir.path().join("access.log");
    let c = client();
    assert_eq!(c.get(p.url("web", "/ping?n=first")).send().await.expect("req").status(), 200);
    eventually(Duration::from_secs(5), "the first line", || {
        let found = p.access_log().contains("n=first");
        async move { found }
    })
    .await;

    // logrotate renames the file, then signals.
    std::fs::rename(&log, p.dir.path().join("access.log.1")).expect("rename");
    eventually(Duration::from_secs(5), "the signal handlers", || {
        let up = p.stderr().contains("SIGUSR1 (reopen the access log)");
        async move { up }
    })
    .await;
    p.signal("USR1");
    let mut n = 0;
    eventually(Duration::from_secs(5), "a line in a new file at the old path", || {
        n += 1;
        let url = p.url("web", &format!("/ping?n=after-usr1-{n}"));
        let found = p.access_log().contains("n=after-usr1");
        async move {
            let _ = client().get(url).send().await;
            found
        }
    })
    .await;
    let rotated = std::fs::read_to_string(p.dir.path().join("access.log.1")).expect("rotated file");
    assert!(rotated.contains("n=first"), "lines before the signal stay in the renamed file: {rotated}");
    assert!(!p.access_log().contains("n=first"), "the new file starts empty: {}", p.access_log());

    // A reload reopens it too, before it answers.
    std::fs::rename(&log, p.dir.path().join("access.log.2")).expect("rename");
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200);
    assert_eq!(c.get(p.url("web", "/ping?n=after-reload")).send().await.expect("req").status(), 200);
    eventually(Duration::from_secs(5), "the line after the reload in a new file", || {
        let found = p.access_log().contains("n=after-reload");
        async move { found }
    })
    .await;
    let second = std::fs::read_to_string(p.dir.path().join("access.log.2")).expect("second rotated file");
    assert!(!second.contains("n=after-reload"), "{second}");
}
