//! A service owner lets the proxy absorb failures: retries within a budget, outlier ejection,
//! a circuit breaker, least-loaded balancing, concurrency limits, splits and mirrors.

use crate::support::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_target_costs_no_failed_requests_with_retries_and_ejection() {
    let a = Origin::start("a").await;
    let mut b = Origin::start("b").await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  pool:
    targets: ["$a", "$b"]
    outlier: {consecutive_failures: 3, eject_s: 30}
    timeouts: {connect_ms: 300, read_ms: 2000}
routes:
  - name: all
    upstream: pool
    retry: {attempts: 2, on: [connect_error, timeout, 502, 503], budget_percent: 20}
"#,
        )
        .origin(&a)
        .origin(&b),
    )
    .await;
    let c = client();
    let mut failed = Vec::new();
    for i in 0..300 {
        if i == 100 {
            b.stop().await;
        }
        match c.get(p.url("web", "/x")).send().await {
            Ok(r) if r.status() == 200 => {}
            Ok(r) => failed.push(format!("request {i}: {} {}", r.status(), r.text().await.unwrap_or_default())),
            Err(e) => failed.push(format!("request {i}: {e:?}")),
        }
    }
    assert!(failed.is_empty(), "requests failed although a healthy target was left: {failed:#?}\n{}", p.stderr());
    let text = p.metrics().await;
    let b_label = format!("upstream=\"pool\",target=\"{}\"", b.addr);
    assert!(metric(&text, "portico_outlier_ejections_total", &b_label) >= 1.0, "{text}");
    assert_eq!(metric(&text, "portico_upstream_target_ejected", &b_label), 1.0);
    let retried = metric(&text, "portico_retries_total", "route=\"all\",outcome=\"retried\"");
    assert!((1.0..=10.0).contains(&retried), "retries: {retried}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_statuses_are_retried_elsewhere_within_the_budget() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    a.set_failing(true);
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  pool: {targets: ["$a", "$b"]}
  both_bad: {targets: ["$a"]}
routes:
  - {name: retried, match: {path: /ok}, upstream: pool, retry: {attempts: 1, on: [503], budget_percent: 100}}
  - {name: budgeted, match: {path: /bad}, upstream: both_bad, retry: {attempts: 3, on: [503], budget_percent: 20}}
  - {name: post, match: {path: /post}, upstream: pool, retry: {attempts: 1, on: [503]}}
"#,
        )
        .origin(&a)
        .origin(&b),
    )
    .await;
    // Every 503 from a is retried on b.
    for i in 0..20 {
        let (status, body) = get_json(&p.url("web", "/ok")).await;
        assert_eq!((status, body["instance"].as_str()), (200, Some("b")), "request {i}");
    }
    // POST is not idempotent: not retried, so some 503s reach the client.
    let c = client();
    let mut post_503 = 0;
    for _ in 0..20 {
        if c.post(p.url("web", "/post")).body("x").send().await.expect("post").status() == 503 {
            post_503 += 1;
        }
    }
    assert!(post_503 > 0, "a POST was retried");

    // With nowhere good to go, retries stop at the budget: 3 + 20% of 50 requests.
    for _ in 0..50 {
        assert_eq!(get_json(&p.url("web", "/bad")).await.0, 503);
    }
    let text = p.metrics().await;
    let retried = metric(&text, "portico_retries_total", "route=\"budgeted\",outcome=\"retried\"");
    let refused = metric(&text, "portico_retries_total", "route=\"budgeted\",outcome=\"budget_exhausted\"");
    assert!(retried <= 13.0, "retries went past the budget: {retried}");
    assert!(refused >= 30.0, "the budget refused only {refused} retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_opens_fails_fast_half_opens_and_closes() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  fragile:
    targets: ["$a"]
    circuit_breaker: {failure_ratio: 0.5, min_requests: 6, open_s: 1}
routes:
  - {name: all, upstream: fragile}
"#,
        )
        .origin(&a),
    )
    .await;
    let state = |p: &Portico| {
        let url = p.admin_url("/metrics");
        async move {
            let text = client().get(url).send().await.expect("metrics").text().await.expect("text");
            metric(&text, "portico_circuit_breaker_state", "upstream=\"fragile\"")
        }
    };
    a.set_failing(true);
    for _ in 0..6 {
        let (status, body) = get_json(&p.url("web", "/x")).await;
        assert_eq!((status, body["failing"].as_bool()), (503, Some(true)), "the origin's own 503 passes through");
    }
    // Open: fail fast without touching the origin.
    let hits = a.hits.load(Ordering::SeqCst);
    let started = Instant::now();
    for _ in 0..10 {
        let (status, body) = get_json(&p.url("web", "/x")).await;
        assert_eq!((status, body["error"].as_str()), (503, Some("circuit_open")));
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(a.hits.load(Ordering::SeqCst), hits, "an open breaker let requests through");
    eventually(Duration::from_secs(2), "state open in metrics", || async { state(&p).await == 1.0 }).await;

    // After open_s one probe goes through; the origin has recovered, so the breaker closes.
    a.set_failing(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = get_json(&p.url("web", "/x")).await;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(2), "state closed in metrics", || async { state(&p).await == 0.0 }).await;
    for _ in 0..5 {
        assert_eq!(get_json(&p.url("web", "/x")).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_avoids_the_slow_target() {
    let (fast, slow) = (Origin::start("fast").await, Origin::start("slow").await);
    slow.set_delay_ms(200);
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {pool: {targets: ["$fast", "$slow"], balance: least_loaded}}
routes: [{name: all, upstream: pool}]
"#,
        )
        .origin(&fast)
        .origin(&slow),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = p.url("web", "/x");
        tasks.push(tokio::spawn(async move {
            let c = client();
            for _ in 0..15 {
                let _ = c.get(&url).send().await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let (f, s) = (fast.hits.load(Ordering::SeqCst), slow.hits.load(Ordering::SeqCst));
    assert_eq!(f + s, 120);
    assert!(f as f64 / 120.0 > 0.75, "fast got {f}, slow got {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limits_shed_excess_requests_quickly() {
    let a = Origin::start("a").await;
    a.set_delay_ms(600);
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
routes: [{name: all, upstream: a, max_in_flight: 2}]
"#,
        )
        .origin(&a),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = p.url("web", "/x");
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = client().get(&url).send().await.expect("request");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (status, body["error"].as_str().unwrap_or("").to_string(), started.elapsed())
        }));
    }
    let mut ok = 0;
    let mut shed = 0;
    for t in tasks {
        let (status, error, took) = t.await.expect("task");
        match status {
            200 => ok += 1,
            503 => {
                assert_eq!(error, "concurrency_limited");
                assert!(took < Duration::from_millis(400), "a shed request waited {took:?}");
                shed += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok + shed, 6);
    assert!(ok >= 2 && shed >= 1, "ok {ok}, shed {shed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_90_10_split_and_a_mirror_that_never_delays_the_client() {
    let (v1, v2, shadow) = (Origin::start("v1").await, Origin::start("v2").await, Origin::start("shadow").await);
    shadow.set_delay_ms(1500);
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  v1: {targets: ["$v1"]}
  v2: {targets: ["$v2"]}
  shadow: {targets: ["$shadow"]}
routes:
  - {name: split, match: {path: /split}, split: [{upstream: v1, weight: 90}, {upstream: v2, weight: 10}]}
  - {name: mirrored, match: {path: /m}, upstream: v1, mirror: {upstream: shadow, percent: 100}}
"#,
        )
        .origin(&v1)
        .origin(&v2)
        .origin(&shadow),
    )
    .await;
    let c = client();
    for _ in 0..2000 {
        assert_eq!(c.get(p.url("web", "/split")).send().await.expect("req").status(), 200);
    }
    let canary = v2.hits.load(Ordering::SeqCst);
    // Expected 200 of 2,000; the standard deviation is about 13.4, so +-60 is 4.5 of them.
    assert!((140..=260).contains(&canary), "10% split sent {canary} of 2000");

    let v1_before = v1.hits.load(Ordering::SeqCst);
    for i in 0..3 {
        let started = Instant::now();
        let r = c.post(p.url("web", "/m")).body(format!("payload-{i}")).send().await.expect("req");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["instance"], "v1", "the client sees only the primary");
        assert!(started.elapsed() < Duration::from_millis(1000), "the slow mirror delayed the client");
    }
    assert_eq!(v1.hits.load(Ordering::SeqCst), v1_before + 3);
    eventually(Duration::from_secs(10), "the shadow got three copies", || {
        let n = shadow.seen.lock().map(|s| s.len()).unwrap_or(0);
        async move { n == 3 }
    })
    .await;
    let seen = shadow.seen.lock().expect("lock").clone();
    for (host, body_len) in seen {
        assert!(host.ends_with("-shadow"), "{host}");
        assert_eq!(body_len, "payload-0".len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_or_cookie_picks_the_canary() {
    let (stable, canary) = (Origin::start("stable").await, Origin::start("canary").await);
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  stable: {targets: ["$stable"]}
  canary: {targets: ["$canary"]}
routes:
  - name: by-header
    match: {path: /h}
    upstream: stable
    canary: {upstream: canary, header: x-canary, value: "1"}
  - name: by-cookie
    match: {path: /c}
    upstream: stable
    canary: {upstream: canary, cookie: track}
"#,
        )
        .origin(&stable)
        .origin(&canary),
    )
    .await;
    let c = client();
    let who = |r: reqwest::Response| async move {
        let body: serde_json::Value = r.json().await.expect("json");
        body["instance"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(who(c.get(p.url("web", "/h")).send().await.expect("req")).await, "stable");
    assert_eq!(who(c.get(p.url("web", "/h")).header("x-canary", "1").send().await.expect("req")).await, "canary");
    assert_eq!(who(c.get(p.url("web", "/h")).header("x-canary", "0").send().await.expect("req")).await, "stable");
    assert_eq!(
        who(c.get(p.url("web", "/c")).header("cookie", "a=1; track=beta").send().await.expect("req")).await,
        "canary"
    );
    assert_eq!(who(c.get(p.url("web", "/c")).header("cookie", "a=1").send().await.expect("req")).await, "stable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_timeout_bounds_a_body_that_keeps_trickling() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An origin that answers at once, then sends one chunk every 200 ms for 4 s: no single read
    // ever waits long, so only a timeout over the whole exchange can stop it.
    let origin = crate::support::free_listener();
    let addr = origin.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = origin.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await;
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if s.write_all(b"1\r\na\r\n").await.is_err() {
                        return;
                    }
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  trickle: {targets: ["$trickle"], timeouts: {read_ms: 2000}}
routes:
  - {name: bounded, upstream: trickle, timeout_ms: 1000}
"#,
        )
        .set("trickle", addr),
    )
    .await;
    let started = Instant::now();
    let r = client().get(p.url("web", "/stream")).send().await.expect("headers arrive");
    assert_eq!(r.status(), 200);
    let body = r.bytes().await;
    let took = started.elapsed();
    assert!(body.is_err(), "the body was not cut off: {body:?}");
    assert!(took < Duration::from_millis(2500), "the route's 1 s timeout took {took:?}");
}
