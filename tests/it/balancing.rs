//! A user spreads traffic over several targets: in turn, by weight, or stuck to a key.

use crate::support::*;
use std::collections::HashMap;

async fn count(p: &Portico, n: usize, header: Option<(&str, String)>) -> HashMap<String, usize> {
    let c = client();
    let mut counts = HashMap::new();
    for _ in 0..n {
        let mut req = c.get(p.url("web", "/x"));
        if let Some((k, v)) = &header {
            req = req.header(*k, v.as_str());
        }
        let body: serde_json::Value = req.send().await.expect("request").json().await.expect("json");
        *counts.entry(body["instance"].as_str().unwrap_or("?").to_string()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_and_weights_share_traffic_as_configured() {
    let (a, b, c) = (Origin::start("a").await, Origin::start("b").await, Origin::start("c").await);
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  even: {targets: ["$a", "$b"], balance: round_robin}
routes:
  - {name: all, upstream: even}
"#,
        )
        .origin(&a)
        .origin(&b),
    )
    .await;
    let counts = count(&p, 200, None).await;
    assert_eq!(counts.get("a").copied().unwrap_or(0), 100, "{counts:?}");
    assert_eq!(counts.get("b").copied().unwrap_or(0), 100, "{counts:?}");
    drop(p);

    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  weighted:
    targets: ["$a", {address: "$c", weight: 3}]
    balance: random
routes:
  - {name: all, upstream: weighted}
"#,
        )
        .origin(&a)
        .origin(&c),
    )
    .await;
    let counts = count(&p, 400, None).await;
    let heavy = counts.get("c").copied().unwrap_or(0) as f64 / 400.0;
    // Expected 0.75; 400 draws give a standard deviation of about 0.022.
    assert!((0.65..=0.85).contains(&heavy), "weight 3 target got {heavy:.2} of traffic: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_sticks_a_key_to_one_target() {
    let origins = [Origin::start("a").await, Origin::start("b").await, Origin::start("c").await];
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  sticky:
    targets: ["$a", "$b", "$c"]
    balance: consistent_hash
    hash_key: "header:x-user"
routes:
  - {name: all, upstream: sticky}
"#,
        )
        .origin(&origins[0])
        .origin(&origins[1])
        .origin(&origins[2]),
    )
    .await;
    let mut seen = std::collections::HashSet::new();
    for user in 0..30 {
        let counts = count(&p, 5, Some(("x-user", format!("user-{user}")))).await;
        assert_eq!(counts.len(), 1, "user-{user} was spread over {counts:?}");
        seen.extend(counts.into_keys());
    }
    assert!(seen.len() >= 2, "30 users all hashed to {seen:?}");
}
