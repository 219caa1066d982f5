//! A user edits JSON bodies on their way through Portico (`json_transform`) and refuses request
//! bodies that do not match a schema (`json_schema`), against a real origin: the client gets the
//! edited response with a length that holds, the origin gets the edited request, and what cannot
//! be edited goes through untouched.

use crate::support::{client, metric, Portico, Yaml};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use tokio::net::TcpListener;

/// The user the origin serves: nested objects, an array, a secret at each level.
fn user() -> Value {
    json!({"id": 7, "name": "Ann", "password": "hunter2", "internal": {"cost": 12, "team": "core"},
           "orders": [{"n": 1, "card": "4111"}, {"n": 2, "card": "5500"}], "api_version": "1"})
}

/// What the client gets for [`user`] through the route's edits.
fn edited_user() -> Value {
    json!({"user_id": 7, "name": "Ann", "internal": {"team": "core"}, "orders": [{"n": 1}, {"n": 2}],
           "api_version": "2", "meta": {"via": "portico"}})
}

type Body = BoxBody<Bytes, Infallible>;

fn full(content_type: &str, status: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("a response")
}

/// The origin: `/user` (`?status=N`), `/user/chunked` (the same body in three chunks, no
/// length), `/user/text`, `/user/broken` (says JSON, is not), `/user/big` (JSON over the route's
/// limit), `/echo` (what it got: body, length, encoding wishes).
async fn origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("origin binds");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req| async move { Ok::<_, Infallible>(answer(req).await) });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    addr
}

async fn answer(req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let status = req.uri().query().and_then(|q| q.strip_prefix("status=")).and_then(|s| s.parse().ok());
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (length, chunked, accept) = (header("content-length"), header("transfer-encoding"), header("accept-encoding"));
    match path.as_str() {
        "/user" => full("application/json", status.unwrap_or(200), user().to_string()),
        "/user/chunked" => {
            let text = user().to_string();
            let (a, rest) = text.split_at(10);
            let (b, c) = rest.split_at(30);
            let chunks: Vec<Result<Frame<Bytes>, Infallible>> =
                [a, b, c].iter().map(|s| Ok(Frame::data(Bytes::copy_from_slice(s.as_bytes())))).collect();
            let body = StreamBody::new(futures_util::stream::iter(chunks));
            Response::builder()
                .header("content-type", "application/json; charset=utf-8")
                .body(BodyExt::boxed(body))
                .expect("a response")
        }
        "/user/text" => full("text/plain", 200, "password=hunter2"),
        "/user/broken" => full("application/json", 200, r#"{"password": "hunter2""#),
        "/user/big" => full("application/json", 200, json!({"password": "x", "pad": "y".repeat(5000)}).to_string()),
        "/user/accept" => full("application/json", 200, json!({"accept_encoding": accept, "password": 1}).to_string()),
        _ => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let seen = json!({"body": String::from_utf8_lossy(&body), "content_length": length,
                              "transfer_encoding": chunked});
            full("application/json", 200, seen.to_string())
        }
    }
}

fn config(origin: SocketAddr, schema: &str) -> Yaml {
    Yaml::web(
        r#"
upstreams: {o: {targets: ["$o"]}}
routes:
  - name: users
    match: {path: /user}
    upstream: o
    filters:
      - json_transform:
          response: {remove: [password, internal.cost, "orders[].card"], rename: {id: user_id},
                     set: {api_version: "2", meta.via: portico}, only_status: [200], max_body_bytes: 4096}
  - name: echo
    match: {path: /echo}
    upstream: o
    filters:
      - json_transform:
          request: {remove: [debug], rename: {userName: user_name, "items[].q": qty},
                    set: {meta.source: gateway}}
  - name: orders
    match: {path: /orders}
    upstream: o
    filters:
      - json_schema: {schema_file: "$schema"}
"#,
    )
    .set("o", origin)
    .set("schema", schema)
}

fn order_schema() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/conf/schemas/order.json").to_string()
}

/// GET over a plain socket: the response head and the body as framed on the wire (a chunked
/// body decoded, checked to end with its last chunk; a length checked against the bytes sent).
fn raw_get(port: u16, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").expect("writes");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reads to close");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut rest = &raw[split..];
    if head.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).expect("hex").trim(), 16).expect("hex");
            rest = &rest[eol + 2..];
            if size == 0 {
                assert_eq!(rest, b"\r\n", "the last chunk ends the body");
                return (head, body);
            }
            body.extend_from_slice(&rest[..size]);
            assert_eq!(&rest[size..size + 2], b"\r\n");
            rest = &rest[size + 2..];
        }
    }
    let length = head.lines().find_map(|l| l.strip_prefix("content-length: ")).expect("a length or chunked");
    assert_eq!(length.trim().parse::<usize>().expect("a number"), rest.len(), "Content-Length holds");
    (head, rest.to_vec())
}

#[tokio::test]
async fn response_edits_reach_nested_objects_and_arrays_with_a_length_that_holds() {
    let o = origin().await;
    let p = Portico::start(config(o, &order_schema())).await;
    let web = p.port("web");
    for path in ["/user", "/user/chunked"] {
        let (head, body) = tokio::task::spawn_blocking(move || raw_get(web, path)).await.expect("runs");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("content-length"), "{path}: the old length is gone: {head}");
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("JSON"), edited_user(), "{path}");
    }
    // reqwest reads the same, over keep-alive.
    let r = client().get(p.url("web", "/user")).send().await.expect("answers");
    assert_eq!(r.json::<Value>().await.expect("JSON"), edited_user());
    // The upstream was asked for a body it can be read in.
    let r = client().get(p.url("web", "/user/accept")).header("accept-encoding", "gzip").send().await;
    assert_eq!(
        r.expect("answers").json::<Value>().await.expect("JSON"),
        json!({"accept_encoding": "identity",
        "api_version": "2", "meta": {"via": "portico"}})
    );
    let metrics = p.metrics().await;
    let labels = r#"filter="json_transform",route="users",direction="response",outcome="transformed""#;
    assert_eq!(metric(&metrics, "portico_filter_json_bodies_total", labels), 4.0, "{metrics}");
}

#[tokio::test]
async fn what_cannot_be_edited_goes_through_untouched_counted_and_logged_once() {
    let o = origin().await;
    let p = Portico::start(config(o, &order_schema())).await;
    let web = p.port("web");
    // A status not listed in only_status.
    let (head, body) = tokio::task::spawn_blocking(move || raw_get(web, "/user?status=404")).await.expect("runs");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("JSON"), user(), "not edited");
    // Not JSON by type, not JSON at all, over the limit: each as the origin sent it, twice.
    let big = json!({"password": "x", "pad": "y".repeat(5000)}).to_string();
    let cases = [
        ("/user/text", "password=hunter2".to_string()),
        ("/user/broken", r#"{"password": "hunter2""#.into()),
        ("/user/big", big),
    ];
    for _ in 0..2 {
        for (path, want) in &cases {
            let path = *path;
            let (head, body) = tokio::task::spawn_blocking(move || raw_get(web, path)).await.expect("runs");
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert_eq!(String::from_utf8_lossy(&body), *want, "{path}");
        }
    }
    let metrics = p.metrics().await;
    let count = |outcome: &str| {
        let labels = format!(r#"filter="json_transform",route="users",direction="response",outcome="{outcome}""#);
        metric(&metrics, "portico_filter_json_bodies_total", &labels)
    };
    assert_eq!((count("not_json"), count("invalid_json"), count("too_large")), (2.0, 2.0, 2.0), "{metrics}");
    let log = p.stderr();
    assert_eq!(log.matches("json_transform on route users: a response body is not JSON (Content-Type)").count(), 1);
    assert_eq!(log.matches("json_transform on route users: a response body is not JSON;").count(), 1, "{log}");
    assert_eq!(log.matches("json_transform on route users: a response body declares more").count(), 1, "{log}");
}

#[tokio::test]
async fn the_origin_gets_the_edited_request_and_bodies_that_are_not_json_get_400() {
    let o = origin().await;
    let p = Portico::start(config(o, &order_schema())).await;
    let sent = json!({"userName": "ann", "debug": true, "items": [{"q": 1}, {"q": 2}]});
    let r = client().post(p.url("web", "/echo")).json(&sent).send().await.expect("answers");
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.expect("JSON");
    let body: Value = serde_json::from_str(seen["body"].as_str().expect("a body")).expect("JSON upstream");
    assert_eq!(body, json!({"user_name": "ann", "items": [{"qty": 1}, {"qty": 2}], "meta": {"source": "gateway"}}));
    assert_eq!(seen["content_length"], Value::Null, "the client's length is not sent with the edited body");
    assert_eq!(seen["transfer_encoding"], "chunked");

    let r = client().post(p.url("web", "/echo")).body("user=ann").send().await.expect("answers");
    assert_eq!(r.status(), 400);
    let refused: Value = r.json().await.expect("JSON");
    assert_eq!(refused["error"], "invalid_body");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("not JSON")), "{refused}");
    assert!(refused["request_id"].as_str().is_some_and(|id| !id.is_empty()));

    // A GET has no body to edit, and goes through.
    let r = client().get(p.url("web", "/echo")).send().await.expect("answers");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn json_schema_lets_matching_bodies_through_and_lists_what_is_wrong_with_the_others() {
    let o = origin().await;
    let p = Portico::start(config(o, &order_schema())).await;
    let good = json!({"customer": "ann", "items": [{"sku": "ABC-1", "qty": 2}]});
    let r = client().post(p.url("web", "/orders")).json(&good).send().await.expect("answers");
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.expect("JSON");
    assert_eq!(serde_json::from_str::<Value>(seen["body"].as_str().expect("a body")).expect("JSON"), good);
    assert_eq!(seen["content_length"], good.to_string().len().to_string(), "the body is not changed");

    let bad = json!({"items": [{"sku": "ABC-1", "qty": 0}, {"sku": "nope", "qty": 1}], "extra": 1});
    let r = client().post(p.url("web", "/orders")).json(&bad).send().await.expect("answers");
    assert_eq!(r.status(), 400);
    let refused: Value = r.json().await.expect("JSON");
    assert_eq!(refused["error"], "invalid_body");
    let mut found: Vec<(String, String)> = refused["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| (v["path"].as_str().unwrap_or("?").into(), v["keyword"].as_str().unwrap_or("?").into()))
        .collect();
    found.sort();
    let want =
        [("", "additionalProperties"), ("", "required"), ("/items/0/qty", "minimum"), ("/items/1/sku", "pattern")];
    assert_eq!(found, want.map(|(p, k)| (p.to_string(), k.to_string())), "{refused}");
    assert!(refused["violations"][0]["message"].as_str().is_some_and(|m| !m.is_empty()));

    let r = client().post(p.url("web", "/orders")).body("{").send().await.expect("answers");
    assert_eq!(r.status(), 400);
    let metrics = p.metrics().await;
    let count = |outcome: &str| {
        let labels = format!(r#"filter="json_schema",route="orders",direction="request",outcome="{outcome}""#);
        metric(&metrics, "portico_filter_json_bodies_total", &labels)
    };
    assert_eq!((count("valid"), count("invalid"), count("invalid_json")), (1.0, 1.0, 1.0), "{metrics}");
}

#[test]
fn a_bad_schema_is_refused_by_portico_t_with_the_file_and_line_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |schema: &str| {
        std::fs::write(dir.path().join("order.json"), schema).expect("write");
        let config = dir.path().join("portico.yaml");
        let yaml = "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\nupstreams: {o: {targets: [\"127.0.0.1:9\"]}}\n\
                    routes:\n  - name: orders\n    upstream: o\n    filters:\n      - json_schema: {schema_file: order.json}\n";
        std::fs::write(&config, yaml).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_portico")).args(["-t", "-c"]).arg(&config).output().expect("runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, text) = check("{\n  \"type\": \"object\",\n  \"required\": [\"id\"\n}\n");
    assert!(!ok, "{text}");
    assert!(text.contains("routes[0].filters[0].json_schema.schema_file"), "{text}");
    assert!(text.contains("order.json:4:1: the schema is not JSON"), "{text}");
    let (ok, text) = check(r#"{"type": "objekt"}"#);
    assert!(!ok && text.contains("order.json: not a valid JSON Schema"), "{text}");
    let (ok, text) = check(r#"{"type": "object"}"#);
    assert!(ok, "{text}");
}

#[tokio::test]
async fn the_example_config_edits_and_checks_as_its_comments_say() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/transform.yaml")).expect("read");
    let text = text
        .replace("127.0.0.1:8080", "127.0.0.1:$web")
        .replace("127.0.0.1:8081", "127.0.0.1:$backend")
        .replace("127.0.0.1:9901", "127.0.0.1:$admin")
        .replace("schemas/order.json", &order_schema());
    let p = Portico::start(Yaml::new(&text)).await;
    let r = client().get(p.url("web", "/users/7")).send().await.expect("answers");
    let user: Value = r.json().await.expect("JSON");
    assert_eq!(
        user,
        json!({"user_id": 7, "name": "Ann", "internal": {"team": "core"}, "orders": [{"n": 1}, {"n": 2}],
        "api_version": "2"})
    );
    let order = json!({"customer": "ann", "items": [{"sku": "ABC-1", "qty": 2}], "debug": true});
    let r = client().post(p.url("web", "/orders")).json(&order).send().await.expect("answers");
    assert_eq!(r.status(), 201);
    let r = client().post(p.url("web", "/orders")).json(&json!({"items": [{"sku": "abc", "qty": 0}]})).send().await;
    let r = r.expect("answers");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("JSON")["violations"].as_array().map(Vec::len), Some(3));
}
