//! A user writes a routing table and every request lands where the table says.

use crate::support::*;

fn table(a: &Origin, b: &Origin) -> Yaml {
    Yaml::web(
        r#"
upstreams:
  a: {targets: ["$a"]}
  b: {targets: ["$b"]}
routes:
  - name: ping
    match: {path_exact: /ping}
    respond: {status: 200, body: pong, headers: {content-type: text/plain}}
  - name: api-host
    match: {host: api.example.com, path: /}
    upstream: b
  - name: wildcard
    match: {host: "*.example.org"}
    upstream: b
  - name: users
    match: {path: /users, methods: [GET, POST]}
    upstream: a
  - name: users-me
    match: {path_exact: /users/me}
    upstream: b
  - name: v2-header
    match: {path: /items, headers: {x-version: "2"}}
    upstream: b
  - name: items
    match: {path: /items}
    upstream: a
  - name: beta-query
    match: {path: /search, query: {beta: "1"}}
    upstream: b
  - name: search
    match: {path: /search}
    upstream: a
  - name: regex
    match: {path_regex: "^/files/[0-9]+$"}
    upstream: b
  - name: low
    match: {path: /prio}
    upstream: a
  - name: high
    priority: 10
    match: {path: /prio}
    upstream: b
  - name: rewritten
    match: {path: /old}
    upstream: a
    rewrite: {strip_prefix: /old, add_prefix: /new, host: backend.internal}
"#,
    )
    .origin(a)
    .origin(b)
}

async fn instance(p: &Portico, path: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut req = client().get(p.url("web", path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_follow_the_routing_table() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let p = Portico::start(table(&a, &b)).await;

    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("/users/42", &[], "a"),
        ("/users", &[], "a"),
        ("/users/me", &[], "b"),
        ("/items/1", &[("x-version", "2")], "b"),
        ("/items/1", &[("x-version", "1")], "a"),
        ("/search?q=x&beta=1", &[], "b"),
        ("/search?q=x", &[], "a"),
        ("/files/123", &[], "b"),
        ("/prio/x", &[], "b"),
        ("/anything", &[("host", "api.example.com")], "b"),
        ("/anything", &[("host", "www.example.org")], "b"),
    ];
    for (path, headers, want) in cases {
        let (status, body) = instance(&p, path, headers).await;
        assert_eq!(status, 200, "{path} {headers:?}: {body}");
        assert_eq!(body["instance"], *want, "{path} {headers:?} went to the wrong upstream: {body}");
    }

    // A static response.
    let r = client().get(p.url("web", "/ping")).send().await.expect("ping");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "pong");

    // Rewrites: prefix swapped, query kept, host replaced.
    let (_, body) = instance(&p, "/old/thing?x=1", &[]).await;
    assert_eq!(body["uri"], "/new/thing?x=1");
    assert_eq!(body["headers"]["host"], "backend.internal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_requests_get_json_errors() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let p = Portico::start(table(&a, &b)).await;

    // Nothing matches: 404 with a JSON body and the request id.
    let r = client().get(p.url("web", "/nowhere")).send().await.expect("request");
    assert_eq!(r.status(), 404);
    let id = r.headers()["x-request-id"].to_str().expect("id").to_string();
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["request_id"], id.as_str());

    // The path matches but the method does not: 405 with Allow.
    let r = client().delete(p.url("web", "/users/1")).send().await.expect("request");
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, POST");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "method_not_allowed");

    // `/usersfoo` is not under the `/users` prefix.
    let r = client().get(p.url("web", "/usersfoo")).send().await.expect("request");
    assert_eq!(r.status(), 404);

    // A wildcard host does not match the bare domain.
    let r = client().get(p.url("web", "/x")).header("host", "example.org").send().await.expect("request");
    assert_eq!(r.status(), 404);
}
