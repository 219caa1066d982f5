//! HTTP/2 and HTTP/1.1 meet in Portico in both directions: an h2 client (h2c with prior
//! knowledge, or TLS with ALPN) reaches an HTTP/1.1 origin, an HTTP/1.1 client reaches an h2c
//! origin (`http2: true` upstream), and request bodies of several MB (with a length, or
//! streamed without one: chunked on HTTP/1.1) and responses of several MB arrive intact.
//! The client is `curl`; the origins are hyper, speaking HTTP/1.1 or h2c.

use crate::pki::Pki;
use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::convert::Infallible;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Body sizes: several MB, more than any buffer or flow-control window on the way.
const SIZE: usize = 5 << 20;

/// Byte `i` of every test body.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// FNV-1a: the origin reports it for what it received.
fn fnv(data: &[u8], mut h: u64) -> u64 {
    for b in data {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    h
}
const FNV_START: u64 = 0xcbf29ce484222325;

/// An origin that answers `.../big/N` with N pattern bytes and anything else with what it
/// received: `{"version", "len", "fnv", "content_length", "transfer_encoding"}`.
struct BodyOrigin {
    addr: std::net::SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for BodyOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BodyOrigin {
    async fn start(h2: bool) -> BodyOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("origin binds");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(async move {
                    let io = TokioIo::new(stream);
                    let svc = service_fn(answer);
                    let _ = if h2 {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, svc).await
                    } else {
                        hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await
                    };
                });
            }
        });
        BodyOrigin { addr, task }
    }
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(n) = req.uri().path().rsplit_once("/big/").and_then(|(_, n)| n.parse().ok()) {
        return Ok(Response::new(Full::new(Bytes::from(pattern(n)))));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (content_length, transfer_encoding) = (header("content-length"), header("transfer-encoding"));
    let version = format!("{:?}", req.version());
    let mut body = req.into_body();
    let (mut len, mut hash) = (0usize, FNV_START);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            len += data.len();
            hash = fnv(data, hash);
        }
    }
    let json = serde_json::json!({
        "version": version, "len": len, "fnv": hash.to_string(),
        "content_length": content_length, "transfer_encoding": transfer_encoding,
    });
    Ok(Response::new(Full::new(Bytes::from(json.to_string()))))
}

/// One `curl` run: its `%{http_code} %{http_version}` and whether it succeeded; `stdin` feeds
/// `-T -`.
async fn curl_out(args: &[&str], stdin: Option<&Path>) -> (String, bool) {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "-w", "%{http_code} %{http_version}"]).args(args);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).expect("upload file")),
        None => Stdio::null(),
    });
    let out = cmd.output().await.expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.success())
}

/// How one client reaches Portico: curl's flags and the base URL.
struct Client {
    what: &'static str,
    flags: Vec<String>,
    base: String,
    version: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_http1_meet_both_ways_with_bodies_of_several_megabytes() {
    let pki = Pki::new();
    pki.issue("ca", "site", "localhost", "DNS:localhost,IP:127.0.0.1", false);
    let (h1, h2) = (BodyOrigin::start(false).await, BodyOrigin::start(true).await);
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - {name: h2c, listen: "127.0.0.1:$h2c", http2: true}
  - {name: tls, listen: "127.0.0.1:$tls", http2: true, tls: {certs: [{cert: $cert, key: $key}]}}
  - {name: plain, listen: "127.0.0.1:$plain"}
upstreams:
  h1: {targets: ["$h1"]}
  h2: {targets: ["$h2"], http2: true}
routes:
  - {name: to-h1, match: {path: /h1}, upstream: h1}
  - {name: to-h2, match: {path: /h2}, upstream: h2}
"#,
        )
        .set("cert", pki.path("site.crt").display())
        .set("key", pki.path("site.key").display())
        .set("h1", h1.addr)
        .set("h2", h2.addr),
    )
    .await;
    let upload = pki.path("upload.bin");
    std::fs::write(&upload, pattern(SIZE)).expect("upload file");
    let upload_arg = format!("@{}", upload.display());
    let want_fnv = fnv(&pattern(SIZE), FNV_START).to_string();
    let ca = pki.path("ca.crt").display().to_string();
    let clients = [
        Client {
            what: "h2c prior knowledge",
            flags: vec!["--http2-prior-knowledge".into()],
            base: p.url("h2c", ""),
            version: "2",
        },
        Client {
            what: "h2 over TLS (ALPN)",
            flags: vec!["--http2".into(), "--cacert".into(), ca],
            base: format!("https://localhost:{}", p.port("tls")),
            version: "2",
        },
        Client { what: "HTTP/1.1", flags: vec!["--http1.1".into()], base: p.url("plain", ""), version: "1.1" },
    ];
    // Every client to the HTTP/1.1 origin and to the h2c one (HTTP/1.1 to HTTP/1.1 left out).
    for c in &clients {
        for (up, origin_version) in [("h1", "HTTP/1.1"), ("h2", "HTTP/2.0")] {
            if c.version == "1.1" && up == "h1" {
                continue;
            }
            let flags: Vec<&str> = c.flags.iter().map(String::as_str).collect();
            let case = format!("{} to the {up} origin", c.what);

            // A body with a length, then one streamed without (`-T -`: chunked on HTTP/1.1).
            let out = pki.path("out.json");
            let out_arg = out.display().to_string();
            for (how, extra, stdin) in [
                ("with content-length", vec!["--data-binary", upload_arg.as_str()], None),
                ("streamed", vec!["-T", "-"], Some(upload.as_path())),
            ] {
                let url = format!("{}/{up}/echo", c.base);
                let mut args = flags.clone();
                args.extend(["-o", &out_arg]);
                args.extend(extra.iter().copied());
                args.push(&url);
                let (status, ok) = curl_out(&args, stdin).await;
                assert!(ok && status == format!("200 {}", c.version), "{case}, {how}: {status}");
                let got: Value =
                    serde_json::from_slice(&std::fs::read(&out).expect("answer")).expect("the origin's json");
                assert_eq!(got["version"], origin_version, "{case}, {how}: {got}");
                assert_eq!(
                    (got["len"].as_u64(), got["fnv"].as_str()),
                    (Some(SIZE as u64), Some(&*want_fnv)),
                    "{case}, {how}: {got}"
                );
                if how == "streamed" && up == "h1" {
                    assert_eq!(got["transfer_encoding"], "chunked", "{case}: no length, so chunked: {got}");
                }
            }

            // A response of several MB.
            let big = pki.path("big.bin");
            let big_arg = big.display().to_string();
            let url = format!("{}/{up}/big/{SIZE}", c.base);
            let mut args = flags.clone();
            args.extend(["-o", &big_arg, &url]);
            let (status, ok) = curl_out(&args, None).await;
            assert!(ok && status == format!("200 {}", c.version), "{case}, download: {status}");
            let body = std::fs::read(&big).expect("download");
            assert!(
                body.len() == SIZE && body == pattern(SIZE),
                "{case}: {} bytes, intact: {}",
                body.len(),
                body == pattern(SIZE)
            );
        }
    }
    an_answer_before_the_body_ends_closes_the_connection_and_says_so(&p).await;
}

/// An HTTP/1.1 client still sending its body when the h2c origin has answered (and reset the
/// stream, having read none of it): the answer says `Connection: close` (Pingora's
/// `close_on_response_before_downstream_finish`, on by default) and the connection ends after
/// it, so the client does not send its next request on it. A request whose body was all read
/// keeps its connection.
async fn an_answer_before_the_body_ends_closes_the_connection_and_says_so(p: &Portico) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", p.port("plain"))).await.expect("connect");
    let whole = "POST /h2/echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\n\r\nhello";
    conn.write_all(whole.as_bytes()).await.expect("write");
    let r = read_response(&mut conn).await.expect("an answer");
    assert_eq!((r.status, r.closes()), (200, false), "a body read to its end: {}", r.head);

    let early = "POST /h2/big/10 HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
    conn.write_all(early.as_bytes()).await.expect("write");
    let r = read_response(&mut conn).await.expect("the origin's answer, before the body's end");
    assert_eq!((r.status, &r.body), (200, &pattern(10)), "{}", r.head);
    assert!(r.closes(), "the answer says the connection ends: {}", r.head);
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest)).await;
    // The end is a FIN, or a reset when the body's last chunk reached Portico's socket before it
    // closed (the kernel resets a socket closed with unread bytes): either way nothing follows.
    let ended = match &read {
        Ok(Ok(0)) => true,
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
        _ => false,
    };
    assert!(ended && rest.is_empty(), "then it ends, with nothing more sent: {read:?} {rest:?}");
}

/// `http2: true` on a TLS upstream offers h2 and then HTTP/1.1 by ALPN: an origin that picks
/// HTTP/1.1 is spoken to in HTTP/1.1, and one that picks h2 in h2 (the gRPC tests' TLS origin).
#[tokio::test]
async fn a_tls_upstream_that_picks_http1_by_alpn_is_spoken_to_in_http1() {
    const ORIGIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/alpn_origin.py");
    let pki = Pki::new();
    pki.issue("ca", "origin", "localhost", "DNS:localhost,IP:127.0.0.1", false);
    let origin = PythonPeer::start(ORIGIN, [pki.path("origin.crt"), pki.path("origin.key")]).await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: web, listen: "127.0.0.1:$web"}]
upstreams:
  origin: {targets: ["127.0.0.1:$origin"], http2: true, tls: {sni: localhost, ca: $ca}}
routes: [{name: all, upstream: origin}]
"#,
        )
        .set("origin", origin.port)
        .set("ca", pki.path("ca.crt").display()),
    )
    .await;
    for _ in 0..3 {
        let (status, body) = get_json(&p.url("web", "/which")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["alpn"].as_str(), body["version"].as_str()), (Some("http/1.1"), Some("HTTP/1.1")), "{body}");
    }
}
