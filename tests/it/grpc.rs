//! gRPC through Portico, with real grpcio clients and servers on both sides (`grpc/peers.rs`):
//! every call shape over h2c and TLS to h2c and TLS upstreams, trailers and `-bin` metadata,
//! error statuses, deadlines, a large stream in bounded memory; Portico's own refusals as gRPC
//! statuses; retries on gRPC statuses and the gRPC health check. gRPC-Web is in `grpc/web.rs`.

#[path = "grpc/peers.rs"]
mod peers;
#[path = "grpc/web.rs"]
mod web;

use crate::pki::Pki;
use crate::support::{eventually, metric, rss_kib, Portico, Yaml};
use peers::{client, Servers};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A CA, the upstream servers' certificate and the listener's, for `localhost` / 127.0.0.1.
fn pki() -> Pki {
    let pki = Pki::new();
    pki.issue("ca", "upstream", "localhost", "DNS:localhost,IP:127.0.0.1", false);
    pki.issue("ca", "site", "localhost", "DNS:localhost,IP:127.0.0.1", false);
    pki
}

/// The `code` a client result carries.
fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("?")
}

#[tokio::test]
async fn every_call_shape_crosses_h2c_and_tls_listeners_to_h2c_and_tls_upstreams() {
    let pki = pki();
    let servers = Servers::start(pki.dir.path(), &["plain:ok", "secure:ok:tls"]);
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - {name: h2c, listen: "127.0.0.1:$h2c", http2: true}
  - {name: h2, listen: "127.0.0.1:$h2", http2: true, tls: {certs: [{cert: $dir_pki/site.crt, key: $dir_pki/site.key}]}}
upstreams:
  plain: {targets: ["$plain"], http2: true, max_streams: 100}
  secure: {targets: ["$secure"], http2: true, tls: {sni: localhost, ca: $dir_pki/ca.crt},
           health_check: {grpc: {}, interval_ms: 500}}   # over h2 with ALPN: no route to it if it fails
routes:
  - {name: to-tls, match: {path: /portico.test.Echo/, headers: {x-upstream: tls}}, upstream: secure}
  - {name: to-h2c, match: {path: /portico.test.Echo/}, upstream: plain}
"#,
        )
        .set("dir_pki", pki.dir.path().display())
        .set("plain", servers.addr("plain"))
        .set("secure", servers.addr("secure")),
    )
    .await;
    let ca = pki.path("ca.crt").display().to_string();
    let h2c = format!("127.0.0.1:{}", p.port("h2c"));
    let h2 = format!("127.0.0.1:{}", p.port("h2"));
    let tls_args = ["--ca", ca.as_str(), "--authority", "localhost"];
    let runs = [
        ("h2c -> h2c", h2c.as_str(), &[][..], "plain"),
        ("h2c -> tls", h2c.as_str(), &["--md", "x-upstream=tls"][..], "secure"),
        ("h2 -> h2c", h2.as_str(), &tls_args[..], "plain"),
        ("h2 -> tls", h2.as_str(), &[&tls_args[..], &["--md", "x-upstream=tls"]].concat()[..], "secure"),
    ];
    let results = futures_util::future::join_all(runs.iter().map(|(_, target, args, _)| {
        let args: Vec<&str> = args.to_vec();
        async move { client(target, "shapes", &args).await }
    }))
    .await;
    for ((what, _, _, served_by), r) in runs.iter().zip(&results) {
        let u = &r["unary"];
        assert_eq!(
            (code(u), u["text"].as_str(), u["data"].as_str()),
            ("OK", Some("hello"), Some("AAE=")),
            "{what}: {r}"
        );
        assert_eq!(u["trailing"]["x-served-by"], *served_by, "{what}: trailers relayed");
        assert_eq!(u["trailing"]["x-echo-bin"], "/wD+", "{what}: binary metadata both ways, byte for byte");
        assert_eq!(
            (r["server_stream"]["count"].as_u64(), r["server_stream"]["bytes"].as_u64()),
            (Some(50), Some(50_000)),
            "{what}"
        );
        assert_eq!(r["client_stream"], "20 messages, 20000 bytes", "{what}");
        assert_eq!(
            r["bidi"],
            serde_json::json!(["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9"]),
            "{what}"
        );
        assert_eq!(
            (code(&r["error"]), r["error"]["details"].as_str()),
            ("NOT_FOUND", Some("no such thing: café")),
            "{what}: the server's status and message"
        );
        assert_eq!(code(&r["deadline"]), "DEADLINE_EXCEEDED", "{what}");
        assert!(r["deadline"]["elapsed"].as_f64().is_some_and(|s| s < 2.0), "{what}: the deadline held: {r}");
        assert_eq!(r["concurrent_ok"], 200, "{what}: 200 concurrent calls");
    }
    // Two clients' 400 concurrent calls to `plain` shared multiplexed connections: at 100
    // streams each, 4 carry them all. Calls that start together take turns at the target
    // (`proxy/multiplex.rs`) and share the connection one of them opens; without the turns
    // each opened its own where it missed one being opened or used (Pingora takes a connection
    // out of its pool while it opens a stream on it): 8 to 42 were counted.
    let upstream_conns = connections_to(servers.ports["plain"]);
    let m = p.metrics().await;
    let waits = |outcome: &str| {
        metric(&m, "portico_upstream_stream_waits_total", &format!(r#"upstream="plain",outcome="{outcome}""#))
    };
    let (waited, gave_up) = (waits("turn"), waits("timed_out"));
    assert!(
        (1..=6).contains(&upstream_conns),
        "{upstream_conns} connections to the h2c upstream ({waited} waits for a turn, {gave_up} given up)"
    );
    assert!(waited > 0.0, "calls that started together waited their turn, counted in /metrics");
}

/// Established TCP connections to `port` on 127.0.0.1 (from /proc/net/tcp).
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == remote && f[3] == "01"
        })
        .count()
}

#[tokio::test]
async fn portico_refuses_grpc_calls_with_grpc_statuses() {
    let pki = pki();
    let servers = Servers::start(pki.dir.path(), &["ok:ok"]);
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: h2c, listen: "127.0.0.1:$h2c", http2: true}]
upstreams:
  ok: {targets: ["$ok"], http2: true}
  down: {targets: ["127.0.0.1:$closed"], http2: true}
routes:
  - {name: jwt, priority: 10, match: {path: /portico.test.Echo/, headers: {x-case: jwt}}, upstream: ok,
     filters: [{jwt: {secret: "a-secret-of-at-least-thirty-two-bytes!"}}]}
  - {name: limited, priority: 10, match: {path: /portico.test.Echo/, headers: {x-case: limited}}, upstream: ok,
     filters: [{rate_limit: {key: route, requests_per_minute: 1, burst: 1}}]}
  - {name: down, priority: 10, match: {path: /portico.test.Echo/, headers: {x-case: down}}, upstream: down}
  - {name: slow, priority: 10, match: {path: /portico.test.Echo/, headers: {x-case: slow}}, upstream: ok, timeout_ms: 300}
  - {name: unary-only, match: {path_exact: /portico.test.Echo/Unary}, upstream: ok}
"#,
        )
        .set("ok", servers.addr("ok")),
    )
    .await;
    let target = format!("127.0.0.1:{}", p.port("h2c"));
    let t = target.as_str();
    let (unrouted, jwt, limited, down, slow) = tokio::join!(
        client(t, "fail", &["--code", "0"]),
        client(t, "unary", &["--md", "x-case=jwt"]),
        client(t, "unary", &["--md", "x-case=limited", "--repeat", "2"]),
        client(t, "unary", &["--md", "x-case=down"]),
        client(t, "unary", &["--md", "x-case=slow", "--text", "slow"]),
    );
    // A method no route serves: UNIMPLEMENTED, with Portico's message and request id.
    assert_eq!(code(&unrouted), "UNIMPLEMENTED", "{unrouted}");
    assert!(
        unrouted["details"].as_str().is_some_and(|d| d.starts_with("no route matches this request (request id ")),
        "{unrouted}"
    );
    assert_eq!(unrouted["trailing"]["x-portico-error"], "not_found", "Trailers-Only: {unrouted}");
    assert_eq!(code(&jwt[0]), "UNAUTHENTICATED", "{jwt}");
    assert_eq!((code(&limited[0]), code(&limited[1])), ("OK", "RESOURCE_EXHAUSTED"), "{limited}");
    assert_eq!(code(&down[0]), "UNAVAILABLE", "{down}");
    // The log says why: the access line names Pingora's error kind, the error log warns.
    eventually(Duration::from_secs(5), "the access line of the failed exchange", || async {
        p.access_log()
            .lines()
            .any(|l| l.contains(r#""route":"down""#) && l.contains(r#""error":"bad_gateway:ConnectRefused""#))
    })
    .await;
    assert!(p.stderr().contains("upstream down target 127.0.0.1:"), "{}", p.stderr());
    assert_eq!(code(&slow[0]), "OK", "a fast call on the slow route");

    // The route's timeout_ms (300 ms) caps a call with a longer deadline of its own (10 s).
    let started = Instant::now();
    let capped = client(t, "unary", &["--md", "x-case=slow", "--delay", "3000"]).await;
    assert_eq!(code(&capped[0]), "DEADLINE_EXCEEDED", "{capped}");
    assert!(started.elapsed() < Duration::from_millis(2500), "Portico's answer, not the server's");
    // A call's own grpc-timeout is honoured where the route sets none: sent raw with curl, so
    // no client deadline races Portico's.
    let frame = p.dir.path().join("slow.bin");
    // Msg {text: "x", delay_ms: 3000} in one gRPC frame.
    std::fs::write(&frame, b"\x00\x00\x00\x00\x06\x0a\x01x\x28\xb8\x17").expect("frame");
    let started = Instant::now();
    let r = crate::pki::curl(
        &[
            "--http2-prior-knowledge",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-H",
            "grpc-timeout: 300m",
            "--data-binary",
            &format!("@{}", frame.display()),
        ],
        &format!("http://{t}/portico.test.Echo/Unary"),
    );
    assert_eq!(r.status, 200, "{}", r.headers);
    assert!(r.headers.contains("grpc-status: 4"), "DEADLINE_EXCEEDED: {}", r.headers);
    assert!(started.elapsed() < Duration::from_millis(2500), "within the call's deadline, not the server's delay");

    // /metrics counts gRPC calls by the grpc-status the client got.
    let m = p.metrics().await;
    assert_eq!(metric(&m, "portico_grpc_requests_total", r#"route="limited",grpc_status="8""#), 1.0, "{m}");
    assert_eq!(metric(&m, "portico_grpc_requests_total", r#"route="jwt",grpc_status="16""#), 1.0);
    assert_eq!(metric(&m, "portico_grpc_requests_total", r#"route="limited",grpc_status="0""#), 1.0);
}

#[tokio::test]
async fn grpc_statuses_drive_retries_and_the_grpc_health_check_takes_a_target_out() {
    let pki = pki();
    let servers = Servers::start(pki.dir.path(), &["good:ok", "flaky:unavailable", "a:ok", "b:ok"]);
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: h2c, listen: "127.0.0.1:$h2c", http2: true}]
upstreams:
  mixed: {targets: ["$good", "$flaky"], http2: true}
  checked: {targets: ["$a", "$b"], http2: true,
            health_check: {grpc: {service: ""}, interval_ms: 100, timeout_ms: 500}}
routes:
  - {name: retried, match: {path: /portico.test.Echo/, headers: {x-case: retried}}, upstream: mixed,
     retry: {attempts: 1, on: [unavailable], budget_percent: 100}}
  - {name: plain, match: {path: /portico.test.Echo/, headers: {x-case: plain}}, upstream: mixed}
  - {name: checked, match: {path: /portico.test.Echo/}, upstream: checked}
"#,
        )
        .set("good", servers.addr("good"))
        .set("flaky", servers.addr("flaky"))
        .set("a", servers.addr("a"))
        .set("b", servers.addr("b")),
    )
    .await;
    let t = format!("127.0.0.1:{}", p.port("h2c"));
    // One after the other: side by side, the two clients' calls can alternate in step with the
    // balancer's round robin, so that every retried call lands on `good` and every plain one on
    // `flaky` (seen once in 30 runs on a loaded machine), and nothing is left to retry.
    let retried = client(&t, "unary", &["--md", "x-case=retried", "--repeat", "10"]).await;
    let plain = client(&t, "unary", &["--md", "x-case=plain", "--repeat", "10"]).await;
    let codes = |v: &Value| v.as_array().expect("calls").iter().map(|c| code(c).to_string()).collect::<Vec<_>>();
    assert!(codes(&retried).iter().all(|c| c == "OK"), "UNAVAILABLE is retried on the other target: {retried}");
    assert!(codes(&plain).iter().any(|c| c == "UNAVAILABLE"), "without the retry, the flaky target shows: {plain}");
    let m = p.metrics().await;
    assert!(metric(&m, "portico_retries_total", r#"route="retried",outcome="retried""#) >= 1.0, "{m}");

    // Both targets serve; b's health service turns NOT_SERVING and b is taken out.
    let spread = client(&t, "unary", &["--repeat", "6"]).await;
    let served = |v: &Value| {
        v.as_array().expect("calls").iter().map(|c| c["trailing"]["x-served-by"].to_string()).collect::<Vec<_>>()
    };
    assert!(served(&spread).iter().any(|s| s.contains('b')), "{spread}\n{}", p.stderr());
    client(&servers.addr("b"), "unary", &["--text", "health:NOT_SERVING"]).await;
    let b = servers.addr("b");
    eventually(Duration::from_secs(5), "b is marked down", || async {
        metric(&p.metrics().await, "portico_upstream_target_healthy", &format!(r#"upstream="checked",target="{b}""#))
            == 0.0
    })
    .await;
    let after = client(&t, "unary", &["--repeat", "6"]).await;
    assert!(served(&after).iter().all(|s| s.contains('a')), "only a serves now: {after}");
    client(&b, "unary", &["--text", "health:SERVING"]).await;
    eventually(Duration::from_secs(5), "b is back", || async {
        metric(&p.metrics().await, "portico_upstream_target_healthy", &format!(r#"upstream="checked",target="{b}""#))
            == 1.0
    })
    .await;
}

#[tokio::test]
async fn a_100_mb_server_stream_passes_in_bounded_memory() {
    let pki = pki();
    let servers = Servers::start(pki.dir.path(), &["big:ok"]);
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: h2c, listen: "127.0.0.1:$h2c", http2: true}]
upstreams: {big: {targets: ["$big"], http2: true}}
routes: [{name: big, upstream: big}]
"#,
        )
        .set("big", servers.addr("big")),
    )
    .await;
    let t = format!("127.0.0.1:{}", p.port("h2c"));
    // Warm up: the first call's connections and buffers.
    client(&t, "bigstream", &["--count", "10", "--size", "65536"]).await;
    let pid = p.pid();
    let before = rss_kib(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let r = client(&t, "bigstream", &["--count", "1600", "--size", "65536", "--timeout", "60"]).await;
    sampler.abort();
    assert_eq!((code(&r), r["bytes"].as_u64()), ("OK", Some(1600 * 65536)), "{r}");
    let grew = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before);
    assert!(grew < 32 * 1024, "Portico grew {grew} KiB while 100 MB streamed through it");
}

#[tokio::test]
async fn the_shipped_grpc_example_serves_grpc_calls() {
    let pki = pki();
    let servers = Servers::start(pki.dir.path(), &["greeter:ok"]);
    // conf/grpc.yaml as shipped, on test ports and with the test service's name.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/grpc.yaml")).expect("conf");
    let yaml = shipped
        .replace("127.0.0.1:8090", "127.0.0.1:$grpc")
        .replace("127.0.0.1:50051", &servers.addr("greeter"))
        .replace("/helloworld.Greeter/", "/portico.test.Echo/Unary");
    let p = Portico::start(Yaml::new(&yaml)).await;
    let t = format!("127.0.0.1:{}", p.port("grpc"));
    let (ok, unrouted) = tokio::join!(client(&t, "unary", &["--text", "hi"]), client(&t, "fail", &["--code", "0"]));
    assert_eq!((code(&ok[0]), ok[0]["text"].as_str()), ("OK", Some("hi")), "{ok}");
    assert_eq!(code(&unrouted), "UNIMPLEMENTED", "Fail is no route of the example's: {unrouted}");
}
