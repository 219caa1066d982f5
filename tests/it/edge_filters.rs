//! A front-end team's browser calls: CORS preflights answered at the edge, compressed
//! responses for clients that accept them.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflights_and_compression() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
routes:
  - name: api
    match: {path: /api}
    upstream: a
    filters:
      - cors: {allow_origins: ["https://app.example"], allow_methods: [GET, PUT], allow_headers: [authorization], expose_headers: [x-request-id], max_age_s: 600}
  - name: big
    match: {path: /big}
    upstream: a
    filters:
      - compression: {level: 6}
"#,
        )
        .origin(&a),
    )
    .await;
    let c = client();
    let hits = a.hits.load(std::sync::atomic::Ordering::SeqCst);

    // A preflight is answered at the edge.
    let r = c
        .request(reqwest::Method::OPTIONS, p.url("web", "/api/items"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .expect("preflight");
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(r.headers()["access-control-allow-methods"], "GET, PUT");
    assert_eq!(r.headers()["access-control-max-age"], "600");
    assert_eq!(a.hits.load(std::sync::atomic::Ordering::SeqCst), hits, "the preflight reached the origin");

    // A simple request from an allowed origin gets the headers; another origin does not.
    let r = c.get(p.url("web", "/api/items")).header("origin", "https://app.example").send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(r.headers()["access-control-expose-headers"], "x-request-id");
    let r = c.get(p.url("web", "/api/items")).header("origin", "https://evil.example").send().await.expect("get");
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Compression by Accept-Encoding.
    let long = "x".repeat(2000);
    let r =
        c.get(p.url("web", &format!("/big?pad={long}"))).header("accept-encoding", "gzip").send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let compressed = r.bytes().await.expect("body").len();
    assert!(compressed < 1000, "gzip body is {compressed} bytes");
    let r = c.get(p.url("web", &format!("/big?pad={long}"))).send().await.expect("get");
    assert!(r.headers().get("content-encoding").is_none());
}
