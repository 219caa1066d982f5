//! An operator asks the running proxy why: `GET /routes` lists the routing table in the order
//! routing tries it, and `GET /explain` says which route a request gets (or why none), which
//! filters run, where it goes upstream and whether that target is up now.

use crate::support::*;
use std::time::Duration;

fn config(a: &Origin, b: &Origin) -> Yaml {
    Yaml::web(
        r#"
upstreams:
  users:
    targets: ["$a", "$b"]
    balance: consistent_hash
    hash_key: "header:x-user"
    health_check: {http: {path: /healthz, expect_status: 200}, interval_ms: 100, unhealthy_after: 1}
routes:
  - name: users
    match: {path: /users, methods: [GET, POST], headers: {x-version: "2"}}
    upstream: users
    rewrite: {strip_prefix: /users, add_prefix: /v2}
    retry: {attempts: 1, on: [connect_error]}
    filters:
      - headers: {request: {set: {x-from: portico}}}
      - jwt: {secret: "a-very-secret-hmac-key", algorithms: [HS256]}
  - {name: ping, match: {path_exact: /ping}, respond: {body: pong}}
"#,
    )
    .origin(a)
    .origin(b)
}

fn explain_url(p: &Portico, query: &str) -> String {
    p.admin_url(&format!("/explain?{query}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_routes_lists_the_table_in_precedence_order() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let p = Portico::start(config(&a, &b)).await;
    let (status, body) = get_json(&p.admin_url("/routes")).await;
    assert_eq!(status, 200, "{body}");
    let web = &body["listeners"][0];
    assert_eq!(web["name"], "web");
    let names: Vec<&str> =
        web["routes"].as_array().expect("routes").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["users", "ping"], "longer path first: {body}");
    let users = &web["routes"][0];
    assert_eq!(users["rank"], 1);
    assert_eq!(users["match"]["path"], serde_json::json!({"kind": "prefix", "value": "/users"}));
    assert_eq!(users["match"]["methods"], serde_json::json!(["GET", "POST"]));
    assert_eq!(users["action"]["upstream"], "users");
    assert_eq!(users["filters"], serde_json::json!(["headers", "jwt"]));
    assert_eq!(web["routes"][1]["action"]["respond"]["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_a_request_route_filters_upstream_and_live_health() {
    let (a, mut b) = (Origin::start("a").await, Origin::start("b").await);
    let p = Portico::start(config(&a, &b)).await;

    let query = "method=POST&url=http%3A%2F%2Flocalhost%2Fusers%2F7%3Fv%3D1&header=x-version:%202&header=x-user:%20ann";
    let (status, e) = get_json(&explain_url(&p, query)).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["listener"]["name"], "web");
    assert_eq!(e["route"]["name"], "users");
    assert_eq!(e["result"]["kind"], "proxy");
    let filters: Vec<&str> =
        e["filters"].as_array().expect("filters").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(filters, ["headers", "jwt"]);
    assert_eq!(e["filters"][1]["config"]["secret"], "***", "secrets masked: {e}");
    assert!(!e.to_string().contains("a-very-secret-hmac-key"));
    let u = &e["upstream"];
    assert_eq!(u["goes_to"], "users");
    assert_eq!(u["sent_as"]["path"], "/v2/7?v=1");
    assert_eq!(u["pools"][0]["balance"], "consistent_hash");
    assert_eq!(u["pools"][0]["hash_key"], serde_json::json!({"rule": "header:x-user", "value": "ann"}));
    assert_eq!(e["retry"]["attempts"], 1);
    assert!(e["retry"]["this_request"].as_str().is_some_and(|t| t.contains("never retried")), "{e}");

    // A target killed now shows as down in the next explanation.
    b.stop().await;
    let b_addr = b.addr.to_string();
    eventually(Duration::from_secs(5), "b reported down", || {
        let url = explain_url(&p, query);
        let b_addr = b_addr.clone();
        async move {
            let (_, e) = get_json(&url).await;
            e["upstream"]["pools"][0]["targets"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["address"] == b_addr.as_str() && t["healthy"] == false))
        }
    })
    .await;

    // Nothing matches: 404, with the nearest routes and why each did not take it.
    let (_, e) = get_json(&explain_url(&p, "url=/user/7")).await;
    assert_eq!(e["result"]["status"], 404, "{e}");
    assert_eq!(e["nearest"][0]["route"], "users");
    let rules: Vec<&str> =
        e["nearest"][0]["failed"].as_array().expect("failed").iter().filter_map(|f| f["rule"].as_str()).collect();
    assert_eq!(rules, ["path", "header"]);
    assert_eq!(e["nearest"][0]["failed"][0]["got"], "/user/7");

    // The path but not the method: 405 and the Allow list.
    let (_, e) = get_json(&explain_url(&p, "method=DELETE&url=/users/7&header=x-version:2")).await;
    assert_eq!(e["result"]["status"], 405, "{e}");
    assert!(e["result"]["message"].as_str().is_some_and(|m| m.contains("Allow: GET, POST")), "{e}");

    // What the explanation says is what the proxy does.
    let r = client().get(p.url("web", "/ping")).send().await.expect("ping");
    assert_eq!(r.text().await.expect("body"), "pong");
    let (_, e) = get_json(&explain_url(&p, "url=/ping")).await;
    assert_eq!((e["route"]["name"].as_str(), e["result"]["kind"].as_str()), (Some("ping"), Some("respond")));

    // A query that is not a request is a 400 that says what is missing.
    let (status, e) = get_json(&p.admin_url("/explain?method=GET")).await;
    assert_eq!(status, 400);
    assert!(e["message"].as_str().is_some_and(|m| m.contains("url=")), "{e}");
    let (status, _) = get_json(&explain_url(&p, "url=/x&listener=nope")).await;
    assert_eq!(status, 200, "an unknown listener is explained, not an error");
}
