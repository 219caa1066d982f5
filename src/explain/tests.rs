//! The explanations of the shipped configs, checked against golden files an operator can read
//! (`tests/golden/explain-*.txt`; `PORTICO_BLESS=1 cargo test -p portico --lib explain` writes
//! them anew), and the promise that an explanation agrees with routing.

use super::*;
use std::path::Path;

fn load(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf").join(name);
    match crate::config::load(&path) {
        Ok(c) => c,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// `portico routes` then `portico explain` for each request, as a terminal would show them.
fn transcript(name: &str, requests: &[(&str, &str, &[&str])]) -> String {
    let config = load(name);
    let mut out = format!("$ portico routes -c conf/{name}\n{}", routes_cli(&config));
    for (method, url, headers) in requests {
        let mut cmd = format!("$ portico explain -c conf/{name}");
        if *method != "GET" {
            cmd.push_str(&format!(" -X {method}"));
        }
        for h in *headers {
            cmd.push_str(&format!(" -H '{h}'"));
        }
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        out.push_str(&format!("\n{cmd} {url}\n{}", explain_cli(&config, method, url, &headers)));
    }
    out
}

fn golden(file: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(file);
    if std::env::var_os("PORTICO_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create tests/golden");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PORTICO_BLESS=1 writes it)", path.display()));
    if expected != actual {
        let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{} differs from the output at line {} (PORTICO_BLESS=1 rewrites it):\n--- expected\n{}\n--- actual\n{}",
            path.display(),
            first + 1,
            expected.lines().skip(first).take(5).collect::<Vec<_>>().join("\n"),
            actual.lines().skip(first).take(5).collect::<Vec<_>>().join("\n"),
        );
    }
}

#[test]
fn explain_golden_portico() {
    golden(
        "explain-portico.txt",
        &transcript(
            "portico.yaml",
            &[
                ("GET", "http://localhost:8080/demo/hello?x=1", &[]),
                ("GET", "http://localhost:8080/ping", &[]),
                ("DELETE", "http://localhost:8080/demo/hello", &[]),
                ("GET", "http://localhost:8080/nothing/here", &[]),
                ("GET", "http://127.0.0.1:8081/healthz", &[]),
            ],
        ),
    );
}

#[test]
fn explain_golden_edge() {
    golden(
        "explain-edge.txt",
        &transcript(
            "edge.yaml",
            &[
                ("GET", "http://localhost:8080/partners/orders", &["x-api-key: mobile-demo-key"]),
                ("POST", "http://localhost:8080/api/users", &["Authorization: Bearer eyJhbGciOi.secret.sig"]),
                ("GET", "http://localhost:8080/admin/x", &[]),
                ("GET", "http://localhost:8080/partner", &[]),
            ],
        ),
    );
}

#[test]
fn explain_golden_traffic() {
    golden(
        "explain-traffic.txt",
        &transcript(
            "traffic.yaml",
            &[
                ("GET", "http://localhost:8080/local/hello", &[]),
                ("GET", "http://localhost:8080/shared/", &["x-api-key: k1"]),
                ("PUT", "http://localhost:8080/flaky/item", &["x-portico-fault: abort"]),
            ],
        ),
    );
}

#[test]
fn explain_golden_compose() {
    golden(
        "explain-compose.txt",
        &transcript(
            "compose.yaml",
            &[
                ("GET", "http://localhost:8080/profile/42?limit=5", &[]),
                ("GET", "http://localhost:8080/dashboard/42", &[]),
                ("GET", "http://localhost:8080/profile/abc", &[]),
            ],
        ),
    );
}

/// Every routing and upstream feature the shipped configs leave out.
const FEATURES: &str = r#"
listeners:
  - {name: web, listen: "127.0.0.1:18080"}
  - {name: plain, listen: "127.0.0.1:18081", redirect_https: {port: 8443}}
upstreams:
  users-v1:
    targets: ["127.0.0.1:9001", {address: "127.0.0.1:9002", weight: 3}]
    balance: consistent_hash
    hash_key: "header:x-user"
    health_check: {tcp: {}, interval_ms: 500, unhealthy_after: 3, healthy_after: 2}
    outlier: {consecutive_failures: 5, eject_s: 10}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 20, open_s: 10}
    timeouts: {connect_ms: 200, read_ms: 1000}
    max_in_flight: 100
  users-v2: {targets: ["127.0.0.1:9003"]}
  users-canary: {targets: ["127.0.0.1:9004"], http2: true}
  shadow: {targets: ["127.0.0.1:9005"]}
routes:
  - name: users
    listeners: [web]
    match: {host: ["api.example.com", "*.example.com"], path: /users, methods: [GET, POST], headers: {x-version: "2"}}
    split: [{upstream: users-v1, weight: 90}, {upstream: users-v2, weight: 10}]
    canary: {upstream: users-canary, header: x-canary, value: "on"}
    mirror: {upstream: shadow, percent: 5}
    rewrite: {strip_prefix: /users, add_prefix: /v1/users, host: users.internal}
    retry: {attempts: 2, on: [connect_error, timeout, 503], budget_percent: 20}
    timeout_ms: 3000
    max_in_flight: 500
    filters:
      - headers: {request: {set: {x-from: portico}}}
  - name: search
    listeners: [web]
    match: {path_regex: "^/search/[a-z]+$", query: {q: "*"}}
    priority: 5
    upstream: users-v1
  - name: fallback
    listeners: [web]
    priority: -1
    respond: {status: 404, body: "{}", headers: {content-type: application/json}}
"#;

fn features() -> Config {
    match crate::config::load_str(FEATURES, Path::new("features.yaml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn json(config: &Config, method: &str, url: &str, headers: &[&str]) -> serde_json::Value {
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let probe = Probe::parse(method, url, &headers, None).expect("probe");
    serde_json::to_value(explain(config, &router(config), &probe)).expect("serializable")
}

#[test]
fn explain_golden_features() {
    let config = features();
    let mut out = format!("$ portico routes -c features.yaml\n{}", routes_cli(&config));
    let requests: &[(&str, &str, &[&str])] = &[
        ("POST", "http://api.example.com:18080/users/42?full=1", &["x-version: 2", "x-user: alice"]),
        ("GET", "http://www.example.com:18080/users/42", &["x-version: 2", "x-canary: on", "x-user: bob"]),
        ("GET", "http://api.example.com:18080/users/42", &["x-version: 1"]),
        ("GET", "http://localhost:18080/search/shoes?q=red", &[]),
        ("GET", "http://localhost:18081/anything?x=1", &[]),
        ("GET", "not a url", &[]),
    ];
    for (method, url, headers) in requests {
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let flags: String = headers.iter().map(|h| format!(" -H '{h}'")).collect();
        out.push_str(&format!(
            "\n$ portico explain -c features.yaml -X {method}{flags} {url}\n{}",
            explain_cli(&config, method, url, &headers)
        ));
    }
    golden("explain-features.txt", &out);
}

#[test]
fn explain_json_names_the_choice_and_why_not() {
    let config = features();
    let j = json(&config, "GET", "http://www.example.com:18080/users/7", &["x-version: 2", "x-canary: on"]);
    assert_eq!(j["listener"]["name"], "web");
    assert_eq!(j["route"]["name"], "users");
    assert_eq!(j["result"]["kind"], "proxy");
    assert_eq!(j["upstream"]["goes_to"], "users-canary", "{j}");
    assert_eq!(j["upstream"]["sent_as"]["path"], "/v1/users/7");
    assert_eq!(j["upstream"]["sent_as"]["host"], "users.internal");
    assert_eq!(j["filters"][0]["name"], "headers");
    assert_eq!(j["retry"]["attempts"], 2);
    assert_eq!(j["timeout_ms"], 3000);
    // The canary first, then both halves of the split.
    let pools: Vec<&str> =
        j["upstream"]["pools"].as_array().expect("pools").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(pools, ["users-canary", "users-v1", "users-v2"]);

    // Without the header the fallback takes it, and the users route says why it did not.
    let j = json(&config, "GET", "http://api.example.com:18080/users/7", &["x-version: 1"]);
    assert_eq!(j["route"]["name"], "fallback");
    let users = j["tried_first"].as_array().expect("tried").iter().find(|c| c["route"] == "users").expect("users");
    assert_eq!(users["failed"][0]["rule"], "header");
    assert_eq!(users["failed"][0]["wants"], "x-version: 2");
    assert_eq!(users["failed"][0]["got"], "x-version: 1");

    // A route answering 405 on another method; credentials never echoed.
    let j = json(
        &features_without_fallback(),
        "DELETE",
        "http://api.example.com:18080/users/7",
        &["x-version: 2", "authorization: Basic dXNlcjpwYXNz"],
    );
    assert_eq!(j["result"]["status"], 405);
    assert_eq!(j["nearest"][0]["route"], "users");
    assert_eq!(j["nearest"][0]["failed"][0]["rule"], "method");
    assert!(!j.to_string().contains("dXNlcjpwYXNz"), "{j}");
}

fn features_without_fallback() -> Config {
    let text = FEATURES.split("  - name: fallback").next().expect("text");
    crate::config::load_str(text, Path::new("features.yaml")).expect("valid")
}

/// The first route in precedence order that `misses` finds no fault with is the one routing
/// picks, for every request tried here.
#[test]
fn explain_agrees_with_routing() {
    for config in [features(), features_without_fallback(), load("portico.yaml"), load("edge.yaml")] {
        let router = router(&config);
        for l in &config.listeners {
            let lr = router.listener(&l.name).expect("listener router");
            for (method, host, path, query, headers) in [
                ("GET", "api.example.com", "/users/1", None, vec![("x-version", "2")]),
                ("POST", "a.example.com", "/users", None, vec![("x-version", "2")]),
                ("DELETE", "api.example.com", "/users/1", None, vec![("x-version", "2")]),
                ("GET", "example.com", "/users/1", None, vec![("x-version", "2")]),
                ("GET", "localhost", "/search/abc", Some("q=1"), vec![]),
                ("GET", "localhost", "/search/abc", Some("p=1"), vec![]),
                ("GET", "localhost", "/demo", None, vec![]),
                ("PUT", "localhost", "/demo/x", None, vec![]),
                ("GET", "localhost", "/ping", None, vec![]),
                ("GET", "localhost", "/partners/x", None, vec![]),
                ("GET", "localhost", "/", None, vec![]),
            ] {
                let mut map = http::HeaderMap::new();
                for (k, v) in headers {
                    map.insert(http::HeaderName::from_static(k), http::HeaderValue::from_static(v));
                }
                let method = http::Method::from_bytes(method.as_bytes()).expect("method");
                let view = RequestView { method: &method, host, path, query, headers: &map };
                let by_misses = lr.routes().iter().find(|r| crate::routing::misses(r, &view).is_empty());
                let found = match lr.find(&view) {
                    RouteMatch::Found(r) => Some(r),
                    _ => None,
                };
                assert_eq!(by_misses.map(|r| &r.name), found.map(|r| &r.name), "{method} {host}{path} on {}", l.name);
            }
        }
    }
}

#[test]
fn explain_golden_cache() {
    golden(
        "explain-cache.txt",
        &transcript(
            "cache.yaml",
            &[
                ("GET", "http://localhost:8080/catalog?page=2", &["Accept: application/json"]),
                ("POST", "http://localhost:8080/catalog", &[]),
                ("GET", "http://localhost:8080/profile", &["x-user: ann"]),
            ],
        ),
    );
}
