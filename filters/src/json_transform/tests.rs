use super::*;
use crate::testkit::{self, FlowExt, TestRequest};
use crate::{FilterChain, Reject};
use serde_json::{json, Value};
use std::sync::Arc;

fn build(yaml: &str) -> JsonTransform {
    testkit::build(yaml, &testkit::context()).expect("valid config")
}

fn chain(yaml: &str) -> FilterChain {
    FilterChain::new(vec![Arc::new(build(yaml)) as Arc<dyn Filter>])
}

/// Runs the edits of `yaml`'s response side over `body`, as the filter does.
fn edit(yaml: &str, body: &str) -> Result<Value, String> {
    let f = build(yaml);
    let side = f.response.as_ref().or(f.request.as_ref()).expect("some edits");
    let out = side.edit(body.as_bytes())?;
    Ok(serde_json::from_slice(&out).expect("the filter writes JSON"))
}

/// A POST with this body, through the request phase and the upstream header, as the core runs
/// them: the request, the header that goes upstream.
async fn post(chain: &FilterChain, body: &str, headers: &[(&str, &str)]) -> (TestRequest, RequestHeader) {
    let mut raw = format!("POST /orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    let mut request = TestRequest::from_bytes(raw.as_bytes()).await.expect("a request");
    request.ctx.route = "orders".into();
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let mut upstream = request.header().clone();
    chain.upstream_request(&mut upstream, &mut request.ctx).expect("runs");
    (request, upstream)
}

/// Sends `chunks` through the chain's request-body phases: what went upstream, or the refusal.
fn send_body(chain: &FilterChain, ctx: &mut RequestCtx, chunks: &[&str]) -> Result<String, Reject> {
    let mut sent = String::new();
    for (i, c) in chunks.iter().enumerate() {
        let end = i + 1 == chunks.len();
        let mut body = Some(Bytes::copy_from_slice(c.as_bytes()));
        match chain.request_body(&mut body, end, ctx).expect("runs") {
            Flow::Continue => {}
            Flow::Reject(r) => return Err(r),
            other => panic!("a body phase does not answer: {other:?}"),
        }
        let chunk = body.expect("the request side never ends the body early (no `None`)");
        sent.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
    Ok(sent)
}

/// Runs the response header and then `chunks` through the chain's response phases: the header
/// and the body the client gets.
fn respond(
    chain: &FilterChain,
    ctx: &mut RequestCtx,
    status: u16,
    headers: &[(&str, &str)],
    chunks: &[&str],
) -> (ResponseHeader, String) {
    let mut resp = ResponseHeader::build(status, None).expect("a status");
    for (k, v) in headers {
        resp.insert_header(k.to_string(), v.to_string()).expect("a header");
    }
    chain.response(&mut resp, ctx).expect("runs");
    let mut sent = String::new();
    for (i, c) in chunks.iter().enumerate() {
        let mut body = Some(Bytes::copy_from_slice(c.as_bytes()));
        chain.response_body(&mut body, i + 1 == chunks.len(), ctx).expect("runs");
        if let Some(b) = body {
            sent.push_str(std::str::from_utf8(&b).expect("UTF-8"));
        }
    }
    (resp, sent)
}

// === the edits ===

#[test]
fn edits_reach_into_nested_objects() {
    let yaml = r#"{response: {remove: [password, "internal.cost"], rename: {id: user_id, "profile.nick": name},
                  set: {api_version: "2", "meta.source.name": gateway}}}"#;
    let body = r#"{"id": 7, "password": "x", "internal": {"cost": 3, "team": "a"},
                   "profile": {"nick": "bo", "age": 4}, "api_version": "1"}"#;
    let want = json!({"user_id": 7, "internal": {"team": "a"}, "profile": {"name": "bo", "age": 4},
                      "api_version": "2", "meta": {"source": {"name": "gateway"}}});
    assert_eq!(edit(yaml, body), Ok(want));
}

#[test]
fn edits_reach_every_element_of_arrays() {
    let yaml = r#"{response: {remove: ["items[].secret", "[].x"], rename: {"items[].qty": quantity},
                  set: {"items[].checked": true, "groups[][].g": 1}}}"#;
    let body = r#"{"items": [{"qty": 1, "secret": "s"}, {"qty": 2}, "not an object"],
                   "groups": [[{}, {"g": 0}], []], "other": [1, 2]}"#;
    let want = json!({"items": [{"quantity": 1, "checked": true}, {"quantity": 2, "checked": true}, "not an object"],
                      "groups": [[{"g": 1}, {"g": 1}], []], "other": [1, 2]});
    assert_eq!(edit(yaml, body), Ok(want));
    // A body that is an array: `[].field`.
    let root = edit("{response: {remove: ['[].x']}}", r#"[{"x": 1, "y": 2}, {"x": 3}]"#);
    assert_eq!(root, Ok(json!([{"y": 2}, {}])));
}

#[test]
fn edits_run_in_order_on_what_the_earlier_ones_left() {
    // The rename takes `id` over `user_id`; the set then writes into the renamed key.
    let yaml = "{response: {rename: {id: user_id, old: meta}, set: {'meta.v': 2}}}";
    let body = r#"{"id": 1, "user_id": 9, "old": {"v": 1, "w": 0}}"#;
    assert_eq!(edit(yaml, body), Ok(json!({"user_id": 1, "meta": {"v": 2, "w": 0}})));
    // Missing keys are left missing by remove and rename; a set through a non-object is skipped.
    let yaml = "{response: {remove: [a.b], rename: {c: d}, set: {'s.t': 1}}}";
    assert_eq!(edit(yaml, r#"{"s": "text"}"#), Ok(json!({"s": "text"})));
    // Bodies that are not objects are left as they are.
    assert_eq!(edit(yaml, "42"), Ok(json!(42)));
}

#[test]
fn keys_and_values_are_kept_exactly() {
    let yaml = "{response: {remove: [gone]}}";
    let body = r#"{"k\"ey\u00e9": "v\n", "gone": 1, "n": 1.5e300, "big": 123456789012345678901234567890, "u": "é"}"#;
    let f = build(yaml);
    let out = f.response.as_ref().expect("edits").edit(body.as_bytes()).expect("JSON");
    let out = std::str::from_utf8(&out).expect("UTF-8");
    assert_eq!(
        out, r#"{"k\"eyé":"v\n","n":1.5e300,"big":123456789012345678901234567890,"u":"é"}"#,
        "untouched values are copied, not re-encoded"
    );
}

#[test]
fn bodies_that_are_not_json_are_errors() {
    for bad in ["", "{", r#"{"a": 1} trailing"#, r#"{"a": tru}"#, "{'a': 1}", "[1,]", "\u{0}"] {
        assert!(edit("{response: {remove: [a]}}", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn config_errors_name_the_field() {
    let err = |yaml: &str| testkit::build::<JsonTransform>(yaml, &testkit::context()).err().map(|e| e.path);
    assert_eq!(err("{response: {remove: [ok, 'a..b']}}"), Some("response.remove[1]".into()));
    assert_eq!(err("{request: {rename: {a: 'b.c'}}}"), Some("request.rename.a".into()));
    assert_eq!(err("{response: {set: {'items[]': 1}}}"), Some("response.set.items[]".into()));
    assert_eq!(err("{response: {only_status: [200, 42], remove: [a]}}"), Some("response.only_status".into()));
    assert_eq!(err("{response: {remove: [a], max_body_bytes: 0}}"), Some("response.max_body_bytes".into()));
    assert_eq!(err("{response: {remvoe: [a]}}"), Some("response.remvoe".into()), "unknown fields are refused");
    assert_eq!(err("{}"), Some(String::new()), "no edits at all");
}

// === the request side, through the phases ===

#[tokio::test]
async fn request_bodies_are_held_edited_and_sent_without_their_length() {
    let chain = chain("{request: {remove: [debug], rename: {userName: user_name}, set: {'meta.source': gateway}}}");
    let body = r#"{"userName": "ann", "debug": true}"#;
    let (mut request, upstream) = post(&chain, body, &[]).await;
    assert!(upstream.headers.get("content-length").is_none(), "the edited body's length differs");
    let (first, rest) = body.split_at(10);
    let sent = send_body(&chain, &mut request.ctx, &[first, rest]).expect("JSON");
    let sent: Value = serde_json::from_str(&sent).expect("JSON went upstream");
    assert_eq!(sent, json!({"user_name": "ann", "meta": {"source": "gateway"}}));
}

#[tokio::test]
async fn request_bodies_that_are_not_json_are_refused() {
    let chain = chain("{request: {remove: [debug]}}");
    let (mut request, _) = post(&chain, "name=ann", &[("content-type", "application/x-www-form-urlencoded")]).await;
    let refused = send_body(&chain, &mut request.ctx, &["name=ann"]).expect_err("not JSON");
    assert_eq!((refused.status, refused.error), (400, "invalid_body"));
    assert!(refused.message.contains("not JSON"), "{}", refused.message);
}

#[tokio::test]
async fn large_request_bodies_go_on_untouched() {
    let chain = chain("{request: {remove: [debug], max_body_bytes: 16}}");
    // Declared too large: nothing is held and the length stays.
    let body = r#"{"debug": true, "pad": "xxxxxxxx"}"#;
    let (mut request, upstream) = post(&chain, body, &[]).await;
    assert_eq!(upstream.headers["content-length"], body.len().to_string().as_str());
    assert_eq!(send_body(&chain, &mut request.ctx, &[body]).expect("untouched"), body);
    // Streamed past the limit: what was held goes on, then the rest.
    let raw = "POST / HTTP/1.1\r\nHost: l\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut request = TestRequest::from_bytes(raw.as_bytes()).await.expect("a request");
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let mut upstream = request.header().clone();
    chain.upstream_request(&mut upstream, &mut request.ctx).expect("runs");
    let sent = send_body(&chain, &mut request.ctx, &[r#"{"debug": "#, r#"true, "pad": "#, r#""xxxxxxxx"}"#]);
    assert_eq!(sent.expect("untouched"), body);
}

#[tokio::test]
async fn requests_without_a_body_are_left_alone() {
    let chain = chain("{request: {set: {a: 1}}}");
    let mut request = TestRequest::get("/", &[]).await;
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let mut body = None;
    chain.request_body(&mut body, true, &mut request.ctx).expect("runs").expect_continue();
    assert!(body.is_none(), "no body is made up");
}

// === the response side, through the phases ===

#[tokio::test]
async fn response_bodies_are_edited_and_sent_chunked() {
    let chain = chain("{response: {remove: [password], only_status: [200]}}");
    let mut request = TestRequest::get("/me", &[]).await;
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let upstream = {
        let mut h = request.header().clone();
        h.insert_header("accept-encoding", "gzip").expect("a header");
        chain.upstream_request(&mut h, &mut request.ctx).expect("runs");
        h
    };
    assert_eq!(upstream.headers["accept-encoding"], "identity", "the body must be readable");
    let body = r#"{"name": "ann", "password": "hunter2"}"#;
    let len = body.len().to_string();
    let headers = [("content-type", "application/json"), ("content-length", len.as_str()), ("etag", "\"v1\"")];
    let (resp, sent) = respond(&chain, &mut request.ctx, 200, &headers, &[&body[..9], &body[9..]]);
    assert!(resp.headers.get("content-length").is_none());
    assert_eq!(resp.headers["transfer-encoding"], "chunked");
    assert_eq!(resp.headers["etag"], "W/\"v1\"", "the same resource, not the same bytes");
    assert_eq!(sent, r#"{"name": "ann"}"#.replace(' ', ""));
}

#[tokio::test]
async fn only_some_responses_are_edited() {
    let chain = chain("{response: {remove: [password], only_status: [200], max_body_bytes: 64}}");
    let body = r#"{"password": "x"}"#;
    let len = body.len().to_string();
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(u16, Headers, &str)] = &[
        (404, &[("content-type", "application/json")], "a status not listed"),
        (200, &[("content-type", "text/html")], "not JSON by its type"),
        (200, &[("content-type", "application/json"), ("content-encoding", "gzip")], "compressed"),
        (200, &[("content-type", "application/json"), ("content-length", "65")], "declared too large"),
    ];
    for (status, headers, why) in cases {
        let mut request = TestRequest::get("/", &[]).await;
        chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
        let mut headers = headers.to_vec();
        if !headers.iter().any(|(k, _)| *k == "content-length") {
            headers.push(("content-length", &len));
        }
        let (resp, sent) = respond(&chain, &mut request.ctx, *status, &headers, &[body]);
        assert_eq!(sent, body, "{why}");
        assert!(resp.headers.get("content-length").is_some(), "{why}: the length stays");
    }
    // HEAD responses have no body to edit.
    let mut request = TestRequest::with_method("HEAD", "/", &[]).await;
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let (resp, _) = respond(&chain, &mut request.ctx, 200, &[("content-length", "17")], &[]);
    assert_eq!(resp.headers["content-length"], "17");
}

#[tokio::test]
async fn responses_found_not_json_or_too_large_go_on_as_they_came() {
    let chain = chain("{response: {remove: [password], max_body_bytes: 32}}");
    let mut request = TestRequest::get("/", &[]).await;
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let (_, sent) = respond(&chain, &mut request.ctx, 200, &[], &["not ", "json"]);
    assert_eq!(sent, "not json");
    let mut request = TestRequest::get("/", &[]).await;
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let big = format!(r#"{{"password": "x", "pad": "{}"}}"#, "y".repeat(40));
    let (a, b) = big.split_at(20);
    let (resp, sent) = respond(&chain, &mut request.ctx, 200, &[("content-type", "application/json")], &[a, b]);
    assert_eq!(sent, big, "everything, in order");
    assert_eq!(resp.headers["transfer-encoding"], "chunked", "no length was declared to keep");
}

#[tokio::test]
async fn http2_and_http10_clients_get_no_chunked_header() {
    let chain = chain("{response: {remove: [a]}}");
    let mut request = TestRequest::from_bytes(b"GET / HTTP/1.0\r\n\r\n").await.expect("a request");
    chain.request(&mut request.session, &mut request.ctx).await.expect("runs").expect_continue();
    let (resp, sent) = respond(&chain, &mut request.ctx, 200, &[("content-length", "8")], &[r#"{"a": 1}"#]);
    assert!(resp.headers.get("transfer-encoding").is_none() && resp.headers.get("content-length").is_none());
    assert_eq!(sent, "{}");
}

#[test]
fn responses_to_requests_the_filter_never_saw_are_left_alone() {
    // An earlier filter refused the request, or no route matched: the answer is Portico's own.
    let chain = chain("{response: {remove: [a]}}");
    let mut ctx = RequestCtx::default();
    let headers = [("content-type", "application/json"), ("content-length", "8")];
    let (resp, sent) = respond(&chain, &mut ctx, 401, &headers, &[r#"{"a": 1}"#]);
    assert_eq!(resp.headers["content-length"], "8");
    assert_eq!(sent, r#"{"a": 1}"#);
}

// === the one-pass walk: what it refuses, what it keeps ===

/// Where a bad fragment can sit: the whole body, a value no edit reaches (skipped), a value an
/// edit walks into, an element of an array an edit walks into.
fn placements(fragment: &str) -> [String; 4] {
    [
        fragment.to_string(),
        format!(r#"{{"keep": {fragment}, "gone": 1}}"#),
        format!(r#"{{"walked": {{"x": 1, "v": {fragment}}}}}"#),
        format!(r#"{{"items": [{{"x": 1}}, {fragment}]}}"#),
    ]
}

const WALKS: &str = "{response: {remove: [gone, walked.x, 'items[].x']}}";

#[test]
fn bodies_that_are_not_json_are_errors_wherever_the_fault_is() {
    let bad_values = [
        r#""bad \x escape""#,
        r#""short \u12 escape""#,
        "\"a control \u{1} character\"",
        "\"a raw\nnewline\"",
        r#""unterminated"#,
        "01",
        "1.",
        "-",
        ".5",
        "+1",
        "1e",
        "1e+",
        "-01",
        "0x1",
        "tru",
        "nul",
        "NaN",
        "Infinity",
        "[1, 2",
        "[1,]",
        "[,1]",
        r#"{"a": 1"#,
        r#"{"a" 1}"#,
        r#"{"a": }"#,
        r#"{"a": 1,}"#,
        "{,}",
        "{1: 2}",
        "{'a': 1}",
        r#"{"k\q": 1}"#,
    ];
    for fragment in bad_values {
        for body in placements(fragment) {
            assert!(edit(WALKS, &body).is_err(), "{body:?}");
        }
    }
    for body in [r#"{"a": 1} x"#, r#"{"a": 1}}"#, "[] []", "1 2", "\"a\" \"b\"", " ", "{\"a\": 1}\u{0}"] {
        assert!(edit(WALKS, body).is_err(), "{body:?}");
    }
}

#[test]
fn the_walk_accepts_what_serde_json_accepts() {
    let good = [
        r#"{"a": [1, -0, 0.5, -12.25e+3, 1E-2, 10, true, false, null, "", "\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"]}"#,
        " \t\r\n{ \"k\" : { } , \"l\" : [ ] } \n",
        r#"{"é": "ü", "": 0, "x": {"y": {"z": [[], [{}]]}}}"#,
        r#""just a string""#,
        "-0.0e0",
        "[]",
    ];
    for body in good {
        for body in placements(body) {
            let checked = serde_json::from_str::<Box<serde_json::value::RawValue>>(&body);
            assert_eq!(edit(WALKS, &body).is_ok(), checked.is_ok(), "{body:?}");
        }
    }
}

#[test]
fn nesting_is_bounded_like_serde_json() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deepest = nested(127);
    assert!(serde_json::from_str::<Value>(&deepest).is_ok());
    assert!(serde_json::from_str::<Value>(&nested(128)).is_err());
    assert!(edit(WALKS, &deepest).is_ok());
    assert!(edit(WALKS, &nested(128)).is_err());
    // Counted through the levels edits walk into as well as the ones skipped; hostile depth is
    // refused, not a stack overflow.
    let deep = |n: usize| format!(r#"{{"walked": {{"v": {}}}}}"#, nested(n));
    assert!(edit(WALKS, &deep(125)).is_ok());
    assert!(edit(WALKS, &deep(126)).is_err());
    for body in placements(&nested(100_000)) {
        assert!(edit(WALKS, &body).is_err(), "{}", &body[..20]);
    }
}

#[test]
fn untouched_members_are_copied_byte_for_byte_and_edited_objects_written_compact() {
    let f = build("{response: {remove: [gone, 'items[].secret'], set: {'items[].n': 1}}}");
    let out = |body: &str| {
        let out = f.response.as_ref().expect("edits").edit(body.as_bytes()).expect("JSON");
        String::from_utf8(out.to_vec()).expect("UTF-8")
    };
    // Compact: runs of untouched members are copied as they are.
    let compact = r#"{"a":1.50,"gone":2,"b":"x\u0041","items":[{"secret":1,"k":[1, 2]},{"k":{"z" : 0}}],"c":null}"#;
    let want = r#"{"a":1.50,"b":"x\u0041","items":[{"k":[1, 2],"n":1},{"k":{"z" : 0},"n":1}],"c":null}"#;
    assert_eq!(out(compact), want);
    // Pretty: the members of edited objects are written anew, their values as they came.
    let pretty = "{\n  \"a\" : 1.50,\n  \"gone\": 2,\n  \"b\": [ 1 ],\n  \"k\\u0065y\": {\"z\" : 0}\n}\n";
    assert_eq!(out(pretty), r#"{"a":1.50,"b":[ 1 ],"key":{"z" : 0}}"#);
    // Keys present more than once are edited everywhere; the others keep their places.
    assert_eq!(out(r#"{"gone":1,"a":1,"gone":2,"a":2}"#), r#"{"a":1,"a":2}"#);
}

#[test]
fn renames_onto_keys_before_or_after_them_in_the_body() {
    // The walk into `a` is decided as `a` is read, before it is known whether `c` (renamed onto
    // it) is further on; either order gives the same result.
    let yaml = "{response: {remove: [a.x], rename: {c: a}, set: {'a.v': 1}}}";
    for body in [r#"{"a": {"x": 1, "k": 0}, "c": {"x": 2}}"#, r#"{"c": {"x": 2}, "a": {"x": 1, "k": 0}}"#] {
        assert_eq!(edit(yaml, body), Ok(json!({"a": {"x": 2, "v": 1}})), "{body}");
    }
    assert_eq!(edit(yaml, r#"{"a": {"x": 1, "k": 0}}"#), Ok(json!({"a": {"k": 0, "v": 1}})));
    assert_eq!(edit(yaml, r#"{"c": 5}"#), Ok(json!({"a": 5})), "a set through a non-object is skipped");
    // A rename whose new name is walked into by a set, with the old key absent or present.
    let yaml = "{response: {rename: {old: meta}, set: {'meta.v': 2}}}";
    assert_eq!(edit(yaml, r#"{"meta": {"w": 0}, "old": {"v": 1}}"#), Ok(json!({"meta": {"v": 2}})));
    assert_eq!(edit(yaml, r#"{"meta": {"w": 0}}"#), Ok(json!({"meta": {"w": 0, "v": 2}})));
}

#[test]
fn arrays_at_edited_levels_and_objects_under_each() {
    let yaml = "{response: {remove: ['[].a', '[][].b']}}";
    let body = r#"[{"a": 1, "b": 2}, [{"b": 3, "c": 4}, 5], "s", 6]"#;
    assert_eq!(edit(yaml, body), Ok(json!([{"b": 2}, [{"c": 4}, 5], "s", 6])));
    // An object where the program expects an array (and the other way round) is left alone.
    assert_eq!(edit(yaml, r#"{"a": 1}"#), Ok(json!({"a": 1})));
    assert_eq!(edit("{response: {remove: [a]}}", r#"[{"a": 1}]"#), Ok(json!([{"a": 1}])));
}

#[test]
fn long_keys_are_matched_by_name_not_length() {
    let (gone, kept) = ("g".repeat(70), "k".repeat(80));
    let yaml = format!("{{response: {{remove: [{gone}, 'items[].{gone}']}}}}");
    let body = format!(r#"{{"{gone}": 1, "{kept}": 2, "items": [{{"{gone}": 3, "{kept}": 4}}]}}"#);
    assert_eq!(edit(&yaml, &body), Ok(json!({kept.clone(): 2, "items": [{kept: 4}]})));
}

#[test]
fn every_one_byte_change_gets_serde_jsons_verdict() {
    // Each body, then each copy with one byte replaced, inserted or deleted, through a program
    // that streams every level and one that lists the top level: refused exactly when
    // serde_json refuses it (and what is accepted comes out as JSON, which `edit` checks).
    let bodies = [
        r#"{"gone":1,"keep":{"a":[1,-2.5e3,"x\n",true,null,false,{}],"b":{"c":"d"}},"walked":{"x":1,"v":[{"y":"z"}],"w":"s"},"items":[{"x":1,"k":"v","n":{"m":[0.5]}},{"x":2},3],"t":"tail"}"#,
        "{ \"gone\" : [ 1 , 2 ] ,\n \"walked\" : { \"x\" : \"\\u00e9\" , \"v\" : -0 } , \"items\" : [ { \"k\" : 1E+2 } ] }",
        r#"[{"x":1,"y":[[],{}]},"s",10]"#,
    ];
    let bytes =
        [b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'\n', b'0', b'1', b'-', b'.', b'e', b'+', b'u'];
    let programs = [WALKS, "{response: {remove: [gone, 'items[].x'], rename: {keep: kept}, set: {'walked.s': 1}}}"];
    let check = |body: &[u8]| {
        let Ok(body) = std::str::from_utf8(body) else { return };
        let verdict = serde_json::from_str::<Box<serde_json::value::RawValue>>(body).is_ok();
        for program in programs {
            assert_eq!(edit(program, body).is_ok(), verdict, "{program} on {body:?}");
        }
    };
    for body in bodies {
        let body = body.as_bytes();
        check(body);
        for i in 0..=body.len() {
            for &b in &bytes {
                let inserted = [&body[..i], &[b], &body[i..]].concat();
                check(&inserted);
                if i < body.len() {
                    let mut replaced = body.to_vec();
                    replaced[i] = b;
                    check(&replaced);
                }
            }
            if i < body.len() {
                check(&[&body[..i], &body[i + 1..]].concat());
            }
        }
    }
}

#[test]
fn the_document_is_written_around_its_largest_walked_value() {
    // The top level lists (a rename, a set); `b` is walked into. The text before `b` fits the
    // room left before it, or (made long by a set) does not: the same document either way.
    let long = "x".repeat(200);
    for (a, want_a) in [("short", json!("short")), (long.as_str(), json!(long))] {
        let yaml = format!("{{response: {{remove: [b.x], rename: {{c: d}}, set: {{a: {a}}}}}}}");
        let body = r#"{"a": 1, "c": 2, "b": {"x": 1, "y": [1, 2]}, "e": 3}"#;
        let want = json!({"a": want_a, "d": 2, "b": {"y": [1, 2]}, "e": 3});
        assert_eq!(edit(&yaml, body), Ok(want));
        let f = build(&yaml);
        let out = f.response.as_ref().expect("edits").edit(body.as_bytes()).expect("JSON");
        assert!(out.starts_with(b"{\"a\":"), "{:?}", String::from_utf8_lossy(&out));
    }
}

#[test]
fn json_types_are_told_by_their_essence_in_any_case() {
    let is = |t: &'static str| response::is_json(&http::HeaderValue::from_static(t));
    for t in
        ["application/json", "Application/JSON; charset=utf-8", "text/json", "application/problem+json", " x/y+JSON "]
    {
        assert!(is(t), "{t}");
    }
    for t in ["text/html", "application/jsonx", "json", "application/json-seq", ""] {
        assert!(!is(t), "{t}");
    }
}
