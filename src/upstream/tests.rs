use super::*;
use crate::config::{BreakerSpec, Timeouts};
use breaker::{Admission, State};

/// A pool with a breaker and no targets at all: every selection finds nothing.
fn empty_pool_with_breaker() -> Pool {
    Pool::new(Arc::new(UpstreamSpec {
        name: "empty".into(),
        targets: Vec::new(),
        dns: None,
        balance: Balance::RoundRobin,
        hash_key: crate::config::HashKey::Path,
        health: None,
        timeouts: Timeouts::default(),
        tls: None,
        http2: false,
        max_streams: 100,
        outlier: None,
        breaker: Some(BreakerSpec { failure_ratio: 0.5, min_requests: 1, open_ms: 1000 }),
        max_in_flight: None,
    }))
}

#[test]
fn a_half_open_probe_that_found_no_target_leaves_the_breaker_half_open() {
    let pool = empty_pool_with_breaker();
    let breaker = pool.breaker.as_ref().expect("a breaker");
    let t = 1_000_000;
    breaker.record(breaker.admit(t), false, t);
    assert_eq!(breaker.state(), State::Open);

    let probe = breaker.admit(t + 1_000);
    assert_eq!(probe, Admission::Probe);
    assert!(pool.select_admitted(b"", &[], t + 1_000, probe).is_none());
    assert_eq!(breaker.state(), State::HalfOpen, "no target answered, so nothing closed the breaker");
    assert_eq!(breaker.admit(t + 1_001), Admission::Probe, "the probe place was given back");
}

#[test]
fn a_peer_gets_the_default_timeouts_when_the_file_sets_none() {
    let yaml = "listeners: [{name: web, listen: \"127.0.0.1:0\"}]\n\
                upstreams: {u: {targets: [\"127.0.0.1:9\"]}, t: {targets: [\"127.0.0.1:9\"], timeouts: {read_ms: 300}}}\n\
                routes: [{name: r, upstream: u}]\n";
    let config = crate::config::load_str(yaml, std::path::Path::new("t.yaml")).expect("valid");
    let backend = Backend::new("127.0.0.1:9").expect("an address");
    let peer = |name: &str| {
        let spec = config.upstreams.iter().find(|u| &*u.name == name).expect("the upstream").clone();
        build_peer(&Pool::new(spec), &backend)
    };
    let (u, t) = (peer("u"), peer("t"));
    let s = std::time::Duration::from_secs;
    assert_eq!(u.options.connection_timeout, Some(s(5)), "no hung connect holds a request forever");
    assert_eq!((u.options.read_timeout, u.options.write_timeout), (Some(s(60)), Some(s(60))));
    assert_eq!(t.options.read_timeout, Some(std::time::Duration::from_millis(300)), "a set key wins");
    assert_eq!(t.options.connection_timeout, Some(s(5)), "the keys left out keep their defaults");
}

#[test]
fn a_vanished_targets_metric_series_are_removed() {
    let metrics = crate::telemetry::Metrics::new().expect("metrics");
    let (gone, kept): (SocketAddr, SocketAddr) = ("10.0.0.1:80".parse().expect("a"), "10.0.0.2:80".parse().expect("b"));
    for t in [gone, kept] {
        metrics.set_target_health("svc", t, true);
        metrics.outlier_ejection("svc", t);
    }
    metrics.remove_target("svc", gone);
    let text = String::from_utf8(metrics.render()).expect("utf-8");
    assert!(!text.contains("10.0.0.1:80"), "{text}");
    for name in
        ["portico_upstream_target_healthy", "portico_upstream_target_ejected", "portico_outlier_ejections_total"]
    {
        assert!(text.contains(&format!("{name}{{target=\"10.0.0.2:80\",upstream=\"svc\"}} 1")), "{name}: {text}");
    }
    metrics.remove_target("svc", gone);
}
