//! gRPC-Web through the `grpc_web` filter, with real clients we did not write: connect-node's
//! gRPC-Web transport (binary, over HTTP/1.1 and HTTP/2) and Google's `grpc-web` runtime in
//! text mode (over xhr2's XMLHttpRequest), both from npm (`web/package.json`); a raw text-mode
//! exchange checks the base64 framing byte for byte, and a CORS preflight gets its answer.

use super::peers::{descriptor_set, here, Servers};
use crate::pki::curl;
use crate::support::{read_response, Origin, Portico, Yaml};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Runs `web/client.mjs` in `mode` against `base` and returns what it printed, or why it failed.
async fn node(base: &str, mode: &str, version: &str) -> Result<Value, String> {
    let out = tokio::process::Command::new("node")
        .arg(here().join("web/client.mjs"))
        .arg(descriptor_set())
        .arg(base)
        .arg(mode)
        .arg(version)
        .output()
        .await
        .expect("node runs (npm install in tests/it/grpc/web: .ci/install-test-deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("client.mjs {mode} {version} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_str(stdout.trim()).map_err(|e| format!("client.mjs {mode} {version} printed {stdout:?}: {e}"))
}

/// base64 in or out, by Python's standard library (no base64 crate in this package).
fn base64(data: &[u8], decode: bool) -> Vec<u8> {
    let op = if decode { "b64decode(sys.stdin.buffer.read())" } else { "b64encode(sys.stdin.buffer.read())" };
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", &format!("import base64, sys; sys.stdout.buffer.write(base64.{op})")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), data).expect("write");
    child.wait_with_output().expect("output").stdout
}

#[tokio::test]
async fn browsers_call_grpc_through_grpc_web_in_binary_and_text_modes() {
    let pki = super::pki();
    let servers = Servers::start(pki.dir.path(), &["echo:ok"]);
    let html = Origin::start("html").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: web, listen: "127.0.0.1:$web", http2: true}]
upstreams:
  echo: {targets: ["$echo"], http2: true}
  html: {targets: ["$html"]}
  down: {targets: ["127.0.0.1:$closed"], http2: true}
routes:
  - {name: down, priority: 10, match: {path: /portico.test.Echo/, headers: {x-case: down}}, upstream: down,
     filters: [{grpc_web: {}}]}
  - name: html
    priority: 10
    match: {path: /portico.test.Echo/, headers: {x-case: html}}
    rewrite: {strip_prefix: /portico.test.Echo/Unary, add_prefix: /status/503}
    upstream: html
    filters: [{grpc_web: {}}]
  - name: echo
    match: {path: /portico.test.Echo/}
    upstream: echo
    filters:
      - cors: {allow_origins: ["https://app.example"], allow_methods: [POST],
               allow_headers: [content-type, x-grpc-web, x-user-agent, grpc-timeout],
               expose_headers: [grpc-status, grpc-message]}
      - grpc_web: {}
"#,
        )
        .set("echo", servers.addr("echo"))
        .origin(&html),
    )
    .await;
    let base = p.url("web", "");
    let (h1, h2, text) =
        tokio::join!(node(&base, "binary", "http1"), node(&base, "binary", "http2"), node(&base, "text", ""));
    // A client that fails shows what Portico logged and answered meanwhile.
    let (h1, h2, text) = match (h1, h2, text) {
        (Ok(h1), Ok(h2), Ok(text)) => (h1, h2, text),
        (h1, h2, text) => {
            let why: Vec<String> = [h1, h2, text].into_iter().filter_map(Result::err).collect();
            panic!("{}\n--- portico's log:\n{}\n--- access log:\n{}", why.join("\n"), p.stderr(), p.access_log());
        }
    };
    for (what, r) in [("binary over HTTP/1.1", &h1), ("binary over HTTP/2", &h2)] {
        let u = &r["unary"];
        assert_eq!((u["text"].as_str(), u["data"].as_str()), (Some("hello web"), Some("AAEC")), "{what}: {r}");
        assert_eq!(u["trailers"]["grpc-status"], "0", "{what}: trailers from the 0x80 frame");
        assert_eq!(u["trailers"]["x-echo-bin"], "/wD+", "{what}: binary metadata both ways");
        assert_eq!(r["server_stream"], serde_json::json!({"count": 20, "bytes": 60000}), "{what}");
        assert_eq!(r["error"], serde_json::json!({"code": 7, "message": "not for you"}), "{what}");
        assert_eq!(r["http_error"]["code"], 14, "{what}: a plain 503 page is UNAVAILABLE: {r}");
        assert_eq!(r["refused"]["code"], 14, "{what}: Portico's own answer is a gRPC-Web status: {r}");
        assert!(r["refused"]["message"].as_str().is_some_and(|m| m.starts_with("could not connect")), "{r}");
    }
    assert_eq!(text["unary"]["text"], "hello text", "{text}");
    assert_eq!(text["unary"]["status"]["code"], 0, "{text}");
    assert_eq!(text["unary"]["status"]["metadata"]["x-served-by"], "echo", "text mode reads the trailers: {text}");
    assert_eq!(text["server_stream"], serde_json::json!({"count": 20, "bytes": 60000}), "{text}");
    assert_eq!(text["error"], serde_json::json!({"code": 7, "message": "not for you"}), "{text}");
    assert_eq!(text["http_error"]["code"], 14, "{text}");
    assert_eq!(text["refused"]["code"], 14, "{text}");
    assert!(text["refused"]["message"].as_str().is_some_and(|m| m.starts_with("could not connect")), "{text}");

    // Text mode byte for byte: Msg {text: "raw"} framed and base64-encoded, sent over HTTP/1.1.
    let frame = b"\x00\x00\x00\x00\x05\x0a\x03raw";
    let body = String::from_utf8(base64(frame, false)).expect("ascii");
    let r = curl(
        &["-H", "content-type: application/grpc-web-text", "-H", "x-grpc-web: 1", "--data-binary", &body],
        &p.url("web", "/portico.test.Echo/Unary"),
    );
    assert_eq!(r.status, 200, "{}", r.headers);
    assert!(r.headers.to_ascii_lowercase().contains("content-type: application/grpc-web-text+proto"), "{}", r.headers);
    let decoded = base64(r.body.trim().as_bytes(), true);
    assert!(decoded.starts_with(frame), "the echo first: {decoded:?}");
    let trailer = &decoded[frame.len()..];
    assert_eq!(trailer[0], 0x80, "then the trailers frame: {decoded:?}");
    assert!(String::from_utf8_lossy(&trailer[5..]).contains("grpc-status:0\r\n"), "{decoded:?}");

    // A browser's preflight is answered by the cors filter, before gRPC-Web.
    let r = curl(
        &[
            "-X",
            "OPTIONS",
            "-H",
            "origin: https://app.example",
            "-H",
            "access-control-request-method: POST",
            "-H",
            "access-control-request-headers: content-type,x-grpc-web",
        ],
        &p.url("web", "/portico.test.Echo/Unary"),
    );
    assert_eq!(r.status, 204, "{}", r.headers);
    assert!(
        r.headers.to_ascii_lowercase().contains("access-control-allow-headers: content-type, x-grpc-web"),
        "{}",
        r.headers
    );

    a_chunked_call_whose_end_comes_late_keeps_its_connection(&p, frame).await;
}

/// HTTP/1.1 clients (connect-node among them) send a call's body chunked, and its last chunk
/// can come well after the message. The message goes upstream with the stream's end, so the
/// server has nothing to cut short by answering early, and the keep-alive connection carries
/// the next call (it was closed under it when the end followed alone).
async fn a_chunked_call_whose_end_comes_late_keeps_its_connection(p: &Portico, frame: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let head = format!(
        "POST /portico.test.Echo/Unary HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/grpc-web+proto\r\n\
         x-grpc-web: 1\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        frame.len()
    );
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", p.port("web"))).await.expect("connect");
    for (call, pause) in [("late end", Duration::from_millis(300)), ("next call", Duration::ZERO)] {
        conn.write_all(&[head.as_bytes(), frame, b"\r\n"].concat()).await.expect("write the message");
        tokio::time::sleep(pause).await;
        conn.write_all(b"0\r\n\r\n").await.expect("write the last chunk");
        let r = read_response(&mut conn).await.unwrap_or_else(|| panic!("{call}: an answer on the same connection"));
        assert_eq!((r.status, r.closes()), (200, false), "{call}: {}", r.head);
        assert!(r.body.starts_with(frame), "{call}: the echo first: {:?}", r.body);
        assert!(String::from_utf8_lossy(&r.body).contains("grpc-status:0"), "{call}: {:?}", r.body);
    }
}
