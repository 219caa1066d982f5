use super::*;
use crate::config::{Balance, BreakerSpec, HashKey, TargetSpec, Timeouts, UpstreamSpec};
use crate::upstream::breaker::State;

fn pool(addr: SocketAddr) -> Arc<Pool> {
    Arc::new(Pool::new(Arc::new(UpstreamSpec {
        name: "users".into(),
        targets: vec![TargetSpec { addr, weight: 1 }],
        dns: None,
        balance: Balance::RoundRobin,
        hash_key: HashKey::Path,
        health: None,
        timeouts: Timeouts::default(),
        tls: None,
        http2: false,
        max_streams: 100,
        outlier: None,
        breaker: Some(BreakerSpec { failure_ratio: 0.5, min_requests: 1, open_ms: 0 }),
        max_in_flight: None,
    })))
}

fn load(pool: &Pool, addr: SocketAddr) -> usize {
    pool.targets.peek(&addr, |s| s.in_flight.load(Ordering::Acquire)).expect("a known target")
}

#[test]
fn the_in_flight_gauge_counts_until_drop() {
    let gauge = IntGauge::new("g", "g").expect("a valid gauge");
    let a = InFlight::enter(&gauge);
    let b = InFlight::enter(&gauge);
    assert_eq!(gauge.get(), 2);
    drop((a, b));
    assert_eq!(gauge.get(), 0);
}

#[test]
fn an_attempt_counts_in_its_targets_load_until_drop() {
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let pool = pool(addr);
    let attempt = Attempt::start(pool.clone(), addr, Admission::Allowed);
    assert_eq!(load(&pool, addr), 1);
    let metrics = Metrics::new().expect("metrics");
    attempt.finish(&metrics, true, UpstreamErrorKind::Status);
    assert_eq!(load(&pool, addr), 0, "finishing consumes the attempt, so it is given back");
    let attempt = Attempt::start(pool.clone(), addr, Admission::Allowed);
    drop(attempt);
    assert_eq!(load(&pool, addr), 0, "an attempt dropped unrecorded is given back too");
}

#[test]
fn a_probe_dropped_unrecorded_frees_the_half_open_breaker() {
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let pool = pool(addr);
    let breaker = pool.breaker.as_ref().expect("a breaker");
    let t = now_ms();
    breaker.record(breaker.admit(t), false, t);
    assert_eq!(breaker.state(), State::Open);
    let probe = breaker.admit(now_ms() + 1);
    assert_eq!(probe, Admission::Probe);
    assert_eq!(breaker.admit(now_ms() + 1), Admission::Rejected, "one probe at a time");
    drop(Attempt::start(pool.clone(), addr, probe));
    assert_eq!(breaker.admit(now_ms() + 1), Admission::Probe, "the probe place is free again");
}
