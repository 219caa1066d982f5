//! An operator finds out why clients got a 502: Portico's log says which upstream and target
//! failed and how (at `warn`, a few lines a second however many requests fail), and the access
//! line's `error` carries Pingora's error kind after Portico's code. A client still sending
//! its body when the upstream fails gets the answer and a clean close, not a reset.

use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_named_in_the_log_and_the_access_line() {
    let closed = free_port();
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {down: {targets: ["127.0.0.1:$closed"]}}
routes: [{name: down, upstream: down}]
"#,
        )
        .set("closed", closed),
    )
    .await;
    // A new client each time: Portico closes the connection after a 502.
    for _ in 0..40 {
        let r = client().get(p.url("web", "/x")).send().await.expect("answered");
        assert_eq!(r.status(), 502);
    }
    eventually(Duration::from_secs(5), "40 access lines", || async { p.access_log().lines().count() >= 40 }).await;
    let line: serde_json::Value = serde_json::from_str(p.access_log().lines().next().expect("a line")).expect("json");
    assert_eq!(line["error"], "bad_gateway:ConnectRefused", "{line}");

    let stderr = p.stderr();
    let warns: Vec<&str> = stderr.lines().filter(|l| l.contains("failed (ConnectRefused) for route down")).collect();
    assert!(!warns.is_empty(), "a warn line says why:\n{stderr}");
    assert!(warns[0].contains("WARN") && warns[0].contains(&format!("127.0.0.1:{closed}")), "{}", warns[0]);
    assert!(warns.len() <= 30, "rate-limited to 10 a second: {} lines for 40 failures", warns.len());
}

/// Reads one response with a `Content-Length` from `s`: its head and its body.
async fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse().ok())
                .expect("a content-length");
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.expect("the body arrives");
                assert!(n > 0, "closed inside the body: {head}");
                buf.extend_from_slice(&chunk[..n]);
            }
            return (head, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string());
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .unwrap_or(0);
        assert!(n > 0, "the connection closed before a whole response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_its_body_when_the_upstream_fails_gets_the_answer_and_a_clean_close() {
    // An upload answered 502 before its body is in (the connect is refused at once): Portico
    // says it will close (Pingora closes after a failed exchange), reads and drops the rest of
    // the body, then closes with a FIN. Closing at once left the body unread, so the kernel
    // reset the connection under the client: its next write failed with EPIPE, and the 502
    // itself could be lost.
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {down: {targets: ["127.0.0.1:$closed"]}}
routes: [{name: down, upstream: down}]
"#,
        )
        .set("closed", free_port()),
    )
    .await;
    let mut s = TcpStream::connect(("127.0.0.1", p.port("web"))).await.expect("connects");
    let body = vec![b'x'; 64 * 1024];
    let head = format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await.expect("the header goes");
    let (first, json) = read_response(&mut s).await;
    assert!(first.starts_with("HTTP/1.1 502"), "answered before the body: {first}");
    assert!(json.contains("request_id"), "{json}");
    assert!(first.to_ascii_lowercase().contains("connection: close"), "the client is told: {first}");
    // The body, late, in pieces: each is read, none is reset.
    for piece in body.chunks(8 * 1024) {
        tokio::time::sleep(Duration::from_millis(25)).await;
        s.write_all(piece).await.expect("the body's rest is read, not reset");
    }
    let mut rest = [0u8; 64];
    let end = tokio::time::timeout(Duration::from_secs(10), s.read(&mut rest)).await.expect("closes within 10 s");
    assert!(matches!(end, Ok(0)), "a clean close (FIN), not a reset: {end:?}");
}
