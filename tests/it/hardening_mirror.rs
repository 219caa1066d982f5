//! Issue 12: a mirror's copies in flight are bounded by the route's `mirror.max_in_flight`; a
//! copy past it is dropped and counted, and the client never waits for the shadow.

use crate::support::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_shadow_holds_at_most_max_in_flight_copies() {
    let (a, shadow) = (Origin::start("a").await, Origin::start("shadow").await);
    shadow.set_delay_ms(5_000);
    let p = Portico::start(
        Yaml::web(
            r#"
upstreams:
  a: {targets: ["$a"]}
  shadow: {targets: ["$shadow"]}
routes:
  - {name: m, match: {path: /m}, upstream: a, mirror: {upstream: shadow, max_in_flight: 1}}
"#,
        )
        .origin(&a)
        .origin(&shadow),
    )
    .await;
    let started = Instant::now();
    for _ in 0..4 {
        let status = client().get(p.url("web", "/m/x")).send().await.expect("request").status();
        assert_eq!(status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(4), "the client waited for the slow shadow");
    // The first copy holds the one place for 5 s: the next three are dropped.
    eventually(Duration::from_secs(4), "three copies dropped", || async {
        metric(&p.metrics().await, "portico_mirror_dropped_total", "") >= 3.0
    })
    .await;
    assert_eq!(metric(&p.metrics().await, "portico_mirror_dropped_total", ""), 3.0);
}

#[test]
fn max_in_flight_must_be_at_least_one() {
    let yaml = "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\nupstreams: {a: {targets: [\"127.0.0.1:9\"]}}\n\
                routes: [{name: m, upstream: a, mirror: {upstream: a, max_in_flight: 0}}]\n";
    let errors = portico::config::load_str(yaml, std::path::Path::new("t.yaml")).expect_err("0").to_string();
    assert!(errors.contains("routes[0].mirror.max_in_flight: must be at least 1"), "{errors}");
    let ok = yaml.replace("max_in_flight: 0", "max_in_flight: 7");
    let config = portico::config::load_str(&ok, std::path::Path::new("t.yaml")).expect("valid");
    assert_eq!(config.routes[0].mirror.as_ref().map(|m| m.max_in_flight), Some(7));
    let default = yaml.replace(", max_in_flight: 0", "");
    let config = portico::config::load_str(&default, std::path::Path::new("t.yaml")).expect("valid");
    assert_eq!(config.routes[0].mirror.as_ref().map(|m| m.max_in_flight), Some(64));
}
