//! A target dies: health checks take it out before clients notice, and put it back when it
//! returns.

use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_is_ejected_and_readmitted() {
    let a = Origin::start("a").await;
    let mut b = Origin::start("b").await;
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  pool:
    targets: ["$a", "$b"]
    health_check: {http: {path: /healthz, expect_status: 200}, interval_ms: 100, healthy_after: 2, unhealthy_after: 2}
    timeouts: {connect_ms: 200, read_ms: 2000}
routes:
  - {name: all, upstream: pool}
"#,
        )
        .origin(&a)
        .origin(&b),
    )
    .await;
    let b_label = format!("upstream=\"pool\",target=\"{}\"", b.addr);
    let healthy = |p: &Portico| {
        let label = b_label.clone();
        let url = p.admin_url("/metrics");
        async move {
            let text = client().get(url).send().await.expect("metrics").text().await.expect("text");
            metric(&text, "portico_upstream_target_healthy", &label)
        }
    };
    eventually(Duration::from_secs(5), "b reported healthy", || async { healthy(&p).await == 1.0 }).await;

    // b crashes: once it is marked down, no request fails and all go to a.
    b.stop().await;
    eventually(Duration::from_secs(5), "b marked unhealthy", || async { healthy(&p).await == 0.0 }).await;
    let c = client();
    for i in 0..40 {
        let r = c.get(p.url("web", "/x")).send().await.expect("request");
        assert_eq!(r.status(), 200, "request {i} failed after b was marked down");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["instance"], "a");
    }

    // b comes back: it is checked healthy again and receives traffic.
    b.restart().await;
    eventually(Duration::from_secs(5), "b marked healthy again", || async { healthy(&p).await == 1.0 }).await;
    let mut b_hits = 0;
    for _ in 0..20 {
        let body: serde_json::Value =
            c.get(p.url("web", "/x")).send().await.expect("request").json().await.expect("json");
        if body["instance"] == "b" {
            b_hits += 1;
        }
    }
    assert!(b_hits >= 5, "b got {b_hits} of 20 requests after it recovered");

    // Every target down: 503 JSON.
    a.set_healthy(false);
    b.set_healthy(false);
    eventually(Duration::from_secs(5), "all targets down gives 503", || async {
        let (status, body) = get_json(&p.url("web", "/x")).await;
        status == 503 && body["error"] == "no_healthy_upstream"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_every_pools_first_health_check() {
    let a = Origin::start("a").await;
    // The check itself takes 1.5 s, so there is a window where the pool knows nothing yet.
    let p = Portico::spawn(
        Yaml::web(
            r#"
upstreams:
  checked: {targets: ["$a"], health_check: {http: {path: "/slow?ms=1500"}, interval_ms: 60000, timeout_ms: 5000}}
  unchecked: {targets: ["$a"]}
routes:
  - {name: all, upstream: checked}
"#,
        )
        .origin(&a),
    );
    let c = client();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut starting_seen = false;
    loop {
        assert!(std::time::Instant::now() < deadline, "never ready:\n{}", p.stderr());
        let Ok(r) = c.get(p.admin_url("/ready")).send().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("json");
        if status == 200 {
            break;
        }
        assert_eq!((status, body["status"].as_str()), (503, Some("starting")), "{body}");
        let waiting = body["waiting_for"].as_array().cloned().unwrap_or_default();
        assert!(
            waiting.contains(&serde_json::json!("checked")) && !waiting.contains(&serde_json::json!("unchecked")),
            "{body}"
        );
        starting_seen = true;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(starting_seen, "/ready answered 200 before the first health check finished");
    assert_eq!(get_json(&p.url("web", "/x")).await.0, 200);
}
