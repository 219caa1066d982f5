//! An API owner caps how often callers may come, in one instance or across many sharing Redis,
//! and rehearses failures with injected faults.

use crate::support::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_limit_admits_the_burst_then_says_429_and_survives_a_reload() {
    let a = Origin::start("a").await;
    let config = |burst: u32, extra: &str| {
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
routes:
$extra
  - name: limited
    upstream: a
    filters:
      - rate_limit: {key: client_ip, requests_per_minute: 60, burst: $burst}
"#,
        )
        .origin(&a)
        .set("extra", extra)
        .set("burst", burst)
    };
    let mut p = Portico::start(config(10, "")).await;
    let c = client();
    let mut admitted = 0;
    for i in 0..15 {
        let r = c.get(p.url("web", "/x")).send().await.expect("req");
        let h = r.headers().clone();
        assert!(
            h.contains_key("ratelimit-limit")
                && h.contains_key("ratelimit-remaining")
                && h.contains_key("ratelimit-reset")
        );
        match r.status().as_u16() {
            200 => admitted += 1,
            429 => {
                assert!(h["retry-after"].to_str().expect("ascii").parse::<u64>().expect("seconds") >= 1);
                let body: serde_json::Value = r.json().await.expect("json");
                assert_eq!(body["error"], "rate_limited", "request {i}");
                assert!(body["request_id"].as_str().is_some());
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!((10..=11).contains(&admitted), "admitted {admitted} of 15 with a burst of 10");

    // A reload that leaves the limit as it was keeps the counts: no fresh burst for anyone.
    p.rewrite_config(config(10, "  - {name: other, match: {path: /other}, respond: {status: 204}}"));
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(c.get(p.url("web", "/other")).send().await.expect("req").status(), 204, "reloaded");
    assert_eq!(c.get(p.url("web", "/x")).send().await.expect("req").status(), 429, "counts carried over");

    // A changed limit is a new limiter, with a fresh burst.
    p.rewrite_config(config(20, ""));
    let r = c.post(p.admin_url("/reload")).send().await.expect("reload");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(c.get(p.url("web", "/x")).send().await.expect("req").status(), 200, "a new limit starts afresh");
}

fn shared_config(origin: &Origin, redis: &Redis) -> Yaml {
    Yaml::web(
        r#"
upstreams: {a: {targets: ["$a"]}}
rate_limit_store: {redis: "$redis"}
routes:
  - name: shared
    match: {path: /shared}
    upstream: a
    filters:
      - rate_limit: {key: route, requests_per_minute: 60, burst: 20, store: redis, failure_policy: open, redis_timeout_ms: 100}
  - name: strict
    match: {path: /strict}
    upstream: a
    filters:
      - rate_limit: {key: route, requests_per_minute: 6000, burst: 100, store: redis, failure_policy: closed, redis_timeout_ms: 100}
"#,
    )
    .set("a", origin.addr)
    .set("redis", redis.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_enforce_one_limit_and_follow_the_failure_policy() {
    let mut redis = Redis::start().await;
    let a = Origin::start("a").await;
    let p1 = Portico::start(shared_config(&a, &redis)).await;
    let p2 = Portico::start(shared_config(&a, &redis)).await;
    let c = client();

    // 60 requests, alternating instances, within a couple of seconds: the shared burst of 20
    // (plus at most one more per second of refill) is all that passes.
    let started = Instant::now();
    let mut admitted = 0;
    for i in 0..60 {
        let p = if i % 2 == 0 { &p1 } else { &p2 };
        if c.get(p.url("web", "/shared")).send().await.expect("req").status() == 200 {
            admitted += 1;
        }
    }
    let refill = started.elapsed().as_secs() + 1;
    assert!(
        admitted >= 20 && admitted as u64 <= 20 + refill,
        "admitted {admitted} across two instances (limit 20, +{refill} refill)"
    );

    // Redis goes away: `open` admits without hanging, `closed` refuses at once.
    redis.stop();
    for p in [&p1, &p2] {
        let started = Instant::now();
        let r = c.get(p.url("web", "/strict")).send().await.expect("req");
        assert_eq!(r.status(), 503);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"], "rate_limiter_unavailable");
        assert!(started.elapsed() < Duration::from_secs(2), "closed policy hung {:?}", started.elapsed());
    }
    // The open route's own budget may be spent, but it never waits on the dead Redis.
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(c.get(p1.url("web", "/shared")).send().await.expect("req").status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "open policy hung {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_injected_at_the_configured_rates() {
    let a = Origin::start("a").await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams: {a: {targets: ["$a"]}}
routes:
  - name: aborts
    match: {path: /aborts}
    upstream: a
    filters:
      - fault: {abort: {percent: 25, status: 503}, header: x-portico-fault}
  - name: delays
    match: {path: /delays}
    upstream: a
    filters:
      - fault: {delay: {percent: 100, ms: 150}}
"#,
        )
        .origin(&a),
    )
    .await;
    let c = client();
    let mut aborted = 0;
    for _ in 0..800 {
        let r = c.get(p.url("web", "/aborts")).send().await.expect("req");
        if r.status() == 503 {
            let body: serde_json::Value = r.json().await.expect("json");
            assert_eq!(body["error"], "fault_injected");
            aborted += 1;
        }
    }
    // Expected 200 of 800; the standard deviation is about 12.2, so +-55 is 4.5 of them.
    assert!((145..=255).contains(&aborted), "25% abort gave {aborted} of 800");
    let r = c.get(p.url("web", "/aborts")).header("x-portico-fault", "abort").send().await.expect("req");
    assert_eq!(r.status(), 503, "the header forces the fault");

    let started = Instant::now();
    assert_eq!(c.get(p.url("web", "/delays")).send().await.expect("req").status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}
