//! Issue 12: one reading of every request. Malformed and ambiguous requests, written byte for
//! byte on a socket, get the status the table says and never reach the origin when refused;
//! path and host spellings cannot slip past an `api_key` route; identity headers a client
//! forges never reach an upstream behind an edge listener.

use crate::hardening_corpus::{corpus, get, raw};
use crate::support::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn config(a: &Origin, b: &Origin, shadow: &Origin) -> Yaml {
    Yaml::new(
        r#"
listeners:
  - {name: web, listen: "127.0.0.1:$web"}
  - {name: mesh, listen: "127.0.0.1:$mesh", role: internal}
  - {name: raw, listen: "127.0.0.1:$raw", path_normalization: off}
upstreams:
  a: {targets: ["$a"]}
  b: {targets: ["$b"]}
  shadow: {targets: ["$shadow"]}
consumers:
  - {name: mobile, api_keys: ["k-123"]}
routes:
  - name: admin
    match: {path: /api/admin}
    upstream: a
    filters:
      - api_key: {header: x-api-key}
  - name: api
    match: {path: /api}
    upstream: a
  - name: hosted
    match: {host: api.example.com, path: /h}
    upstream: b
  - name: users
    match: {path: /users}
    upstream: a
    rewrite: {strip_prefix: /users, add_prefix: /v1/users}
  - name: claims
    match: {path: /claims}
    upstream: a
    filters:
      - jwt: {secret: "a-very-secret-hmac-key", algorithms: [HS256], forward_claims: {sub: x-user-id}}
  - name: mirrored
    match: {path: /m}
    upstream: a
    rewrite: {host: backend.internal}
    mirror: {upstream: shadow, percent: 100}
  - name: rest
    match: {path: /}
    upstream: a
"#,
    )
    .origin(a)
    .origin(b)
    .origin(shadow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_of_malformed_and_ambiguous_requests() {
    let (a, b, shadow) = (Origin::start("a").await, Origin::start("b").await, Origin::start("shadow").await);
    let p = Portico::start(config(&a, &b, &shadow)).await;
    let cases = corpus();
    assert!(cases.len() >= 30);
    let mut table = String::from("| case | status |\n|---|---|\n");
    let mut failures = Vec::new();
    for c in &cases {
        let hits = (a.hits.load(Ordering::SeqCst), b.hits.load(Ordering::SeqCst));
        let (status, body) = raw(p.port(c.listener), &c.request).await;
        let after = (a.hits.load(Ordering::SeqCst), b.hits.load(Ordering::SeqCst));
        table.push_str(&format!("| {} | {status} |\n", c.name));
        if status != c.status {
            failures.push(format!("{}: got {status}, want {} ({body})", c.name, c.status));
        }
        match c.reaches {
            None if after != hits => failures.push(format!("{}: reached an origin", c.name)),
            Some((origin, path)) => {
                let echo: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if echo["instance"] != origin || echo["path"] != path {
                    failures.push(format!("{}: want {origin} {path}, got {echo}", c.name));
                }
            }
            None => {
                // Portico's own answer: JSON with the request id.
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if status >= 400 && status != 431 && json["request_id"].is_null() && !body.is_empty() {
                    failures.push(format!("{}: no request id in {body}", c.name));
                }
            }
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_host_spellings_never_reach_a_protected_route_unauthenticated() {
    let (a, b, shadow) = (Origin::start("a").await, Origin::start("b").await, Origin::start("shadow").await);
    let p = Portico::start(config(&a, &b, &shadow)).await;
    let spellings = [
        "/api/admin/users",
        "//api/admin/users",
        "/api//admin/users",
        "/api/%61dmin/users",
        "/api/%61%64%6d%69%6e/users",
        "/api/x/../admin/users",
        "/api/x/%2e%2e/admin/users",
        "/api/x/%2E%2E/admin/users",
        "/api/./admin/users",
        "/api/admin/./users",
        "/./api/admin/users",
        "/api/x/y/../../admin/users",
        "/api/admin%2fusers",
        "/api%2fadmin/users",
        "/api/..;/api/admin/users",
        "/api/admin/users/..%2f..%2fx",
        "/api/admin\\users",
        // Path parameters, which Tomcat-like origins strip before routing.
        "/api/admin;/users",
        "/api/admin;x=1/users",
        "/api;/admin/users",
        "/api/admin%3B/users",
        "/api/admin%3b/users",
        "/api/x/..;/admin/users",
    ];
    for path in spellings {
        for host in ["t", "T.", "t:80"] {
            let before = a.hits.load(Ordering::SeqCst);
            let (status, body) = raw(p.port("web"), &get(path, host)).await;
            assert!([400, 401].contains(&status), "{path} @ {host}: {status} {body}");
            assert_eq!(a.hits.load(Ordering::SeqCst), before, "{path} reached the origin unauthenticated");
            // With the key: refused the same way, or through with the canonical path.
            let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nx-api-key: k-123\r\nConnection: close\r\n\r\n");
            let (status, body) = raw(p.port("web"), req.as_bytes()).await;
            match status {
                200 => {
                    let echo: serde_json::Value = serde_json::from_str(&body).expect("echo");
                    let seen = echo["path"].as_str().unwrap_or("");
                    assert!(seen.starts_with("/api/admin"), "{path}: the origin saw {seen}");
                    assert!(!seen.contains("..") && !seen.contains("//") && !seen.contains('%'), "{path}: {seen}");
                }
                400 => {}
                other => panic!("{path} with a key: {other} {body}"),
            }
        }
    }
    // rewrite.strip_prefix cannot be climbed out of.
    for path in ["/users/../../admin", "/users/%2e%2e/%2e%2e/admin", "/users/..%2f..%2fadmin", "/users//../../admin"] {
        let before = a.hits.load(Ordering::SeqCst);
        let (status, body) = raw(p.port("web"), &get(path, "t")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(a.hits.load(Ordering::SeqCst), before, "{path} reached the origin");
    }
}

/// What the origin saw of a request with every forgeable header set to `forged`.
async fn forged(port: u16, path: &str) -> serde_json::Value {
    let mut headers = String::new();
    for f in portico::canonical::FORGEABLE.iter() {
        headers.push_str(&format!("{}: forged\r\n", f.name));
    }
    headers.push_str("x-user-id: forged\r\n");
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    let (status, body) = raw(port, req.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).expect("echo")["headers"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_identity_headers_stop_at_the_edge_and_pass_between_trusted_peers() {
    let (a, b, shadow) = (Origin::start("a").await, Origin::start("b").await, Origin::start("shadow").await);
    let p = Portico::start(config(&a, &b, &shadow)).await;
    // Edge: nothing the client set survives, on a route without the jwt filter too.
    let seen = forged(p.port("web"), "/api/x").await;
    let mut names: Vec<&str> = portico::canonical::FORGEABLE.iter().map(|f| f.name).collect();
    names.push("x-user-id");
    for name in &names {
        let value = seen[*name].as_str().unwrap_or("");
        assert!(!value.contains("forged"), "{name}: {value} reached the upstream from an edge client");
    }
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    // Internal: the peer is trusted, its headers pass (X-Forwarded-For appended to).
    let seen = forged(p.port("mesh"), "/api/x").await;
    for name in &names {
        let value = seen[*name].as_str().unwrap_or("");
        assert!(value.starts_with("forged"), "{name}: {value:?} did not pass from a trusted peer");
    }
    assert_eq!(seen["x-forwarded-for"], "forged, 127.0.0.1");

    // The mirror gets the request as it went upstream (rewritten Host, no forged headers).
    let (status, _) = raw(p.port("web"), &with_path("/m/x", "x-real-ip: forged\r\n")).await;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(10), "the shadow got the copy", || {
        let n = shadow.seen.lock().map(|s| s.len()).unwrap_or(0);
        async move { n == 1 }
    })
    .await;
    let host = shadow.seen.lock().expect("lock")[0].0.clone();
    assert_eq!(host, "backend.internal-shadow", "the mirror sent the client's request, not the upstream's");
    assert!(p.metrics().await.contains("portico_mirror_dropped_total 0"));
}

fn with_path(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}
