use super::*;
use crate::testkit::{self, FlowExt, TestRequest};
use crate::FilterChain;
use serde_json::json;
use std::sync::Arc;

const ORDER: &str = r#"{schema: {type: object, required: [id, items],
    properties: {id: {type: string}, items: {type: array, minItems: 1,
      items: {type: object, required: [qty], properties: {qty: {type: integer, minimum: 1}}}}}}}"#;

fn chain(yaml: &str) -> FilterChain {
    let f: JsonSchema = testkit::build(yaml, &testkit::context()).expect("valid config");
    FilterChain::new(vec![Arc::new(f) as Arc<dyn Filter>])
}

/// A request with `body` (sent in two chunks) through the chain's phases: what went upstream,
/// or the refusal.
async fn send(chain: &FilterChain, method: &str, body: &str) -> Result<String, Reject> {
    let raw = format!("{method} /orders HTTP/1.1\r\nHost: l\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let mut request = TestRequest::from_bytes(raw.as_bytes()).await.expect("a request");
    if let Flow::Reject(r) = chain.request(&mut request.session, &mut request.ctx).await.expect("runs") {
        return Err(r);
    }
    let mut upstream = request.header().clone();
    chain.upstream_request(&mut upstream, &mut request.ctx).expect("runs");
    let (a, b) = body.split_at(body.len() / 2);
    let mut sent = String::new();
    for (chunk, end) in [(a, false), (b, true)] {
        let mut body = Some(Bytes::copy_from_slice(chunk.as_bytes()));
        if let Flow::Reject(r) = chain.request_body(&mut body, end, &mut request.ctx).expect("runs") {
            assert!(end || sent.is_empty(), "nothing went upstream before the refusal");
            return Err(r);
        }
        sent.push_str(std::str::from_utf8(&body.expect("never ends early")).expect("UTF-8"));
        assert!(end || sent.is_empty(), "the body is held back until it is checked");
    }
    Ok(sent)
}

#[tokio::test]
async fn matching_bodies_go_upstream_whole() {
    let body = r#"{"id": "o1", "items": [{"qty": 2}]}"#;
    assert_eq!(send(&chain(ORDER), "POST", body).await.expect("valid"), body);
}

#[tokio::test]
async fn bodies_that_do_not_match_are_refused_with_every_violation() {
    let body = r#"{"items": [{"qty": 0}, {"qty": "two"}, {}]}"#;
    let refused = send(&chain(ORDER), "POST", body).await.expect_err("invalid");
    assert_eq!((refused.status, refused.error), (400, "invalid_body"));
    let [("violations", serde_json::Value::Array(violations))] = refused.details.as_slice() else {
        panic!("violations listed: {:?}", refused.details);
    };
    let mut seen: Vec<(String, String)> = violations
        .iter()
        .map(|v| (v["path"].as_str().unwrap_or("").into(), v["keyword"].as_str().unwrap_or("").into()))
        .collect();
    seen.sort();
    let want = [("", "required"), ("/items/0/qty", "minimum"), ("/items/1/qty", "type"), ("/items/2", "required")];
    assert_eq!(seen, want.map(|(p, k)| (p.to_string(), k.to_string())));
    assert!(violations.iter().all(|v| !v["message"].as_str().unwrap_or("").contains("two")), "values are masked");
    assert!(refused.message.contains("4 violation"), "{}", refused.message);
}

#[tokio::test]
async fn violations_are_bounded() {
    let chain = chain("{schema: {type: array, items: {type: integer}}}");
    let body = serde_json::to_string(&vec!["x"; 50]).expect("JSON");
    let refused = send(&chain, "PUT", &body).await.expect_err("invalid");
    let violations = refused.details[0].1.as_array().map(Vec::len);
    assert_eq!(violations, Some(MAX_VIOLATIONS));
    assert!(refused.message.contains("50 violation(s) (the first 20)"), "{}", refused.message);
}

#[tokio::test]
async fn bodies_that_are_not_json_or_too_large_are_refused() {
    let refused = send(&chain(ORDER), "POST", "id=o1").await.expect_err("not JSON");
    assert_eq!((refused.status, refused.error), (400, "invalid_body"));
    assert!(refused.details.is_empty());
    let refused = send(&chain(ORDER), "POST", "").await.expect_err("a POST without a body");
    assert_eq!(refused.status, 400);
    let small = chain("{schema: {type: object}, max_body_bytes: 8}");
    let refused = send(&small, "POST", r#"{"a": "0123456789"}"#).await.expect_err("too large");
    assert_eq!((refused.status, refused.error), (413, "payload_too_large"));
}

#[tokio::test]
async fn requests_without_a_body_are_not_checked() {
    let chain = chain(ORDER);
    let mut request = TestRequest::get("/orders", &[]).await;
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let mut body = None;
    chain.request_body(&mut body, true, &mut request.ctx).expect("runs").expect_continue();
    assert!(body.is_none());
}

#[test]
fn schema_files_resolve_and_bad_ones_are_config_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("portico-json-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    std::fs::write(dir.join("ok.json"), json!({"type": "object"}).to_string()).expect("write");
    std::fs::write(dir.join("syntax.json"), "{\n  \"type\": \"object\",\n  oops\n}").expect("write");
    std::fs::write(dir.join("schema.json"), r#"{"type": "objekt"}"#).expect("write");
    std::fs::write(dir.join("remote.json"), r#"{"$ref": "https://example.com/s.json"}"#).expect("write");
    let cx = BuildContext { base_dir: &dir, ..testkit::context() };
    let build = |file: &str| testkit::build::<JsonSchema>(&format!("{{schema_file: {file}}}"), &cx).map(|_| ());
    assert!(build("ok.json").is_ok());
    let err = build("missing.json").expect_err("unreadable");
    assert_eq!(err.path, "schema_file");
    assert!(err.message.contains("missing.json") && err.message.contains("cannot read"), "{}", err.message);
    let err = build("syntax.json").expect_err("not JSON");
    assert!(err.message.contains("syntax.json:3:3: the schema is not JSON"), "{}", err.message);
    let err = build("schema.json").expect_err("not a schema");
    assert!(err.message.contains("schema.json: not a valid JSON Schema"), "{}", err.message);
    let err = build("remote.json").expect_err("nothing is fetched");
    assert!(err.message.contains("remote.json"), "{}", err.message);
    let _ = std::fs::remove_dir_all(&dir);

    let err = testkit::build::<JsonSchema>("{}", &testkit::context()).expect_err("no schema");
    assert!(err.message.contains("schema_file or as schema"));
    let both = "{schema: {}, schema_file: ok.json}";
    assert!(testkit::build::<JsonSchema>(both, &testkit::context()).is_err());
    let err = testkit::build::<JsonSchema>("{schema: {minimum: x}}", &testkit::context()).expect_err("bad");
    assert_eq!(err.path, "schema");
}
