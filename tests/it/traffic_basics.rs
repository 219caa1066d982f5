//! What a request meets on its way: timeouts, built-in filters, retries, splits, and a
//! graceful shutdown.

use crate::support::*;
use std::time::Duration;

/// The web listener with one route to `a`.
fn one_route(a: &Origin) -> Yaml {
    Yaml::web(
        r#"
upstreams: {a: {targets: ["$a"]}}
routes: [{name: all, upstream: a}]
"#,
    )
    .origin(a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_dead_upstreams_get_504_and_502() {
    let a = Origin::start("a").await;
    let dead = free_port();
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  slow: {targets: ["$a"], timeouts: {connect_ms: 500, read_ms: 300}}
  dead: {targets: ["127.0.0.1:$dead"], timeouts: {connect_ms: 300}}
routes:
  - {name: slow, match: {path: /slow}, upstream: slow}
  - {name: bounded, match: {path: /bounded}, upstream: slow, timeout_ms: 200, rewrite: {strip_prefix: /bounded, add_prefix: /slow}}
  - {name: dead, match: {path: /dead}, upstream: dead}
"#,
        )
        .origin(&a)
        .set("dead", dead),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, body) = get_json(&p.url("web", "/slow?ms=3000")).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"], "upstream_timeout");
    assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(started.elapsed() < Duration::from_secs(2));

    let (status, _) = get_json(&p.url("web", "/bounded?ms=1000")).await;
    assert_eq!(status, 504);
    assert_eq!(get_json(&p.url("web", "/slow?ms=10")).await.0, 200);

    let (status, body) = get_json(&p.url("web", "/dead")).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "bad_gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_filters_run_listener_first_then_route() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - name: web
    listen: "127.0.0.1:$web"
    filters:
      - headers: {request: {set: {x-from-listener: "1"}}, response: {remove: [x-origin], set: {x-listener: yes}}}
upstreams:
  a: {targets: ["$a"]}
routes:
  - name: open
    match: {path: /open}
    upstream: a
    filters:
      - headers: {request: {add: {x-route: r}, remove: [x-drop]}}
      - request_size_limit: {max_bytes: 16}
  - name: closed
    match: {path: /closed}
    upstream: a
    filters:
      - ip_restrict: {deny: ["127.0.0.0/8"]}
"#,
        )
        .origin(&a),
    )
    .await;
    let c = client();
    let r = c.get(p.url("web", "/open")).header("x-drop", "1").send().await.expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-listener"], "yes");
    assert!(r.headers().get("x-origin").is_none());
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["headers"]["x-from-listener"], "1");
    assert_eq!(body["headers"]["x-route"], "r");
    assert!(body["headers"]["x-drop"].is_null());

    // Too large by Content-Length.
    let r = c.post(p.url("web", "/open")).body("x".repeat(100)).send().await.expect("req");
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-listener"], "yes", "response filters run on refusals too");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "payload_too_large");

    // Too large as a streamed (chunked) body.
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("0123456789"), Ok("0123456789")];
    let r = c
        .post(p.url("web", "/open"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 413);

    // Small bodies pass.
    assert_eq!(c.post(p.url("web", "/open")).body("small").send().await.expect("req").status(), 200);

    // Refused by address.
    let (status, body) = get_json(&p.url("web", "/closed")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_retried_on_another_target_and_splits_follow_weights() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let dead = free_port();
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  flaky: {targets: ["127.0.0.1:$dead", "$a"], timeouts: {connect_ms: 300}}
  a: {targets: ["$a"]}
  b: {targets: ["$b"]}
routes:
  - {name: retried, match: {path: /retried}, upstream: flaky, retry: {attempts: 2, on: [connect_error], budget_percent: 100}}
  - {name: split, match: {path: /split}, split: [{upstream: a, weight: 90}, {upstream: b, weight: 10}]}
"#,
        )
        .set("dead", dead)
        .origin(&a)
        .origin(&b),
    )
    .await;
    for i in 0..20 {
        let (status, body) = get_json(&p.url("web", "/retried")).await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
    let mut b_hits = 0;
    for _ in 0..500 {
        let (_, body) = get_json(&p.url("web", "/split")).await;
        if body["instance"] == "b" {
            b_hits += 1;
        }
    }
    // Expected 50; the standard deviation over 500 draws is about 6.7.
    assert!((25..=80).contains(&b_hits), "10% split got {b_hits} of 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let a = Origin::start("a").await;
    let mut p = Portico::start(one_route(&a)).await;
    let url = p.url("web", "/slow?ms=800");
    let in_flight = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.signal("TERM");
    let status = in_flight.await.expect("task").expect("in-flight request completes");
    assert_eq!(status, 200);
    p.wait_exit(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_clients_are_served_on_plain_listeners() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners: [{name: web, listen: "127.0.0.1:$web", http2: true}]
upstreams: {a: {targets: ["$a"]}}
routes: [{name: all, upstream: a}]
"#,
        )
        .origin(&a),
    )
    .await;
    let r = crate::pki::curl(&["--http2-prior-knowledge"], &p.url("web", "/x"));
    assert!(r.ok && r.status == 200, "{}", r.body);
    assert_eq!(r.http_version, "2");
    let r = crate::pki::curl(&["--http1.1"], &p.url("web", "/x"));
    assert_eq!((r.status, r.http_version.as_str()), (200, "1.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_serves_requests_after_idle_pauses_and_closes_at_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Origin::start("a").await;
    let p = Portico::start(one_route(&a)).await;
    // One connection, requests with pauses between them, the last one sent a byte at a time:
    // an idle connection waits for the next request without losing any of it.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", p.port("web"))).await.expect("connect");
    let request = b"GET /idle HTTP/1.1\r\nHost: portico.test\r\n\r\n";
    let mut buf = vec![0u8; 16 * 1024];
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if round == 3 {
            for byte in request {
                conn.write_all(&[*byte]).await.expect("write");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        } else {
            conn.write_all(request).await.expect("write");
        }
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.expect("answer").expect("read");
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "round {round}: {head}");
    }
    // Shutdown closes the idle connection after the drain's idle timeout instead of waiting for
    // the client.
    p.signal("TERM");
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.expect("closed at shutdown");
    assert!(matches!(n, Ok(0) | Err(_)), "the idle connection got data instead of a close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_timeout_closes_idle_connections_and_zero_turns_keep_alive_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::new(
            r#"
listeners:
  - {name: short, listen: "127.0.0.1:$short", keepalive_timeout_s: 1}
  - {name: off, listen: "127.0.0.1:$off", keepalive_timeout_s: 0}
upstreams: {a: {targets: ["$a"]}}
routes: [{name: all, upstream: a}]
"#,
        )
        .origin(&a),
    )
    .await;
    let request = b"GET /k HTTP/1.1\r\nHost: portico.test\r\n\r\n";
    let mut buf = vec![0u8; 16 * 1024];

    // keepalive_timeout_s: 1 -> a second request within the second is served on the same
    // connection; then, idle, the connection is closed by the proxy.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", p.port("short"))).await.expect("connect");
    for _ in 0..2 {
        conn.write_all(request).await.expect("write");
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.expect("answer").expect("read");
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(4), conn.read(&mut buf)).await.expect("closed when idle");
    assert!(matches!(closed, Ok(0) | Err(_)), "the idle connection got data instead of a close");

    // keepalive_timeout_s: 0 -> one request per connection.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", p.port("off"))).await.expect("connect");
    conn.write_all(request).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut response))
        .await
        .expect("closed after the response")
        .expect("read");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_upgrade_hands_over_the_sockets_without_dropping_requests() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let a = Origin::start("a").await;
    let mut old = Portico::start(one_route(&a)).await;
    let url = old.url("web", "/x");

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), url.clone());
        tokio::spawn(async move {
            // A new connection per request, so each one exercises the listening socket.
            while !stop.load(Ordering::SeqCst) {
                let c = client();
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // The new binary starts with --upgrade on the same config, then the old one gets SIGQUIT.
    let config = old.config.clone();
    let new = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["-u", "-c"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(old.dir.path().join("new.log")).expect("log"))
        .spawn()
        .expect("new portico");
    let mut new = KillOnDrop(new);
    tokio::time::sleep(Duration::from_millis(500)).await;
    old.signal("QUIT");
    assert!(old.wait_exit(Duration::from_secs(20)).await, "the old process did not exit cleanly");

    // The new process now owns the sockets and serves.
    let (status, _) = get_json(&url).await;
    assert_eq!(status, 200);
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load");
    assert!(ok.load(Ordering::SeqCst) > 20);
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests failed during the upgrade");
    let _ = new.0.kill();
    let _ = new.0.wait();
}

/// Client tasks on keep-alive connections sending back to back through one pooled client, as a
/// load generator does: what they got, and each failure's error.
struct KeepAliveLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ok: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    closing: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KeepAliveLoad {
    fn start(url: &str, tasks: usize) -> KeepAliveLoad {
        use std::sync::atomic::Ordering;
        let load = KeepAliveLoad {
            stop: Default::default(),
            ok: Default::default(),
            closing: Default::default(),
            failures: Default::default(),
            tasks: Vec::new(),
        };
        let client = client();
        let tasks = (0..tasks)
            .map(|_| {
                let (client, url) = (client.clone(), url.to_string());
                let (stop, ok, closing, failures) =
                    (load.stop.clone(), load.ok.clone(), load.closing.clone(), load.failures.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        match client.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {
                                if r.headers().get("connection").is_some_and(|v| v == "close") {
                                    closing.fetch_add(1, Ordering::SeqCst);
                                }
                                match r.bytes().await {
                                    Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                                    Err(e) => {
                                        failures.lock().expect("lock").push(format!("body: {e:?}"));
                                        0
                                    }
                                };
                            }
                            Ok(r) => failures.lock().expect("lock").push(format!("status {}", r.status())),
                            Err(e) => failures.lock().expect("lock").push(format!("{e:?}")),
                        }
                    }
                })
            })
            .collect();
        KeepAliveLoad { tasks, ..load }
    }

    fn ok(&self) -> usize {
        self.ok.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `more` further requests have succeeded.
    async fn runs_on(&self, more: usize, what: &str) {
        let target = self.ok() + more;
        eventually(Duration::from_secs(20), what, || async { self.ok() >= target }).await;
    }

    /// Stops the tasks: (succeeded, answered with `Connection: close`, failures).
    async fn finish(mut self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in std::mem::take(&mut self.tasks) {
            t.await.expect("load task");
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.ok(), self.closing.load(std::sync::atomic::Ordering::SeqCst), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_under_keep_alive_load_moves_every_connection_to_the_new_process_without_a_failure() {
    let a = Origin::start("a").await;
    let mut old = Portico::start(one_route(&a)).await;
    let url = old.url("web", "/x");
    let load = KeepAliveLoad::start(&url, 8);
    load.runs_on(200, "the load runs against the old process").await;

    // The new binary waits for the sockets, then the old one gets SIGQUIT: it hands them over,
    // and draining answers each keep-alive connection's next request with `Connection: close`.
    let new = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["-u", "-c"])
        .arg(&old.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(old.dir.path().join("new.log")).expect("log"))
        .spawn()
        .expect("new portico");
    let new = KillOnDrop(new);
    let upgrade_sock = old.dir.path().join("upgrade.sock");
    eventually(Duration::from_secs(20), "the new process waits for the sockets", || {
        let exists = upgrade_sock.exists();
        async move { exists }
    })
    .await;
    old.signal("QUIT");
    assert!(old.wait_exit(Duration::from_secs(30)).await, "the old process did not exit cleanly");

    // The clients reconnected to the new process and go on there.
    load.runs_on(200, "the load runs against the new process").await;
    let (ok, closing, failures) = load.finish().await;
    assert!(failures.is_empty(), "{} of {} requests failed across the upgrade: {failures:?}", failures.len(), ok);
    assert!(closing > 0, "no connection was told to close while draining");
    drop(new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_keep_alive_load_answers_every_request_sent_and_closes_each_connection_after_a_close() {
    use crate::slow_clients::exchange;
    let a = Origin::start("a").await;
    let mut p = Portico::start(one_route(&a)).await;
    let port = p.port("web");
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));

    // Eight connections, each sending its next request as soon as the last answer is in; a
    // client stops when told `Connection: close`, as the server is going away.
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let served = served.clone();
            tokio::spawn(async move {
                let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
                let request = b"GET /x HTTP/1.1\r\nHost: portico.test\r\n\r\n";
                loop {
                    match exchange(&mut conn, request).await {
                        Some((200, false)) => served.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                        Some((200, true)) => return Ok(()),
                        other => {
                            return Err(format!(
                                "after {} requests: {other:?}",
                                served.load(std::sync::atomic::Ordering::SeqCst)
                            ))
                        }
                    };
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(20), "every connection is busy", || async {
        served.load(std::sync::atomic::Ordering::SeqCst) >= 400
    })
    .await;

    p.signal("TERM");
    for client in clients {
        let ended =
            tokio::time::timeout(Duration::from_secs(15), client).await.expect("the client ends").expect("task");
        assert_eq!(ended, Ok(()), "a request sent during the drain was not answered");
    }
    assert!(p.wait_exit(Duration::from_secs(15)).await, "portico did not exit cleanly");
}

/// Kills the child when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
