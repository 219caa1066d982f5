//! The raw-socket corpus of issue 12: malformed and ambiguous requests, byte for byte, with the
//! status Portico must give each and the origin path it must reach. One list for two readers:
//! the integration test (`tests/it/hardening.rs`, against the config there) and
//! `benches/framing_corpus.sh` (the same bytes to Portico, nginx and haproxy side by side, through
//! the `framing_corpus` example, which includes this file by path). So this file uses nothing
//! but std and tokio.

#![allow(dead_code)] // each reader uses its part

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `request` as is and reads one response; `(status, body)`, status 0 when the
/// connection closed without one.
pub async fn raw(port: u16, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if complete(&buf) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Whether `buf` holds a whole response with a `Content-Length` body.
fn complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    let len = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    len.is_some_and(|len| body.len() >= len)
}

pub fn get(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

pub fn with_headers(extra: &str) -> Vec<u8> {
    format!("GET /api/x HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

pub fn post(te_and_cl: &str) -> Vec<u8> {
    format!("POST /api/x HTTP/1.1\r\nHost: t\r\n{te_and_cl}Connection: close\r\n\r\n0\r\n\r\n").into_bytes()
}

/// One corpus case: what is sent, the status it must get, and (when it reaches an origin) the
/// origin and the path that origin must see.
pub struct Case {
    /// What the case tries.
    pub name: &'static str,
    /// The listener of the test's config it is sent to (`web`, or `raw` without normalization).
    pub listener: &'static str,
    /// The bytes, as sent.
    pub request: Vec<u8>,
    /// The status Portico gives it.
    pub status: u16,
    /// The origin and path it reaches, when it is proxied.
    pub reaches: Option<(&'static str, &'static str)>,
}

fn case(name: &'static str, request: Vec<u8>, status: u16, reaches: Option<(&'static str, &'static str)>) -> Case {
    Case { name, listener: "web", request, status, reaches }
}

pub fn corpus() -> Vec<Case> {
    let big = format!("x-big: {}\r\n", "a".repeat(70 * 1024));
    let many: String = (0..101).map(|i| format!("x-h{i}: v\r\n")).collect();
    let too_many: String = (0..300).map(|i| format!("x-h{i}: v\r\n")).collect();
    vec![
        // Framing.
        case("CL + TE", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400, None),
        case("TE + CL (TE first)", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400, None),
        case("TE with a tab", post("Transfer-Encoding: gzip\t, chunked\r\n"), 400, None),
        case("TE gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n"), 501, None),
        case("TE chunked, chunked", post("Transfer-Encoding: chunked, chunked\r\n"), 400, None),
        case(
            "TE chunked in two fields",
            post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            400,
            None,
        ),
        case("TE ,chunked", post("Transfer-Encoding: ,chunked\r\n"), 400, None),
        case("TE xchunked, chunked", post("Transfer-Encoding: xchunked, chunked\r\n"), 501, None),
        case("TE chunked, gzip (not final)", post("Transfer-Encoding: chunked, gzip\r\n"), 400, None),
        case(
            "TE on HTTP/1.0",
            b"POST /api/x HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
            None,
        ),
        case("CL 5, 6", post("Content-Length: 5, 6\r\n"), 400, None),
        case("CL not a number", post("Content-Length: abc\r\n"), 400, None),
        case("bare LF lines", b"GET /api/x HTTP/1.1\nHost: t\nConnection: close\n\n".to_vec(), 400, None),
        case("one bare LF line", b"GET /api/x HTTP/1.1\r\nHost: t\nConnection: close\r\n\r\n".to_vec(), 400, None),
        case(
            "bare LF hides a header",
            b"GET /api/x HTTP/1.1\r\nHost: t\r\nX-A: 1\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
                .to_vec(),
            400,
            None,
        ),
        case("70 KB header", with_headers(&big), 431, None),
        case("101 headers", with_headers(&many), 431, None),
        case("300 headers (past Pingora's cap)", with_headers(&too_many), 400, None),
        // Host.
        case("HTTP/1.1 without Host", b"GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 400, None),
        case(
            "absolute-form without Host",
            b"GET http://api.example.com/h/x HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            200,
            Some(("b", "/h/x")),
        ),
        case(
            "absolute-form, path climbs",
            b"GET http://api.example.com/h/../../x HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            400,
            None,
        ),
        case("two Host fields", with_headers("Host: u\r\n"), 400, None),
        case("trailing-dot host", get("/h/x", "api.example.com."), 200, Some(("b", "/h/x"))),
        case("upper-case host", get("/h/x", "API.Example.COM"), 200, Some(("b", "/h/x"))),
        case("host with port", get("/h/x", "api.example.com:8080"), 200, Some(("b", "/h/x"))),
        case("host with empty label", get("/h/x", "api..example.com"), 400, None),
        case("host with a bad port", get("/h/x", "api.example.com:99999"), 400, None),
        // Paths.
        case("%2F", get("/api/a%2Fb", "t"), 400, None),
        case("%5C", get("/api/a%5Cb", "t"), 400, None),
        case("%00", get("/api/a%00b", "t"), 400, None),
        case("raw backslash", get("/api/a\\b", "t"), 400, None),
        case("bad escape %zz", get("/api/%zz", "t"), 400, None),
        case("/..", get("/..", "t"), 400, None),
        case("/a/../../b", get("/a/../../b", "t"), 400, None),
        case("..; segment", get("/api/..;/admin", "t"), 400, None),
        case("matrix parameter", get("/api/admin;/users", "t"), 400, None),
        case("encoded matrix parameter", get("/api/admin%3B/users", "t"), 400, None),
        case("; in the query is kept", get("/api/x?a=1;b=2", "t"), 200, Some(("a", "/api/x"))),
        case("//api/admin", get("//api/admin", "t"), 401, None),
        case("/api/%61dmin", get("/api/%61dmin", "t"), 401, None),
        case("/api/x/../admin", get("/api/x/../admin", "t"), 401, None),
        case("/api/x/%2e%2e/admin", get("/api/x/%2e%2e/admin", "t"), 401, None),
        case("/api/./admin/", get("/api/./admin/", "t"), 401, None),
        case("/api//x/./y", get("/api//x/./y", "t"), 200, Some(("a", "/api/x/y"))),
        case("query kept", get("/api/x/../y?a=%2F..", "t"), 200, Some(("a", "/api/y"))),
        case("strip_prefix escape", get("/users/../../admin", "t"), 400, None),
        case("strip_prefix climb to /admin", get("/users/../admin", "t"), 200, Some(("a", "/admin"))),
        case("strip_prefix normal", get("/users/x", "t"), 200, Some(("a", "/v1/users/x"))),
        Case {
            name: "path_normalization: off keeps %2F",
            listener: "raw",
            request: get("/api/a%2Fb", "t"),
            status: 200,
            reaches: Some(("a", "/api/a%2Fb")),
        },
    ]
}
