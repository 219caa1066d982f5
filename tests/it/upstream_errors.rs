//! An operator finds out why clients got a 502: Portico's log says which upstream and target
//! failed and how (at `warn`, a few lines a second however many requests fail), and the access
//! line's `error` carries Pingora's error kind after Portico's code. A client still sending
//! its body when the upstream fails gets the answer and a clean close, not a reset.

use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Portico with one route to an upstream whose only target, `closed`, refuses connections.
async fn in_front_of_a_closed_port(closed: u16) -> Portico {
    Portico::start(
        Yaml::web(
            r#"
upstreams: {down: {targets: ["127.0.0.1:$closed"]}}
routes: [{name: down, upstream: down}]
"#,
        )
        .set("closed", closed),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_named_in_the_log_and_the_access_line() {
    let closed = free_port();
    let p = in_front_of_a_closed_port(closed).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_its_body_when_the_upstream_fails_gets_the_answer_and_a_clean_close() {
    // An upload answered 502 before its body is in (the connect is refused at once): Portico
    // says it will close (Pingora closes after a failed exchange), reads and drops the rest of
    // the body, then closes with a FIN. Closing at once left the body unread, so the kernel
    // reset the connection under the client: its next write failed with EPIPE, and the 502
    // itself could be lost.
    let p = in_front_of_a_closed_port(free_port()).await;
    let mut s = TcpStream::connect(("127.0.0.1", p.port("web"))).await.expect("connects");
    let body = vec![b'x'; 64 * 1024];
    let head = format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await.expect("the header goes");
    let first = read_response(&mut s).await.expect("a whole answer, before the body");
    assert!(first.head.starts_with("http/1.1 502"), "answered before the body: {}", first.head);
    let json = String::from_utf8_lossy(&first.body);
    assert!(json.contains("request_id"), "{json}");
    assert!(first.closes(), "the client is told: {}", first.head);
    // The body, late, in pieces: each is read, none is reset.
    for piece in body.chunks(8 * 1024) {
        tokio::time::sleep(Duration::from_millis(25)).await;
        s.write_all(piece).await.expect("the body's rest is read, not reset");
    }
    let mut rest = [0u8; 64];
    let end = tokio::time::timeout(Duration::from_secs(10), s.read(&mut rest)).await.expect("closes within 10 s");
    assert!(matches!(end, Ok(0)), "a clean close (FIN), not a reset: {end:?}");
}
