use super::*;
use crate::testkit::{self, FlowExt, TestRequest};
use base64::Engine;

fn filter() -> GrpcWeb {
    testkit::build("{}", &testkit::context()).expect("valid")
}

/// A gRPC-Web request with `content-type`, through the request phase.
async fn call(content_type: &str) -> TestRequest {
    let mut r = TestRequest::with_method("POST", "/pkg.Svc/Call", &[("content-type", content_type)]).await;
    r.request(&filter()).await.expect_continue();
    r
}

fn grpc_response() -> ResponseHeader {
    let mut resp = ResponseHeader::build(200, None).expect("response");
    resp.insert_header("content-type", "application/grpc+proto").expect("header");
    resp
}

fn trailers() -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static("0"));
    t
}

#[test]
fn config_has_no_keys() {
    assert!(testkit::build::<GrpcWeb>("{mode: text}", &testkit::context()).is_err());
}

#[tokio::test]
async fn binary_requests_go_upstream_as_grpc_and_trailers_end_the_body() {
    let f = filter();
    let mut r = call("application/grpc-web+proto").await;
    let up = r.upstream_request(&f);
    assert_eq!(up.headers["content-type"], "application/grpc+proto");
    assert_eq!(up.headers["te"], "trailers");
    let resp = r.response_to(&f, grpc_response());
    assert_eq!(resp.headers["content-type"], "application/grpc-web+proto");
    let mut body = Some(Bytes::from_static(b"\x00\x00\x00\x00\x01\x08"));
    f.response_body(&mut body, false, &mut r.ctx).expect("body");
    assert_eq!(body.as_deref(), Some(&b"\x00\x00\x00\x00\x01\x08"[..]), "frames pass as they are");
    let last = f.response_trailers(&mut trailers(), &mut r.ctx).expect("trailers").expect("a frame");
    assert_eq!(&last[..], b"\x80\x00\x00\x00\x0fgrpc-status:0\r\n");
}

#[tokio::test]
async fn text_mode_decodes_requests_and_encodes_responses_in_any_chunking() {
    let f = filter();
    let mut r = call("application/grpc-web-text").await;
    assert_eq!(r.upstream_request(&f).headers["content-type"], "application/grpc");
    // "AAAAAAMKAWE=" is the frame 00 00000003 0a 01 61; sent as 5 + 7 characters.
    let mut out = Vec::new();
    for (piece, end) in [("AAAAA", false), ("AMKAWE=", true)] {
        let mut body = Some(Bytes::from(piece));
        f.edit_request_body(&mut body, end, &mut r.ctx).expect("base64");
        out.extend_from_slice(&body.unwrap_or_default());
    }
    assert_eq!(out, b"\x00\x00\x00\x00\x03\x0a\x01a");
    // Two messages each encoded on their own, padding between them, decode too.
    let mut r2 = call("application/grpc-web-text+proto").await;
    let mut body = Some(Bytes::from("AAAAAAEI\nAAAAAAA="));
    f.edit_request_body(&mut body, true, &mut r2.ctx).expect("base64");
    assert_eq!(body.as_deref(), Some(&b"\x00\x00\x00\x00\x01\x08\x00\x00\x00\x00\x00"[..]));

    let resp = r.response_to(&f, grpc_response());
    assert_eq!(resp.headers["content-type"], "application/grpc-web-text+proto");
    let mut text = Vec::new();
    for chunk in [&b"\x00\x00\x00"[..], b"\x00\x02", b"\x08\x01"] {
        let mut body = Some(Bytes::copy_from_slice(chunk));
        f.response_body(&mut body, false, &mut r.ctx).expect("body");
        text.extend_from_slice(&body.unwrap_or_default());
    }
    text.extend_from_slice(&f.response_trailers(&mut trailers(), &mut r.ctx).expect("ok").expect("the end"));
    let decoded = base64::engine::general_purpose::STANDARD.decode(&text).expect("one base64 text");
    assert_eq!(decoded, b"\x00\x00\x00\x00\x02\x08\x01\x80\x00\x00\x00\x0fgrpc-status:0\r\n");
    let mut bad = Some(Bytes::from("!!!!"));
    assert!(f.edit_request_body(&mut bad, true, &mut r2.ctx).is_err(), "not base64: refused");
}

#[tokio::test]
async fn plain_http_from_the_upstream_becomes_a_grpc_status() {
    let f = filter();
    let mut r = call("application/grpc-web").await;
    let mut upstream = ResponseHeader::build(503, None).expect("response");
    upstream.insert_header("content-type", "text/html").expect("header");
    upstream.insert_header("content-length", "120").expect("header");
    let resp = r.response_to(&f, upstream);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.headers["grpc-status"], "14", "503 is UNAVAILABLE");
    assert_eq!(resp.headers["grpc-message"], "the upstream answered HTTP 503");
    assert_eq!(resp.headers["content-type"], "application/grpc-web+proto");
    assert_eq!(resp.headers["content-length"], "0");
    let mut body = Some(Bytes::from_static(b"<html>down</html>"));
    f.response_body(&mut body, true, &mut r.ctx).expect("body");
    assert_eq!(body, None, "the page is dropped");
}

#[tokio::test]
async fn other_requests_pass_untouched() {
    let f = filter();
    let mut r = call("application/json").await;
    let up = r.upstream_request(&f);
    assert_eq!(up.headers["content-type"], "application/json");
    assert!(up.headers.get("te").is_none());
    let resp = r.response(&f, 503);
    assert!(resp.headers.get("grpc-status").is_none());
    assert_eq!(
        response_content_type(b"application/grpc-web-text"),
        Some(HeaderValue::from_static("application/grpc-web-text+proto"))
    );
    assert_eq!(response_content_type(b"application/grpc"), None);
}

#[test]
fn statuses_map_and_messages_are_percent_encoded() {
    assert_eq!(Code::from_http(401), Code::Unauthenticated);
    assert_eq!(Code::from_http(404), Code::Unimplemented);
    assert_eq!(Code::from_http(429), Code::ResourceExhausted);
    assert_eq!(Code::from_http(504), Code::DeadlineExceeded);
    assert_eq!(Code::from_name("resource_exhausted"), Some(Code::ResourceExhausted));
    assert_eq!(Code::from_header(&HeaderValue::from_static("14")), Some(Code::Unavailable));
    assert_eq!(Code::from_header(&HeaderValue::from_static("17")), None);
    assert_eq!(status::encode_message("50% über"), "50%25 %C3%BCber");
    assert!(status::is_grpc_content_type(b"application/grpc+proto"));
    assert!(status::is_grpc_content_type(b"Application/gRPC-web-text"));
    assert!(!status::is_grpc_content_type(b"application/grpcx"));
}

#[tokio::test]
async fn a_request_body_goes_upstream_whole_at_its_end_and_a_large_one_streams_on() {
    let f = filter();
    let mut r = call("application/grpc-web+proto").await;
    r.upstream_request(&f);
    let mut sent = Vec::new();
    for (piece, end) in [(&b"\x00\x00\x00\x00\x03"[..], false), (b"\x0a\x01a", false), (b"", true)] {
        let mut body = if piece.is_empty() { None } else { Some(Bytes::copy_from_slice(piece)) };
        f.edit_request_body(&mut body, end, &mut r.ctx).expect("body");
        let chunk = body.expect("never None: that would end the body early");
        assert!(end || chunk.is_empty(), "nothing goes before the end");
        sent.push(chunk);
    }
    assert_eq!(sent.concat(), b"\x00\x00\x00\x00\x03\x0a\x01a");

    // Over HELD_REQUEST_MAX: what was held goes at once, and the rest as it comes.
    let mut r = call("application/grpc-web+proto").await;
    r.upstream_request(&f);
    let mut big = Some(Bytes::from(vec![7u8; HELD_REQUEST_MAX + 1]));
    f.edit_request_body(&mut big, false, &mut r.ctx).expect("body");
    assert_eq!(big.map(|b| b.len()), Some(HELD_REQUEST_MAX + 1));
    let mut more = Some(Bytes::from_static(b"more"));
    f.edit_request_body(&mut more, false, &mut r.ctx).expect("body");
    assert_eq!(more.as_deref(), Some(&b"more"[..]));

    // A retry sends the body again from its start: the held part starts over.
    let mut r = call("application/grpc-web+proto").await;
    r.upstream_request(&f);
    let mut part = Some(Bytes::from_static(b"\x00\x00"));
    f.edit_request_body(&mut part, false, &mut r.ctx).expect("body");
    r.upstream_request(&f);
    let mut whole = Some(Bytes::from_static(b"\x00\x00\x00\x00\x00"));
    f.edit_request_body(&mut whole, true, &mut r.ctx).expect("body");
    assert_eq!(whole.as_deref(), Some(&b"\x00\x00\x00\x00\x00"[..]));
}
